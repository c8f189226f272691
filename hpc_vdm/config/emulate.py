"""The config sections of the field emulator and of parameter inference from its bound (Mudur+23).

``model.emulator`` holds the emulator family's options; ``infer`` is ``python -m hpc_vdm.infer``: the bound's
terms on a parameter grid with common random numbers, MCMC on the bound, calibration and the P(k) baseline.
"""
from __future__ import annotations

from dataclasses import dataclass

from .schema import param

INFER_PARAMS = ("Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2")  # = data.camels.PARAM_NAMES


@dataclass
class EmulatorOptions:
    """The emulator family (``model.emulator``): a VDM without a map condition, conditioned on ``model.params``."""

    param_mlp: bool = param(True, "the normalised parameters reach the embedding every residual block receives "
                                  "through a 2-layer SiLU MLP (the paper's), not one linear map")
    val_sims: int = param(2, "validation simulations whose truths score val_chi2_r (0: no val_chi2_r)",
                          range=(0, None))
    val_samples: int = param(8, "fields generated per validation simulation for val_chi2_r", range=(1, None))


@dataclass
class InferConfig:
    """Parameters of input maps from an emulator's bound (``python -m hpc_vdm.infer``)."""

    store: str = param("", "maps store with the input maps ('' = the store the model was trained on)")
    split: str = param("test", "split the maps come from when infer.maps is []", choices=("val", "test", "train"))
    maps: list[int] = param([], "store indices of the input maps ([] = infer.n_maps spread over infer.split)")
    n_maps: int = param(1, "input maps from infer.split when infer.maps is []", range=(1, None))
    params: list[str] = param(["Omega_m", "sigma_8"], "the two parameters of the grid (the model must condition on "
                                                       "them)", choices=INFER_PARAMS)
    fixed: str = param("truth", "the model's other parameters: each map's truth (from the store) or the fiducial "
                                "point", choices=("truth", "fiducial"))
    grid: list[int] = param([50, 50], "grid points along each parameter")
    centre: str = param("truth", "centre of the grid box: each map's true parameters (the paper's), the point "
                                 "infer.centre_at, or coarse (a first grid of infer.coarse points over the prior, "
                                 "then the box around its posterior mean: no knowledge of the truth)",
                        choices=("truth", "given", "coarse"))
    centre_at: list[float] = param([], "with centre=given: the centre [p1, p2]")
    half_width: list[float] = param([0.1, 0.1], "half-width of the box around the centre, per parameter (clipped "
                                                "to the prior); with centre=coarse at least this or zoom_sigmas "
                                                "posterior sigmas")
    box: list[float] = param([], "an explicit box [lo1, hi1, lo2, hi2] (inside the prior) instead of a centre")
    coarse: list[int] = param([16, 16], "centre=coarse: points of the first grid over the prior")
    zoom_sigmas: float = param(5.0, "centre=coarse: the box spans the coarse posterior mean +- this many of its "
                                    "sigmas (or half_width if larger)", range=(0.5, None))
    times: int = param(8, "terms of the bound: diffusion times at the midpoints of infer.times equal slices of "
                          "[t_min, t_max]; each term is its slice's share of the bound (nats)", range=(1, 4096))
    t_min: float = param(0.0, "lower end of the times' range", range=(0.0, 1.0))
    t_max: float = param(1.0, "upper end of the times' range", range=(0.0, 1.0))
    noise_draws: int = param(1, "noise draws per time, averaged (the same for every grid point)", range=(1, 1024))
    terms: list[int] = param([], "the terms whose sum is the likelihood ([] = all: the bound's estimate over "
                                 "[t_min, t_max])")
    seed: int = param(0, "noise seed: eps of term j keyed by (seed, map, j, draw), the same for every grid point",
                      range=(0, 2**31 - 1))
    batch_size: int = param(50, "grid points per unit of work (one network call per term)", range=(1, None))
    mcmc_maps: int = param(0, "NUTS chains on the bound for the first this many maps (0: none)", range=(0, None))
    mcmc_samples: int = param(200, "NUTS samples per chain (after warm-up)", range=(1, None))
    mcmc_warmup: int = param(100, "NUTS warm-up steps (step size and mass matrix adapted)", range=(1, None))
    mcmc_depth: int = param(6, "NUTS's largest tree depth (at most 2^depth - 1 leapfrog steps per sample)",
                            range=(1, 12))
    cv_store: str = param("", "maps store of a CV set: the P(k) baseline (Gaussian likelihood, covariance from the "
                              "CV maps) beside the bound ('' = no baseline)")
    baseline_bins: int = param(10, "log-spaced P(k) bands of the baseline (up to k_Nyq)", range=(2, 256))
    out: str = param("out/infer.zarr", "output Zarr store (resumed when it exists with the same configuration); "
                                       "OUT.png (figure) and OUT.json (summary) beside it")
    progress: bool = param(True, "progress bar on rank 0")
