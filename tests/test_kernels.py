"""Functional kernels (hw/kernels) against numpy float64 on fresh random data.

Every test draws its operands from an unseeded generator, so each run checks new data; the
tolerances are the ones `hwsim run --check` uses (hw/kernels/numerics.py says why they hold).
A few tests pin exact, hand-computed values where the order of the sums is the point.
"""
import numpy as np
import pytest

from hwsim.hw.kernels import attention, collective, conv, pim, sparse, systolic, vector
from hwsim.hw.kernels.numerics import (FORMATS, TOLERANCE, max_rel_error, quantize, random_operand,
                                       round_to)

FP32_TOL = TOLERANCE["fp32"]
FP16_TOL = TOLERANCE["fp16"]


@pytest.fixture
def rng():
    seed = np.random.SeedSequence().entropy
    print(f"seed {seed}")            # shown on failure, to replay
    return np.random.default_rng(seed)


def f64(x):
    return np.asarray(x, dtype=np.float64)


# --------------------------------------------------------------------------- number formats

def test_fp16_rounding_matches_numpy_including_subnormals_and_overflow(rng):
    x = rng.standard_normal(20_000) * 10.0 ** rng.integers(-9, 6, 20_000)
    x = np.concatenate([x, [65504.0, 65519.0, 65520.0, -70000.0, 2.0 ** -25, 3 * 2.0 ** -26]])
    ours = np.array([round_to(v, FORMATS["fp16"].code) for v in x])
    with np.errstate(over="ignore"):
        assert np.array_equal(ours, x.astype(np.float16).astype(np.float64))


