"""Whole-model metrics of a dense decoder from a few short simulations, for sweeps.

Why this can be exact. The decoder layers of a dense Transformer are identical and the engine is
deterministic: what happens after a moment depends only on the work in flight then and on the
tasks still to come. Once the schedule is in a periodic steady state — the tasks of layer i + p
start and end a fixed time later than those of layer i, so the work in flight repeats with them —
every further period of p layers adds the same time to the iteration and the same energy, bytes,
busy time and roofline terms, and the last layers meet the epilogue (final norm, LM head) the
same way. Reaching that state can take several layers, and it need not be one layer long:
- under NeuPIMs sub-batch interleaving the two sub-batches can drift against each other for a
  few layers (increments 0.318, 0.241, 0.297, 0.245 ms for 2 -> 6 layers before 0.259 ms each);
- a sub-batch off the critical path can lose a little slack every layer while the iteration
  time grows by the same amount per layer, until it becomes critical (20 layers later, on one
  point of configs/sweeps/neupims-space.yaml): equal increments of the totals are not enough.

How. X(n) is any additive quantity of the stage simulated with n decoder layers: iteration time,
span of the layers, energy per component, bytes per level, busy and work time per unit, each
roofline term (``additive_quantities``). We simulate n = 1, 2, 3, ... layers and, after each run,
look for the shortest period p in PERIODS such that, with k = n - 2p >= 1,
 1. the last two periods added the same, for every quantity (within REL_TOL of its value):
        X(k + 2p) - X(k + p) == X(k + p) - X(k);
 2. in the n-layer run, every task of layers k .. k+p-1 (counted from 0) has its copy in layers
    k+p .. n-1 start and end later by one common shift (``tasks_repeat``; the iteration's
    increment, or a part of it when a stage's micro-batches run one after the other); copies
    that end after the epilogue could start are left out, as the epilogue legitimately changes
    them. A sub-batch that loses slack every layer shifts by a different amount than the
    critical one and fails this.
Then, for the whole stage of L layers, with r the run in [n - p, n] such that L - r is a
multiple of p,

    X(L) = X(r) + (L - r) / p * (X(n) - X(n - p)).

The layers of the remainder are in X(r), a simulation, never an average. Ratios (throughput,
utilization, busy share, energy per token, time per layer) are recomputed from the extrapolated
sums; the roofline bound is the largest extrapolated term.

This is exact (to float rounding) when the steady state holds from layer k on, which checks 1 and
2 are the evidence of (on two periods, not a proof); tests compare sweeps with full runs on every
shipped sweep space (tests/test_sweeps_equal_runs.py). The short runs may simulate L / 2 layers
in all (1 + 2 + ... + n <= L / 2, so n = 5 for L = 32); when no period shows within them, all
L layers are simulated. A point then costs at most about 1.5 full runs, and half of one at most
when a period is found.

A pass held at a unit's power limit (sim.trace.power_capped: a GPU at its TDP) is stretched as a
whole by a factor that changes with the number of layers, so its short runs show no period; and an
extension that would take a unit over its limit is refused (``within_power_limits``): both are
simulated in full.

Only dense decoders: MoE layers route differently (seeded per layer) and CNN layers differ, so
they are always simulated in full. The memory-fit check always sees the whole model. `hwsim run`
never extrapolates.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np

from hwsim.config.schema import SystemUnderTest
from hwsim.metrics import Metrics, roofline_terms_ns
from hwsim.sim.trace import limited_unit_energy_j, power_limit_stretch

# Periods (in layers) looked for, shortest first.
PERIODS = (1, 2, 3)
# Two periods agree when each quantity's increments (and each task's shift) differ by at most this
# share of the quantity (of the iteration time). Identical periods agree to float rounding
# (~1e-15 measured); the transients seen on the NeuPIMs space differ by >= 1e-5.
REL_TOL = 1e-9

Key = tuple[str, str]         # (what, which): ("bytes", "hbm"), ("latency_s", "")


def with_stage_layers(system: SystemUnderTest, stage_layers: int) -> SystemUnderTest:
    """The same system with `stage_layers` decoder layers per pipeline stage."""
    w = system.workload
    model = w.model.model_copy(update={"n_layers": stage_layers * w.pp})
    return system.model_copy(update={"workload": w.model_copy(update={"model": model})})


def stage_layers(system: SystemUnderTest) -> int:
    w = system.workload
    return w.model.n_layers // w.pp


def can_extrapolate(system: SystemUnderTest) -> bool:
    """A dense decoder with enough layers per stage for the first three runs (1 + 2 + 3 layers)
    to fit the budget of half of them, on a device with one off-chip memory level (with several,
    where the layers spill depends on how many there are)."""
    from hwsim.mappers import MAPPERS
    w = system.workload
    if w.kind != "transformer" or w.model.moe is not None or system.hardware.topology is not None \
            or getattr(w, "mtp", None) is not None or not MAPPERS[system.mapper.name].layer_periodic:
        return False
    levels = system.hardware.device(MAPPERS[system.mapper.name].needs).off_chip_levels
    return len(levels) <= 1 and stage_layers(system) >= 2 * (1 + 2 + 3)


def additive_quantities(result) -> dict[Key, float]:
    """The quantities of a simulated stage (a ``hwsim.pipeline.SystemResult``) that grow by a
    fixed amount per period in the steady state: sums over tasks, or times on the timeline."""
    m = result.metrics
    t = m.iteration_latency_s
    q: dict[Key, float] = {("latency_s", ""): t,
                           ("layer_span_s", ""): m.time_per_layer_s * result.graph.info.n_layers}
    q.update({("energy_j", c): e for c, e in m.energy_breakdown_j.items()})
    q.update({("bytes", lv): float(b) for lv, b in m.bytes.items()})
    q.update({("busy_s", u): f * t for u, f in m.busy.items()})
    q.update({("work_s", u): f * t for u, f in m.utilization.items()})
    q.update({("roofline_s", r): ns * 1e-9 for r, ns in roofline_terms_ns(result.schedule).items()})
    for name, lv in m.memory_levels.items():
        q.update({("level_resident_bytes", name): lv["resident_bytes"], ("level_bytes", name): lv["bytes"],
                  ("level_busy_s", name): lv["busy"] * t, ("level_energy_j", name): lv["energy_j"]})
    q.update({("unit_energy_j", u): e for u, e in limited_unit_energy_j(result.schedule).items()})
    return q


def periods_agree(a: dict[Key, float], b: dict[Key, float], c: dict[Key, float]) -> bool:
    """Runs a, b, c are p layers apart: did b -> c add what a -> b added, for every quantity?"""
    if not (a.keys() == b.keys() == c.keys()):
        return False
    return all(abs((c[k] - b[k]) - (b[k] - a[k])) <= REL_TOL * abs(c[k]) for k in c)


def layer_timeline(result) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Start and end (ns) of each layer's tasks, [layer, task of the layer] in schedule order,
    and the moment the epilogue could first start (the earliest a task outside the layers that
    depends on a layer task has its inputs). None when the layers differ in task count."""
    trace = result.trace
    tasks = trace.schedule.tasks
    layer_of = [t.layer for t in tasks]
    by_layer: dict[int, list[int]] = {}
    for t in tasks:
        if layer_of[t.id] >= 0:
            by_layer.setdefault(layer_of[t.id], []).append(t.id)
    ids = [by_layer[i] for i in sorted(by_layer)]
    if len({len(x) for x in ids}) != 1:
        return None
    ids = np.array(ids)
    epilogue_ready = min((max(trace.end_ns[d] for d in t.deps) for t in tasks
                          if layer_of[t.id] < 0 and any(layer_of[d] >= 0 for d in t.deps)),
                         default=math.inf)
    return trace.start_ns[ids], trace.end_ns[ids], float(epilogue_ready)


