"""Seedable MoE routing: how many tokens each expert receives in one layer.

Each token picks `top_k` distinct experts. Expert popularity is uniform, or Zipf-skewed:
p_e ∝ 1 / (rank_e + 1) ** skew, with the rank order shuffled per layer so the hot expert moves;
or `balanced`: no sampling, every expert gets tokens x top_k / experts (the first experts one
more when it does not divide), the ideal a load-balancing loss aims for (Fedus et al., Switch
Transformer, JMLR 2022) — and the case in which expert-parallel devices are identical.
Top-k without replacement uses the Gumbel-top-k trick (Kool et al., ICML 2019): the k largest of
log p_e + Gumbel noise are a sample of k distinct experts drawn with probabilities p.

Inter-layer affinity (`affinity` = a, a Markov model over a token's path through the layers;
stated, not fitted to any model): with probability a a token's experts at layer l + 1 are the
fixed successors succ_l(e) of its experts at layer l, otherwise a fresh draw from layer l + 1's
popularity. succ_l maps the expert of popularity rank r in layer l to the expert of rank r in
layer l + 1 (a seeded permutation when popularity is uniform), so every layer keeps its
popularity p_{l+1} (a P_l(succ^-1 e) + (1 - a) p_{l+1}(e) = p_{l+1}(e)) and a only changes where
tokens go next: a = 0 is routing independent across layers (the same sample as without the
model), a = 1 a fixed path per token. ExFlow (Yao et al., IPDPS 2024, arXiv 2401.08383) measures
such affinity in pre-trained GPT MoE models and places experts on it (`exflow_placement`).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hwsim.spec import Spec


class RoutingSpec(Spec):
    distribution: Literal["uniform", "zipf", "balanced"] = "uniform"
    skew: float = Field(default=1.0, ge=0, description="Zipf exponent (only for zipf)")
    seed: int = 0
    affinity: float = Field(default=0.0, ge=0, le=1, description="probability that a token's "
                            "experts at the next layer are the successors of its experts at this "
                            "one (module docstring); 0: layers independent")

    @model_validator(mode="after")
    def _affinity_needs_sampling(self):
        if self.affinity and self.distribution == "balanced":
            raise ValueError("affinity needs sampled routing (distribution uniform or zipf): "
                             "balanced routing has no per-token paths")
        return self


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
    # without affinity the layer's own sample (not kept: the counts are cached above)
    routes = (expert_routes(spec, tokens, n_experts, top_k, layer) if spec.affinity else
              _fresh_routes(spec, tokens, n_experts, top_k, layer, 0, ordered=False))
    return np.bincount(routes.ravel(), minlength=n_experts).astype(np.int64)


def _log_popularity(spec: RoutingSpec, n_experts: int, layer: int) -> np.ndarray:
    """log p_e of `layer` (up to a constant): a property of the model (the seed), the same for
    every token stream. Zipf: the rank order from the layer's generator, as it always was."""
    if spec.distribution == "uniform":
        return np.zeros(n_experts)
    ranks = np.random.default_rng([spec.seed, layer]).permutation(n_experts)
    return -spec.skew * np.log(ranks + 1.0)


