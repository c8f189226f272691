"""Ownership of outputs that cannot carry a marker themselves (``.npy`` maps, text tables, catalogue folders).

A folder's record ``.hpc_vdm_record.json`` (format marker ``hpc_vdm.mock/1``, kept for the mock's folders)
lists, per output name, the SHA-256 of its bytes (a file) or of each of its files (a folder). An existing
output may be replaced (``--overwrite``) only if the record lists it with exactly its content now: a file the
user wrote, or one of ours that the user edited in place, is never replaced.
"""
from __future__ import annotations

import json
from pathlib import Path

from .atomic import atomic_write_text, read_json, sha256_file
from .kinds import MOCK, marker

RECORD = ".hpc_vdm_mock.json"


def content(path: Path):
    """What the record keeps of an output: its SHA-256, or {relative name: SHA-256} of a folder's files."""
    if path.is_dir():
        return {str(p.relative_to(path)): sha256_file(p) for p in sorted(path.rglob("*")) if p.is_file()}
    return sha256_file(path)


def read_record(folder: Path) -> dict:
    doc = read_json(Path(folder) / RECORD)
    return doc.get("files", {}) if isinstance(doc, dict) and doc.get("format") == marker(MOCK) else {}


def check_recorded(paths: dict[str, Path], folder: Path, overwrite: bool) -> None:
    """Refuse (naming them) existing outputs without ``overwrite``, and with it any the record does not list
    with their present content."""
    existing = [p for p in paths.values() if p.exists() or p.is_symlink()]
    if not existing:
        return
    if not overwrite:
        raise FileExistsError(f"output exists: {[str(p) for p in existing]}; pass --overwrite to replace it "
                              f"(nothing was written)")
    record = read_record(folder)
    foreign = [str(p) for p in existing if p.is_symlink() or record.get(p.name) != content(p)]
    if foreign:
        raise FileExistsError(f"{foreign} exist but are not files this project wrote (or were changed since; see "
                              f"{RECORD}); --overwrite never replaces them: move them or choose another output "
                              f"(nothing was written)")


def write_record(paths: dict[str, Path], folder: Path) -> None:
    """Add the outputs just moved into place to the folder's record."""
    record = read_record(folder)
    record.update({p.name: content(p) for p in paths.values() if p.exists()})
    atomic_write_text(Path(folder) / RECORD, json.dumps({"format": marker(MOCK), "files": record}, indent=1) + "\n")