def tasks_repeat(result, p: int) -> bool:
    """In this n-layer run, does every task of layers n-2p .. n-p-1 have its copy p layers later
    start and end later by one common shift? Copies that end after the epilogue could start are
    not compared (the epilogue competes with them); at least one copy must be."""
    timeline = layer_timeline(result)
    if timeline is None:
        return False
    start, end, epilogue_ready = timeline
    n = start.shape[0]
    if n < 2 * p + 1:
        return False
    tol = REL_TOL * result.trace.makespan_ns
    before, after = slice(n - 2 * p, n - p), slice(n - p, n)
    compared = end[after] <= epilogue_ready + tol
    shifts = np.concatenate([(start[after] - start[before])[compared], (end[after] - end[before])[compared]])
    return bool(compared.any()) and float(np.ptp(shifts)) <= tol


def steady_period(q: dict[int, dict[Key, float]], n: int, repeats: Callable[[int], bool]) -> int | None:
    """The shortest period p in PERIODS whose last two repeats, ending at run n, added the same
    (runs n - 2p, n - p, n, keyed by layers in `q`) and for which `repeats(p)` holds (the tasks
    check on run n); None when there is none."""
    for p in PERIODS:
        if n - 2 * p >= 1 and periods_agree(q[n - 2 * p], q[n - p], q[n]) and repeats(p):
            return p
    return None


