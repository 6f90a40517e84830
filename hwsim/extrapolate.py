"""Whole-model metrics from two short simulations, for sweeps that cannot afford every layer.

The decoder layers of a dense Transformer are identical, so once the schedule reaches its
periodic steady state every further layer adds the same time, energy, bytes and busy time. We
simulate the stage with k and k + 1 layers and extend the difference linearly:

    X(L) = X(k + 1) + (L - k - 1) * (X(k + 1) - X(k))

for every additive quantity X (iteration time, energy per component, bytes per level, roofline
bound, FLOPs and busy time per unit); ratios (utilization, busy share, throughput, energy per
token) are recomputed from the extrapolated sums. The first layer's warm-up and the epilogue
(final norm, LM head) are in both short runs, so they are counted once. k = 2.

Only for dense models: MoE layers route differently (seeded per layer), so they fall back to the
full simulation. The memory-fit check always sees the whole model. Agreement with the full
simulation is tested (tests/test_extrapolate.py); `hwsim run` never extrapolates.
"""
from __future__ import annotations

import dataclasses

from hwsim.config.schema import SystemUnderTest
from hwsim.metrics import Metrics

SHORT_LAYERS = 2


def with_stage_layers(system: SystemUnderTest, stage_layers: int) -> SystemUnderTest:
    """The same system with `stage_layers` decoder layers per pipeline stage."""
    w = system.workload
    model = w.model.model_copy(update={"n_layers": stage_layers * w.pp})
    return system.model_copy(update={"workload": w.model_copy(update={"model": model})})


def can_extrapolate(system: SystemUnderTest) -> bool:
    """Dense decoders with more layers than the short runs, on a device with one off-chip memory
    level (with several, where the layers spill depends on how many there are)."""
    from hwsim.mappers import MAPPERS
    w = system.workload
    levels = system.hardware.device(MAPPERS[system.mapper.name].needs).off_chip_levels
    return (w.kind == "transformer" and w.model.moe is None and len(levels) <= 1
            and w.model.n_layers // w.pp > SHORT_LAYERS + 1)


def extrapolate_metrics(short: Metrics, longer: Metrics, extra_layers: int) -> Metrics:
    """Metrics of a stage with `extra_layers` more layers than `longer`, which itself has one
    more layer than `short`."""
    def lin(a: float, b: float) -> float:
        return b + extra_layers * (b - a)

    latency = lin(short.iteration_latency_s, longer.iteration_latency_s)

    def ratio_of_sums(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        return {u: lin(a.get(u, 0.0) * short.iteration_latency_s,
                       b[u] * longer.iteration_latency_s) / latency for u in b}

    breakdown = {c: lin(short.energy_breakdown_j.get(c, 0.0), e)
                 for c, e in longer.energy_breakdown_j.items()}
    energy = sum(breakdown.values()) if breakdown else lin(short.energy_j, longer.energy_j)
    tokens = longer.tokens_per_iteration
    levels = {}
    for name, b in longer.memory_levels.items():
        a = short.memory_levels.get(name, {})
        levels[name] = {"capacity_bytes": b["capacity_bytes"],
                        **{k: lin(a.get(k, 0.0), b[k]) for k in ("resident_bytes", "bytes", "energy_j")},
                        "busy": lin(a.get("busy", 0.0) * short.iteration_latency_s,
                                    b["busy"] * longer.iteration_latency_s) / latency}
    return dataclasses.replace(
        longer,
        throughput_tokens_per_s=tokens / latency,
        iteration_latency_s=latency,
        time_per_layer_s=longer.iteration_latency_s - short.iteration_latency_s,
        energy_j=energy,
        energy_per_token_j=energy / tokens,
        roofline_bound_s=lin(short.roofline_bound_s, longer.roofline_bound_s),
        utilization=ratio_of_sums(short.utilization, longer.utilization),
        busy=ratio_of_sums(short.busy, longer.busy),
        bytes={lv: int(round(lin(short.bytes.get(lv, 0), b))) for lv, b in longer.bytes.items()},
        energy_breakdown_j=breakdown,
        memory_levels=levels,
    )
