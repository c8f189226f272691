import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def mock_cfg(tmp_path_factory):
    """Config of a session-wide mock LH set (6 simulations at 64^3, the test fidelity) and its store."""
    from hpc_vdm.config import load_config

    root = tmp_path_factory.mktemp("mock")
    repo = Path(__file__).parents[1]
    return load_config(repo / "configs" / "test.yaml",
                       [f"mock.out_dir={root}/cmd", f"data.source_dir={root}/cmd", f"data.store={root}/maps.zarr"])


@pytest.fixture(scope="session")
def mock_files(mock_cfg):
    from hpc_vdm.mock.cli import generate

    return generate(mock_cfg, progress=False)


@pytest.fixture(scope="session")
def maps_store(mock_cfg, mock_files):
    from hpc_vdm.prepare import prepare

    return prepare(mock_cfg, progress=False)
