"""The conditional VDM (Park+23, Ono+24): a map (optionally none) -> posterior samples of another map.

Training: the bound's three terms in bits/dim. Validation on held-out simulations, with the EMA weights:

* the bound of ``val_maps`` maps spread over the split's simulations, each at K fixed times
  t_k = (k + ½)/K with noise from a generator keyed by (seed, map, k): the same numbers for the same
  weights whatever the world size, so differences between checkpoints are the model's;
* one posterior sample per map for ``val_sample_maps`` maps, drawn exactly as :meth:`VDMFamily.predict`
  draws sample 0 of that map (``python -m hpc_vdm.sample --seed SEED``), scored by
  :mod:`hpc_vdm.spectra.scores`: mean |P_s/P_t − 1| and mean r(k) of the overdensity up to k_Nyq.

Use: :meth:`VDMFamily.predict` draws posterior samples of whole maps or, tiled, of fields of any size
(the fused periodic tiled sampler), with noise keyed by (seed, map key, sample, step).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from .. import bundle as bundles
from ..config import ConfigError
from ..data import camels
from ..data.dataset import MapsDataset, held_out_maps, read_attrs, spread
from ..data.store import open_store, read_maps
from ..data.transforms import LogNorm, MapNormalisation
from ..diffusion import keyed_generator, sample_tiled
from ..dist import Ranks
from ..models import calibrate, effective_reach, unet_stride
from ..models.prior import CorrelatedTransferPrior, RegressorPrior
from ..models.reach import score_fn
from ..models.regressor import UNET_OPTIONS
from ..spectra.scores import draw_scores
from .base import DrawSpec, MapsFamily

BOUND_SEED = 1_000_003

log = logging.getLogger("hpc_vdm.train")


class VDMFamily(MapsFamily):
    kind = "vdm"
    deterministic = False
    loss_terms = ("loss_diff", "loss_klz", "loss_recon")   # the bound's three terms, bits/dim
    extra_columns = ("gamma_0", "gamma_1")
    val_columns = ("val_bound", "val_loss_diff", "val_loss_klz", "val_loss_recon", "val_pk_ratio_err", "val_r_mean")
    better = {"val_bound": "lower", "val_pk_ratio_err": "lower", "val_r_mean": "higher"}

    def stride(self) -> int:
        return unet_stride(self.cfg.model.channel_mults)

    def check(self) -> dict:
        d, v = self.cfg.data, self.cfg.model.vdm
        if v.prior != "none" and not d.condition:
            raise ConfigError(f"model.vdm.prior={v.prior!r} is a base around an estimate from the condition map; this "
                              f"model has no map condition (data.condition=''); set model.vdm.prior='none'")
        if v.prior != "regressor" and v.prior_model:
            raise ConfigError(f"model.vdm.prior_model={v.prior_model!r} is read with model.vdm.prior='regressor' only, "
                              f"not with prior={v.prior!r}; set one or clear the other")
        if v.prior_level != "linear" and v.prior != "correlated_transfer":
            raise ConfigError(f"model.vdm.prior_level={v.prior_level!r} is read with model.vdm.prior="
                              f"'correlated_transfer' only, not with prior={v.prior!r}")
        if v.prior_level == "log_cdm" and "Omega_m" not in self.cfg.model.params:
            raise ConfigError(f"model.vdm.prior_level='log_cdm' regresses the level on log10(Omega_m - Omega_b); "
                              f"model.params = {list(self.cfg.model.params)} has no Omega_m")
        facts = super().check()
        if v.prior == "regressor":
            self.prior_regressor()   # read and checked before anything is written
        return facts

    def prior_regressor(self) -> dict:
        """The EMA weights of ``model.vdm.prior_model``, checked to be a regressor this VDM can rebuild (backbone
        unet, the same U-Net options and params) of the same fields and normalisation (the same store); read once
        per run."""
        if getattr(self, "prior_weights", None) is not None:
            return self.prior_weights
        d, m, path = self.cfg.data, self.cfg.model, self.cfg.model.vdm.prior_model
        if not path:
            raise ConfigError("model.vdm.prior='regressor' needs model.vdm.prior_model: the export (model.pt) of a "
                              "regressor trained on this store (e.g. configs/science_regressor.yaml's)")
        blob = bundles.read_export(path)
        where = f"model.vdm.prior_model={path!r}"
        if blob["task"] != "regressor":
            raise ConfigError(f"{where} is a {blob['task']} model; the prior needs a regressor (model.kind: regressor)")
        theirs = blob["config"]["model"]
        options = {"backbone": "unet", **{k: getattr(m, k) for k in UNET_OPTIONS}}
        differ = {k: (theirs.get(k), v) for k, v in options.items() if theirs.get(k) != v}
        if differ:
            raise ConfigError(f"{where} cannot be rebuilt inside this VDM: its model options differ from this model's "
                              + ", ".join(f"{k} {a!r} (here {b!r})" for k, (a, b) in differ.items()))
        data = blob["config"]["data"]
        if (data.get("condition"), data.get("target")) != (d.condition, d.target):
            raise ConfigError(f"{where} maps {data.get('condition')!r} -> {data.get('target')!r}; this VDM maps "
                              f"{d.condition!r} -> {d.target!r}")
        stats = read_attrs(d.store)["stats"]
        for name in (d.condition, d.target):
            theirs = blob["store"].get("stats", {}).get(name)
            if theirs is None or LogNorm.of(theirs) != LogNorm.of(stats[name]):
                raise ConfigError(f"{where} was trained with another normalisation of {name!r} (another store?): "
                                  f"{theirs} against this store's {stats[name]}")
        self.prior_weights = blob["ema"]
        return self.prior_weights

    def build(self) -> torch.nn.Module:
        """The untrained VDM; with ``model.vdm.prior`` its prior fitted on the training maps (deterministic: every
        rank fits the same numbers; a resumed run then loads the checkpoint's): the linear transfer's constants,
        or the regressor's weights (from ``model.vdm.prior_model``) and its residual's mean and spread."""
        module = super().build()
        prior = getattr(module.score, "prior", None)
        if prior is None:
            return module
        if getattr(self, "prior_state", None) is None:   # fitted once per run (the loop builds twice)
            if isinstance(prior, RegressorPrior):
                prior.net.load_state_dict(self.prior_regressor())
                fitted = prior.fit(self.prior_batches())
                log.info("regressor prior (%s) on %d training pixels: residual %+.4f ± %.4f (normalised)",
                         self.cfg.model.vdm.prior_model, fitted["pixels"], fitted["res_mean"], fitted["res_std"])
            else:
                pairs, n_maps, cond_norm, target_norm = self.prior_maps()
                fitted = prior.fit(pairs, cond_norm, target_norm)
                log.info("linear-transfer prior on %d training maps: A %.4g, B %.4g, log residual %+.3f ± %.3f dex "
                         "(K_w of %.3g px)", n_maps, fitted["A"], fitted["B"], fitted["res_mean_dex"],
                         fitted["res_std_dex"], fitted["smooth_px"])
                if isinstance(prior, CorrelatedTransferPrior):
                    field = prior.fit_field(self.prior_batches())
                    log.info("its residual on %d training maps: level's std %.4f, %.4f about its fit in the %d "
                             "parameters%s (normalised); P(0) / s² %.1f (white: 1); kernel truncated at %d px",
                             field["maps"], field["level_std"], field["level_std_after"], prior.n_params,
                             "" if prior.level_log is None else " and log10(Ω_m − Ω_b)", field["p0_over_s2"],
                             prior.reach_px)
            self.prior_state = {k: v.detach().clone() for k, v in prior.state_dict().items()}
        prior.load_state_dict(self.prior_state)
        return module

    def prior_batches(self, n_maps: int = 256, per_batch: int = 16):
        """Batches of normalised (condition, params or None, target) of up to ``n_maps`` training maps spread over
        the training simulations (whole maps, no augmentation), for :meth:`RegressorPrior.fit`."""
        d = self.cfg.data
        ds = MapsDataset(d.store, "train", condition=d.condition, target=d.target)
        js = spread(len(ds), min(n_maps, len(ds)))
        for i in range(0, len(js), per_batch):
            items = [self.model_inputs(ds, j, "cpu") for j in js[i:i + per_batch]]
            yield (torch.cat([it[0] for it in items]), None if items[0][2] is None else torch.cat([it[2] for it in items]),
                   torch.cat([it[1] for it in items]))

    def prior_maps(self, n_maps: int = 256, per_batch: int = 16):
        """([(condition, target) physical map batches], their number of maps, condition (offset, mean, std),
        target's) of up to ``n_maps`` training maps spread over every training simulation, for
        :meth:`~hpc_vdm.models.prior.LinearTransferPrior.fit`."""
        d = self.cfg.data
        root = open_store(d.store)
        attrs = dict(root.attrs)
        maps = held_out_maps(attrs, "train", n_maps)
        pairs = [(read_maps(root, d.condition, maps[i:i + per_batch], d.store),
                  read_maps(root, d.target, maps[i:i + per_batch], d.store)) for i in range(0, len(maps), per_batch)]
        norm = [LogNorm.of(attrs["stats"][f]) for f in (d.condition, d.target)]
        return pairs, len(maps), *[(n.offset, n.mean, n.std) for n in norm]

    def compiled(self, module):
        return module.score

    def selection(self) -> str:
        metric = super().selection()
        t = self.cfg.train
        if metric != "val_bound" and t.val_sample_maps == 0:
            raise ConfigError(f"train.select_on={metric!r} needs posterior samples in the validation, but "
                              f"train.val_sample_maps=0; set it > 0 or select on val_bound")
        return metric

    def losses(self, module, batch, device):
        x = batch["target"].to(device)                                           # (B, 1, H, W)
        cond = batch["condition"].to(device) if "condition" in batch else None  # (B, 1, H, W) or none
        out = module(x, cond, self.batch_params(batch, device))
        terms = {"loss_diff": out.loss_diff, "loss_klz": out.loss_klz, "loss_recon": out.loss_recon}
        return terms, {"gamma_0": float(out.gamma_0), "gamma_1": float(out.gamma_1)}

    # -- validation -------------------------------------------------------------------------------------
    def model_inputs(self, dataset, j: int, device):
        """Map ``j`` of ``dataset`` as the model takes it: (cond (1, 1, H, W) or None, x (1, 1, H, W), params (1, P)
        normalised or None, the map's store index)."""
        item = dataset[j]
        x = item["target"][None].to(device)                                                   # (1, 1, H, W)
        cond = item["condition"][None].to(device) if "condition" in item else None
        names = self.cfg.model.params
        params = (torch.from_numpy(camels.normalise_params(item["params"].numpy(), names))[None].to(device)
                  if names else None)
        return cond, x, params, int(item["index"])

    @torch.no_grad()
    def validate(self, module, ranks: Ranks) -> dict:
        t = self.cfg.train
        ds = self.val_dataset()
        out = self.val_bound(module, ds, ranks)
        if t.val_sample_maps:
            out.update(self.val_spectra(module, ds, ranks))
        return out

    def val_bound(self, vdm, dataset, ranks: Ranks) -> dict:
        """Mean loss terms (bits/dim) over ``val_maps`` maps x ``val_times`` fixed times."""
        t, device = self.cfg.train, ranks.device
        n_times = t.val_times
        sums = np.zeros(5)
        for j in ranks.share(spread(len(dataset), t.val_maps)):
            cond, x, params, _ = self.model_inputs(dataset, j, device)
            gen = keyed_generator(BOUND_SEED, t.seed, j)
            times = (torch.arange(n_times, dtype=torch.float32) + 0.5) / n_times          # (K,)
            eps = torch.randn((n_times, *x.shape[1:]), generator=gen)                      # (K, 1, H, W)
            eps_0 = torch.randn((n_times, *x.shape[1:]), generator=gen)
            rep = (n_times, 1, 1, 1)
            o = vdm(x.repeat(rep), None if cond is None else cond.repeat(rep),
                    None if params is None else params.repeat(n_times, 1),
                    t=times.to(device), eps=eps.to(device), eps_0=eps_0.to(device), weighted=False)
            sums += [o.loss.sum().item(), o.loss_diff.sum().item(), o.loss_klz.sum().item(),
                     o.loss_recon.sum().item(), n_times]
        total = ranks.sum(sums)
        count = max(total[4], 1.0)
        return {"val_bound": total[0] / count, "val_loss_diff": total[1] / count,
                "val_loss_klz": total[2] / count, "val_loss_recon": total[3] / count}

    def val_spectra(self, vdm, dataset, ranks: Ranks) -> dict:
        """Mean |P_s/P_t − 1| and mean r(k) (overdensity, k <= k_Nyq) of one keyed posterior sample per map."""
        t = self.cfg.train
        spec = DrawSpec.of(self.cfg.sampler, steps=t.val_sample_steps, seed=t.seed, device=ranks.device)
        sums = np.zeros(3)
        for j in ranks.share(spread(len(dataset), t.val_sample_maps)):
            cond, x, params, index = self.model_inputs(dataset, j, ranks.device)
            z = self.draw_normalised(vdm, None if cond is None else cond[0].cpu(), index, [0], spec,
                                     None if params is None else params.cpu(), self.norm)      # (1, H, W)
            drawn = self.norm.target_out(z[0].numpy())                                         # (H, W) physical
            if not np.isfinite(drawn).all():  # an early model can overflow 10**(log field) at few steps
                log.warning("validation draw of map %d is not finite (%s, %d steps): scored as the worst, P error "
                            "inf and r 0", index, spec.sampler, spec.steps)
                sums += [np.inf, 0.0, 1]
                continue
            scores = draw_scores(self.norm.target_out(x[0, 0].cpu().numpy()), drawn, self.store_attrs["box_size_mpc_h"])
            sums += [scores["pk_ratio_err"], scores["r_mean"], 1]
        total = ranks.sum(sums)
        if total[2] == 0:
            return {}
        return {"val_pk_ratio_err": total[0] / total[2], "val_r_mean": total[1] / total[2]}

    # -- export -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def held_out(self, n: int = 4) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(x (n, 1, H, W), cond or None, params or None) of ``n`` validation maps (training maps if none)."""
        d = self.cfg.data
        split = "val" if read_attrs(d.store)["splits"].get("val") else "train"
        ds = MapsDataset(d.store, split, condition=d.condition, target=d.target)
        items = [self.model_inputs(ds, j, "cpu") for j in spread(len(ds), n)]
        cat = lambda k: None if items[0][k] is None else torch.cat([it[k] for it in items])  # noqa: E731
        return cat(1), cat(0), cat(2)

    def export_facts(self, module) -> dict:
        """The score network's locality; for a tile-safe network its effective reach on held-out maps noised at
        γ = −5, 0, 5 (tol 1e-3: the radius beyond which the output's sensitivity to the input is below 1e-3 of its
        peak; a network that is not local reads its whole window, so nothing is measured), and for a
        GroupNorm network the statistics of every GroupNorm layer over held-out maps at 33 γ values spanning
        the learned schedule, so that ``tile`` can freeze them (a tile-safe stop-gap)."""
        net = module.score
        facts = super().export_facts(module)
        loc = facts["locality"]
        if Path(self.cfg.data.store).exists():
            x, cond, params = self.held_out()
            reach = []
            for g in ((-5.0, 0.0, 5.0) if loc["tile_safe"] else ()):
                alpha, sigma = (torch.sigmoid(torch.tensor(-g)).sqrt(), torch.sigmoid(torch.tensor(g)).sqrt())
                z = alpha * x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
                inputs = z if cond is None else torch.cat([z, cond], 1)
                with torch.enable_grad():
                    reach.append(effective_reach(score_fn(net, g, None if params is None else params[:1]), inputs[:2],
                                                 1e-3, stride=loc["stride"]))
            if reach:
                loc["effective_reach"] = {"tol": 1e-3, "gamma": [-5.0, 0.0, 5.0], "px": reach}
            if "group" in loc["norm"]:
                g0, g1 = (float(module.gamma(torch.tensor(v)).detach()) for v in (0.0, 1.0))
                stats = calibrate(net, x, cond, torch.linspace(g0, g1, 33), params=params)
                facts["frozen_norm"] = {"gamma": stats["gamma"].float(), "mean": stats["mean"], "var": stats["var"]}
        return facts

    # -- use --------------------------------------------------------------------------------------------------
    @staticmethod
    def draw_normalised(vdm, cond: torch.Tensor | None, key: int, samples: Sequence[int], spec: DrawSpec,
                        params: torch.Tensor | None, norm: MapNormalisation, shape=None) -> torch.Tensor:
        """(S, H, W) normalised samples of one map: cond (1, H, W) normalised (or None with ``shape``)."""
        h = (cond.shape if cond is not None else shape)[-1]
        x_range = None if spec.clip_log is None else tuple(float(v) for v in norm.target_log_in(spec.clip_log))
        return sample_tiled(vdm, cond, tile=spec.tile or h, halo=spec.halo if spec.tile else 0, n_steps=spec.steps,
                            seed=spec.seed, slab=int(key), samples=list(samples), blend=spec.blend,
                            batch_size=spec.batch_size, device=spec.device, params=params, sampler=spec.sampler,
                            shape=None if cond is not None else tuple(shape), x_range=x_range)

    def predict(self, bundle, cond: np.ndarray | None, *, keys: Sequence[int], samples: Sequence[int],
                spec: DrawSpec, params: np.ndarray | None = None, shape=None) -> np.ndarray:
        """(S, n, H, W) physical target maps: posterior samples ``samples`` of condition maps (n, H, W)
        (physical units; None for a model without a map condition, with ``shape`` (H, W)), one noise key
        per map; ``params`` (n, 6) CAMELS rows for a model that conditions on parameters (the fiducial point
        if None)."""
        n = self.check_inputs(cond, keys)
        vdm, norm = bundle.module.to(spec.device), bundle.norm
        out = None
        for k in tqdm(range(n), desc=spec.desc, unit="map", disable=not spec.progress or n == 1):
            c = None if cond is None else torch.from_numpy(norm.condition_in(np.asarray(cond[k], np.float64)))[None]
            p = bundle.params(None if params is None else params[k])
            z = self.draw_normalised(vdm, c, keys[k], samples, spec, p, norm, shape)           # (S, H, W)
            x = norm.draws_out(z.numpy(), f"map {k} (key {keys[k]}), samples {list(samples)}")
            if out is None:
                out = np.empty((len(samples), n, *x.shape[-2:]))
            out[:, k] = x
        return out