def extend(q: dict[int, dict[Key, float]], n: int, p: int, layers: int) -> tuple[int, dict[Key, float]]:
    """The quantities of `layers` layers from run r in [n - p, n] with layers - r a multiple of p,
    plus (layers - r) / p times the last period's increment. Returns (r, quantities)."""
    r = max(m for m in range(n - p, n + 1) if (layers - m) % p == 0)
    periods = (layers - r) // p
    return r, {key: q[r][key] + periods * (q[n][key] - q[n - p][key]) for key in q[n]}


def metrics_from(q: dict[Key, float], like: Metrics, layers: int) -> Metrics:
    """Metrics of a stage of `layers` layers from its additive quantities; the rest (tokens,
    devices, area) as in `like`."""
    def group(what: str) -> dict[str, float]:
        return {which: v for (w, which), v in q.items() if w == what}

    t = q[("latency_s", "")]
    breakdown = group("energy_j")
    energy = math.fsum(breakdown.values())
    tokens = like.work_per_iteration
    levels = {name: {"capacity_bytes": lv["capacity_bytes"],
                     "resident_bytes": q[("level_resident_bytes", name)],
                     "bytes": q[("level_bytes", name)], "busy": q[("level_busy_s", name)] / t,
                     "energy_j": q[("level_energy_j", name)]}
              for name, lv in like.memory_levels.items()}
    return dataclasses.replace(
        like,
        throughput_per_s=tokens / t,
        iteration_latency_s=t,
        time_per_layer_s=q[("layer_span_s", "")] / layers,
        energy_j=energy,
        energy_per_work_unit_j=energy / tokens,
        roofline_bound_s=max(group("roofline_s").values()),
        utilization={u: v / t for u, v in group("work_s").items()},
        busy={u: v / t for u, v in group("busy_s").items()},
        bytes={lv: int(round(v)) for lv, v in group("bytes").items()},
        energy_breakdown_j=breakdown,
        memory_levels=levels,
    )


@dataclasses.dataclass
class Extrapolation:
    """The whole stage's metrics, extended over whole periods of `period` layers from `run`
    (the SystemResult of the short run X(r))."""
    metrics: Metrics
    period: int
    run: object


def extrapolate(system: SystemUnderTest,
                simulate: Callable[[SystemUnderTest], object]) -> Extrapolation | None:
    """Whole-stage metrics of `system` from short runs (`simulate(system)` -> SystemResult), or
    None when no period was found within the budget (the caller simulates every layer)."""
    layers = stage_layers(system)
    runs: dict[int, object] = {}
    q: dict[int, dict[Key, float]] = {}
    n = 0
    while 2 * (sum(runs) + n + 1) <= layers:      # layers simulated so far and the next: <= L / 2
        n += 1
        runs[n] = simulate(with_stage_layers(system, n))
        q[n] = additive_quantities(runs[n])
        p = steady_period(q, n, repeats=functools.partial(tasks_repeat, runs[n]))
        if p is not None:
            r, whole = extend(q, n, p, layers)
            if not within_power_limits(runs[n].schedule, whole):
                return None
            return Extrapolation(metrics_from(whole, runs[r].metrics, layers), p, runs[r])
    return None


def within_power_limits(schedule, whole: dict[Key, float]) -> bool:
    """Whether the extended stage keeps every unit with a power limit below it, as the short runs
    were (a run held at its limit is stretched as a whole, so it never shows a period). A unit's
    power over a short run is diluted by the epilogue; the whole stage may reach the limit where
    they did not, and then only a full simulation gives its time (sim.trace.power_capped)."""
    energy = {unit: whole[("unit_energy_j", unit)] for unit in schedule.power_limit_w}
    return power_limit_stretch(schedule, energy, whole[("latency_s", "")]) <= 1.0

