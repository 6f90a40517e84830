"""Bank-level PIM in HBM (Newton / AiM style, as NeuPIMs models it): spec and GEMV cost.

Every bank has `macs_per_bank` multipliers behind its row buffer and a channel-wide global
buffer holds the input vector. A GEMV runs as (NewtonSim, casys-kaist/NeuPIMs extern/NewtonSim):
GWRITE (copy one row's worth of the vector into the global buffer), then per *tile* — one row
open in every bank of the channel — G_ACT the banks group by group, COMP once per column chunk
(all banks multiply-accumulate in lockstep), READRES the per-bank sums, precharge.

Costs from the DRAM timing (cycles of tCK):
- GWRITE = columns x (tCCD_S + tCCD_L), columns = row_bytes / (macs_per_bank * dtype bytes):
  NewtonSim's GWRITE latency formula; 96 cycles on the NeuPIMs HBM2.
- tile = (bank_groups - 1) x tRRD_S + tRCD        (activate all groups of a rank; ranks overlap)
       + columns x slot                           (COMP stream; slot = max(BL/2, tCCD_S), rate-
                                                   matched to column reads, or comp_interval_cycles)
       + CL + BL/2                                (READRES: one burst of per-bank results)
       + tRP                                      (precharge; tRAS is met by the COMP stream)

Attention layout (NeuPIMs Scheduler.cc, pim_anchors.md section 1.2): keys are spread over the
banks along the sequence (one token per bank per row, `elements_per_row` features per row); values
run along the row (one row holds `elements_per_row` tokens of one feature column). So per request
and query head: q.K^T needs ceil(E_k / epr) GWRITEs and ceil(E_k / epr) x ceil(L / banks) tiles;
P.V needs ceil(L / epr) GWRITEs and ceil(L / epr) x ceil(d / banks) tiles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from hwsim.hw.dram import PRESETS, DramTiming
from hwsim.hw.energy import mac_pj
from hwsim.hw.technology import TechNodeNm
from hwsim.spec import Spec
from hwsim.workloads.ops import Attention, Op, OpKind

# Energy inside a bank-PIM device per bit read from the cells: cell read 0.44 + ACT/PRE share
# 0.11 pJ/bit, without the GIO/TSV/IO path (AttAcc, scale-snu/attacc_simulator src/config.py,
# bank-PIM DRAM energy (0.11 + 0.44) x 8 pJ per byte, from FGDRAM, O'Connor et al. MICRO'17).
PIM_INTERNAL_PJ_PER_BIT = 0.11 + 0.44


class PIMSpec(Spec):
    timing: str = Field(default="hbm2", description="DRAM timing preset of the PIM device")
    macs_per_bank: int = Field(default=16, gt=0)
    dual_row_buffer: bool = Field(default=True, description="False: PIM and normal accesses "
                                  "to a bank serialize (blocked mode)")
    comp_interval_cycles: int | None = Field(default=None, gt=0, description="cycles between two "
                                             "all-bank MAC commands; None: rate-matched to the column "
                                             "reads, max(BL/2, tCCD_S) (NewtonSim)")
    internal_pj_per_bit: float = Field(default=PIM_INTERNAL_PJ_PER_BIT, gt=0)
    # 20 nm: the DRAM process of Samsung's HBM-PIM (Lee et al., ISCA 2021 abstract, "20 nm DRAM";
    # pim_anchors.md section 3.2). Logic in a DRAM process is less dense and slower than in a
    # logic process of the same node; that penalty is not modelled [no verified figure].
    level: str = Field(default="hbm", description="the memory level whose DRAM dies hold the PIM "
                       "units (its channels are the PIM channels)")
    tech_node_nm: TechNodeNm = Field(default=20, description="process node of the PIM logic (MACs, "
                              "buffers); scales their energy and area from the 45 nm tables")

    def mac_pj(self, dtype: str) -> float:
        """Energy of one PIM multiply-accumulate: Horowitz 45 nm, scaled to tech_node_nm."""
        return mac_pj(dtype, self.tech_node_nm)

    @property
    def dram(self) -> DramTiming:
        return PRESETS[self.timing]


def comp_slot_cycles(pim: PIMSpec) -> int:
    """Cycles of one COMP slot: `comp_interval_cycles` when the device sets it (AttAcc's nCCDAB,
    a power limit on all-bank MACs), else rate-matched to the column reads, max(BL/2, tCCD_S)."""
    t = pim.dram
    if pim.comp_interval_cycles is not None:
        return pim.comp_interval_cycles
    return max(t.burst_cycles, t.cycles(t.tccd_s_ns))


def columns_per_row(pim: PIMSpec, dtype_bytes: int) -> int:
    return pim.dram.row_bytes // (pim.macs_per_bank * dtype_bytes)


def gwrite_cycles(pim: PIMSpec, dtype_bytes: int = 2) -> int:
    t = pim.dram
    return columns_per_row(pim, dtype_bytes) * (t.cycles(t.tccd_s_ns) + t.cycles(t.tccd_l_ns))


def tile_cycles(pim: PIMSpec, dtype_bytes: int = 2) -> int:
    t = pim.dram
    activate = (t.bank_groups - 1) * t.cycles(t.trrd_s_ns) + t.cycles(t.trcd_ns)
    comp = columns_per_row(pim, dtype_bytes) * comp_slot_cycles(pim)
    readres = t.cycles(t.cl_ns) + t.burst_cycles
    return activate + comp + readres + t.cycles(t.trp_ns)


def internal_bw_gbps_per_channel(pim: PIMSpec, dtype_bytes: int = 2) -> float:
    """Bytes the MACs consume per ns during the COMP stream: every bank reads
    macs_per_bank operands per COMP slot."""
    t = pim.dram
    slot_ns = comp_slot_cycles(pim) * t.tck_ns
    return t.banks_per_channel * pim.macs_per_bank * dtype_bytes / slot_ns


def attention_commands(pim: PIMSpec, attn: Attention, context: bool, dtype_bytes: int = 2):
    """(GWRITEs, tiles) per request for the score (q.K^T) or context (P.V) GEMVs."""
    t = pim.dram
    epr = t.row_bytes // dtype_bytes
    banks = t.banks_per_channel
    L = attn.context_array
    q = attn.query_array
    heads = attn.heads
    if not context:
        chunks = math.ceil(attn.kv_heads * attn.head_dim / epr)
        gwrites = q * math.ceil(heads * attn.head_dim / epr)
        tiles = q * attn.group * chunks * -(-L // banks)
    else:
        gwrites = q * heads * -(-L // epr)
        tiles = gwrites * math.ceil(attn.head_dim / banks)
    return gwrites, tiles


def attention_cycles_per_request(pim: PIMSpec, attn: Attention, context: bool,
                                 dtype_bytes: int = 2) -> np.ndarray:
    gwrites, tiles = attention_commands(pim, attn, context, dtype_bytes)
    return gwrites * gwrite_cycles(pim, dtype_bytes) + tiles * tile_cycles(pim, dtype_bytes)


def tile_energy_j(pim: PIMSpec) -> float:
    """One tile reads a row in every bank at the internal energy per bit, plus one ACT per bank."""
    t = pim.dram
    bits = t.banks_per_channel * t.row_bytes * 8
    return (bits * pim.internal_pj_per_bit + t.banks_per_channel * t.act_pj) * 1e-12


@dataclass(frozen=True)
class ChannelWork:
    """What one PIM channel does for an attention op: its command stream and what it costs."""
    channel: int
    pim_ns: float               # command stream time on the channel (GWRITEs + tiles)
    bus_bytes: float            # GWRITE input vectors and READRES results on the channel bus
    bus_demand: float           # bus bytes the task holds: `bus_bytes` with dual row buffers; in
                                # blocked mode the channel's whole bandwidth for `pim_ns`
    kv_bytes: float             # KV read inside the banks
    flops: float
    energy_by_component_j: dict[str, float]
    roofline_ns: float


def attention_on_channels(pim: PIMSpec, level, op: Op, channel_of: np.ndarray, channels: int,
                          dual_row_buffer: bool) -> list[ChannelWork]:
    """The score or context GEMVs of `op` on the channels holding each request's KV
    (`channel_of[r]`: channel of request r of the op), one `ChannelWork` per busy channel.

    Energy: "pim" = tiles x tile_energy_j (row reads + activates in the banks) + the PIM MACs;
    "dram" = the bus bytes at the level's energy per bit. Without dual row buffers a PIM command
    stream blocks normal accesses to its channel (NeuPIMs' blocked mode), so the task holds the
    channel's sustained bandwidth (level bandwidth / channels) for its whole duration."""
    context = op.kind == OpKind.ATTENTION_CONTEXT
    attn = op.attention
    b = op.dtype_bytes
    cycles = attention_cycles_per_request(pim, attn, context, b)
    tiles = attention_commands(pim, attn, context, b)[1]
    per_tile_j = tile_energy_j(pim)
    mac_pj = pim.mac_pj(op.dtype)
    pairs = attn.query_array * attn.context_array
    vector_bytes = attn.query_array * attn.heads * (attn.context_array if context else attn.head_dim) * b
    total_pairs = float(np.sum(pairs))
    internal_bw = internal_bw_gbps_per_channel(pim, b)
    per_channel_bw = level.sustained_bw_gbps / channels
    per_channel = lambda values: np.bincount(channel_of, weights=values, minlength=channels)  # noqa: E731
    requests_on = np.bincount(channel_of, minlength=channels)
    pim_ns_on, bus_bytes_on = per_channel(cycles) * pim.dram.tck_ns, per_channel(vector_bytes)
    pairs_on, tiles_on = per_channel(pairs), per_channel(tiles)
    # Every busy channel at once (element-wise, the same operations in the same order as one
    # channel at a time).
    busy = np.flatnonzero(requests_on)
    pim_ns, bus_bytes = pim_ns_on[busy], bus_bytes_on[busy]
    share = pairs_on[busy] / total_pairs
    kv = op.kv_read_bytes * share
    flops = op.flops * share
    pim_j = tiles_on[busy] * per_tile_j + op.flops * share / 2 * mac_pj * 1e-12
    dram_j = level.energy_j(bus_bytes)
    demand = bus_bytes if dual_row_buffer else np.maximum(bus_bytes, pim_ns * per_channel_bw)
    roofline = np.maximum(op.flops * share / (2 * internal_bw / b), kv / internal_bw)
    return [ChannelWork(c, t, bb, d, k, f, {"pim": pj, "dram": dj}, r)
            for c, t, bb, d, k, f, pj, dj, r in zip(
                busy.tolist(), pim_ns.tolist(), bus_bytes.tolist(), demand.tolist(), kv.tolist(),
                flops.tolist(), pim_j.tolist(), dram_j.tolist(), roofline.tolist())]


# ---- registration ------------------------------------------------------------------------------

def pim_channels(pim: PIMSpec, device) -> int:
    """Channels of the level the PIM sits in (its own timing preset's when the device has none)."""
    for spec in device.hardware.specs("memory"):
        if spec.name == pim.level:
            return spec.channels
    return pim.dram.channels


def _pim_area(spec: PIMSpec, device, dtype: str) -> dict[str, float]:
    from hwsim.hw.area import pim_area_breakdown_mm2
    return pim_area_breakdown_mm2(spec, pim_channels(spec, device), dtype)


def _pim_static_power(spec: PIMSpec, device, dtype: str) -> float:
    from hwsim.hw.area import leakage_power_w
    return leakage_power_w(sum(_pim_area(spec, device, dtype).values()))


def _pim_check_case(datapath: str, device, op, ctx):
    from hwsim.hw.kernels.cases import op_case
    return op_case(_pim_check_unit(datapath), device.hardware, op, ctx)


def _pim_check_unit(datapath: str) -> str:
    return "pim"


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

register_component(ComponentKind(
    name="pim", spec=PIMSpec, role="pim",
    summary="bank-level PIM in a DRAM level (Newton/AiM style, NeuPIMs' command model)",
    # Attention runs on the channels holding each request's KV: its cost is a list of
    # ChannelWork (one task per channel), not one OpCost.
    op_costs={OpKind.ATTENTION_SCORE.value: attention_on_channels,
              OpKind.ATTENTION_CONTEXT.value: attention_on_channels},
    area_mm2=_pim_area, static_power_w=_pim_static_power, energy_buckets=("pim", "dram"),
    check_cases=_pim_check_case, check_unit=_pim_check_unit))
