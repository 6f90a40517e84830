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
from hwsim.hw.interconnect.schedule import add_coflows, add_collective, coflow_plan
from hwsim.workloads.ops import Op, OpGraph, OpKind
from hwsim.workloads.transformer import DeviceCoord, TransformerWorkload, _Builder, build_transformer


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


@dataclass(frozen=True)
class JointCollective:
    """A collective that the devices `members` run together (an expert-parallel all-to-all):
    none of them starts it before every member has finished the ops before it, and none goes on
    before all its flows are done. Merging adds one barrier on each side (O(members)
    dependencies, not members²)."""
    stage: int
    op: str
    members: tuple[int, ...]


@dataclass
class Partition:
    devices: list[DeviceGraph]
    edges: list[CrossDeviceEdge]
    joint: list[JointCollective] = dataclasses.field(default_factory=list)

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
            if op.micro_batch == j and not any(graph.op(s).micro_batch == j
                                               for s in graph.successors(op.name))]


def _receive_of_micro_batch(graph: OpGraph, j: int) -> str:
    return next(op.name for op in graph.ops if op.kind == OpKind.P2P and op.micro_batch == j)


def partition(workload: TransformerWorkload, dedupe: bool = True) -> Partition:
    """Every device of one replica (module docstring)."""
    w = workload
    coords = [DeviceCoord(s, g) for s in range(w.pp) for g in range(w.ep)]
    # Devices of one shape key build graphs of one signature: one graph is built per key
    # (`_Builder.shape_key`), then keys whose graphs still cost the same are merged.
    shapes: dict[tuple, list[DeviceCoord]] = {}
    for coord in coords:
        key = _Builder(w, coord).shape_key() if dedupe else (coord,)
        shapes.setdefault(key, []).append(coord)
    graphs: dict[DeviceCoord, OpGraph] = {}
    for same in shapes.values():
        graph = build_transformer(w, same[0])
        graphs.update({c: graph for c in same})
    classes: dict[tuple, list[DeviceCoord]] = {}
    signatures: dict[int, tuple] = {}
    for coord in coords:
        graph = graphs[coord]
        if dedupe and id(graph) not in signatures:
            signatures[id(graph)] = _signature(graph)
        key = (coord.stage, signatures[id(graph)]) if dedupe else (coord,)
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
    joint = []
    for s in range(w.pp):                         # expert parallelism: all-to-alls are joint
        members = tuple(sorted({index[DeviceCoord(s, g)] for g in range(w.ep)}))
        if len(members) < 2:
            continue
        joint += [JointCollective(s, op.name, members) for op in devices[members[0]].graph.ops
                  if op.kind == OpKind.ALL_TO_ALL]
    return Partition(devices, sorted(edges, key=lambda e: (e.dst, e.dst_op, e.src, e.src_op)), joint)


def device_prefix(k: int) -> str:
    return f"d{k}."


def physical_device(workload: TransformerWorkload, coord: DeviceCoord, rank: int) -> int:
    """Where a device sits on the topology: devices 0, 1, ... in (pipeline stage, expert group,
    tensor rank) order, so a tensor-parallel group is consecutive devices (one node)."""
    return (coord.stage * workload.ep + coord.expert_group) * workload.tp + rank


def _lowering(op: Op, sent: float, coord: DeviceCoord, workload: TransformerWorkload, network):
    """The flows that carry collective `op` of the device at `coord` (its `sent` bytes per
    device, from the mapper's task) and whether to add them as coflows (one task per sender).

    - all-reduce (tensor parallel): over the coord's tp ranks, with the topology's
      `all_reduce` algorithm (ring unless the config says otherwise; hw/interconnect);
    - all-to-all (expert parallel): each tp rank sends `sent` bytes, split evenly over its
      peers of the other expert groups (uniform destinations assumed: the routing skew shows
      in the expert loads of each group);
    - p2p (the pipeline receive of stage s): every tp rank of stage s-1 sends the whole
      activation to its peer of stage s (Megatron's scatter/gather optimisation not modelled).
    Only the coord's own traffic is lowered; identical devices it stands for move the same bytes
    on their own links (exact on a switch or full mesh; tests/test_partition.py)."""
    from hwsim.hw.interconnect import lower_transfers
    from hwsim.hw.interconnect.collectives import lower_all_reduce
    from hwsim.hw.link import collective_buffer_bytes
    w, group, topology = workload, op.collective.group, network.spec
    ranks = range(w.tp)
    if op.kind == OpKind.ALL_REDUCE:
        nodes = [physical_device(w, coord, r) for r in ranks]
        return lower_all_reduce(network, nodes, collective_buffer_bytes(op.kind, group, sent),
                                topology.all_reduce, topology.routing), False
    if op.kind == OpKind.ALL_TO_ALL:
        peers = [DeviceCoord(coord.stage, g) for g in range(w.ep) if g != coord.expert_group]
        transfers = [(physical_device(w, coord, r), physical_device(w, peer, r), sent / len(peers))
                     for r in ranks for peer in peers]
        return lower_transfers(network, transfers, topology.routing), True
    if op.kind == OpKind.P2P:
        prev = DeviceCoord(coord.stage - 1, coord.expert_group)
        return lower_transfers(network, [(physical_device(w, prev, r), physical_device(w, coord, r), sent)
                                         for r in ranks], topology.routing), False
    raise ValueError(f"op {op.name}: no lowering for a {op.kind} on a topology")


