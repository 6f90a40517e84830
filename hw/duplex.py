"""Duplex's Logic-PIM: processing units on the HBM3 logic (base) die, fed by added TSVs.

Yun et al., "Duplex: A Device for Large Language Models with Mixture of Experts, Grouped Query
Attention, and Continuous Batching", MICRO'24 (arXiv 2409.01141; research/pim_anchors.md 3.5).
What the abstract says [seen]: Duplex is one device with an xPU "tailored for high-Op/B" work and
Logic-PIM for low-Op/B work; Logic-PIM "adds more through-silicon vias (TSVs) to enable
high-bandwidth communication between the DRAM die and the logic die and place[s] powerful
processing units on the logic die", best suited to Op/B "ranging from few to a few dozens"; the
MoE layer's Op/B is "at least 1" and GQA attention's "4-8". From secondary summaries [S2, not
verified against the PDF]: HBM3 at 16 GB per stack, Logic-PIM with 4x the bandwidth. The body's
processing-unit count, clock, buffers and area breakdown were not retrievable here: every such
default below says "assumed".

The model (all arithmetic here; the mapper only places):

- the DRAM dies of the `stacks` stacks of memory level `level` deliver, through the TSVs,
  ``tsv_bw_gbps = tsv_bw_ratio x`` the level's external (xPU-side) peak bandwidth; the xPU's
  reads also cross the TSVs, so the two share that bandwidth (the mapper makes one resource of it);
- an op on Logic-PIM reads every byte it touches (weights, KV, activations) over the TSVs and
  computes at ``2 x mac_units_per_stack x stacks x clock_ghz`` FLOP/ns: its time is the roofline
  max(FLOPs / peak, bytes / (tsv_bw_gbps x bw_efficiency)), the engine adds contention;
- energy: the bytes at `tsv_pj_per_bit` (DRAM cell to logic die, no interposer hop), the MACs at
  hwsim.hw.energy.mac_pj of the logic die's node;
- area (per stack): the MAC units and buffers at `tech_node_nm` plus the added TSVs' keep-out
  area; `logic_die_area_mm2` is the denominator of the area overhead the validate row reports.

Op/B here is FLOPs per byte of memory touched (an FP16 multiply-accumulate = 2 FLOPs on 2 bytes of
weight): GQA decode attention with g query heads per KV head gives ~g, an expert GEMM that
receives t tokens gives ~t (op_per_byte).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from hwsim.hw.cost import OpCost
from hwsim.hw.energy import energy_components_j, mac_pj
from hwsim.hw.technology import TechNodeNm
from hwsim.spec import Spec
from hwsim.workloads.ops import Op, OpKind

# DRAM cell to the logic die: cell ACT/PRE 0.11 + cell RD/WR 0.44 + column decoder to bank-group
# mux 1.01 + bank-group mux to global I/O 1.23 + TSV 0.5 pJ/bit; the xPU path adds the silicon
# interposer's 0.3 (FGDRAM, O'Connor et al. MICRO'17, as tabulated for buffer-die PIM in
# scale-snu/attacc_simulator src/config.py ENERGY_TABLE['PIM'][BUFFER]['mem'], the same group's
# simulator as Duplex's).
TSV_PJ_PER_BIT = 0.11 + 0.44 + 1.01 + 1.23 + 0.5


class LogicPIMSpec(Spec):
    """Logic-PIM on the base dies of the HBM stacks of memory level `level`."""
    level: str = Field(default="hbm", description="the memory level whose stacks carry Logic-PIM")
    stacks: int = Field(default=5, gt=0, description="HBM stacks of that level")
    stack_capacity_gib: float = Field(default=16.0, gt=0, description="capacity per stack, GiB")
    tsv_bw_ratio: float = Field(default=4.0, gt=0, le=64, description="TSV (DRAM die to logic "
                                "die) bandwidth / the level's external peak bandwidth")
    bw_efficiency: float = Field(default=0.78, gt=0, le=1, description="sustained share of the "
                                 "TSV bandwidth a long stream gets")
    mac_units_per_stack: int = Field(default=10240, gt=0, description="FP16 MAC units per stack")
    clock_ghz: float = Field(default=1.0, gt=0, le=10)
    accumulate: Literal["fp32", "fp16"] = Field(default="fp32", description="precision of the "
                                                "running sums of a dot product")
    dot_width: int = Field(default=16, gt=0, description="products one adder tree reduces per "
                           "step (the k-chunk summed exactly before the running sum)")
    tsv_pj_per_bit: float = Field(default=TSV_PJ_PER_BIT, gt=0)
    buffer_kib_per_stack: int = Field(default=1024, gt=0, description="SRAM of the PUs per stack")
    added_tsv_area_mm2_per_stack: float = Field(default=4.9, ge=0, description="keep-out area "
                                                "of the added TSVs per stack")
    logic_die_area_mm2: float = Field(default=121.0, gt=0, description="area of one base die "
                                      "(the area overhead's denominator)")
    tech_node_nm: TechNodeNm = Field(default=7, description="process of the logic die's PUs")

    def tsv_bw_gbps(self, level) -> float:
        """Peak DRAM-die to logic-die bandwidth of all stacks (GB/s = bytes/ns)."""
        return self.tsv_bw_ratio * level.peak_bw_gbps

    def sustained_tsv_bw_gbps(self, level) -> float:
        return self.tsv_bw_gbps(level) * self.bw_efficiency

    def peak_flops_per_ns(self, dtype: str = "fp16") -> float:
        """2 FLOPs per MAC unit per cycle over all stacks (fp32 at half rate)."""
        rate = 2.0 * self.mac_units_per_stack * self.stacks * self.clock_ghz
        return rate / 2 if dtype == "fp32" else rate


def op_per_byte(op: Op) -> float:
    """FLOPs per byte of memory touched (weights, KV, activations): Duplex's Op/B."""
    nbytes = op.memory_bytes
    return op.flops / nbytes if nbytes else float("inf")


