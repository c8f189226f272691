"""``python -m hpc_vdm.prepare_volume``: 3D grids -> the dm2gal volume store (train/val/test sub-cubes, stats).

    python -m hpc_vdm.prepare_volume --config configs/dm2gal.yaml                 # CMD-layout mock grids
    python -m hpc_vdm.prepare_volume --set volume.grids='{dm: dmo.h5:DM, subhalo: sub.npy}' \\
        --set volume.box_mpc_h=75 --set volume.grid_units=mass --store data/tng100_dmo.zarr   # TNG-style

The store is ``data.store`` (what ``model.kind=dm2gal`` trains on and ``python -m hpc_vdm.paint --volume``
paints); see :mod:`hpc_vdm.data.volume` for its layout. A volume without a stellar grid is a
gravity-only volume to paint. Nothing is written unless every grid reads and agrees.
"""
from __future__ import annotations

from pathlib import Path

import logging

from . import cli
from .io import VOLUME, acquire_lock, check_output, writing
from .data.volume import check_volume, prepare_volume

log = logging.getLogger("hpc_vdm.prepare_volume")

SHORTCUTS = {"store": "data.store", "source_dir": "volume.source_dir", "grid_n": "volume.grid_n",
             "sim": "volume.sim", "box_mpc_h": "volume.box_mpc_h"}


def run(cfg, overwrite: bool = False, force: bool = False):
    """Check every grid, the regions, the output and the sizes; then write the store under its lock."""
    target = Path(cfg.data.store)
    checked = check_volume(cfg.volume, cfg.data, target, overwrite=overwrite, force=force)
    with writing(target), acquire_lock(target):
        check_output(target, VOLUME, inputs=[], overwrite=overwrite)  # another writer finished meanwhile?
        out = prepare_volume(cfg.volume, cfg.data, target, overwrite=overwrite, checked=checked)
    log.info("wrote %s", out)
    return out


main = cli.command("python -m hpc_vdm.prepare_volume", __doc__.splitlines()[0], SHORTCUTS, run,
                   flags={"overwrite": "replace an existing volume store (never anything else) once the new one is "
                                       "complete",
                          "force": "write even when the volume looks larger than this machine's memory or disk"})


if __name__ == "__main__":
    raise SystemExit(main())
