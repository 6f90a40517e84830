"""`sat`: a CNN's inference pass or training step on a SAT-style training accelerator
(hw/sat.py), op by op in graph order; the step's resident state (weights, gradients, optimizer
state, saved activations: hwsim.workloads.training.training_memory) checked against DRAM, a hard
limit (exit 2 naming the level). Costs come from the component; this module decides the order."""
from __future__ import annotations

import dataclasses

from hwsim.hw.registry import op_cost
from hwsim.hw.sat import computed_flops
from hwsim.hw.system import HardwareSpec
from hwsim.input_error import ConfigError
from hwsim.mappers.common import add_task, memory_resources
from hwsim.mappers.pulp import resident_bytes
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import OpGraph, TrainStep

NEEDS = ("sat",)


@register("sat", "a CNN's training step (dense or N:M sparse) on a SAT-style systolic training "
          "accelerator, layer by layer; the training state checked against DRAM",
          needs=NEEDS, workloads=("cnn",), checks_fit=True)
def map_sat(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    device = hw.device(NEEDS)
    spec = device.spec("sat")
    dram = device.level("dram")
    need, parts = resident_bytes(graph)
    if need > dram.capacity_bytes:
        raise ConfigError(f"{graph.info.model} ({graph.info.phase}) does not fit memory level 'dram': "
                          f"{parts} = {need / 2**30:.3f} GiB > capacity {dram.capacity_bytes / 2**30:.1f} GiB",
                          key="hardware.sat.dram_gib")
    schedule = Schedule(resources={})
    schedule.add_resource(Resource("sat", "compute", 1.0, 1.0, exclusive=True, unit="sat",
                                   peak_flops_per_ns=2.0 * spec.rows * spec.cols / spec.cycle_ns))
    memory_resources(schedule, device)
    schedule.resident_bytes = {"dram": need}
    prev: list[int] = []
    for op in graph.ops:
        c = op_cost("sat", op.kind)(device, op)
        done = computed_flops(spec, op)            # a sparse GEMM performs fewer FLOPs than the op's
        task_op = op if done == op.flops else dataclasses.replace(op, flops=done)
        prev = [add_task(schedule, op.name, task_op, c, "sat", {"sat": c.compute_ns, "dram": c.bytes_by_level["dram"]},
                         prev, level="dram" if op.weight_bytes and op.step != TrainStep.WEIGHT_GRAD else "")]
    return schedule
