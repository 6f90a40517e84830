"""`wafer_pipeline`: a decoder layer-pipelined over the regions of one or more wafer-scale engines.

Placement (Cerebras' weight-stationary layer pipelining, as described in
research/system_anchors.md B.2; the costs are hwsim.hw.wafer's):

1. The ops are grouped: the embedding (with its table, when untied), each decoder layer (its
   weights and its KV cache), the head (final norm and LM head). A group's bytes are what it
   keeps resident in SRAM.
2. The groups are cut, in order, into `wafers` contiguous runs that minimise the largest run's
   bytes (the linear-partition problem, by bisection on the bound with a greedy check); a run
   larger than one wafer's SRAM is a `PlacementError` that names the fewest wafers that would do.
3. On its wafer a group gets a region of cores in proportion to its bytes (the regions fill the
   wafer, so every core's SRAM and MACs work for some layer), at least one core; a group whose
   bytes exceed its region's SRAM is a `PlacementError`.
4. Each op runs on its group's region (`hwsim.hw.wafer.region_op_cost`). Every producer whose
   output is consumed in another region sends it there once per consuming region: over the
   fabric on the same wafer, over the wafer-to-wafer link otherwise. After the LM head the
   sampled token (4 bytes per request) goes back to the embedding's region for the next step:
   an arg-max reduction over the head region's side, then a wafer's side of hops (the chain of
   regions snakes across the wafer, its end a side away from its start [assumed]) or the
   wafer-to-wafer link back to the first wafer.

At batch 1 every task waits for the one before: the per-token latency is the sum of the chain,
and `token_latency_terms` splits it into compute, SRAM bandwidth, fabric hops and wafer links.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.hw.wafer import (FABRIC, SRAM_LEVEL, WAFER_LINK, WaferSpec, fabric_transfer,
                            region_op_cost, region_side, wafer_link_transfer)
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.common import add_task
from hwsim.mappers.placement import PlacementError, place_data
from hwsim.mappers.registry import NoOptions, register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import OpGraph, OpKind

NEEDS = ("wafer",)
TOKEN_ID_BYTES = 4          # an int32 token id per request


@dataclass(frozen=True)
class Region:
    group: str
    wafer: int
    cores: int
    resident_bytes: float

    @property
    def side(self) -> int:
        return region_side(self.cores)


def op_groups(graph: OpGraph) -> tuple[dict[str, str], dict[str, float]]:
    """{op name: group} and {group: resident bytes}, groups in pipeline order ("embed", "L0",
    ..., "head"). Resident: the weights (micro-batch 0 reads each once), the KV cache read and
    written, and for "embed" the table when the graph's weights exceed its ops' (untied)."""
    group_of: dict[str, str] = {}
    resident: dict[str, float] = {}
    seen_layer = False
    for op in graph.ops:
        if op.layer >= 0:
            seen_layer = True
            g = f"L{op.layer}"
        else:
            g = "head" if seen_layer else "embed"
        group_of[op.name] = g
        resident.setdefault(g, 0.0)
        if op.micro_batch == 0:
            resident[g] += op.weight_bytes
        resident[g] += op.kv_read_bytes + op.kv_write_bytes
    # MoE: the experts no token of the pass routes to have no ops, yet their weights stay resident
    # in their layer (the router's width is the layer's expert count; an expert's bytes are those
    # of any routed expert of the layer)
    idle = moe_idle_expert_bytes(graph)
    for layer, nbytes in idle.items():
        resident[f"L{layer}"] += nbytes
    table = graph.info.weight_bytes_per_device - sum(op.weight_bytes for op in graph.ops if op.micro_batch == 0) \
        - sum(idle.values())
    if table > 0 and "embed" in resident:
        resident["embed"] += table
    return group_of, resident


def moe_idle_expert_bytes(graph: OpGraph) -> dict[int, float]:
    """{layer: weight bytes of the routed experts with no op in the graph} for MoE layers."""
    experts: dict[int, set[int]] = {}
    first: dict[int, int] = {}
    per_expert: dict[int, float] = {}
    width: dict[int, int] = {}
    for op in graph.ops:
        if op.micro_batch:
            continue
        if op.kind == OpKind.ROUTER and op.matmul is not None:
            width[op.layer] = op.matmul.n
        elif op.expert is not None and op.expert >= 0:
            experts.setdefault(op.layer, set()).add(op.expert)
            if first.setdefault(op.layer, op.expert) == op.expert:
                per_expert[op.layer] = per_expert.get(op.layer, 0.0) + op.weight_bytes
    return {layer: (n - len(experts.get(layer, ()))) * per_expert.get(layer, 0.0)
            for layer, n in width.items() if experts.get(layer)}


def split_over_wafers(sizes: list[float], wafers: int) -> list[int]:
    """The wafer of each group: `wafers` contiguous runs minimising the largest run's bytes."""
    def runs_needed(bound: float) -> int:
        runs, load = 1, 0.0
        for s in sizes:
            if load + s > bound and load > 0:
                runs, load = runs + 1, 0.0
            load += s
        return runs
    lo, hi = max(sizes), sum(sizes)
    for _ in range(100):
        if hi - lo <= 1e-9 * hi:
            break
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if runs_needed(mid) <= wafers else (mid, hi)
    out, w, load = [], 0, 0.0
    for i, s in enumerate(sizes):
        # start a new run when this group would exceed the bound, keeping enough runs for the rest
        if load > 0 and load + s > hi and w < wafers - 1:
            w, load = w + 1, 0.0
        out.append(w)
        load += s
    return out


