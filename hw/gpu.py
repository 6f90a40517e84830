"""GPU baseline: spec and cost of the ops it runs.

Matmul time follows how a GPU library actually tiles a GEMM: the output is cut into
`tile_m x tile_n` thread-block tiles, the tiles run in waves of `sms` at once, and each tile does
its whole K loop at the per-SM tensor rate, so small or skinny GEMMs pay for padding and for a
last partial wave ("wave quantization", NVIDIA Deep Learning Performance Guide, "Matrix
Multiplication Background"). Compute and memory overlap: an op takes the longer of its tiled
compute time and its bytes over the sustained bandwidth, plus a fixed per-kernel overhead.

The two efficiencies are a named fit, not tuned to any result of ours: `compute_efficiency` is
the best large-GEMM rate LLMCompass measured on an A100 (fp16 M=8192, N=K=12288: 286.9 of
312 TFLOPS = 0.92) and `bw_efficiency` the rate of its memory-bound point (M=64: 0.19 ms for
~302 MB = 1.59 TB/s of 2.039 = 0.78), both from PrincetonUniversity/LLMCompass
ae/figure5/ab/real_hardware/matmul_A100.csv. The M=1024 point of that file (1.20 ms) is held
out as a test.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hwsim.hw.cost import OpCost
from hwsim.hw.energy import energy_components_j
from hwsim.workloads.ops import Attention, Op, OpKind


class GPUSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    peak_tflops: dict[str, float] = Field(description="dense tensor-core TFLOP/s by dtype")
    vector_tflops: float = Field(gt=0, description="non-tensor FP32 TFLOP/s (vector ops)")
    hbm_bw_gbps: float = Field(gt=0)
    hbm_gib: float = Field(gt=0)
    l2_mib: float = Field(gt=0)
    sms: int = Field(gt=0)
    tile_m: int = Field(default=128, gt=0)
    tile_n: int = Field(default=128, gt=0)
    mma_m: int = Field(default=16, gt=0, description="smallest M a tensor-core MMA computes")
    compute_efficiency: float = Field(gt=0, le=1)
    bw_efficiency: float = Field(gt=0, le=1)
    kernel_overhead_us: dict[str, float] = Field(
        default_factory=dict, description="fixed time per kernel by op class (matmul, softmax, vector)")
    tdp_w: float = Field(gt=0)
    idle_power_w: float = Field(ge=0)
    hbm_pj_per_bit: float = Field(gt=0)
    die_area_mm2: float = Field(gt=0, description="GPU die area from the datasheet/whitepaper "
                                "(the device's area metric; HBM stacks not counted)")
    tech_node_nm: int | None = Field(default=None, gt=0, description="process node of the datasheet "
                                     "figures; informational only: GPU energy and area come from the "
                                     "datasheet and are never node-scaled")

    def peak(self, dtype: str) -> float:
        if dtype not in self.peak_tflops:
            raise KeyError(f"{self.name} has no tensor peak for {dtype}")
        return self.peak_tflops[dtype] * 1e12

    @property
    def sustained_bw(self) -> float:
        return self.hbm_bw_gbps * 1e9 * self.bw_efficiency

    def pj_per_flop(self, dtype: str) -> float:
        """Dynamic energy per FLOP at full tensor rate: (TDP - idle) / peak [derived]."""
        return (self.tdp_w - self.idle_power_w) / self.peak(dtype) * 1e12

    def overhead_ns(self, kind: OpKind) -> float:
        cls = {OpKind.MATMUL: "matmul", OpKind.ROUTER: "matmul", OpKind.ATTENTION_SCORE: "matmul",
               OpKind.ATTENTION_CONTEXT: "matmul", OpKind.SOFTMAX: "softmax"}.get(kind, "vector")
        return self.kernel_overhead_us.get(cls, 0.0) * 1e3


def matmul_compute_ns(gpu: GPUSpec, dtype: str, m, n, k, count=1) -> float:
    """Tiled tensor-core time: waves of tile_m x tile_n blocks, each block running its K loop at
    the per-SM rate. Broadcasts over numpy arrays (summed)."""
    tiles = -(-np.asarray(m) // gpu.tile_m) * -(-np.asarray(n) // gpu.tile_n) * count
    waves = -(-tiles // gpu.sms)
    per_tile_s = 2.0 * gpu.tile_m * gpu.tile_n * np.asarray(k) / (gpu.peak(dtype) / gpu.sms)
    return float(np.sum(waves * per_tile_s)) / gpu.compute_efficiency * 1e9


def attention_compute_ns(gpu: GPUSpec, dtype: str, attn: Attention) -> float:
    """Per-request attention on tensor cores: rows padded to the MMA height, spread over SMs."""
    rows = -(-(attn.query_array * attn.group) // gpu.mma_m) * gpu.mma_m
    flops = 2.0 * float(np.sum(rows * attn.context_array)) * attn.head_dim * attn.kv_heads
    return flops / (gpu.peak(dtype) * gpu.compute_efficiency) * 1e9


def vector_compute_ns(gpu: GPUSpec, flops: float) -> float:
    return flops / (gpu.vector_tflops * 1e12) * 1e9


def gpu_op_cost(gpu: GPUSpec, op: Op) -> OpCost:
    """Time, HBM traffic and energy of one op as one kernel on the GPU.

    Weights and KV always come from HBM; activations stay in L2 when inputs plus outputs fit in
    half of it. Dynamic energy = FLOPs x pj_per_flop ("compute": everything on the die, from the
    TDP) + HBM bytes x pJ/bit ("dram"); static power is charged per unit of makespan by the
    metrics."""
    l2_resident = op.act_in_bytes + op.act_out_bytes <= gpu.l2_mib * 2**20 / 2
    act = 0 if l2_resident else op.act_in_bytes + op.act_out_bytes
    hbm = float(op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes + act)
    if op.matmul is not None:
        mm = op.matmul
        compute = matmul_compute_ns(gpu, op.dtype, mm.m, mm.n, mm.k, mm.count)
        peak, engine = gpu.peak(op.dtype), "tensor"
    elif op.attention is not None:
        compute = attention_compute_ns(gpu, op.dtype, op.attention)
        peak, engine = gpu.peak(op.dtype), "tensor"
    else:
        compute = vector_compute_ns(gpu, op.flops)
        peak, engine = gpu.vector_tflops * 1e12, "vector"
    parts = energy_components_j(compute=op.flops * gpu.pj_per_flop(op.dtype),
                                dram=hbm * 8 * gpu.hbm_pj_per_bit)
    roofline = max(op.flops / peak * 1e9, hbm / gpu.hbm_bw_gbps)
    return OpCost(compute_ns=compute, bytes_by_level={"hbm": hbm}, energy_j=sum(parts.values()),
                  roofline_ns=roofline, latency_ns=gpu.overhead_ns(op.kind), engine=engine,
                  energy_by_component_j=parts)


# ---- registration ------------------------------------------------------------------------------

def _gpu_levels(spec: GPUSpec):
    """The GPU's HBM: its background power is inside `idle_power_w`, its stacks are not counted
    in `die_area_mm2`."""
    from hwsim.hw.memory import MemoryLevel
    return [MemoryLevel("hbm", spec.hbm_gib * 2**30, spec.hbm_bw_gbps, spec.sustained_bw / 1e9,
                        spec.hbm_pj_per_bit)]


def _gpu_check_case(datapath: str, device, op, ctx):
    from hwsim.hw.kernels.cases import op_case
    return op_case(_gpu_check_unit(datapath), device.hardware, op, ctx)


def _gpu_check_unit(datapath: str) -> str:
    return "gpu"


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

register_component(ComponentKind(
    name="gpu", spec=GPUSpec, role="compute",
    summary="GPU from its datasheet: tiled tensor-core GEMMs, HBM, idle power",
    # no conv kinds: gpu_op_cost has no convolution model
    op_costs={k.value: lambda device, op, where: gpu_op_cost(device.spec("gpu"), op)
              for k in OpKind if not k.is_collective
              and k not in (OpKind.CONV, OpKind.DEPTHWISE_CONV)},
    area_mm2=lambda spec, device, dtype: {"gpu_die": float(spec.die_area_mm2)},
    static_power_w=lambda spec, device, dtype: spec.idle_power_w,
    energy_buckets=("compute", "dram"), check_cases=_gpu_check_case, check_unit=_gpu_check_unit,
    memory_levels=_gpu_levels))
