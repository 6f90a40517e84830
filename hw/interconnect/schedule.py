"""Add a lowered collective to a `Schedule`: a thin adapter, no cost arithmetic of its own.

Every directed link a flow crosses becomes one shared (non-exclusive) resource named
"link:<link name>" with the link's bandwidth; every flow becomes one task that demands its bytes
on every link of its route at once, so the engine shares each link among the flows on it
(max-min fair) and contention comes from the engine. A zero-work barrier task ends each phase;
the next phase's flows depend on it (O(flows) dependency edges instead of flows²), and the last
barrier is the collective's `done` task for later tasks to depend on.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwsim.hw.interconnect.collectives import Flow, LoweredCollective
from hwsim.hw.interconnect.cost import flow_cost
from hwsim.hw.interconnect.topology import Link
from hwsim.sim.schedule import Resource, Schedule

UNIT = "link"      # the report's unit of every link resource and flow task


def link_resource_name(link: Link) -> str:
    return f"link:{link.name}"


@dataclass(frozen=True)
class CollectiveTasks:
    """Where the collective went in the schedule, typed (nothing to parse back from names)."""
    collective: LoweredCollective
    phase_tasks: tuple[tuple[int, ...], ...]   # the flow tasks of each phase
    flow_of_task: dict[int, Flow]
    phase_of_task: dict[int, int]
    done: int                                  # the barrier ending the last phase


def _ensure_link(schedule: Schedule, link: Link) -> str:
    name = link_resource_name(link)
    have = schedule.resources.get(name)
    if have is None:
        schedule.add_resource(Resource(name, "link", link.bw_gbps, link.bw_gbps,
                                       exclusive=False, unit=UNIT))
    elif have.capacity_per_ns != link.bw_gbps:
        raise ValueError(f"resource {name} exists with {have.capacity_per_ns} GB/s, "
                         f"not this link's {link.bw_gbps} GB/s")
    return name


def add_collective(schedule: Schedule, lowered: LoweredCollective, label: str,
                   deps: Sequence[int] = (), op: str = "", **provenance) -> CollectiveTasks:
    """Append `lowered` to `schedule` after the tasks `deps`; `label` prefixes task names and
    names the tasks ("<label>.<phase>:dev<src>->dev<dst>"); `op` is the OpGraph op it implements.
    Flow tasks carry the sending device and the component "link" (hwsim.sim.schedule.Task);
    `provenance` (layer, micro_batch, device, ...) overrides those fields of every task."""
    phase_tasks, flow_of_task, phase_of_task = [], {}, {}
    after = tuple(deps)
    for k, phase in enumerate(lowered.phases):
        ids = []
        for flow in phase.flows:
            c = flow_cost(flow, phase.steps)
            demands = {_ensure_link(schedule, link): flow.nbytes for link in flow.route}
            tid = schedule.add(f"{label}.{k}:dev{flow.src}->dev{flow.dst}", op, UNIT, demands,
                               deps=after, latency_ns=c.latency_ns,
                               bytes_by_level=c.bytes_by_level, energy_j=c.energy_j,
                               roofline_ns=c.roofline_ns,
                               **({"device": flow.src, "component": "link", "datapath": "link"} | provenance),
                               energy_by_component_j=c.energy_by_component_j)
            ids.append(tid)
            flow_of_task[tid] = flow
            phase_of_task[tid] = k
        phase_tasks.append(tuple(ids))
        after = (schedule.add(f"{label}.{k}:done", op, UNIT, {}, deps=ids,
                              **({"component": "link"} | provenance)),)
    if not lowered.phases:        # a group of one: nothing moves
        after = (schedule.add(f"{label}:done", op, UNIT, {}, deps=after,
                                **({"component": "link"} | provenance)),)
    return CollectiveTasks(lowered, tuple(phase_tasks), flow_of_task, phase_of_task, done=after[0])


@dataclass(frozen=True)
class Coflow:
    """The flows one device sends in one phase, as one task's worth of numbers."""
    src: int
    flows: int                        # how many flows it stands for
    link_bytes: tuple[tuple[Link, float], ...]   # bytes crossing each link
    latency_ns: float                 # steps x the longest route's latency
    nbytes: float                     # bytes sent
    energy_pj: float                  # bytes x 8 x each route's pJ/bit, summed


