"""``python -m hpc_vdm``: list the commands; ``python -m hpc_vdm CMD ...`` runs one (as ``python -m hpc_vdm.CMD``)."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "mock": "particle-mesh mock CAMELS maps in the real CMD file layout",
    "prepare": "CMD .npy maps -> maps.zarr (splits by simulation, train-only statistics)",
    "train": "train a model family (model.kind: vdm, regressor, dm2gal) with DeepSpeed (1 process, torchrun, srun, mpiexec)",
    "sweep": "submitit job arrays of --set axes (grid, lists, random/LHS draws, seeds); status, collect, requeue",
    "export": "consolidate a checkpoint into run_dir/export/model.pt (no DeepSpeed needed to load it)",
    "sample": "draws of held-out maps from any map model: mean, std, z-score, P(k)/r(k) summary, Fig. 1",
    "tile": "any map model over big volumes (camels, tng100, tng300) by periodic tiling, slab by slab; resumable",
    "evaluate": "report of any map model on held-out maps: Fig. 1/2, spectra in k bands, calibration, 1P, suites",
    "spectra": "P(k), cross P(k), r(k) of maps, mosaics and out-of-core volumes (dask + pyFFTW)",
    "prepare_volume": "3D grids (CMD layout or TNG npy/HDF5) -> dm2gal volume store (train/val/test sub-cubes)",
    "paint": "dm2gal: paint stellar mass over whole 3D volumes, dense and periodic, out of core; resumable",
    "baselines": "dm2gal vs the paper's HOD on the test cube: P(k), bispectrum, PDF, Fig. 1",
    "infer": "parameters of maps from an emulator's bound on a grid (common random numbers), NUTS, calibration, "
             "P(k) baseline; ranks split the grid; resumable",
}
# a command that is a package runs its cli module
MODULES = {"mock": "hpc_vdm.mock.cli", "spectra": "hpc_vdm.spectra.cli", "evaluate": "hpc_vdm.evaluate.cli",
           "baselines": "hpc_vdm.baselines.cli"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: python -m hpc_vdm.<command> [options]   (or: hpc-vdm <command> [options])\n\ncommands:")
        for name, doc in COMMANDS.items():
            print(f"  {name:<15} {doc}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = MODULES.get(argv[0], f"hpc_vdm.{argv[0]}")
    return importlib.import_module(module).main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
