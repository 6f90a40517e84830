"""Sweep specs: validation errors (one line, exit 2, naming file, key and line) and the points
a grid / random spec produces.

Specs are written into tmp_path with `base:` pointing at the shipped configs/neupims.yaml.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hwsim.configs import CONFIG_DIR
from hwsim.dse.spec import load_sweep

from hwsim.cli import main
from hwsim.errors import ConfigError

BASE = CONFIG_DIR / "neupims.yaml"


def spec_file(tmp_path: Path, body: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"base: {BASE}\nset: {{workload.model.n_layers: 1}}\n{body}")
    return path


def sweep_cli(*args):
    return CliRunner().invoke(main, ["sweep", *map(str, args)])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in lines[0], (f, lines[0])


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("body, fragments", [
    # an axis key the config does not have: the loader's own message, at the axis's line
    ("axes:\n  - {key: hardware.pim.macs_per_bnak, values: [8, 16]}\n",
     ["spec.yaml:4", "hardware.pim.macs_per_bnak", "did you mean 'macs_per_bank'"]),
    # a misspelt section
    ("axes:\n  - {key: hardwre.pim.macs_per_bank, values: [8, 16]}\n",
     ["spec.yaml:4", "hardwre", "unknown key"]),
    # a value the config schema rejects
    ("axes:\n  - {key: hardware.pim.macs_per_bank, values: [8, 0]}\n",
     ["spec.yaml:4", "hardware.pim.macs_per_bank", "greater than 0"]),
    # bad ranges
    ("axes:\n  - key: workload.batch\n    linspace: [8, 64, 0]\n",
     ["spec.yaml:5", "axes.0.linspace", "num must be a whole number"]),
    ("axes:\n  - {key: workload.batch, range: [64, 8, 8]}\n",
     ["spec.yaml:4", "axes.0.range", "goes away from stop"]),
    ("axes:\n  - {key: workload.batch, logspace: [0, 64, 4]}\n",
     ["axes.0.logspace", "must be > 0"]),
    ("axes:\n  - {key: workload.batch, linspace: [8, 64]}\n",
     ["axes.0.linspace", "three numbers"]),
    # zip members of different lengths
    ("axes:\n  - zip:\n    - {key: hardware.memory.channels, values: [16, 32]}\n"
     "    - {key: hardware.memory.capacity_gib, values: [16]}\n",
     ["spec.yaml:4", "axes.0", "same number of values", "hardware.memory.channels: 2"]),
    # no generator / two generators / duplicates
    ("axes:\n  - {key: workload.batch}\n", ["axes.0", "exactly one of values"]),
    ("axes:\n  - {key: workload.batch, values: [8, 8]}\n", ["axes.0.values", "listed twice"]),
    ("axes:\n  - {key: workload.batch, values: [8]}\n  - {key: workload.batch, values: [16]}\n",
     ["spec.yaml:5", "axes.1.key", "already swept by axes.0"]),
    # spec keys, metrics, constraints, strategy options
    ("axes:\n  - {key: workload.batch, values: [8]}\nobjectivs: []\n",
     ["spec.yaml:5", "objectivs", "did you mean 'objectives'"]),
    ("axes:\n  - {key: workload.batch, values: [8]}\nobjectives:\n  - maximize: throughput\n",
     ["spec.yaml:6", "objectives.0.maximize", "unknown metric 'throughput'", "throughput_tokens_per_s"]),
    ("axes:\n  - {key: workload.batch, values: [8]}\nconstraints: ['energy_per_tokn_j < 1']\n",
     ["spec.yaml:5", "constraints.0", "unknown metric 'energy_per_tokn_j'"]),
    ("axes:\n  - {key: workload.batch, values: [8]}\nconstraints: ['__import__(\"os\")']\n",
     ["constraints.0", "Call is not allowed"]),
    ("axes:\n  - {key: workload.batch, values: [8]}\nstrategy: random\n",
     ["strategy random needs samples"]),
    ("axes:\n  - {key: workload.batch, values: [8]}\nbase: nowhere.yaml\n",
     ["duplicate key 'base'"]),
])
def test_bad_spec_exits_2_naming_file_key_and_line(tmp_path, body, fragments):
    result = sweep_cli(spec_file(tmp_path, body), "--out", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out" / "results.sqlite").exists()   # nothing started


def test_missing_base_file_is_named(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("base: ../nowhere.yaml\naxes:\n  - {key: workload.batch, values: [8]}\n")
    assert_one_line_error(sweep_cli(path, "--out", tmp_path / "out"), "spec.yaml:1", "base", "not found")


def test_bad_axis_key_fails_before_any_evaluation(tmp_path, monkeypatch):
    """The second axis value is invalid: nothing may be evaluated or stored."""
    calls = []
    import hwsim.pipeline
    monkeypatch.setattr(hwsim.pipeline, "evaluate", lambda cfg, **options: calls.append(cfg))
    path = spec_file(tmp_path, "axes:\n  - {key: workload.batch, values: [8, -1]}\n")
    assert_one_line_error(sweep_cli(path, "--out", tmp_path / "out", "--jobs", 1), "workload.batch")
    assert calls == []


def test_resume_into_a_folder_of_another_design_space_is_refused(tmp_path):
    first = spec_file(tmp_path, "axes:\n  - {key: workload.batch, values: [4]}\n", "a.yaml")
    assert sweep_cli(first, "--out", tmp_path / "out", "--jobs", 1, "--quiet").exit_code == 0
    other_axes = spec_file(tmp_path, "axes:\n  - {key: workload.batch, values: [4, 8]}\n", "b.yaml")
    assert_one_line_error(sweep_cli(other_axes, "--out", tmp_path / "out", "--jobs", 1),
                          "b.yaml", "axes", "different design space")
    # same axes, different base (a fixed override changes the resolved base)
    assert_one_line_error(sweep_cli(first, "--out", tmp_path / "out", "--jobs", 1,
                                    "--set", "workload.model.n_layers=2"),
                          "a.yaml", "base", "different base config")


def test_bad_jobs_and_limit(tmp_path):
    path = spec_file(tmp_path, "axes:\n  - {key: workload.batch, values: [4]}\n")
    assert_one_line_error(sweep_cli(path, "--out", tmp_path / "o1", "--jobs", 0), "--jobs", ">= 1")
    assert_one_line_error(sweep_cli(path, "--out", tmp_path / "o1", "--limit", -1), "--limit", ">= 0")


# --------------------------------------------------------------------------- points

def test_grid_points_count_values_and_types(tmp_path):
    sweep = load_sweep(spec_file(tmp_path, """axes:
  - {key: hardware.pim.macs_per_bank, logspace: [4, 64, 5]}
  - {key: hardware.npu.freq_ghz, linspace: [0.5, 1.0, 3]}
  - {key: workload.batch, range: [4, 12, 4]}
  - zip:
      - {key: hardware.memory.channels, values: [16, 32]}
      - {key: hardware.memory.capacity_gib, values: [16, 32]}
