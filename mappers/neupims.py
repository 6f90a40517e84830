"""NPU + bank-level PIM: `neupims` (dual row buffers + sub-batch interleaving) and
`npu_pim_naive` (blocked mode, one batch).

Heo et al., "NeuPIMs: NPU-PIM Heterogeneous Acceleration for Batched LLM Inferencing",
ASPLOS'24, as its released simulator does it (casys-kaist/NeuPIMs src/scheduler/Scheduler.cc,
src/StageProgram.cc; pim_anchors.md section 1.2):
- a request's KV cache lives in one PIM channel; requests are bound to channels by greedy
  least-loaded bin packing on the estimated attention time (`clb`) or round robin (`rr`);
- GEMMs and vector ops run on the NPU; the attention GEMVs (q.K^T, P.V) run on the PIM channels
  holding each request's KV; softmax runs on the NPU vector units;
- sub-batch interleaving splits each channel's requests into two halves (ceil/floor alternating)
  so that one sub-batch's attention on PIM overlaps the other's QKV/projection/FFN on the NPU
  (the A-F stage table) — here the overlap comes from the engine, given the data dependencies.
  Under pipeline parallelism a stage already holds pp >= 2 independent micro-batches; they are
  the interleaved sub-batches, not split again (each split re-streams the weights). Without
  interleaving the micro-batches run strictly one after another;
- with dual row buffers, PIM and normal reads share only the channel bus (the GWRITE/READRES
  bytes); without them ("blocked"), a PIM command stream holds its channel's bandwidth for its
  whole duration, so NPU traffic and PIM serialize.
Weights are read once per sub-batch (each sub-batch is a separate GEMM pass).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from hwsim.hw.pim import attention_cycles_per_request, internal_bw_gbps_per_channel, pim_channels
from hwsim.hw.registry import op_cost
from hwsim.hw.system import HardwareSpec
from hwsim.mappers.common import add_collective_task, add_task
from hwsim.mappers.npu_only import npu_resources
from hwsim.mappers.placement import place_data
from hwsim.mappers.registry import NoOptions, register
from hwsim.sim.schedule import Resource, Schedule
from hwsim.spec import Spec
from hwsim.workloads.ops import OpGraph, OpKind, op_for_requests


class NeuPIMsOptions(Spec):
    sub_batch_interleaving: bool = True
    dual_row_buffer: bool | None = None     # None: as hardware.pim says
    channel_assignment: Literal["clb", "rr"] = "clb"


def assign_channels(load: np.ndarray, channels: int, policy: str) -> np.ndarray:
    """Channel of each request: `rr` round robin; `clb` longest-first onto the least-loaded
    channel (NeuPIMs trace-generator get_distributions.py)."""
    if policy == "rr":
        return np.arange(len(load)) % channels
    out = np.empty(len(load), dtype=np.int64)
    totals = np.zeros(channels)
    for r in np.argsort(-load, kind="stable"):
        c = int(np.argmin(totals))
        out[r] = c
        totals[c] += load[r]
    return out


def split_sub_batches(channel_of: np.ndarray, channels: int, interleave: bool) -> list[np.ndarray]:
    """Each channel's requests are split in half, odd counts alternating ceil and floor."""
    if not interleave:
        return [np.arange(len(channel_of))]
    halves: list[list[int]] = [[], []]
    flip = 0
    for c in range(channels):
        reqs = np.flatnonzero(channel_of == c)
        cut = (len(reqs) + 1 - flip) // 2 if len(reqs) % 2 else len(reqs) // 2
        if len(reqs) % 2:
            flip ^= 1
        halves[0] += reqs[:cut].tolist()
        halves[1] += reqs[cut:].tolist()
    return [np.array(sorted(h), dtype=np.int64) for h in halves if h]


def add_pim_channels(schedule: Schedule, graph: OpGraph, pim, channels: int, policy: str,
                     split: bool, mapper: str) -> tuple[dict, int]:
    """One exclusive `pim.ch<c>` resource per channel, and per micro-batch its requests bound to
    channels (`assign_channels` under `policy`, estimated by each request's attention cycles) and
    split into sub-batches (`split_sub_batches`; only a single micro-batch is split, since under
    pipeline parallelism a device serves its micro-batches one after another).
    Returns ({micro-batch: (queries, contexts, channel of each request, sub-batches)}, bytes per
    element of the attention). Shared by the NeuPIMs and AttAcc mappers."""
    first_attn = {}                               # micro-batch -> its first attention op
    for op in graph.ops:
        if op.attention is not None:
            first_attn.setdefault(op.micro_batch, op)
    if not first_attn:
        raise ValueError(f"{mapper}: a graph with attention ops is needed")
    b = next(iter(first_attn.values())).dtype_bytes
    peak = 2.0 * internal_bw_gbps_per_channel(pim, b) / b
    for c in range(channels):
        schedule.add_resource(Resource(f"pim.ch{c}", "compute", 1.0, 1.0, exclusive=True, unit="pim",
                                       peak_flops_per_ns=peak))
    plan = {}
    for mb, attn_op in first_attn.items():
        attn = attn_op.attention
        est = (attention_cycles_per_request(pim, attn, False, b)
               + attention_cycles_per_request(pim, attn, True, b))
        channel_of = assign_channels(est.astype(float), channels, policy)
        plan[mb] = (attn.query_array, attn.context_array, channel_of,
                    split_sub_batches(channel_of, channels, split and len(first_attn) == 1))
    return plan, b