def ops_per_byte(ops) -> float:
    """Op/B of a group of ops placed together (an expert's GEMMs, an attention)."""
    nbytes = sum(op.memory_bytes for op in ops)
    flops = sum(op.flops for op in ops)
    return flops / nbytes if nbytes else float("inf")


def logic_pim_cost(pim: LogicPIMSpec, level, op: Op) -> OpCost:
    """`op` on Logic-PIM: every byte it touches over the TSVs, its FLOPs on the PUs; the time
    at full rate on each (compute_ns; the bytes become the TSV resource's demand), the roofline
    at peak, and the energy."""
    nbytes = float(op.memory_bytes)
    peak = pim.peak_flops_per_ns(op.dtype)
    compute_ns = op.flops / peak
    roofline = max(compute_ns, nbytes / pim.tsv_bw_gbps(level))
    energy = energy_components_j(pim=op.flops / 2 * mac_pj(_mac_dtype(op.dtype), pim.tech_node_nm),
                                 dram=nbytes * 8 * pim.tsv_pj_per_bit)
    return OpCost(compute_ns, {level.name: nbytes}, sum(energy.values()), roofline, engine="logic_pim",
                  energy_by_component_j=energy)


def _mac_dtype(dtype: str) -> str:
    return dtype if dtype in ("fp32", "fp16", "bf16", "int8", "fp8") else "fp16"


# ---- functional model for --check ---------------------------------------------------------------

def logic_pim_gemm(a: np.ndarray, b: np.ndarray, dot_width: int, accumulate: str) -> np.ndarray:
    """a @ b as the PUs compute it: each step reduces `dot_width` exact products of the (already
    rounded) operands in an fp32 adder tree, then adds that partial sum to a running sum held in
    `accumulate` precision (rounded after every step). Returns float64 of the result."""
    acc_t = np.float32 if accumulate == "fp32" else np.float16
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    k = a.shape[1]
    out = np.zeros((a.shape[0], b.shape[1]), dtype=acc_t)
    for s in range(0, k, dot_width):
        part = (a64[:, s:s + dot_width] @ b64[s:s + dot_width]).astype(np.float32)
        out = (out.astype(np.float32) + part).astype(acc_t)
    return out.astype(np.float64)


