"""``python -m hpc_vdm.spectra``: P(k), cross P(k) and r(k) of arrays in Zarr stores, and truth-vs-samples comparisons.

    python -m hpc_vdm.spectra auto  data/maps.zarr --array Mcdm --overdensity --out pk.npz --figure pk.png
    python -m hpc_vdm.spectra cross data/maps.zarr --a Mstar --b Mcdm --overdensity --out r.json
    python -m hpc_vdm.spectra compare --truth data/maps.zarr:Mcdm --samples out.zarr:samples --out cmp.json --figure fig2.png

Arrays of shape (n_maps, N, N) are stacks of maps (one dask task per chunk of maps); (N, N, N) with
``--volume`` is a cube done out of core. The box size comes from the store's ``box_size_mpc_h`` attr
(``--box`` overrides). ``--scheduler ADDRESS`` attaches to a running dask.distributed scheduler;
``--scheduler mpi`` starts a dask-mpi cluster over the ranks of ``srun``/``mpiexec`` (rank 0 scheduler,
rank 1 runs this command, the other ranks are workers). An existing ``--out`` or ``--figure`` is replaced
only with ``--overwrite`` and only if this command wrote it (``format: hpc_vdm.spectra/1``, the figure's
PNG marker).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from .. import cli, figures
from ..data.store import store_attrs, verify_chunks, verify_store
from ..evaluate import analysis, report
from ..inference.store import verify as verify_tile_store
from ..io import (FIGURE, FORMATS, MAPS, SAMPLES, SPECTRA, TILE, acquire_lock, atomic_write, check_output, marker,
                  save_figure, writing)
from ..io.inputs import finite_number, real_floats
from . import fft, stats
from .pk import cross_spectrum_stack, power_spectrum_stack
from .scores import k_nyquist, ratio_scores
from .volume import volume_spectrum

log = logging.getLogger("hpc_vdm.spectra")


def open_array(spec: str):
    """'STORE.zarr:ARRAY' or STORE + name -> (zarr array, box size from the store attrs or None)."""
    import zarr

    store, _, name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if not name:
        raise ValueError(f"{spec!r} names no array; expected STORE.zarr:ARRAY")
    store_attrs(store, "Zarr store", "a folder written by zarr")  # missing, a file, not Zarr: said so
    root = zarr.open_group(store, mode="r")
    check_store(store, root)
    if name not in root or not isinstance(root[name], zarr.Array):
        raise ValueError(f"array {name!r} not in {store!r}; it has {sorted(root.array_keys())}")
    real_floats(root[name].dtype, f"array {name!r}", f"store {store!r}")
    box = root.attrs.get("box_size_mpc_h")  # maps and samples stores; a tile store's volume has it too
    if box is None:
        box = root.attrs.get("fingerprint", {}).get("volume", {}).get("box_mpc_h")
    if box is not None:
        box = finite_number(box, "box_size_mpc_h", f"store {store!r}", positive=True)
    return root[name], box


def check_store(store: str, root) -> None:
    """An hpc_vdm store is complete and holds every chunk it records (other Zarr stores are read as they are)."""
    attrs = dict(root.attrs)
    kind = FORMATS.get(attrs.get("format"))
    if kind == MAPS:
        verify_store(store, attrs)
        return
    if kind in (TILE, SAMPLES) and attrs.get("complete") is not True:
        raise ValueError(f"{kind} {store!r} is incomplete (its command did not finish); rerun it first")
    if kind == TILE:
        verify_tile_store(Path(store), root)
    elif kind == SAMPLES:
        verify_chunks(Path(store), attrs["chunks"])


def _box(args, box_attr):
    box = args.box if args.box is not None else box_attr
    if box is None:
        raise ValueError("the store has no box_size_mpc_h attr; pass --box (Mpc/h)")
    return float(box)


def _select(arr, maps: str | None):
    """Maps ``START:STOP`` of a stack; a slice that is not one, or selects nothing, is refused naming it."""
    if not maps:
        return arr
    lo, colon, hi = maps.partition(":")
    try:
        start, stop = int(lo or 0), int(hi) if hi else arr.shape[0]
    except ValueError:
        raise ValueError(f"--maps expects START:STOP (e.g. 0:100), got {maps!r}") from None
    if not colon or not 0 <= start < stop <= arr.shape[0]:
        raise ValueError(f"--maps {maps!r} selects no maps of the {arr.shape[0]} there are; expected START:STOP with "
                         f"0 <= START < STOP <= {arr.shape[0]}")
    return arr[start:stop]


def check_args(args) -> None:
    """Numbers of the command line: a finite positive box, at least one map per task."""
    if args.box is not None:
        finite_number(args.box, "--box", "the command line", positive=True)
    if args.chunk_maps < 1:
        raise ValueError(f"--chunk-maps must be at least 1, got {args.chunk_maps}")
    if args.mas is not None and args.mas.upper() not in ("NGP", "CIC", "TSC", "PCS"):
        raise ValueError(f"--mas must be NGP, CIC, TSC or PCS, got {args.mas!r}")


def check_finite(result: dict, args) -> None:
    """Spectra of arrays that hold NaN or inf are NaN: refused, naming the input, never written."""
    bad = [k for k, v in result.items() if np.issubdtype(np.asarray(v).dtype, np.floating)
           and k not in ("reduced_chi2",) and not np.isfinite(np.asarray(v)).all()]
    if bad:
        inputs = [args.truth, args.samples] if args.mode == "compare" else [args.store]
        raise ValueError(f"{', '.join(bad)} came out NaN or inf: the input {inputs} holds NaN or inf values (or "
                         f"maps whose mean is 0 with --overdensity); nothing was written")


def _write(out: str | None, result: dict) -> None:
    """``result`` as .npz or .json, atomically, with the marker ``format: hpc_vdm.spectra/1``."""
    if out is None:
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        arrays = {k: np.asarray(v) for k, v in result.items()} | {"format": np.asarray(marker(SPECTRA))}
        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(path, save)
    else:
        doc = {"format": marker(SPECTRA)} | {k: np.asarray(v).tolist() for k, v in result.items()}
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1)))
    log.info("wrote %s", path)


def check_outputs(args) -> list[str]:
    """--out and --figure may be written (new, or with --overwrite our own of that kind); the inputs' stores."""
    specs = [args.truth, args.samples] if args.mode == "compare" else [args.store]
    inputs = [spec.rpartition(":")[0] if ":" in spec else spec for spec in specs]
    if args.out is not None and Path(args.out).suffix not in (".npz", ".json"):
        raise ValueError(f"--out must end in .npz or .json, got {args.out!r}")
    if args.out is not None:
        check_output(args.out, SPECTRA, inputs=inputs, overwrite=args.overwrite)
    if args.figure is not None:
        check_output(args.figure, FIGURE, inputs=inputs, overwrite=args.overwrite)
    return inputs


