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
       + columns x max(BL/2, tCCD_S)              (COMP stream, rate-matched to column reads)
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

import numpy as np
from pydantic import Field

from hwsim.hw.dram import PRESETS, DramTiming
from hwsim.hw.energy import mac_pj
from hwsim.hw.technology import TechNodeNm
from hwsim.spec import Spec
from hwsim.workloads.ops import Attention

# Energy inside a bank-PIM device per bit read from the cells: cell read 0.44 + ACT/PRE share
# 0.11 pJ/bit, without the GIO/TSV/IO path (AttAcc, scale-snu/attacc_simulator src/config.py,
# bank-PIM DRAM energy (0.11 + 0.44) x 8 pJ per byte, from FGDRAM, O'Connor et al. MICRO'17).
PIM_INTERNAL_PJ_PER_BIT = 0.11 + 0.44


class PIMSpec(Spec):
    timing: str = Field(default="hbm2", description="DRAM timing preset of the PIM device")
    macs_per_bank: int = Field(default=16, gt=0)
    dual_row_buffer: bool = Field(default=True, description="False: PIM and normal accesses "
                                  "to a bank serialize (blocked mode)")
    internal_pj_per_bit: float = Field(default=PIM_INTERNAL_PJ_PER_BIT, gt=0)
    # 20 nm: the DRAM process of Samsung's HBM-PIM (Lee et al., ISCA 2021 abstract, "20 nm DRAM";
    # pim_anchors.md section 3.2). Logic in a DRAM process is less dense and slower than in a
    # logic process of the same node; that penalty is not modelled [no verified figure].
    tech_node_nm: TechNodeNm = Field(default=20, description="process node of the PIM logic (MACs, "
                              "buffers); scales their energy and area from the 45 nm tables")

    def mac_pj(self, dtype: str) -> float:
        """Energy of one PIM multiply-accumulate: Horowitz 45 nm, scaled to tech_node_nm."""
        return mac_pj(dtype, self.tech_node_nm)

    @property
    def dram(self) -> DramTiming:
        return PRESETS[self.timing]


def columns_per_row(pim: PIMSpec, dtype_bytes: int) -> int:
    return pim.dram.row_bytes // (pim.macs_per_bank * dtype_bytes)


def gwrite_cycles(pim: PIMSpec, dtype_bytes: int = 2) -> int:
    t = pim.dram
    return columns_per_row(pim, dtype_bytes) * (t.cycles(t.tccd_s_ns) + t.cycles(t.tccd_l_ns))


def tile_cycles(pim: PIMSpec, dtype_bytes: int = 2) -> int:
    t = pim.dram
    activate = (t.bank_groups - 1) * t.cycles(t.trrd_s_ns) + t.cycles(t.trcd_ns)
    comp = columns_per_row(pim, dtype_bytes) * max(t.burst_cycles, t.cycles(t.tccd_s_ns))
    readres = t.cycles(t.cl_ns) + t.burst_cycles
    return activate + comp + readres + t.cycles(t.trp_ns)


def internal_bw_gbps_per_channel(pim: PIMSpec, dtype_bytes: int = 2) -> float:
    """Bytes the MACs consume per ns during the COMP stream: every bank reads
    macs_per_bank operands per COMP slot."""
    t = pim.dram
    slot_ns = max(t.burst_cycles, t.cycles(t.tccd_s_ns)) * t.tck_ns
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