NEEDS = ("npu", "memory", "pim")


def build_npu_pim(graph: OpGraph, hw: HardwareSpec, interleave: bool, dual: bool,
                  policy: str) -> Schedule:
    device = hw.device(NEEDS)
    pim = device.spec("pim")
    pim_level = device.level_of("pim")
    channels = pim_channels(pim, device)
    placement = place_data(graph, device)
    schedule = npu_resources(hw, device)
    schedule.resident_bytes = dict(placement.resident_bytes)
    plan, b = add_pim_channels(schedule, graph, pim, channels, policy, interleave,
                               "NPU+PIM mapper")
    last_op_of = {op.micro_batch: op.name for op in graph.ops}
    tasks_of: dict[tuple[str, int], list[int]] = {}
    levels = [lv.name for lv in device.off_chip_levels]

    for op in graph.ops:
        query, context, channel_of, sub_batches = plan[op.micro_batch]
        for s, idx in enumerate(sub_batches):
            part = op_for_requests(op, idx, query, context) if len(sub_batches) > 1 else op
            preds = graph.predecessors(op.name)
            if not interleave and op.micro_batch and not op.kind.is_collective and \
                    all(graph.op(p).kind.is_collective for p in preds):
                preds = preds + [last_op_of[op.micro_batch - 1]]   # micro-batches never overlap
            deps = sorted({t for p in preds for t in tasks_of[(p, s)]})
            label = f"{op.name}#{s}" if len(sub_batches) > 1 else op.name
            if part.kind.is_collective:
                tasks_of[(op.name, s)] = [add_collective_task(schedule, label, part, hw.link, deps)]
            elif part.attention is not None:
                work = op_cost("pim", part.kind)(pim, pim_level, part, channel_of[idx], channels, dual)
                tasks_of[(op.name, s)] = [
                    schedule.add(f"{label}@ch{w.channel}", part.name, "pim",
                                 {f"pim.ch{w.channel}": w.pim_ns, pim_level.name: w.bus_demand},
                                 deps=deps, flops=w.flops,
                                 bytes_by_level={"pim_internal": w.kv_bytes, pim_level.name: w.bus_bytes},
                                 energy_j=sum(w.energy_by_component_j.values()),
                                 energy_by_component_j=w.energy_by_component_j, roofline_ns=w.roofline_ns,
                                 layer=part.layer, micro_batch=part.micro_batch, component="pim",
                                 datapath="pim", level=pim_level.name)
                    for w in work]
            else:
                where = placement.levels_for(part)
                c = op_cost("npu", part.kind)(device, part, where)
                demands = {"npu": c.compute_ns, **{lv: c.bytes_by_level.get(lv, 0.0) for lv in levels}}
                weights = where.weights.name if where.weights is not None and part.weight_bytes else ""
                tasks_of[(op.name, s)] = [add_task(schedule, label, part, c, "npu", demands, deps,
                                                   level=weights)]
    return schedule


@register("neupims", "NPU for GEMMs + bank-level PIM for attention, dual row buffers and "
          "sub-batch interleaving (ablatable)", needs=NEEDS, options=NeuPIMsOptions)
def map_neupims(graph: OpGraph, hw: HardwareSpec, options: NeuPIMsOptions) -> Schedule:
    dual = hw.pim.dual_row_buffer if options.dual_row_buffer is None else options.dual_row_buffer
    return build_npu_pim(graph, hw, options.sub_batch_interleaving, dual, options.channel_assignment)


@register("npu_pim_naive", "NPU + PIM in blocked mode: attention on PIM, never overlapping the "
          "NPU", needs=NEEDS, options=NoOptions)
def map_npu_pim_naive(graph: OpGraph, hw: HardwareSpec, options) -> Schedule:
    return build_npu_pim(graph, hw, interleave=False, dual=False, policy="clb")
