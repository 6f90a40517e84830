"""SAT-style N:M sparse training accelerator (Fang, Sun, Zhou, Wang, "Efficient N:M Sparse DNN
Training Using Algorithm, Architecture, and Dataflow Co-Design", IEEE TCAD 2023, arXiv 2309.13015):
a systolic array that runs the GEMMs of a training step dense or N:M sparse, a vector unit for
the rest, and DRAM holding the model, its gradients and the saved activations.

GEMM view of each step of a conv (groups g; npix = batch x out_h x out_w; window w = k_h x k_w;
the same MACs in each step, workloads/training.py):
- forward:        out[npix, out_c/g] = X_col[npix, w in_c/g] @ W[w in_c/g, out_c/g]       (K = w in_c/g)
- input gradient: dX_col[npix, w in_c/g] = dY[npix, out_c/g] @ W^T (then col2im)          (K = out_c/g)
- weight gradient: dW[w in_c/g, out_c/g] = X_col^T[w in_c/g, npix] @ dY[npix, out_c/g]      (K = npix)
and for a fully connected layer x[m, k] W[k, n]: forward (m, n, k), input gradient (m, k, n),
weight gradient (k, n, m), each `groups` / `count` times.

N:M sparsity (an op's `nm`, set by the training graph for bidirectionally pruned weights, SAT's
BDWP: the forward pass uses W pruned N:M along its K, the backward pass W^T pruned N:M along its
K, so both GEMMs that read weights skip the pruned ones): a sparse datapath stores only the N kept
values of each group of M along K plus their indices and selects the matching activations
(hw/kernels/sparse.py is the functional model, `--check` runs it), so the GEMM's reduction is
K x N / M long. The weight gradient is dense (it reads activations and output gradients only).

Cycles of one GEMM: the systolic closed form of hw/systolic.py (output stationary: folds x
(rows + cols + K' - 2) per fold). Vector ops (norms, pooling, adds, the update): FLOPs /
`vector_flops_per_cycle`. Every op's bytes cross DRAM once (a schedule resource): a layer whose
bytes take longer than its compute is bandwidth-bound.
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from hwsim.hw.cost import OpCost
from hwsim.hw.systolic import gemm_folds_and_fold_cycles
from hwsim.spec import Spec
from hwsim.workloads.ops import Op, OpKind, TrainStep


class SATSpec(Spec):
    """`hardware.sat:` the accelerator (preset sat-vcu1525; each constant's source in the preset)."""
    rows: int = Field(gt=0, le=1024, description="systolic array rows")
    cols: int = Field(gt=0, le=1024, description="systolic array columns")
    freq_mhz: float = Field(gt=0, le=5000)
    nm_sparse: bool = Field(default=True, description="the datapath runs N:M sparse GEMMs (index-"
                            "selected activations); false: pruned weights are computed as zeros")
    vector_flops_per_cycle: float = Field(gt=0, description="norms, pooling, adds, the update")
    dram_gbps: float = Field(gt=0, description="DRAM bandwidth")
    dram_gib: float = Field(gt=0, description="DRAM capacity (hard limit for the training state)")
    onchip_kib: float = Field(gt=0, description="on-chip buffers (tiles; not checked)")
    power_w: float = Field(gt=0, description="board power while running (energy only)")
    dram_pj_per_bit: float = Field(default=20.0, gt=0, description="DRAM access energy (assumed)")
    area_mm2: float = Field(gt=0, description="area of the device (area only)")

    @property
    def cycle_ns(self) -> float:
        return 1e3 / self.freq_mhz


def gemm_shape(op: Op) -> tuple[int, int, int, int]:
    """(M, N, K, count) of the GEMM an op of a training step runs (module docstring)."""
    if op.conv is not None:
        c = op.conv
        g = c.groups
        window = c.kernel_h * c.kernel_w * (c.in_c // g)
        n_out = c.out_c // g
        if op.step == TrainStep.INPUT_GRAD:
            return c.npix, window, n_out, g
        if op.step == TrainStep.WEIGHT_GRAD:
            return window, n_out, c.npix, g
        return c.npix, n_out, window, g
    m = op.matmul
    if op.step == TrainStep.INPUT_GRAD:
        return m.m, m.k, m.n, m.count
    if op.step == TrainStep.WEIGHT_GRAD:
        return m.k, m.n, m.m, m.count
    return m.m, m.n, m.k, m.count


def gemm_cycles(spec: SATSpec, op: Op) -> tuple[float, float]:
    """(cycles, MACs computed) of a GEMM op, sparse when its weights are N:M and the datapath
    supports it."""
    m, n, k, count = gemm_shape(op)
    if op.nm is not None and spec.nm_sparse and op.step != TrainStep.WEIGHT_GRAD:
        keep, group = op.nm
        k = math.ceil(k / group) * keep
    folds, per_fold = gemm_folds_and_fold_cycles(spec.rows, spec.cols, "os", m, n, k)
    return float(np.asarray(folds * per_fold)) * count, float(m) * n * k * count


def computed_flops(spec: SATSpec, op: Op) -> float:
    """FLOPs the datapath performs for `op`: a sparse GEMM skips the pruned weights' products
    (2 x the MACs of its shortened reduction); every other op its own FLOPs. Schedules count
    these, so FLOP utilization and the roofline bound describe the work actually done."""
    if (op.conv is not None or op.matmul is not None) and op.nm is not None and spec.nm_sparse \
            and op.step != TrainStep.WEIGHT_GRAD:
        return 2.0 * gemm_cycles(spec, op)[1]
    return float(op.flops)


def sat_op_cost(spec: SATSpec, op: Op, dram) -> OpCost:
    if op.conv is not None or op.matmul is not None:
        cycles, macs = gemm_cycles(spec, op)
        roof_cycles = macs / (spec.rows * spec.cols)
        engine = "sparse_gemm" if (op.nm is not None and spec.nm_sparse and op.step != TrainStep.WEIGHT_GRAD) \
            else "systolic"
    else:
        cycles = roof_cycles = op.flops / spec.vector_flops_per_cycle
        engine = "vector"
    compute = cycles * spec.cycle_ns
    data = float(op.weight_bytes + op.act_in_bytes + op.act_out_bytes)
    roof = max(roof_cycles * spec.cycle_ns, data / dram.peak_bw_gbps)
    parts = {"compute": spec.power_w * compute * 1e-9, "dram": dram.energy_j(data)}
    return OpCost(compute_ns=compute, bytes_by_level={dram.name: data}, energy_j=sum(parts.values()),
                  roofline_ns=roof, engine=engine, energy_by_component_j=parts)


def _sat_levels(spec: SATSpec):
    from hwsim.hw.memory import MemoryLevel
    return [MemoryLevel("buffer", spec.onchip_kib * 1024.0, float("inf"), float("inf"), 0.0, on_chip=True),
            MemoryLevel("dram", spec.dram_gib * 2**30, spec.dram_gbps, spec.dram_gbps, spec.dram_pj_per_bit)]


def _sat_cost(device, op: Op, where=None) -> OpCost:
    return sat_op_cost(device.spec("sat"), op, device.level("dram"))


def _sat_check_case(datapath: str, device, op: Op, ctx):
    """`--check` of a sparse GEMM: the op's GEMM scaled down (at most 64 x 64 x 64), weights
    pruned N:M, computed from the compressed form by hw/kernels/sparse.py against the dense
    float64 product with the pruned weights."""
    if datapath != "sparse_gemm" or op.nm is None:
        return None
    from hwsim.hw.kernels import sparse
    from hwsim.hw.kernels.cases import KernelCase
    keep, group = op.nm
    m, n, k, _ = gemm_shape(op)
    m, n = min(m, 64), min(n, 64)
    k = max(group, min(k, 64) // group * group)

    def run(rng):
        a = rng.standard_normal((m, k)).astype(np.float16).astype(np.float32)
        w = rng.standard_normal((k, n)).astype(np.float16).astype(np.float32)
        pruned, _ = sparse.prune_n_m(w, keep, group)
        values, indices = sparse.compress_n_m(w, keep, group)
        ours = sparse.sparse_nm_gemm(a, values, indices, keep, group)
        return ours.astype(np.float64), a.astype(np.float64) @ pruned.astype(np.float64)
    return KernelCase(str(op.kind.value), "sat", f"{keep}:{group} sparse GEMM from values + indices",
                      "fp16 x fp16 -> fp32", "fp32", f"{m}x{k} @ {k}x{n} ({keep}:{group})", run)


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

SAT_OPS = (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.MATMUL, OpKind.POOL, OpKind.ELEMENTWISE,
           OpKind.NORM, OpKind.OPTIMIZER)

register_component(ComponentKind(
    name="sat", spec=SATSpec, role="compute",
    summary="SAT-style training accelerator: a systolic array with an N:M sparse GEMM datapath, "
            "a vector unit, DRAM",
    op_costs={k.value: _sat_cost for k in SAT_OPS},
    area_mm2=lambda spec, device, dtype: {"sat_die": spec.area_mm2},
    static_power_w=lambda spec, device, dtype: 0.0,
    energy_buckets=("compute", "dram"), memory_levels=_sat_levels,
    check_cases=_sat_check_case, check_unit=lambda datapath: "sat"))
