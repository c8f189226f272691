"""Posterior samples of two parameters by NUTS on the differentiable bound, with the noise held fixed.

The potential is the grid's −ln L(θ) = Σ_j L_j(x | θ) (:func:`.grid.bound_terms`, the same fixed ε_{j,d}), so
the chain samples exactly the surrogate posterior the grid maps, over the whole prior (no box). Diffusion-HMC
(Mudur+24) redrew the noise at every call, which makes the potential stochastic; here it is deterministic,
so HMC is exact for it. The prior is uniform over the box [lo, hi]; the chain runs on u ∈ R² with
θ = lo + (hi − lo) sigmoid(u), the potential carrying the Jacobian. The sampler is pyro's NUTS (dual-averaging
step size, diagonal mass matrix adapted during warm-up), seeded per chain.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def nuts(neg_log_like: Callable[[torch.Tensor], torch.Tensor], lo, hi, init, *, n_samples: int, warmup: int,
         seed: int, max_depth: int = 6) -> dict:
    """Samples θ (n_samples, 2) of p(θ) ∝ exp(−neg_log_like(θ)) on the box [lo, hi] from ``init`` (2,).

    ``neg_log_like(θ (1, 2) fp64)`` -> a scalar tensor differentiable in θ. Returns samples, the acceptance
    rate, the adapted step size and the effective sample size per parameter; trajectories of at most
    2^max_depth − 1 leapfrog steps (a 2D posterior needs few)."""
    try:
        import pyro
        from pyro.infer import MCMC, NUTS
        from pyro.ops.stats import effective_sample_size
    except ImportError:  # pragma: no cover - pyro-ppl is a dependency (setup.py)
        raise ValueError("MCMC needs pyro-ppl (pip install pyro-ppl, which keeps the installed torch); set "
                         "infer.mcmc_maps=0 to skip it") from None
    lo_t, hi_t = torch.as_tensor(lo, dtype=torch.float64), torch.as_tensor(hi, dtype=torch.float64)
    span = hi_t - lo_t
    frac = (torch.as_tensor(init, dtype=torch.float64) - lo_t) / span
    if not bool(((frac > 0) & (frac < 1)).all()):
        raise ValueError(f"the chain's start {list(init)} lies outside the prior box {list(lo)} .. {list(hi)}")

    def potential(params: dict) -> torch.Tensor:
        u = params["u"]
        theta = lo_t + span * torch.sigmoid(u)
        log_jac = (torch.log(span) + torch.nn.functional.logsigmoid(u) + torch.nn.functional.logsigmoid(-u)).sum()
        return neg_log_like(theta[None]).reshape(()) - log_jac

    pyro.set_rng_seed(seed)
    kernel = NUTS(potential_fn=potential, adapt_step_size=True, adapt_mass_matrix=True, full_mass=False,
                  max_tree_depth=max_depth)
    chain = MCMC(kernel, num_samples=n_samples, warmup_steps=warmup,
                 initial_params={"u": torch.logit(frac)}, disable_progbar=True)
    chain.run()
    u = chain.get_samples()["u"].double()                                                 # (S, 2)
    theta = (lo_t + span * torch.sigmoid(u)).numpy()
    ess = effective_sample_size(torch.as_tensor(theta)[None], chain_dim=0, sample_dim=1)
    diag = chain.diagnostics()
    return {"samples": theta, "ess": [float(v) for v in ess], "step_size": float(kernel.step_size),
            "divergences": int(len(diag.get("divergences", {}).get("chain 0", []))),
            "acceptance": float(diag.get("acceptance rate", {}).get("chain 0", np.nan))}
