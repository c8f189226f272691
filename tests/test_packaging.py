"""A non-editable install has everything the commands read at run time (the volume presets among them)."""
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers import REPO, clean_env


def test_presets_in_configs_are_the_package_data():
    linked = sorted(p.name for p in (REPO / "configs" / "volumes").glob("*.yaml"))
    packaged = sorted(p.name for p in (REPO / "hpc_vdm" / "inference" / "presets").glob("*.yaml"))
    assert linked == packaged == ["camels.yaml", "tng100.yaml", "tng100_64.yaml", "tng300.yaml", "tng300_64.yaml"]


@pytest.mark.slow
def test_pip_install_non_editable_finds_presets(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies (torch, deepspeed, ...) come from this venv, read-only; hpc_vdm itself is installed
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    build = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                            str(REPO)], capture_output=True, text=True, env=clean_env(), cwd=tmp_path, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run = dict(capture_output=True, text=True, env=clean_env(), cwd=outside, timeout=300)
    where = subprocess.run([str(py), "-c", "import hpc_vdm, tiling; print(hpc_vdm.__file__, tiling.__file__)"], **run)
    assert where.returncode == 0 and where.stdout.startswith(site) and str(REPO) not in where.stdout, where
    help_ = subprocess.run([str(py), "-m", "hpc_vdm.tile", "--volume", "tng300", "--help"], **run)
    assert help_.returncode == 0 and "--volume" in help_.stdout, help_.stderr
    lookup = subprocess.run([str(py), "-c", "from hpc_vdm.inference.volumes import load_volume, presets; "
                             "v = load_volume('tng300'); print(presets(), v.pixels, v.n_slabs)"], **run)
    assert lookup.returncode == 0, lookup.stderr
    assert lookup.stdout.split("]")[-1].split() == ["2099", "41"] and "'tng100'" in lookup.stdout
