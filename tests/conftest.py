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


@pytest.fixture(scope="session")
def lh128():
    """The slow mock checks' LH set: 20 simulations at 128^3 with 20 PM steps and CMD's painting kernel (the demo's
    fidelity), seed 7 (not the seed the model was calibrated on). Each simulation is evolved once for both the
    CMD pixel statistics (test_mock_calibration) and the shuffle test with the HOD beside it (test_mock_assembly),
    two simulations side by side."""
    from hpc_vdm.baselines import hod
    from hpc_vdm.config import load_config
    from hpc_vdm.mock import calibration, shuffle, simulate, stars

    cfg = load_config(None, ["mock.particles=128", "mock.pm_steps=20", "mock.upsample=1", "mock.n_sims=20",
                             "mock.seed=7", "mock.workers=2"]).mock
    pixels, shuffles = simulate.over_simulations(
        cfg, cfg.n_sims, calibration.pixel_values(cfg, list(calibration.CMD)),
        shuffle.shuffle_measure(cfg, list(stars.SUITES), models={"hod": hod.draw_on_catalogue}))
    return {"cfg": cfg, "pixels": calibration.pixel_summary(pixels), "shuffle": shuffle.summary(shuffle.stack(shuffles))}