def _scheduler(spec: str | None):
    """None (threads), a distributed Client at ADDRESS, or a dask-mpi cluster; returns the client or None."""
    if spec is None:
        return None
    from distributed import Client

    if spec == "mpi":
        import dask_mpi

        if dask_mpi.initialize(exit=True) is False:  # returns on the client rank only
            raise RuntimeError("dask-mpi did not start a client")
        return Client()
    return Client(spec)


def _figure_auto(png, k, power, label):
    plt = figures.pyplot()

    b = stats.bands(np.atleast_2d(power))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(k, b.median, label=f"{label} (median of {np.atleast_2d(power).shape[0]})")
    ax.fill_between(k, b.lo, b.hi, alpha=0.3, label="10-90%")
    ax.set_xlabel("k [h/Mpc]")
    ax.set_ylabel("P(k) [(Mpc/h)^d]")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, png, dpi=120)
    plt.close(fig)


def compare(truth, samples, box: float, *, mas=None, pdf_edges=None, scheduler=None) -> dict:
    """Truth maps (n, N, N) vs posterior samples (S, n, N, N) or (n, N, N): PDF, P(k) ratio and r(k) bands."""
    truth = np.asarray(truth, dtype=np.float32)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 3:
        samples = samples[None]
    elif samples.ndim == 4 and samples.shape[1] != truth.shape[0]:
        raise ValueError(f"samples {samples.shape} hold {samples.shape[1]} maps, the truth {truth.shape[0]}; "
                         f"slice both with --maps")
    if samples.shape[1:] != truth.shape:
        raise ValueError(f"samples {samples.shape} do not match truth maps {truth.shape}")
    s, n = samples.shape[:2]
    reps = np.broadcast_to(truth, samples.shape).reshape(s * n, *truth.shape[1:])
    x = cross_spectrum_stack(samples.reshape(s * n, *truth.shape[1:]), reps, box, mas=mas,
                             overdensity_of_mass=True, scheduler=scheduler)
    ratio = (x.power_a / x.power_b)
    edges = np.linspace(10.0, 13.5, 31) if pdf_edges is None else pdf_edges
    centres, pdf_s, pdf_bands = stats.pixel_pdf(samples.reshape(s * n, -1), edges)
    _, pdf_t, _ = stats.pixel_pdf(truth.reshape(n, -1), edges)
    rb, tb = stats.bands(x.r), stats.bands(ratio)
    scores = ratio_scores(x.k, ratio, x.r, k_nyquist(box, truth.shape[-1]))
    return {"k": x.k, "n_modes": x.n_modes, "power_truth": stats.bands(x.power_b[:n]).median,
            "power_samples_median": stats.bands(x.power_a).median, "ratio_median": tb.median, "ratio_lo": tb.lo,
            "ratio_hi": tb.hi, "r_median": rb.median, "r_lo": rb.lo, "r_hi": rb.hi, "pdf_centres": centres,
            "pdf_truth": pdf_t.mean(0), "pdf_samples_median": pdf_bands.median, "pdf_samples_lo": pdf_bands.lo,
            "pdf_samples_hi": pdf_bands.hi,
            "reduced_chi2": stats.reduced_chi2(x.power_a, x.power_b[:n]) if s * n + n >= 3 else np.nan,
            "pk_ratio_err": scores["pk_ratio_err"], "r_mean": scores["r_mean"],
            "k_nyquist": k_nyquist(box, truth.shape[-1])}


