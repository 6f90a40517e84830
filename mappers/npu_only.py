"""`npu_only`: every op on the NPU, weights and KV streamed from the device's memory levels.

Compute and memory overlap within an op (double-buffered tiles), so an op alone takes the longer
of its array/vector time and its bytes at each level's sustained bandwidth; collectives go on the
link. Data placement (which level holds which weights): mappers/placement.py.

`fusion` (a check of the SN40L paper's "2x to 13x over unfused", arXiv 2405.07518 section VI):
`fused` (default) is a dataflow pipeline: an op's activations stay in the scratchpad (PMU SRAM)
whenever they fit half of it, and ops follow each other without a launch; `unfused` runs each
op as its own kernel: its inputs are read from and its outputs written back to the memory level
holding activations (HBM) whatever their size, and each op pays `unfused_launch_us` not
overlapped with anything (a kernel call orchestrated by the host).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwsim.hw.npu import npu_op_cost
from hwsim.hw.registry import op_cost
from hwsim.hw.system import Device, HardwareSpec
from hwsim.mappers.common import link_resource, memory_resources, one_task_per_op
from hwsim.mappers.placement import place_data
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.spec import Spec
from hwsim.workloads.ops import OpGraph

NEEDS = ("npu", "memory")


class NPUOnlyOptions(Spec):
    fusion: Literal["fused", "unfused"] = Field(default="fused", description="fused: activations "
                                                "stay on chip when they fit, no per-op launch; "
                                                "unfused: every op round-trips HBM and pays a launch")
    unfused_launch_us: float = Field(default=5.0, ge=0, le=1e6, description="per-op kernel call when "
                                     "unfused (assumed: a host-orchestrated kernel call, of the "
                                     "order of a GPU kernel launched from the host; no published "
                                     "RDU figure)")


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
          "levels they spill to)", needs=NEEDS, options=NPUOnlyOptions,
          workloads=("transformer", "cnn"))
def map_npu_only(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    device = hw.device(NEEDS)
    placement = place_data(graph, device)
    levels = {lv.name: lv.name for lv in device.off_chip_levels}

    unfused = options is not None and getattr(options, "fusion", "fused") == "unfused"

    def cost(op):
        where = placement.levels_for(op)
        if not unfused:
            return op_cost("npu", op.kind)(device, op, where)
        c = npu_op_cost(device.spec("npu"), where.activations, op, weights_from=where.weights,
                        activations_on_chip=False)
        c.latency_ns += options.unfused_launch_us * 1e3
        return c

    def weights_level(op):
        lv = placement.levels_for(op).weights
        return lv.name if lv is not None else ""
    schedule = npu_resources(hw, device)
    schedule.resident_bytes = dict(placement.resident_bytes)
    return one_task_per_op(graph, schedule, cost, compute="npu", memory="hbm", unit="npu",
                           link=hw.link, level_resources=levels, weights_level=weights_level)
