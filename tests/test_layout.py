"""The rooms of DESIGN.md, checked on the parsed imports (absolute and relative, lazy ones included): the
layer order, no import circles, no command importing another, and the sizes of the code."""
import ast
import sys
import warnings
from pathlib import Path

import pytest

import tiling

REPO = Path(__file__).parents[1]
PACKAGE = REPO / "hpc_vdm"
COMMANDS = {"hpc_vdm.prepare", "hpc_vdm.train", "hpc_vdm.export", "hpc_vdm.sample", "hpc_vdm.tile",
            "hpc_vdm.mock.cli", "hpc_vdm.spectra.cli", "hpc_vdm.evaluate.cli", "hpc_vdm.paint",
            "hpc_vdm.prepare_volume", "hpc_vdm.baselines.cli", "hpc_vdm.sweep", "hpc_vdm.infer"}
DISTRIBUTION = {"deepspeed", "mpi4py", "submitit"}
# DESIGN.md's layer order: a module imports only from its own layer or below (lazy imports count)
LAYERS = [
    ["tiling", "hpc_vdm", "hpc_vdm.config", "hpc_vdm.io", "hpc_vdm.dist", "hpc_vdm.models", "hpc_vdm.cli",
     "hpc_vdm.figures"],
    ["hpc_vdm.data", "hpc_vdm.diffusion", "hpc_vdm.spectra", "hpc_vdm.mock"],
    ["hpc_vdm.bundle"],
    ["hpc_vdm.families", "hpc_vdm.baselines"],
    ["hpc_vdm.training", "hpc_vdm.inference"],
    ["hpc_vdm.evaluate", "hpc_vdm.emulate", "hpc_vdm.sweeps"],
]
TOP = len(LAYERS)  # commands and __main__ shims


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names (``from . import x``
    counts as importing ``pkg.x`` as well as ``pkg``)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names.add(mod)
            names |= {f"{mod}.{a.name}" for a in node.names}
    return names


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sources("hpc_vdm", "tiling")}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name refers to (``pkg.mod.attr`` -> ``pkg.mod``), or None if not ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def layer(module: str) -> int:
    if module in COMMANDS or module.endswith("__main__"):
        return TOP
    best, depth = None, -1
    for i, rooms in enumerate(LAYERS):
        for room in rooms:
            if (module == room or module.startswith(room + ".")) and room.count(".") > depth:
                best, depth = i, room.count(".")
    assert best is not None, f"{module} lies in no layer of DESIGN.md; add it to LAYERS"
    return best


def graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (lazy imports included)."""
    modules = all_modules()
    # a module's own packages are not its imports (``from . import x`` runs a package __init__ that is running)
    return {m: {r for r in (resolve(n, modules) for n in imports(p)) if r and r != m and not m.startswith(r + ".")}
            for m, p in modules.items()}


def sources(*folders: str) -> list[Path]:
    return [p for f in folders for p in (REPO / f).rglob("*.py")]


def touches(names: set[str], roots: set[str]) -> set[str]:
    return {n for n in names if any(n == r or n.startswith(r + ".") for r in roots)}


def test_tiling_is_ours_and_never_imports_hpc_vdm():
    assert Path(tiling.__file__).resolve().is_relative_to(REPO)  # not PyPI's unrelated `tiling`
    for path in sources("tiling"):
        assert not touches(imports(path), {"hpc_vdm"}), path


def test_models_and_diffusion_are_plain_torch():
    banned = DISTRIBUTION | {"yaml", "hpc_vdm.config", "hpc_vdm.training", "hpc_vdm.dist", "hpc_vdm.cli"}
    for path in sources("hpc_vdm/models", "hpc_vdm/diffusion"):
        assert not touches(imports(path), banned), (path, touches(imports(path), banned))


def test_mock_and_data_never_import_distribution_libraries():
    for path in sources("hpc_vdm/mock", "hpc_vdm/data"):
        assert not touches(imports(path), DISTRIBUTION | {"hpc_vdm.training"}), path


def test_spectra_and_evaluate_metrics_never_import_torch():
    for path in sources("hpc_vdm/spectra") + [PACKAGE / "evaluate" / "posterior.py"]:  # spectra.cli included
        assert not touches(imports(path), {"torch"}), path


def test_imports_point_down_the_layers():
    upward = sorted(f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
                    for m, deps in graph().items() for d in deps if layer(d) > layer(m))
    assert not upward, upward


def test_no_import_circles():
    g, seen, done, circles = graph(), set(), set(), []

    def visit(m, path):
        seen.add(m)
        for d in sorted(g.get(m, ())):
            if d in path:
                circles.append(" -> ".join(path[path.index(d):] + [d]))
            elif d not in done and d not in seen:
                visit(d, path + [d])
        done.add(m)

    for m in sorted(g):
        if m not in seen:
            visit(m, [m])
    assert not circles, circles


def test_the_layer_check_has_teeth():
    assert layer("hpc_vdm.evaluate.analysis") > layer("hpc_vdm.inference.maps") > layer("hpc_vdm.families.vdm") \
        > layer("hpc_vdm.bundle") > layer("hpc_vdm.spectra.scores") > layer("hpc_vdm.io")
    assert layer("hpc_vdm.spectra.cli") == layer("hpc_vdm.tile") == TOP


@pytest.mark.parametrize("how", ["python -m hpc_vdm CMD", "python -m hpc_vdm.CMD"])
def test_every_listed_command_answers_help_both_ways(how, capsys, monkeypatch):
    """In-process: ``hpc_vdm.__main__.main([CMD, --help])`` and ``runpy`` of ``hpc_vdm.CMD`` as __main__."""
    import runpy

    from hpc_vdm import __main__ as package_main

    for name in package_main.COMMANDS:
        monkeypatch.setattr(sys, "argv", [f"hpc_vdm.{name}", "--help"])
        with pytest.raises(SystemExit) as stop:
            if how == "python -m hpc_vdm CMD":
                package_main.main([name, "--help"])
            else:  # runpy warns that the module was imported before (by the first case): harmless here
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    runpy.run_module(f"hpc_vdm.{name}", run_name="__main__", alter_sys=True)
        assert stop.value.code == 0, (how, name, capsys.readouterr().err[-2000:])
        assert "usage" in capsys.readouterr().out.lower(), (how, name)


def test_commands_never_import_other_commands():
    for path in sources("hpc_vdm"):
        if path.name == "__main__.py":  # `python -m hpc_vdm CMD` dispatches by name
            continue
        me = module_name(path)  # a command package (mock, spectra) exposes its own cli's main
        others = touches(imports(path), {c for c in COMMANDS if c != me and not c.startswith(me + ".")})
        assert not others, (path, others)


def test_the_relative_import_resolver_sees_what_it_must():
    found = imports(PACKAGE / "families" / "vdm.py")
    assert {"hpc_vdm.families.base", "hpc_vdm.config", "hpc_vdm.models"} <= found


def test_export_and_the_bundle_load_without_deepspeed_at_import():
    for path in (PACKAGE / "export.py", PACKAGE / "bundle.py", PACKAGE / "training" / "export.py"):
        top = {n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
               for n in ast.parse(path.read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))}
        assert not any(str(m).startswith("deepspeed") for m in top), path


@pytest.mark.parametrize("folder", ["hpc_vdm", "tiling"])
def test_one_idea_per_room(folder):
    """No module over 400 lines, no function over 80."""
    too_big = []
    for path in sources(folder):
        text = path.read_text()
        if text.count("\n") > 400:
            too_big.append(f"{path}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                too_big.append(f"{path}:{node.lineno} {node.name}() {node.end_lineno - node.lineno + 1} lines")
    assert not too_big, too_big
