"""Scenarios: what is simulated over time, above the engine.

A scenario takes a system (workload + hardware + mapper) and returns a `SystemResult` whose
`unit` says what its throughput counts ("tokens", "inferences"; "requests" and "steps" for the
scenarios to come). The engine stays generic: a scenario builds schedules (tasks may carry
release times) and reads traces; it never reaches into the engine.

- `pass` (today's behaviour): one prefill/decode/inference pass of a fixed batch: workload ->
  op graph -> placement and mapping -> schedule -> engine -> metrics.
- `serving` (issue 12) will loop over request arrivals, ask a batching policy for each
  iteration and cost iterations with `PassScenario.simulate` (cached by iteration shape), or
  release tasks at arrival times in one schedule.
- `training` (issue 16) will build forward, backward and optimizer graphs and run them as steps.
New scenarios register in SCENARIOS; nothing in sim/ or hw/ changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hwsim.config.schema import SystemUnderTest
from hwsim.errors import ConfigError
from hwsim.mappers import MAPPERS
from hwsim.mappers.placement import PlacementError
from hwsim.metrics import compute_metrics
from hwsim.sim.engine import simulate
from hwsim.sim.schedule import Schedule
from hwsim.workloads.ops import OpGraph


class Scenario(Protocol):
    name: str

    def run(self, system: SystemUnderTest, key_prefix: str = ""):
        """Simulate `system`; return a SystemResult (hwsim.pipeline)."""


def work_unit(graph: OpGraph) -> str:
    """What one pass produces: inferences for a CNN pass, tokens for a Transformer pass."""
    return "inferences" if graph.info.phase == "inference" else "tokens"


@dataclass(frozen=True)
class PassScenario:
    """One pass of the workload's batch through the model (module docstring)."""
    name: str = "pass"

    def build_graph(self, system: SystemUnderTest, key_prefix: str = "") -> OpGraph:
        from hwsim.pipeline import check_fits, check_fits_cnn
        if system.workload.kind == "cnn":
            from hwsim.workloads.cnn import build_cnn
            graph = build_cnn(system.workload)
            check_fits_cnn(system, graph, key_prefix)
        else:
            from hwsim.workloads.transformer import build_transformer
            graph = build_transformer(system.workload)
            check_fits(system, graph.info, key_prefix)
        return graph

    def schedule(self, system: SystemUnderTest, graph: OpGraph, key_prefix: str = "") -> Schedule:
        """Placement and mapping; the device's static power per component (each registered
        kind's `static_power_w`) charged over the makespan by the metrics."""
        entry = MAPPERS[system.mapper.name]
        try:
            schedule = entry.build(graph, system.hardware, system.mapper.options)
        except PlacementError as exc:
            raise ConfigError(str(exc), key=f"{key_prefix}hardware.memory") from None
        dtype = graph.ops[0].dtype if len(graph) else "fp16"
        schedule.static_power_w = system.hardware.device(entry.needs).static_power_w(dtype)
        return schedule

    def run(self, system: SystemUnderTest, key_prefix: str = ""):
        from hwsim.pipeline import SystemResult, device_area_mm2
        graph = self.build_graph(system, key_prefix)
        schedule = self.schedule(system, graph, key_prefix)
        trace = simulate(schedule)
        levels = system.hardware.device(MAPPERS[system.mapper.name].needs).levels
        metrics = compute_metrics(graph, schedule, trace, device_area_mm2(system, graph), levels)
        return SystemResult(system, graph, schedule, trace, metrics, unit=work_unit(graph))


SCENARIOS: dict[str, Scenario] = {"pass": PassScenario()}
