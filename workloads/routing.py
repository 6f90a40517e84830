"""Seedable MoE routing: how many tokens each expert receives in one layer.

Each token picks `top_k` distinct experts. Expert popularity is uniform, or Zipf-skewed:
p_e ∝ 1 / (rank_e + 1) ** skew, with the rank order shuffled per layer so the hot expert moves;
or `balanced`: no sampling, every expert gets tokens x top_k / experts (the first experts one
more when it does not divide), the ideal a load-balancing loss aims for (Fedus et al., Switch
Transformer, JMLR 2022) — and the case in which expert-parallel devices are identical.
Top-k without replacement uses the Gumbel-top-k trick (Kool et al., ICML 2019): the k largest of
log p_e + Gumbel noise are a sample of k distinct experts drawn with probabilities p.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import Field

from hwsim.spec import Spec


class RoutingSpec(Spec):
    distribution: Literal["uniform", "zipf", "balanced"] = "uniform"
    skew: float = Field(default=1.0, ge=0, description="Zipf exponent (only for zipf)")
    seed: int = 0


@lru_cache(maxsize=4096)
def expert_token_counts(spec: RoutingSpec, tokens: int, n_experts: int, top_k: int,
                        layer: int) -> np.ndarray:
    """Tokens routed to each expert in `layer` (sums to tokens * top_k), read-only.

    Cached: the partition step builds every expert-parallel device's graph, and each asks for
    the same layers' routing (a pure function of its arguments and the seed)."""
    counts = _expert_token_counts(spec, tokens, n_experts, top_k, layer)
    counts.setflags(write=False)
    return counts


def _expert_token_counts(spec: RoutingSpec, tokens: int, n_experts: int, top_k: int,
                         layer: int) -> np.ndarray:
    if spec.distribution == "balanced":
        share, extra = divmod(tokens * top_k, n_experts)
        return np.array([share + (e < extra) for e in range(n_experts)], dtype=np.int64)
    rng = np.random.default_rng([spec.seed, layer])
    if spec.distribution == "uniform":
        log_p = np.zeros(n_experts)
    else:
        ranks = rng.permutation(n_experts)
        log_p = -spec.skew * np.log(ranks + 1.0)
    counts = np.zeros(n_experts, dtype=np.int64)
    chunk = max(1, 4_000_000 // n_experts)
    for start in range(0, tokens, chunk):
        n = min(chunk, tokens - start)
        keys = log_p + rng.gumbel(size=(n, n_experts))
        chosen = np.argpartition(-keys, top_k - 1, axis=1)[:, :top_k]
        counts += np.bincount(chosen.ravel(), minlength=n_experts)
    return counts
