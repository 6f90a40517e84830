"""`attacc`: the GEMMs of batched decode on a GPU, its attention on AttAcc's HBM3-PIM stacks.

Park et al., "AttAcc! Unleashing the Power of PIM for Batched Transformer-based Generative Model
Inference", ASPLOS'24; the released simulator scale-snu/attacc_simulator (src/system.py,
src/config.py; research/pim_anchors.md section 3.1). Per device (one GPU with its AttAcc unit;
tensor parallelism over the devices as the GPU-only system has it):

- placement: the weights in the GPU's HBM, the whole batch's KV cache in the AttAcc stacks
  (memory level `hardware.attacc.level`); a request's KV lives in one PIM channel, requests bound
  to channels longest-first onto the least-loaded channel (NeuPIMs' `clb`, the same layout as
  hwsim.mappers.neupims; AttAcc spreads heads over its stacks and channels, which balances the
  same way once the batch outnumbers the channels);
- every decode step of a layer: the QKV GEMM on the GPU; the query and the new key and value cross
  the GPU-AttAcc interface (`interface_gbps`), the new K/V are written into the banks; score
  (q.K^T) GEMVs in the banks, softmax on the stacks' buffer dies, context (P.V) GEMVs in the banks
  (hwsim.hw.attacc); the attention output crosses back; projection, FFN, norms, residuals and the
  TP all-reduces on the GPU and its link;
- `pipeline` (AttAcc's --pipeopt, on by default as in the README's AttAcc runs): each channel's
  requests are split into two sub-batches (hwsim.mappers.neupims.split_sub_batches) so that one
  sub-batch's attention on the PIM overlaps the other's GEMMs on the GPU; the GEMMs then read the
  weights once per sub-batch. The engine overlaps whatever the dependencies allow.
GPU kernels are costed as the `gpu` mapper costs them (hwsim.hw.gpu, CUDA graphs, fused
elementwise kernels), the QKV kernel without the KV-cache write (the KV lives in the stacks).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from hwsim.hw.attacc import interface_energy_j, softmax_on_channels
from hwsim.hw.gpu import GPUCoster, ServingStack
from hwsim.hw.pim import attention_on_channels, pim_channels
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.common import add_collective_task, add_task, link_resource
from hwsim.mappers.gpu import add_gpu_resources, flash_groups
from hwsim.mappers.neupims import add_pim_channels
from hwsim.mappers.placement import PlacementError
from hwsim.mappers.registry import register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.spec import Spec
from hwsim.workloads.ops import OpGraph, OpKind, op_for_requests

NEEDS = ("gpu", "attacc", "memory")
INTERFACE = "attacc.if"


class AttAccOptions(Spec):
    pipeline: bool = True
    channel_assignment: Literal["clb", "rr"] = "clb"


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.2f} GB"


@register("attacc", "GEMMs on the GPU, decode attention (score, softmax, context) on AttAcc's "
          "HBM3-PIM stacks holding the KV cache", needs=NEEDS, options=AttAccOptions)
def map_attacc(graph: OpGraph, hw: HardwareSpec, options: AttAccOptions) -> Schedule:
    device = hw.device(NEEDS)
    gpu = device.spec("gpu")
    pim = device.spec("attacc")
    level = device.level_of("attacc")
    hbm = device.level("hbm")
    channels = pim_channels(pim, device)
    dtype = graph.ops[0].dtype if len(graph) else "fp16"
    kv, weights = float(graph.info.kv_bytes_per_device), float(graph.info.weight_bytes_per_device)
    if kv > level.capacity_bytes:
        raise PlacementError(f"the KV cache ({_gb(kv)}) does not fit the AttAcc stacks "
                             f"'{level.name}' ({_gb(level.capacity_bytes)})")
    if weights > hbm.capacity_bytes:
        raise PlacementError(f"the weights ({_gb(weights)}) do not fit the GPU's HBM ({_gb(hbm.capacity_bytes)})")
    coster = GPUCoster(gpu, ServingStack())
    schedule = Schedule(resources={}, static_power_w=device.static_power_w(dtype))
    schedule.resident_bytes = {"hbm": weights, level.name: kv}
    add_gpu_resources(schedule, coster, dtype)
    schedule.add_resource(Resource(level.name, "memory", level.sustained_bw_gbps, level.peak_bw_gbps,
                                   exclusive=False, unit=level.name))
    schedule.add_resource(Resource(INTERFACE, "link", pim.interface_gbps, pim.interface_gbps,
                                   exclusive=False, unit="attacc_interface"))
    link = link_resource(hw.link)
    if link:
        schedule.add_resource(link)

    plan, b = add_pim_channels(schedule, graph, pim, channels, options.channel_assignment,
                               options.pipeline, "attacc mapper")
    softmax_of = {group[1].name: group[0] for group in flash_groups(graph).values()}
    tasks_of: dict[tuple[str, int], list[int]] = {}

    def on_channels(label, part, work, deps):
        return [schedule.add(f"{label}@ch{w.channel}", part.name, "pim",
                             {f"pim.ch{w.channel}": w.pim_ns, level.name: w.bus_demand}, deps=deps,
                             flops=w.flops, bytes_by_level={"pim_internal": w.kv_bytes, level.name: w.bus_bytes},
                             energy_j=sum(w.energy_by_component_j.values()),
                             energy_by_component_j=w.energy_by_component_j, roofline_ns=w.roofline_ns,
                             layer=part.layer, micro_batch=part.micro_batch, component="attacc",
                             datapath="pim", level=level.name)
                for w in work]

    def transfer(label, part, nbytes, to_banks, deps):
        """Bytes over the GPU-AttAcc interface (`to_banks`: also written into the banks)."""
        demands = {INTERFACE: nbytes}
        moved = {"attacc_interface": nbytes}
        energy = {"link": interface_energy_j(pim, nbytes)}
        if to_banks:
            demands[level.name] = to_banks
            moved[level.name] = to_banks
            energy["dram"] = level.energy_j(to_banks)
        return schedule.add(label, part.name, "attacc_interface", demands, deps=deps,
                            bytes_by_level=moved, energy_j=sum(energy.values()),
                            energy_by_component_j=energy, roofline_ns=nbytes / pim.interface_gbps,
                            layer=part.layer, micro_batch=part.micro_batch, component="attacc",
                            datapath="interface")

    for op in graph.ops:
        query, context, channel_of, sub_batches = plan[op.micro_batch]
        for s, idx in enumerate(sub_batches):
            part = op_for_requests(op, idx, query, context) if len(sub_batches) > 1 else op
            deps = sorted({t for p in graph.predecessors(op.name) for t in tasks_of[(p, s)]})
            label = f"{op.name}#{s}" if len(sub_batches) > 1 else op.name
            if part.kind.is_collective:
                tasks_of[(op.name, s)] = [add_collective_task(schedule, label, part, hw.link, deps)]
            elif part.kind == OpKind.ATTENTION_SCORE:
                a = part.attention
                tokens = float(np.sum(a.query_array))
                q_bytes = tokens * a.heads * a.head_dim * b
                kv_new = 2.0 * tokens * a.kv_heads * a.head_dim * b
                sent = transfer(f"{label}:to_attacc", part, q_bytes + kv_new, kv_new, deps)
                work = attention_on_channels(pim, level, part, channel_of[idx], channels, True)
                tasks_of[(op.name, s)] = on_channels(label, part, work, [sent])
            elif part.kind == OpKind.ATTENTION_CONTEXT:
                a = part.attention
                work = attention_on_channels(pim, level, part, channel_of[idx], channels, True)
                done = on_channels(label, part, work, deps)
                out = float(np.sum(a.query_array)) * a.heads * a.head_dim * b
                tasks_of[(op.name, s)] = [transfer(f"{label}:to_gpu", part, out, 0.0, done)]
            elif part.name in softmax_of:
                a = softmax_of[part.name].attention
                pairs = (a.query_array * a.context_array)[idx]
                work = softmax_on_channels(pim, level, part, channel_of[idx], channels, pairs)
                tasks_of[(op.name, s)] = on_channels(label, part, work, deps)
            else:
                gpu_part = replace(part, kv_write_bytes=0) if part.kv_write_bytes else part
                c = coster.op_cost(gpu_part, coster.kernel(gpu_part))
                demands = {"gpu": c.compute_ns, "gpu.hbm": c.bytes_by_level.get("hbm", 0.0)}
                tasks_of[(op.name, s)] = [add_task(schedule, label, part, c, "gpu", demands, deps,
                                                   level="hbm" if part.weight_bytes else "")]
    return schedule
