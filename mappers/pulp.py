"""`pulp`: a CNN's or a small Transformer's inference pass or training step (workloads/training.py) on a PULP cluster,
op by op in graph order as PULP-TrainLib runs it (each layer's step parallelised over the worker
cores, the next starting when it ends), with the model's state checked against the memory levels.

Memory plan: L2 holds what the step keeps resident (weights; for a training step also their
gradients, the optimizer state and the activations saved for the backward pass:
hwsim.workloads.training.training_memory); an inference pass holds its weights and its largest
op's input + output. It must fit L2 (`hardware.pulp.l2_kib`, a hard limit: exit 2 naming the
level, what it holds and the capacity). L1 holds one layer's tiles at a time (PULP-TrainLib's
tiling), which fit by construction; its bytes and time are charged per op (hw/pulp.py).

Costs come from the cluster component (hw/pulp.py); this module only decides what runs when and
what is resident.
"""
from __future__ import annotations

from hwsim.hw.registry import op_cost
from hwsim.hw.system import HardwareSpec
from hwsim.input_error import ConfigError
from hwsim.mappers.common import add_task, memory_resources
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import OpGraph, TrainStep

NEEDS = ("pulp",)
MODEL_DTYPES = ("fp32", "fp16", "bf16")


def resident_bytes(graph: OpGraph) -> tuple[float, str]:
    """What L2 must hold for `graph`, and a short account of it (module docstring). A training
    graph carries its plan in `graph.training_memory` (set by the training scenario)."""
    plan = getattr(graph, "training_memory", None)
    if plan is not None:
        parts = (f"weights {plan.weight_bytes / 1024:.1f} kB + gradients {plan.grad_bytes / 1024:.1f} kB"
                 f" + optimizer state {plan.optimizer_state_bytes / 1024:.1f} kB + saved activations "
                 f"{plan.saved_activation_bytes / 1024:.1f} kB + gradient buffers {plan.transient_bytes / 1024:.1f} kB")
        return plan.total_bytes, parts
    weights = float(sum(op.weight_bytes for op in graph.ops))
    acts = max((float(op.act_in_bytes + op.act_out_bytes) for op in graph.ops), default=0.0)
    return weights + acts, f"weights {weights / 1024:.1f} kB + largest activations {acts / 1024:.1f} kB"


def check_l2(graph: OpGraph, l2_bytes: float) -> float:
    need, parts = resident_bytes(graph)
    if need > l2_bytes:
        raise ConfigError(f"{graph.info.model} ({graph.info.phase}) does not fit memory level 'l2': "
                          f"{parts} = {need / 1024:.1f} kB > capacity {l2_bytes / 1024:.0f} kB (a "
                          "smaller model or batch, or a larger L2)", key="hardware.pulp.l2_kib")
    return need


@register("pulp", "a CNN's or a small Transformer's inference pass or training step on a PULP "
          "cluster, layer by layer as PULP-TrainLib runs it; weights, gradients and saved activations "
          "checked against L2", needs=NEEDS, workloads=("cnn", "transformer"), checks_fit=True)
def map_pulp(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    device = hw.device(NEEDS)
    spec = device.spec("pulp")
    if graph.ops and graph.ops[0].dtype not in MODEL_DTYPES:
        raise ConfigError(f"PULP-TrainLib's kernels are floating point ({', '.join(MODEL_DTYPES)}); "
                          f"got dtype {graph.ops[0].dtype}", key="workload.dtype")
    need = check_l2(graph, spec.l2_bytes)
    schedule = Schedule(resources={})
    schedule.add_resource(Resource("pulp", "compute", 1.0, 1.0, exclusive=True, unit="pulp",
                                   peak_flops_per_ns=2 * spec.peak_macs_per_cycle(graph.ops[0].dtype
                                                                                  if graph.ops else "fp32")
                                   / spec.cycle_ns))
    memory_resources(schedule, device)
    schedule.resident_bytes = {"l2": need}
    prev: list[int] = []
    for op in graph.ops:                  # one op at a time, in graph order (a topological order)
        c = op_cost("pulp", op.kind)(device, op)
        demands = {"pulp": c.compute_ns, "l2": c.bytes_by_level.get("l2", 0.0)}
        prev = [add_task(schedule, op.name, op, c, "pulp", demands, prev,
                         level="l2" if op.weight_bytes and op.step != TrainStep.WEIGHT_GRAD else "")]
    return schedule
