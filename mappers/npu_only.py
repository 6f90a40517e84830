"""`npu_only`: every op on the NPU, weights and KV streamed from the device's memory levels.

Compute and memory overlap within an op (double-buffered tiles), so an op alone takes the longer
of its array/vector time and its bytes at each level's sustained bandwidth; collectives go on the
link. Data placement (which level holds which weights): mappers/placement.py.
"""
from __future__ import annotations

from hwsim.hw.registry import op_cost
from hwsim.hw.system import Device, HardwareSpec
from hwsim.mappers.common import link_resource, memory_resources, one_task_per_op
from hwsim.mappers.placement import place_data
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import OpGraph

NEEDS = ("npu", "memory")


def npu_resources(hw: HardwareSpec, device: Device | None = None) -> Schedule:
    """The NPU (exclusive), one shared resource per off-chip memory level and the link."""
    device = device or hw.device(NEEDS)
    npu = device.spec("npu")
    schedule = Schedule(resources={})
    schedule.add_resource(Resource("npu", "compute", 1.0, 1.0, exclusive=True, unit="npu",
                                   peak_flops_per_ns=npu.peak_flops / 1e9))
    memory_resources(schedule, device)
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)
    return schedule


@register("npu_only", "all ops on the systolic NPU; weights and KV streamed from HBM (and slower "
          "levels they spill to)", needs=NEEDS, workloads=("transformer", "cnn"))
def map_npu_only(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    device = hw.device(NEEDS)
    placement = place_data(graph, device)
    levels = {lv.name: lv.name for lv in device.off_chip_levels}

    def cost(op):
        return op_cost("npu", op.kind)(device, op, placement.levels_for(op))

    def weights_level(op):
        lv = placement.levels_for(op).weights
        return lv.name if lv is not None else ""
    schedule = npu_resources(hw, device)
    schedule.resident_bytes = dict(placement.resident_bytes)
    return one_task_per_op(graph, schedule, cost, compute="npu", memory="hbm", unit="npu",
                           link=hw.link, level_resources=levels, weights_level=weights_level)
