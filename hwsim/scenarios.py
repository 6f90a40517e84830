"""Scenarios: what is simulated over time, above the engine.

A scenario takes a system (workload + hardware + mapper) and returns a `SystemResult` whose
metrics say what their throughput counts (`Metrics.work_unit`: "token", "inference"; "request"
and "step" for the scenarios to come). The engine stays generic: a scenario builds schedules (tasks may carry
release times) and reads traces; it never reaches into the engine.

- `pass` (today's behaviour): one prefill/decode/inference pass of a fixed batch: workload ->
  op graph -> placement and mapping -> schedule -> engine -> metrics.
- `serving` (issue 12, hwsim.serving): loops over the iterations of one replica serving a
  request stream, asks a batching policy (hwsim.mappers.batching) for each iteration's batch
  and costs it with this pass machinery (`build`/`schedule`/engine on a `mixed` workload),
  through a cache keyed by iteration shape (hwsim.serving.cost).
- `coe` (issue 15, hwsim.coe): a request stream over a Composition of Experts, each request
  routed to an expert that is copied into HBM when it is not there (model switching as engine
  tasks), then run with this pass machinery.
- `training` (issue 16, hwsim.training): one training step of a CNN — forward, backward and the
  optimizer's update as one op graph (hwsim.workloads.training), placed by a mapper that checks
  the saved activations, gradients and optimizer state against the memory levels.
New scenarios register in SCENARIOS; nothing in sim/ or hw/ changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hwsim.config.schema import SystemUnderTest
from hwsim.errors import ConfigError
from hwsim.hw.system import System
from hwsim.mappers import MAPPERS
from hwsim.mappers.placement import PlacementError
from hwsim.metrics import compute_metrics
from hwsim.sim.engine import simulate
from hwsim.sim.schedule import Schedule
from hwsim.workloads.ops import OpGraph
from hwsim.workloads.registry import load_workloads


class Scenario(Protocol):
    name: str

    def run(self, system: SystemUnderTest, key_prefix: str = ""):
        """Simulate `system`; return a SystemResult (hwsim.pipeline)."""


@dataclass(frozen=True)
class PassScenario:
    """One pass of the workload's batch through the model (module docstring)."""
    name: str = "pass"

    def build_graph(self, system: SystemUnderTest, key_prefix: str = "") -> OpGraph:
        """The workload kind's graph, refused before the build when its sizes say it cannot fit
        (hwsim.workloads.registry), else after it (its largest activations included)."""
        from hwsim.pipeline import check_fits
        kind = load_workloads()[system.workload.kind]
        if kind.name not in MAPPERS[system.mapper.name].workloads:
            able = [name for name, entry in sorted(MAPPERS.items()) if kind.name in entry.workloads]
            raise ConfigError(f"mapper '{system.mapper.name}' cannot run {kind.name} workloads; use one "
                              f"of: {', '.join(able)}", key=f"{key_prefix}mapper.name")
        checks_fit = MAPPERS[system.mapper.name].checks_fit   # the mapper checks each level itself
        if kind.sizes is not None and not checks_fit:
            check_fits(system, kind.sizes(system.workload), key_prefix)
        graph = kind.build(system.workload)
        if kind.sizes is None and not checks_fit:
            acts = max((op.act_in_bytes + op.act_out_bytes for op in graph.ops), default=0)
            check_fits(system, graph.info, key_prefix, activation_bytes=acts)
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
        if system.hardware.topology is not None:
            return self.run_replica(system, key_prefix)
        from hwsim.pipeline import SystemResult, device_area_mm2
        graph = self.build_graph(system, key_prefix)
        schedule = self.schedule(system, graph, key_prefix)
        trace = simulate(schedule)
        device = system.hardware.device(MAPPERS[system.mapper.name].needs)
        info = graph.info
        machine = System.replicated(device, info.tp * info.ep * info.pp, system.hardware.link)
        metrics = compute_metrics(graph, schedule, trace, device_area_mm2(system, graph), device.levels)
        return SystemResult(system, graph, schedule, trace, metrics, machine=machine)


    def run_replica(self, system: SystemUnderTest, key_prefix: str = ""):
        """Every device of one replica on the topology (`hardware.topology`): the partition
        step's distinct devices, each mapped on its own, merged with the collectives lowered to
        flows on the topology's links (mappers/partition.py). Throughput and energy count the
        replica; bytes, busy per level and area are per device (bytes: the mean)."""
        import dataclasses

        from hwsim.hw.interconnect.component import device_link
        from hwsim.hw.system import HardwareSpec
        from hwsim.mappers.partition import schedule_replica
        from hwsim.pipeline import SystemResult, check_fits, device_area_mm2
        from hwsim.workloads.transformer import transformer_info
        w, hw = system.workload, system.hardware
        key = f"{key_prefix}hardware.topology"
        if w.kind != "transformer":
            raise ConfigError(f"a topology models the devices of a Transformer replica; a "
                              f"{w.kind} workload runs on one device (drop hardware.topology)", key=key)
        topology = hw.topology.root
        need = w.tp * w.ep * w.pp
        if need > topology.num_devices:
            raise ConfigError(f"the replica needs tp x ep x pp = {need} devices but the "
                              f"{topology.kind} has {topology.num_devices}", key=key)
        if hw.link is not None:
            raise ConfigError("give either a link (one device, closed-form collectives) or a "
                              "topology (every device, collectives on its links), not both",
                              key=f"{key_prefix}hardware.link")
        info = transformer_info(w)
        if not MAPPERS[system.mapper.name].checks_fit:   # else the mapper checks each level itself
            check_fits(system, info, key_prefix)
        per_device = HardwareSpec(**{**{k: v for k, v in hw.present().items() if k != "topology"},
                                     "link": device_link(hw.topology)})
        device_system = system.model_copy(update={"hardware": per_device})
        part, replica = schedule_replica(w, lambda graph: self.schedule(device_system, graph, key_prefix),
                                         network=topology.build())
        trace = simulate(replica.schedule)
        device = per_device.device(MAPPERS[system.mapper.name].needs)
        machine = System(tuple((device, d.count) for d in part.devices), topology)
        graph = part.devices[-1].graph                  # a device of the last stage: it ends the pass
        metrics = compute_metrics(graph, replica.schedule, trace, device_area_mm2(system, graph),
                                  device.levels, replica=replica,
                                  info=dataclasses.replace(info, n_layers=w.model.n_layers))
        return SystemResult(system, graph, replica.schedule, trace, metrics, machine=machine,
                            replica=(part, replica))


from hwsim.coe import CoEScenario  # noqa: E402
from hwsim.seqpar import SequenceParallelScenario  # noqa: E402
from hwsim.serving import ServingScenario  # noqa: E402
from hwsim.training import TrainingScenario  # noqa: E402

SCENARIOS: dict[str, Scenario] = {"pass": PassScenario(), "serving": ServingScenario(),
                                  "coe": CoEScenario(), "training": TrainingScenario(),
                                  "sequence_parallel": SequenceParallelScenario()}
