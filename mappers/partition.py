"""Partition a Transformer pass over the devices of a replica, and schedule every device.

The partition step (DESIGN.md, "Machine model") turns one pass of a model into one op graph per
*distinct* device plus the dependencies between devices:

- tensor parallelism (``tp``): Megatron sharding gives every rank of a TP group the same shapes
  (column-parallel QKV/up, row-parallel out/down, an all-reduce after each; Shoeybi et al. 2019),
  so one graph stands for all ``tp`` ranks and its collectives stay on the device's own link;
- expert parallelism (``ep``): each group attends over its own ``batch / ep`` requests and runs
  the experts it holds on the tokens routed to them (GShard, Lepikhin et al. 2020). Groups differ
  by routing, so each is its own device; an all-to-all cannot start on any group before every
  group has reached it, and the combine waits for every group's experts: the slowest group sets
  the pace, and the others show idle time;
- pipeline parallelism (``pp``): stage ``s`` holds layers ``[s L/pp, (s+1) L/pp)``; micro-batch
  ``j`` enters stage ``s + 1`` (its p2p receive) once stage ``s`` has finished it, so one pass
  shows the pipeline's fill and drain as idle time (GPipe, Huang et al. 2019).

Why the graphs come from the model builder per device coordinate, rather than from slicing one
unsharded graph: attention is per request (a device's share of the batch is a set of requests,
not a fraction of a tensor) and expert loads come from routing the whole micro-batch; the builder
already knows both, and ``DeviceCoord`` is the only thing the partition chooses. The logical,
unsharded graph is ``build_transformer`` of the same workload with ``tp = ep = pp = 1``.

Devices whose graphs are identical (same stage, same costs op by op) are simulated once and
counted; with dedupe off every (stage, group) is simulated, and the two agree exactly
(tests/test_partition.py).
"""
from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass

from hwsim.sim.schedule import Schedule
from hwsim.workloads.ops import OpGraph, OpKind
from hwsim.workloads.transformer import DeviceCoord, TransformerWorkload, build_transformer


@dataclass(frozen=True)
class DeviceGraph:
    """The graph of one simulated device and how many physical devices it stands for."""
    coords: tuple[DeviceCoord, ...]      # every (stage, expert group) it represents
    graph: OpGraph
    count: int                           # physical devices: len(coords) x tp

    @property
    def coord(self) -> DeviceCoord:
        return self.coords[0]


@dataclass(frozen=True)
class CrossDeviceEdge:
    """Op `dst_op` on device `dst` cannot start before op `src_op` on device `src` has ended."""
    src: int
    src_op: str
    dst: int
    dst_op: str


@dataclass
class Partition:
    devices: list[DeviceGraph]
    edges: list[CrossDeviceEdge]

    @property
    def physical_devices(self) -> int:
        return sum(d.count for d in self.devices)


def _signature(graph: OpGraph) -> tuple:
    """What makes two device graphs cost the same: every op's kind, shape and bytes, in order
    (names and expert ids aside)."""
    return tuple((op.kind, op.layer, op.micro_batch, op.flops, op.weight_bytes, op.act_in_bytes,
                  op.act_out_bytes, op.kv_read_bytes, op.kv_write_bytes, op.matmul, op.attention,
                  op.collective, op.elements) for op in graph.ops)


def _sinks_of_micro_batch(graph: OpGraph, j: int) -> list[str]:
    return [op.name for op in graph.ops
            if op.micro_batch == j and not any(graph.graph.nodes[s]["op"].micro_batch == j
                                               for s in graph.graph.successors(op.name))]


def _receive_of_micro_batch(graph: OpGraph, j: int) -> str:
    return next(op.name for op in graph.ops if op.kind == OpKind.P2P and op.micro_batch == j)


def partition(workload: TransformerWorkload, dedupe: bool = True) -> Partition:
    """Every device of one replica (module docstring)."""
    w = workload
    graphs: dict[DeviceCoord, OpGraph] = {
        DeviceCoord(s, g): build_transformer(w, DeviceCoord(s, g))
        for s in range(w.pp) for g in range(w.ep)}
    classes: dict[tuple, list[DeviceCoord]] = {}
    for coord, graph in graphs.items():
        key = (coord.stage, _signature(graph)) if dedupe else (coord,)
        classes.setdefault(key, []).append(coord)
    devices = [DeviceGraph(tuple(cs), graphs[cs[0]], len(cs) * w.tp) for cs in classes.values()]
    index = {c: k for k, d in enumerate(devices) for c in d.coords}

    edges: set[CrossDeviceEdge] = set()
    for s in range(1, w.pp):                      # pipeline: stage s-1 hands micro-batch j on
        for g in range(w.ep):
            src, dst = index[DeviceCoord(s - 1, g)], index[DeviceCoord(s, g)]
            for j in range(w.pp):
                recv = _receive_of_micro_batch(devices[dst].graph, j)
                for op in _sinks_of_micro_batch(devices[src].graph, j):
                    edges.add(CrossDeviceEdge(src, op, dst, recv))
    for s in range(w.pp):                         # expert parallelism: all-to-alls are joint
        members = sorted({index[DeviceCoord(s, g)] for g in range(w.ep)})
        if len(members) < 2:
            continue
        for dst in members:
            for op in devices[dst].graph.ops:
                if op.kind != OpKind.ALL_TO_ALL:
                    continue
                for src in members:
                    if src != dst:
                        for pred in devices[src].graph.predecessors(op.name):
                            edges.add(CrossDeviceEdge(src, pred, dst, op.name))
    return Partition(devices, sorted(edges, key=lambda e: (e.dst, e.dst_op, e.src, e.src_op)))


