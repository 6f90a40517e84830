"""`gpu`: the op graph as kernels on one GPU stream, run by a serving stack.

Options (the serving stack, hwsim.hw.gpu.ServingStack): `launch: cuda_graph | eager` and
`fused_elementwise: true | false`; the defaults are how LLMs are served today. Each op is one
kernel, except that a layer's attention score, softmax and context ops run as one FlashAttention
kernel (grouped here by op kind and layer), whose time and bytes are shared among the three ops
in proportion to their FLOPs.
"""
from __future__ import annotations

from hwsim.hw.gpu import GPUCoster, ServingStack
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.common import add_collective_task, add_task, link_resource
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import Op, OpGraph, OpKind


def flash_groups(graph: OpGraph) -> dict[str, list[Op]]:
    """score op name -> [score, softmax, context] of the same layer and micro-batch, for every
    attention that the graph computes as score -> softmax -> context."""
    node = graph.op
    groups: dict[str, list[Op]] = {}
    for op in graph.ops:
        if op.kind != OpKind.ATTENTION_SCORE:
            continue
        softmax = [s for s in graph.successors(op.name) if node(s).kind == OpKind.SOFTMAX]
        context = [c for s in softmax for c in graph.successors(s)
                   if node(c).kind == OpKind.ATTENTION_CONTEXT]
        if len(softmax) == 1 and len(context) == 1:
            groups[op.name] = [op, node(softmax[0]), node(context[0])]
    return groups


@register("gpu", "all ops as kernels on one GPU stream (FlashAttention, CUDA graphs and fused "
          "elementwise kernels by default)", needs=("gpu",), options=ServingStack)
def map_gpu(graph: OpGraph, hw: HardwareSpec, options: ServingStack) -> Schedule:
    gpu = hw.gpu
    coster = GPUCoster(gpu, options)
    dtype = graph.ops[0].dtype if len(graph) else "fp16"
    schedule = Schedule(resources={}, static_power_w={"gpu": gpu.idle_power_w})
    schedule.add_resource(Resource("gpu", "compute", 1.0, 1.0, exclusive=True, unit="gpu",
                                   peak_flops_per_ns=gpu.peak(dtype) / 1e9))
    schedule.add_resource(Resource("gpu.hbm", "memory", coster.hbm_rate / 1e9, gpu.hbm_bw_gbps,
                                   exclusive=False, unit="hbm"))
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)
    costs = {}
    for ops in flash_groups(graph).values():
        kernel = coster.flash(ops[0].attention, ops[0].dtype)
        total = sum(op.flops for op in ops)
        for op in ops:
            costs[op.name] = coster.op_cost(op, kernel, op.flops / total)
    task_of: dict[str, int] = {}
    for op in graph.ops:
        deps = sorted(task_of[p] for p in graph.predecessors(op.name))
        if op.kind.is_collective:
            task_of[op.name] = add_collective_task(schedule, op.name, op, hw.link, deps)
            continue
        c = costs.get(op.name) or coster.op_cost(op, coster.kernel(op))
        demands = {"gpu": c.compute_ns, "gpu.hbm": c.bytes_by_level.get("hbm", 0.0)}
        task_of[op.name] = add_task(schedule, op.name, op, c, "gpu", demands, deps)
    return schedule
