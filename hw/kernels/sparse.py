"""N:M structured-sparse GEMM from compressed values and indices.

NVIDIA Ampere's sparse tensor cores ("NVIDIA A100 Tensor Core GPU Architecture" whitepaper, 2020,
"Fine-Grained Structured Sparsity"; Mishra et al., "Accelerating Sparse Deep Neural Networks",
arXiv:2104.08378) take a weight matrix in which every group of M = 4 consecutive elements along
the reduction dimension K holds at most N = 2 non-zeros, store only those values plus a 2-bit
index each, and select the matching activations with the indices. The same scheme generalises to
other N:M (e.g. 2:8, Zhou et al., ICLR 2021).

- `prune_n_m` keeps, in each group of M along K of every output column, the N elements of
  largest magnitude (ties: the lower index), the magnitude pruning of the whitepaper's recipe.
- `compress_n_m` stores them as values[K/M * N, n_out] and indices[K/M * N, n_out] (int8, the
  position inside the group), in K order.
- `sparse_nm_gemm` computes A @ W_pruned from the compressed form: per output, one fp32 chain over
  the kept values in K order (products of fp16/bf16 operands exact in fp32).
The check is against the dense float64 product with the pruned matrix.
"""
from __future__ import annotations

import numba
import numpy as np

from hwsim.hw.kernels.numerics import FORMATS, round_to


def _pad_k(w: np.ndarray, m: int) -> np.ndarray:
    pad = (-w.shape[0]) % m
    return np.concatenate([w, np.zeros((pad, w.shape[1]), w.dtype)]) if pad else w


def prune_n_m(w: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(pruned W, keep mask): in every group of m consecutive rows (K) of each column, the n
    largest-magnitude elements kept, the rest set to 0. K not a multiple of m is zero-padded."""
    if not 0 < n <= m:
        raise ValueError(f"need 0 < N <= M, got {n}:{m}")
    k = w.shape[0]
    wp = _pad_k(w, m)
    groups = wp.reshape(-1, m, wp.shape[1])                           # [K/m, m, n_out]
    order = np.argsort(-np.abs(groups), axis=1, kind="stable")[:, :n]  # n largest per group
    keep = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=1)
    keep = keep.reshape(wp.shape)[:k]
    return np.where(keep, w, 0).astype(w.dtype), keep


def compress_n_m(w: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(values[K/m * n, n_out], indices[K/m * n, n_out]) of the pruned W, in K order."""
    _, keep = prune_n_m(w, n, m)
    wp, keep = _pad_k(w, m), _pad_k(keep, m)
    g, n_out = wp.shape[0] // m, wp.shape[1]
    rows = np.nonzero(keep.T.reshape(n_out, g, m))                    # kept, sorted per column/group
    pos = rows[2].reshape(n_out, g, n)
    values = np.take_along_axis(wp.T.reshape(n_out, g, m), pos, axis=2)
    return (np.ascontiguousarray(values.reshape(n_out, g * n).T),
            np.ascontiguousarray(pos.reshape(n_out, g * n).T.astype(np.int8)))


@numba.njit(cache=True)
def _sparse_gemm(a, values, indices, n, m, acc_code):
    rows, k_dim = a.shape
    kept, n_out = values.shape
    out = np.empty((rows, n_out), dtype=np.float64)
    for i in range(rows):
        for j in range(n_out):
            acc = 0.0
            for s in range(kept):
                k = (s // n) * m + indices[s, j]
                if k < k_dim:
                    acc = round_to(acc + round_to(float(a[i, k]) * float(values[s, j]), acc_code), acc_code)
            out[i, j] = acc
    return out


def sparse_nm_gemm(a: np.ndarray, values: np.ndarray, indices: np.ndarray, n: int, m: int,
                   accumulate: str = "fp32") -> np.ndarray:
    """A[M, K] @ W where W is given compressed (values, indices) as `compress_n_m` makes it."""
    return _sparse_gemm(np.ascontiguousarray(a, dtype=np.float32), np.ascontiguousarray(values, dtype=np.float32),
                        np.ascontiguousarray(indices, dtype=np.int8), int(n), int(m), FORMATS[accumulate].code)
