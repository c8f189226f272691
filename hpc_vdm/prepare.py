"""``python -m hpc_vdm.prepare``: CAMELS CMD .npy maps -> ``maps.zarr`` for training.

    python -m hpc_vdm.prepare --source data/cmd --suite IllustrisTNG --sim-set LH --out data/maps.zarr

Reads the CMD files memory-mapped (never whole into RAM), checks them completely before writing
anything (lengths, shapes, dtype, params rows, finite non-negative masses, log-transformable values),
splits by *simulation*, computes the log-transform statistics on the training simulations only, and
writes the store to a temporary path that is renamed into place at the end.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import cli
from .config import RunConfig
from .data import camels
from .data.transforms import Pooled
from .data.store import RunningMoments, log_transform, split_by_simulation, write_store
from .io import MAPS, acquire_lock, check_output, check_unlocked, writing
from .io.inputs import input_dir, need_disk

log = logging.getLogger("hpc_vdm.prepare")
SHORTCUTS = {"source": "data.source_dir", "suite": "data.suite", "sim_set": "data.set", "out": "data.store"}
BLOCK_MAPS = 64  # maps per validation block: bounded memory on 15000-map files


def open_inputs(cfg: RunConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Memory-map every field and load params; check their shapes and agreement (no data read yet)."""
    d = cfg.data
    if len(set(d.fields)) != len(d.fields) or not d.fields:
        raise ValueError(f"data.fields must be distinct field names, got {d.fields}")
    for role, name in (("condition", d.condition), ("target", d.target)):
        if (name or role == "target") and name not in d.fields:  # condition "": maps alone (an emulator)
            raise ValueError(f"data.{role}={name!r} is not among data.fields={d.fields}")
    maps = {f: camels.open_maps(d.source_dir, f, d.suite, d.set) for f in d.fields}
    if d.pool > 1:  # average-pooled lazily, block by block (surface densities keep their unit)
        maps = {f: Pooled(m, d.pool) for f, m in maps.items()}
    params = camels.load_params(d.source_dir, d.suite, d.set)
    ref_name = d.fields[0]
    for name, arr in maps.items():
        if arr.dtype != np.float32:
            raise ValueError(f"{name}: expected float32 maps as in CMD, got dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[1] != arr.shape[2] or arr.shape[1] < 2:
            raise ValueError(f"{name}: expected maps of shape (N, H, H), got {arr.shape}")
        if arr.shape != maps[ref_name].shape:
            if arr.shape[0] != maps[ref_name].shape[0]:
                raise ValueError(f"fields have different lengths: {ref_name} has {maps[ref_name].shape[0]} maps, "
                                 f"{name} has {arr.shape[0]}")
            raise ValueError(f"fields have different map shapes: {ref_name} {maps[ref_name].shape[1:]}, "
                             f"{name} {arr.shape[1:]}")
    n = maps[ref_name].shape[0]
    if n == 0 or n % d.maps_per_sim:
        raise ValueError(f"{n} maps is not a positive multiple of data.maps_per_sim={d.maps_per_sim}")
    if params.shape[0] != n // d.maps_per_sim:
        raise ValueError(f"params has {params.shape[0]} rows but the maps hold {n} / {d.maps_per_sim} = "
                         f"{n // d.maps_per_sim} simulations")
    if not np.isfinite(params).all():
        raise ValueError("params contain NaN or inf")
    return maps, params


def check_and_measure(cfg: RunConfig, maps: dict[str, np.ndarray], train_sims: list[int], progress: bool = True) -> dict:
    """Read every map once: reject NaN/inf, negative or non-log-transformable values; train-only statistics."""
    d = cfg.data
    n = next(iter(maps.values())).shape[0]
    train_map = np.zeros(n, dtype=bool)
    for s in train_sims:
        train_map[s * d.maps_per_sim:(s + 1) * d.maps_per_sim] = True
    stats = {}
    for name, arr in maps.items():
        offset = float(d.log_offsets.get(name, 1.0))
        moments = RunningMoments()
        for s in tqdm(range(0, n, BLOCK_MAPS), desc=f"check {name}", unit="block", leave=False, disable=not progress):
            block = np.asarray(arr[s:s + BLOCK_MAPS])
            if not np.isfinite(block).all():
                bad = s + int(np.argwhere(~np.isfinite(block))[0, 0])
                raise ValueError(f"{name}: NaN or inf in map {bad}")
            if (block < 0).any():
                bad = s + int(np.argwhere(block < 0)[0, 0])
                raise ValueError(f"{name}: negative mass {float(block.min()):.4g} in map {bad}")
            if offset <= 0 and (block <= -offset).any():
                bad = s + int(np.argwhere(block <= -offset)[0, 0])
                raise ValueError(f"{name}: {int((block <= -offset).sum())} pixels <= 0 from map {bad} on cannot take "
                                 f"log10(x + {offset}); set data.log_offsets.{name} > 0")
            sel = train_map[s:s + BLOCK_MAPS]
            if sel.any():
                moments.add(log_transform(block[sel], offset))
        if not moments.std > 0:  # e.g. a stellar field that is zero everywhere: nothing to condition on
            raise ValueError(f"{name}: log10(x + {offset}) is constant ({moments.mean:.6g}) over all "
                             f"{int(train_map.sum())} training maps; the field holds no information")
        stats[name] = {"transform": "log10(x + offset)", "offset": offset, "mean": moments.mean,
                       "std": moments.std, "n_pixels": moments.n}
        log.info("%s: log10(x + %g) over %d training maps: mean %.6f std %.6f", name, offset,
                 int(train_map.sum()), moments.mean, moments.std)
    return stats


def prepare(cfg: RunConfig, *, overwrite: bool = False, progress: bool = True, force: bool = False) -> Path:
    """Check the CMD files completely, then write ``data.store``: only a new path, or with ``overwrite`` a maps
    store that is not among the inputs, and only while holding its lock (one writer per output)."""
    out = Path(cfg.data.store)
    check_output(out, MAPS, inputs=[cfg.data.source_dir], overwrite=overwrite)
    check_unlocked(out)  # another command writing it is named now, not after the inputs were read
    checked = check_inputs(cfg, out, progress, force)  # every map read once before anything is written
    with writing(out), acquire_lock(out):
        check_output(out, MAPS, inputs=[cfg.data.source_dir], overwrite=overwrite)  # another writer finished?
        return _write(cfg, out, checked, overwrite, progress)


def check_inputs(cfg: RunConfig, out: Path, progress: bool, force: bool) -> dict:
    """The CMD files opened, split and read once (finite, non-negative, log-transformable); the disk checked."""
    d = cfg.data
    if d.maps_per_shard % d.maps_per_chunk:
        raise ValueError(f"data.maps_per_shard={d.maps_per_shard} must be a multiple of data.maps_per_chunk="
                         f"{d.maps_per_chunk}")
    input_dir(d.source_dir, "CMD source folder (data.source_dir)")
    maps, params = open_inputs(cfg)
    n, h, _ = next(iter(maps.values())).shape
    n_sims = n // d.maps_per_sim
    splits = split_by_simulation(n_sims, d.split_fractions, d.split_seed)
    if not splits["train"]:
        raise ValueError(f"no training simulation among {n_sims} with fractions {d.split_fractions}")
    need_disk(4.0 * n * h * h * len(maps), out.parent, f"the maps store {str(out)!r} ({len(maps)} fields x {n} maps "
              f"of {h}^2 float32, before compression)", force=force)
    stats = check_and_measure(cfg, maps, splits["train"], progress)
    return {"maps": maps, "params": params, "splits": splits, "stats": stats}


def _write(cfg: RunConfig, out: Path, checked: dict, overwrite: bool, progress: bool) -> Path:
    d = cfg.data
    maps, params, splits, stats = (checked[k] for k in ("maps", "params", "splits", "stats"))
    n, h, _ = next(iter(maps.values())).shape
    n_sims = n // d.maps_per_sim
    names = list(camels.PARAM_NAMES[:params.shape[1]]) + [f"param_{i}" for i in range(6, params.shape[1])]
    attrs = {
        "suite": d.suite, "set": d.set, "fields": list(d.fields), "units": camels.MAP_UNITS,
        "box_size_mpc_h": d.box_mpc_h, "pixel_size_mpc_h": d.box_mpc_h / h, "pool": d.pool, "slab_thickness_mpc_h": d.slab_mpc_h,
        "map_pixels": h, "maps_per_sim": d.maps_per_sim, "n_sims": n_sims, "param_names": names,
        "splits": splits, "split_seed": d.split_seed, "split_fractions": list(d.split_fractions),
        "stats": stats, "source_dir": str(Path(d.source_dir).resolve()),
    }
    bar = tqdm(total=n * len(maps), desc=f"write {out.name}", unit="map", disable=not progress)
    path = write_store(out, maps, params, attrs, maps_per_chunk=d.maps_per_chunk, maps_per_shard=d.maps_per_shard,
                       overwrite=overwrite, progress=bar.update)
    bar.close()
    log.info("wrote %s: %d maps of %d^2 from %d simulations (train %d, val %d, test %d)", path, n, h, n_sims,
             *(len(splits[s]) for s in ("train", "val", "test")))
    return path


def _main(argv) -> int:
    p = cli.parser("python -m hpc_vdm.prepare", __doc__.splitlines()[0])
    p.add_argument("--source", help="folder with the CMD files (data.source_dir)")
    p.add_argument("--suite", help="suite (data.suite)")
    p.add_argument("--sim-set", help="set (data.set)")
    p.add_argument("--out", help="output store (data.store)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing maps store (never anything else) once the new one is complete")
    p.add_argument("--force", action="store_true", help="write even when the store looks larger than the free disk")
    args = p.parse_args(argv)
    cli.setup_logging()
    prepare(cli.resolve(args, SHORTCUTS), overwrite=args.overwrite, force=args.force)
    return 0


def main(argv=None) -> int:
    return cli.run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
