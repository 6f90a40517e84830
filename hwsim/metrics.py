"""Figures of merit read off a trace: the numbers the report prints and `--json` returns."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from hwsim.hw.registry import energy_buckets
from hwsim.sim.schedule import Schedule
from hwsim.sim.trace import Trace
from hwsim.workloads.ops import OpGraph


@dataclass
class Metrics:
    throughput_tokens_per_s: float
    iteration_latency_s: float
    time_per_layer_s: float
    energy_j: float                  # whole replica (tp * ep * pp devices)
    energy_per_token_j: float
    roofline_bound_s: float
    utilization: dict[str, float]    # per unit (FLOP utilization for compute, bandwidth for memory)
    busy: dict[str, float]           # per unit: share of time with work in progress
    bytes: dict[str, int]            # per memory level, one device
    tokens_per_iteration: int
    devices: int
    # Per component (hwsim.hw.registry.energy_buckets(), plus "other" for costs that give no split),
    # whole replica like energy_j; energy_j is their exact sum.
    energy_breakdown_j: dict[str, float] = field(default_factory=dict)
    area_mm2: float = 0.0            # one device (hwsim.hw.area: what is and is not counted)
    area_breakdown_mm2: dict[str, float] = field(default_factory=dict)   # sums to area_mm2
    # Per off-chip memory level of one device, fastest first: capacity_bytes, resident_bytes
    # (what placement put there), bytes (moved), busy (share of the makespan with traffic) and
    # energy_j (bytes at the level's pJ/bit plus its static power over the makespan, whole replica).
    memory_levels: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def roofline_bound_ns(schedule: Schedule) -> float:
    """A lower bound no schedule can beat: the longer of the critical path through per-task
    rooflines and, for each resource, its total work at peak rate."""
    finish = [0.0] * len(schedule.tasks)
    flops_on: dict[str, float] = {}
    work_on: dict[str, float] = {}
    for t in schedule.tasks:
        finish[t.id] = t.roofline_ns + max((finish[d] for d in t.deps), default=0.0)
        for r, w in t.demands.items():
            if w > 0:
                flops_on[r] = flops_on.get(r, 0.0) + t.flops
                work_on[r] = work_on.get(r, 0.0) + w
    path = max(finish, default=0.0)
    per_resource = 0.0
    for name, r in schedule.resources.items():
        if r.kind == "compute" and r.peak_flops_per_ns > 0:
            per_resource = max(per_resource, flops_on.get(name, 0.0) / r.peak_flops_per_ns)
        elif r.kind != "compute":
            per_resource = max(per_resource, work_on.get(name, 0.0) / r.peak_per_ns)
    return max(path, per_resource)


def time_per_layer_ns(trace: Trace) -> float:
    """Mean span of a decoder layer's tasks (first start to last end), per layer and micro-batch."""
    spans: dict[tuple[int, int], list[float]] = {}
    for t in trace.schedule.tasks:
        if t.layer >= 0:
            s, e = trace.start_ns[t.id], trace.end_ns[t.id]
            span = spans.setdefault((t.layer, t.micro_batch), [s, e])
            span[0], span[1] = min(span[0], s), max(span[1], e)
    if not spans:
        return trace.makespan_ns
    return float(np.mean([e - s for s, e in spans.values()]))


def _per_unit(schedule: Schedule, measure) -> dict[str, float]:
    """A measure per unit ("npu", "hbm", "pim", ...), averaged over the unit's resources
    (e.g. the 32 PIM channels)."""
    groups: dict[str, list[float]] = {}
    for name, r in schedule.resources.items():
        groups.setdefault(r.unit or name, []).append(measure(name))
    return {unit: float(np.mean(v)) for unit, v in groups.items()}


def energy_breakdown_j(schedule: Schedule, latency_s: float, devices: int) -> dict[str, float]:
    """Energy per component over the whole replica: each task's split (or "other" when a cost
    gave none), plus static power x makespan. Every bucket a registered component kind charges
    is present (hwsim.hw.registry.energy_buckets)."""
    per_device = {c: 0.0 for c in energy_buckets()}
    for t in schedule.tasks:
        for comp, e in (t.energy_by_component_j or {"other": t.energy_j}).items():
            per_device[comp] = per_device.get(comp, 0.0) + e
    per_device["static"] += sum(schedule.static_power_w.values()) * latency_s
    if not per_device.get("other", 1.0):
        del per_device["other"]
    return {c: e * devices for c, e in per_device.items()}


def memory_level_metrics(levels, schedule: Schedule, trace: Trace, busy: dict[str, float],
                         devices: int, moved: dict[str, float]) -> dict[str, dict[str, float]]:
    """The per-level table of `Metrics.memory_levels` for the off-chip `levels` of the device
    (`moved`: bytes per level of the trace)."""
    latency_s = trace.makespan_ns * 1e-9
    out = {}
    for lv in levels:
        if lv.on_chip:
            continue
        nbytes = moved.get(lv.name, 0.0)
        out[lv.name] = {"capacity_bytes": float(lv.capacity_bytes),
                        "resident_bytes": float(schedule.resident_bytes.get(lv.name, 0.0)),
                        "bytes": float(nbytes), "busy": busy.get(lv.name, 0.0),
                        "energy_j": (lv.energy_j(nbytes) + lv.static_power_w * latency_s) * devices}
    return out


def compute_metrics(graph: OpGraph, schedule: Schedule, trace: Trace,
                    area_breakdown_mm2: dict[str, float] | None = None, levels=()) -> Metrics:
    """`area_breakdown_mm2`: one device's area per component (hwsim.hw.area), and `levels` its
    memory levels (hwsim.hw.system.Device.levels), from the caller, which knows the hardware."""
    info = graph.info
    latency_s = trace.makespan_ns * 1e-9
    devices = info.tp * info.ep * info.pp   # every stage assumed as busy as the one simulated
    breakdown = energy_breakdown_j(schedule, latency_s, devices)
    energy = math.fsum(breakdown.values())
    area = dict(area_breakdown_mm2 or {})
    busy = _per_unit(schedule, trace.busy_fraction)
    moved = trace.bytes_by_level()
    return Metrics(
        throughput_tokens_per_s=info.tokens / latency_s if latency_s > 0 else float("inf"),
        iteration_latency_s=latency_s,
        time_per_layer_s=time_per_layer_ns(trace) * 1e-9,
        energy_j=energy,
        energy_per_token_j=energy / info.tokens,
        roofline_bound_s=roofline_bound_ns(schedule) * 1e-9,
        utilization=_per_unit(schedule, trace.utilization),
        busy=busy,
        bytes={lv: int(round(b)) for lv, b in sorted(moved.items())},
        tokens_per_iteration=info.tokens,
        devices=devices,
        energy_breakdown_j=breakdown,
        area_mm2=math.fsum(area.values()),
        area_breakdown_mm2=area,
        memory_levels=memory_level_metrics(levels, schedule, trace, busy, devices, moved),
    )
