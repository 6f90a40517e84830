"""`duplex`: each op on the xPU or on Logic-PIM by its Op/B, experts and attention co-processed.

Yun et al., "Duplex", MICRO'24 (arXiv 2409.01141; research/pim_anchors.md 3.5). The abstract:
"Duplex selects the most suitable processor based on the Op/B of each layer"; the MoE layer's
Op/B is "at least 1" and moves with the batch under continuous batching, GQA attention's is
"4-8"; Logic-PIM suits Op/B "ranging from few to a few dozens"; "expert and attention
co-processing" uses both processors at once. One device: the xPU (an H100-class GPU, costed as
the `gpu` mapper costs it: hwsim.hw.gpu) and Logic-PIM (hwsim.hw.duplex) share the HBM stacks.

Placement (Op/B = FLOPs per byte touched, hwsim.hw.duplex.op_per_byte, computed from the graph):

- units of placement: an attention (score, softmax, context of one layer, which the xPU runs as
  one FlashAttention kernel), an expert (its GEMMs and activation), and each other weight GEMM
  (QKV, projection, dense FFN, LM head). Norms, residuals, RoPE, the router and collectives stay
  on the xPU (or its link);
- threshold: a unit goes to Logic-PIM when its Op/B is below `opb_threshold`; by default the
  roofline crossover of the two processors, Logic-PIM's peak FLOP/ns over the xPU's peak HBM
  bandwidth (below it Logic-PIM's time, bounded by max(FLOPs / its peak, bytes / 4x the
  bandwidth), beats the xPU's memory-bound time). The paper's own selection rule beyond the
  abstract was not retrievable; this one is ours, stated;
- attention: a mixed batch (continuous batching: prefill chunks beside decode steps) is split by
  request: requests whose own Op/B (2 g q / bytes per element: g query heads per KV head, q new
  tokens) reaches the threshold run on the xPU, the rest on Logic-PIM, both at once (attention
  co-processing). A decode step's Op/B is ~g (test: GQA group g gives ~g);
- experts (`co_processing`, default on): per layer, the experts sorted by Op/B (tokens they
  received) are cut at the split that minimizes max(xPU time, Logic-PIM time), each estimated
  alone: the high-Op/B experts on the xPU, the rest on Logic-PIM, running at once (expert
  co-processing). Off: the fixed threshold.

Resources: the xPU ("gpu", exclusive), its external HBM interface ("gpu.hbm"), Logic-PIM
("duplex", exclusive), and the DRAM dies' bandwidth through the TSVs ("hbm.tsv", shared: the xPU's
reads cross the TSVs too, so co-processing contends for it; the engine divides it max-min fairly).
The schedule's `placement` lists every placed part with its Op/B and unit (reported in
metrics.json and the run's table).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from hwsim.hw.duplex import logic_pim_cost, ops_per_byte
from hwsim.hw.gpu import GPUCoster, ServingStack
from hwsim.hw.system import HardwareSpec
from hwsim.input_error import ConfigError
from hwsim.mappers.common import add_collective_task, add_task, link_resource
from hwsim.mappers.gpu import add_gpu_resources, flash_groups, fused_moe_costs
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.spec import Spec
from hwsim.workloads.ops import Op, OpGraph, OpKind, op_for_requests

NEEDS = ("gpu", "duplex")
XPU, PIM, TSV = "gpu", "duplex", "hbm.tsv"


class DuplexOptions(Spec):
    opb_threshold: float | None = Field(default=None, gt=0, le=1e6, description="Op/B (FLOPs per "
                                        "byte) below which a unit runs on Logic-PIM; default: the "
                                        "roofline crossover, Logic-PIM peak / xPU peak bandwidth")
    co_processing: bool = Field(default=True, description="balance each layer's experts over the "
                                "xPU and Logic-PIM (else: the fixed threshold)")


def default_threshold(gpu, pim, dtype: str) -> float:
    """Logic-PIM's peak FLOP/ns over the xPU's peak HBM GB/s (= bytes/ns): FLOPs per byte."""
    return pim.peak_flops_per_ns(dtype) / gpu.hbm_bw_gbps


def _request_opb(attn, dtype_bytes: int) -> np.ndarray:
    """Each request's attention Op/B in the KV-dominated limit: 2 g q FLOPs per element of K
    (and of V) read, over its bytes."""
    return 2.0 * attn.group * attn.query_array / dtype_bytes


class _Plan:
    """Where each placement unit goes: op name -> [(part op, unit, Op/B of its unit)]."""

    def __init__(self):
        self.parts: dict[str, list[tuple[Op, str, float]]] = {}

    def put(self, op: Op, unit: str, opb: float) -> None:
        self.parts.setdefault(op.name, []).append((op, unit, opb))


@register("duplex", "Duplex: each op on the xPU or on Logic-PIM (HBM logic die) by its Op/B; "
          "expert and attention co-processing", needs=NEEDS, options=DuplexOptions)
def map_duplex(graph: OpGraph, hw: HardwareSpec, options: DuplexOptions) -> Schedule:
    device = hw.device(NEEDS)
    gpu, pim = device.spec("gpu"), device.spec("duplex")
    level = device.level_of("duplex")
    if level.capacity_bytes > pim.stacks * pim.stack_capacity_gib * 2**30 * (1 + 1e-9):
        raise ConfigError(f"memory level '{level.name}' holds {level.capacity_bytes / 2**30:.2f} GiB, "
                          f"more than {pim.stacks} stacks of {pim.stack_capacity_gib} GiB",
                          key="hardware.duplex.stacks")
    dtype = graph.ops[0].dtype if len(graph) else "fp16"
    threshold = options.opb_threshold or default_threshold(gpu, pim, dtype)
    coster = GPUCoster(gpu, ServingStack())
    tsv_rate = pim.sustained_tsv_bw_gbps(level)

    schedule = Schedule(resources={}, static_power_w=device.static_power_w(dtype))
    schedule.resident_bytes = {level.name: float(graph.info.weight_bytes_per_device
                                                 + graph.info.kv_bytes_per_device)}
    # Logic-PIM and the TSVs first: the roofline plot draws the first compute unit under the first
    # memory roof (hwsim.plots), and Logic-PIM runs the ops with off-chip bytes at every batch
    schedule.add_resource(Resource(PIM, "compute", 1.0, 1.0, exclusive=True, unit="duplex",
                                   peak_flops_per_ns=pim.peak_flops_per_ns(dtype)))
    schedule.add_resource(Resource(TSV, "memory", tsv_rate, pim.tsv_bw_gbps(level),
                                   exclusive=False, unit="hbm_tsv"))
    add_gpu_resources(schedule, coster, dtype)
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)

    def xpu_ns(op: Op) -> float:
        c = coster.op_cost(op, coster.kernel(op))
        return c.latency_ns + max(c.compute_ns, c.bytes_by_level.get("hbm", 0.0) / (coster.hbm_rate / 1e9))

    def pim_ns(op: Op) -> float:
        c = logic_pim_cost(pim, level, op)
        return max(c.compute_ns, c.bytes_by_level[level.name] / tsv_rate)

    plan = _Plan()
    groups = flash_groups(graph)
    in_group = {op.name for ops in groups.values() for op in ops}
    # attention: split each batch by its requests' own Op/B
    for ops in groups.values():
        a = ops[0].attention
        req_opb = _request_opb(a, ops[0].dtype_bytes)
        low = np.flatnonzero(req_opb < threshold)
        high = np.flatnonzero(req_opb >= threshold)
        for idx, unit in ((low, PIM), (high, XPU)):
            if len(idx) == 0:
                continue
            parts = ops if len(idx) == len(req_opb) else \
                [op_for_requests(op, idx, a.query_array, a.context_array) for op in ops]
            opb = ops_per_byte(parts)
            for part in parts:
                plan.put(part, unit, opb)
    # experts: per (layer, micro-batch), co-processed or by threshold
    experts: dict[tuple, dict[int, list[Op]]] = {}
    for op in graph.ops:
        if op.expert is not None and op.name not in in_group:
            experts.setdefault((op.layer, op.micro_batch), {}).setdefault(op.expert, []).append(op)
    for per_expert in experts.values():
        units = sorted(per_expert.values(), key=ops_per_byte, reverse=True)
        opbs = [ops_per_byte(u) for u in units]
        cut = sum(1 for x in opbs if x >= threshold)          # the threshold's split
        if options.co_processing:
            tx = np.cumsum([0.0] + [sum(xpu_ns(o) for o in u) for u in units])
            tp = np.cumsum([0.0] + [sum(pim_ns(o) for o in u) for u in units][::-1])[::-1]
            span = np.maximum(tx, tp)                         # span[k]: first k on the xPU
            best = span.min()
            ks = [k for k in range(len(units) + 1) if span[k] <= best * (1 + 1e-12)]
            cut = min(ks, key=lambda k: abs(k - cut))
        for i, (u, opb) in enumerate(zip(units, opbs)):
            for op in u:
                plan.put(op, XPU if i < cut else PIM, opb)
    # every other weight GEMM by threshold; the rest on the xPU
    for op in graph.ops:
        if op.name in plan.parts or op.kind.is_collective:
            continue
        opb = ops_per_byte([op])
        unit = PIM if (op.kind == OpKind.MATMUL and op.weight_bytes and opb < threshold) else XPU
        plan.put(op, unit, opb)

    # costs of the xPU's FlashAttention parts: one kernel per (attention, unit); the routed
    # experts the xPU runs share grouped kernels as on a plain GPU (ServingStack.fused_moe)
    on_xpu = [part for parts in plan.parts.values() for part, unit, _ in parts if unit == XPU]
    moe_cost = fused_moe_costs(on_xpu, coster) if coster.stack.fused_moe else {}
    flash_cost = {}
    for score_name, ops in groups.items():
        xparts = [p for op in ops for p, unit, _ in plan.parts[op.name] if unit == XPU]
        if xparts:
            kernel = coster.flash(xparts[0].attention, xparts[0].dtype)
            total = sum(p.flops for p in xparts) or 1.0
            for p in xparts:
                flash_cost[(p.name, XPU)] = coster.op_cost(p, kernel, p.flops / total, flash=True)

    placement = []
    tasks_of: dict[str, list[int]] = {}
    for op in graph.ops:
        deps = sorted({t for p in graph.predecessors(op.name) for t in tasks_of[p]})
        if op.kind.is_collective:
            tasks_of[op.name] = [add_collective_task(schedule, op.name, op, hw.link, deps)]
            continue
        parts = plan.parts[op.name]
        ids = []
        for part, unit, opb in parts:
            label = op.name if len(parts) == 1 else f"{op.name}@{unit}"
            wlevel = level.name if part.weight_bytes else ""
            if unit == PIM:
                c = logic_pim_cost(pim, level, part)
                demands = {PIM: c.compute_ns, TSV: c.bytes_by_level[level.name]}
                ids.append(add_task(schedule, label, part, c, PIM, demands, deps, level=wlevel))
            else:
                c = (flash_cost.get((part.name, XPU)) or moe_cost.get(part.name)
                     or coster.op_cost(part, coster.kernel(part)))
                hbm = c.bytes_by_level.get("hbm", 0.0)
                demands = {XPU: c.compute_ns, "gpu.hbm": hbm, TSV: hbm}
                ids.append(add_task(schedule, label, part, c, XPU, demands, deps, level=wlevel))
            placement.append({"op": op.name, "kind": str(op.kind.value), "layer": op.layer,
                              "expert": op.expert, "op_per_byte": float(opb),
                              "op_per_byte_self": float(ops_per_byte([part])), "unit": unit,
                              "requests": len(part.attention.query_tokens) if part.attention else None})
        tasks_of[op.name] = ids
    schedule.placement = {"threshold_op_per_byte": float(threshold), "ops": placement}
    return schedule
