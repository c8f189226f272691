import json
from pathlib import Path

import pytest

from hpc_vdm.config import ConfigError, RunConfig, from_dict, load_config, to_dict, to_json

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_defaults_are_the_embedded_default():
    cfg = load_config()
    assert cfg.mock.particles == 64 and cfg.data.target == "Mcdm"
    assert to_dict(load_config(Path(__file__).parents[1] / "configs" / "default.yaml")) == to_dict(RunConfig())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path):
    load_config(path)


def test_unknown_key_suggests_the_close_match():
    with pytest.raises(ConfigError, match=r"unknown config key 'mock.partcles'.*'particles'"):
        load_config(None, ["mock.partcles=32"])
    with pytest.raises(ConfigError, match=r"unknown config key 'dat'.*'data'"):
        load_config(None, ["dat.store=x"])


def test_unknown_key_in_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  batchsize: 4\n")
    with pytest.raises(ConfigError, match=r"data.batchsize.*'batch_size'"):
        load_config(p)


@pytest.mark.parametrize("assignment, message", [
    ("mock.particles=2.5", r"mock.particles: expected int, got 2.5"),
    ("mock.particles=abc", r"mock.particles: expected int, got 'abc'"),
    ("data.augment_roll=1", r"data.augment_roll: expected bool.*got 1"),
    ("data.fields=Mstar", r"data.fields: expected a list of str, got 'Mstar'"),
    ("data.log_offsets.Mcdm=x", r"data.log_offsets.Mcdm: expected float, got 'x'"),
])
def test_wrong_type_names_key_type_and_value(assignment, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [assignment])


@pytest.mark.parametrize("assignment, message", [
    ("mock.particles=4", r"mock.particles: expected a value in \[8, 4096\], got 4"),
    ("mock.a_start=0.9", r"mock.a_start: expected a value in \[0.01, 0.5\], got 0.9"),
    ("data.batch_size=0", r"data.batch_size: expected a value in \[1, inf\], got 0"),
    ("mock.suite=Simba", r"mock.suite: expected one of \['IllustrisTNG', 'SIMBA', 'Astrid'\], got 'Simba' \(did you mean 'SIMBA'\?\)"),
    ("sampler.clip_log=[12, 0]", r"sampler.clip_log: expected \[lo, hi\] with lo < hi, got \[12.0, 0.0\]"),
    ("sampler.clip_log=[0]", r"sampler.clip_log: expected \[lo, hi\] with lo < hi, got \[0.0\]"),
    ("sampler.clip_log=[0, .inf]", r"sampler.clip_log\[1\]: expected a finite number"),
])
def test_out_of_range_names_key_range_and_value(assignment, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [assignment])


def test_overrides_parse_yaml_values():
    cfg = load_config(None, ["mock.a_start=5e-2", "data.split_fractions=[0.5, 0.25, 0.25]",
                             "data.augment_roll=false", "mock.box_mpc_h=50", "data.log_offsets.Mcdm=1e-3"])
    assert cfg.mock.a_start == 0.05 and isinstance(cfg.mock.box_mpc_h, float) and cfg.mock.box_mpc_h == 50.0
    assert cfg.data.split_fractions == [0.5, 0.25, 0.25] and cfg.data.augment_roll is False
    assert cfg.data.log_offsets == {"Mstar": 1.0, "Mcdm": 1e-3}
    assert load_config(None, ["sampler.clip_log=[0, 12.25]"]).sampler.clip_log == [0.0, 12.25]
    assert load_config(None).sampler.clip_log is None


def test_yaml_reads_exponent_floats(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("mock:\n  a_start: 5e-2\n")
    assert load_config(p).mock.a_start == 0.05


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["mock.particles"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_resolved_config_round_trips_through_json(tmp_path):
    cfg = load_config(None, ["mock.n_sims=3", "data.batch_size=5"])
    to_json(cfg, tmp_path / "config.json")
    again = from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert to_dict(again) == to_dict(cfg)


def test_cli_reports_config_errors_with_exit_code_2(capsys):
    from hpc_vdm.mock.cli import main

    assert main(["--set", "mock.partcles=3"]) == 2
    assert "did you mean 'particles'" in capsys.readouterr().err


def test_package_lists_commands(capsys):
    from hpc_vdm.__main__ import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert "mock" in out and "prepare" in out


OLD_LAYOUT = """
diffusion: {gamma_min: -10.0, schedule: fixed_linear}
model: {param_conditioning: true, channels: 16}
sample: {model: a/model.pt, steps: 50, which: raw}
dm2gal: {grids: {dm: d.npy}, patch: 17, block: 8, eval_out: cmp, min_log_mstar: 7.5}
"""


def test_a_yaml_of_the_earlier_layout_keeps_working_and_says_what_moved(tmp_path, caplog):
    path = tmp_path / "old.yaml"
    path.write_text(OLD_LAYOUT)
    with caplog.at_level("WARNING", logger="hpc_vdm.config"):
        cfg = load_config(path)
    assert (cfg.model.vdm.gamma_min, cfg.model.vdm.schedule) == (-10.0, "fixed_linear")
    assert cfg.model.params == ["Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2"] and cfg.model.channels == 16
    assert (cfg.trained.model, cfg.trained.which, cfg.sampler.steps) == ("a/model.pt", "raw", 50)
    assert cfg.volume.grids == {"dm": "d.npy"} and cfg.model.dm2gal.patch == 17 and cfg.paint.block == 8
    assert cfg.baselines.out == "cmp" and cfg.volume.min_log_mstar == cfg.model.dm2gal.min_log_mstar == 7.5
    assert "diffusion.gamma_min moved to model.vdm.gamma_min" in caplog.text


def test_a_moved_key_set_twice_to_different_values_is_one_clear_error():
    from hpc_vdm.config import ConfigError

    with pytest.raises(ConfigError, match=r"evaluate.steps moved to sampler.steps, which is also set to another value"):
        load_config(None, ["tile.steps=25", "evaluate.steps=20"])
    assert load_config(None, ["tile.steps=25", "evaluate.steps=25"]).sampler.steps == 25


def test_every_config_float_is_finite():
    from hpc_vdm.config import ConfigError

    for bad in ("nan", ".nan", ".inf", "-.inf", "inf"):
        with pytest.raises(ConfigError, match=r"train.grad_clip: expected a finite number"):
            load_config(None, [f"train.grad_clip={bad}"])
