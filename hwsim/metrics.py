"""Figures of merit read off a trace: the numbers the report prints and `--json` returns."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from hwsim.hw.registry import energy_buckets
from hwsim.sim.schedule import Schedule
from hwsim.sim.trace import Trace
from hwsim.workloads.ops import OpGraph


# What one unit of throughput counts, by workload: a Transformer pass produces tokens, a CNN pass
# one inference per input. The JSON keys name it (`throughput_tokens_per_s` for Transformer runs,
# `throughput_inferences_per_s` for CNN runs), so a number never carries the wrong unit.
WORK_UNITS = ("token", "inference", "step")

# Python field -> JSON key template ({unit}: "token" | "inference").
_UNIT_NAMED = {"throughput_per_s": "throughput_{unit}s_per_s",
               "energy_per_work_unit_j": "energy_per_{unit}_j",
               "work_per_iteration": "{unit}s_per_iteration"}


@dataclass
class Metrics:
    """A run's figures of merit. A *replica* is one copy of the model: tp * ep * pp devices
    (`devices`); throughput and energy count the whole replica, bytes and area one device."""
    work_unit: str                   # what throughput counts: "token" or "inference" (WORK_UNITS)
    throughput_per_s: float          # work units per second, one replica
    iteration_latency_s: float       # one pass of the graph (one decode step, one prefill, one CNN batch)
    time_per_layer_s: float          # layers' span / layers (time_per_layer_ns: one definition)
    energy_j: float                  # whole replica (tp * ep * pp devices), one iteration
    energy_per_work_unit_j: float    # energy_j / work_per_iteration
    roofline_bound_s: float
    utilization: dict[str, float]    # per unit (FLOP utilization for compute, bandwidth for memory)
    busy: dict[str, float]           # per unit: share of time with work in progress
    bytes: dict[str, int]            # per memory level, one device, one iteration
    work_per_iteration: int          # work units one iteration produces (all requests of the batch)
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
    # The pass's time over its time at full clock: > 1 where a unit's power limit held it back
    # (a GPU at its TDP, hwsim.sim.trace.power_capped); 1 where no limit was reached.
    power_limit_slowdown: float = 1.0
    # Serving runs only (hwsim.serving.metrics): latencies, rates, SLO attainment, energy per
    # output token, the ceiling. The other fields then describe the run's largest iteration (one
    # full pass of its exact shape).
    serving: dict | None = None
    # Composition-of-Experts runs only (hwsim.coe): switching, hit rate, per-request latency; the
    # other fields then describe one decode pass of the expert.
    coe: dict | None = None
    # Sequence-parallel attention runs only (hwsim.seqpar): compute-only time, exposed
    # communication, bytes per link per step.
    seqpar: dict | None = None

    def to_json(self) -> dict:
        """The fields, with the unit-counting ones named for their unit
        (`throughput_tokens_per_s` or `throughput_inferences_per_s`, ...); `serving` only for
        serving runs."""
        return {json_key(k, self.work_unit): v for k, v in asdict(self).items()
                if k not in ("serving", "coe", "seqpar") or v is not None}

    # Transformer runs only: the names sweeps, notebooks and tests have always used.
    @property
    def throughput_tokens_per_s(self) -> float:
        return self._per_token("throughput_per_s")

    @property
    def energy_per_token_j(self) -> float:
        return self._per_token("energy_per_work_unit_j")

    @property
    def tokens_per_iteration(self) -> int:
        return self._per_token("work_per_iteration")

    def _per_token(self, name: str):
        if self.work_unit != "token":
            raise AttributeError(f"this run counts {self.work_unit}s, not tokens: read {name} "
                                 f"(JSON: {json_key(name, self.work_unit)})")
        return getattr(self, name)


def json_key(name: str, work_unit: str) -> str:
    """The JSON / sweep-column name of Metrics field `name` for a run counting `work_unit`s."""
    template = _UNIT_NAMED.get(name)
    return template.format(unit=work_unit) if template else name


def metric_names() -> dict[str, bool]:
    """Every top-level JSON metric name, for any work unit -> whether it holds a mapping
    (`utilization` -> columns `utilization.npu`, ...). Sweeps check objective names against it."""
    import typing
    hints = typing.get_type_hints(Metrics)
    out = {}
    for f in fields(Metrics):
        hint = hints[f.name]           # dict[...] or, for `serving`, dict | None
        is_map = typing.get_origin(hint) is dict or any(
            a is dict or typing.get_origin(a) is dict for a in typing.get_args(hint))
        for unit in WORK_UNITS:
            out[json_key(f.name, unit)] = is_map
    return out


def roofline_terms_ns(schedule: Schedule) -> dict[str, float]:
    """The lower bounds whose maximum is the roofline bound: "critical_path" (the longest chain of
    per-task rooflines through the dependencies) and, per resource, its total work at peak rate.
    Each grows by a fixed amount per identical layer, so sweeps extrapolate them one by one
    (hwsim.extrapolate) and take the maximum after."""
    finish = [0.0] * len(schedule.tasks)
    flops_on: dict[str, float] = {}
    work_on: dict[str, float] = {}
    for t in schedule.tasks:
        finish[t.id] = t.roofline_ns + max((finish[d] for d in t.deps), default=0.0)
        for r, w in t.demands.items():
            if w > 0:
                flops_on[r] = flops_on.get(r, 0.0) + t.flops
                work_on[r] = work_on.get(r, 0.0) + w
    terms = {"critical_path": max(finish, default=0.0)}
    for name, r in schedule.resources.items():
        if r.kind == "compute" and r.peak_flops_per_ns > 0:
            terms[name] = flops_on.get(name, 0.0) / r.peak_flops_per_ns
        elif r.kind != "compute":
            terms[name] = work_on.get(name, 0.0) / r.peak_per_ns
    return terms


def roofline_bound_ns(schedule: Schedule) -> float:
    """A lower bound no schedule can beat: the longer of the critical path through per-task
    rooflines and, for each resource, its total work at peak rate."""
    return max(roofline_terms_ns(schedule).values())


def layer_span_ns(graph: OpGraph, trace: Trace) -> float:
    """From the first start to the last end of the tasks of ops inside a layer (op.layer >= 0:
    the decoder layers of this device's pipeline stage, or a CNN's layers). The iteration is the
    time before this span (embedding), the span, and the time after it (final norm, LM head)."""
    in_layer = [t.id for t in trace.schedule.tasks if t.layer >= 0]
    if not in_layer:
        return trace.makespan_ns
    return float(trace.end_ns[in_layer].max() - trace.start_ns[in_layer].min())


def time_per_layer_ns(graph: OpGraph, trace: Trace) -> float:
    """The layer span (``layer_span_ns``: first start to last end of the layers' tasks) divided by
    the number of layers in the graph (this device's pipeline stage), so that

        iteration = time before the first layer + layers x time_per_layer + time after the last layer

    exactly, and layers x time_per_layer never exceeds the iteration. It is the mean time per layer
    over the part of the iteration where layers run (all micro-batches of the stage, warm-up of the
    first layer included). It is not the span of one layer's own tasks: under sub-batch
    interleaving and micro-batches those spans overlap and add up to more than the iteration.
    Sweeps compute it the same way, from the extrapolated span (hwsim.extrapolate)."""
    return layer_span_ns(graph, trace) / max(graph.info.n_layers, 1)


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
                    area_breakdown_mm2: dict[str, float] | None = None, levels=(),
                    replica=None, info=None) -> Metrics:
    """`area_breakdown_mm2`: one device's area per component (hwsim.hw.area), and `levels` its
    memory levels (hwsim.hw.system.Device.levels), from the caller, which knows the hardware.

    `replica` (a ``mappers.partition.ReplicaSchedule``): the schedule holds every distinct device
    of the replica with energies already counted per physical device; bytes and memory levels
    are then the mean over the physical devices (each task weighted by its copies) and busy per
    level the mean over the devices. `info` overrides the graph's (the replica's layers)."""
    info = info or graph.info
    latency_s = trace.makespan_ns * 1e-9
    if replica is None:
        devices = info.tp * info.ep * info.pp   # every stage assumed as busy as the one simulated
        breakdown = energy_breakdown_j(schedule, latency_s, devices)
        moved = trace.bytes_by_level()
    else:
        devices = replica.devices
        breakdown = energy_breakdown_j(schedule, latency_s, 1)
        moved = {}
        for t, n in zip(schedule.tasks, replica.copies):
            for lv, b in t.bytes_by_level.items():
                moved[lv] = moved.get(lv, 0.0) + b * n / devices
    energy = math.fsum(breakdown.values())
    area = dict(area_breakdown_mm2 or {})
    busy = _per_unit(schedule, trace.busy_fraction)
    level_busy = busy if replica is None else _mean_over_devices(busy, schedule, replica)
    return Metrics(
        work_unit=info.work_unit,
        throughput_per_s=info.tokens / latency_s if latency_s > 0 else float("inf"),
        iteration_latency_s=latency_s,
        time_per_layer_s=layer_span_ns(graph, trace) / max(info.n_layers, 1) * 1e-9,
        energy_j=energy,
        energy_per_work_unit_j=energy / info.tokens,
        roofline_bound_s=roofline_bound_ns(schedule) * 1e-9,
        utilization=_per_unit(schedule, trace.utilization),
        busy=busy,
        bytes={lv: int(round(b)) for lv, b in sorted(moved.items())},
        work_per_iteration=info.tokens,
        devices=devices,
        energy_breakdown_j=breakdown,
        area_mm2=math.fsum(area.values()),
        area_breakdown_mm2=area,
        memory_levels=memory_level_metrics(levels, schedule, trace, level_busy, devices, moved),
        power_limit_slowdown=trace.power_stretch,
    )


def _mean_over_devices(busy: dict[str, float], schedule: Schedule, replica) -> dict[str, float]:
    """Busy of each device-level unit ("hbm") as the mean over the physical devices of the
    simulated devices' own units, each weighted by the devices it stands for."""
    out: dict[str, float] = {}
    for unit, b in busy.items():
        if unit in replica.units:
            k, own = replica.units[unit]
            out[own] = out.get(own, 0.0) + b * replica.device_counts[k] / replica.devices
    return out
