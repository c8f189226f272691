"""``python -m hpc_vdm.baselines``: dm2gal against the paper's HOD benchmark on the test cube.

    python -m hpc_vdm.baselines --config configs/dm2gal.yaml --model runs/dm2gal/export/model.pt \\
        --catalogue data/cmd/FOF_Subfind_IllustrisTNG_LH_z=0.00/fof_subhalo_tab_0000.hdf5 --out runs/dm2gal/compare

Writes ``metrics.json`` (P(k), B(theta), PDF of truth, dm2gal and HOD; their errors against the truth) and
``fig1.png`` (the paper's Fig. 1) into ``--out``; see :mod:`hpc_vdm.baselines.compare`.
"""
from __future__ import annotations

import json
import logging

from .. import cli, dist
from .compare import compare

log = logging.getLogger("hpc_vdm.baselines")

SHORTCUTS = {"model": "trained.model", "store": "data.store", "catalogue": "baselines.catalogue",
             "catalogue_dmo": "baselines.catalogue_dmo", "out": "baselines.out", "mask": "paint.mask",
             "device": "trained.device", "which": "trained.which"}


def run(cfg, overwrite: bool = False) -> dict:
    device = dist.pick_device(dist.detect(), cfg.trained.device, "trained.device")
    result = compare(cfg, device, overwrite=overwrite)
    log.info("test cube %d^3: %s", result["test_cube_voxels"], json.dumps(result["scores"]))
    return result


main = cli.command("python -m hpc_vdm.baselines", __doc__.splitlines()[0], SHORTCUTS, run,
                   overwrite="metrics.json and fig1.png in --out")
