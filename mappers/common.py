"""Pieces every mapper needs: resources of a device, tasks with their provenance, collectives."""
from __future__ import annotations

from hwsim.hw.cost import OpCost
from hwsim.hw.link import LinkSpec, collective_cost
from hwsim.hw.system import Device
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import Op, OpGraph

LINK = "link"


def link_resource(link: LinkSpec | None) -> Resource | None:
    if link is None:
        return None
    rate = link.bw_gbps  # GB/s == bytes/ns
    return Resource(LINK, "link", rate, rate, exclusive=False, unit="link")


def memory_resources(schedule: Schedule, device: Device) -> dict[str, str]:
    """One shared memory resource per off-chip level of `device` (named after the level);
    returns {level name: resource name}."""
    for lv in device.off_chip_levels:
        schedule.add_resource(Resource(lv.name, "memory", lv.sustained_bw_gbps, lv.peak_bw_gbps,
                                       exclusive=False, unit=lv.name))
    return {lv.name: lv.name for lv in device.off_chip_levels}


def add_task(schedule: Schedule, label: str, op: Op, c: OpCost, where: str,
             demands: dict[str, float], deps, component: str | None = None, level: str = "") -> int:
    """Append the task that runs `op` (or part of it) at cost `c` on `where`, with its
    provenance: layer, micro-batch, component kind (default: `where`), datapath (the cost's
    engine) and the level holding its weights."""
    return schedule.add(label, op.name, where, demands, deps=deps, latency_ns=c.latency_ns,
                        flops=op.flops, bytes_by_level=c.bytes_by_level, energy_j=c.energy_j,
                        roofline_ns=c.roofline_ns, energy_by_component_j=c.energy_by_component_j,
                        layer=op.layer, micro_batch=op.micro_batch,
                        component=component or where, datapath=c.engine, level=level)


def add_collective_task(schedule: Schedule, label: str, op: Op, link: LinkSpec | None, deps) -> int:
    c = collective_cost(op, link)
    return add_task(schedule, label, op, c, "link", {LINK: c.bytes_by_level["link"]}, deps)


def one_task_per_op(graph: OpGraph, schedule: Schedule, cost, compute: str, memory: str,
                    unit: str, link: LinkSpec | None, level_resources: dict[str, str] | None = None,
                    weights_level=None) -> Schedule:
    """Each op becomes one task on `compute` (or on the link for collectives), its off-chip
    bytes on the memory resources (`level_resources`: {level: resource}; default: the "hbm"
    level on `memory`), depending on the tasks of its predecessors. `weights_level(op)`: the
    name of the level holding the op's weights, for the task's provenance."""
    levels = level_resources or {"hbm": memory}
    task_of: dict[str, int] = {}
    for op in graph.ops:
        deps = sorted(task_of[p] for p in graph.predecessors(op.name))
        if op.kind.is_collective:
            task_of[op.name] = add_collective_task(schedule, op.name, op, link, deps)
        else:
            c = cost(op)
            demands = {compute: c.compute_ns,
                       **{res: c.bytes_by_level.get(lv, 0.0) for lv, res in levels.items()},
                       **c.extra_demands}
            level = weights_level(op) if weights_level and op.weight_bytes else ""
            task_of[op.name] = add_task(schedule, op.name, op, c, unit, demands, deps, level=level)
    return schedule
