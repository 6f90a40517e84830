"""`pim_gpt`: every matrix-vector product on the DRAM-PIM, every vector op on the ASIC.

PIM-GPT (Wu, Wang & Lu, arXiv 2310.09385): batch-1 decode with the weights and the KV cache in the
PIM memory; the weight GEMVs (QKV, projection, FFN, LM head) and the attention GEMVs (q.K^T and
P.V) run on the `gemv_pim` banks of every channel at once, the norms, softmax, GELU, residual adds
and the embedding lookup on the `asic`. The ops of a token are dependent one on the next, so
they run one after another (the engine overlaps nothing that the graph does not allow). Costs:
hwsim.hw.pim_gpt.
"""
from __future__ import annotations

from hwsim.hw.pim import pim_channels
from hwsim.hw.pim_gpt import peak_flops_per_ns
from hwsim.hw.registry import op_cost
from hwsim.hw.system import HardwareSpec
from hwsim.input_error import ConfigError
from hwsim.mappers.common import add_collective_task, add_task, link_resource, memory_resources
from hwsim.mappers.placement import place_data
from hwsim.mappers.registry import NoOptions, register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.workloads.ops import OpGraph, OpKind

NEEDS = ("gemv_pim", "asic", "memory")


@register("pim_gpt", "every GEMV on bank-level DRAM-PIM over all channels and banks, vector ops on "
          "a compact ASIC (PIM-GPT)", needs=NEEDS, options=NoOptions)
def map_pim_gpt(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    device = hw.device(NEEDS)
    router = next((op for op in graph.ops if op.kind == OpKind.ROUTER), None)
    if router is not None:
        # PIM-GPT (arXiv 2310.09385) maps dense GPT decoders: GEMVs on the PIM; norms, softmax,
        # GELU and residual adds on the ASIC. A MoE router's top-k expert selection has no unit.
        raise ConfigError(f"PIM-GPT runs dense decoders only: {graph.info.model} is a mixture of "
                          f"experts (its op '{router.name}' selects experts per token: a top-k "
                          "that neither the GEMV PIM nor the ASIC's vector ops provide)",
                          key="workload.model")
    pim = device.spec("gemv_pim")
    asic = device.spec("asic")
    device.level_of("gemv_pim")                   # the PIM sits in a level the device has
    placement = place_data(graph, device)
    schedule = Schedule(resources={})
    schedule.resident_bytes = dict(placement.resident_bytes)
    schedule.add_resource(Resource("pim", "compute", 1.0, 1.0, exclusive=True, unit="pim",
                                   peak_flops_per_ns=peak_flops_per_ns(pim, pim_channels(pim, device))))
    schedule.add_resource(Resource("asic", "compute", 1.0, 1.0, exclusive=True, unit="asic",
                                   peak_flops_per_ns=asic.peak_flops_per_ns))
    levels = memory_resources(schedule, device)
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)
    task_of: dict[str, int] = {}
    for op in graph.ops:
        deps = sorted(task_of[p] for p in graph.predecessors(op.name))
        if op.kind.is_collective:
            task_of[op.name] = add_collective_task(schedule, op.name, op, hw.link, deps)
            continue
        kind = "gemv_pim" if op.matmul is not None or op.attention is not None else "asic"
        unit = "pim" if kind == "gemv_pim" else "asic"
        c = op_cost(kind, op.kind)(device, op, placement.levels_for(op))
        demands = {unit: c.compute_ns, **{res: c.bytes_by_level.get(lv, 0.0) for lv, res in levels.items()}}
        weights = placement.levels_for(op).weights
        task_of[op.name] = add_task(schedule, op.name, op, c, unit, demands, deps, component=kind,
                                    level=weights.name if weights is not None and op.weight_bytes else "")
    return schedule
