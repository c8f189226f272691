"""Model families: each owns its training hooks and its use (:meth:`Family.predict`), by ``model.kind``.

vdm (conditional diffusion: posterior samples), regressor (deterministic map-to-map), dm2gal (3D patches
painted densely), two_phase (a galaxy classifier gating a regressor, Zhang+19), emulator (a diffusion model
of maps from simulation parameters alone). See :mod:`.base` for what a family provides and where a new one goes.
"""
from __future__ import annotations

from .. import bundle
from ..config import MODEL_KINDS, ConfigError, RunConfig
from .base import STORE_KEYS, DrawSpec, Family, MapsFamily
from .dm2gal import Dm2galFamily
from .emulator import EmulatorFamily
from .regressor import RegressorFamily
from .two_phase import TwoPhaseFamily
from .vdm import VDMFamily

FAMILIES: dict[str, type[Family]] = {f.kind: f for f in (VDMFamily, RegressorFamily, Dm2galFamily, TwoPhaseFamily,
                                                     EmulatorFamily)}
assert set(FAMILIES) == set(MODEL_KINDS) == set(bundle.BUILDERS), \
    "config.MODEL_KINDS, the bundle's builders and the family registry must name the same kinds"


def family_class(kind: str) -> type[Family]:
    if kind not in FAMILIES:
        raise ConfigError(f"model.kind={kind!r} names no model family; choose one of {sorted(FAMILIES)}")
    return FAMILIES[kind]


def make_family(cfg: RunConfig) -> Family:
    """The family of ``cfg.model.kind``, for training (``check`` reads the store) or use."""
    return family_class(cfg.model.kind)(cfg)


def for_bundle(b: "bundle.ModelBundle") -> Family:
    """The family of a loaded model, configured as it was trained (its normalisation from the export)."""
    fam = family_class(b.kind)(b.config)
    fam.store_attrs, fam.norm = b.store, b.norm
    return fam


__all__ = ["DrawSpec", "FAMILIES", "Family", "MapsFamily", "STORE_KEYS", "family_class", "for_bundle", "make_family"]
