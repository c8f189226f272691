"""Pieces every command shares: ``--config``/``--set`` arguments, shortcut flags, logging."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import Callable, Mapping, Sequence

from .config import ConfigError, RunConfig, load_config
from .io import OutputError


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", metavar="YAML", help="run config (defaults: the embedded mock pipeline)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value; repeatable")
    return p


def _field(key: str):
    """(dataclass field, default value) of ``section.key``."""
    section, name = key.split(".")
    defaults = getattr(RunConfig(), section)
    return {f.name: f for f in dataclasses.fields(defaults)}[name], getattr(defaults, name)


def add_shortcuts(p: argparse.ArgumentParser, shortcuts: Mapping[str, str]) -> None:
    """One ``--flag`` per shortcut (dest ``n_samples`` -> ``--n-samples``), typed and documented by its field."""
    for dest, key in shortcuts.items():
        f, default = _field(key)
        kind = type(default)
        note = "; comma-separated" if kind is list else ""
        p.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind if kind in (int, float) else str,
                       help=f"{f.metadata['doc']} ({key}{note})".replace("%", "%%"))  # argparse formats help


def resolve(args: argparse.Namespace, shortcuts: Mapping[str, str] = {}) -> RunConfig:
    """The config of a command: YAML, then ``--set``, then shortcut flags (``--particles`` -> mock.particles)."""
    overrides = list(args.overrides)
    for dest, key in shortcuts.items():
        value = getattr(args, dest, None)
        if value is not None:
            if isinstance(_field(key)[1], list) and isinstance(value, str):
                value = f"[{value}]"  # --axes 0,1,2 -> [0,1,2]
            overrides.append(f"{key}={value}")
    return load_config(args.config, overrides)


def setup_logging(verbose: bool = True) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s", datefmt="%H:%M:%S")


def run(main_fn, argv: Sequence[str] | None) -> int:
    """Run a command body; user errors (bad config, bad input, an output it may not or cannot write) print one
    line and exit 2."""
    try:
        return main_fn(argv) or 0
    except (ConfigError, ValueError, OSError, OutputError) as e:  # OSError: FileNotFoundError, FileExistsError...
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:
        print(f"error: out of memory{': ' + str(e) if str(e) else ''} (a smaller problem, or a machine with more "
              f"memory; nothing complete was written)", file=sys.stderr)
        return 2


def command(prog: str, description: str, shortcuts: Mapping[str, str], body: Callable[..., object],
            flags: Mapping[str, str] = {}, *, overwrite: str | None = None):
    """``main(argv) -> exit code`` of a command set by ``--config``, ``--set``, its shortcut flags and its
    boolean ``flags`` ({name: help}: ``--name``, passed to ``body`` as a keyword); with ``overwrite`` (what it
    replaces, for the help) an ``--overwrite`` flag is passed on to ``body`` too."""
    def main(argv: Sequence[str] | None = None) -> int:
        def parse_and_run(argv) -> int:
            p = parser(prog, description)
            add_shortcuts(p, shortcuts)
            if overwrite:
                p.add_argument("--overwrite", action="store_true", help=f"replace this command's own {overwrite}")
            for name, text in flags.items():
                p.add_argument("--" + name.replace("_", "-"), dest=name, action="store_true", help=text)
            args = p.parse_args(argv)
            setup_logging()
            names = [*flags, *(["overwrite"] if overwrite else [])]
            body(resolve(args, shortcuts), **{name: getattr(args, name) for name in names})
            return 0

        return run(parse_and_run, argv)

    return main
