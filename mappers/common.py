"""Pieces every mapper needs: the cost of an op on a unit, resources, collectives on links."""
from __future__ import annotations

from hwsim.hw.cost import OpCost
from hwsim.hw.energy import energy_components_j
from hwsim.hw.link import LinkSpec, collective_bytes_sent, collective_steps
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import Op, OpGraph

LINK = "link"


def link_resource(link: LinkSpec | None) -> Resource | None:
    if link is None:
        return None
    rate = link.bw_gbps  # GB/s == bytes/ns
    return Resource(LINK, "link", rate, rate, exclusive=False, unit="link")


def collective_cost(op: Op, link: LinkSpec | None) -> OpCost:
    if link is None:
        raise ValueError(f"op {op.name} is a collective but the hardware has no `link`")
    sent = collective_bytes_sent(op.kind, op.collective.group, op.collective.bytes)
    latency = collective_steps(op.kind, op.collective.group) * link.latency_us * 1e3
    parts = energy_components_j(link=sent * 8 * link.energy_pj_per_bit)
    return OpCost(compute_ns=0.0, bytes_by_level={"link": sent}, energy_j=sum(parts.values()),
                  roofline_ns=sent / link.bw_gbps + latency, latency_ns=latency, engine="link",
                  energy_by_component_j=parts)


def phase_of(op: Op) -> str:
    """The trace's phase of an op: its layer, and its micro-batch under pipeline parallelism."""
    if op.layer < 0:
        return ""
    return f"L{op.layer}" + (f".m{op.micro_batch}" if op.micro_batch else "")


def add_task(schedule: Schedule, label: str, op: Op, c: OpCost, where: str,
             demands: dict[str, float], deps) -> int:
    """Append the task that runs `op` (or part of it) at cost `c` on `where`."""
    return schedule.add(label, op.name, where, demands, deps=deps, latency_ns=c.latency_ns,
                        flops=op.flops, bytes_by_level=c.bytes_by_level, energy_j=c.energy_j,
                        roofline_ns=c.roofline_ns, phase=phase_of(op),
                        energy_by_component_j=c.energy_by_component_j)


def add_collective_task(schedule: Schedule, label: str, op: Op, link: LinkSpec | None, deps) -> int:
    c = collective_cost(op, link)
    return add_task(schedule, label, op, c, "link", {LINK: c.bytes_by_level["link"]}, deps)


def one_task_per_op(graph: OpGraph, schedule: Schedule, cost, compute: str, memory: str,
                    unit: str, link: LinkSpec | None) -> Schedule:
    """Each op becomes one task on `compute` (or on the link for collectives), with its off-chip
    bytes on `memory`, depending on the tasks of its predecessors."""
    task_of: dict[str, int] = {}
    for op in graph.ops:
        deps = sorted(task_of[p] for p in graph.predecessors(op.name))
        if op.kind.is_collective:
            task_of[op.name] = add_collective_task(schedule, op.name, op, link, deps)
        else:
            c = cost(op)
            demands = {compute: c.compute_ns, memory: c.bytes_by_level.get("hbm", 0.0),
                       **c.extra_demands}
            task_of[op.name] = add_task(schedule, op.name, op, c, unit, demands, deps)
    return schedule
