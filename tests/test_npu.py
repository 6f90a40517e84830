"""The systolic closed form against SCALE-Sim's reports and a fold-by-fold reference."""
import itertools

import pytest
from hypothesis import given, settings, strategies as st

from hwsim.hw.memory import MemorySpec
from hwsim.hw.npu import NPUSpec, gemm_cycles, npu_op_cost
from hwsim.workloads.ops import MatMul, Op, OpKind


def npu(rows=32, cols=32, dataflow="ws", cores=1, sram_kib=1024, pipelined_folds=False):
    return NPUSpec(rows=rows, cols=cols, cores=cores, freq_ghz=1.0, dataflow=dataflow,
                   sram_kib=sram_kib, vector_units=1, vector_lanes=32, pipelined_folds=pipelined_folds)


# SCALE-Sim v2's committed COMPUTE_REPORT for GEMM M=256 N=128 K=256 on 32x32 (stall-free):
# OS 10,175, WS 11,199, IS 14,207 cycles (research note systolic_mcu_dse_anchors.md section 10).
@pytest.mark.parametrize("dataflow,cycles", [("os", 10_175), ("ws", 11_199), ("is", 14_207)])
def test_gemm_matches_scalesim_report(dataflow, cycles):
    assert gemm_cycles(npu(dataflow=dataflow), m=256, n=128, k=256, scalesim_convention=True) == cycles
    assert gemm_cycles(npu(dataflow=dataflow), m=256, n=128, k=256) == cycles + 1


def reference_cycles(rows, cols, dataflow, m, n, k):
    """Walk every fold, as SCALE-Sim's demand matrices do, and add up its cycles."""
    spatial_r, spatial_c, t = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}[dataflow]
    total = 0
    for r0, c0 in itertools.product(range(0, spatial_r, rows), range(0, spatial_c, cols)):
        preload = 0 if dataflow == "os" else rows      # the whole array is loaded/skewed
        total += preload + rows + cols + t - 2
    return total


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 300), n=st.integers(1, 300), k=st.integers(1, 300),
       dataflow=st.sampled_from(["ws", "os", "is"]), rows=st.sampled_from([4, 8, 32]))
def test_closed_form_equals_fold_walk(m, n, k, dataflow, rows):
    assert gemm_cycles(npu(rows=rows, cols=rows, dataflow=dataflow), m, n, k) == \
        reference_cycles(rows, rows, dataflow, m, n, k)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 2000), n=st.integers(1, 2000), k=st.integers(1, 2000),
       dataflow=st.sampled_from(["ws", "os", "is"]), cores=st.integers(1, 4))
def test_gemm_never_beats_peak(m, n, k, dataflow, cores):
    spec = npu(dataflow=dataflow, cores=cores)
    assert gemm_cycles(spec, m, n, k) * spec.rows * spec.cols * cores >= m * n * k


def test_more_cores_never_slower():
    for cores in (1, 2, 4):
        assert gemm_cycles(npu(cores=cores * 2), 512, 512, 512) <= gemm_cycles(npu(cores=cores), 512, 512, 512)


def test_op_cost_respects_roofline_and_streams_weights():
    spec = npu(rows=128, cols=128, sram_kib=4096)
    mem = MemorySpec(channels=8, channel_bw_gbps=32, capacity_gib=8)
    op = Op(name="x", kind=OpKind.MATMUL, layer=0, dtype="fp16", flops=2.0 * 64 * 4096 * 4096,
            weight_bytes=4096 * 4096 * 2, act_in_bytes=64 * 4096 * 2, act_out_bytes=64 * 4096 * 2,
            matmul=MatMul(64, 4096, 4096))
    c = npu_op_cost(spec, mem, op)
    assert c.bytes_by_level["hbm"] == op.weight_bytes        # activations fit the scratchpad
    small = npu_op_cost(npu(rows=128, cols=128, sram_kib=512), mem, op)
    assert small.bytes_by_level["hbm"] == op.memory_bytes       # they spill when they do not
    assert max(c.compute_ns, c.bytes_by_level["hbm"] / mem.peak_bw_gbps) >= c.roofline_ns
    assert c.energy_j > 0


def pipelined_walk(rows, cols, folds, streamed, preload):
    """Slow reference for pipelined folds: fold i streams its T rows once fold i-1's rows are
    in and its own stationary tile has shifted in; that shift (R cycles) starts when fold i-1
    starts streaming (double-buffered registers). The GEMM ends when the last fold drains."""
    shift_end = preload                      # the first tile shifts in before anything streams
    stream_end = 0
    for _ in range(folds):
        start = max(stream_end, shift_end)
        stream_end = start + streamed
        shift_end = start + rows
    return stream_end + rows + cols - 2


@settings(max_examples=200, deadline=None)
@given(rows=st.sampled_from([4, 8, 32]), m=st.integers(1, 300), n=st.integers(1, 300),
       k=st.integers(1, 300), dataflow=st.sampled_from(["ws", "os", "is"]))
def test_pipelined_folds_equal_a_fold_by_fold_walk(rows, m, n, k, dataflow):
    spec = npu(rows=rows, cols=rows, dataflow=dataflow, pipelined_folds=True)
    folds = -(-{"ws": k, "os": m, "is": k}[dataflow] // rows) * -(-{"ws": n, "os": n, "is": m}[dataflow] // rows)
    streamed = {"ws": m, "os": k, "is": n}[dataflow]
    preload = 0 if dataflow == "os" else rows
    assert gemm_cycles(spec, m, n, k) == pipelined_walk(rows, rows, folds, streamed, preload)


def test_pipelined_folds_never_slower_and_hide_the_preload_when_streams_are_long():
    plain, piped = npu(), npu(pipelined_folds=True)
    for m, n, k in [(1, 4096, 4096), (256, 4096, 4096), (2048, 1024, 1024), (7, 7, 7)]:
        assert gemm_cycles(piped, m, n, k) <= gemm_cycles(plain, m, n, k)
    # M = 4096 rows per fold: per-fold overhead vanishes, utilization -> 1.
    r = piped.rows
    cycles = gemm_cycles(piped, 4096, 4 * r, 4 * r)
    assert 4096 * 16 / cycles > 0.99
