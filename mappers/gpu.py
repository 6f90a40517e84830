"""`gpu`: every op as one kernel on the GPU, in graph order (one CUDA stream)."""
from __future__ import annotations

from hwsim.hw.gpu import gpu_op_cost
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.common import link_resource, one_task_per_op
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import OpGraph


@register("gpu", "all ops as kernels on one GPU stream", needs=("gpu",))
def map_gpu(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    gpu = hw.gpu
    dtype = graph.ops[0].dtype if len(graph) else "fp16"
    schedule = Schedule(resources={}, static_power_w={"gpu": gpu.idle_power_w})
    schedule.add_resource(Resource("gpu", "compute", 1.0, 1.0, exclusive=True, unit="gpu",
                                   peak_flops_per_ns=gpu.peak(dtype) / 1e9))
    schedule.add_resource(Resource("gpu.hbm", "memory", gpu.sustained_bw / 1e9, gpu.hbm_bw_gbps,
                                   exclusive=False, unit="hbm"))
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)
    return one_task_per_op(graph, schedule, lambda op: gpu_op_cost(gpu, op), compute="gpu",
                           memory="gpu.hbm", unit="gpu", link=hw.link)
