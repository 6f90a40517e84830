"""Sweeps extend short simulations to the whole model over a steady period of layers
(hwsim.extrapolate): the result must equal the full simulation, fall back to it when no period
shows, and never hide a model that does not fit. tests/test_sweeps_equal_runs.py checks every
point of every shipped sweep space."""
import pytest

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.errors import ConfigError
from hwsim.extrapolate import (additive_quantities, extend, periods_agree, steady_period, tasks_repeat,
                               with_stage_layers)
from hwsim.pipeline import run_system

# (config, overrides): 12 decoder layers per stage, so runs of 1..3 layers fit the budget of
# half of them; 24 under pipeline parallelism, where the GPU baseline settles from the 2nd layer.
CASES = [("neupims.yaml", ["workload.model.n_layers=12"]),
         ("neupims.yaml", ["workload.model.n_layers=48", "workload.pp=2", "workload.batch=256"]),
         ("gpt3-7b-npu.yaml", ["workload.model.n_layers=12"]),
         ("llama2-7b-prefill.yaml", ["workload.model.n_layers=12"])]

# Two NeuPIMs design points (configs/sweeps/neupims-space.yaml) whose sub-batches drift for a
# few layers before the per-layer time settles: settled from the 3rd layer, and from the 8th
# (increments 0.243, 0.318, 0.241, 0.297, 0.245, 0.291, 0.2590, 0.2592, 0.2592, ... ms).
SETTLES_LATE = ["hardware.pim.macs_per_bank=4", "hardware.memory.channels=32",
                "hardware.memory.capacity_gib=32", "workload.batch=512", "baselines={}"]
# A point where the iteration grows by the same 0.18838 ms per layer for 20 layers while one
# sub-batch loses 0.9 us of slack per layer; when it is gone, each layer adds 0.18928 ms.
SLACK_DRIFTS = ["hardware.pim.macs_per_bank=32", "hardware.memory.channels=64",
                "hardware.memory.capacity_gib=64", "workload.batch=256", "baselines={}"]
NEVER_SETTLES_IN_BUDGET = ["hardware.pim.macs_per_bank=4", "hardware.memory.channels=64",
                           "hardware.memory.capacity_gib=64", "workload.batch=128", "baselines={}"]


def systems(config, overrides):
    cfg = load_config(CONFIG_DIR / config, overrides)
    return [("main", cfg.main), *cfg.baselines.items()]


def assert_same_metrics(fast, full, name, rel=1e-9):
    """Every metric of the extrapolated run equals the full simulation's (to float rounding)."""
    assert fast.iteration_latency_s == pytest.approx(full.iteration_latency_s, rel=rel), name
    assert fast.throughput_tokens_per_s == pytest.approx(full.throughput_tokens_per_s, rel=rel), name
    assert fast.time_per_layer_s == pytest.approx(full.time_per_layer_s, rel=rel), name
    assert fast.roofline_bound_s == pytest.approx(full.roofline_bound_s, rel=rel), name
    assert fast.energy_j == pytest.approx(full.energy_j, rel=rel), name
    assert fast.energy_breakdown_j == pytest.approx(full.energy_breakdown_j, rel=rel, abs=1e-15), name
    assert fast.bytes == pytest.approx(full.bytes, rel=rel, abs=1), name
    assert fast.utilization == pytest.approx(full.utilization, rel=rel, abs=1e-12), name
    assert fast.busy == pytest.approx(full.busy, rel=rel, abs=1e-12), name


@pytest.mark.parametrize("config, overrides", CASES)
def test_extrapolated_metrics_equal_the_full_simulation(config, overrides):
    """A pass held at its power limit (llama2-7b-prefill's GPU baseline at 700 W) is stretched as
    a whole and shows no period: it falls back to the full simulation; every other one extends."""
    for name, system in systems(config, overrides):
        full = run_system(system).metrics
        fast = run_system(system, extrapolate_layers=True)
        assert fast.extrapolated == (full.power_limit_slowdown == 1.0), name
        assert_same_metrics(fast.metrics, full, name)


def test_a_period_found_after_a_drifting_start_extrapolates_exactly():
    (_, system), = systems("neupims.yaml", SETTLES_LATE)
    fast = run_system(system, extrapolate_layers=True)
    assert fast.extrapolation_period == 1
    assert fast.graph.info.n_layers == 5          # runs of 1..5 layers: steady from the 3rd
    assert_same_metrics(fast.metrics, run_system(system).metrics, "main")


def test_no_period_within_the_budget_falls_back_to_the_full_simulation():
    (_, system), = systems("neupims.yaml", NEVER_SETTLES_IN_BUDGET)
    fast = run_system(system, extrapolate_layers=True)
    assert not fast.extrapolated
    assert fast.graph.info.n_layers == 32
    assert fast.metrics == run_system(system).metrics


