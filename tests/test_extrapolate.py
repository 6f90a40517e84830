"""Sweeps extend two short simulations to the whole model (hwsim.extrapolate): the result must
equal the full simulation for identical decoder layers, and never hide a model that does not fit."""
import pytest

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.errors import ConfigError
from hwsim.pipeline import run_system

CASES = [("neupims.yaml", []), ("neupims.yaml", ["workload.pp=2", "workload.batch=256"]),
         ("gpt3-7b-npu.yaml", []), ("llama2-7b-prefill.yaml", [])]


def systems(config, overrides):
    cfg = load_config(CONFIG_DIR / config, overrides + ["workload.model.n_layers=8"])
    return [("main", cfg.main), *cfg.baselines.items()]


@pytest.mark.parametrize("config, overrides", CASES)
def test_extrapolated_metrics_equal_the_full_simulation(config, overrides):
    for name, system in systems(config, overrides):
        full = run_system(system).metrics
        fast = run_system(system, extrapolate_layers=True)
        assert fast.extrapolated, name
        m = fast.metrics
        assert m.iteration_latency_s == pytest.approx(full.iteration_latency_s, rel=1e-3), name
        assert m.energy_j == pytest.approx(full.energy_j, rel=1e-3), name
        for level, b in full.bytes.items():
            assert m.bytes[level] == pytest.approx(b, rel=1e-3), (name, level)
        for unit, u in full.utilization.items():
            assert m.utilization[unit] == pytest.approx(u, rel=1e-3, abs=1e-9), (name, unit)
            assert m.busy[unit] == pytest.approx(full.busy[unit], rel=1e-3, abs=1e-9), (name, unit)


def test_moe_models_are_simulated_in_full():
    cfg = load_config(CONFIG_DIR / "mixtral-8x7b-h100.yaml", ["workload.model.n_layers=6"])
    assert not run_system(cfg.main, extrapolate_layers=True).extrapolated


def test_memory_check_sees_the_whole_model():
    cfg = load_config(CONFIG_DIR / "neupims.yaml", ["workload.batch=4096"])
    with pytest.raises(ConfigError, match="does not fit"):
        run_system(cfg.main, extrapolate_layers=True)
