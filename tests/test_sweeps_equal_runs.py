"""A sweep point gives the numbers `hwsim run` gives for the same point (issue 9, item 3).

Every point of every shipped sweep space (configs/sweeps/*.yaml) is evaluated as the sweep
evaluates it (``hwsim.dse.evaluate.evaluate_point`` with the spec's ``extrapolate_layers``:
short runs extended over a steady period of layers, hwsim.extrapolate) and as `hwsim run` does
(``hwsim.pipeline.evaluate``: every layer simulated); every metric must agree to 0.1%. The spaces
are cut into chunks of CHUNK points so that pytest-xdist spreads them over its workers.
"""
import math

import pytest

from hwsim.configs import CONFIG_DIR
from hwsim.dse.evaluate import evaluate_point, flatten
from hwsim.dse.spec import load_sweep
from hwsim.errors import ConfigError
from hwsim.extrapolate import can_extrapolate
from hwsim.pipeline import evaluate

SPACES = sorted((CONFIG_DIR / "sweeps").glob("*.yaml"))
CHUNK = 8
REL = 1e-3          # 0.1%
ABS = 1e-12         # for metrics that are zero in both (an idle unit's utilization)


def chunks():
    for path in SPACES:
        size = load_sweep(path).size
        for first in range(0, size, CHUNK):
            yield pytest.param(path, first, id=f"{path.stem}[{first}:{min(first + CHUNK, size)}]")


def test_every_shipped_sweep_space_is_checked():
    assert {p.stem for p in SPACES} >= {"neupims-space", "tiny"}


@pytest.mark.parametrize("path, first", list(chunks()))
def test_sweep_points_equal_hwsim_run(path, first):
    sweep = load_sweep(path)
    points = list(sweep.grid())[first:first + CHUNK]
    could, extrapolated = 0, 0
    for point in points:
        try:
            config = sweep.build(point)
        except ConfigError:
            continue
        swept = evaluate_point(config, sweep.spec.extrapolate_layers)
        try:
            ran = flatten(evaluate(config).to_json()["metrics"])
        except ConfigError:
            assert swept["status"] == "infeasible", point
            continue
        assert swept["status"] == "ok", (point, swept["error"])
        could += can_extrapolate(config.main) and sweep.spec.extrapolate_layers
        extrapolated += swept["extrapolated"]
        assert (swept["extrapolation_period"] is not None) == swept["extrapolated"], point
        for key, value in ran.items():
            if key.startswith("serving.cost_model."):
                continue        # the simulator's work (iteration cache shared within a process), not the point's
            if isinstance(value, (int, float)):
                assert math.isclose(swept["metrics"][key], value, rel_tol=REL, abs_tol=ABS), \
                    (sweep.describe(point), key, swept["metrics"][key], value, swept["extrapolation_period"])
    if could:   # the comparison must exercise the extrapolation, not only its fallback
        assert extrapolated >= 1, f"no point of {path.name}[{first}:] was extrapolated"


@pytest.mark.parametrize("config, overrides", [
    ("neupims.yaml", []),                                            # sub-batches overlap layers
    ("neupims.yaml", ["workload.model.n_layers=8", "workload.pp=2"]),  # micro-batches
    ("tpu-like.yaml", [])])                                         # a CNN
def test_time_per_layer_times_layers_fits_in_the_iteration(config, overrides):
    """time_per_layer_s means one thing in runs and sweeps: iteration = the time before the first
    layer task starts + layers x time_per_layer_s + the time after the last layer task ends."""
    from hwsim.config.loader import load_config
    result = evaluate(load_config(CONFIG_DIR / config, overrides))
    for system in (result.main, *result.baselines.values()):
        graph, trace, m = system.graph, system.trace, system.metrics
        in_layers = [t.id for t in trace.schedule.tasks if t.op in graph and graph.op(t.op).layer >= 0]
        before = trace.start_ns[in_layers].min() * 1e-9
        after = m.iteration_latency_s - trace.end_ns[in_layers].max() * 1e-9
        layers = system.graph.info.n_layers
        assert before >= 0 and after >= 0
        assert before + layers * m.time_per_layer_s + after == pytest.approx(m.iteration_latency_s, rel=1e-12)
