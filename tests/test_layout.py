"""The rooms of DESIGN.md, checked on the parsed imports (absolute and relative) and the sizes of the code."""
import ast
from pathlib import Path

import pytest

import tiling

REPO = Path(__file__).parents[1]
PACKAGE = REPO / "hpc_vdm"
COMMANDS = {"hpc_vdm.prepare", "hpc_vdm.train", "hpc_vdm.export", "hpc_vdm.sample", "hpc_vdm.tile",
            "hpc_vdm.mock.cli", "hpc_vdm.spectra.cli", "hpc_vdm.evaluate.cli", "hpc_vdm.paint",
            "hpc_vdm.prepare_volume", "hpc_vdm.baselines.cli", "hpc_vdm.sweep"}
DISTRIBUTION = {"deepspeed", "mpi4py", "submitit"}


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
    for path in sources("hpc_vdm/spectra") + [PACKAGE / "evaluate" / "posterior.py"]:
        assert not touches(imports(path), {"torch"}), path


def test_commands_never_import_other_commands():
    for path in sources("hpc_vdm"):
        if path.name == "__main__.py":  # `python -m hpc_vdm CMD` dispatches by name
            continue
        me = module_name(path)  # a command package (mock, spectra) exposes its own cli's main
        others = touches(imports(path), {c for c in COMMANDS if c != me and not c.startswith(me + ".")})
        assert not others, (path, others)


def test_the_relative_import_resolver_sees_what_it_must():
    found = imports(PACKAGE / "training" / "tasks" / "vdm.py")
    assert {"hpc_vdm.training.validate", "hpc_vdm.config", "hpc_vdm.models"} <= found


def test_export_and_the_bundle_load_without_deepspeed_at_import():
    for path in (PACKAGE / "export.py", PACKAGE / "training" / "artifact.py"):
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
