"""`layered`: layered prefill (Lee et al., "From Tokens to Layers: Redefining Stall-Free Scheduling
for LLM Serving with Layered Prefill", arXiv 2510.08055; scheduler as in scale-snu/layered-prefill,
nanovllm/engine/scheduler.py `layered_prefill_schedule`).

The decoder stack is cut into contiguous layer groups. Every iteration all decoding requests go
first (one token each, through every layer). A cohort of prompts is admitted at once — prompts
still being prefilled first, then waiting requests, first come first served, while the cohort
holds fewer than `token_budget` tokens and the running requests fewer than `max_num_seqs` (a
prompt that does not fit the budget is cut, its rest joining the next cohort). The cohort then
advances one layer group per iteration, riding along with the decodes: iteration g runs its
tokens through group g only, all other groups run the decodes alone. After the last group its
tokens are in the KV cache and each finished prompt emits its first token; the next iteration
admits the next cohort. A prompt thus passes each layer once, where chunked prefill passes the
whole stack once per chunk and loads every layer's experts again each time.

Groups per cohort: the reference scheduler (`get_num_stages`, 16 stages) uses one group per 512
cohort tokens, rounded up to a power of two, at most `num_groups` (<= 512 tokens: 1, <= 1,024: 2,
<= 2,048: 4, <= 4,096: 8, else 16); `adaptive_groups: false` always uses `num_groups`. The layers
of group g of n are [round(g L / n), round((g + 1) L / n)) (hwsim.serving.loop.group_layers).

Costs: each iteration is two simulated iterations split by layer, the cohort with the decodes and
the decodes alone (hwsim.serving.cost.IterationCoster.layered_cost); the expert weights read come
from the memory model's bytes of the expert ops in each layer, never a constant.
"""
from __future__ import annotations

import math

from pydantic import Field, model_validator

from hwsim.mappers.batching.registry import (Batch, BatchingPolicy, CommonOptions, fill_prompt_budget,
                                             register_policy)


class LayeredOptions(CommonOptions):
    num_groups: int = Field(default=16, gt=0, le=4096, description="layer groups (the reference "
                            "runs Qwen3-30B-A3B with --num-stages 16)")
    token_budget: int = Field(default=8192, gt=0, le=1 << 24, description="prompt tokens per "
                              "cohort (the reference's --max-num-batched-tokens 8192)")
    adaptive_groups: bool = Field(default=True, description="fewer groups for small cohorts, one "
                                  "per 512 tokens rounded up to a power of two (reference scheduler)")
    group_tokens: int = Field(default=512, gt=0, le=1 << 24, description="adaptive_groups: cohort "
                              "tokens per group (reference scheduler: 512)")

    @model_validator(mode="after")
    def _budget_holds_the_batch(self):
        if self.token_budget < self.max_num_seqs:
            raise ValueError(f"token_budget={self.token_budget} must be at least max_num_seqs={self.max_num_seqs}")
        return self


def cohort_groups(tokens: int, o: LayeredOptions) -> int:
    """Layer groups a cohort of `tokens` prompt tokens passes through (module docstring)."""
    if not o.adaptive_groups:
        return o.num_groups
    need = max(1, -(-tokens // o.group_tokens))
    return min(o.num_groups, 1 << math.ceil(math.log2(need)))


@register_policy("layered", "layered prefill (Lee et al. 2025): a cohort of prompts advances one "
                 "layer group per iteration while decodes run through every layer", LayeredOptions)
class LayeredPrefill(BatchingPolicy):
    def __init__(self, options):
        super().__init__(options)
        self.cohort: list[tuple[int, int]] = []     # (request, prompt tokens) being prefilled
        self.stage = 0
        self.groups = 1

    def next_batch(self, state) -> Batch:
        o = self.options
        if self.cohort:
            self.cohort = [(r, q) for r, q in self.cohort if r in state.running]   # preempted: dropped
        if not self.cohort:
            self._admit(state)
        decode = state.make_room(state.decoding())
        if self.cohort:
            self.cohort = [(r, q) for r, q in self.cohort if r in state.running]
        if not self.cohort:
            return Batch(decode=decode)
        batch = Batch(prefill=list(self.cohort), decode=decode, prefill_group=(self.stage, self.groups))
        self.stage += 1
        if self.stage == self.groups:
            self.cohort, self.stage = [], 0
        return batch

    def _admit(self, state) -> None:
        o = self.options
        cohort = fill_prompt_budget(state, o.token_budget, o.max_num_seqs)   # a cut prompt's rest first
        self.cohort, self.stage = cohort, 0
        self.groups = cohort_groups(sum(q for _, q in cohort), o) if cohort else 1
