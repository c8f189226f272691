"""Volume presets (package data in ``hpc_vdm/inference/presets/``, linked as ``configs/volumes/``): a periodic box cut into slabs at the training pixel scale.

A preset names the box side, the slab thickness and the map pixel, all in Mpc/h::

    name: tng300
    box_mpc_h: 205.0
    slab_mpc_h: 5.0
    pixel_mpc_h: 0.09765625

The box must hold a whole number of slabs and (to 0.1%) of pixels: TNG300 is 41 slabs of 2099² pixels of
0.097666 Mpc/h. A model applies to a volume only when its training maps had the same pixel and thickness.
Slabs are addressed as (axis, slab); ``slab_key`` numbers them over the whole volume, so the sampling
noise of a slab does not depend on which other slabs a run selects.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..config import ConfigError, param, read_yaml
from ..config import schema

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PIXEL_TOLERANCE = 1e-3  # relative: box / pixels against the preset pixel, and preset against model
KEYS = ("name", "box_mpc_h", "slab_mpc_h", "pixel_mpc_h")


@dataclass
class VolumePreset:
    """The preset file's schema: checked like a config (key, expected type or range, value in every message)."""

    name: str = param("", "name of the volume (tng300, ...)")
    box_mpc_h: float = param(0.0, "side of the periodic box [Mpc/h]", range=(1e-3, 1e5))
    slab_mpc_h: float = param(0.0, "thickness of every projected slab [Mpc/h]", range=(1e-3, 1e5))
    pixel_mpc_h: float = param(0.0, "side of a map pixel [Mpc/h]", range=(1e-6, 1e5))


@dataclass(frozen=True)
class Volume:
    name: str
    box_mpc_h: float
    slab_mpc_h: float
    pixel_mpc_h: float

    @property
    def pixels(self) -> int:
        """Map pixels per side."""
        return int(round(self.box_mpc_h / self.pixel_mpc_h))

    @property
    def n_slabs(self) -> int:
        """Slabs per axis."""
        return int(round(self.box_mpc_h / self.slab_mpc_h))

    def slab_key(self, axis: int, slab: int) -> int:
        return axis * self.n_slabs + slab

    def select(self, axes: Sequence[int], slabs: Sequence[int]) -> list[tuple[int, int]]:
        """(axis, slab) pairs of a run, axis-major; ``slabs=[]`` means all; out-of-range values raise."""
        bad_axes = [a for a in axes if a not in (0, 1, 2)]
        if bad_axes or not axes or len(set(axes)) != len(axes):
            raise ValueError(f"axes must be distinct values in 0, 1, 2, got {list(axes)}")
        slabs = list(slabs) or list(range(self.n_slabs))
        bad = [s for s in slabs if not 0 <= s < self.n_slabs]
        if bad or len(set(slabs)) != len(slabs):
            raise ValueError(f"slabs must be distinct indices in [0, {self.n_slabs}) for volume {self.name!r}, "
                             f"got {slabs}")
        return [(a, s) for a in axes for s in slabs]

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in KEYS} | {"pixels": self.pixels, "n_slabs": self.n_slabs}


def presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_volume(spec: str) -> Volume:
    """A preset by name (``tng300``) or from a YAML file; checked for whole slabs and pixels."""
    path = Path(spec)
    if not (spec.endswith((".yaml", ".yml")) or path.is_file()):
        path = PRESETS_DIR / f"{spec}.yaml"
        if not path.is_file():
            close = difflib.get_close_matches(spec, presets(), n=3, cutoff=0.3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown volume preset {spec!r}{hint} (presets: {', '.join(presets())}, "
                             f"or a path to a preset YAML)")
    if not path.is_file():
        raise FileNotFoundError(f"no volume preset file {str(path)!r}")
    raw = read_yaml(path, "volume preset")
    if not isinstance(raw, dict):
        raise ValueError(f"volume preset {str(path)!r}: expected a mapping of {list(KEYS)}, got {raw!r}")
    missing = [k for k in KEYS if k not in raw]
    if missing:
        raise ValueError(f"volume preset {str(path)!r}: missing keys {missing} (expected {list(KEYS)})")
    try:
        spec = schema.build(VolumePreset, raw)
    except ConfigError as e:
        raise ValueError(f"volume preset {str(path)!r}: {e}") from None
    if not spec.name:
        raise ValueError(f"volume preset {str(path)!r}: name must not be empty")
    vol = Volume(spec.name, spec.box_mpc_h, spec.slab_mpc_h, spec.pixel_mpc_h)
    for what, size in (("slab", vol.slab_mpc_h), ("pixel", vol.pixel_mpc_h)):
        if size > vol.box_mpc_h:
            raise ValueError(f"volume {vol.name!r}: the {what} ({size:g} Mpc/h) is larger than the box "
                             f"({vol.box_mpc_h:g} Mpc/h)")
    if not math.isfinite(vol.box_mpc_h / vol.pixel_mpc_h) or vol.pixels > 1_000_000:
        raise ValueError(f"volume {vol.name!r}: {vol.box_mpc_h:g} / {vol.pixel_mpc_h:g} Mpc/h is "
                         f"{vol.box_mpc_h / vol.pixel_mpc_h:.4g} pixels per side; at most 1e6 are supported")
    if abs(vol.box_mpc_h / vol.slab_mpc_h - vol.n_slabs) > 1e-6 * vol.n_slabs:
        raise ValueError(f"volume {vol.name!r}: box {vol.box_mpc_h} Mpc/h is not a whole number of "
                         f"{vol.slab_mpc_h} Mpc/h slabs ({vol.box_mpc_h / vol.slab_mpc_h:.4g})")
    if abs(vol.box_mpc_h / vol.pixels / vol.pixel_mpc_h - 1) > PIXEL_TOLERANCE:
        raise ValueError(f"volume {vol.name!r}: box {vol.box_mpc_h} Mpc/h is not a whole number of "
                         f"{vol.pixel_mpc_h} Mpc/h pixels ({vol.box_mpc_h / vol.pixel_mpc_h:.4f})")
    return vol


def check_scale(name: str, unit: str, model_value: float, other_value: float, other: str) -> None:
    """A length of the model's training maps [Mpc/h] against another's, to PIXEL_TOLERANCE."""
    if abs(model_value / other_value - 1) > PIXEL_TOLERANCE:
        raise ValueError(f"{name} mismatch: the model was trained on {model_value:.6g} Mpc/h {unit}, {other} has "
                         f"{other_value:.6g} Mpc/h")


def check_model(vol: Volume, store_attrs: Mapping) -> None:
    """The model's training maps must have the volume's pixel scale and slab thickness."""
    check_scale("pixel scale", "pixels", float(store_attrs["pixel_size_mpc_h"]), vol.pixel_mpc_h, f"volume {vol.name!r}")
    check_scale("slab thickness", "slabs", float(store_attrs["slab_thickness_mpc_h"]), vol.slab_mpc_h, f"volume {vol.name!r}")
