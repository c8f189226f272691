"""Output kinds, recognised by their markers, and the check every command makes before it writes.

:func:`check_output` refuses a path that is an input (or inside or around one), holds something that is
not an output of the same kind (by its ``format`` marker, :func:`identify`), or exists without
``--overwrite``.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from .atomic import atomic_write, read_json as _json

# -- output kinds, recognised by their markers ------------------------------------------------------------
# Every output the project writes carries one of these markers: a Zarr store's ``format`` attr, a JSON
# file's ``format`` key (an .npz's ``format`` array), the export's ``format`` entry, a PNG text chunk, a run
# dir's config.json, an evaluation folder's metrics.json, the mock's record of the files it wrote.
MAPS, TILE, SAMPLES, SUMMARY = "maps store", "tile store", "samples store", "sample summary"
SPECTRA, MODEL, RUN, FIGURE = "spectra file", "model file", "run dir", "figure"
PAINT, VOLUME, METRICS, REPORT = "paint store", "volume store", "metrics file", "report folder"
MOCK = "mock record"
INFER, INFER_SUMMARY = "infer store", "infer summary"
FIGURE_METADATA = {"Software": "hpc_vdm figure"}  # savefig(..., metadata=FIGURE_METADATA): a PNG tEXt chunk
FORMATS = {"hpc_vdm.maps/1": MAPS, "hpc_vdm.tile/1": TILE, "hpc_vdm.samples/1": SAMPLES,
           "hpc_vdm.sample_summary/1": SUMMARY, "hpc_vdm.spectra/1": SPECTRA, "hpc_vdm.paint/1": PAINT,
           "hpc_vdm.volume/1": VOLUME, "hpc_vdm.metrics/1": METRICS, "hpc_vdm.export/2": MODEL,
           "hpc_vdm.mock/1": MOCK, "hpc_vdm.infer/1": INFER, "hpc_vdm.infer_summary/1": INFER_SUMMARY}
STORES = (MAPS, TILE, SAMPLES, PAINT, VOLUME, INFER)
MAPS_KEYS = {"fields", "splits", "stats", "maps_per_sim"}  # maps stores written before the format marker


def marker(kind: str) -> str:
    """The ``format`` value that marks an output of ``kind``."""
    return next(k for k, v in FORMATS.items() if v == kind)


def _torch_format(path: Path) -> str | None:
    """The ``format`` string inside a torch zip file written by hpc_vdm (without loading it)."""
    try:
        with zipfile.ZipFile(path) as z:
            pkl = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
            data = z.read(pkl) if pkl else b""
    except (OSError, zipfile.BadZipFile):
        return None
    found = re.search(rb"hpc_vdm\.export/\d+", data)
    return found.group().decode() if found else None


def identify(path: str | Path) -> str | None:
    """The kind of hpc_vdm output at ``path`` by its marker, or None for anything else."""
    path = Path(path)
    if path.is_dir():
        meta = _json(path / "zarr.json")
        if isinstance(meta, dict):
            attrs = meta.get("attributes", {})
            kind = FORMATS.get(attrs.get("format"))
            return kind if kind in STORES else MAPS if MAPS_KEYS <= attrs.keys() else None
        metrics = _json(path / "metrics.json")
        if isinstance(metrics, dict) and FORMATS.get(metrics.get("format")) == METRICS:
            return REPORT
        cfg = _json(path / "config.json")
        if isinstance(cfg, dict) and {"data", "model", "train"} <= cfg.keys():
            return RUN
        return RUN if (path / "checkpoints" / "latest").is_file() else None
    if not path.is_file():
        return None
    if path.suffix == ".json":
        doc = _json(path)
        return FORMATS.get(doc.get("format")) if isinstance(doc, dict) else None
    if path.suffix == ".npz":
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as f:
                return FORMATS.get(str(f["format"])) if "format" in f.files else None
        except (OSError, ValueError, zipfile.BadZipFile):
            return None
    if path.suffix == ".png":
        with open(path, "rb") as f:
            head = f.read(4096)
        ours = head.startswith(b"\x89PNG\r\n\x1a\n") and FIGURE_METADATA["Software"].encode() in head
        return FIGURE if ours else None
    return MODEL if _torch_format(path) else None


def save_figure(fig, png: str | Path, **kw) -> Path:
    """``fig.savefig`` to ``png`` atomically, marked as an hpc_vdm figure."""
    return atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", metadata=FIGURE_METADATA, **kw))


def _what(path: Path, kind: str | None) -> str:
    if kind is not None:
        return f"an hpc_vdm {kind}"
    if path.is_dir():
        return "a folder that is not an hpc_vdm output" if any(path.iterdir()) else "an empty folder"
    return "a file that is not an hpc_vdm output" if path.is_file() else "not a plain file or folder"


def _resolved(path: str | Path, what: str) -> Path:
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as e:  # a symlink loop (RuntimeError before Python 3.13, OSError after)
        raise ValueError(f"{what} {str(path)!r} is a symlink loop or cannot be resolved ({e})") from None


def check_disjoint(path: str | Path, inputs) -> None:
    """``path`` is not one of ``inputs``, inside one, or around one (symlinks resolved)."""
    out = _resolved(path, "output")
    for given in inputs:
        if given is None:
            continue
        src = _resolved(given, "input")
        if out == src or src in out.parents or out in src.parents:
            how = "is" if out == src else "lies inside" if src in out.parents else "contains"
            raise ValueError(f"refusing to write {str(path)!r}: it {how} the input {str(given)!r}; choose an "
                             f"output outside the inputs (nothing was written)")


def check_folder(path: str | Path, option: str = "--out") -> None:
    """An output folder that receives several files: absent, or a folder (not a file, a loop or a dangling link)."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not path.is_dir():
        how = "a dangling or looping symlink" if path.is_symlink() and not path.exists() else "a file"
        raise FileExistsError(f"{option} {str(path)!r} exists and is {how}, not a folder; choose another {option} "
                              f"(nothing was written)")
    for parent in Path(path).absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise FileExistsError(f"{option} {str(path)!r} lies under {str(parent)!r}, which is a file (nothing was "
                                  f"written)")


def check_output(path: str | Path, kind: str, *, inputs=(), overwrite: bool = False, reuse: bool = False) -> bool:
    """Before anything is written: may ``path`` receive an output of ``kind``? True if it exists.

    Refused: a path that is, contains or lies inside one of ``inputs`` (symlinks resolved); an existing
    path that is not an output of ``kind`` by its marker; one of ``kind`` without ``overwrite`` (or
    ``reuse``, for outputs that are resumed rather than replaced: run dirs, tile stores).
    """
    path = Path(path)
    check_disjoint(path, inputs)
    for parent in path.absolute().parents:
        if parent.is_file():
            raise FileExistsError(f"cannot write {str(path)!r}: {str(parent)!r} is a file, not a folder (nothing was "
                                  f"written)")
    if not (path.exists() or path.is_symlink()):
        return False
    found = identify(path)
    if reuse and found is None and path.is_dir() and not any(path.iterdir()):
        return False
    if found != kind:
        raise FileExistsError(f"{str(path)!r} exists and is {_what(path, found)}, not an hpc_vdm {kind}; it is "
                              f"never replaced: choose another output or remove it yourself (nothing was written)")
    if not (overwrite or reuse):
        raise FileExistsError(f"{str(path)!r} exists (an hpc_vdm {kind}); pass --overwrite to replace it or "
                              f"choose another output (nothing was written)")
    return True