def figure_compare(png, truth, samples, box: float) -> None:
    """The papers' Fig. 2 of truth maps (n, N, N) against samples (S, n, N, N) (:func:`hpc_vdm.evaluate.report.fig2`)."""
    truth, samples = np.asarray(truth, dtype=np.float64), np.asarray(samples, dtype=np.float64)
    samples = samples[None] if samples.ndim == 3 else samples
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    report.fig2(truth, samples, analysis.curves(truth, None, samples, box), Path(png),
                report.Labels(condition="", target="M"))


def _main(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m hpc_vdm.spectra", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--box", type=float, help="box side [Mpc/h] (default: the store's box_size_mpc_h)")
    common.add_argument("--mas", default=None, help="deconvolve NGP, CIC, TSC or PCS (default: none)")
    common.add_argument("--maps", help="slice of maps, e.g. 0:100")
    common.add_argument("--chunk-maps", type=int, default=64, help="maps per dask task")
    common.add_argument("--scheduler", help="dask.distributed address, or 'mpi' for dask-mpi")
    common.add_argument("--out", help="results as .npz or .json")
    common.add_argument("--figure", help="PNG figure")
    common.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out / --figure, only if this command wrote it")
    a = sub.add_parser("auto", parents=[common], help="P(k) of every map (or of a volume)")
    a.add_argument("store")
    a.add_argument("--array", required=True)
    a.add_argument("--overdensity", action="store_true", help="use m / mean - 1 of mass maps")
    a.add_argument("--volume", action="store_true", help="the array is one (N, N, N) cube: out of core")
    c = sub.add_parser("cross", parents=[common], help="auto, cross and r(k) of two aligned arrays")
    c.add_argument("store")
    c.add_argument("--a", required=True)
    c.add_argument("--b", required=True)
    c.add_argument("--overdensity", action="store_true")
    c.add_argument("--volume", action="store_true")
    m = sub.add_parser("compare", parents=[common], help="truth vs samples: PDF, P ratio and r(k) bands")
    m.add_argument("--truth", required=True, help="STORE:ARRAY of (n, N, N) truth mass maps")
    m.add_argument("--samples", required=True, help="STORE:ARRAY of (S, n, N, N) or (n, N, N) samples")
    args = p.parse_args(argv)
    cli.setup_logging()
    check_args(args)
    check_outputs(args)  # before any work
    fft.load_wisdom()
    client = _scheduler(args.scheduler)
    out = args.out or args.figure
    with writing(out or "."), (acquire_lock(out) if out else contextlib.nullcontext()):
        check_outputs(args)  # another writer finished meanwhile?
        try:
            try:
                result, figure = _run(args)
            except ValueError as e:  # name the inputs in errors of the computation (bad maps, shapes)
                inputs = [args.truth, args.samples] if args.mode == "compare" else [args.store]
                if any(str(i) in str(e) for i in inputs):
                    raise
                raise ValueError(f"{', '.join(map(repr, inputs))}: {e}") from None
        finally:
            fft.save_wisdom()
            if client is not None:
                client.close()
        check_finite(result, args)
        if args.figure:
            figure()
        _write(args.out, result)
    return 0


