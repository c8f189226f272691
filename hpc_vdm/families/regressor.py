"""A deterministic field-to-field regressor on ``maps.zarr``: MSE on the normalised target.

The template for new families and the deterministic baseline of the VDM: it shares the data, the loop,
the export, ``tile`` and ``evaluate`` with the VDM and only says how its module is trained (MSE), how it
is validated, and how it predicts (one draw, through ``tiling.tile_apply`` so that a field of any size
is covered window by window with a periodic halo).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from tiling import tile_apply

from ..diffusion import window_align

from ..data.dataset import spread
from ..dist import Ranks
from ..spectra.scores import draw_scores
from .base import DrawSpec, MapsFamily


class RegressorFamily(MapsFamily):
    kind = "regressor"
    deterministic = True
    loss_terms = ("loss_mse",)
    val_columns = ("val_mse", "val_pk_ratio_err", "val_r_mean")
    better = {"val_mse": "lower", "val_pk_ratio_err": "lower", "val_r_mean": "higher"}

    def forward(self, module, cond: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        return module(cond) if params is None else module(cond, params)

    def losses(self, module, batch, device):
        x, cond = batch["target"].to(device), batch["condition"].to(device)   # (B, 1, H, W)
        pred = self.forward(module, cond, self.batch_params(batch, device))
        return {"loss_mse": (pred.float() - x.float()).pow(2).flatten(1).mean(1)}, {}

    @torch.no_grad()
    def validate(self, module, ranks: Ranks) -> dict:
        """MSE over ``val_maps`` held-out maps; P(k) ratio and r(k) of the first ``val_sample_maps`` predictions."""
        t, ds, device = self.cfg.train, self.val_dataset(), ranks.device
        n_spec = min(t.val_sample_maps, t.val_maps)
        sums = np.zeros(5)
        for pos, j in ranks.share(enumerate(spread(len(ds), t.val_maps))):
            item = ds[j]
            cond, x = item["condition"][None].to(device), item["target"][None].to(device)
            pred = self.forward(module, cond, self.batch_params({"params": item["params"][None]}, device)).float()
            sums[0] += (pred - x).pow(2).mean().item()
            sums[1] += 1
            if pos < n_spec:
                s = draw_scores(self.norm.target_out(x[0, 0].cpu().numpy()),
                                self.norm.target_out(pred[0, 0].cpu().numpy()), self.store_attrs["box_size_mpc_h"])
                sums[2:] += [s["pk_ratio_err"], s["r_mean"], 1]
        total = ranks.sum(sums)
        out = {"val_mse": total[0] / max(total[1], 1.0)}
        if total[4]:
            out |= {"val_pk_ratio_err": total[2] / total[4], "val_r_mean": total[3] / total[4]}
        return out

    @torch.no_grad()
    def predict(self, bundle, cond: np.ndarray, *, keys: Sequence[int], samples: Sequence[int] = (0,),
                spec: DrawSpec = DrawSpec(), params=None, shape=None) -> np.ndarray:
        """(1, n, H, W) physical target maps of condition maps (n, H, W) (physical): one deterministic draw,
        over windows of ``spec.tile`` + 2 ``spec.halo`` (whole maps when ``spec.tile`` is 0)."""
        if list(samples) != [0]:
            raise ValueError(f"a {self.kind} model is deterministic: it draws sample 0 only, not {list(samples)}")
        n = self.check_inputs(cond, keys)
        net, norm = bundle.module.to(spec.device).eval(), bundle.norm
        out = None
        for k in range(n):
            c = torch.from_numpy(norm.condition_in(np.asarray(cond[k], np.float64)))[None]        # (1, H, W)
            h = c.shape[-1]
            p = bundle.params(None if params is None else params[k])

            def fn(w, p=p):
                return self.forward(net, w.to(spec.device), None if p is None else p.to(spec.device).expand(len(w), -1))

            tile, halo = spec.tile or h, spec.halo if spec.tile else 0
            y = tile_apply(fn, c, tile, halo, blend=spec.blend, batch_size=spec.batch_size, device=spec.device,
                           align=window_align(net, tile, halo))                                 # (1, H, W)
            x = norm.draws_out(y.float().cpu().numpy(), f"map {k} (key {keys[k]})")
            if out is None:
                out = np.empty((1, n, *x.shape[-2:]))
            out[0, k] = x[0]
        return out
