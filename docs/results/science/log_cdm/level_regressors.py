"""Which regressors in the parameters does a map's mean level follow, beyond the linear transfer? (#24, item 3.)

Before training anything: each map's mean residual ℓ = ⟨x − μ_LT(c)⟩ over its pixels (x the normalised log target,
μ_LT the linear-transfer prior's mean fitted by the family on the science store's training maps) against designs
in the normalised parameters θ, fitted by least squares on the training split's maps and scored

* leave-one-simulation-out over the training simulations (every map of the left-out simulation predicted), and
* on the validation and test simulations (one fit on all training maps),

against the floor that no function of θ can pass, the rms of ℓ about its own simulation's mean (the slabs and
projections of one simulation share θ). Errors are in dex (× the target's normalisation std).

    python docs/results/science/log_cdm/level_regressors.py --config configs/science.yaml \
        --out docs/results/science/log_cdm/level_regressors.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import zarr

from hpc_vdm.config import load_config
from hpc_vdm.data import camels
from hpc_vdm.data.dataset import MapsDataset
from hpc_vdm.families import make_family
from hpc_vdm.models.prior import CorrelatedTransferPrior, LinearTransferPrior


def residual_levels(family, prior, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n,) ℓ of every map of ``split``, (n, P) their normalised θ, (n,) their simulation."""
    d = family.cfg.data
    ds = MapsDataset(d.store, split, condition=d.condition, target=d.target)
    level, theta, sim = [], [], []
    with torch.no_grad():
        for j in range(len(ds)):
            cond, x, params, index = family.model_inputs(ds, j, "cpu")
            level.append(float((x.double() - LinearTransferPrior.mean(prior, cond).double()).mean()))
            theta.append(params[0].double().numpy())
            sim.append(index // ds.maps_per_sim)
    return np.array(level), np.array(theta), np.array(sim)


def designs(names) -> dict:
    """name -> θ (n, P) -> (n, columns) regressors; the two the prior offers are its own
    (:meth:`~hpc_vdm.models.prior.CorrelatedTransferPrior.regressors`)."""
    i = camels.cdm_level_regressor(names)[0]
    linear, log_cdm = (CorrelatedTransferPrior(n_params=len(names), level_log=spec)
                       for spec in (None, camels.cdm_level_regressor(names)))
    prior = lambda p: lambda t: p.regressors(torch.from_numpy(t), len(t)).double().numpy()  # noqa: E731
    return {
        "constant": lambda t: np.ones((len(t), 1)),
        "linear (prior_level=linear)": prior(linear),
        "linear + Omega_m^2": lambda t: np.c_[np.ones(len(t)), t, t[:, i] ** 2],
        "linear + log10(Omega_m - Omega_b) (prior_level=log_cdm)": prior(log_cdm),
        "linear + every square and product": lambda t: np.c_[
            np.ones(len(t)), t, *[t[:, a] * t[:, b] for a in range(t.shape[1]) for b in range(a, t.shape[1])]],
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/science.yaml")
    ap.add_argument("--set", action="append", default=[], help="config overrides, as everywhere")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.set)
    family = make_family(cfg)
    prior = family.build().score.prior
    std_dex = float(dict(zarr.open_group(cfg.data.store, mode="r").attrs)["stats"][cfg.data.target]["std"])
    level, theta, sim = residual_levels(family, prior, "train")
    held = [residual_levels(family, prior, s) for s in ("val", "test")]
    level_h, theta_h = np.concatenate([h[0] for h in held]), np.concatenate([h[1] for h in held])
    floor = np.sqrt(np.mean([level[sim == s].var() for s in np.unique(sim)]))
    rows = {}
    for name, design in designs(cfg.model.params).items():
        x = design(theta)
        loso = np.empty_like(level)
        for s in np.unique(sim):
            out = sim == s
            loso[out] = level[out] - x[out] @ np.linalg.lstsq(x[~out], level[~out], rcond=None)[0]
        coef = np.linalg.lstsq(x, level, rcond=None)[0]
        rows[name] = {"regressors": x.shape[1],
                      "in_sample_dex": std_dex * float((level - x @ coef).std()),
                      "leave_one_sim_out_dex": std_dex * float(np.sqrt((loso ** 2).mean())),
                      "held_out_dex": std_dex * float(np.sqrt(((level_h - design(theta_h) @ coef) ** 2).mean()))}
        print(f"{name:58s} {x.shape[1]:2d}  " + "  ".join(f"{v:.4f}" for k, v in rows[name].items() if k != "regressors"))
    result = {"store": cfg.data.store, "target_std_dex": std_dex, "train_maps": len(level),
              "train_sims": int(len(np.unique(sim))), "held_out_maps": len(level_h),
              "within_sim_floor_dex": std_dex * float(floor), "designs": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
