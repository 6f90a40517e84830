"""`chunked`: chunked prefill with stall-free batching (Sarathi-Serve, Agrawal et al. OSDI'24):
every iteration has a budget of `token_budget` tokens; all decoding requests go first (one token
each), then the prompts being prefilled continue, then waiting requests are admitted (first come
first served, while they fit `max_num_seqs` and the KV cache), each prompt cut into chunks that
fill the remaining budget. Decodes are never stalled by a long prompt."""
from __future__ import annotations

from pydantic import Field, model_validator

from hwsim.mappers.batching.registry import (Batch, BatchingPolicy, CommonOptions, fill_prompt_budget,
                                             register_policy)


class ChunkedOptions(CommonOptions):
    token_budget: int = Field(default=512, gt=0, le=1 << 24, description="tokens per iteration "
                              "(Sarathi-Serve's chunk size; 512 as in its evaluation)")

    @model_validator(mode="after")
    def _budget_holds_the_batch(self):
        if self.token_budget < self.max_num_seqs:     # vLLM's SchedulerConfig refuses it too
            raise ValueError(f"token_budget={self.token_budget} must be at least max_num_seqs={self.max_num_seqs} "
                             "(every running request decodes one token per iteration)")
        return self


@register_policy("chunked", "chunked prefill (Sarathi-Serve): a token budget per iteration, decodes "
                 "first, prompts in chunks", ChunkedOptions)
class ChunkedPrefill(BatchingPolicy):
    def next_batch(self, state) -> Batch:
        o = self.options
        decode = state.make_room(state.decoding())
        prefill = fill_prompt_budget(state, o.token_budget - len(decode), o.max_num_seqs)
        if not prefill and not len(decode):
            decode = state.make_room(state.decoding())
        return Batch(prefill=prefill, decode=decode)
