"""`gpu`: the op graph as kernels on one GPU stream, run by a serving stack.

Options (the serving stack, hwsim.hw.gpu.ServingStack): `launch: cuda_graph | eager` and
`fused_elementwise: true | false` (`separate_kv_writes: true`: K and V written to the cache by one
kernel each, as Hugging Face's cache update does); the defaults are how LLMs are served today. Each op is one
kernel, except that a layer's attention score, softmax and context ops run as one FlashAttention
kernel (grouped here by op kind and layer), whose time and bytes are shared among the three ops
in proportion to their FLOPs. With `fused_moe: true` the routed experts of a MoE layer run as one
grouped kernel per step (vLLM's fused_moe: the up projections of every expert in one launch, the
activations in one, the down projections in one): each expert's op keeps its own compute time and
bytes, and the group pays one kernel launch instead of one per expert; in datasheet mode the
GEMM steps' tiles share waves (hwsim.hw.gpu.grouped_matmul_compute_ns), the time split among
the experts' ops in proportion to their FLOPs.
"""
from __future__ import annotations

from hwsim.hw.gpu import (GPUCoster, KernelTime, ServingStack, decode_key_tile, folded_into_norm,
                          grouped_matmul_compute_ns, grouped_vector_kernels)
from hwsim.hw.gpu import _hbm_bytes as hbm_bytes
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.common import add_collective_task, add_task, link_resource
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import Attention, Op, OpGraph, OpKind


def add_gpu_resources(schedule: Schedule, coster: GPUCoster, dtype: str) -> None:
    """The GPU's resources, as every mapper that puts ops on a GPU names them: its SMs ("gpu",
    exclusive, at the dtype's peak) and its HBM ("gpu.hbm", shared, at the coster's sustained rate)."""
    gpu = coster.gpu
    schedule.add_resource(Resource("gpu", "compute", 1.0, 1.0, exclusive=True, unit="gpu",
                                   peak_flops_per_ns=gpu.peak(dtype) / 1e9))
    schedule.add_resource(Resource("gpu.hbm", "memory", coster.hbm_rate / 1e9, gpu.hbm_bw_gbps,
                                   exclusive=False, unit="hbm"))


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


def gpu_decode_key_tile(hw: HardwareSpec, options: ServingStack, attn: Attention) -> int:
    """Keys per tile of the FlashAttention kernel that runs this decode attention."""
    return decode_key_tile(hw.gpu, attn)


@register("gpu", "all ops as kernels on one GPU stream (FlashAttention, CUDA graphs and fused "
          "elementwise kernels by default)", needs=("gpu",), options=ServingStack,
          decode_key_tile=gpu_decode_key_tile)
def map_gpu(graph: OpGraph, hw: HardwareSpec, options: ServingStack) -> Schedule:
    gpu = hw.gpu
    coster = GPUCoster(gpu, options)
    dtype = graph.ops[0].dtype if len(graph) else "fp16"
    schedule = Schedule(resources={}, static_power_w={"gpu": gpu.static_w},
                        power_limit_w={"gpu": gpu.tdp_w})
    add_gpu_resources(schedule, coster, dtype)
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)
    costs = {}
    for ops in flash_groups(graph).values():
        kernel = coster.flash(ops[0].attention, ops[0].dtype)
        total = sum(op.flops for op in ops)
        for op in ops:
            costs[op.name] = coster.op_cost(op, kernel, op.flops / total, flash=True)
    if options.fused_moe:
        costs.update(fused_moe_costs(graph.ops, coster))
    task_of: dict[str, int] = {}
    for op in graph.ops:
        deps = sorted(task_of[p] for p in graph.predecessors(op.name))
        if op.kind.is_collective:
            task_of[op.name] = add_collective_task(schedule, op.name, op, hw.link, deps)
            continue
        c = costs.get(op.name) or coster.op_cost(op, coster.kernel(op))
        demands = {"gpu": c.compute_ns, "gpu.hbm": c.bytes_by_level.get("hbm", 0.0)}
        if coster.profile is not None and folded_into_norm(op, options):
            # its bytes move inside the fused add+RMSNorm kernel, whose measured time already
            # holds them: counted for energy, not held again on the HBM
            demands["gpu.hbm"] = 0.0
        task_of[op.name] = add_task(schedule, op.name, op, c, "gpu", demands, deps)
    return schedule


def fused_moe_costs(ops: list[Op], coster: GPUCoster) -> dict:
    """op name -> OpCost of the routed experts' ops among `ops` run as grouped kernels: per
    (micro-batch, layer, step) one launch shared by the experts' ops, each op keeping its own
    kernel time and HBM bytes (ServingStack.fused_moe)."""
    from dataclasses import replace as _replace
    groups: dict[tuple, list[Op]] = {}
    for op in ops:
        if op.expert is not None and op.expert >= 0:
            step = op.name.rsplit(".", 1)[-1]           # up | act | down
            groups.setdefault((op.micro_batch, op.layer, step), []).append(op)
    costs = {}
    gpu = coster.gpu
    for ops in groups.values():
        mm = [op.matmul for op in ops]
        if coster.profile is None and all(x is not None and (x.n, x.k) == (mm[0].n, mm[0].k) for x in mm):
            # datasheet mode: the experts' tiles share the waves of one grouped GEMM, its time
            # split in proportion to FLOPs; each op keeps its own bytes (as datasheet_kernel)
            first = coster.kernel(ops[0])
            grouped = grouped_matmul_compute_ns(gpu, ops[0].dtype, [x.m * x.count for x in mm],
                                                mm[0].n, mm[0].k)
            if not first.launch_ns:            # eager: one CPU issue floor for the group
                grouped = max(grouped, gpu.eager_ns(ops[0].kind))
            flops = sum(op.flops for op in ops)
            for op in ops:
                k = KernelTime(grouped * op.flops / flops, hbm_bytes(gpu, op), "tensor",
                               first.launch_ns / len(ops), first.serial_ns / len(ops))
                costs[op.name] = coster.op_cost(op, k)
            continue
        kernels = [coster.kernel(op) for op in ops]
        launch = max(k.launch_ns for k in kernels)      # one kernel's launch for the group
        if coster.profile is None:      # one memory latency chain for the group
            kernels = grouped_vector_kernels(gpu, ops, kernels, coster.stack)
        for op, k in zip(ops, kernels):
            costs[op.name] = coster.op_cost(op, _replace(k, launch_ns=launch / len(ops)))
    return costs