def fewest_wafers(sizes: list[float], capacity: float) -> int:
    runs, load = 1, 0.0
    for s in sizes:
        if load + s > capacity and load > 0:
            runs, load = runs + 1, 0.0
        load += s
    return runs


def place_regions(graph: OpGraph, spec: WaferSpec) -> tuple[dict[str, str], dict[str, Region]]:
    """{op: group} and {group: Region} (module docstring, steps 1-3)."""
    group_of, resident = op_groups(graph)
    names, sizes = list(resident), list(resident.values())
    capacity = spec.sram_bytes_per_core * spec.cores
    if max(sizes) > capacity:
        big = names[sizes.index(max(sizes))]
        raise PlacementError(f"group '{big}' ({max(sizes) / 1e9:.2f} GB) exceeds one wafer's SRAM "
                             f"({capacity / 1e9:.2f} GB)")
    wafer_of = split_over_wafers(sizes, spec.wafers)
    regions: dict[str, Region] = {}
    for w in range(spec.wafers):
        on = [i for i, x in enumerate(wafer_of) if x == w]
        total = sum(sizes[i] for i in on)
        if total > capacity:
            need = fewest_wafers(sizes, capacity)
            raise PlacementError(f"the weights and KV cache ({sum(sizes) / 1e9:.2f} GB) do not fit "
                                 f"{spec.wafers} wafer(s) of {capacity / 1e9:.2f} GB SRAM: wafer {w} "
                                 f"would hold {total / 1e9:.2f} GB; whole layers need at least "
                                 f"{need} wafers (hardware.wafer.wafers)")
        for i in on:
            cores = max(1, int(spec.cores * sizes[i] / total)) if total > 0 else 1
            if sizes[i] > cores * spec.sram_bytes_per_core:
                raise PlacementError(f"group '{names[i]}' ({sizes[i] / 1e9:.3f} GB) exceeds its region "
                                     f"of {cores} cores ({cores * spec.sram_bytes_per_core / 1e9:.3f} GB)")
            regions[names[i]] = Region(names[i], w, cores, sizes[i])
    return group_of, regions


@register("wafer_pipeline", "layer-pipelined over the regions of wafer-scale engines: weights "
          "stationary in SRAM, activations over the fabric and wafer-to-wafer links (Cerebras)",
          needs=NEEDS, options=NoOptions, layer_periodic=False)
