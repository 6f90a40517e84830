"""Batching-policy registry and the state a policy reads.

A policy is a mapper-side decision (DESIGN.md: "what runs when"): before each iteration of a
replica the serving loop (hwsim.serving) asks it for the next ``Batch`` — which requests compute
which tokens — given the ``ServingState`` (requests waiting, requests running, the paged KV
cache). The policy admits requests (moving them from `waiting` to `running` and reserving their
KV blocks through the state); the loop costs the batch, advances time and applies its tokens.

KV cache (vLLM's PagedAttention, Kwon et al. SOSP'23): blocks of `block_tokens` tokens, in one
of two allocation modes (`scenario.kv_allocation`):
- `reserve` (default): a request is admitted only when blocks for its whole prompt plus all its
  output tokens are free (a reservation at admission, as Orca's scheduler does for the maximum
  length, Yu et al. OSDI'22; the simulator knows each request's output length). The cache can
  never overflow and no request is ever preempted.
- `on_demand` (vLLM's block manager): admission takes blocks for the prompt only; a decoding
  request takes one more block each time its tokens fill the last one. When none is free, the
  most recently admitted running request is preempted by recompute (vLLM v0's default,
  `PreemptionMode.RECOMPUTE`): its blocks are freed, it goes back to the head of the queue, and
  when readmitted it prefills its prompt and every token generated so far again, that prefill
  producing its next token.
Either way requests wait first come first served: one that does not fit blocks those behind it.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from hwsim.spec import Spec


@dataclass
class Batch:
    """One iteration: `prefill` = [(request, new prompt tokens)] (a whole prompt or a chunk),
    `decode` = requests computing one token each. `prefill_group` = (g, n): layered prefill
    (hwsim.mappers.batching.layered): the prompt tokens run through layer group g of n (the
    decodes through every layer); they enter the KV cache, and emit a token, only with the last
    group (g = n - 1). None: through every layer."""
    prefill: list[tuple[int, int]] = field(default_factory=list)
    decode: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    prefill_group: tuple[int, int] | None = None

    @property
    def tokens(self) -> int:
        return sum(q for _, q in self.prefill) + len(self.decode)

    def __bool__(self) -> bool:
        return bool(self.prefill) or len(self.decode) > 0


@dataclass
class ServingState:
    """What the serving loop tracks per request (arrays indexed by request id), and the queues.

    `held`: tokens in the request's KV cache; `pending`: tokens it must prefill before its next
    output token (its prompt; after a preemption, its prompt and the tokens generated so far);
    `generated`: output tokens so far; `owned`: KV blocks it holds."""
    prompt: np.ndarray                   # prompt tokens
    output: np.ndarray                   # output tokens to generate
    block_tokens: int                    # tokens per KV block
    total_blocks: int                    # KV blocks of the replica
    on_demand: bool = False              # kv_allocation: on_demand (else reserve)
    waiting: deque = field(default_factory=deque)   # arrived or preempted, not running (FCFS)
    running: list = field(default_factory=list)     # admitted, not finished (admission order)
    used_blocks: int = 0
    peak_blocks: int = 0
    preemptions: int = 0
    recomputed_tokens: int = 0           # prefill tokens computed again after preemptions
    preempted_decoding: int = 0          # preemptions of requests that had emitted tokens
    now: float = 0.0                     # the loop's clock (admission times)

    def __post_init__(self):
        n = len(self.prompt)
        self.held = np.zeros(n, dtype=np.int64)
        self.pending = self.prompt.astype(np.int64).copy()
        self.generated = np.zeros(n, dtype=np.int64)
        self.owned = np.zeros(n, dtype=np.int64)
        self.admitted_s = np.full(n, np.nan)   # first admission
        self._decoding = None            # cached decoding(), None when stale

    def _blocks(self, tokens) -> int:
        return -(-int(tokens) // self.block_tokens)

    def need(self, rid: int) -> int:
        """Blocks the request takes at admission."""
        if self.on_demand:
            return self._blocks(self.held[rid] + self.pending[rid])
        return self._blocks(self.prompt[rid] + self.output[rid])

    def fits(self, rid: int) -> bool:
        return self.used_blocks + self.need(rid) <= self.total_blocks

    def admit(self, rid: int) -> None:
        """Move the head of `waiting` to `running`, taking its blocks."""
        assert self.waiting[0] == rid and self.fits(rid)
        self.waiting.popleft()
        self.running.append(rid)
        self._take(rid, self.need(rid))
        if np.isnan(self.admitted_s[rid]):
            self.admitted_s[rid] = self.now
        self.changed()

    def _take(self, rid: int, blocks: int) -> None:
        self.owned[rid] += blocks
        self.used_blocks += blocks
        self.peak_blocks = max(self.peak_blocks, self.used_blocks)

    def release(self, rid: int) -> None:
        self.used_blocks -= int(self.owned[rid])
        self.owned[rid] = 0

    def decoding(self) -> np.ndarray:
        """Running requests with nothing to prefill (they decode), in admission order."""
        if self._decoding is None:
            run = np.asarray(self.running, dtype=np.int64)
            self._decoding = run[self.pending[run] == 0] if len(run) else run
        return self._decoding

    def changed(self) -> None:
        """The running set or a request's phase changed (the loop and `make_room` call it)."""
        self._decoding = None

    def prefilling(self) -> list[int]:
        return [r for r in self.running if self.pending[r] > 0]

    def make_room(self, decode: np.ndarray) -> np.ndarray:
        """on_demand: give each decoding request the block its next token needs, preempting the
        most recently admitted running requests while none is free; returns the requests that
        still decode. reserve: nothing to do."""
        if not self.on_demand or not len(decode):
            return decode
        full = decode[self.held[decode] + 1 > self.owned[decode] * self.block_tokens]
        if not len(full):
            return decode
        gone = set()
        for rid in full.tolist():
            if rid in gone:
                continue
            while self.used_blocks + 1 > self.total_blocks:
                victim = self.running[-1]
                self.preempt(victim)
                gone.add(victim)
                if victim == rid:
                    break
            if rid not in gone:
                self._take(rid, 1)
        if gone:
            decode = decode[~np.isin(decode, list(gone))]
        return decode

    def preempt(self, rid: int) -> None:
        """Recompute preemption: free the blocks, requeue at the head, prefill everything again."""
        self.running.remove(rid)
        self.release(rid)
        self.preemptions += 1
        if self.generated[rid]:
            self.preempted_decoding += 1     # its prefill again will emit a token
        new = int(self.prompt[rid] + self.generated[rid])
        self.recomputed_tokens += new - int(self.pending[rid])
        self.pending[rid] = new
        self.held[rid] = 0
        self.waiting.appendleft(rid)
        self.changed()


