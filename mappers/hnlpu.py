"""`hnlpu_pipeline`: a decode (or prefill) pass on the 16 chips of a hardwired-neurons LPU
(hwsim.hw.hnlpu; Liu et al., arXiv 2508.16151 v2, section 5 and Appendix A, [HN]).

Placement ([HN] 4.2, Fig. 10), on a grid of R x C chips (4 x 4):
- Q/K/V: chip (r, c) holds the rows r of column group c's heads (n_heads / C query heads, their
  KV heads); the partial sums are all-reduced over the column (Q) or reduced to the chip that
  keeps the token's K and V (position mod R).
- attention: each chip reads 1/(R C) of the cached K and V from its Attention Buffer (the part
  that does not fit there from its HBM); the softmax statistics and the partial outputs are
  all-reduced over the column.
- W_o: chip (r, c) holds (heads of c) x (d / R slice r): a row all-reduce, then a column all-gather
  of the d / R slices.
- MoE: n_experts / chips experts per chip, the router on every chip; the expert outputs are
  all-reduced over all chips (row, then column).
- unembedding: 1/chips of the vocabulary per chip, the logits all-gathered (row, then column).
All chips do the same work by symmetry except the experts: the graph is simulated on the chip
whose experts receive the most tokens (the straggler every all-reduce waits for). Each matmul runs
on its own HN block (an exclusive resource: the block's silicon serves nothing else); attention
and vector ops on the chip's VEX; collectives on the chip's row or column CXL ports (the egress
closed forms of hwsim.hw.hnlpu); KV bytes on the Attention Buffer and HBM.

The machine keeps stages x layers sequences in flight ([HN] 5.2); here the batch is cut into
`groups` token groups whose chains run concurrently and contend for the VEX, the HN blocks and
the ports, which stands in for the pipeline's overlap (more groups: closer to the steady state,
more tasks). Weights are never read: no task has weight bytes.
"""
from __future__ import annotations

import math

from pydantic import Field

from hwsim.hw.hnlpu import (BUFFER_LEVEL, COL_PORTS, HBM_LEVEL, ROW_PORTS, HNLPUSpec, all_gather_egress,
                            all_reduce_egress, hn_ns, reduce_egress, vex_attention_ns, vex_vector_ns)
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.placement import PlacementError
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.spec import Spec
from hwsim.workloads.ops import DTYPE_BYTES, Op, OpGraph, OpKind

NEEDS = ("hnlpu",)
VEX = "hnlpu_vex"


class HNLPUOptions(Spec):
    groups: int = Field(default=8, gt=0, le=256, description="token groups in flight (module docstring)")


def kv_placement(spec: HNLPUSpec, kv_bytes: float) -> float:
    """Share of the KV cache held in the Attention Buffers (the rest in HBM); PlacementError when
    it fits neither."""
    buffer = spec.buffer_bytes_per_chip * spec.chips
    hbm = spec.hbm_bytes_per_chip * spec.chips
    if kv_bytes > buffer + hbm:
        raise PlacementError(f"the KV cache ({kv_bytes / 1e9:.1f} GB) exceeds the Attention Buffers "
                             f"and HBM of {spec.chips} chips ({(buffer + hbm) / 1e9:.1f} GB): lower "
                             "the batch or the context")
    return 1.0 if kv_bytes <= buffer else buffer / kv_bytes