def device_prefix(k: int) -> str:
    return f"d{k}."


def merge_device_schedules(part: Partition, schedules: list[Schedule]) -> Schedule:
    """One schedule for the whole replica: device k's resources and units renamed ``d{k}.<name>``,
    its task ids shifted, its energy and static power counted once per physical device it stands
    for, and the cross-device edges added as dependencies (every task of the destination op
    waits for every task of the source op)."""
    merged = Schedule(resources={})
    offsets, tasks_of_op = [], []
    for k, (dev, sched) in enumerate(zip(part.devices, schedules)):
        pre, n = device_prefix(k), dev.count
        for r in sched.resources.values():
            merged.add_resource(dataclasses.replace(r, name=pre + r.name, unit=pre + (r.unit or r.name)))
        for unit, watts in sched.static_power_w.items():
            merged.static_power_w[pre + unit] = watts * n
        offset = len(merged.tasks)
        offsets.append(offset)
        by_op: dict[str, list[int]] = {}
        for t in sched.tasks:
            new = dataclasses.replace(
                t, id=t.id + offset, unit=pre + t.unit,
                demands={pre + r: v for r, v in t.demands.items()},
                deps=tuple(d + offset for d in t.deps),
                energy_j=t.energy_j * n,
                energy_by_component_j={c: e * n for c, e in t.energy_by_component_j.items()})
            merged.tasks.append(new)
            by_op.setdefault(t.op, []).append(new.id)
        tasks_of_op.append(by_op)
    extra: dict[int, set[int]] = {}
    for e in part.edges:
        for dst in tasks_of_op[e.dst].get(e.dst_op, ()):
            extra.setdefault(dst, set()).update(tasks_of_op[e.src].get(e.src_op, ()))
    for tid, deps in extra.items():
        t = merged.tasks[tid]
        merged.tasks[tid] = dataclasses.replace(t, deps=tuple(sorted(set(t.deps) | deps)))
    local = [t.id - offsets[k] for k, sched in enumerate(schedules) for t in sched.tasks]
    device = [k for k, sched in enumerate(schedules) for _ in sched.tasks]
    return _renumbered(merged, key=lambda tid: (local[tid], device[tid]))


def _renumbered(schedule: Schedule, key) -> Schedule:
    """The same schedule with task ids in a topological order (the engine runs a task only after
    lower-numbered ones it depends on, and gives an exclusive unit to the lowest waiting id):
    among ready tasks the smallest `key` goes first, so each device keeps its own order."""
    tasks = schedule.tasks
    successors: dict[int, list[int]] = {}
    missing = [len(set(t.deps)) for t in tasks]
    for t in tasks:
        for d in set(t.deps):
            successors.setdefault(d, []).append(t.id)
    ready = [(key(t.id), t.id) for t in tasks if not missing[t.id]]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, tid = heapq.heappop(ready)
        order.append(tid)
        for s in successors.get(tid, ()):
            missing[s] -= 1
            if not missing[s]:
                heapq.heappush(ready, (key(s), s))
    if len(order) != len(tasks):
        raise ValueError("the devices' dependencies form a cycle")
    new_id = {old: new for new, old in enumerate(order)}
    schedule.tasks = [dataclasses.replace(tasks[old], id=new_id[old],
                                          deps=tuple(sorted(new_id[d] for d in tasks[old].deps)))
                      for old in order]
    return schedule



def schedule_replica(workload: TransformerWorkload, hardware, mapper: str, options,
                     dedupe: bool = True) -> tuple[Partition, Schedule]:
    """Partition the pass, map every distinct device's graph with `mapper` (each device is the
    same hardware), and merge the schedules into one for the whole replica."""
    from hwsim.mappers.registry import MAPPERS
    part = partition(workload, dedupe)
    entry = MAPPERS[mapper]
    return part, merge_device_schedules(part, [entry.build(d.graph, hardware, options)
                                               for d in part.devices])