@dataclass
class ReplicaSchedule:
    """The merged schedule of a replica and, per task, how many physical copies of it run
    (a device's tasks: its count; a flow: the identical devices whose traffic it stands for;
    barriers: 0): metrics weight bytes with it. Energies in the schedule already count them."""
    schedule: Schedule
    copies: list[float]
    devices: int                                # physical devices of the replica
    device_counts: tuple[int, ...]              # physical devices each simulated device stands for
    units: dict[str, tuple[int, str]]           # merged unit -> (simulated device, its own unit)


def merge_device_schedules(part: Partition, schedules: list[Schedule], network=None,
                           workload: TransformerWorkload | None = None) -> ReplicaSchedule:
    """One schedule for the whole replica: device k's resources and units renamed ``d{k}.<name>``,
    its task ids shifted, its energy and static power counted once per physical device it stands
    for, and the cross-device edges added as dependencies (every task of the destination op
    waits for every task of the source op).

    With a `network` (hw/interconnect), each collective task a mapper made becomes a barrier, the
    flows that carry it on the topology's links (`_lowering`) and a barrier its successors wait
    for; the devices' own `link` resources are dropped. The flows of one all-to-all on all the
    devices of a stage end together: no device goes on before every flow of it is done."""
    merged = Schedule(resources={})
    units: dict[str, tuple[int, str]] = {}
    copies: list[float] = []
    key: list[tuple[int, int]] = []               # renumbering key: (task index on its device, device)
    tasks_of_op: list[dict[str, list[int]]] = []
    joint: dict[tuple[int, str], tuple[list[int], list[int]]] = {}   # all-to-all: flows, dones
    lowerings: dict = {}                          # (kind, group, bytes, coord) -> lowered, coflow?, plan
    demands: dict = {}                            # coflow -> its link demands in `merged`
    extra: dict[int, set[int]] = {}

    def scaled(t, n):
        return t.evolve(energy_j=t.energy_j * n,
                        energy_by_component_j={c: e * n for c, e in t.energy_by_component_j.items()})

    for k, (dev, sched) in enumerate(zip(part.devices, schedules)):
        pre, n, same = device_prefix(k), dev.count, len(dev.coords)
        for r in sched.resources.values():
            if network is None or r.kind != "link":
                unit = r.unit or r.name
                merged.add_resource(dataclasses.replace(r, name=pre + r.name, unit=pre + unit))
                units[pre + unit] = (k, unit)
        for unit, watts in sched.static_power_w.items():
            merged.static_power_w[pre + unit] = watts * n
        for unit, watts in sched.power_limit_w.items():
            merged.power_limit_w[pre + unit] = watts * n
        for level, nbytes in sched.resident_bytes.items():
            merged.resident_bytes[level] = merged.resident_bytes.get(level, 0.0) + nbytes * n
        graph = dev.graph
        new_id: dict[int, int] = {}
        after: dict[int, int] = {}                # a replaced collective's start -> its done
        by_op: dict[str, list[int]] = {}
        for t in sched.tasks:
            deps = tuple(sorted({after.get(new_id[d], new_id[d]) for d in t.deps}))
            op = graph.op(t.op) if t.op in graph else None
            lower = network is not None and op is not None and op.kind.is_collective
            tid = len(merged.tasks)
            if lower:
                merged.tasks.append(t.evolve(
                    id=tid, unit=pre + t.unit, demands={}, deps=deps, latency_ns=0.0, energy_j=0.0,
                    energy_by_component_j={}, bytes_by_level={}, roofline_ns=0.0, device=k))
                copies.append(0.0)
            else:
                merged.tasks.append(scaled(t, n).evolve(
                    id=tid, unit=pre + t.unit, deps=deps, device=k,
                    demands={pre + r: v for r, v in t.demands.items()}))
                copies.append(float(n))
            key.append((t.id, k))
            new_id[t.id] = tid
            by_op.setdefault(t.op, []).append(tid)
            if not lower:
                continue
            sent = t.bytes_by_level.get("link", 0.0)
            lowering_key = (op.kind, op.collective.group, sent, dev.coord)   # same in every layer
            if lowering_key not in lowerings:
                lowered, coflow = _lowering(op, sent, dev.coord, workload, network)
                lowerings[lowering_key] = lowered, coflow, coflow_plan(lowered) if coflow else None
            lowered, coflow, plan = lowerings[lowering_key]
            first = len(merged.tasks)
            where = dict(layer=t.layer, micro_batch=t.micro_batch, device=k)
            if coflow:
                flows, done = add_coflows(merged, lowered, pre + t.name, (tid,), t.op, plan=plan,
                                          demand_cache=demands, **where)
            else:
                added = add_collective(merged, lowered, pre + t.name, (tid,), t.op, **where)
                flows, done = tuple(i for ids in added.phase_tasks for i in ids), added.done
            for i in range(first, len(merged.tasks)):
                merged.tasks[i] = scaled(merged.tasks[i], same)
                copies.append(float(same) if i in flows else 0.0)
                key.append((t.id, k))
            after[tid] = done
            if op.kind == OpKind.ALL_TO_ALL:
                group = joint.setdefault((dev.coord.stage, t.op), ([], []))
                group[0].extend(flows)
                group[1].append(done)
        tasks_of_op.append(by_op)
    for j in part.joint:      # a barrier before and after each joint collective
        starts = [tid for k in j.members for tid in tasks_of_op[k].get(j.op, ())]
        before = {tid for k in j.members for pred in part.devices[k].graph.predecessors(j.op)
                  for tid in tasks_of_op[k].get(pred, ())}
        first = min(starts, key=key.__getitem__)
        unit = merged.tasks[first].unit
        barrier = merged.add(f"{j.op}:all ready", "", unit, {}, deps=sorted(before),
                             component="link", layer=merged.tasks[first].layer,
                             micro_batch=merged.tasks[first].micro_batch)
        copies.append(0.0)
        key.append((key[first][0] - 0.5, key[first][1]))    # just before its first successor
        for tid in starts:
            extra.setdefault(tid, set()).add(barrier)
        flows, dones = joint.get((j.stage, j.op), ([], []))
        if dones:
            barrier = merged.add(f"{j.op}:all done", "", unit, {}, deps=sorted(flows),
                                 component="link", layer=merged.tasks[first].layer,
                                 micro_batch=merged.tasks[first].micro_batch)
            copies.append(0.0)
            key.append((key[dones[0]][0] - 0.5, key[dones[0]][1]))
            for done in dones:
                extra.setdefault(done, set()).add(barrier)
    for e in part.edges:
        for dst in tasks_of_op[e.dst].get(e.dst_op, ()):
            extra.setdefault(dst, set()).update(tasks_of_op[e.src].get(e.src_op, ()))
    for tid, deps in extra.items():
        t = merged.tasks[tid]
        merged.tasks[tid] = t.evolve(deps=tuple(sorted(set(t.deps) | deps)))
    order = _renumbered(merged, key=lambda tid: key[tid])
    return ReplicaSchedule(merged, [copies[old] for old in order], part.physical_devices,
                           tuple(d.count for d in part.devices), units)


def _renumbered(schedule: Schedule, key) -> Schedule:
    """Renumber the schedule's task ids (in place) in a topological order (the engine runs a task only after
    lower-numbered ones it depends on, and gives an exclusive unit to the lowest waiting id):
    among ready tasks the smallest `key` goes first, so each device keeps its own order.
    Returns the old id of each new id."""
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
    schedule.tasks = [tasks[old].evolve(id=new_id[old],
                                        deps=tuple(sorted(new_id[d] for d in tasks[old].deps)))
                      for old in order]
    return order



def schedule_replica(workload: TransformerWorkload, map_device, dedupe: bool = True,
                     network=None) -> tuple[Partition, ReplicaSchedule]:
    """Partition the pass, map every distinct device's graph with `map_device(graph) ->
    Schedule` (every device is the same hardware), and merge the schedules into one for the
    whole replica, its collectives on `network` when given (`merge_device_schedules`)."""
    part = partition(workload, dedupe)
    return part, merge_device_schedules(part, [map_device(d.graph) for d in part.devices],
                                        network, workload)
