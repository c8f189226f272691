"""Safe outputs: atomic writes, output kinds by marker, one writer per output, clear errors on failed writes.

A reader (or a crash) never sees half a file or half a store: either the old output, the new one, or
nothing (:mod:`.atomic`)::

    atomic_write_text(run_dir / "config.json", text)
    atomic_save(obj, path)                     # torch.save
    with atomic_dir(out / "samples.zarr") as tmp:
        zarr.open_group(str(tmp), mode="w") ...  # moved to out/samples.zarr on success

Before a command writes, :func:`check_output` refuses a path that is an input, holds something that is
not an output of the same kind (recognised by its ``format`` marker, :func:`identify`; :mod:`.kinds`),
or exists without ``--overwrite``; outputs that cannot carry a marker are listed with their content hash
in their folder's record (:mod:`.records`); :func:`acquire_lock` makes the command the output's only
writer (:mod:`.locks`), and :func:`writing` turns a full, read-only or forbidden filesystem into one
clear error.
"""
from .atomic import (WRITE_ERRNOS, OutputError, atomic_dir, atomic_save, atomic_write, atomic_write_text, read_json,
                     sha256_file, temp_path, writing)
from .kinds import (FIGURE, FIGURE_METADATA, FORMATS, INFER, INFER_SUMMARY, MAPS, MAPS_KEYS, METRICS, MOCK, MODEL,
                    PAINT, REPORT, RUN, SAMPLES, SPECTRA, STORES, SUMMARY, TILE, VOLUME, check_disjoint, check_folder,
                    check_output, identify, marker, save_figure)
from .locks import Lock, acquire_lock, check_unlocked, holder_text, is_stale, lock_path, read_lock
from .records import check_recorded, write_record

__all__ = ["FIGURE", "FIGURE_METADATA", "FORMATS", "INFER", "INFER_SUMMARY", "Lock",
           "MAPS", "MAPS_KEYS", "METRICS", "MOCK", "MODEL",
           "OutputError", "PAINT", "REPORT", "RUN", "SAMPLES", "SPECTRA", "STORES", "SUMMARY", "TILE", "VOLUME",
           "WRITE_ERRNOS", "acquire_lock", "atomic_dir", "atomic_save", "atomic_write", "atomic_write_text",
           "check_disjoint", "check_folder", "check_output", "check_recorded", "check_unlocked", "holder_text",
           "identify", "is_stale", "lock_path", "marker", "read_json", "read_lock", "save_figure", "sha256_file",
           "temp_path", "write_record", "writing"]
