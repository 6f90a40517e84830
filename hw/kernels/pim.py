"""Bank-level PIM GEMV (hw/pim.py: Newton / HBM-PIM style, as NeuPIMs models it), functionally.

y = W x with W[n_out, K] laid out as hw/pim.py states: output i lives in bank i mod `banks` of
tile i // banks (one row open in every bank of the channel); along K a bank row holds
`elements_per_row` = row_bytes / dtype_bytes operands, so K is cut into row chunks, each one
GWRITE of the vector slice plus one tile; a row chunk is read `macs_per_bank` operands per
column command (COMP). Per COMP each bank multiplies its 16 operands by the matching slice of the
global buffer and an adder tree sums the 16 products pairwise; the bank's accumulator adds the
tree's output, column after column; READRES then reads one partial per bank per tile. Partials
of the row chunks of one output are added by the host (the NPU) in chunk order.

Precision: hw/pim.py's preset gives 16 FP16 multipliers per bank (NeuPIMs configs,
pim_comp_coverage 16); Samsung's HBM-PIM, the product the Newton-style designs build on, has a
16-wide FP16 multiplier *and FP16 adder* per unit (Kwon et al., ISSCC 2021; Lee et al., ISCA
2021). So products, adder tree and bank accumulator are rounded to fp16 (`PIM_ACCUMULATE`),
READRES returns fp16 partials, and the host adds the row chunks' partials in fp32. The tolerance
is therefore the fp16 one (hw/kernels/numerics.py). NeuPIMs itself does not state it.

Attention layout (hw/pim.py, NeuPIMs Scheduler.cc): for q.K^T the keys are the rows of W (one
token per bank per tile) and the head's features lie at offset head * head_dim of the token's
kv_heads * head_dim features, so a head may straddle a row boundary; for P.V the values are
transposed: one feature per bank, the tokens along the row.
"""
from __future__ import annotations

import numba
import numpy as np

from hwsim.hw.kernels.numerics import FORMATS, round_to

PIM_ACCUMULATE = "fp16"     # products, adder tree and bank accumulator (module docstring)
HOST_ACCUMULATE = "fp32"    # the NPU adding the row chunks' partials


@numba.njit(cache=True)
def _pim_gemv(w, x, banks, macs, epr, k_offset, acc_code, host_code):
    """w[B, n_out, K], x[B, K] -> y[B, n_out] (float64 holding host-format values) and
    visits[n_out, K]: how many times batch 0's kernel multiplied each W element."""
    nb, n_out, k_dim = w.shape
    y = np.zeros((nb, n_out), dtype=np.float64)
    visits = np.zeros((n_out, k_dim), dtype=np.int32)
    lanes = np.zeros(macs, dtype=np.float64)
    # Row chunks along K: boundaries where (k_offset + k) is a multiple of epr.
    first_end = min(k_dim, epr - k_offset % epr)
    n_chunks = 1 + (k_dim - first_end + epr - 1) // epr
    n_tiles = (n_out + banks - 1) // banks
    for b in range(nb):
        for c in range(n_chunks):
            k_lo = 0 if c == 0 else first_end + (c - 1) * epr
            k_hi = min(k_dim, first_end + c * epr)
            for t in range(n_tiles):
                for bank in range(banks):
                    i = t * banks + bank
                    if i >= n_out:
                        break
                    acc = 0.0
                    k = k_lo
                    while k < k_hi:
                        # one COMP: the lanes of this column (aligned to macs in the row)
                        col_end = min(k_hi, k + macs - (k_offset + k) % macs)
                        for lane in range(macs):
                            lanes[lane] = 0.0
                        for kk in range(k, col_end):
                            lanes[(k_offset + kk) % macs] = round_to(float(w[b, i, kk]) * float(x[b, kk]), acc_code)
                            if b == 0:
                                visits[i, kk] += 1
                        width = macs                 # adder tree: pairwise, level by level
                        while width > 1:
                            half = width // 2
                            for lane in range(half):
                                lanes[lane] = round_to(lanes[2 * lane] + lanes[2 * lane + 1], acc_code)
                            if width % 2:
                                lanes[half] = lanes[width - 1]
                                half += 1
                            width = half
                        acc = round_to(acc + lanes[0], acc_code)
                        k = col_end
                    y[b, i] = round_to(y[b, i] + acc, host_code)   # READRES, host adds chunks
    return y, visits


def pim_gemv(w: np.ndarray, x: np.ndarray, banks: int, macs_per_bank: int, elements_per_row: int,
             k_offset: int = 0, accumulate: str = PIM_ACCUMULATE, host_accumulate: str = HOST_ACCUMULATE,
             return_visits: bool = False):
    """y[B, n_out] = W[B, n_out, K] @ x[B, K] on one PIM channel (module docstring). 2-D W and
    1-D x are taken as a batch of one. `k_offset`: position of W's first column in its bank row."""
    squeeze = w.ndim == 2
    w3 = np.ascontiguousarray(w[None] if squeeze else w, dtype=np.float32)
    x2 = np.ascontiguousarray(x[None] if squeeze else x, dtype=np.float32)
    y, visits = _pim_gemv(w3, x2, int(banks), int(macs_per_bank), int(elements_per_row),
                          int(k_offset), FORMATS[accumulate].code, FORMATS[host_accumulate].code)
    y = y[0] if squeeze else y
    return (y, visits) if return_visits else y


def pim_attention_scores(q: np.ndarray, k: np.ndarray, banks: int, macs_per_bank: int,
                         elements_per_row: int, accumulate: str = PIM_ACCUMULATE) -> np.ndarray:
    """S[h, s, t] = q[h, s] . k[h // group, t] (unscaled), keys as the GEMV's rows.
    q[heads, queries, d], k[kv_heads, L, d]."""
    heads, sq, d = q.shape
    group = heads // k.shape[0]
    out = np.empty((heads, sq, k.shape[1]))
    for h in range(heads):
        kv = h // group
        w = np.broadcast_to(k[kv], (sq, *k[kv].shape))
        out[h] = pim_gemv(w, q[h], banks, macs_per_bank, elements_per_row,
                          k_offset=kv * d, accumulate=accumulate)
    return out


def pim_attention_context(p: np.ndarray, v: np.ndarray, banks: int, macs_per_bank: int,
                          elements_per_row: int, accumulate: str = PIM_ACCUMULATE) -> np.ndarray:
    """O[h, s] = p[h, s] @ v[h // group]: values transposed, one feature per bank, tokens along
    the row. p[heads, queries, L], v[kv_heads, L, d]."""
    heads, sq, _ = p.shape
    group = heads // v.shape[0]
    out = np.empty((heads, sq, v.shape[2]))
    for h in range(heads):
        vt = v[h // group].T
        w = np.broadcast_to(vt, (sq, *vt.shape))
        out[h] = pim_gemv(w, p[h], banks, macs_per_bank, elements_per_row, accumulate=accumulate)
    return out
