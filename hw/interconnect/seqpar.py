"""Sequence-parallel attention over N devices: what one step computes and what it sends.

The sequence of S tokens is cut into N blocks of B = S / N tokens, one per device (Q_i, K_i,
V_i on device i). Attention of every query block against every key block takes N steps.

- Ring-Attention (Liu, Zaharia & Abbeel, "Ring Attention with Blockwise Transformers for
  Near-Infinite Context", arXiv 2310.01889): Q stays; the K/V blocks travel one way round a ring.
  At step s device i computes attn(Q_i, KV_{i-s}) and sends the K/V block it holds to device
  i + 1: 2 x B x kv_heads x head_dim elements per step on the one link i -> i+1 (`ring_kv_bytes`),
  N - 1 sends; each step's partial output is merged into the running output and log-sum-exp
  (ring-flash-attention's `update_out_and_lse`).
- TokenRing (Wang, Liu, Li & Jiang, "TokenRing: An Efficient Parallelism Framework for
  Infinite-Context LLMs via Bidirectional Communication", arXiv 2412.20501): K/V stay; the query
  block travels round the ring (device i sends the Q it holds to i + 1: B x heads x head_dim
  elements, `tokenring_q_bytes`) and each step's block output and log-sum-exp go straight back to
  the query's owner over the fully connected mesh (device i -> i - s at step s: B x heads x
  head_dim elements plus B x heads FP32 lse, `tokenring_out_bytes`), concurrently with the next
  step's compute and Q send; the owner merges the N - 1 partial outputs. Our reading of the
  paper's abstract ("concurrently transmitting Query and block outputs (block_out and
  block_lse) within a fully connected mesh topology") and of its repository's README (step 2 of
  4 GPUs: "Q, Out are transmitted simultaneously").

Compute per step (`block_attention_ns`): a FlashAttention-2 forward of B queries over B keys on
the GPU model (hw/gpu.py `flash_rate`: FLOPs 4 B^2 heads head_dim at the FA2 curve's rate for B
keys); causal attention on a balanced (zigzag) layout halves every step's FLOPs (ring-flash-
attention's zigzag_ring_flash_attn: each step computes half of a full block's pairs). The merge
(`merge_ns`) is a memory-bound elementwise kernel: it reads the two partial outputs and lse and
writes one. Pure functions; the schedule is mappers/seqpar.py.
"""
from __future__ import annotations

LSE_BYTES = 4            # log-sum-exp kept in FP32 (FlashAttention-2 returns softmax_lse as float32)


def ring_kv_bytes(block_tokens: int, kv_heads: int, head_dim: int, dtype_bytes: float) -> float:
    """Ring-Attention: bytes on link i -> i+1 per step (the K and V block)."""
    return 2.0 * block_tokens * kv_heads * head_dim * dtype_bytes


def tokenring_q_bytes(block_tokens: int, heads: int, head_dim: int, dtype_bytes: float) -> float:
    """TokenRing: bytes of the query block on link i -> i+1 per step."""
    return float(block_tokens * heads * head_dim * dtype_bytes)


def tokenring_out_bytes(block_tokens: int, heads: int, head_dim: int, dtype_bytes: float) -> float:
    """TokenRing: bytes of one block output and its lse on link i -> owner per step."""
    return float(block_tokens * heads * (head_dim * dtype_bytes + LSE_BYTES))


def block_attention_flops(block_tokens: int, heads: int, head_dim: int, causal: bool) -> float:
    """Score and context of B queries against B keys, all heads (halved when causal, zigzag)."""
    return 4.0 * block_tokens * block_tokens * heads * head_dim * (0.5 if causal else 1.0)


def block_attention_ns(gpu, dtype: str, block_tokens: int, heads: int, head_dim: int,
                       causal: bool) -> float:
    """One step's FlashAttention-2 forward on `gpu` (hw.gpu.GPUSpec)."""
    from hwsim.hw.gpu import flash_rate
    flops = block_attention_flops(block_tokens, heads, head_dim, causal)
    return flops / flash_rate(gpu, dtype, float(block_tokens), causal) * 1e9


def merge_ns(gpu, block_tokens: int, heads: int, head_dim: int, dtype_bytes: float) -> float:
    """Merging one partial output into the running one: read both (with lse), write one, at the
    GPU's sustained HBM rate (the exp/scale arithmetic is far below the vector peak)."""
    out = block_tokens * heads * (head_dim * dtype_bytes + LSE_BYTES)
    return 3.0 * out / gpu.sustained_bw * 1e9