def _check_case(datapath: str, device, op, ctx):
    """`--check`: Logic-PIM GEMM/GEMV (a matmul, or an attention's q.K^T / P.V per KV head) with
    its adder-tree width and accumulation precision, against float64."""
    from hwsim.hw.kernels.cases import GEMM_K_CAP, GEMM_M_CAP, GEMM_N_CAP, KernelCase, _cap
    from hwsim.hw.kernels.numerics import random_operand
    pim = device.spec("duplex")
    dtype = op.dtype if op.dtype in ("fp16", "bf16", "fp32") else "fp16"
    if op.matmul is not None:
        m, n, k = op.matmul.m, op.matmul.n, op.matmul.k
    elif op.attention is not None and op.kind in (OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT):
        a = op.attention
        q, length = int(a.query_array[0]), int(a.context_array[0])
        rows = a.group * q
        m, n, k = ((rows, length, a.head_dim) if op.kind == OpKind.ATTENTION_SCORE
                   else (rows, a.head_dim, length))
    else:
        return None
    m, n, k = _cap(m, GEMM_M_CAP), _cap(n, GEMM_N_CAP), _cap(k, GEMM_K_CAP, pim.dot_width)

    def run(rng):
        x, w = random_operand(rng, (m, k), dtype), random_operand(rng, (k, n), dtype)
        return (logic_pim_gemm(x, w, pim.dot_width, pim.accumulate),
                x.astype(np.float64) @ w.astype(np.float64))
    kind = str(op.kind.value)
    return KernelCase(kind, "duplex", f"Logic-PIM GEMM (adder tree {pim.dot_width}, running sum "
                      f"{pim.accumulate})", f"{dtype} x {dtype} -> {pim.accumulate}", pim.accumulate,
                      f"[{m}x{k}] @ [{k}x{n}]", run)


# ---- registration ------------------------------------------------------------------------------

def _area(spec: LogicPIMSpec, device, dtype: str) -> dict[str, float]:
    from hwsim.hw.area import pe_area_um2, sram_area_mm2
    node = spec.tech_node_nm
    parts = {"duplex_macs": spec.stacks * spec.mac_units_per_stack * pe_area_um2(dtype, node, registers=1) * 1e-6,
             "duplex_buffers": spec.stacks * sram_area_mm2(spec.buffer_kib_per_stack * 1024, node),
             "duplex_tsvs": spec.stacks * spec.added_tsv_area_mm2_per_stack}
    return {k: v for k, v in parts.items() if v > 0}


def area_overhead(spec: LogicPIMSpec, dtype: str = "fp16") -> float:
    """Logic-PIM's area per stack over one base die's area."""
    return sum(_area(spec, None, dtype).values()) / spec.stacks / spec.logic_die_area_mm2


def _static_power(spec: LogicPIMSpec, device, dtype: str) -> float:
    from hwsim.hw.area import leakage_power_w
    parts = _area(spec, device, dtype)
    return leakage_power_w(parts["duplex_macs"] + parts["duplex_buffers"])


def _op_cost(device, op, where):
    pim = device.spec("duplex")
    return logic_pim_cost(pim, device.level_of("duplex"), op)


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

PIM_KINDS = (OpKind.MATMUL, OpKind.ATTENTION_SCORE, OpKind.SOFTMAX, OpKind.ATTENTION_CONTEXT,
             OpKind.ELEMENTWISE)

register_component(ComponentKind(
    name="duplex", spec=LogicPIMSpec, role="pim",
    summary="Duplex Logic-PIM: processing units on the HBM logic die fed by added TSVs (low-Op/B "
            "ops: GQA attention, MoE experts)",
    op_costs={k.value: _op_cost for k in PIM_KINDS},
    area_mm2=_area, static_power_w=_static_power, energy_buckets=("pim", "dram"),
    check_cases=_check_case, check_unit=lambda datapath: "duplex"))
