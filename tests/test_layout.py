"""The import rules of DESIGN.md, checked on the source text."""
import ast
from pathlib import Path

import tiling

REPO = Path(__file__).parents[1]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_tiling_is_ours_and_never_imports_hpc_vdm():
    assert Path(tiling.__file__).resolve().is_relative_to(REPO)  # not PyPI's unrelated `tiling`
    for path in (REPO / "tiling").rglob("*.py"):
        assert "hpc_vdm" not in _imports(path), path


def test_mock_and_data_never_import_distribution_libraries():
    for path in [*(REPO / "hpc_vdm" / "mock").rglob("*.py"), *(REPO / "hpc_vdm" / "data").rglob("*.py")]:
        assert not _imports(path) & {"deepspeed", "mpi4py", "submitit"}, path


def test_spectra_never_import_torch():
    for path in (REPO / "hpc_vdm" / "spectra").rglob("*.py"):
        assert "torch" not in _imports(path), path


def _relative_imports(path: Path) -> set[str]:
    return {node.module or "" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.level > 0}


def test_models_and_diffusion_are_plain_torch():
    for path in [*(REPO / "hpc_vdm" / "models").rglob("*.py"), *(REPO / "hpc_vdm" / "diffusion").rglob("*.py")]:
        assert not _imports(path) & {"deepspeed", "mpi4py", "submitit", "yaml"}, path
        assert not {m.split(".")[-1] for m in _relative_imports(path)} & {"config", "dist", "train", "checkpoint"}, path


def test_export_loads_without_deepspeed_at_import():
    top = {n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
           for n in ast.parse((REPO / "hpc_vdm" / "export.py").read_text()).body
           if isinstance(n, (ast.Import, ast.ImportFrom))}
    assert not any(str(m).startswith("deepspeed") for m in top)
