"""The `training` scenario (issue 16): one training step of a CNN or a Transformer — forward, backward (gradients
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
        kind = system.workload.kind
        if kind not in ("cnn", "transformer"):
            raise ConfigError(f"the training scenario builds CNN and Transformer training steps; got a "
                              f"{kind} workload", key=f"{key_prefix}scenario.kind")
        entry = MAPPERS[system.mapper.name]
        if kind == "transformer":
            return self._transformer_graph(system, entry, key_prefix)
        if not entry.checks_fit or "cnn" not in entry.workloads or system.mapper.name not in TRAINING_MAPPERS:
            raise ConfigError(f"mapper '{system.mapper.name}' cannot place a training step (its saved "
                              f"activations and gradients); use one of: {', '.join(sorted(TRAINING_MAPPERS))}",
                              key=f"{key_prefix}mapper.name")
        forward = load_workloads()["cnn"].build(system.workload)
        nm = (spec.nm_sparsity.n, spec.nm_sparsity.m) if spec.nm_sparsity is not None else None
        graph = training_graph(forward, spec.optimizer, spec.norms, spec.first_layer_input_grad, nm)
        graph.training_memory = training_memory(forward, spec.optimizer, spec.norms)
        return graph

    def _transformer_graph(self, system, entry, key_prefix: str):
        """A Transformer's training step (hwsim.workloads.training.transformer_training_graph): the
        forward graph is the workload's prefill pass on one device."""
        from hwsim.errors import ConfigError
        from hwsim.workloads.training import transformer_training_graph, transformer_training_memory
        from hwsim.workloads.transformer import build_transformer
        spec, w = system.scenario, system.workload
        if (not entry.checks_fit or "transformer" not in entry.workloads
                or system.mapper.name not in TRANSFORMER_TRAINING_MAPPERS):
            raise ConfigError(f"mapper '{system.mapper.name}' cannot place a Transformer training step; "
                              f"use one of: {', '.join(sorted(TRANSFORMER_TRAINING_MAPPERS))}",
                              key=f"{key_prefix}mapper.name")
        if spec.nm_sparsity is not None:
            raise ConfigError("nm_sparsity (SAT) is modelled for CNN training steps only",
                              key=f"{key_prefix}scenario.nm_sparsity")
        checks = ((w.phase != "prefill", "workload.phase", "a training step runs every token's "
                   "forward pass: phase prefill"),
                  (w.tp * w.ep * w.pp != 1, "workload.tp", "a training step is modelled on one device "
                   "(tp = ep = pp = 1)"),
                  (w.model.moe is not None or w.model.mla is not None, "workload.model",
                   "Transformer training steps are modelled for dense MHA/GQA models (no moe, no mla)"),
                  (w.weight_dtype not in (None, w.dtype) or w.attention_dtype not in (None, w.dtype),
                   "workload.weight_dtype", "a training step keeps one dtype (no weight_dtype / "
                   "attention_dtype of its own)"),
                  (not w.lm_head, "workload.lm_head", "a training step's loss is computed on the "
                   "head's output: lm_head must be true"))
        for bad, key, why in checks:
            if bad:
                raise ConfigError(why, key=f"{key_prefix}{key}")
        forward = build_transformer(w)
        graph = transformer_training_graph(forward, w.model, spec.optimizer)
        graph.training_memory = transformer_training_memory(forward, w.model, spec.optimizer)
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
TRANSFORMER_TRAINING_MAPPERS = ("pulp",)
