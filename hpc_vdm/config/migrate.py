"""Configs of the earlier layout -> today's sections, so that old YAML files, run dirs and exports keep working.

What moved (old key -> new key):

* ``diffusion.*`` -> ``model.vdm.*`` (the VDM family's options live under the model);
* ``model.param_conditioning: true`` -> ``model.params: [the six CAMELS parameters]`` (a model names the
  parameters it conditions on);
* ``sample|tile|evaluate|dm2gal.{model, which, device}`` -> ``trained.*`` (one reference to the model in use);
* ``sample|tile|evaluate.steps`` -> ``sampler.steps``;
* ``dm2gal.*`` split by concern: the grids of ``prepare_volume`` -> ``volume.*``; the network and its training
  centres -> ``model.dm2gal.*`` (``min_log_mstar`` to both); the paint -> ``paint.*``; the HOD comparison ->
  ``baselines.*`` (``eval_out`` -> ``baselines.out``).

:func:`migrate` rewrites a raw (YAML or JSON) mapping. Strict (user input): a moved key whose new place is
also set to another value is a :class:`ConfigError` naming both; every move is logged once. Lenient (configs
stored in run dirs and exports, which list every key of every section): the first value wins.
"""
from __future__ import annotations

import copy
import logging

from .schema import ConfigError

log = logging.getLogger("hpc_vdm.config")

SIX = ["Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2"]
VDM_KEYS = ("schedule", "gamma_min", "gamma_max", "data_noise", "loss_recon", "antithetic")
VOLUME_KEYS = ("source_dir", "grid_n", "sim", "dm_field", "grids", "grid_units", "box_mpc_h", "test_box", "val_box",
               "chunk")
DM2GAL_MODEL_KEYS = ("patch", "kernels", "strides", "widths", "channels", "hidden", "min_log_mstar", "centres",
                     "weight_bins", "rotations", "samples_per_epoch", "val_voxels")
PAINT_KEYS = ("volume", "out", "progress", "block", "halo", "mask", "max_block_gb")
BASELINES_KEYS = {"catalogue": "catalogue", "catalogue_dmo": "catalogue_dmo", "hod_bins": "hod_bins",
                  "bk_kf": "bk_kf", "seed": "seed", "eval_out": "out"}


def _moves() -> dict[str, list[str]]:
    """old dotted key -> new dotted keys."""
    moves = {f"diffusion.{k}": [f"model.vdm.{k}"] for k in VDM_KEYS}
    for section in ("sample", "tile", "evaluate", "dm2gal"):
        moves |= {f"{section}.{k}": [f"trained.{k}"] for k in ("model", "which", "device")}
    moves |= {f"{s}.steps": ["sampler.steps"] for s in ("sample", "tile", "evaluate")}
    moves |= {f"dm2gal.{k}": [f"volume.{k}"] for k in VOLUME_KEYS}
    moves |= {f"dm2gal.{k}": [f"model.dm2gal.{k}"] for k in DM2GAL_MODEL_KEYS}
    moves["dm2gal.min_log_mstar"] = ["model.dm2gal.min_log_mstar", "volume.min_log_mstar"]
    moves |= {f"dm2gal.{k}": [f"paint.{k}"] for k in PAINT_KEYS}
    moves |= {f"dm2gal.{k}": [f"baselines.{v}"] for k, v in BASELINES_KEYS.items()}
    return moves


MOVES = _moves()
_told: set[str] = set()


def _pop(raw: dict, dotted: str):
    section, key = dotted.split(".")
    node = raw.get(section)
    if not isinstance(node, dict) or key not in node:
        return False, None
    value = node.pop(key)
    if not node:
        raw.pop(section)
    return True, value


def _put(raw: dict, dotted: str, value, old: str, strict: bool) -> None:
    *path, key = dotted.split(".")
    node = raw
    for p in path:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(path)} must be a mapping of keys, got {node!r}")
    if key in node and node[key] != value:
        if strict:
            raise ConfigError(f"{old} moved to {dotted}, which is also set to another value ({value!r} against "
                              f"{node[key]!r}); set {dotted} once")
        return
    node[key] = value


def migrate(raw: dict, *, strict: bool = True) -> dict:
    """A raw config mapping with every key of the earlier layout moved to today's place (see the module doc)."""
    if not isinstance(raw, dict):
        return raw
    out = copy.deepcopy(raw)
    model = out.get("model")
    if isinstance(model, dict) and "param_conditioning" in model:
        flag = model.pop("param_conditioning")
        if isinstance(flag, bool):
            _put(out, "model.params", SIX if flag else [], "model.param_conditioning", strict)
            _tell("model.param_conditioning", "model.params", strict)
        else:
            raise ConfigError(f"model.param_conditioning (now model.params, a list of parameter names): expected "
                              f"true or false, got {flag!r}")
    for old, new in MOVES.items():
        found, value = _pop(out, old)
        if not found:
            continue
        for dotted in new:
            _put(out, dotted, value, old, strict)
        _tell(old, " and ".join(new), strict)
    return out


def _tell(old: str, new: str, strict: bool) -> None:
    if strict and old not in _told:
        _told.add(old)
        log.warning("config key %s moved to %s (the old name still works)", old, new)