def _fresh_routes(spec: RoutingSpec, tokens: int, n_experts: int, top_k: int, layer: int,
                  stream: int, ordered: bool = True) -> np.ndarray:
    """Every token's top_k experts of `layer` drawn independently of other layers, the most
    likely first in each row ([tokens, top_k]). Stream 0 is the pass's own sample (the draws are
    those routing always made: the same generator, the same order); other streams are other
    token samples of the same model (ExFlow's offline profile)."""
    rng = np.random.default_rng([spec.seed, layer] if stream == 0 else [spec.seed, layer, stream])
    if stream == 0 and spec.distribution == "zipf":
        rng.permutation(n_experts)                 # the draw that set the ranks
    log_p = _log_popularity(spec, n_experts, layer)
    out = np.empty((tokens, top_k), dtype=np.int32)
    chunk = max(1, 4_000_000 // n_experts)
    for start in range(0, tokens, chunk):
        n = min(chunk, tokens - start)
        keys = log_p + rng.gumbel(size=(n, n_experts))
        chosen = np.argpartition(-keys, top_k - 1, axis=1)[:, :top_k]
        if ordered:
            order = np.argsort(-np.take_along_axis(keys, chosen, axis=1), axis=1, kind="stable")
            chosen = np.take_along_axis(chosen, order, axis=1)
        out[start:start + n] = chosen
    return out


@lru_cache(maxsize=256)
def successor(spec: RoutingSpec, n_experts: int, layer: int) -> np.ndarray:
    """succ_layer: expert of layer `layer` -> its successor in layer + 1 (same popularity rank;
    a seeded permutation under uniform popularity). Read-only."""
    if spec.distribution == "zipf":
        here = np.random.default_rng([spec.seed, layer]).permutation(n_experts)
        there = np.random.default_rng([spec.seed, layer + 1]).permutation(n_experts)
        by_rank = np.empty(n_experts, dtype=np.int64)
        by_rank[there] = np.arange(n_experts)
        succ = by_rank[here]
    else:
        succ = np.random.default_rng([spec.seed, layer, 1_000_003]).permutation(n_experts)
    succ.setflags(write=False)
    return succ


@lru_cache(maxsize=256)
def expert_routes(spec: RoutingSpec, tokens: int, n_experts: int, top_k: int, layer: int,
                  stream: int = 0) -> np.ndarray:
    """Every token's experts in `layer` ([tokens, top_k], its likeliest first), read-only: the
    Markov chain of the module docstring from layer 0 on (layer ids, dense layers included: the
    affinity between two consecutive layers is `affinity`). Token i is the same token in every
    layer. With affinity 0 this is the independent per-layer sample `expert_token_counts` counts."""
    fresh = _fresh_routes(spec, tokens, n_experts, top_k, layer, stream)
    if spec.affinity and layer > 0:
        prev = expert_routes(spec, tokens, n_experts, top_k, layer - 1, stream)
        follow = np.random.default_rng([spec.seed, layer, stream, 2]).random(tokens) < spec.affinity
        fresh[follow] = successor(spec, n_experts, layer - 1)[prev[follow]]
    fresh.setflags(write=False)
    return fresh


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


class ExFlowSpec(Spec):
    """ExFlow (Yao et al., "Exploiting Inter-Layer Expert Affinity for Accelerating
    Mixture-of-Experts Model Inference", IPDPS 2024, arXiv 2401.08383) as `workload.exflow`:
    context-coherent expert parallelism plus an affinity-aware expert placement, in decode.

    - Context coherence (the paper's section on it; its repository's README, "Implement
      context-coherence design": an Allgather of every prompt's context at the start, an
      Allgather of the newly generated tokens at the end of each forward, "only keep the first
      Alltoall"): every device holds every request's context, so a token stays on the device of
      its (first) expert and runs the next layer's attention there; each MoE layer has one
      all-to-all (dispatch from where the token is to its experts) instead of dispatch + combine.
      With top_k > 1 a token's other experts' outputs still travel to its first expert's device
      (a partial combine; the paper's GPT MoE models route top-1, where it vanishes).
    - Placement `affinity`: per MoE layer, experts go to devices by a greedy heuristic on an
      offline routing profile (`profile_tokens` tokens of another sample of the same routing
      model, as the paper profiles a trace; its README: ~5,000 tokens suffice): the first MoE
      layer contiguous; for each next layer, every (device, expert) pair is weighted by the
      profiled tokens that sit on the device after the previous layer and pick the expert, and
      pairs are taken heaviest first while the device has a free slot (n_experts / ep each).
      The paper solves an integer program instead (Gurobi; the README's incremental and
      "bipart" solvers): the greedy is ours, stated. `contiguous`: context coherence alone on
      the standard layout (the ablation)."""
    placement: Literal["affinity", "contiguous"] = "affinity"
    profile_tokens: int = Field(default=5000, gt=0, le=1_000_000,
                                description="tokens of the offline routing profile")


PROFILE_STREAM = 1        # the token stream of ExFlow's offline profile (`expert_routes`)


@lru_cache(maxsize=64)
def exflow_placement(routing: RoutingSpec, n_experts: int, top_k: int, layers: tuple[int, ...],
                     groups: int, placement: str, profile_tokens: int) -> tuple[np.ndarray, ...]:
    """Per MoE layer of `layers` (in order), the device group of every expert (read-only
    arrays; `groups` divides n_experts): ExFlowSpec's greedy co-location, or contiguous
    (group g holds experts [g n/groups, (g+1) n/groups))."""
    slots = n_experts // groups
    contiguous = np.arange(n_experts) // slots
    out = [contiguous]
    home = np.arange(profile_tokens) * groups // profile_tokens     # profile tokens spread evenly
    for prev, layer in zip(layers, layers[1:]):
        if placement == "contiguous":
            out.append(contiguous)
            continue
        home = out[-1][expert_routes(routing, profile_tokens, n_experts, top_k, prev,
                                     PROFILE_STREAM)[:, 0]]
        picks = expert_routes(routing, profile_tokens, n_experts, top_k, layer, PROFILE_STREAM)
        weight = np.zeros((groups, n_experts), dtype=np.int64)
        np.add.at(weight, (np.repeat(home, top_k), picks.ravel()), 1)
        where = np.full(n_experts, -1, dtype=np.int64)
        free = np.full(groups, slots)
        # heaviest (device, expert) pair first; ties: lower expert, then lower device
        order = np.lexsort((np.repeat(np.arange(groups), n_experts), np.tile(np.arange(n_experts), groups),
                            -weight.ravel()))
        for flat in order:
            g, e = divmod(int(flat), n_experts)
            if where[e] < 0 and free[g]:
                where[e], free[g] = g, free[g] - 1
        out.append(where)
    for a in out:
        a.setflags(write=False)
    return tuple(out)


@dataclass(frozen=True)
class ExFlowLayer:
    """One MoE layer under ExFlow, per device group: the tokens on it when the layer starts
    (attention runs there), the token copies it sends to experts on other devices (dispatch),
    the expert outputs it sends to a token's first expert's device (top_k > 1), the tokens on it
    after the layer (those whose first expert it holds), and every expert's group."""
    tokens_in: tuple[int, ...]
    dispatch_copies: tuple[int, ...]
    combine_copies: tuple[int, ...]
    tokens_out: tuple[int, ...]
    expert_group: np.ndarray
    tokens_in_ids: tuple[np.ndarray, ...]       # which tokens (replica order) each group holds
    tokens_out_ids: tuple[np.ndarray, ...]


@lru_cache(maxsize=64)
def exflow_layers(routing: RoutingSpec, tokens: int, n_experts: int, top_k: int,
                  layers: tuple[int, ...], groups: int, placement: str,
                  profile_tokens: int) -> tuple[ExFlowLayer, ...]:
    """The pass's tokens (replica order: group g's requests are tokens [g T/groups, (g+1)
    T/groups)) through the MoE `layers` under ExFlow (ExFlowSpec): where each token is, and
    what each device sends, layer by layer. Bytes are conserved: per layer, the copies sent plus
    those that stay equal tokens x top_k (tests/test_exflow.py)."""
    where = exflow_placement(routing, n_experts, top_k, layers, groups, placement, profile_tokens)
    home = np.arange(tokens) * groups // tokens
    out = []
    for layer, expert_group in zip(layers, where):
        routes = expert_routes(routing, tokens, n_experts, top_k, layer)
        dev = expert_group[routes]                                  # [tokens, top_k]
        new_home = dev[:, 0]
        remote = dev != home[:, None]
        dispatch = np.bincount(np.repeat(home, top_k)[remote.ravel()], minlength=groups)
        partial = dev[:, 1:] != new_home[:, None]                  # other experts' outputs
        combine = np.bincount(dev[:, 1:][partial], minlength=groups)
        ids_in = tuple(np.flatnonzero(home == g) for g in range(groups))
        ids_out = tuple(np.flatnonzero(new_home == g) for g in range(groups))
        out.append(ExFlowLayer(tuple(len(i) for i in ids_in), tuple(int(x) for x in dispatch),
                               tuple(int(x) for x in combine), tuple(len(i) for i in ids_out),
                               expert_group, ids_in, ids_out))
        home = new_home
    return tuple(out)
