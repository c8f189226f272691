"""dm2gal (Kasmanoff+20): 3D patches of [dm, subhalo] -> log stellar mass of the central voxel.

Training centres are the training-region voxels above ``model.dm2gal.min_log_mstar``, drawn with
inverse-count weights in ``weight_bins`` log bins and one of the 24 cube rotations
(:mod:`hpc_vdm.data.patches`); the loss is the MSE on the normalised log mass. Validation: ``val_mse`` on
up to ``val_voxels`` centres of the validation sub-cube, and ``val_pk_ratio_err`` (one definition:
:mod:`hpc_vdm.spectra.scores`, mass space, k ≤ k_Nyq) of the stellar field that :meth:`predict` paints
over the whole validation cube, as the paper's validation hook rebuilt its validation cube.

Use: :meth:`Dm2galFamily.predict` paints stellar mass per voxel with the patch network's exact fully
convolutional rewrite (:class:`~hpc_vdm.models.DenseDM2Gal`) through ``tiling.tile_apply`` in valid mode:
a region that fits in memory, or blocks of a volume store streamed into a Zarr array (``paint``). Stars
go where ``mask`` puts them: voxels with subhalo mass (``subhalo``, known in gravity-only runs), voxels
whose true stellar mass is above the threshold (``truth``, the paper's test-cube convention), or all.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from tiling import gather, tile_apply

from ..config import ConfigError
from ..data import patches, volume as vol
from ..data.dataset import spread
from ..data.transforms import finite_draws
from ..dist import Ranks
from ..models import DenseDM2Gal, build_dm2gal
from ..spectra.scores import draw_scores
from .base import DrawSpec, Family

STORE_KEYS = ("format", "n", "box_mpc_h", "voxel_mpc_h", "fields", "regions", "stats", "min_log_mstar")
MASKS = ("subhalo", "truth", "none")


def mask_fields(mask: str) -> tuple[str, ...]:
    """The volume fields a paint with ``mask`` reads: the inputs, and the truth for ``mask=truth``."""
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {list(MASKS)}, got {mask!r}")
    return vol.INPUTS + (("stellar",) if mask == "truth" else ())


class Dm2galFamily(Family):
    kind = "dm2gal"
    deterministic = True
    loss_terms = ("loss_mse",)
    val_columns = ("val_mse", "val_pk_ratio_err")
    better = {"val_mse": "lower", "val_pk_ratio_err": "lower"}

    def check(self) -> dict:
        d, data = self.cfg.model.dm2gal, self.cfg.data
        if (data.condition, data.target) != ("dm", "stellar"):
            raise ConfigError(f"model.kind=dm2gal reads the volume fields dm and subhalo and predicts stellar: set "
                              f"data.condition=dm and data.target=stellar (got {data.condition!r}, {data.target!r})")
        root = vol.open_volume(data.store, need=vol.FIELDS)
        attrs = dict(root.attrs)
        self.net_reach = build_dm2gal(d).reach    # the layers fit the patch (raises otherwise)
        n, reg = attrs["n"], attrs["regions"]
        if d.patch > n:
            raise ValueError(f"model.dm2gal.patch={d.patch} is larger than the volume ({n} voxels per side)")
        sub = root["subhalo"] if d.centres == "subhalo" else None
        self.train_centres, self.train_logs = patches.centres(root["stellar"], None, n, d.min_log_mstar,
                                                              exclude=[reg["test"], reg["val"]], subhalo=sub)
        self.val_centres, self.val_logs = patches.centres(root["stellar"], reg["val"], n, d.min_log_mstar,
                                                          subhalo=sub)
        for name, c in (("training", self.train_centres), ("validation", self.val_centres)):
            if len(c) == 0:
                raise ValueError(f"the {name} region of {data.store!r} has no voxel above model.dm2gal.min_log_mstar="
                                 f"{d.min_log_mstar}")
        self.store_attrs = {k: attrs[k] for k in STORE_KEYS} | {"patch": d.patch, "reach": list(self.net_reach)}
        return self.store_attrs

    def loaders(self, rank: int, world: int):
        d, data = self.cfg.model.dm2gal, self.cfg.data
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
    def validate(self, module, ranks: Ranks) -> dict:
        d, stats = self.cfg.model.dm2gal, self.store_attrs["stats"]
        module.eval()
        ds = patches.PatchDataset(self.cfg.data.store, self.val_centres, self.val_logs, d.patch, stats)
        sums = np.zeros(3)
        for j in ranks.share(spread(len(ds), min(d.val_voxels, len(ds)))):
            item = ds[j]
            pred = module(item["input"][None].to(ranks.device)).float().cpu()
            sums[:2] += [(pred[0, 0] - item["target"][0]).pow(2).item(), 1]
        if ranks.rank == 0:
            sums[2] = self.val_pk_ratio_err(module, ranks.device)
        total = ranks.sum(sums)
        module.train()
        return {"val_mse": total[0] / max(total[1], 1.0), "val_pk_ratio_err": total[2]}

    def val_pk_ratio_err(self, module, device) -> float:
        """``pk_ratio_err`` (mass space) of the stellar field painted over the validation cube (stars where subhalos are)."""
        a = self.store_attrs
        lo, hi = a["regions"]["val"]
        root = vol.open_volume(self.cfg.data.store, need=vol.FIELDS)
        norm = {f: vol.LogNorm.of(s) for f, s in a["stats"].items()}
        pred = self.paint_region(module, norm, root, lo, hi - lo, "subhalo", device)
        truth = np.asarray(root["stellar"][lo:hi, lo:hi, lo:hi], dtype=np.float64)
        return draw_scores(truth, pred, (hi - lo) * a["voxel_mpc_h"], space="mass")["pk_ratio_err"]

    # -- use --------------------------------------------------------------------------------------------------
    def window_fn(self, net, norm: dict, mask: str, halo: int, device):
        """Valid-mode tile function: physical (B, C, W, W, W) windows of ``mask_fields(mask)`` -> painted
        (B, 1, b, b, b) stellar mass per voxel [Msun/h] of the cores (float32)."""
        d = self.cfg.model.dm2gal
        dense = DenseDM2Gal(net.to(device).eval())
        thr, cut, st = d.min_log_mstar, d.centres == "subhalo", norm["stellar"]

        @torch.no_grad()
        def fn(w: torch.Tensor) -> torch.Tensor:
            w = w.to(device=device, dtype=torch.float32)
            x = torch.stack([norm[f].forward(w[:, i]) for i, f in enumerate(vol.INPUTS)], 1)  # (B, 2, W, W, W)
            y = dense.core(x, halo)                                                  # (B, 1, b, b, b) normalised
            mass = st.inverse(y)                                                     # float64 [Msun/h]
            b = y.shape[-1]
            core = w[:, :, halo:halo + b, halo:halo + b, halo:halo + b]              # (B, C, b, b, b)
            if cut:  # trained on starless subhalos too: below the threshold means no galaxy
                mass = torch.where(y.double() * st.std + st.mean > thr, mass, 0.0)
            if mask == "subhalo":
                mass = torch.where(core[:, 1:2] > 0, mass, 0.0)
            elif mask == "truth":
                mass = torch.where(torch.log10(1.0 + core[:, 2:3].double()) > thr, mass, 0.0)
            return mass.float()

        return fn

    def paint_region(self, net, norm: dict, root, lo: int, size: int, mask: str, device) -> np.ndarray:
        """(size,)^3 painted stellar mass [Msun/h] of the sub-cube [lo, lo + size)^3 of a volume store, in one
        dense pass with periodic context (a validation or test cube that fits in memory)."""
        r = net.receptive_radius
        channels = vol.Channels(root, mask_fields(mask))
        window = gather(channels, [np.arange(lo - r, lo + size + r) % n for n in channels.shape[1:]])  # (C, W, W, W)
        fn = self.window_fn(net, norm, mask, r, device)
        return fn(torch.from_numpy(np.ascontiguousarray(window))[None])[0, 0].double().cpu().numpy()

    def predict(self, bundle, root, *, mask: str, spec: DrawSpec = DrawSpec(), region: tuple[int, int] | None = None,
                out=None, tiles=None, done=None):
        """Stellar mass per voxel painted over a volume store ``root`` (needs ``mask_fields(mask)``):
        ``region=(lo, size)`` -> the (size,)^3 sub-cube in memory; otherwise blocks of ``spec.tile`` voxels
        with halo ``spec.halo`` (at least the receptive radius), streamed into ``out`` (1, N, N, N) —
        ``tiles`` a subset of the block grid, ``done(tile)`` called after each block is written."""
        net = bundle.module
        if region is not None:
            return self.paint_region(net, bundle.norm, root, region[0], region[1], mask, spec.device)
        paint = self.window_fn(net, bundle.norm, mask, spec.halo, spec.device)

        def fn(w: torch.Tensor) -> torch.Tensor:
            return finite_draws(paint(w), f"a painted block of {spec.tile}^3 voxels")

        return tile_apply(fn, vol.Channels(root, mask_fields(mask)), spec.tile, spec.halo, mode="valid", batch_size=1,
                          device=spec.device, out=out, tiles=tiles, done=done)
