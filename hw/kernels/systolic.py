"""GEMM on a systolic array (hw/npu.py), with the array's order of accumulation and precision.

For out[M, N] = A[M, K] B[K, N], the dataflows of hw/npu.py (SCALE-Sim, Samajdar et al. 2020):
- ws: B's K x N sits in the array, K down the R rows, N across the C columns. Rows of A stream
  through; each PE adds its product to the partial sum coming from above and passes it down, so
  inside a fold the sum runs along K in order k0, k0+1, ..., k0+R-1, starting from 0 at the top
  PE. K > R takes ceil(K / R) row folds; the accumulators under the array add the folds' partial
  sums in fold order.
- is: A^T's K x M sits in the array, K down the rows: the same K order and fold sums as ws.
- os: each PE owns one output and adds the K products streamed through it, in order: one chain of
  K additions, no fold sums.
Column folds (N for ws, M for is, M and N for os) split outputs, not sums, so C does not change
the numbers. One kernel covers all three: a chain of `k_chunk` additions per fold (R for ws/is,
K for os), then the fold sums.

Precision: products of fp16, bf16 or fp8 operands are exact in fp32 (22, 16 or 8 significand
bits <= 24); each addition is rounded to the accumulator format (fp32 on the array; fp16 only
to show what a narrow accumulator would do). fp32 operands have their product rounded to fp32.
int8 x int8 products are summed in int32, wrapping on overflow as hardware does (which needs
K > 2**17 for int8 operands: never at the checked sizes).
"""
from __future__ import annotations

import numba
import numpy as np

from hwsim.hw.kernels.numerics import FORMATS, round_to


@numba.njit(cache=True)
def _blocked_gemm_fp(a, bt, k_chunk, acc_code):
    """a[M, K] float32, bt[N, K] = B^T float32 -> out[M, N] float64 holding acc-format values."""
    m_dim, k_dim = a.shape
    n_dim = bt.shape[0]
    out = np.empty((m_dim, n_dim), dtype=np.float64)
    for i in range(m_dim):
        for j in range(n_dim):
            total = 0.0
            for k0 in range(0, k_dim, k_chunk):
                psum = 0.0
                for k in range(k0, min(k0 + k_chunk, k_dim)):
                    prod = round_to(float(a[i, k]) * float(bt[j, k]), acc_code)
                    psum = round_to(psum + prod, acc_code)
                total = round_to(total + psum, acc_code)
            out[i, j] = total
    return out


@numba.njit(cache=True)
def _blocked_gemm_int8(a, bt, k_chunk):
    """a[M, K] int8, bt[N, K] int8 -> out[M, N] int32, every sum kept in int32."""
    m_dim, k_dim = a.shape
    n_dim = bt.shape[0]
    out = np.empty((m_dim, n_dim), dtype=np.int32)
    for i in range(m_dim):
        for j in range(n_dim):
            total = np.int32(0)
            for k0 in range(0, k_dim, k_chunk):
                psum = np.int32(0)
                for k in range(k0, min(k0 + k_chunk, k_dim)):
                    psum = np.int32(psum + np.int32(a[i, k]) * np.int32(bt[j, k]))
                total = np.int32(total + psum)
            out[i, j] = total
    return out


def k_chunk(dataflow: str, rows: int, k: int) -> int:
    """Length of one in-array accumulation chain: R for ws/is, all of K for os."""
    if dataflow not in ("ws", "os", "is"):
        raise ValueError(f"unknown dataflow {dataflow!r}")
    return max(1, k) if dataflow == "os" else rows


def blocked_gemm(a: np.ndarray, b: np.ndarray, chunk: int, accumulate: str = "fp32") -> np.ndarray:
    """A @ B with K summed in chains of `chunk` terms, the chains' sums then added in order, every
    addition rounded to `accumulate`. int8 operands -> int32 result (exact); float operands
    (float32 arrays holding fp16/bf16/fp8/fp32 values) -> float64 array of accumulator values."""
    if a.dtype == np.int8:
        return _blocked_gemm_int8(np.ascontiguousarray(a), np.ascontiguousarray(b.T), int(chunk))
    return _blocked_gemm_fp(np.ascontiguousarray(a, dtype=np.float32),
                            np.ascontiguousarray(b.T, dtype=np.float32), int(chunk),
                            FORMATS[accumulate].code)


def systolic_gemm(a: np.ndarray, b: np.ndarray, rows: int, dataflow: str = "ws",
                  accumulate: str = "fp32") -> np.ndarray:
    """out = A[M, K] @ B[K, N] as an R-row systolic array with `dataflow` computes it."""
    return blocked_gemm(a, b, k_chunk(dataflow, rows, a.shape[1]), accumulate)


# One tensor-core MMA instruction (mma.sync m16n8k16, fp16/bf16 in, fp32 accumulate) consumes
# K = 16 per step (NVIDIA PTX ISA, "Matrix shape" of mma). Modelled as a chain of 16 products
# added to the running fp32 sum with round-to-nearest; real tensor cores add a block of products
# with truncation inside (Fasi et al., "Numerical behavior of NVIDIA tensor cores", PeerJ CS
# 2021), which this does not model.
TENSOR_CORE_K = 16


def tensor_core_gemm(a: np.ndarray, b: np.ndarray, accumulate: str = "fp32") -> np.ndarray:
    """out = A @ B as a GPU tensor-core GEMM: K in MMA steps of 16, fp32 (int32) accumulation."""
    return blocked_gemm(a, b, TENSOR_CORE_K, accumulate)
