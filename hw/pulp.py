"""PULP cluster: 8 worker RISC-V cores (+ 1 cluster controller that drives the DMA and does not
compute) sharing FPUs with FP32 FMA and 2-way FP16 SIMD, a shared L1 TCDM and an L2 behind the
cluster DMA — the target of PULP-TrainLib's training kernels (Nadalini et al., SAMOS 2022 and
"Reduced Precision Floating-Point Optimization for Deep Neural Network On-Device Learning on
MicroControllers", arXiv 2305.19167, 2023).

Time of an op on the cluster, in cluster cycles (nothing here comes from the validation targets):
- MACs of a conv / depthwise conv / FC (forward, input gradient or weight gradient, the same
  MAC count each; workloads/training.py) run as PULP-TrainLib's matrix multiplications:
  MACs / (fpus x lanes(dtype) x efficiency(kind)), with lanes 1 for FP32 (one FMA per FPU per
  cycle) and `fp16_simd_lanes` for FP16 (vfmac.h on packed halves). `matmul_efficiency`: the
  share of the FPU peak PULP-TrainLib's matmul reaches (the preset cites its source);
  `depthwise_efficiency`: the same for depthwise kernels (per-channel matmuls of k*k, no reuse);
- shape transforms, which do not use the FPU and are the same per element in FP32 and FP16:
  PULP-TrainLib runs a conv as im2col + matmul (forward and weight gradient: an im2col of the
  input, out_h x out_w x k_h x k_w x in_c/groups elements; input gradient: an im2col of the
  output gradient, in_h x in_w x k_h x k_w x out_c/groups, plus the filters flipped and
  transposed, one move per weight); 1x1 stride-1 convs and FC layers need no im2col (their
  input is the matrix; the transposes of the gradient steps are counted, one move per element of
  the transposed operand). Moves run at `shape_elements_per_core_cycle` on each worker core;
- attention products (Q K^T, P V and their gradients, Transformer steps: workloads/training.py)
  run as matmuls too, at `matmul_efficiency`, each moving one operand (a transpose: assumed);
- vector ops (norms, softmax, activations, pooling, residual adds, gradient sums, embedding
  gradients, the optimizer): FLOPs /
  (fpus x lanes(dtype) x `vector_efficiency`).
The op takes at least its bytes over the L1 bandwidth (the cluster is busy for the longer of the
two); the roofline is the FPU peak for FLOPs and the L1 bandwidth for bytes (an op can never beat it).

Bytes: every op's operands are read from and its results written to L1 once (L1 is inside the
cluster: an on-chip level, its bandwidth in the op's time, its energy charged), and the same bytes
cross the cluster DMA from/to L2 once (PULP-TrainLib's tiling keeps the model and the saved
activations in L2 and brings each layer's tiles into L1 by DMA; the DMA is a schedule resource
here, so a layer whose bytes take longer on it than its compute is bounded by it).
"""
from __future__ import annotations

from pydantic import Field

from hwsim.hw.cost import OpCost
from hwsim.spec import Spec
from hwsim.workloads.ops import Op, OpKind, TrainStep

SIMD_DTYPES = ("fp16", "bf16")


class PulpClusterSpec(Spec):
    """`hardware.pulp:` a PULP cluster (presets: pulp-vega; each constant's source is in the preset)."""
    worker_cores: int = Field(default=8, gt=0, le=64, description="cores that compute (the +1 "
                              "cluster controller drives the DMA and is not counted)")
    freq_mhz: float = Field(gt=0, le=2000, description="cluster clock")
    fpus: int = Field(gt=0, le=64, description="FPUs shared by the worker cores")
    fp16_simd_lanes: int = Field(default=2, gt=0, le=8, description="FP16 MACs per FPU per cycle "
                                 "(packed-SIMD vfmac.h on two halves)")
    l1_kib: float = Field(gt=0, description="shared L1 TCDM (tiles of the running layer)")
    l2_kib: float = Field(gt=0, description="L2 SRAM: weights, gradients, optimizer state and the "
                          "activations saved for the backward pass (hard limit)")
    l1_bytes_per_cycle: float = Field(gt=0, description="L1 TCDM bandwidth (banks x word)")
    dma_bytes_per_cycle: float = Field(gt=0, description="cluster DMA bandwidth L2 <-> L1")
    matmul_efficiency: float = Field(gt=0, le=1, description="share of the FPU peak PULP-TrainLib's "
                                     "matmul reaches on conv / pointwise / FC layers")
    depthwise_efficiency: float = Field(gt=0, le=1, description="the same for depthwise convs")
    vector_efficiency: float = Field(default=0.5, gt=0, le=1, description="share of the FPU peak "
                                     "of norms, pooling, adds and the optimizer (assumed: one "
                                     "load per operation)")
    shape_elements_per_core_cycle: float = Field(default=0.5, gt=0, le=4, description="im2col / "
                                                 "transpose moves per core per cycle (assumed: a "
                                                 "load and a store per element)")
    run_power_mw: float = Field(gt=0, description="cluster power while computing (energy only)")
    l1_pj_per_bit: float = Field(default=1.0, gt=0, description="L1 access energy (assumed)")
    l2_pj_per_bit: float = Field(default=2.0, gt=0, description="L2 access energy (assumed)")
    area_mm2: float = Field(gt=0, description="the SoC die (area only)")

    @property
    def cycle_ns(self) -> float:
        return 1e3 / self.freq_mhz

    def lanes(self, dtype: str) -> int:
        return self.fp16_simd_lanes if dtype in SIMD_DTYPES else 1

    def peak_macs_per_cycle(self, dtype: str) -> float:
        return float(self.fpus * self.lanes(dtype))

    @property
    def l1_bytes(self) -> float:
        return self.l1_kib * 1024.0

    @property
    def l2_bytes(self) -> float:
        return self.l2_kib * 1024.0


