"""`python -m hpc_vdm.evaluate`: the report of a model on held-out maps, and its bad inputs."""
import json

import numpy as np
import pytest
import zarr

from hpc_vdm.data.dataset import read_attrs, stratified_maps
from hpc_vdm.evaluate import cli as evaluate
from hpc_vdm.evaluate import report
from test_sample import model  # noqa: F401 (fixture: a tiny exported VDM on the test store)


def run(model, out, *extra):
    return evaluate.main(["--model", str(model), "--n-maps", "3", "--n-samples", "4", "--steps", "3", "--sampler",
                          "ancestral", "--out", str(out), "--set", "evaluate.progress=false", *extra])


def test_report_writes_metrics_figures_and_summary(model, maps_store, tmp_path):
    assert run(model, tmp_path / "ev", "--set", f"evaluate.cv_store={maps_store}") == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    p = m["posterior"]
    assert p["n_maps"] == 3 and p["n_samples"] == 4 and m["n_sims"] >= 1
    for space in ("overdensity", "log"):
        assert set(p["samples"][space]) == {"k<kN/4", "kN/4-kN/2", "kN/2-kN"}
    assert p["zscore_log_pixel"]["expected_std"] == pytest.approx(np.sqrt(5.0))  # (S + 1)/(S - 3), S = 4
    assert [c["expected"] for c in p["calibration"]["pixel"]["coverage"]] == [0.6, 1.0]  # 3 and 5 of 5 ranks
    assert all("observed_se" in c for q in p["calibration"].values() for c in q["coverage"])   # over simulations
    assert p["chi2_r"]["truths_floor"] > 0
    for name in ("fig1.png", "fig2.png", "calibration.png", "summary.md"):
        assert (tmp_path / "ev" / "report" / name).stat().st_size > 1000, name
    attrs = read_attrs(maps_store)
    assert m["maps"] == stratified_maps(attrs, "test", 3, 0)
    # the highest r(k) per band, led over the best other estimator by the mean of the per-map differences
    leads, rows = p["r_leads"], report.score_rows(p, "sample")
    assert leads["n_maps"] == 3 and leads["n_sims"] == m["n_sims"]
    for space in ("overdensity", "log"):
        for band, b in leads[space].items():
            assert rows[b["best"]][space][band]["r"] == max(r[space][band]["r"] for r in rows.values())
            src = report.row_sources("sample")
            assert src.get(b["next"], b["next"]) != src.get(b["best"], b["best"])   # another estimator's row
            d = np.subtract(rows[b["best"]][space][band]["r_maps"], rows[b["next"]][space][band]["r_maps"])
            assert b["lead"] == pytest.approx(d.mean()) and len(d) == 3
    assert "Highest r(k), with its lead over the best other estimator" in (tmp_path / "ev" / "report" /
                                                                          "summary.md").read_text()
    panels = {"one_p": {"Omega_m low (0.1)": {"pk_ratio_median": 0.5, "r_mean": 0.25, "maps": [0, 1]}},
              "cross_suite": {"Astrid": {"pk_ratio_median": 1.5, "r_mean": 0.75, "split": "test", "maps": [3]}},
              "tiled": {"volume": "tng100", "samples": 2, "slab_pixels": 768, "pk_ratio_to_whole_truths_median": 1.25,
                        "pk_ratio_by_band": {"k<kN/4": 1.125, "kN/4-kN/2": 1.0, "kN/2-kN": 0.875},
                        "cond_pk_ratio_by_band": {"k<kN/4": 0.5, "kN/4-kN/2": 0.25, "kN/2-kN": 0.125}}}
    report.markdown(m | panels, ["fig1.png"], tmp_path / "summary.md")  # the panels' numbers as tables
    text = (tmp_path / "summary.md").read_text()
    assert "| Omega_m low (0.1) | 0.500 | 0.250 | 2 |" in text and "| Astrid | 1.500 | 0.750 | 1 |" in text
    assert "| the tiled slab's draws / the truths of the held-out maps | 1.125 | 1.000 | 0.875 |" in text
    assert "| the slab's condition / the conditions of the held-out maps | 0.500 | 0.250 | 0.125 |" in text


def test_held_out_maps_come_from_every_simulation(maps_store):
    attrs = dict(read_attrs(maps_store))
    attrs["splits"] = {"test": [0, 1, 2]}
    maps = stratified_maps(attrs, "test", 6, 0)
    assert sorted({m // attrs["maps_per_sim"] for m in maps}) == [0, 1, 2] and len(set(maps)) == 6
    assert stratified_maps(attrs, "test", 6, 0) == maps and stratified_maps(attrs, "test", 6, 1) != maps


def test_bad_inputs_are_refused_before_anything_is_written(model, maps_store, tmp_path, capsys):
    store = zarr.open_group(str(maps_store), mode="r")
    no_truth = tmp_path / "no_truth.zarr"
    g = zarr.open_group(str(no_truth), mode="w")
    g.attrs.update({**dict(store.attrs), "fields": ["Mstar"], "chunks": {}})
    for bad, match in [((["--store", str(no_truth)]), r"has no \['Mcdm'\] maps"),
                       ((["--n-samples", "0"]), r"evaluate\.n_samples: expected a value in \[1"),
                       ((["--split", "nope"]), r"evaluate\.split: expected one of"),
                       ((["--set", "evaluate.one_p_store=/nowhere.zarr"]), r"no maps store at '/nowhere\.zarr'")]:
        assert run(model, tmp_path / "ev", *bad) == 2
        err = capsys.readouterr().err
        assert __import__("re").search(match, err), err
        assert not (tmp_path / "ev").exists()