def map_wafer_pipeline(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    device = hw.device(NEEDS)
    spec: WaferSpec = device.spec("wafer")
    placement = place_data(graph, device)          # the level-wide fit check and resident bytes
    group_of, regions = place_regions(graph, spec)
    schedule = Schedule(resources={})
    schedule.resident_bytes = dict(placement.resident_bytes)
    for w in range(spec.wafers):
        schedule.add_resource(Resource(f"wafer{w}", "compute", 1.0, 1.0, exclusive=True, unit="wafer",
                                       peak_flops_per_ns=spec.peak_flops_per_ns))
        schedule.add_resource(Resource(f"{FABRIC}{w}", "link", 1.0, 1.0, exclusive=False, unit=FABRIC))
        # The wafer's SRAM as one memory resource at its aggregate bandwidth (for the report's
        # busy and utilization): a region reads at its own share, so this demand never sets a
        # task's time (region busy >= bytes / region bandwidth >= bytes / wafer bandwidth).
        bw = spec.sram_bw_pb_per_s * 1e6
        schedule.add_resource(Resource(f"{SRAM_LEVEL}{w}", "memory", bw, bw, exclusive=False,
                                       unit=SRAM_LEVEL))
    if spec.wafers > 1:
        schedule.add_resource(Resource(WAFER_LINK, "link", spec.wafer_link_bw, spec.wafer_link_bw,
                                       exclusive=False, unit=WAFER_LINK))
    task_of: dict[str, int] = {}
    sent: dict[tuple[str, str], int] = {}          # (producer, consuming group) -> transfer task

    def transfer(name: str, layer: int, nbytes: float, src: Region, dst: Region, deps,
                 extra_hops: int = 0) -> int:
        if src.wafer == dst.wafer:
            t = fabric_transfer(spec, nbytes, src.side, dst.side)
            hops = t.hops + extra_hops
            return schedule.add(name, "", FABRIC, {f"{FABRIC}{src.wafer}": t.stream_ns}, deps=deps,
                                latency_ns=hops * spec.hop_ns, bytes_by_level={FABRIC: nbytes},
                                roofline_ns=t.stream_ns, layer=layer, component=FABRIC,
                                datapath="fabric_hops")
        t = wafer_link_transfer(spec, nbytes, src.side, dst.side)
        hops = t.hops + extra_hops
        return schedule.add(name, "", WAFER_LINK, {WAFER_LINK: nbytes}, deps=deps,
                            latency_ns=hops * spec.hop_ns + spec.wafer_link_latency_ns,
                            bytes_by_level={WAFER_LINK: nbytes}, roofline_ns=nbytes / spec.wafer_link_bw,
                            layer=layer, component=WAFER_LINK, datapath="wafer_link")

    ops = {op.name: op for op in graph.ops}
    for op in graph.ops:
        if op.kind.is_collective:
            raise PlacementError(f"op {op.name}: the wafer pipeline places one replica (tp = ep = pp "
                                 "= 1); its wafers are hardware.wafer.wafers")
        here = regions[group_of[op.name]]
        deps = []
        for p in graph.predecessors(op.name):
            src = regions[group_of[p]]
            if src.group == here.group:
                deps.append(task_of[p])
                continue
            key = (p, here.group)
            if key not in sent:
                sent[key] = transfer(f"{p}->{here.group}", op.layer, float(ops[p].act_out_bytes),
                                     src, here, [task_of[p]])
            deps.append(sent[key])
        c = region_op_cost(spec, here.cores, op)
        task_of[op.name] = add_task(schedule, op.name, op, c, "wafer",
                                    {f"wafer{here.wafer}": c.compute_ns,
                                     f"{SRAM_LEVEL}{here.wafer}": c.bytes_by_level[SRAM_LEVEL]}, sorted(deps),
                                    component="wafer", level=SRAM_LEVEL if op.weight_bytes else "")
    last = graph.ops[-1]
    head, embed = regions[group_of[last.name]], regions[group_of[graph.ops[0].name]]
    argmax_hops = head.side - 1
    if head.wafer == embed.wafer:
        # the sampled token crosses the wafer back to the embedding's region (module docstring)
        extra = argmax_hops + spec.mesh_side - math.ceil((head.side + embed.side) / 2)
    else:
        extra = argmax_hops
    transfer("token->embed", -1, float(TOKEN_ID_BYTES * graph.info.batch), head, embed,
             [task_of[last.name]], extra_hops=max(extra, 0))
    return schedule


BOUNDS = ("compute", "sram", "fabric_hops", "wafer_links")


def token_latency_terms(schedule: Schedule) -> dict[str, float]:
    """The chain's time split by what sets it (ns): a region op's busy time to "compute" or
    "sram" (whichever is longer), its reduction hops and every fabric transfer to "fabric_hops",
    every wafer-to-wafer crossing (with its on-wafer hops) to "wafer_links". At batch 1 the
    tasks run one after another and the terms add up to the iteration."""
    out = dict.fromkeys(BOUNDS, 0.0)
    for t in schedule.tasks:
        if t.component == "wafer":
            out[t.datapath] += sum(w for r, w in t.demands.items() if schedule.resources[r].kind == "compute")
            out["fabric_hops"] += t.latency_ns
        elif t.component == FABRIC:
            out["fabric_hops"] += schedule.standalone_ns(t)
        elif t.component == WAFER_LINK:
            out["wafer_links"] += schedule.standalone_ns(t)
    return out


def binding_bound(schedule: Schedule) -> str:
    terms = token_latency_terms(schedule)
    return max(terms, key=terms.get)
