"""hpc_vdm: conditional variational diffusion models for dark matter under galaxies.

Install through the Makefile (``make venv``): it installs ``torch==2.13.0`` first so that
no requirement below can swap it for a multi-GB CUDA build on a CPU machine.
"""
from setuptools import find_packages, setup

setup(
    name="hpc_vdm",
    version="0.1.0",
    description="Conditional VDMs stars -> dark matter on CAMELS maps, DeepSpeed/SLURM, Zarr, tiling, spectra",
    python_requires=">=3.10",
    packages=find_packages(include=["hpc_vdm", "hpc_vdm.*", "tiling", "tiling.*"]),
    include_package_data=True,
    package_data={"hpc_vdm": ["inference/presets/*.yaml"]},  # volume presets, read at run time
    install_requires=[
        "torch==2.13.0",  # pinned: the CPU wheel from disk here; a CUDA build on GPU clusters
        "deepspeed>=0.16",
        "mpi4py>=4.0",
        "h5py>=3.10",
        "numpy>=1.26",
        "scipy>=1.11",
        "zarr>=3.1",
        "numcodecs>=0.15",
        "dask[array]>=2024.8",
        "pyfftw>=0.14",
        "submitit>=1.5",
        "colossus>=1.3",
        "numba>=0.60",  # the mock's compiled kernels (CIC, PM, FoF, painting); numpy reference kept
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "pyyaml>=6.0",
        "tensorboard>=2.15",  # the trainer's event files (torch.utils.tensorboard)
        "pyro-ppl>=1.9",  # NUTS on the emulator's bound (python -m hpc_vdm.infer); keeps the installed torch
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "distributed>=2024.8", "dask-mpi>=2022.4"],
        "mpi": ["mpich"],  # an MPI library as a wheel, for machines without a system MPI
        "distributed": ["distributed>=2024.8", "dask-mpi>=2022.4"],
    },
    entry_points={"console_scripts": ["hpc-vdm=hpc_vdm.__main__:main"]},
)