class BatchingPolicy:
    """Base of the policies: `next_batch(state)` -> the next iteration's Batch (empty: nothing
    to run until a request arrives).

    `decode_runs`: the policy promises that once it returns a decode-only batch, it would
    return the same requests again until one of them finishes or a request arrives (its
    decision depends on nothing else that changes meanwhile); the serving loop then steps such
    runs without asking it again. All built-in policies keep it."""
    name = ""
    decode_runs = True

    def __init__(self, options):
        self.options = options

    def next_batch(self, state: ServingState) -> Batch:
        raise NotImplementedError


def fill_prompt_budget(state: ServingState, budget: int, max_num_seqs: int) -> list[tuple[int, int]]:
    """Prompt chunks for `budget` tokens, as Sarathi-Serve fills a chunk: first the rest of the
    prompts already being prefilled, then new requests admitted in arrival order while they fit
    (the running cap and the KV cache). Returns [(request id, prompt tokens this iteration)]; a
    request admitted with nothing left to prefill (its KV came from a prefill replica) takes none."""
    chunks = []
    for rid in state.prefilling():
        if budget <= 0:
            break
        q = min(int(state.pending[rid]), budget)
        chunks.append((rid, q))
        budget -= q
    while budget > 0 and state.waiting and len(state.running) < max_num_seqs \
            and state.fits(state.waiting[0]):
        rid = state.waiting[0]
        state.admit(rid)
        q = min(int(state.pending[rid]), budget)
        if q:
            chunks.append((rid, q))
            budget -= q
    return chunks


@dataclass(frozen=True)
class PolicyEntry:
    name: str
    summary: str
    options: type[Spec]
    make: Callable          # options -> BatchingPolicy


class CommonOptions(Spec):
    """Options every policy has."""
    max_num_seqs: int = Field(default=256, gt=0, le=1 << 20, description="most requests running at once "
                              "(vLLM's max_num_seqs default, 256)")


POLICIES: dict[str, PolicyEntry] = {}
BUILTIN_POLICY_MODULES = ("static", "continuous", "chunked", "layered")
_loaded = False


def register_policy(name: str, summary: str, options: type[Spec]):
    def wrap(cls):
        cls.name = name
        POLICIES[name] = PolicyEntry(name, summary, options, cls)
        return cls
    return wrap


def load_policies() -> dict[str, PolicyEntry]:
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib
        for module in BUILTIN_POLICY_MODULES:
            importlib.import_module(f"hwsim.mappers.batching.{module}")
    return POLICIES