"""))
    values = {a.label: [v[0] if len(v) == 1 else v for v in a.values] for a in sweep.axes}
    assert values["hardware.pim.macs_per_bank"] == [4, 8, 16, 32, 64]
    assert all(type(v) is int for v in values["hardware.pim.macs_per_bank"])
    assert values["hardware.npu.freq_ghz"] == [0.5, 0.75, 1.0]
    assert values["workload.batch"] == [4, 8, 12]            # closed range: stop included
    assert values["zip(hardware.memory.channels,hardware.memory.capacity_gib)"] == [(16, 16), (32, 32)]
    points = list(sweep.grid())
    assert sweep.size == len(points) == 5 * 3 * 3 * 2
    assert len({sweep.point_id(p) for p in points}) == len(points)
    assert points[0] == {"hardware.pim.macs_per_bank": 4, "hardware.npu.freq_ghz": 0.5,
                         "workload.batch": 4, "hardware.memory.channels": 16,
                         "hardware.memory.capacity_gib": 16}
    assert points[1]["hardware.memory.channels"] == 32          # last axis varies fastest
    cfg = sweep.build(points[-1])
    assert (cfg.hardware.pim.macs_per_bank, cfg.hardware.npu.freq_ghz, cfg.workload.batch,
            cfg.hardware.memory.channels, cfg.hardware.memory.capacity_gib) == (64, 1.0, 12, 32, 32)
    assert cfg.workload.model.n_layers == 1 and cfg.baselines == {}    # set: applied, baselines off


def test_integer_axes_round_and_drop_repeats(tmp_path):
    sweep = load_sweep(spec_file(tmp_path, "axes:\n  - {key: workload.batch, logspace: [1, 4, 6]}\n"
                                           "  - {key: hardware.npu.freq_ghz, linspace: [1, 2.0, 3]}\n"))
    assert [v[0] for v in sweep.axes[0].values] == [1, 2, 3, 4]        # 1, 1.3, 1.7, 2.3, 3.0, 4
    assert [v[0] for v in sweep.axes[1].values] == [1.0, 1.5, 2.0]     # a float end -> floats


def test_random_points_are_seeded_distinct_and_on_the_grid(tmp_path):
    body = ("axes:\n  - {key: hardware.pim.macs_per_bank, values: [4, 8, 16, 32]}\n"
            "  - {key: workload.batch, range: [1, 10, 1]}\nstrategy: random\nsamples: 7\nseed: 5\n")
    sweep = load_sweep(spec_file(tmp_path, body))
    a = sweep.random_points(7, 5)
    assert a == sweep.random_points(7, 5)
    assert a != sweep.random_points(7, 6)
    grid = list(sweep.grid())
    assert len(a) == 7 and all(p in grid for p in a)
    assert len({sweep.point_id(p) for p in a}) == 7
    assert sweep.random_points(1000, 5) == grid                         # more than the grid: all


def test_baselines_are_kept_only_when_asked(tmp_path):
    on = load_sweep(spec_file(tmp_path, "axes:\n  - {key: workload.batch, values: [4]}\nbaselines: true\n"))
    cfg = on.build({"workload.batch": 4})
    assert set(cfg.baselines) == {"npu_only", "npu_pim_naive", "gpu"}
    assert cfg.baselines["npu_only"].workload.batch == 4                 # baselines inherit the axis
    off = load_sweep(spec_file(tmp_path, "axes:\n  - {key: workload.batch, values: [4]}\n", "off.yaml"))
    assert on.base_hash != off.base_hash


def test_shipped_sweep_specs_load():
    for path in sorted((CONFIG_DIR / "sweeps").glob("*.yaml")):
        sweep = load_sweep(path)
        assert sweep.size >= 2 and sweep.objectives, path
        sweep.check_axes()


def test_constraint_expressions():
    from hwsim.dse.constraints import Constraint, violations
    c = Constraint.parse("utilization.npu > 0.5 and energy_j / 2 <= 1 or not fits_memory")
    assert c.names == {"utilization.npu", "energy_j", "fits_memory"}
    assert c.holds({"utilization.npu": 0.6, "energy_j": 2, "fits_memory": True})
    assert not c.holds({"utilization.npu": 0.6, "energy_j": 3, "fits_memory": True})
    assert violations([c], {"utilization.npu": 0.6, "fits_memory": True}) == \
        [f"{c.text} (no value for energy_j)"]
    with pytest.raises(ValueError):
        Constraint.parse("area_mm2 <= ")
    with pytest.raises(ConfigError):
        load_sweep({"base": str(BASE), "axes": [{"key": "workload.batch", "values": [1]}],
                    "constraints": ["x.y < 1 if 1 else 2"]})