def op_macs(op: Op) -> float:
    """MACs of a conv / depthwise conv / FC / attention product in any training step (FLOPs / 2);
    0 otherwise."""
    return op.flops / 2.0 if (op.conv is not None or op.matmul is not None or op.attention is not None) else 0.0


def shape_moves(op: Op) -> float:
    """Elements moved by the im2col / transposes that PULP-TrainLib runs before the matmul of
    `op` (module docstring); 0 for vector ops."""
    c = op.conv
    if c is not None:
        pointwise = c.kernel_h == c.kernel_w == 1 and c.stride == 1 and c.padding == 0
        window = c.kernel_h * c.kernel_w
        if op.step == TrainStep.INPUT_GRAD:
            flip = c.weight_count
            if pointwise:                              # dW^T: the weights transposed
                return float(flip)
            return float(c.batch * c.in_h * c.in_w * window * (c.out_c // c.groups) + flip)
        if pointwise:
            # forward: the input is the matrix; weight gradient: the input transposed
            return 0.0 if op.step == TrainStep.FORWARD else float(c.batch * c.in_h * c.in_w * c.in_c)
        return float(c.npix * window * (c.in_c // c.groups))
    if op.attention is not None:
        # assumed: each attention product (Q K^T, P V and their gradients) moves one operand once,
        # the transposed one, counted as the op's input activations (PULP-TrainLib's MHSA runs
        # them as matmuls on transposed copies; its layout was not read)
        return float(op.act_in_bytes // op.dtype_bytes)
    if op.matmul is not None:
        m = op.matmul
        if op.step == TrainStep.INPUT_GRAD:
            return float(m.k * m.n * m.count)          # W^T
        if op.step == TrainStep.WEIGHT_GRAD:
            return float(m.m * m.k * m.count)          # x^T
    return 0.0


def pulp_op_cost(spec: PulpClusterSpec, op: Op, l1_level, l2_level) -> OpCost:
    """Time, bytes per level and energy of `op` on the cluster (module docstring)."""
    macs = op_macs(op)
    peak = spec.peak_macs_per_cycle(op.dtype)
    if macs:
        eff = spec.depthwise_efficiency if op.kind == OpKind.DEPTHWISE_CONV else spec.matmul_efficiency
        fpu_cycles = macs / (peak * eff)
        moves = shape_moves(op) / (spec.worker_cores * spec.shape_elements_per_core_cycle)
        cycles = fpu_cycles + moves
        roof_cycles = macs / peak
        engine = "matmul"
    else:
        # vector ops: one FLOP per lane per cycle at the vector efficiency
        cycles = op.flops / (peak * spec.vector_efficiency)
        roof_cycles = op.flops / peak
        engine = "vector"
    data = float(op.weight_bytes + op.act_in_bytes + op.act_out_bytes + op.kv_read_bytes)
    l1_cycles = data / spec.l1_bytes_per_cycle        # the TCDM serves the cores' loads and stores
    compute = max(cycles, l1_cycles) * spec.cycle_ns
    roof = max(roof_cycles, l1_cycles) * spec.cycle_ns
    parts = {"compute": spec.run_power_mw * 1e-3 * compute * 1e-9,
             "sram": l1_level.energy_j(data) + l2_level.energy_j(data)}
    return OpCost(compute_ns=compute, bytes_by_level={l2_level.name: data},
                  energy_j=sum(parts.values()), roofline_ns=roof, engine=engine,
                  energy_by_component_j=parts)


# ---- registration ------------------------------------------------------------------------------

def _pulp_levels(spec: PulpClusterSpec):
    from hwsim.hw.memory import MemoryLevel
    gbps = lambda per_cycle: per_cycle * spec.freq_mhz * 1e-3   # noqa: E731 (bytes/ns = GB/s)
    return [MemoryLevel("l1", spec.l1_bytes, gbps(spec.l1_bytes_per_cycle), gbps(spec.l1_bytes_per_cycle),
                        spec.l1_pj_per_bit, on_chip=True),
            MemoryLevel("l2", spec.l2_bytes, gbps(spec.dma_bytes_per_cycle), gbps(spec.dma_bytes_per_cycle),
                        spec.l2_pj_per_bit)]


def _pulp_cost(device, op: Op, where=None) -> OpCost:
    return pulp_op_cost(device.spec("pulp"), op, device.level("l1"), device.level("l2"))


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

PULP_OPS = (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.MATMUL, OpKind.POOL, OpKind.ELEMENTWISE,
            OpKind.NORM, OpKind.OPTIMIZER, OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT,
            OpKind.SOFTMAX, OpKind.EMBEDDING)

register_component(ComponentKind(
    name="pulp", spec=PulpClusterSpec, role="compute",
    summary="PULP cluster (8+1 RISC-V cores, shared FPUs with FP16 SIMD, L1 TCDM, L2): "
            "PULP-TrainLib's training kernels",
    op_costs={k.value: _pulp_cost for k in PULP_OPS},
    area_mm2=lambda spec, device, dtype: {"pulp_soc": spec.area_mm2},
    static_power_w=lambda spec, device, dtype: 0.0,
    energy_buckets=("compute", "sram"), memory_levels=_pulp_levels))