def ANY(period):
    """The tasks check of a synthetic sequence: it has no tasks, every period passes."""
    return True


def test_equal_increments_with_drifting_tasks_are_not_a_steady_state():
    (_, system), = systems("neupims.yaml", SLACK_DRIFTS)
    runs = {n: run_system(with_stage_layers(system, n)) for n in (1, 2, 3)}
    assert periods_agree(*(additive_quantities(runs[n]) for n in (1, 2, 3)))
    assert not tasks_repeat(runs[3], 1)
    fast = run_system(system, extrapolate_layers=True)
    assert not fast.extrapolated
    assert fast.metrics == run_system(system).metrics


def synthetic(layers, transient, period_steps):
    """X(n) for n = 1..layers: arbitrary during `transient` layers, then each layer adds
    period_steps[n % p] (a steady period p = len(period_steps))."""
    q, x = {}, 5.0
    for n in range(1, layers + 1):
        x += (7.0 + 3.0 * n * n) if n <= transient else period_steps[n % len(period_steps)]
        q[n] = {("latency_s", ""): x, ("bytes", "hbm"): 100.0 * n}
    return q


@pytest.mark.parametrize("total", [30, 31, 32, 33])
def test_a_period_of_two_layers_is_extended_over_whole_periods_plus_a_simulated_remainder(total):
    q = synthetic(40, transient=4, period_steps=(2.0, 3.0))
    assert [steady_period(q, n, ANY) for n in range(1, 9)] == [None] * 7 + [2]
    r, whole = extend(q, 8, 2, total)
    assert r in (7, 8) and (total - r) % 2 == 0          # the remainder is a simulated run
    assert whole == pytest.approx(q[total], rel=1e-12)


def test_a_steady_period_of_three_layers_is_found():
    q = synthetic(40, transient=2, period_steps=(1.0, 4.0, 2.0))
    p = next((steady_period(q, n, ANY), n) for n in range(1, 40) if steady_period(q, n, ANY))
    assert p == (3, 8)                                   # runs 2, 5, 8
    for total in (31, 32, 33):
        assert extend(q, 8, 3, total)[1] == pytest.approx(q[total], rel=1e-12)


def test_moe_models_are_simulated_in_full():
    cfg = load_config(CONFIG_DIR / "mixtral-8x7b-h100.yaml", ["workload.model.n_layers=8"])
    assert not run_system(cfg.main, extrapolate_layers=True).extrapolated


def test_memory_check_sees_the_whole_model():
    cfg = load_config(CONFIG_DIR / "neupims.yaml", ["workload.batch=4096"])
    with pytest.raises(ConfigError, match="does not fit"):
        run_system(cfg.main, extrapolate_layers=True)


# ------------------------------------------------------------------ a unit held at its power limit
def test_an_extension_that_would_reach_a_power_limit_is_refused():
    """Closed form: a GPU with 100 W static and a 700 W limit may spend at most 600 J of dynamic
    energy per second of the extended stage; beyond it only a full simulation gives the time."""
    from hwsim.extrapolate import within_power_limits
    from hwsim.sim.schedule import Schedule
    s = Schedule(resources={}, static_power_w={"gpu": 100.0}, power_limit_w={"gpu": 700.0})
    assert within_power_limits(s, {("latency_s", ""): 1.0, ("unit_energy_j", "gpu"): 600.0})
    assert not within_power_limits(s, {("latency_s", ""): 1.0, ("unit_energy_j", "gpu"): 600.1})
    assert within_power_limits(Schedule(resources={}), {("latency_s", ""): 1.0})


@pytest.mark.parametrize("phase,batch,context,extended", [("decode", 8, 512, True),
                                                          ("decode", 128, 2048, False)])
def test_a_pass_at_the_power_limit_is_simulated_in_full(phase, batch, context, extended):
    """Profile mode on the H200 holds a batch-128 decode step at 700 W: the stretched short runs
    show no period and the sweep simulates every layer, giving `hwsim run`'s numbers; a batch-8
    step stays below the limit and is extended as before."""
    from hwsim.config.loader import load_config_text
    from hwsim.pipeline import evaluate
    config = load_config_text(f"""
name: t
workload: {{model: llama2-7b, phase: {phase}, batch: {batch}, dtype: bf16,
           requests: {{distribution: fixed, context_len: {context}}}}}
hardware: {{gpu: {{preset: h200-sxm, profile: h200-sxm, hbm_gib: 1024}}}}
mapper: {{name: gpu}}
""")
    full, swept = evaluate(config).main, evaluate(config, extrapolate_layers=True).main
    assert swept.extrapolated == extended
    assert (full.metrics.power_limit_slowdown > 1.0) == (not extended)
    assert swept.metrics.iteration_latency_s == pytest.approx(full.metrics.iteration_latency_s, rel=1e-9)
    assert swept.metrics.energy_j == pytest.approx(full.metrics.energy_j, rel=1e-9)
