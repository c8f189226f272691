"""`make science` end to end at smoke size (tools/science_smoke.sh): every stage's real command line, each
stage's paths under SCI, the report copied where it is told (never into docs/ when told elsewhere), and a rerun
that resumes: finished trainings re-export the same model, finished stages are skipped."""
import shutil
import subprocess

import pytest

from helpers import REPO, clean_env, files


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None or not (REPO / ".venv" / ".installed").exists(),
                    reason="needs make and the project's .venv (made by `make test`)")
def test_the_science_chain_runs_every_stage_into_the_folder_it_is_given(tmp_path):
    docs_before = files(REPO / "docs" / "results")
    out = tmp_path / "smoke"
    proc = subprocess.run(["bash", str(REPO / "tools" / "science_smoke.sh"), str(out)], env=clean_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    summary = (out / "docs" / "science" / "summary.md").read_text()
    for row in ("baseline: regressor", "baseline: linear transfer", "the condition itself",
                "P ratio a calibrated posterior's samples score"):
        assert row in summary, row
    assert (out / "docs" / "tiling" / "seams_mock75_science_net.png").stat().st_size > 0
    assert (out / "sci" / "regressor" / "export" / "model.pt").exists()
    assert files(REPO / "docs" / "results") == docs_before   # the smoke run wrote nothing into the docs

    exported = {m: files(out / "sci" / m / "export") for m in ("run", "regressor")}
    again = subprocess.run(["bash", str(REPO / "tools" / "science_smoke.sh"), str(out)], env=clean_env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("resumed from step00000004") == 2        # both trainings were done: resumed, not redone
    assert {m: files(out / "sci" / m / "export") for m in ("run", "regressor")} == exported

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    refused = subprocess.run(["bash", str(REPO / "tools" / "science_smoke.sh"), str(theirs)], env=clean_env(),
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "not a folder this script made" in refused.stderr
    assert list(theirs.iterdir()) == []
