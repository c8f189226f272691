"""The two-phase CNN (Zhang+19; Sether+24's CNN benchmark): a galaxy classifier, then a regressor through its gate.

Maps: condition (e.g. the N-body dark matter ``Mtot_Nbody``) -> a sparse target (``Mstar``) whose empty
pixels are exact zeros. In the model's space (log10(x + offset) standardised with the training statistics)
an empty pixel is the **floor** f = (log10(offset) − mean) / std; a pixel "holds a galaxy" where its target
lies above f + 1e-3 (any stellar mass: one star particle is ~10^8 M☉/h).

* **Phase 1** (optimizer steps < ``model.two_phase.switch_step``): the classifier learns galaxy presence per
  pixel with a class-weighted BCE (positives weighted ``pos_weight``, Zhang+19's 80, the loss divided by
  1 + w as theirs) or a focal loss (Lin+17) of the same weighting.
* **Phase 2**: :meth:`TwoPhaseFamily.phase` copies the classifier into the frozen gate a last time (parameters
  that never require gradients, so no optimizer moves them); the regressor learns the normalised target
  through the gate: MSE of (regression where the gate says galaxy, f elsewhere) against the target, so
  only gated pixels give gradients, as Zhang+19's mask x regressor.

Validation (EMA weights): the gate's accuracy, recall and precision at the threshold over ``val_maps``
held-out maps (pixel counts summed), the MSE of the gated prediction (normalised space), and P(k) ratio
and r(k) (:mod:`hpc_vdm.spectra.scores`) of ``val_sample_maps`` predictions. ``phase`` (1 or 2) is a column
of every train row of metrics.csv, so the classifier's training time is read from the rows of phase 1.

Use: one draw per map (:meth:`predict`, tiled like the regressor's: both networks are local), physical,
exact zeros where the gate says no galaxy (and where the regression falls below the floor: an empty pixel).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError
from ..data.dataset import spread
from ..dist import Ranks
from ..models import unet_stride
from ..models.two_phase import gate_output
from ..spectra.scores import draw_scores
from .base import DrawSpec
from .regressor import RegressorFamily

PRESENCE = 1e-3          # a pixel holds a galaxy where its normalised target exceeds the floor by this
EMPTY = -1e4             # predict: a gated-off pixel's value below the floor (10^(...) underflows: exactly 0)


def presence(target: torch.Tensor, floor: float) -> torch.Tensor:
    """1.0 where a normalised target pixel holds a galaxy (above the floor), else 0.0."""
    return (target > floor + PRESENCE).float()


def classifier_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: float, kind: str = "bce",
                    gamma: float = 2.0) -> torch.Tensor:
    """(B,) per-map loss of logits and 0/1 labels (B, 1, H, W): BCE with positives weighted w, divided by 1 + w
    (Zhang+19), or the focal loss (1 − p_t)^γ times that BCE (Lin+17)."""
    w = labels * pos_weight + (1.0 - labels)                                           # (B, 1, H, W)
    bce = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    if kind == "focal":
        p = torch.sigmoid(logits.float())
        p_t = labels * p + (1.0 - labels) * (1.0 - p)
        bce = (1.0 - p_t).pow(gamma) * bce
    elif kind != "bce":
        raise ValueError(f"classifier loss must be 'bce' or 'focal', got {kind!r}")
    return (w * bce).flatten(1).mean(1) / (1.0 + pos_weight)


def confusion(galaxy: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """[true positives, false positives, false negatives, true negatives] of boolean maps."""
    galaxy, truth = np.asarray(galaxy, bool), np.asarray(truth, bool)
    return np.array([np.sum(galaxy & truth), np.sum(galaxy & ~truth), np.sum(~galaxy & truth),
                     np.sum(~galaxy & ~truth)], dtype=np.float64)


def classifier_scores(counts: np.ndarray) -> dict[str, float]:
    """Accuracy, recall (TP / (TP + FN)), precision (TP / (TP + FP)) and the positive fraction of confusion counts."""
    tp, fp, fn, tn = counts
    total = max(counts.sum(), 1.0)
    return {"accuracy": float((tp + tn) / total), "recall": float(tp / max(tp + fn, 1.0)),
            "precision": float(tp / max(tp + fp, 1.0)), "positive_fraction": float((tp + fn) / total)}


class TwoPhaseFamily(RegressorFamily):
    kind = "two_phase"
    deterministic = True
    loss_terms = ("loss_cls", "loss_reg")
    extra_columns = ("phase",)
    val_columns = ("val_mse", "val_accuracy", "val_recall", "val_precision", "val_pk_ratio_err", "val_r_mean")
    better = {"val_mse": "lower", "val_recall": "higher", "val_accuracy": "higher", "val_precision": "higher",
              "val_pk_ratio_err": "lower", "val_r_mean": "higher"}

    def __init__(self, cfg):
        super().__init__(cfg)
        self.phase_two, self._empty = False, 0.0

    def stride(self) -> int:
        o = self.cfg.model.two_phase
        return unet_stride(self.cfg.model.channel_mults) if "unet" in (o.classifier, o.regressor) else 1

    def check(self) -> dict:
        o, t = self.cfg.model.two_phase, self.cfg.train
        if not 0.0 < o.threshold < 1.0:
            raise ConfigError(f"model.two_phase.threshold must lie in the open interval (0, 1), got {o.threshold!r}")
        if t.zero_stage == 3:
            raise ConfigError("model.kind=two_phase freezes its classifier by copying it into frozen parameters, "
                              "which ZeRO-3 partitions; use train.zero_stage 0, 1 or 2")
        attrs = super().check()
        offset = float(attrs["stats"][self.cfg.data.target]["offset"])
        if offset <= 0:
            raise ValueError(f"model.kind=two_phase needs a target with empty pixels, log10(x + offset) with offset "
                             f"> 0; {self.cfg.data.target!r} has offset {offset!r} (data.log_offsets)")
        return attrs

    @property
    def floor(self) -> float:
        """The normalised value of an empty target pixel (-inf for a target without a log offset)."""
        with np.errstate(divide="ignore"):
            return float(self.norm.target_in(np.zeros(1))[0])

    # -- training --------------------------------------------------------------------------------------------
    def phase(self, module, step: int) -> None:
        """Phase 1 before ``switch_step``: the gate follows the classifier; at the switch step it takes the
        classifier as phase 1 left it and is frozen from then on (a resumed run never copies again)."""
        switch = self.cfg.model.two_phase.switch_step
        self.phase_two = step >= switch
        if step <= switch:
            module.sync_gate()

    def forward(self, module, cond, params):
        """The gated prediction (B, 1, H, W), normalised; gated-off pixels at the floor (+ EMPTY in predict)."""
        out = module(cond) if params is None else module(cond, params)
        return gate_output(out, module_threshold(module), self.floor + self._empty)

    def losses(self, module, batch, device):
        o = self.cfg.model.two_phase
        x, cond = batch["target"].to(device), batch["condition"].to(device)              # (B, 1, H, W)
        params = self.batch_params(batch, device)
        zero = torch.zeros(x.shape[0], device=device)
        if not self.phase_two:
            logits = module(cond, params, part="classifier")
            loss = classifier_loss(logits, presence(x, self.floor), o.pos_weight, o.loss, o.focal_gamma)
            return {"loss_cls": loss, "loss_reg": zero}, {"phase": 1.0}
        with torch.no_grad():
            galaxy = torch.sigmoid(module(cond, params, part="gate").float()) > o.threshold
        reg = module(cond, params, part="regressor").float()
        pred = torch.where(galaxy, reg, torch.full_like(reg, self.floor))
        return {"loss_cls": zero, "loss_reg": (pred - x.float()).pow(2).flatten(1).mean(1)}, {"phase": 2.0}

    @torch.no_grad()
    def validate(self, module, ranks: Ranks) -> dict:
        t, ds, device = self.cfg.train, self.val_dataset(), ranks.device
        thr, n_spec = self.cfg.model.two_phase.threshold, min(t.val_sample_maps, t.val_maps)
        sums = np.zeros(9)   # squared error, maps, TP FP FN TN, pk_ratio_err, r_mean, spectra
        for pos, j in ranks.share(enumerate(spread(len(ds), t.val_maps))):
            item = ds[j]
            cond, x = item["condition"][None].to(device), item["target"][None].to(device)
            params = self.batch_params({"params": item["params"][None]}, device)
            out = (module(cond) if params is None else module(cond, params)).float()         # (1, 2, H, W)
            pred = gate_output(out, thr, self.floor)
            sums[0:2] += [(pred - x).pow(2).mean().item(), 1]
            galaxy = (torch.sigmoid(out[0, 0]) > thr).cpu().numpy()
            sums[2:6] += confusion(galaxy, presence(x[0, 0], self.floor).cpu().numpy() > 0)
            if pos < n_spec:
                s = draw_scores(self.norm.target_out(x[0, 0].cpu().numpy()),
                                np.maximum(self.norm.target_out(pred[0, 0].cpu().numpy()), 0.0),
                                self.store_attrs["box_size_mpc_h"])
                sums[6:] += [s["pk_ratio_err"], s["r_mean"], 1]
        total = [float(v) for v in ranks.sum(sums)]
        c = classifier_scores(np.asarray(total[2:6]))
        out = {"val_mse": total[0] / max(total[1], 1.0), "val_accuracy": c["accuracy"], "val_recall": c["recall"],
               "val_precision": c["precision"]}
        if total[8]:
            out |= {"val_pk_ratio_err": total[6] / total[8], "val_r_mean": total[7] / total[8]}
        return out

    # -- use ---------------------------------------------------------------------------------------------------
    def predict(self, bundle, cond: np.ndarray, *, keys: Sequence[int], samples: Sequence[int] = (0,),
                spec: DrawSpec = DrawSpec(), params=None, shape=None) -> np.ndarray:
        """(1, n, H, W) physical target maps of condition maps (n, H, W): the regression where the gate says
        galaxy, exactly 0 elsewhere (and where the regression lies below the empty pixel's value)."""
        self._empty = EMPTY
        try:
            out = super().predict(bundle, cond, keys=keys, samples=samples, spec=spec, params=params, shape=shape)
        finally:
            self._empty = 0.0
        return np.maximum(out, 0.0)

    @torch.no_grad()
    def diagnostics(self, bundle, cond: np.ndarray, truth: np.ndarray, params=None, device="cpu") -> dict:
        """The gate's accuracy, recall and precision at the threshold (the paper's Table 1) on condition maps
        (n, H, W) against the truth's galaxy pixels (> 0), pixel counts summed over the maps."""
        net, counts = bundle.module.to(device).eval(), np.zeros(4)
        for k in range(len(cond)):
            c = torch.from_numpy(bundle.norm.condition_in(np.asarray(cond[k], np.float64)))[None, None].to(device)
            p = bundle.params(None if params is None else params[k])
            logit = net(c, None if p is None else p.to(device), part="gate")[0, 0]
            counts += confusion((torch.sigmoid(logit.float()) > net.threshold).cpu().numpy(), np.asarray(truth[k]) > 0)
        return {"classifier": classifier_scores(counts) | {"threshold": float(net.threshold)}}


def module_threshold(module) -> float:
    """The gate threshold of a TwoPhaseNet (or of the one a DeepSpeed engine wraps)."""
    return float(getattr(module, "threshold", None) or module.module.threshold)
