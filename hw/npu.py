"""Systolic-array NPU: spec and cost of the ops it runs.

GEMM timing is SCALE-Sim's stall-free closed form (Samajdar et al., "A Systematic Methodology for
Characterizing Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020): an operand matrix
pair is cut into folds that fit the R x C array; each fold costs

    WS, IS:  2R + C + T - 2   (R cycles of stationary preload, R + C - 2 of skew, T streamed)
    OS:       R + C + T - 2   (no preload; outputs drain under the next fold's fill)

where, for out[M, N] = A[M, K] B[K, N]: WS maps K x N onto the array and streams T = M rows; OS
maps M x N and streams T = K; IS maps K x M and streams T = N. SCALE-Sim reports one cycle fewer
than this product (its issues #60 and #125); `scalesim_convention=True` subtracts that cycle.
The ONNXim/NeuPIMs core uses the same per-tile form (H + W - 2 + max(T, 4) plus H of preload).
Folds are spread over `cores` identical arrays.

`pipelined_folds=True` models an array whose next fold's stationary operand shifts in while the
current fold streams (double-buffered PE registers) and whose wavefronts follow one another
without draining in between. A fold then occupies the array for max(T, R) cycles — T rows to
stream in, R cycles to shift the next stationary tile in (or, for OS, the finished outputs out) —
so F folds on one array take  preload + (F - 1) max(T, R) + T + R + C - 2  cycles, the first
preload (R for WS/IS, 0 for OS) and the last fold's fill/drain paid once per GEMM.
Sources: TPUv1 "holds one 64 KiB tile of weights plus one for double-buffering (to hide the 256
cycles it takes to shift a tile in)" (Jouppi et al., ISCA 2017, section 2); the NeuPIMs/ONNXim
core issues each GEMM tile at the previous tile's start + max(size, 4) cycles, or + H for a
weight preload ("Preload can be hided", NeuPIMSystolicWS::issue_ex_inst).
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from hwsim.hw.cost import OpCost
from hwsim.hw.energy import add_pj, energy_components_j, mac_pj, sram_pj_per_byte
from hwsim.hw.systolic import gemm_folds_and_fold_cycles
from hwsim.hw.technology import TechNodeNm
from hwsim.spec import Spec
from hwsim.workloads.ops import Attention, Op


class NPUSpec(Spec):
    cores: int = Field(default=1, gt=0)
    rows: int = Field(gt=0, description="systolic array rows (R)")
    cols: int = Field(gt=0, description="systolic array columns (C)")
    freq_ghz: float = Field(gt=0)
    dataflow: Literal["ws", "os", "is"] = "ws"
    pipelined_folds: bool = Field(default=False, description="double-buffered stationary operand, "
                                  "folds issued back to back (see module docstring)")
    sram_kib: float = Field(gt=0, description="scratchpad per core, double-buffered")
    vector_units: int = Field(gt=0, description="per core")
    vector_lanes: int = Field(gt=0, description="lanes per vector unit, one op per lane per cycle")
    mac_energy_pj: float | None = Field(default=None, gt=0,
                                        description="pJ per MAC at this node; default: Horowitz 45 nm "
                                        "for the dtype, scaled to tech_node_nm")
    sram_energy_pj_per_byte: float | None = Field(default=None, gt=0,
                                                  description="default: Horowitz 45 nm by SRAM size, "
                                                  "scaled to tech_node_nm")
    static_power_w: float | None = Field(default=None, ge=0, description="leakage power; default: "
                                         "the counted area's leakage (hwsim.hw.area.leakage_power_w)")
    tech_node_nm: TechNodeNm = Field(default=45, description="process node; energy and area scale from the "
                              "45 nm tables by Stillmaker & Baas (hwsim.hw.technology), table nodes only")

    @property
    def peak_flops(self) -> float:
        return 2.0 * self.rows * self.cols * self.cores * self.freq_ghz * 1e9

    @property
    def vector_flops(self) -> float:
        return float(self.vector_units * self.vector_lanes * self.cores) * self.freq_ghz * 1e9

    @property
    def sram_bytes(self) -> float:
        return self.sram_kib * 1024.0 * self.cores

    def mac_pj(self, dtype: str) -> float:
        return self.mac_energy_pj or mac_pj(dtype, self.tech_node_nm)

    def add_pj(self, dtype: str) -> float:
        """Energy of one vector-unit op (an add) at this node."""
        return add_pj(dtype, self.tech_node_nm)

    def sram_pj_per_byte(self) -> float:
        return self.sram_energy_pj_per_byte or sram_pj_per_byte(self.sram_kib * 1024.0, self.tech_node_nm)


def pipelined_fold_cycles(rows: int, cols: int, dataflow: str, m, n, k):
    """Folds, cycles per fold and the once-per-GEMM cycles when folds are pipelined."""
    folds, _ = gemm_folds_and_fold_cycles(rows, cols, dataflow, m, n, k)
    t = np.asarray({"ws": m, "os": k, "is": n}[dataflow])
    per_fold = np.maximum(t, rows)
    once = (0 if dataflow == "os" else rows) + rows + cols - 2 - (per_fold - t)
    return folds, per_fold, once


def gemm_cycles(spec: NPUSpec, m: int, n: int, k: int, count: int = 1,
                scalesim_convention: bool = False) -> int:
    """Stall-free cycles of `count` GEMMs of one shape on the NPU (folds spread over cores)."""
    if spec.pipelined_folds:
        folds, per_fold, once = pipelined_fold_cycles(spec.rows, spec.cols, spec.dataflow, m, n, k)
        return math.ceil(int(folds) * count / spec.cores) * int(per_fold) + once
    folds, per_fold = gemm_folds_and_fold_cycles(spec.rows, spec.cols, spec.dataflow, m, n, k)
    total_folds = int(folds) * count
    cycles = math.ceil(total_folds / spec.cores) * int(per_fold)
    return cycles - 1 if scalesim_convention else cycles


def attention_cycles_systolic(spec: NPUSpec, attn: Attention, context: bool) -> float:
    """Per-request attention GEMMs on the array: for each KV head, score is
    [g*q, d] x [d, L]; context is [g*q, L] x [L, d] (g = query heads per KV head)."""
    q = attn.query_array * attn.group
    L = attn.context_array
    d = attn.head_dim
    m, n, k = (q, d, L) if context else (q, L, d)
    if spec.pipelined_folds:    # the per-request GEMMs follow one another through the array
        folds, per_fold, once = pipelined_fold_cycles(spec.rows, spec.cols, spec.dataflow, m, n, k)
        return float(np.sum(folds * per_fold)) * attn.kv_heads / spec.cores + float(np.max(once))
    folds, per_fold = gemm_folds_and_fold_cycles(spec.rows, spec.cols, spec.dataflow, m, n, k)
    total = float(np.sum(folds * per_fold)) * attn.kv_heads
    return total / spec.cores


def vector_cycles(spec: NPUSpec, flops: float) -> float:
    """Vector unit: one operation per lane per cycle across all units and cores."""
    return flops / (spec.vector_units * spec.vector_lanes * spec.cores)


def _activations_on_chip(spec: NPUSpec, op: Op) -> bool:
    """Activations stay in the scratchpad when an op's inputs and outputs fit in half of it
    (the other half holds the next tile: double buffering)."""
    return op.act_in_bytes + op.act_out_bytes <= spec.sram_bytes / 2


def _sram_bytes_gemm(spec: NPUSpec, op: Op) -> float:
    """Scratchpad traffic of a GEMM: each operand is read once per fold of the other
    dimension it is not stationary in, outputs written once (weight-stationary: inputs re-read
    per column fold; output-stationary: both operands re-read; input-stationary: weights re-read)."""
    mm = op.matmul
    col_folds = -(-mm.n // spec.cols)
    row_folds_m = -(-mm.m // spec.rows)
    if spec.dataflow == "ws":
        reads = op.weight_bytes + op.act_in_bytes * col_folds
    elif spec.dataflow == "os":
        reads = op.act_in_bytes * col_folds + op.weight_bytes * row_folds_m
    else:
        reads = op.weight_bytes * -(-mm.m // spec.cols) + op.act_in_bytes
    return float(reads + op.act_out_bytes)


_SAME = object()


def npu_op_cost(spec: NPUSpec, memory, op: Op, weights_from=_SAME,
                activations_on_chip: bool | None = None) -> OpCost:
    """Time, traffic and energy of one op on the NPU, operands streamed from `memory` (a
    `MemorySpec` or `MemoryLevel`: its `name`, `peak_bw_gbps` and `energy_pj_per_bit`).

    Matmuls run on the array (closed form above); attention runs per request on the array or on
    the vector units, whichever the closed forms say is faster (a compiler would choose so);
    norms, softmax, pooling and elementwise ops run on the vector units; convolutions run on the
    array as SCALE-Sim's im2col GEMMs (``hwsim.hw.systolic``). Weights and KV always come from
    memory; activations only when they do not fit the scratchpad. `weights_from`: the level
    holding the weights when it is not `memory` (a slower tier they spilled to), or None for
    weights in metal (no weight traffic). Levels are separate buses: the roofline takes the
    slowest one. `activations_on_chip`: False for an unfused op, whose inputs and outputs
    round-trip `memory` whatever their size (mappers/npu_only.py, `fusion: unfused`); None: the
    scratchpad rule above."""
    cycle_ns = 1.0 / spec.freq_ghz
    on_chip = _activations_on_chip(spec, op) if activations_on_chip is None else activations_on_chip
    act_bytes = 0 if on_chip else op.act_in_bytes + op.act_out_bytes
    if weights_from is _SAME or weights_from is memory:
        hbm = op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes + act_bytes
        levels = {memory.name: (hbm, memory)}
    else:
        hbm = op.kv_read_bytes + op.kv_write_bytes + act_bytes
        levels = {memory.name: (hbm, memory)}
        if weights_from is not None and op.weight_bytes:
            levels[weights_from.name] = (op.weight_bytes, weights_from)
    macs = op.flops / 2.0
    if op.matmul is not None:
        mm = op.matmul
        compute = gemm_cycles(spec, mm.m, mm.n, mm.k, mm.count) * cycle_ns
        sram = _sram_bytes_gemm(spec, op)
        engine = "systolic"
        energy_pj = macs * spec.mac_pj(op.dtype)
    elif op.attention is not None:
        systolic = attention_cycles_systolic(spec, op.attention, op.kind.value == "attention_context")
        vector = vector_cycles(spec, op.flops)
        engine = "systolic" if systolic <= vector else "vector"
        compute = min(systolic, vector) * cycle_ns
        sram = float(op.kv_read_bytes + op.act_in_bytes + op.act_out_bytes)
        energy_pj = macs * spec.mac_pj(op.dtype)
    elif op.conv is not None:   # conv / depthwise conv: SCALE-Sim's im2col GEMMs (hw/systolic.py)
        from hwsim.hw.systolic import conv_compute_cycles, conv_sram_bytes
        compute = conv_compute_cycles(spec, op.conv) * cycle_ns
        sram = conv_sram_bytes(spec, op)
        engine = "systolic"
        energy_pj = macs * spec.mac_pj(op.dtype)
    else:
        compute = vector_cycles(spec, op.flops) * cycle_ns
        sram = float(op.act_in_bytes + op.act_out_bytes + op.weight_bytes)
        engine = "vector"
        energy_pj = op.flops * spec.add_pj(op.dtype)
    if len(levels) == 1:
        dram_pj = hbm * 8 * memory.energy_pj_per_bit
        memory_ns = hbm / memory.peak_bw_gbps
    else:
        dram_pj = sum(b * 8 * lv.energy_pj_per_bit for b, lv in levels.values())
        memory_ns = max(b / lv.peak_bw_gbps for b, lv in levels.values())
    parts = energy_components_j(compute=energy_pj, sram=sram * spec.sram_pj_per_byte(), dram=dram_pj)
    peak = spec.peak_flops if engine == "systolic" else spec.vector_flops
    roofline = max(op.flops / peak * 1e9, memory_ns)
    return OpCost(compute_ns=compute, bytes_by_level={**{n: float(b) for n, (b, _) in levels.items()},
                                                      "sram": sram},
                  energy_j=sum(parts.values()), roofline_ns=roofline, engine=engine,
                  energy_by_component_j=parts)


# ---- registration ------------------------------------------------------------------------------

def _npu_area(spec: NPUSpec, device, dtype: str) -> dict[str, float]:
    from hwsim.hw.area import npu_area_breakdown_mm2
    return npu_area_breakdown_mm2(spec, dtype)


def _npu_static_power(spec: NPUSpec, device, dtype: str) -> float:
    """`static_power_w` when given, else the leakage of the counted area (hwsim.hw.area)."""
    if spec.static_power_w is not None:
        return spec.static_power_w
    from hwsim.hw.area import leakage_power_w
    return leakage_power_w(sum(_npu_area(spec, device, dtype).values()))


def _npu_levels(spec: NPUSpec):
    """The scratchpad: an on-chip level (its area and leakage are the NPU's)."""
    from hwsim.hw.memory import MemoryLevel
    per_bit = spec.sram_pj_per_byte() / 8
    return [MemoryLevel("sram", spec.sram_bytes, float("inf"), float("inf"), per_bit, on_chip=True)]


def _npu_cost(device, op: Op, where) -> OpCost:
    return npu_op_cost(device.spec("npu"), where.activations, op, weights_from=where.weights)


def _npu_check_case(datapath: str, device, op, ctx):
    from hwsim.hw.kernels.cases import op_case
    return op_case(_npu_check_unit(datapath), device.hardware, op, ctx)


def _npu_check_unit(datapath: str) -> str:
    return f"npu/{datapath}"


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402
from hwsim.workloads.ops import OpKind  # noqa: E402

register_component(ComponentKind(
    name="npu", spec=NPUSpec, role="compute",
    summary="systolic-array NPU with vector units and a scratchpad (SCALE-Sim closed forms)",
    op_costs={k.value: _npu_cost for k in OpKind if not k.is_collective},
    area_mm2=_npu_area, static_power_w=_npu_static_power,
    energy_buckets=("compute", "sram", "dram"), check_cases=_npu_check_case, check_unit=_npu_check_unit,
    memory_levels=_npu_levels))
