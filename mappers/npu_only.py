"""`npu_only`: every op on the NPU, weights and KV streamed from HBM.

Compute and memory overlap within an op (double-buffered tiles), so an op alone takes the longer
of its array/vector time and its HBM bytes at the sustained bandwidth; collectives go on the link.
"""
from __future__ import annotations

from hwsim.hw.npu import npu_op_cost
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.common import link_resource, one_task_per_op
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import OpGraph


def npu_resources(hw: HardwareSpec) -> Schedule:
    npu, mem = hw.npu, hw.memory
    schedule = Schedule(resources={}, static_power_w={"npu": npu.static_power_w})
    schedule.add_resource(Resource("npu", "compute", 1.0, 1.0, exclusive=True, unit="npu",
                                   peak_flops_per_ns=npu.peak_flops / 1e9))
    schedule.add_resource(Resource("hbm", "memory", mem.sustained_bw_gbps,
                                   mem.peak_bw_gbps, exclusive=False, unit="hbm"))
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)
    return schedule


@register("npu_only", "all ops on the systolic NPU; weights and KV streamed from HBM",
          needs=("npu", "memory"))
def map_npu_only(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    return one_task_per_op(graph, npu_resources(hw), lambda op: npu_op_cost(hw.npu, hw.memory, op),
                           compute="npu", memory="hbm", unit="npu", link=hw.link)
