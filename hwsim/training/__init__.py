"""The `training` scenario (issue 16): one training step of a CNN — forward, backward (gradients
w.r.t. each layer's input and weights) and the optimizer's update — as one op graph
(hwsim.workloads.training), mapped and simulated like a pass; the activations saved for the
backward pass, the gradients and the optimizer state are resident in the memory levels and
checked against their capacities by the mapper (a step that does not fit exits 2 naming the
level). Throughput counts steps (`metrics.work_unit == "step"`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingScenario:
    name: str = "training"

    def build_graph(self, system, key_prefix: str = ""):
        from hwsim.errors import ConfigError
        from hwsim.mappers import MAPPERS
        from hwsim.workloads.registry import load_workloads
        from hwsim.workloads.training import training_graph, training_memory
        spec = system.scenario
        if system.workload.kind != "cnn":
            raise ConfigError(f"the training scenario builds CNN training steps; got a "
                              f"{system.workload.kind} workload", key=f"{key_prefix}scenario.kind")
        entry = MAPPERS[system.mapper.name]
        if not entry.checks_fit or "cnn" not in entry.workloads or system.mapper.name not in TRAINING_MAPPERS:
            raise ConfigError(f"mapper '{system.mapper.name}' cannot place a training step (its saved "
                              f"activations and gradients); use one of: {', '.join(sorted(TRAINING_MAPPERS))}",
                              key=f"{key_prefix}mapper.name")
        forward = load_workloads()["cnn"].build(system.workload)
        nm = (spec.nm_sparsity.n, spec.nm_sparsity.m) if spec.nm_sparsity is not None else None
        graph = training_graph(forward, spec.optimizer, spec.norms, spec.first_layer_input_grad, nm)
        graph.training_memory = training_memory(forward, spec.optimizer, spec.norms)
        return graph

    def run(self, system, key_prefix: str = ""):
        from hwsim.hw.system import System
        from hwsim.mappers import MAPPERS
        from hwsim.metrics import compute_metrics
        from hwsim.pipeline import SystemResult, device_area_mm2
        from hwsim.scenarios import PassScenario
        from hwsim.sim.engine import simulate
        graph = self.build_graph(system, key_prefix)
        schedule = PassScenario().schedule(system, graph, key_prefix)
        trace = simulate(schedule)
        device = system.hardware.device(MAPPERS[system.mapper.name].needs)
        metrics = compute_metrics(graph, schedule, trace, device_area_mm2(system, graph), device.levels)
        return SystemResult(system, graph, schedule, trace, metrics,
                            machine=System.replicated(device, 1, system.hardware.link))


# Mappers that place training graphs (they check the resident state against the levels).
TRAINING_MAPPERS = ("pulp", "sat")
