"""`static`: request-level batching (what serving did before Orca, Yu et al. OSDI'22, section 2):
when the replica is idle it takes up to `max_num_seqs` waiting requests that fit the KV cache,
prefills all their prompts in one iteration, then decodes the batch until its longest request
has finished; requests that arrive meanwhile wait for the next batch. A finished request stops
computing (no padding tokens are charged, which favours static batching) but its slot is not
refilled until the whole batch is done. A request preempted (kv_allocation: on_demand) waits for
the next batch."""
from __future__ import annotations

from hwsim.mappers.batching.registry import Batch, BatchingPolicy, CommonOptions, register_policy


class StaticOptions(CommonOptions):
    """Options of `static`."""


@register_policy("static", "request-level batches: prefill together, decode until the last finishes",
                 StaticOptions)
class StaticBatching(BatchingPolicy):
    def next_batch(self, state) -> Batch:
        if state.running:
            decode = state.make_room(state.decoding())
            if len(decode):
                return Batch(decode=decode)
        # the previous batch is done (or preempted whole): form the next one
        prefill = []
        while state.waiting and len(prefill) < self.options.max_num_seqs and state.fits(state.waiting[0]):
            rid = state.waiting[0]
            state.admit(rid)
            if state.pending[rid]:          # 0: its KV came from a prefill replica (disaggregated)
                prefill.append((rid, int(state.pending[rid])))
        if prefill:
            return Batch(prefill=prefill)
        return Batch(decode=state.make_room(state.decoding()))
