"""Tiled attention with online softmax (FlashAttention), and the float64 references.

Dao et al., "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness",
NeurIPS 2022, Algorithm 1 (online softmax: Milakov & Gimelshein, "Online normalizer calculation
for softmax", 2018): for each query row the keys are visited in tiles of `tile`; per tile the
row keeps a running max m, a running sum l of exp(s - m) and an unnormalised output acc; a new
tile with max m' rescales l and acc by exp(m - m') before adding its own terms, and the output
is acc / l at the end. Scores, exponentials, sums and acc are fp32 (operands fp16/bf16).

Shapes: q[heads, queries, d], k and v [kv_heads, L, d]; query head h reads KV head h // group
(GQA, group = heads / kv_heads). Causal: the queries are the last `queries` positions of the L,
so query i sees keys 0 .. L - queries + i (decode: one query sees all L).
"""
from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def _flash_attention(q, k, v, tile, causal):
    heads, sq, d = q.shape
    kv_heads, length, _ = k.shape
    group = heads // kv_heads
    out = np.empty((heads, sq, d), dtype=np.float32)
    scale = np.float32(1.0 / math.sqrt(d))
    s = np.empty(tile, dtype=np.float32)
    acc = np.empty(d, dtype=np.float32)
    neg_inf = np.float32(-np.inf)
    for h in range(heads):
        kv = h // group
        for i in range(sq):
            last = length - sq + i if causal else length - 1
            m = neg_inf
            l = np.float32(0.0)
            for e in range(d):
                acc[e] = np.float32(0.0)
            for t0 in range(0, last + 1, tile):
                t1 = min(t0 + tile, last + 1)
                m_tile = neg_inf
                for t in range(t0, t1):
                    dot = np.float32(0.0)
                    for e in range(d):
                        dot += q[h, i, e] * k[kv, t, e]
                    s[t - t0] = dot * scale
                    m_tile = max(m_tile, s[t - t0])
                m_new = max(m, m_tile)
                corr = np.float32(np.exp(m - m_new))      # 0 on the first tile (m = -inf)
                l *= corr
                for e in range(d):
                    acc[e] *= corr
                for t in range(t0, t1):
                    p = np.float32(np.exp(s[t - t0] - m_new))
                    l += p
                    for e in range(d):
                        acc[e] += p * v[kv, t, e]
                m = m_new
            for e in range(d):
                out[h, i, e] = acc[e] / l
    return out


def flash_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, tile: int = 64,
                    causal: bool = True) -> np.ndarray:
    """softmax(q k^T / sqrt(d)) v, tiled over the keys with online softmax, fp32."""
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32) 
    return _flash_attention(f32(q), f32(k), f32(v), int(tile), bool(causal))


def causal_mask(queries: int, length: int) -> np.ndarray:
    """mask[i, t]: query i (position length - queries + i) may see key t."""
    return np.arange(length)[None, :] <= (length - queries + np.arange(queries))[:, None]


def scores_reference(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """float64 S[h, s, t] = q[h, s] . k[h // group, t] (unscaled)."""
    group = q.shape[0] // k.shape[0]
    kk = np.repeat(np.asarray(k, np.float64), group, axis=0)
    return np.einsum("hsd,htd->hst", np.asarray(q, np.float64), kk)


def context_reference(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """float64 O[h, s] = p[h, s] @ v[h // group]."""
    group = p.shape[0] // v.shape[0]
    vv = np.repeat(np.asarray(v, np.float64), group, axis=0)
    return np.einsum("hst,htd->hsd", np.asarray(p, np.float64), vv)


def softmax_reference(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def attention_reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = True) -> np.ndarray:
    """Naive softmax attention in float64: the whole score matrix, masked, softmax, times V."""
    s = scores_reference(q, k) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(causal_mask(q.shape[1], k.shape[1])[None], s, -np.inf)
    return context_reference(softmax_reference(s), v)
