"""A deterministic field-to-field regressor on ``maps.zarr``: MSE on the normalised target.

The template for new families: it shares the data, the loop and the export with the VDM and only says
how to build its module, what its loss is and how to validate it.
"""
from __future__ import annotations

import numpy as np
import torch

from ... import dist
from ...config import RunConfig
from ...data.dataset import spread
from ...evaluate import draw_scores
from ...models import build_regressor
from .base import MapsTask


class RegressorTask(MapsTask):
    kind = "regressor"
    loss_terms = ("loss_mse",)
    val_columns = ("val_mse", "val_pk_ratio_err", "val_r_mean")
    better = {"val_mse": "lower", "val_pk_ratio_err": "lower", "val_r_mean": "higher"}

    @classmethod
    def build_module(cls, cfg: RunConfig) -> torch.nn.Module:
        return build_regressor(cfg.model)

    def losses(self, module, batch, device):
        x, cond = batch["target"].to(device), batch["condition"].to(device)   # (B, 1, H, W)
        pred = module(cond)
        return {"loss_mse": (pred.float() - x.float()).pow(2).flatten(1).mean(1)}, {}

    @torch.no_grad()
    def validate(self, module, *, rank: int, world: int, device) -> dict:
        """MSE over ``val_maps`` held-out maps; P(k) ratio and r(k) of ``val_sample_maps`` predictions."""
        t, ds = self.cfg.train, self.val_dataset()
        module.eval()
        n_spec = min(t.val_sample_maps, t.val_maps)
        sums = np.zeros(5)
        for rank_pos, j in enumerate(spread(len(ds), t.val_maps)):
            if rank_pos % world != rank:
                continue
            item = ds[j]
            cond, x = item["condition"][None].to(device), item["target"][None].to(device)
            pred = module(cond).float()
            sums[0] += (pred - x).pow(2).mean().item()
            sums[1] += 1
            if rank_pos < n_spec:
                s = draw_scores(self.norm.target_out(x[0, 0].cpu().numpy()),
                                self.norm.target_out(pred[0, 0].cpu().numpy()), self.store_attrs["box_size_mpc_h"])
                sums[2:] += [s["pk_ratio_err"], s["r_mean"], 1]
        total = dist.all_reduce(sums, device, op="sum")
        out = {"val_mse": total[0] / max(total[1], 1.0)}
        if total[4]:
            out |= {"val_pk_ratio_err": total[2] / total[4], "val_r_mean": total[3] / total[4]}
        return out