def coflow_plan(lowered: LoweredCollective) -> tuple[tuple[Coflow, ...], ...]:
    """Per phase, one `Coflow` per sending device (see `add_coflows`). Pure: a caller lowering
    the same collective many times (every layer of a model) computes it once."""
    import math

    from hwsim.hw.interconnect.cost import route_latency_ns, route_pj_per_bit
    routes: dict = {}                             # route -> (latency ns, pJ/bit)
    plan = []
    for phase in lowered.phases:
        by_src: dict[int, list[Flow]] = {}
        for flow in phase.flows:
            by_src.setdefault(flow.src, []).append(flow)
        coflows = []
        for src, flows in by_src.items():
            on_link: dict[Link, float] = {}
            latency, bits_pj = 0.0, 0.0
            for f in flows:
                if f.route not in routes:
                    routes[f.route] = (route_latency_ns(f.route), route_pj_per_bit(f.route))
                lat, pj = routes[f.route]
                latency, bits_pj = max(latency, lat), bits_pj + f.nbytes * 8 * pj
                for link in f.route:
                    on_link[link] = on_link.get(link, 0.0) + f.nbytes
            coflows.append(Coflow(src, len(flows), tuple(on_link.items()), latency * phase.steps,
                                  math.fsum(f.nbytes for f in flows), bits_pj))
        plan.append(tuple(coflows))
    return tuple(plan)


def add_coflows(schedule: Schedule, lowered: LoweredCollective, label: str,
                deps: Sequence[int] = (), op: str = "", plan=None, demand_cache: dict | None = None,
                **provenance) -> tuple[tuple[int, ...], int]:
    """Append `lowered` with one task per (phase, sending device) instead of one per flow: the
    task demands, on every link, the bytes of that device's flows crossing it, so its flows
    progress together (a coflow). An all-to-all over p devices is then p tasks per phase, not
    p(p-1). Exact where a device's flows would progress at one rate anyway (a uniform exchange
    on a switch or full mesh: every port carries the same load); otherwise a device's flows to
    lightly loaded destinations finish no earlier than its slowest one. Costs as `flow_cost`
    per flow: latency = steps x the longest route's latency; energy = bytes x 8 x the route's
    pJ/bit, summed; roofline: that latency plus the busiest link's bytes at its bandwidth.
    `plan` is `coflow_plan(lowered)` when the caller has it; `demand_cache` (a dict the caller
    keeps with the plan, for one schedule) keeps each coflow's link demands and roofline, so a
    collective added once per layer builds them once. Returns (coflow task ids, the barrier
    ending the last phase)."""
    from hwsim.hw.energy import energy_components_j
    names: dict = {}                              # link -> its resource (checked once)
    after, ids_all = tuple(deps), []
    for k, coflows in enumerate(plan if plan is not None else coflow_plan(lowered)):
        ids = []
        for c in coflows:
            cached = demand_cache.get(id(c)) if demand_cache is not None else None
            if cached is None:
                demands = {}
                for link, nbytes in c.link_bytes:
                    name = names.get(link) or names.setdefault(link, _ensure_link(schedule, link))
                    demands[name] = nbytes
                roofline = c.latency_ns + max(b / schedule.resources[n].capacity_per_ns
                                              for n, b in demands.items())
                cached = (demands, roofline, c)          # c kept alive: its id stays its own
                if demand_cache is not None:
                    demand_cache[id(c)] = cached
            demands, roofline, _ = cached
            energy = energy_components_j(link=c.energy_pj)          # pJ in, J out
            tid = schedule.add(f"{label}.{k}:dev{c.src}->{c.flows} devices", op, UNIT, dict(demands),
                               deps=after, latency_ns=c.latency_ns,
                               bytes_by_level={"link": c.nbytes},
                               energy_j=sum(energy.values()),
                               roofline_ns=roofline,
                               energy_by_component_j=energy,
                               **({"device": c.src, "component": "link", "datapath": "link"} | provenance))
            ids.append(tid)
        ids_all += ids
        after = (schedule.add(f"{label}.{k}:done", op, UNIT, {}, deps=ids,
                              **({"component": "link"} | provenance)),)
    if not lowered.phases:
        after = (schedule.add(f"{label}:done", op, UNIT, {}, deps=after,
                              **({"component": "link"} | provenance)),)
    return tuple(ids_all), after[0]
