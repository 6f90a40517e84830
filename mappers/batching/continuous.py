"""`continuous`: iteration-level scheduling (Orca, Yu et al. OSDI'22) as vLLM's default scheduler
runs it (Kwon et al. SOSP'23; vLLM v0 `Scheduler._schedule_default`): before every iteration,
if requests wait and can be admitted, the iteration prefills them (prefill-prioritized: whole
prompts, first come first served, while they fit `max_num_seqs`, the token budget
`max_num_batched_tokens` and the KV cache); otherwise it decodes every running request. A prompt
longer than the budget runs alone (vLLM would refuse it; stated)."""
from __future__ import annotations

from pydantic import Field, model_validator

from hwsim.mappers.batching.registry import Batch, BatchingPolicy, CommonOptions, register_policy


class ContinuousOptions(CommonOptions):
    max_num_batched_tokens: int = Field(default=4096, gt=0, le=1 << 24, description=
                                        "prompt tokens per prefill iteration (vLLM without chunked "
                                        "prefill: max(max_model_len, 2048) = 4096 for LLaMA-2)")

    @model_validator(mode="after")
    def _budget_holds_the_batch(self):
        if self.max_num_batched_tokens < self.max_num_seqs:     # vLLM's SchedulerConfig refuses it too
            raise ValueError(f"max_num_batched_tokens={self.max_num_batched_tokens} must be at least max_num_seqs={self.max_num_seqs} "
                             "(every running request decodes one token per iteration)")
        return self


@register_policy("continuous", "iteration-level (Orca/vLLM): admit and prefill new requests first, "
                 "else decode all running ones", ContinuousOptions)
class ContinuousBatching(BatchingPolicy):
    def next_batch(self, state) -> Batch:
        o = self.options
        prefill, tokens = [], 0
        while state.waiting and len(state.running) < o.max_num_seqs:
            rid = state.waiting[0]
            p = int(state.pending[rid])
            if (prefill and tokens + p > o.max_num_batched_tokens) or not state.fits(rid):
                break
            state.admit(rid)
            if p:                       # 0: its KV came from a prefill replica (disaggregated)
                prefill.append((rid, p))
                tokens += p
        if prefill:
            return Batch(prefill=prefill)
        decode = state.make_room(state.decoding())
        if not len(decode) and state.waiting and not state.running:   # all preempted: readmit
            return self.next_batch(state)
        return Batch(decode=decode)
