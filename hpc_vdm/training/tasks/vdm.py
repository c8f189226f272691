"""The conditional VDM (Park+23, Ono+24) as a task: stellar map -> posterior samples of the dark matter."""
from __future__ import annotations

import torch

from ...config import ConfigError, RunConfig
from ...data import camels
from ...diffusion import build_vdm
from ...models import unet_stride
from .. import validate
from .base import MapsTask


class VDMTask(MapsTask):
    kind = "vdm"
    loss_terms = ("loss_diff", "loss_klz", "loss_recon")   # the bound's three terms, bits/dim
    extra_columns = ("gamma_0", "gamma_1")
    val_columns = ("val_bound", "val_loss_diff", "val_loss_klz", "val_loss_recon", "val_pk_ratio_err", "val_r_mean")
    better = {"val_bound": "lower", "val_pk_ratio_err": "lower", "val_r_mean": "higher"}
    compared_sections = ("model", "diffusion")

    @classmethod
    def build_module(cls, cfg: RunConfig) -> torch.nn.Module:
        return build_vdm(cfg.model, cfg.diffusion, n_params=len(camels.PARAM_NAMES))

    def stride(self) -> int:
        return unet_stride(self.cfg.model.channel_mults)

    def selection(self) -> str:
        metric = super().selection()
        t = self.cfg.train
        if metric != "val_bound" and t.val_sample_maps == 0:
            raise ConfigError(f"train.select_on={metric!r} needs posterior samples in the validation, but "
                              f"train.val_sample_maps=0; set it > 0 or select on val_bound")
        return metric

    def losses(self, module, batch, device):
        x, cond = batch["target"].to(device), batch["condition"].to(device)   # (B, 1, H, W)
        out = module(x, cond, self.batch_params(batch, device))
        terms = {"loss_diff": out.loss_diff, "loss_klz": out.loss_klz, "loss_recon": out.loss_recon}
        return terms, {"gamma_0": float(out.gamma_0), "gamma_1": float(out.gamma_1)}

    def validate(self, module, *, rank: int, world: int, device) -> dict:
        t = self.cfg.train
        ds = self.val_dataset()
        kw = dict(rank=rank, world=world, device=device, seed=t.seed)
        norm = self.norm if self.cfg.model.param_conditioning else None
        out = validate.bound(module, ds, n_maps=t.val_maps, n_times=t.val_times, norm=norm, **kw)
        if t.val_sample_maps:
            out.update(validate.sample_spectra(
                module, ds, n_maps=t.val_sample_maps, n_steps=t.val_sample_steps, norm=self.norm,
                box_mpc_h=self.store_attrs["box_size_mpc_h"], conditions_on_params=norm is not None, **kw))
        return out
