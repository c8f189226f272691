"""dm2gal (Kasmanoff+20) as a task: 3D patches of [dm, subhalo] -> log stellar mass of the central voxel.

Training centres are the training-region voxels above ``dm2gal.min_log_mstar``, drawn with inverse-count
weights in ``weight_bins`` log bins and one of the 24 cube rotations (:mod:`hpc_vdm.data.patches`); the
loss is the MSE on the normalised log mass. Validation: ``val_mse`` on up to ``val_voxels`` centres of the
validation sub-cube, and ``val_pk_err`` = mean |P_pred(k)/P_true(k) - 1| of the stellar-mass field the
dense network paints over the whole validation cube (stars where ``dm2gal.mask`` puts them), as the
paper's validation hook rebuilt its validation cube.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ... import dist
from ...config import ConfigError, RunConfig
from ...data import patches, volume as vol
from ...data.dataset import spread
from ...models import DenseDM2Gal, build_dm2gal
from .base import Task

STORE_KEYS = ("format", "n", "box_mpc_h", "voxel_mpc_h", "fields", "regions", "stats", "min_log_mstar")


class Dm2galTask(Task):
    kind = "dm2gal"
    loss_terms = ("loss_mse",)
    val_columns = ("val_mse", "val_pk_err")
    better = {"val_mse": "lower", "val_pk_err": "lower"}
    compared_sections = ("model", "dm2gal")

    @classmethod
    def build_module(cls, cfg: RunConfig) -> torch.nn.Module:
        return build_dm2gal(cfg.dm2gal)

    def check(self) -> dict:
        d, data = self.cfg.dm2gal, self.cfg.data
        if (data.condition, data.target) != ("dm", "stellar"):
            raise ConfigError(f"model.kind=dm2gal reads the volume fields dm and subhalo and predicts stellar: set "
                              f"data.condition=dm and data.target=stellar (got {data.condition!r}, {data.target!r})")
        root = vol.open_volume(data.store, need=vol.FIELDS)
        attrs = dict(root.attrs)
        self.net_reach = build_dm2gal(d).reach    # the layers fit the patch (raises otherwise)
        n, reg = attrs["n"], attrs["regions"]
        if d.patch > n:
            raise ValueError(f"dm2gal.patch={d.patch} is larger than the volume ({n} voxels per side)")
        sub = root["subhalo"] if d.centres == "subhalo" else None
        self.train_centres, self.train_logs = patches.centres(root["stellar"], None, n, d.min_log_mstar,
                                                              exclude=[reg["test"], reg["val"]], subhalo=sub)
        self.val_centres, self.val_logs = patches.centres(root["stellar"], reg["val"], n, d.min_log_mstar,
                                                          subhalo=sub)
        for name, c in (("training", self.train_centres), ("validation", self.val_centres)):
            if len(c) == 0:
                raise ValueError(f"the {name} region of {data.store!r} has no voxel above dm2gal.min_log_mstar="
                                 f"{d.min_log_mstar}")
        self.store_attrs = {k: attrs[k] for k in STORE_KEYS} | {"patch": d.patch, "reach": list(self.net_reach)}
        return self.store_attrs

    def loaders(self, rank: int, world: int):
        d, data = self.cfg.dm2gal, self.cfg.data
        ds = patches.PatchDataset(data.store, self.train_centres, self.train_logs, d.patch, self.store_attrs["stats"])
        weights = patches.inverse_count_weights(self.train_logs, d.weight_bins)
        sampler = patches.WeightedSampler(weights, d.samples_per_epoch or len(ds), seed=data.seed, rank=rank,
                                          world=world, rotations=d.rotations)
        extra = {"multiprocessing_context": "spawn", "persistent_workers": True} if data.num_workers else {}
        loader = DataLoader(ds, batch_size=data.batch_size, sampler=sampler, num_workers=data.num_workers, **extra)
        return sampler, loader

    def losses(self, module, batch, device):
        x, y = batch["input"].to(device), batch["target"].to(device)          # (B, 2, P, P, P), (B, 1)
        pred = module(x)                                                        # (B, 1)
        return {"loss_mse": (pred.float() - y.float()).pow(2).mean(1)}, {}

    @torch.no_grad()
    def validate(self, module, *, rank: int, world: int, device) -> dict:
        d, stats = self.cfg.dm2gal, self.store_attrs["stats"]
        module.eval()
        ds = patches.PatchDataset(self.cfg.data.store, self.val_centres, self.val_logs, d.patch, stats)
        picked = spread(len(ds), min(d.val_voxels, len(ds)))
        sums = np.zeros(3)
        for pos in range(rank, len(picked), world):
            item = ds[picked[pos]]
            pred = module(item["input"][None].to(device)).float().cpu()
            sums[:2] += [(pred[0, 0] - item["target"][0]).pow(2).item(), 1]
        if rank == 0:
            sums[2] = self.val_pk_err(module, ds.inputs(), device)
        total = dist.all_reduce(sums, device, op="sum")
        module.train()
        return {"val_mse": total[0] / max(total[1], 1.0), "val_pk_err": total[2]}

    def val_pk_err(self, module, inputs: np.ndarray, device) -> float:
        """Mean |P_pred/P_true - 1| of the densely painted validation cube."""
        from ...inference.paint import masked_stellar, paint_region
        from ...spectra import power_spectrum

        d, a = self.cfg.dm2gal, self.store_attrs
        lo, hi = a["regions"]["val"]
        dense = DenseDM2Gal(module)
        pred = paint_region(dense, inputs, lo, hi - lo, device)                        # (h, h, h) normalised
        root = vol.open_volume(self.cfg.data.store, need=vol.FIELDS)
        truth = np.asarray(root["stellar"][lo:hi, lo:hi, lo:hi], dtype=np.float64)
        subhalo = np.asarray(root["subhalo"][lo:hi, lo:hi, lo:hi])
        mass = masked_stellar(vol.denormalise(pred, a["stats"]["stellar"]), d.mask, subhalo=subhalo, truth=truth,
                              min_log_mstar=d.min_log_mstar, cut=d.centres == "subhalo")
        box = (hi - lo) * a["voxel_mpc_h"]
        p_pred, p_true = power_spectrum(mass, box).power, power_spectrum(truth, box).power
        ok = p_true > 0
        return float(np.mean(np.abs(p_pred[ok] / p_true[ok] - 1.0)))
