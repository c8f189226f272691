"""Config machinery: YAML -> typed dataclasses, validated on load, ``--set a.b=v`` overrides, diffs.

The sections themselves live in :mod:`hpc_vdm.config.sections`; this module knows nothing of them.
Validation happens once, here, before any command writes anything:

* an unknown key raises :class:`ConfigError` with the closest valid names;
* a wrong type names the key, the expected type and the value;
* a value outside its range or choices names the key, the allowed range and the value.

The resolved config is plain data (:func:`to_dict`), written as JSON into run dirs and stores.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

class ConfigError(ValueError):
    """A config value or key is invalid; the message names the key, what was expected and the value."""


def param(default: Any, doc: str, *, range: tuple[float | None, float | None] | None = None,
          choices: tuple | None = None):
    """A config field with its documentation and allowed values (checked on load)."""
    meta = {"doc": doc, "range": range, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: json.loads(json.dumps(d)), metadata=meta)
    return field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------
# YAML with YAML-1.2 floats (PyYAML reads `1e-3` as a string otherwise)
# ---------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+"
               r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """A ``--set`` value as YAML: ``3e-4`` -> float, ``[1, 2]`` -> list, ``true`` -> bool, else str."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set value {text!r} is not valid YAML: {getattr(e, 'problem', None) or e}") from None


# ---------------------------------------------------------------------------------------------
# Building and validating
# ---------------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _suggest(key: str, valid: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else f"; valid keys: {sorted(valid)}"


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints widen to floats, nothing else converts."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_type_name(typing.get_args(tp)[0])}, got {value!r}")
        items = [_coerce(v, typing.get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_coerce(k, kt, f"{key} key"): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected bool (true/false), got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected float, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected str, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported config annotation {tp!r}")  # a bug in this module, not user input


def _check_allowed(value: Any, meta: typing.Mapping, key: str) -> None:
    if isinstance(value, list):  # choices and ranges of a list hold for each of its items
        for i, item in enumerate(value):
            _check_allowed(item, meta, f"{key}[{i}]")
        return
    choices, bounds = meta.get("choices"), meta.get("range")
    if choices is not None and value not in choices:
        lowered = {str(c).lower(): c for c in choices}
        close = difflib.get_close_matches(str(value).lower(), list(lowered), n=1, cutoff=0.5)
        hint = f" (did you mean {lowered[close[0]]!r}?)" if close else ""
        raise ConfigError(f"{key}: expected one of {list(choices)}, got {value!r}{hint}")
    if bounds is not None:
        lo, hi = bounds
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{key}: expected a value in [{lo}, {hi if hi is not None else 'inf'}], got {value!r}")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise ConfigError(f"unknown config key {key!r}{_suggest(str(unknown[0]), fields)}")
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        if typing.get_origin(hints[name]) is dict and isinstance(value, dict):  # a mapping merges into its default
            value = {**fields[name].default_factory(), **value}
        kwargs[name] = _coerce(value, hints[name], key)
        _check_allowed(kwargs[name], fields[name].metadata, key)
    obj = cls(**kwargs)
    for name, f in fields.items():  # defaults are checked too: a bad default is a bug worth a clear message
        if name not in kwargs:
            _check_allowed(getattr(obj, name), f.metadata, f"{prefix}.{name}" if prefix else name)
    return obj


def apply_override(raw: dict, assignment: str) -> None:
    """Apply ``section.key=value`` to a raw (YAML) mapping in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects section.key=value, got {assignment!r}")
    path, text = assignment.split("=", 1)
    keys = path.strip().split(".")
    if not all(keys):
        raise ConfigError(f"--set expects section.key=value, got {assignment!r}")
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {path}: {k!r} is not a section")
    node[keys[-1]] = parse_value(text)


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """A YAML file as plain data (safe loader: no file can run code); errors name the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {str(path)!r}")
    try:
        return yaml.load(path.read_text(), Loader=_Loader)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {str(path)!r} is not text (UTF-8): {e.reason} at byte {e.start}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{what} {str(path)!r} is not valid YAML{where}: "
                          f"{getattr(e, 'problem', None) or e}") from None


def load(cls: type, path: str | Path | None = None, overrides: typing.Sequence[str] = (),
         migrate: typing.Callable[[dict], dict] | None = None) -> Any:
    """YAML file (optional) + ``--set`` overrides (then ``migrate``: keys of an older layout) -> a validated
    ``cls``."""
    raw: Any = {}
    if path is not None:
        raw = read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    for assignment in overrides:
        apply_override(raw, assignment)
    return _build(cls, migrate(raw) if migrate else raw, "")


def build(cls: type, raw: dict) -> Any:
    """Rebuild (and re-validate) a ``cls`` written by :func:`to_dict`."""
    return _build(cls, raw, "")


def differing(a: dict, b: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) for every leaf that differs between two nested dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differing(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append((f"{prefix}{k}", va, vb))
    return out


def describe(diff: list[tuple[str, Any, Any]], labels: tuple[str, str] = ("before", "now"), most: int = 6) -> str:
    """'key: a (before) != b (now); ...' for the first ``most`` differences of :func:`differing`."""
    text = "; ".join(f"{k}: {va!r} ({labels[0]}) != {vb!r} ({labels[1]})" for k, va, vb in diff[:most])
    return text + (f"; and {len(diff) - most} more" if len(diff) > most else "")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def to_json(cfg: Any, path: str | Path | None = None) -> str:
    text = json.dumps(to_dict(cfg), indent=2, sort_keys=True)
    if path is not None:
        Path(path).write_text(text + "\n")
    return text