def _run(args) -> tuple[dict, Callable[[], None]]:
    """The result of the mode, and how to draw its figure (after the result is checked)."""
    if args.mode == "compare":
        truth, box_t = open_array(args.truth)
        samples, box_s = open_array(args.samples)
        box = _box(args, box_t or box_s)
        truth = _select(truth, args.maps)
        samples = _select(samples, args.maps) if samples.ndim == 3 else samples
        res = compare(truth, samples, box, mas=args.mas)
        log.info("reduced chi2 %.3f; r(k) median at the first bins %s", res["reduced_chi2"],
                 np.round(res["r_median"][:4], 3))
        return res, lambda: figure_compare(args.figure, truth, samples, box)
    if args.mode == "auto":
        arr, box_attr = open_array(f"{args.store}:{args.array}")
        box = _box(args, box_attr)
        if args.volume:
            if args.overdensity:
                raise ValueError("--overdensity is for stacks of mass maps; pass an overdensity volume")
            res = volume_spectrum(arr, box, mas=args.mas)
        else:
            res = power_spectrum_stack(_select(arr, args.maps), box, mas=args.mas, chunk_maps=args.chunk_maps,
                                       overdensity_of_mass=args.overdensity)
        out = {"k": res.k, "power": res.power, "n_modes": res.n_modes}
        return out, lambda: _figure_auto(args.figure, out["k"], out["power"], args.array)
    arr_a, box_attr = open_array(f"{args.store}:{args.a}")
    arr_b, _ = open_array(f"{args.store}:{args.b}")
    box = _box(args, box_attr)
    if args.volume:
        res = volume_spectrum(arr_a, box, b=arr_b, mas=args.mas)
    else:
        res = cross_spectrum_stack(_select(arr_a, args.maps), _select(arr_b, args.maps), box, mas=args.mas,
                                   chunk_maps=args.chunk_maps, overdensity_of_mass=args.overdensity)
    out = {"k": res.k, "power_a": res.power_a, "power_b": res.power_b, "cross": res.cross, "r": res.r,
           "n_modes": res.n_modes}
    return out, lambda: _figure_auto(args.figure, res.k, res.r, f"r({args.a}, {args.b})")


def main(argv=None) -> int:
    return cli.run(_main, argv)
