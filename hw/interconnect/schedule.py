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
                   deps: Sequence[int] = (), op: str = "") -> CollectiveTasks:
    """Append `lowered` to `schedule` after the tasks `deps`; `label` prefixes task names and
    names the tasks ("<label>.<phase>:dev<src>->dev<dst>"); `op` is the OpGraph op it implements.
    Flow tasks carry the sending device and the component "link" (hwsim.sim.schedule.Task)."""
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
                               roofline_ns=c.roofline_ns, device=flow.src, component="link",
                               datapath="link",
                               energy_by_component_j=c.energy_by_component_j)
            ids.append(tid)
            flow_of_task[tid] = flow
            phase_of_task[tid] = k
        phase_tasks.append(tuple(ids))
        after = (schedule.add(f"{label}.{k}:done", op, UNIT, {}, deps=ids,
                              component="link"),)
    if not lowered.phases:        # a group of one: nothing moves
        after = (schedule.add(f"{label}:done", op, UNIT, {}, deps=after, component="link"),)
    return CollectiveTasks(lowered, tuple(phase_tasks), flow_of_task, phase_of_task, done=after[0])
