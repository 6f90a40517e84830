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

import heapq
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


class EPLBSpec(Spec):
    """Where the experts of each MoE layer live under expert parallelism (`workload.eplb`),
    CloudMatrix-Infer's layout (Zuo et al., arXiv 2506.12708: EP320 = 256 routed experts, 32
    redundant copies and 32 copies of the shared expert, one per die):

    - `redundant_experts` extra copies of the most loaded routed experts of each layer, and the
      copies packed onto the `ep - shared_expert_groups` routed groups with the same number of
      slots each, the heaviest first onto the lightest group with a free slot (DeepSeek's EPLB,
      deepseek-ai/EPLB eplb.py: `replicate_experts` then `balanced_packing`); a replicated
      expert's tokens are split evenly among its copies;
    - `shared_expert_groups` groups that hold only the shared expert(s) and run them on an even
      share of every token of the replica (the other groups then hold no shared expert).
    Loads are the layer's routed token counts (`workload.routing`), so the balancer sees the
    true loads of the pass: an ideal, once-per-pass rebalancing (DeepSeek's EPLB uses loads
    estimated from history)."""
    redundant_experts: int = Field(default=0, ge=0)
    shared_expert_groups: int = Field(default=0, ge=0)

    @property
    def active(self) -> bool:
        return bool(self.redundant_experts or self.shared_expert_groups)


@lru_cache(maxsize=4096)
def expert_placement(counts: tuple[int, ...], groups: int, redundant: int
                     ) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per routed group, its (expert, tokens) slots: `redundant` replicas given one at a time to
    the expert of the largest tokens per copy (ties: the lowest id), then every copy packed,
    heaviest first, onto the group of least load that still has a free slot (ties: the lowest
    group); slots per group = (experts + redundant) / groups. An expert of r copies gives each
    tokens // r, the first tokens % r copies one more."""
    n = len(counts)
    slots, rest = divmod(n + redundant, groups)
    if rest:
        raise ValueError(f"{n} experts + {redundant} redundant do not fill {groups} groups evenly")
    copies = [1] * n
    for _ in range(redundant):
        e = max(range(n), key=lambda x: (counts[x] / copies[x], -x))
        copies[e] += 1
    items = []
    for e in range(n):
        share, extra = divmod(counts[e], copies[e])
        items += [(share + (r < extra), e) for r in range(copies[e])]
    items.sort(key=lambda t: (-t[0], t[1]))
    placed = [[] for _ in range(groups)]
    free = [(0, g) for g in range(groups)]          # (load, group) of the groups with a free slot
    for tokens, e in items:
        load, g = heapq.heappop(free)
        placed[g].append((e, tokens))
        if len(placed[g]) < slots:
            heapq.heappush(free, (load + tokens, g))
    return tuple(tuple(sorted(p)) for p in placed)