def test_bf16_rounding_is_round_to_nearest_even_on_the_float32_bits(rng):
    """Independent reference: add 0x7FFF plus the lowest kept bit, drop 16 bits (RNE)."""
    x = (rng.standard_normal(20_000) * 10.0 ** rng.integers(-30, 30, 20_000)).astype(np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rne = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
    assert np.array_equal(quantize(x, "bf16"), rne)


def test_error_metric_is_zero_only_when_exact_and_infinite_on_nan():
    ref = np.array([1.0, -4.0, 2.0])
    assert max_rel_error(ref.copy(), ref) == 0.0
    assert max_rel_error(ref + [0.0, 0.0, 0.04], ref) == pytest.approx(0.01)
    assert max_rel_error(np.array([1.0, np.nan, 2.0]), ref) == np.inf


# --------------------------------------------------------------------------- systolic GEMM

@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp8", "fp32"])
def test_systolic_gemm_float_within_fp32_tolerance(rng, dataflow, dtype):
    m, k, n = rng.integers(1, 40), rng.integers(200, 600), rng.integers(1, 40)   # K not a multiple of R
    a, b = random_operand(rng, (m, k), dtype), random_operand(rng, (k, n), dtype)
    err = max_rel_error(systolic.systolic_gemm(a, b, rows=128, dataflow=dataflow), f64(a) @ f64(b))
    assert err <= FP32_TOL


def test_systolic_gemm_int8_is_exact(rng):
    a, b = random_operand(rng, (33, 700), "int8"), random_operand(rng, (700, 17), "int8")
    out = systolic.systolic_gemm(a, b, rows=128, dataflow="ws")
    assert out.dtype == np.int32
    assert np.array_equal(out, a.astype(np.int64) @ b.astype(np.int64))


def test_dataflows_sum_in_the_order_of_the_array():
    """Products [2^24, 1, 1, 1]: output-stationary adds them in one fp32 chain, and each +1 is
    lost to rounding (ties to even): 2^24. Weight-stationary with R = 2 sums the folds
    (2^24 + 1 -> 2^24) and (1 + 1 = 2) first, then 2^24 + 2 is exact."""
    a = np.array([[4096.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    b = np.array([[4096.0], [1.0], [1.0], [1.0]], dtype=np.float32)
    assert systolic.systolic_gemm(a, b, rows=2, dataflow="os")[0, 0] == 2.0 ** 24
    assert systolic.systolic_gemm(a, b, rows=2, dataflow="ws")[0, 0] == 2.0 ** 24 + 2
    assert systolic.systolic_gemm(a, b, rows=2, dataflow="is")[0, 0] == 2.0 ** 24 + 2


def test_fp16_accumulation_fails_the_fp32_tolerance_at_large_k(rng):
    """The check can fail: the same product with an fp16 accumulator (a narrow-adder bug) at
    K = 4096 is ~10x over the fp32 tolerance, while the fp32 accumulator is far under it."""
    a, b = random_operand(rng, (8, 4096), "fp16"), random_operand(rng, (4096, 8), "fp16")
    ref = f64(a) @ f64(b)
    assert max_rel_error(systolic.systolic_gemm(a, b, 128, "os", accumulate="fp16"), ref) > FP32_TOL
    assert max_rel_error(systolic.systolic_gemm(a, b, 128, "os", accumulate="fp32"), ref) <= FP32_TOL / 10


def test_tensor_core_gemm_within_fp32_tolerance(rng):
    a, b = random_operand(rng, (20, 333), "bf16"), random_operand(rng, (333, 30), "bf16")
    assert max_rel_error(systolic.tensor_core_gemm(a, b), f64(a) @ f64(b)) <= FP32_TOL


# --------------------------------------------------------------------------- convolution

@pytest.mark.parametrize("groups,stride,padding", [(1, 1, 1), (2, 2, 1), (4, 1, 0)])
def test_conv_im2col_on_the_array_matches_direct_float64(rng, groups, stride, padding):
    x = random_operand(rng, (2, 11, 9, 8), "fp16")
    w = random_operand(rng, (3, 3, 8 // groups, 12), "fp16")
    out = conv.conv2d_systolic(x, w, stride, padding, groups, rows=16, dataflow="ws")
    ref = conv.conv2d_reference(x, w, stride, padding, groups)
    assert out.shape == ref.shape
    assert max_rel_error(out, ref) <= FP32_TOL


def test_conv_int8_is_exact(rng):
    x, w = random_operand(rng, (1, 8, 8, 16), "int8"), random_operand(rng, (3, 3, 16, 8), "int8")
    out = conv.conv2d_systolic(x, w, 1, 1, 1, rows=32)
    assert np.array_equal(out, conv.conv2d_reference(x, w, 1, 1, 1))


def test_depthwise_direct_equals_per_channel_gemm_and_float64(rng):
    """Direct depthwise and im2col depthwise sum the window in the same order (padding adds
    exact zeros), so they agree bit for bit; both within tolerance of float64."""
    x = random_operand(rng, (2, 10, 10, 6), "fp16")
    w = random_operand(rng, (3, 3, 1, 12), "fp16")       # depth multiplier 2
    direct = conv.depthwise_conv2d(x, w, stride=2, padding=1)
    gemm = conv.conv2d_im2col(x, w, 2, 1, groups=6, chunk=9)
    assert np.array_equal(direct, gemm)
    assert max_rel_error(direct, conv.conv2d_reference(x, w, 2, 1, 6)) <= FP32_TOL


# --------------------------------------------------------------------------- bank-level PIM

@pytest.mark.parametrize("n_out,k,k_offset", [(100, 1200, 0), (31, 77, 40), (64, 512, 500)])
def test_pim_gemv_multiplies_every_element_exactly_once(rng, n_out, k, k_offset):
    w, x = random_operand(rng, (n_out, k), "fp16"), random_operand(rng, k, "fp16")
    y, visits = pim.pim_gemv(w, x, banks=32, macs_per_bank=16, elements_per_row=512,
                             k_offset=k_offset, return_visits=True)
    assert visits.shape == (n_out, k)
    assert np.all(visits == 1)
    assert max_rel_error(y, f64(w) @ f64(x)) <= FP16_TOL


def test_pim_gemv_fp16_adders_are_what_limits_it(rng):
    """With fp32 adders the same partitioning is ~100x more accurate: the error is the fp16
    accumulation, not a partitioning mistake."""
    w, x = random_operand(rng, (64, 1024), "fp16"), random_operand(rng, 1024, "fp16")
    ref = f64(w) @ f64(x)
    e16 = max_rel_error(pim.pim_gemv(w, x, 32, 16, 512), ref)
    e32 = max_rel_error(pim.pim_gemv(w, x, 32, 16, 512, accumulate="fp32"), ref)
    assert e32 <= FP32_TOL / 10 < e16 <= FP16_TOL


def test_pim_attention_gemvs_with_gqa(rng):
    q = random_operand(rng, (8, 2, 128), "fp16")
    k, v = random_operand(rng, (2, 700, 128), "fp16"), random_operand(rng, (2, 700, 128), "fp16")
    s = pim.pim_attention_scores(q, k, 32, 16, 512)
    assert max_rel_error(s, attention.scores_reference(q, k)) <= FP16_TOL
    p = quantize(attention.softmax_reference(rng.standard_normal((8, 2, 700))), "fp16")
    o = pim.pim_attention_context(p, v, 32, 16, 512)
    assert max_rel_error(o, attention.context_reference(p, v)) <= FP16_TOL


# --------------------------------------------------------------------------- attention

@pytest.mark.parametrize("queries,length,tile", [(1, 300, 64), (37, 200, 48), (64, 64, 16)])
def test_flash_attention_equals_naive_softmax_attention(rng, queries, length, tile):
    q = random_operand(rng, (8, queries, 64), "fp16")                 # GQA: group 4
    k, v = random_operand(rng, (2, length, 64), "fp16"), random_operand(rng, (2, length, 64), "fp16")
    out = attention.flash_attention(q, k, v, tile=tile, causal=True)
    assert max_rel_error(out, attention.attention_reference(q, k, v, causal=True)) <= FP32_TOL


def test_flash_attention_tile_size_changes_only_rounding(rng):
    q = random_operand(rng, (2, 5, 32), "fp16")
    k, v = random_operand(rng, (1, 150, 32), "fp16"), random_operand(rng, (1, 150, 32), "fp16")
    outs = [attention.flash_attention(q, k, v, tile=t) for t in (1, 7, 64, 150)]
    for o in outs[1:]:
        assert np.max(np.abs(o - outs[0])) <= 1e-5


def test_flash_attention_first_causal_query_sees_only_the_first_key(rng):
    q = random_operand(rng, (1, 16, 32), "fp16")
    k, v = random_operand(rng, (1, 16, 32), "fp16"), random_operand(rng, (1, 16, 32), "fp16")
    out = attention.flash_attention(q, k, v, tile=4, causal=True)
    assert np.array_equal(out[0, 0], v[0, 0])


# --------------------------------------------------------------------------- N:M sparsity

@pytest.mark.parametrize("n,m", [(2, 4), (2, 8), (1, 4)])
def test_n_m_pruning_keeps_the_n_largest_of_every_group(rng, n, m):
    w = quantize(rng.choice([-1, 1], (64, 24)) * rng.uniform(0.5, 1.5, (64, 24)), "fp16")  # no zeros
    pruned, keep = sparse.prune_n_m(w, n, m)
    groups = pruned.reshape(-1, m, 24)
    assert np.all(np.count_nonzero(groups, axis=1) == n)
    mag = np.abs(w).reshape(-1, m, 24)
    kept = np.where(keep.reshape(-1, m, 24), mag, np.inf).min(axis=1)
    dropped = np.where(keep.reshape(-1, m, 24), -np.inf, mag).max(axis=1)
    assert np.all(kept >= dropped)


@pytest.mark.parametrize("n,m", [(2, 4), (2, 8)])
def test_sparse_gemm_from_values_and_indices_equals_dense_on_pruned(rng, n, m):
    a, w = random_operand(rng, (16, 256), "fp16"), random_operand(rng, (256, 40), "fp16")
    pruned, _ = sparse.prune_n_m(w, n, m)
    values, indices = sparse.compress_n_m(w, n, m)
    assert values.shape == (256 // m * n, 40)
    rebuilt = np.zeros_like(w)
    rows = (np.arange(values.shape[0]) // n * m)[:, None] + indices
    np.put_along_axis(rebuilt, rows.astype(np.int64), values, axis=0)
    assert np.array_equal(rebuilt, pruned)
    out = sparse.sparse_nm_gemm(a, values, indices, n, m)
    assert max_rel_error(out, f64(a) @ f64(pruned)) <= FP32_TOL


# --------------------------------------------------------------------------- vector ops

def test_vector_ops_in_fp32_from_fp16(rng):
    x = random_operand(rng, (6, 1000), "fp16")
    y = random_operand(rng, (6, 1000), "fp16")
    g, b = random_operand(rng, 1000, "fp16"), random_operand(rng, 1000, "fp16")
    cases = {
        "layernorm": (vector.layernorm(x, g, b, lanes=128), vector.layernorm_reference(x, g, b)),
        "rmsnorm": (vector.rmsnorm(x, g, lanes=32), vector.rmsnorm_reference(x, g)),
        "softmax": (vector.softmax(x, lanes=128), attention.softmax_reference(x)),
        "gelu": (vector.gelu(x), vector.gelu_reference(x)),
        "swiglu": (vector.swiglu(x, y), vector.swiglu_reference(x, y)),
        "add": (vector.add(x, y), f64(x) + f64(y)),
        "relu": (vector.relu(x), np.maximum(f64(x), 0.0)),
    }
    for name, (out, ref) in cases.items():
        assert max_rel_error(out, ref) <= FP32_TOL, name
    assert np.allclose(cases["softmax"][0].sum(axis=1), 1.0, atol=1e-5)


def test_rope_and_pooling(rng):
    x = random_operand(rng, (5, 4, 64), "fp16")
    pos = rng.integers(0, 4096, 5)
    assert max_rel_error(vector.rope(x, pos), vector.rope_reference(x, pos)) <= FP32_TOL
    win = random_operand(rng, (100, 9), "fp16")
    assert np.array_equal(vector.pool(win, average=False), win.max(axis=1))
    assert max_rel_error(vector.pool(win, average=True), f64(win).mean(axis=1)) <= FP32_TOL


# --------------------------------------------------------------------------- collectives

def test_ring_all_reduce_gives_every_device_the_same_sum(rng):
    x = random_operand(rng, (4, 1001), "fp16")
    out = collective.ring_all_reduce(x, "fp16")
    assert np.all(out == out[0])
    ref = np.broadcast_to(f64(x).sum(axis=0), out.shape)
    assert max_rel_error(out, ref) <= FP16_TOL
    assert max_rel_error(collective.ring_all_reduce(x, "fp32"), ref) <= FP32_TOL / 10
