"""Which files of a mock output folder the mock wrote: a record beside them, so ``--overwrite`` never
replaces a file of the user's.

``out_dir/.hpc_vdm_mock.json`` lists, per output name, its size (files) or its file names (the
catalogue folder). An existing output may be replaced only with ``--overwrite`` and only if the record
says the mock wrote it and it is unchanged since; anything else is refused before a simulation runs.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_write_text

RECORD = ".hpc_vdm_mock.json"
FORMAT = "hpc_vdm.mock/1"


def _describe(path: Path):
    if path.is_dir():
        return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def read_record(out_dir: Path) -> dict:
    path = Path(out_dir) / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record.get("files", {}) if record.get("format") == FORMAT else {}


def check_outputs(paths: dict[str, Path], out_dir: Path, overwrite: bool) -> None:
    """Refuse (naming them) existing outputs without ``overwrite``, and with it any the mock did not write."""
    existing = [p for p in paths.values() if p.exists()]
    if not existing:
        return
    if not overwrite:
        raise FileExistsError(f"output exists: {[str(p) for p in existing]}; pass --overwrite to replace it "
                              f"(nothing was written)")
    record = read_record(out_dir)
    foreign = [str(p) for p in existing if record.get(p.name) != _describe(p)]
    if foreign:
        raise FileExistsError(f"{foreign} exist but are not files this mock wrote (or changed since; see "
                              f"{RECORD}); --overwrite never replaces them: move them or choose another --out "
                              f"(nothing was written)")


def write_record(paths: dict[str, Path], out_dir: Path) -> None:
    """Add the outputs just moved into place to the folder's record."""
    record = read_record(out_dir)
    record.update({p.name: _describe(p) for p in paths.values() if p.exists()})
    atomic_write_text(Path(out_dir) / RECORD, json.dumps({"format": FORMAT, "files": record}, indent=1) + "\n")
