"""What makes the rack-scale runs cheap must not change their numbers: the GPU coster's cache of
datasheet kernels, and pack_lanes' shortcut for intervals that never overlap (issue 13, item 9).
No timing here: benchmarks/bench_scaleout.py measures."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwsim.hw.gpu import GPUCoster, ServingStack, datasheet_kernel
from hwsim.sim.trace import pack_lanes
from hwsim.validate.gpu_fidelity import preset
from hwsim.workloads.ops import MatMul, Op, OpKind


def _ops():
    gemm = Op(name="L0.up", kind=OpKind.MATMUL, layer=0, dtype="int8", flops=2.0 * 48 * 2048 * 7168,
              weight_bytes=2048 * 7168, act_in_bytes=48 * 7168, act_out_bytes=48 * 2048,
              matmul=MatMul(48, 2048, 7168))
    add = Op(name="L0.residual1", kind=OpKind.ELEMENTWISE, layer=0, dtype="bf16", flops=4096.0,
             act_in_bytes=2 * 4096 * 2, act_out_bytes=4096 * 2, elements=4096, function="add",
             residual_into="rmsnorm")
    return gemm, add


def test_cached_kernels_are_the_datasheet_kernels_of_each_op():
    """Every op gets datasheet_kernel's own answer, through the cache or not: ops that differ
    only in name and layer share one entry; a field the kernel reads (rows; whether an add is a
    residual feeding an RMSNorm, which a fused stack folds into the norm) makes a new one."""
    gpu = preset("h200-sxm")
    for stack in (ServingStack(), ServingStack(fused_elementwise=False, launch="eager")):
        coster = GPUCoster(gpu, stack)
        gemm, add = _ops()
        ops = [gemm, replace(gemm, name="L7.up", layer=7), replace(gemm, matmul=MatMul(96, 2048, 7168)),
               add, replace(add, name="L3.residual1", layer=3),
               replace(add, name="L0.other_add", residual_into="")]
        for op in ops + ops:
            assert coster.kernel(op) == datasheet_kernel(gpu, op, stack), op.name
        assert len(coster._kernels) == 4
    fused = GPUCoster(gpu, ServingStack())
    assert fused.kernel(add).launch_ns == 0 < fused.kernel(replace(add, residual_into="")).launch_ns


def test_pack_lanes_shortcut_agrees_with_the_greedy():
    """Intervals of which none overlap (touching ends and empty intervals included) take one
    lane; one overlap anywhere needs a second lane, as the greedy gives."""
    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 5, 300).astype(float)      # some empty (whole numbers: exact sums)
    gaps = rng.integers(0, 3, 300).astype(float)         # some touching
    end = np.cumsum(lengths + gaps)
    start = end - lengths
    perm = rng.permutation(300)
    assert (pack_lanes(start[perm], end[perm]) == 0).all()
    i = int(np.flatnonzero(lengths[151:] > 0)[0]) + 151
    end[i - 1] = start[i] + 0.5                       # one overlap: i starts before i - 1 ends
    lane = pack_lanes(start[perm], end[perm])
    assert lane.max() == 1 and int(lane[np.flatnonzero(perm == i)[0]]) == 1
