"""The kernel runs `hwsim run --check` makes: for an op, the functional model of the unit that ran
it (hw/kernels) on the op's shape scaled down, with its float64 reference. Each component kind
registers its builder (`ComponentKind.check_cases`); the built-in kinds share `op_case` below;
hwsim/check_cases.py finds where each op ran and asks the kind.

Which kernel models which op:
- matmul, router: `systolic_gemm` (NPU array, its dataflow and R), `tensor_core_gemm` (GPU),
  a PIM GEMV per row (PIM).
- attention_score / attention_context: on the NPU array, one systolic GEMM per request and KV head
  ([group q, d] x [d, L], then [group q, L] x [L, d]); on PIM, the bank-partitioned GEMVs in
  NeuPIMs' layout; on the NPU vector units or a GPU, the score -> softmax -> context chain is one
  tiled online-softmax kernel (`flash_attention`, tile = vector lanes on the NPU, 64 on a GPU),
  and the softmax op between them is checked as part of it.
- softmax (when not fused), norm, elementwise: the vector kernels, lanes = the NPU's vector lanes
  (a GPU warp's 32 on a GPU). Which norm: the model's `norm`; which function: `Op.function`
  (rope, residual add, relu, ...).
- conv: im2col GEMM in the unit's order (systolic / tensor core / one chain per output on vector
  units); depthwise_conv: direct. They read `op.conv` (in_h, in_w, in_c, out_c, kernel_h,
  kernel_w, stride, padding, groups, batch).
- pool: max (exact) or average pooling over the window on the vector units.
- all_reduce: the ring all-reduce over the op's group, sums in the buffer format.
- Not computed, and listed as such: embedding (a row gather, no arithmetic), all_to_all (a
  permutation of buffers, no arithmetic), and any op on a unit without a functional model.

Scaling: M and N of a GEMM are capped at 64, K at 512 keeping K mod R (so the last, partial fold
of the array survives); attention keeps head_dim and the GQA group (up to 8) with up to 2 KV heads
and checks the requests of longest and shortest context, with L capped at 1024 (two PIM row
chunks) and queries at 64 (the last 64 positions of a causal prefill); norms keep the full row
(the reduction) and cap rows at 16; elementwise ops cap elements at 65,536.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hwsim.hw.kernels import attention as attn_k
from hwsim.hw.kernels import collective, conv, pim, systolic, vector
from hwsim.hw.kernels.numerics import quantize, random_operand

GEMM_M_CAP, GEMM_N_CAP, GEMM_K_CAP = 64, 64, 512
KV_HEADS_CAP, GROUP_CAP, QUERY_CAP, CONTEXT_CAP = 2, 8, 64, 1024
ROWS_CAP, ELEMENTS_CAP = 16, 65536
GPU_WARP, GPU_FLASH_TILE = 32, 64

NOT_COMPUTED = {
    "embedding": "table lookup: rows are copied, no arithmetic",
    "all_to_all": "a permutation of buffers between devices, no arithmetic",
    "p2p": "activations copied to the next pipeline stage, no arithmetic",
}


@dataclass(frozen=True)
class KernelCase:
    """One kernel run: `run(rng)` -> (kernel output, float64 reference)."""
    kind: str
    unit: str
    kernel: str
    precision: str
    accumulate: str
    shape: str
    run: Callable = field(compare=False, hash=False)
    fused: bool = False     # one computation serving several op kinds (flash attention)

    @property
    def key(self):
        """Cases with equal keys compute the same thing: run once."""
        return ("fused" if self.fused else self.kind, self.unit, self.kernel, self.precision, self.shape)


def _cap(dim: int, cap: int, quantum: int = 1) -> int:
    """dim capped at `cap`, keeping dim mod quantum (the partial last fold) when it is cut."""
    dim = int(dim)
    if dim <= cap:
        return max(1, dim)
    rem = dim % quantum
    full = max(quantum, (cap // quantum) * quantum)
    return full - quantum + rem if rem else full


def _gemm_dtype(dtype: str) -> str:
    return dtype if dtype in ("fp32", "fp16", "bf16", "fp8", "int8") else "fp16"


def _float_dtype(dtype: str) -> str:
    """Operand format of attention and vector ops: int8/fp8 workloads keep them in fp16."""
    return dtype if dtype in ("fp32", "fp16", "bf16") else "fp16"


def _acc(dtype: str) -> str:
    return "int32" if dtype == "int8" else "fp32"


# ----------------------------------------------------------------------------- cases

def _gemm_case(kind, unit, hw, m, n, k, dtype, label_extra="", weight_format="") -> KernelCase | None:
    """`weight_format` "mxfp4": the weights are stored in MXFP4 (a workload's `weight_dtype`) and
    dequantized to the activations' format before the GEMM (what a GPU or NPU without FP4 units
    does: hw/kernels/mxfp4.py for the format); the reference multiplies by the float64
    dequantized weights, so a loss in the dequantization shows as error. Integer activations keep
    the plain case (no dequantize-to-int8 kernel is modelled)."""
    dtype = _gemm_dtype(dtype)
    acc = _acc(dtype)
    mx = weight_format == "mxfp4" and dtype != "int8"
    if unit == "npu/systolic":
        rows, df = hw.npu.rows, hw.npu.dataflow
        k = _cap(k, GEMM_K_CAP, rows)
        kernel = f"systolic GEMM {df} {rows}x{hw.npu.cols}"
        fn = lambda a, b: systolic.systolic_gemm(a, b, rows, df)
    elif unit == "gpu":
        k = _cap(k, GEMM_K_CAP, systolic.TENSOR_CORE_K)
        kernel = "tensor-core GEMM (k16 MMA steps)"
        fn = lambda a, b: systolic.tensor_core_gemm(a, b)
    elif unit == "npu/vector":
        k = _cap(k, GEMM_K_CAP)
        kernel = "vector-unit GEMM (one fp32 chain per output)"
        fn = lambda a, b: systolic.blocked_gemm(a, b, max(1, a.shape[1]))
    elif unit in PIM_UNITS:
        if dtype == "int8":
            return None
        pim_spec = getattr(hw, unit)
        acc = pim.PIM_ACCUMULATE
        banks, macs = pim_spec.dram.banks_per_channel, pim_spec.macs_per_bank
        epr = pim_spec.dram.row_bytes // 2
        k = _cap(k, GEMM_K_CAP * 2, epr)
        kernel = f"PIM GEMV ({banks} banks x {macs} MACs)"
        fn = lambda a, b: pim.pim_gemv(np.broadcast_to(b.T, (a.shape[0], *b.T.shape)), a, banks, macs, epr)
    else:
        return None
    m, n = _cap(m, GEMM_M_CAP), _cap(n, GEMM_N_CAP)

    def run(rng):
        a = random_operand(rng, (m, k), dtype)
        if mx:
            w = _mxfp4_weights(rng, k, n)
            return fn(a, quantize(w, dtype)), a.astype(np.float64) @ w
        b = random_operand(rng, (k, n), dtype)
        ref_t = np.int64 if dtype == "int8" else np.float64
        return fn(a, b), a.astype(ref_t) @ b.astype(ref_t)
    precision = f"{dtype} x mxfp4 (dequantized to {dtype}) -> {acc}" if mx else f"{dtype} x {dtype} -> {acc}"
    return KernelCase(kind, unit, kernel + label_extra, precision, acc, f"[{m}x{k}] @ [{k}x{n}]", run)


def _mxfp4_weights(rng, k: int, n: int) -> np.ndarray:
    """N(0, 1) weights [k, n] stored in MXFP4 and dequantized in float64; a K that is not a whole
    number of MX blocks has its last block padded with zeros (which set no block scale)."""
    from hwsim.hw.kernels.mxfp4 import BLOCK, dequantize_mxfp4, quantize_mxfp4
    padded = np.zeros((-(-k // BLOCK) * BLOCK, n))
    padded[:k] = rng.standard_normal((k, n))
    return dequantize_mxfp4(*quantize_mxfp4(padded))[:k]


def _attention_dims(a):
    """(heads, kv_heads, head_dim, [(queries, context)]) of the scaled attention."""
    kv = min(a.kv_heads, KV_HEADS_CAP)
    group = min(a.group, GROUP_CAP)
    q, ctx = a.query_array, a.context_array
    picks = sorted({int(np.argmax(ctx)), int(np.argmin(ctx))})
    reqs = []
    for r in picks:
        length = _cap(ctx[r], CONTEXT_CAP, 128)
        reqs.append((min(int(q[r]), QUERY_CAP, length), length))
    return kv * group, kv, int(a.head_dim), reqs


def _attention_shape(heads, kv, d, reqs) -> str:
    return f"heads {heads}/{kv} kv, d {d}, (q, L) " + " ".join(f"({q},{L})" for q, L in reqs)


def _scores_operands(rng, heads, kv, d, q, length, dtype):
    return (random_operand(rng, (heads, q, d), dtype), random_operand(rng, (kv, length, d), dtype),
            random_operand(rng, (kv, length, d), dtype))


def _probabilities(rng, heads, q, length, dtype):
    """Causal softmax rows of N(0, 1) logits, rounded to dtype: what a context op reads."""
    logits = rng.standard_normal((heads, q, length))
    logits = np.where(attn_k.causal_mask(q, length)[None], logits, -np.inf)
    return quantize(attn_k.softmax_reference(logits), dtype)


def _attention_case(kind, unit, hw, op) -> KernelCase | None:
    heads, kv, d, reqs = _attention_dims(op.attention)
    dtype = _float_dtype(op.dtype)
    shape = _attention_shape(heads, kv, d, reqs)
    context = kind == "attention_context"
    if unit in ("npu/vector", "gpu"):
        tile = hw.npu.vector_lanes if unit == "npu/vector" else GPU_FLASH_TILE

        def run(rng):
            ys, refs = [], []
            for q, length in reqs:
                qq, kk, vv = _scores_operands(rng, heads, kv, d, q, length, dtype)
                ys.append(attn_k.flash_attention(qq, kk, vv, tile, causal=True).ravel())
                refs.append(attn_k.attention_reference(qq, kk, vv, causal=True).ravel())
            return np.concatenate(ys), np.concatenate(refs)
        return KernelCase(kind, unit, f"flash attention (tile {tile}, online softmax)",
                     f"{dtype} -> fp32", "fp32", shape, run, fused=True)
    if unit == "npu/systolic":
        rows, df = hw.npu.rows, hw.npu.dataflow
        kernel = f"systolic GEMM {df} {rows}x{hw.npu.cols} per KV head"
        group = heads // kv

        def run(rng):
            ys, refs = [], []
            for q, length in reqs:
                qq, kk, vv = _scores_operands(rng, heads, kv, d, q, length, dtype)
                for h in range(kv):
                    if context:
                        p = _probabilities(rng, group, q, length, dtype).reshape(group * q, length)
                        a, b = p, vv[h]
                    else:
                        a, b = qq[h * group:(h + 1) * group].reshape(group * q, d), kk[h].T
                    ys.append(systolic.systolic_gemm(a, b, rows, df).ravel())
                    refs.append((a.astype(np.float64) @ b.astype(np.float64)).ravel())
            return np.concatenate(ys), np.concatenate(refs)
        return KernelCase(kind, unit, kernel, f"{dtype} x {dtype} -> fp32", "fp32", shape, run)
    if unit in PIM_UNITS:
        spec = getattr(hw, unit)
        banks, macs = spec.dram.banks_per_channel, spec.macs_per_bank
        epr = spec.dram.row_bytes // op.dtype_bytes
        acc = pim.PIM_ACCUMULATE

        def run(rng):
            ys, refs = [], []
            for q, length in reqs:
                qq, kk, vv = _scores_operands(rng, heads, kv, d, q, length, dtype)
                if context:
                    p = _probabilities(rng, heads, q, length, dtype)
                    ys.append(pim.pim_attention_context(p, vv, banks, macs, epr).ravel())
                    refs.append(attn_k.context_reference(p, vv).ravel())
                else:
                    ys.append(pim.pim_attention_scores(qq, kk, banks, macs, epr).ravel())
                    refs.append(attn_k.scores_reference(qq, kk).ravel())
            return np.concatenate(ys), np.concatenate(refs)
        what = "P.V, values transposed" if context else "q.K^T, a token per bank"
        return KernelCase(kind, unit, f"PIM GEMV {banks} banks x {macs} MACs ({what})",
                     f"{dtype} x {dtype} -> {acc}", acc, shape, run)
    return None


def _lanes(unit, hw) -> int:
    if unit == "asic":
        return hw.asic.lanes
    return hw.npu.vector_lanes if unit.startswith("npu") else GPU_WARP


def _softmax_case(unit, hw, op, attention_op) -> KernelCase | None:
    if unit not in ("npu/vector", "npu/systolic", "gpu", "asic"):
        return None
    dtype = _float_dtype(op.dtype)
    lanes = _lanes(unit, hw)
    if attention_op is not None:
        heads, _, _, reqs = _attention_dims(attention_op.attention)
        row_shapes = [(min(heads * q, ROWS_CAP * 4), length) for q, length in reqs]
    else:
        row_shapes = [(ROWS_CAP, _cap(op.elements // ROWS_CAP, CONTEXT_CAP))]

    def run(rng):
        ys, refs = [], []
        for rows, length in row_shapes:
            x = quantize(2.0 * rng.standard_normal((rows, length)), dtype)
            ys.append(vector.softmax(x, lanes).ravel())
            refs.append(attn_k.softmax_reference(x).ravel())
        return np.concatenate(ys), np.concatenate(refs)
    return KernelCase("softmax", unit, f"vector softmax ({lanes} lanes, 3 passes)", f"{dtype} -> fp32",
                 "fp32", " ".join(f"[{r}x{L}]" for r, L in row_shapes), run)


def _model_attr(system, name, default):
    model = getattr(getattr(system, "workload", None), "model", None)
    return getattr(model, name, default) or default


def _norm_case(unit, hw, op, system) -> KernelCase | None:
    if not (unit.startswith("npu") or unit in ("gpu", "asic")):
        return None
    which = _model_attr(system, "norm", "layernorm")
    width = int(_model_attr(system, "d_model", 0)) or _cap(op.elements, 4096)
    rows = _cap(max(1, op.elements // width), ROWS_CAP)
    dtype, lanes = _float_dtype(op.dtype), _lanes(unit, hw)

    def run(rng):
        x = random_operand(rng, (rows, width), dtype)
        gamma, beta = random_operand(rng, width, dtype), random_operand(rng, width, dtype)
        if which == "rmsnorm":
            return vector.rmsnorm(x, gamma, lanes), vector.rmsnorm_reference(x, gamma)
        return vector.layernorm(x, gamma, beta, lanes), vector.layernorm_reference(x, gamma, beta)
    return KernelCase("norm", unit, f"vector {which} ({lanes} lanes)", f"{dtype} -> fp32", "fp32",
                 f"[{rows}x{width}]", run)


def _elementwise_function(op) -> str:
    """The kernel of an elementwise op, from the function its builder recorded (`Op.function`):
    rope, gelu, swiglu and relu have their own; residual adds, gating, top-k, clips, scales and
    any other function run as adds."""
    return op.function if op.function in ("rope", "gelu", "swiglu", "relu") else "add"


def _elementwise_case(unit, op, system, context_len: int) -> KernelCase | None:
    if not (unit.startswith("npu") or unit in ("gpu", "asic")):
        return None
    fn = _elementwise_function(op)
    dtype = _float_dtype(op.dtype)
    n = _cap(op.elements or ELEMENTS_CAP, ELEMENTS_CAP)
    if fn == "rope":
        d = int(_model_attr(system, "hd", 0) or 128)
        tokens, heads = ROWS_CAP, max(1, min(8, n // (ROWS_CAP * d)))
        shape = f"[{tokens} tokens x {heads} heads x {d}], positions up to {context_len}"

        def run(rng):
            x = random_operand(rng, (tokens, heads, d), dtype)
            pos = rng.integers(0, max(1, context_len), tokens)
            return vector.rope(x, pos), vector.rope_reference(x, pos)
    else:
        shape = f"[{n}]"

        def run(rng):
            x, y = random_operand(rng, n, dtype), random_operand(rng, n, dtype)
            if fn == "gelu":
                return vector.gelu(x), vector.gelu_reference(x)
            if fn == "swiglu":
                return vector.swiglu(x, y), vector.swiglu_reference(x, y)
            if fn == "relu":
                return vector.relu(x), np.maximum(x.astype(np.float64), 0.0)
            return vector.add(x, y), x.astype(np.float64) + y
    return KernelCase("elementwise", unit, f"vector {fn}", f"{dtype} -> fp32", "fp32", shape, run)


def _pool_case(unit, op) -> KernelCase | None:
    """Pooling: the window is FLOPs per output (workloads/cnn.py counts kernel_h x kernel_w);
    average pooling when the op's function is "avg", else max."""
    if not (unit.startswith("npu") or unit == "gpu") or not op.elements:
        return None
    window = max(1, round(op.flops / op.elements))
    average = op.function == "avg"
    n = _cap(op.elements, ELEMENTS_CAP // window)
    dtype = _float_dtype(op.dtype)

    def run(rng):
        x = random_operand(rng, (n, window), dtype)
        ref = x.astype(np.float64).mean(axis=1) if average else x.astype(np.float64).max(axis=1)
        return vector.pool(x, average), ref
    return KernelCase("pool", unit, f"vector {'average' if average else 'max'} pool", f"{dtype} -> fp32",
                 "fp32", f"[{n} outputs x {window}]", run)


def _all_reduce_case(op) -> KernelCase:
    group = max(1, op.collective.group)
    dtype = _float_dtype(op.dtype)
    n = _cap(op.collective.bytes // max(1, op.dtype_bytes), ELEMENTS_CAP)

    def run(rng):
        x = random_operand(rng, (group, n), dtype)
        ref = np.broadcast_to(x.astype(np.float64).sum(axis=0), (group, n))
        return collective.ring_all_reduce(x, dtype), ref
    return KernelCase("all_reduce", "link", f"ring all-reduce over {group} devices", f"{dtype} -> {dtype}",
                 dtype, f"{group} x [{n}]", run)


def _conv_case(kind, unit, hw, op) -> KernelCase | None:
    """conv: im2col GEMMs in the unit's order. depthwise_conv: on the array (and a GPU) as one
    K = kernel_h x kernel_w GEMM per channel (SCALE-Sim's split, hw/systolic.py), on vector units
    direct; both sum the window in (row, column) order."""
    c = getattr(op, "conv", None)
    if c is None:
        return None
    dtype = _gemm_dtype(op.dtype)
    kh, kw, stride, pad = int(c.kernel_h), int(c.kernel_w), int(c.stride), int(c.padding)
    in_h = max(kh, _cap(c.in_h, 16))
    in_w = max(kw, _cap(c.in_w, 16))
    groups0 = max(1, int(c.groups))
    if kind == "depthwise_conv":
        in_c = _cap(c.in_c, 32)
        groups, cg, og = in_c, 1, max(1, int(c.out_c) // max(1, int(c.in_c)))
    else:
        cg, og = _cap(int(c.in_c) // groups0, 64), _cap(int(c.out_c) // groups0, 64)
        groups = min(groups0, max(1, 64 // cg))
        in_c = cg * groups
    out_c = og * groups
    window = kh * kw * cg
    acc = _acc(dtype)
    if unit == "npu/systolic":
        rows, df = hw.npu.rows, hw.npu.dataflow
        chunk = systolic.k_chunk(df, rows, window)
        kernel = f"im2col + systolic GEMM {df} {rows}x{hw.npu.cols}"
    elif unit == "gpu":
        chunk, kernel = systolic.TENSOR_CORE_K, "implicit GEMM on tensor cores (k16)"
    elif unit.startswith("npu"):
        chunk, kernel = window, "direct (one fp32 chain per output)"
    else:
        return None
    if kind == "depthwise_conv" and unit == "npu/vector" and dtype != "int8":
        kernel = "direct depthwise (fp32 chain over the window)"
        fn = lambda x, w: conv.depthwise_conv2d(x, w, stride, pad)
    else:
        fn = lambda x, w: conv.conv2d_im2col(x, w, stride, pad, groups, chunk)
    wshape = (kh, kw, cg, out_c)

    def run(rng):
        x, w = random_operand(rng, (1, in_h, in_w, in_c), dtype), random_operand(rng, wshape, dtype)
        return fn(x, w), conv.conv2d_reference(x, w, stride, pad, groups)   # exact for int8 too
    return KernelCase(kind, unit, kernel, f"{dtype} x {dtype} -> {acc}", acc,
                 f"1x{in_h}x{in_w}x{in_c} * {kh}x{kw}/{stride} -> {out_c} (groups {groups})", run)


@dataclass(frozen=True)
class CheckContext:
    """What a builder may need beyond the op: the system (its model's norm/activation names), the
    longest context of the graph (RoPE positions), the softmax's score op and where it ran."""
    system: object
    context_len: int
    score_op: object = None          # for a softmax: the attention score op before it, if any
    score_unit: str = ""             # where that score op ran


FUSED_UNITS = ("npu/vector", "gpu")     # units that run score -> softmax -> context as one kernel
# Bank-level PIM kinds whose GEMVs run on hwsim.hw.kernels.pim (NeuPIMs' `pim`, PIM-GPT's `gemv_pim`)
PIM_UNITS = ("pim", "gemv_pim", "attacc")


def op_case(unit: str, hw, op, ctx: CheckContext) -> KernelCase | None:
    """The case of `op` run on `unit` ("npu/systolic", "npu/vector", "gpu", "pim", "link")
    of hardware `hw`, or None when that unit has no functional model of the op."""
    kind = str(op.kind.value)
    if op.matmul is not None and kind in ("matmul", "router"):
        mm = op.matmul
        fmt = getattr(getattr(ctx.system, "workload", None), "weight_dtype", None) or ""
        return _gemm_case(kind, unit, hw, mm.m, mm.n, mm.k, op.dtype, weight_format=fmt)
    if op.attention is not None:
        return _attention_case(kind, unit, hw, op)
    if kind == "softmax":
        if ctx.score_op is not None and ctx.score_unit in FUSED_UNITS:
            return _attention_case("softmax", ctx.score_unit, hw, ctx.score_op)
        return _softmax_case(unit, hw, op, ctx.score_op)
    if kind == "norm":
        return _norm_case(unit, hw, op, ctx.system)
    if kind == "elementwise":
        return _elementwise_case(unit, op, ctx.system, ctx.context_len)
    if kind == "pool":
        return _pool_case(unit, op)
    if kind == "all_reduce" and op.collective is not None:
        return _all_reduce_case(op)
    if kind in ("conv", "depthwise_conv"):
        return _conv_case(kind, unit, hw, op)
    return None