def straggler_chip(graph: OpGraph, spec: HNLPUSpec) -> int:
    """The chip whose experts receive the most tokens."""
    per_chip = spec.model_spec.moe.n_experts // spec.chips
    load = [0] * spec.chips
    for op in graph.ops:
        if op.expert is not None and op.expert >= 0 and op.matmul is not None and op.name.endswith(".up"):
            load[op.expert // per_chip] += op.matmul.m
    return max(range(spec.chips), key=lambda c: (load[c], -c))


@register("hnlpu_pipeline", "a hardwired-neurons LPU: weights in the metal of 16 chips, collectives "
          "on a row-column CXL fabric, KV cache in Attention Buffers and HBM (arXiv 2508.16151)",
          needs=NEEDS, options=HNLPUOptions, layer_periodic=False)
def map_hnlpu(graph: OpGraph, hw: HardwareSpec, options: HNLPUOptions) -> Schedule:
    device = hw.device(NEEDS)
    spec: HNLPUSpec = device.spec("hnlpu")
    info, m = graph.info, spec.model_spec
    if info.model != spec.model:
        raise PlacementError(f"this HNLPU hardwires {spec.model}; the workload runs {info.model} "
                             "(hardware.hnlpu.model)")
    if info.tp != 1 or info.ep != 1 or info.pp != 1:
        raise PlacementError("the HNLPU dataflow places the whole model on its chips: workload tp, "
                             "ep and pp must be 1")
    if info.batch > spec.slots:
        raise PlacementError(f"batch {info.batch} exceeds the {spec.slots} sequences the pipeline "
                             f"holds ({spec.stages_per_layer} stages x {m.n_layers} layers)")
    share = kv_placement(spec, info.kv_bytes_per_device)
    chip = straggler_chip(graph, spec)
    per_chip_experts = m.moe.n_experts // spec.chips
    R, C, n = spec.grid_rows, spec.grid_cols, spec.chips

    schedule = Schedule(resources={})
    schedule.resident_bytes = {BUFFER_LEVEL: info.kv_bytes_per_device * share,
                               HBM_LEVEL: info.kv_bytes_per_device * (1 - share)
                               + m.vocab * m.d_model * DTYPE_BYTES[graph.ops[0].dtype]}
    schedule.static_power_w = {"hnlpu": spec.chip_power_w * n}
    # the VEX's peak: per cached KV head a multiply-add per head dimension for each of the query
    # heads sharing it (GQA group)
    schedule.add_resource(Resource(VEX, "compute", 1.0, 1.0, exclusive=True, unit="vex",
                                   peak_flops_per_ns=2.0 * spec.vex_kv_heads_per_cycle * m.hd
                                   * (m.n_heads // m.kv_heads) * spec.clock_ghz))
    for name, bw, unit in ((BUFFER_LEVEL, spec.buffer_bw_per_chip, BUFFER_LEVEL),
                           (HBM_LEVEL, spec.hbm_bw_per_chip, HBM_LEVEL),
                           (ROW_PORTS, spec.row_port_bw, "cxl"), (COL_PORTS, spec.col_port_bw, "cxl")):
        schedule.add_resource(Resource(name, "link" if unit == "cxl" else "memory", bw, bw,
                                       exclusive=False, unit=unit))

    first_qkv = next((op for op in graph.ops if op.name.endswith(".qkv")), None)
    total_tokens = first_qkv.matmul.m if first_qkv is not None else info.tokens
    groups = min(options.groups, info.batch)
    ab = DTYPE_BYTES[graph.ops[0].dtype]          # activation bytes on the links

    def mine(op: Op) -> bool:
        return op.expert is None or op.expert < 0 or op.expert // per_chip_experts == chip

    def link(name, op, ports, egress, steps, deps):
        bw = spec.row_port_bw if ports == ROW_PORTS else spec.col_port_bw
        return schedule.add(name, "", "cxl", {ports: egress}, deps=deps,
                            latency_ns=steps * spec.link_latency_ns, bytes_by_level={ports: egress * n},
                            roofline_ns=egress / bw, layer=op.layer, component="cxl", datapath=ports)

    preds = {op.name: graph.predecessors(op.name) for op in graph.ops}
    for g in range(groups):
        f = (info.batch // groups + (1 if g < info.batch % groups else 0)) / info.batch
        tokens = max(1, round(total_tokens * f))
        prefix = f"g{g}." if groups > 1 else ""
        task_of: dict[str, list[int]] = {}

        def deps_of(op: Op) -> list[int]:
            ps = preds[op.name]
            if len(ps) == 1:
                return task_of[ps[0]]
            return sorted({t for p in ps for t in task_of[p]})

        for op in graph.ops:
            deps = deps_of(op)
            label = prefix + op.name
            if op.kind.is_collective:
                raise PlacementError(f"op {op.name}: collectives come from the HNLPU dataflow, not "
                                     "the workload (tp = ep = pp = 1)")
            if not mine(op):
                task_of[op.name] = deps            # runs on another chip, in parallel
                continue
            if op.name.endswith(".residual2") and m.is_moe_layer(op.layer):
                # the experts' outputs all-reduced over all chips (row, then column) before the add
                *experts, x_in = preds[op.name]
                first = link(label + ".moe_row_reduce", op, ROW_PORTS,
                             all_reduce_egress(C, tokens * m.d_model * ab), 2,
                             sorted({x for q in experts for x in task_of[q]}))
                second = link(label + ".moe_col_reduce", op, COL_PORTS,
                              all_reduce_egress(R, tokens * m.d_model * ab), 2, [first])
                deps = sorted({second, *task_of[x_in]})
            if op.kind == OpKind.EMBEDDING:
                b = op.act_out_bytes * f / n
                t = schedule.add(label, op.name, HBM_LEVEL, {HBM_LEVEL: b}, deps=deps,
                                 bytes_by_level={HBM_LEVEL: b * n}, roofline_ns=b / spec.hbm_bw_per_chip,
                                 layer=op.layer, component="hnlpu", datapath="embedding", level=HBM_LEVEL)
            elif op.matmul is not None:
                routed = op.expert is not None and op.expert >= 0
                rows = max(1, round(op.matmul.m * f)) if routed or op.name == "lm_head" else tokens
                busy, lat = hn_ns(spec, rows, op.matmul.k)
                block = f"hn.{op.name}"
                if block not in schedule.resources:
                    schedule.add_resource(Resource(block, "compute", 1.0, 1.0, exclusive=True, unit="hn_array"))
                # the new tokens' K and V land in the Attention Buffer (HBM for the share it cannot hold)
                w = op.kv_write_bytes * f / n
                demands = {block: busy, **({BUFFER_LEVEL: w * share, HBM_LEVEL: w * (1 - share)} if w else {})}
                roof = max(busy, w * share / spec.buffer_bw_per_chip, w * (1 - share) / spec.hbm_bw_per_chip)
                t = schedule.add(label, op.name, "hn_array", demands, deps=deps, latency_ns=lat,
                                 flops=op.flops * f / (1 if routed else n),
                                 bytes_by_level={BUFFER_LEVEL: w * share * n, HBM_LEVEL: w * (1 - share) * n} if w else {},
                                 roofline_ns=roof, layer=op.layer, component="hnlpu", datapath="hn_array")
            elif op.kind.is_attention:
                a = op.attention
                entries = sum(a.context_lens) * a.kv_heads / n * f
                kv = op.kv_read_bytes / n * f
                demands = {VEX: vex_attention_ns(spec, entries), BUFFER_LEVEL: kv * share,
                           HBM_LEVEL: kv * (1 - share)}
                roof = max(demands[VEX], kv * share / spec.buffer_bw_per_chip,
                           kv * (1 - share) / spec.hbm_bw_per_chip)
                t = schedule.add(label, op.name, "vex", demands, deps=deps, flops=op.flops * f / n,
                                 bytes_by_level={BUFFER_LEVEL: kv * share * n, HBM_LEVEL: kv * (1 - share) * n},
                                 roofline_ns=roof, layer=op.layer, component="hnlpu", datapath="vex")
            else:
                elements = op.elements * f
                if op.kind == OpKind.SOFTMAX:
                    elements /= n                              # its column's heads, 1/R of the context
                elif op.function == "rope":
                    elements /= C                              # the column's heads
                busy = vex_vector_ns(spec, elements)
                t = schedule.add(label, op.name, "vex", {VEX: busy}, deps=deps, flops=op.flops * f,
                                 roofline_ns=busy, layer=op.layer, component="hnlpu", datapath="vex")
            tasks = [t]
            # the dataflow's collectives after the op ([HN] Appendix A)
            name, d = op.name, m.d_model
            hq, hkv = m.n_heads // C * m.hd, max(1, m.kv_heads // C) * m.hd
            if name.endswith(".qkv"):
                egress = all_reduce_egress(R, tokens * hq * ab) + 2 * reduce_egress(R, tokens * hkv * ab)
                tasks = [link(label + ".reduce", op, COL_PORTS, egress, 2, tasks)]
            elif op.kind == OpKind.SOFTMAX and op.layer >= 0:
                egress = all_reduce_egress(R, tokens * (m.n_heads // C) * 2 * ab)
                tasks = [link(label + ".stats", op, COL_PORTS, egress, 2, tasks)]
            elif op.kind == OpKind.ATTENTION_CONTEXT:
                tasks = [link(label + ".reduce", op, COL_PORTS, all_reduce_egress(R, tokens * hq * ab), 2, tasks)]
            elif name.endswith(".out_proj"):
                row = link(label + ".row_reduce", op, ROW_PORTS, all_reduce_egress(C, tokens * d // R * ab), 2, tasks)
                tasks = [link(label + ".col_gather", op, COL_PORTS,
                              all_gather_egress(R, tokens * d // R * ab), 1, [row])]
            elif name == "lm_head":
                chunk = max(1, round(op.matmul.m * f)) * math.ceil(m.vocab / n) * ab   # one row per request
                row = link(label + ".row_gather", op, ROW_PORTS, all_gather_egress(C, chunk), 1, tasks)
                tasks = [link(label + ".col_gather", op, COL_PORTS, all_gather_egress(R, C * chunk), 1, [row])]
            task_of[op.name] = tasks
    return schedule


BOUNDS = ("hn_array", "vex", BUFFER_LEVEL, HBM_LEVEL, ROW_PORTS, COL_PORTS)


def busy_by_bound(schedule: Schedule) -> dict[str, float]:
    """Work (ns) each kind of resource of the simulated chip must serve over the pass: the VEX,
    the busiest HN block, the memories and the two port groups. The largest bounds the pass from
    below whatever the overlap; compare with the makespan."""
    work: dict[str, float] = {}
    for t in schedule.tasks:
        for r, w in t.demands.items():
            work[r] = work.get(r, 0.0) + w / schedule.resources[r].capacity_per_ns
    out = {b: work.get(b, 0.0) for b in BOUNDS if b != "hn_array" and b != "vex"}
    out["vex"] = work.get(VEX, 0.0)
    out["hn_array"] = max((w for r, w in work.items() if r.startswith("hn.")), default=0.0)
    return out


def binding_bound(schedule: Schedule) -> str:
    b = busy_by_bound(schedule)
    return max(b, key=b.get)
