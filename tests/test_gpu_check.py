"""tools/gpu_check.sh: every stage runs (--dry-run: on the CPU, tiny) into one JSON; a failing stage is recorded."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "tools"))
import gpu_check  # noqa: E402


def test_a_failing_or_hanging_stage_is_recorded_and_the_next_one_runs(tmp_path, monkeypatch):
    commands = {"train": [sys.executable, "-c", "import sys; print('log line'); print('{\"x\": 1}'); sys.exit(3)"],
                "zero": [sys.executable, "-c", "import time; time.sleep(60)"],
                "sampling": [sys.executable, "-c", "print('no report here')"],
                "tile": [sys.executable, "-c", "print('starting'); print('{\"a\": {\"b\": [1, 2]}}')"],
                "dm2gal": [sys.executable, "-c", "raise SystemExit(0)"]}
    monkeypatch.setattr(gpu_check, "stage_command", lambda stage, dry: commands[stage])
    monkeypatch.setitem(gpu_check.LIMIT_S, "zero", 1)
    out = tmp_path / "report.json"
    assert gpu_check.main(["--out", str(out)]) == 0
    stages = json.loads(out.read_text())["stages"]
    assert list(stages) == list(gpu_check.STAGES)
    assert not stages["train"]["ok"] and stages["train"]["error"] == "exit code 3"
    assert stages["train"]["result"] == {"x": 1}  # what it printed before failing is kept
    assert not stages["zero"]["ok"] and stages["zero"]["error"] == "timed out after 1 s"
    assert not stages["sampling"]["ok"] and "printed no JSON report" in stages["sampling"]["error"]
    assert stages["tile"]["ok"] and stages["tile"]["result"] == {"a": {"b": [1, 2]}}
    assert not stages["dm2gal"]["ok"]


def test_a_spent_budget_records_the_stages_left_unrun(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "stage_command", lambda stage, dry: [sys.executable, "-c", "print('{}')"])
    out = tmp_path / "report.json"
    gpu_check.main(["--out", str(out), "--budget-s", "5", "--stages", "train", "tile"])
    stages = json.loads(out.read_text())["stages"]
    assert stages["train"]["error"] == stages["tile"]["error"] == "not run: the 5.0 s budget was spent"


@pytest.mark.slow
def test_dry_run_runs_every_stage_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "HPC_VDM_PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    subprocess.run(["bash", str(REPO / "tools" / "gpu_check.sh"), "--dry-run", "--out", str(out)], check=True,
                   timeout=900, env=env, cwd=tmp_path)
    report = json.loads(out.read_text())
    assert report["dry_run"] and list(report["stages"]) == list(gpu_check.STAGES)
    failed = {s: r.get("error", "") + r.get("stderr_tail", "")[-500:] for s, r in report["stages"].items()
              if not r["ok"]}
    assert not failed, failed
    res = {s: r["result"] for s, r in report["stages"].items()}
    assert {"plain_fp32", "bf16_autocast", "channels_last_bf16"} <= {
        k for k, v in res["train"]["results"].items() if "s_per_step" in v}
    assert {"plain_fp32", "ddp_fp32", "zero0_fp32", "zero1_fp32", "zero2_fp32", "zero1_bf16"} <= {
        k for k, v in res["zero"]["results"].items() if "s_per_step" in v}
    assert res["sampling"]["results"]["ancestral_fp32"]["samples_per_s"] > 0
    tile = res["tile"]["networks"]["science"]["samplers"]["ancestral"]
    assert tile["projections"]["tng300_2099"][0]["windows_per_nfe"] == 44**2  # ceil(2099 / 48)^2
    assert res["dm2gal"]["dense_voxels_per_s"] > 0
