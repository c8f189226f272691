"""The field emulator (Mudur+23): a VDM of maps from simulation parameters alone.

The VDM without a map condition (``data.condition=''``: a U-Net with no condition channel), conditioned on
``model.params`` (default the paper's Ω_m, σ_8; all six allowed), each normalised to [0, 1] over its prior
and passed through a 2-layer MLP (``model.emulator.param_mlp``) into the embedding that every residual block
receives with the noise level (:class:`~hpc_vdm.models.blocks.GammaEmbedding`). Trained on the bound of
``data.target`` maps (log10 Mcdm or Mtot) of the LH set; ``train.init_from`` starts it from another export
(the paper's 64² model initialising the 256² one).

Validation, besides the bound: ``val_chi2_r``, the reduced χ² of the P(k) of the log field of
``model.emulator.val_samples`` generated fields against the 15 true maps of each of ``model.emulator.val_sims``
validation simulations (Mudur+23's checkpoint selection), reported as |χ²_r(generated) − χ²_r floor|, the
floor being the truths' own leave-one-out χ²_r (cosmic variance, ≈ 1.27 for 15 maps of 128 bins): lower is
better, 0 is as close to the truths as another truth is. ``val_chi2_r_samples`` and ``val_chi2_r_floor``
are both reported.

Use: :meth:`EmulatorFamily.predict` turns CAMELS parameter rows into generated physical maps.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..config import ConfigError
from ..data import camels
from ..data.dataset import spread
from ..data.store import open_store, read_maps
from ..dist import Ranks
from ..models import locality
from ..spectra.scores import chi2_r, overdensity_spectra
from .base import DrawSpec
from .vdm import VDMFamily

SPACE = "log"  # the paper's statistics are of the log field


def chi2_pair(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float) -> tuple[np.ndarray, np.ndarray]:
    """(χ²_r of each draw against the truths, leave-one-out χ²_r of each truth): log-field P(k), k <= k_Nyq."""
    _, p_true = overdensity_spectra(truth, box_mpc_h, SPACE)
    _, p_draw = overdensity_spectra(draws, box_mpc_h, SPACE)
    return chi2_r(p_draw, p_true), chi2_r(p_true, p_true)


class EmulatorFamily(VDMFamily):
    kind = "emulator"
    conditioned_on = "params"
    val_columns = ("val_bound", "val_loss_diff", "val_loss_klz", "val_loss_recon", "val_chi2_r",
                   "val_chi2_r_samples", "val_chi2_r_floor")
    better = {"val_chi2_r": "lower", "val_bound": "lower"}

    def check(self) -> dict:
        d, m = self.cfg.data, self.cfg.model
        if d.condition:
            raise ConfigError(f"an emulator generates maps from parameters alone; set data.condition='' (got "
                              f"data.condition={d.condition!r})")
        if not m.params:
            raise ConfigError("an emulator conditions on parameters; set model.params (e.g. [Omega_m, sigma_8])")
        return super().check()

    def selection(self) -> str:
        metric = super(VDMFamily, self).selection()
        if metric == "val_chi2_r" and self.cfg.model.emulator.val_sims == 0:
            raise ConfigError("train.select_on=val_chi2_r needs generated fields in the validation, but "
                              "model.emulator.val_sims=0; set it > 0 or select on val_bound")
        return metric

    def export_facts(self, module) -> dict:
        """The network's locality (no tiling facts: an emulator draws whole maps)."""
        return {"locality": locality(module.score)}

    # -- validation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, module, ranks: Ranks) -> dict:
        ds = self.val_dataset()
        out = self.val_bound(module, ds, ranks)
        if self.cfg.model.emulator.val_sims:
            out.update(self.val_chi2(module, ranks))
        return out

    def val_chi2(self, vdm, ranks: Ranks) -> dict:
        """χ²_r of generated fields against the truths of ``val_sims`` validation simulations, and the floor."""
        d, e, t = self.cfg.data, self.cfg.model.emulator, self.cfg.train
        root, attrs = open_store(d.store), self.store_attrs
        sims = [int(s) for s in root.attrs["splits"].get("val", [])]
        if not sims:
            return {}
        per_sim, box = int(attrs["maps_per_sim"]), float(attrs["box_size_mpc_h"])
        spec = DrawSpec.of(self.cfg.sampler, steps=t.val_sample_steps, seed=t.seed, device=ranks.device)
        sums = np.zeros(4)
        for s in ranks.share([sims[i] for i in spread(len(sims), e.val_sims)]):
            maps = list(range(s * per_sim, (s + 1) * per_sim))
            truth = read_maps(root, d.target, maps, d.store).astype(np.float64)                # (15, H, W)
            row = np.asarray(root["params"][s], dtype=np.float64)
            params = torch.from_numpy(camels.normalise_params(row[None], self.cfg.model.params))
            z = self.draw_normalised(vdm, None, maps[0], range(e.val_samples), spec, params, self.norm,
                                     truth.shape[-2:])
            chi_draws, chi_truths = chi2_pair(truth, self.norm.target_out(z.numpy()), box)
            sums += [chi_draws.sum(), chi_draws.size, chi_truths.sum(), chi_truths.size]
        total = ranks.sum(sums)
        gen, floor = total[0] / max(total[1], 1), total[2] / max(total[3], 1)
        return {"val_chi2_r": abs(gen - floor), "val_chi2_r_samples": gen, "val_chi2_r_floor": floor}

    # -- use --------------------------------------------------------------------------------------------
    def predict(self, bundle, inputs: np.ndarray | None = None, *, keys: Sequence[int], samples: Sequence[int],
                spec: DrawSpec, params: np.ndarray | None = None, shape=None) -> np.ndarray:
        """(S, n, H, W) generated physical maps: samples ``samples`` at each of n CAMELS parameter rows (n, 6)
        (``inputs``, or ``params`` as the map families' callers name them), one noise key per row; ``shape``
        (H, W) defaults to the training maps' size."""
        if inputs is not None and params is not None:
            raise ValueError("pass the parameter rows once (inputs or params), not both")
        rows = np.atleast_2d(np.asarray(params if inputs is None else inputs, dtype=np.float64))
        if rows.ndim != 2 or rows.shape[1] != len(camels.PARAM_NAMES) or len(rows) != len(keys):
            raise ValueError(f"expected parameter rows (n, {len(camels.PARAM_NAMES)}) and n keys, got "
                             f"{rows.shape} and {len(keys)}")
        shape = tuple(shape or (bundle.store["map_pixels"],) * 2)
        vdm, norm = bundle.module.to(spec.device), bundle.norm
        out = np.empty((len(samples), len(rows), *shape))
        for k in tqdm(range(len(rows)), desc=spec.desc, unit="point", disable=not spec.progress or len(rows) == 1):
            z = self.draw_normalised(vdm, None, keys[k], samples, spec, bundle.params(rows[k]), norm,
                                     shape)                                                     # (S, H, W)
            out[:, k] = norm.draws_out(z.numpy(), f"parameter row {k} (key {keys[k]}), samples {list(samples)}")
        return out
