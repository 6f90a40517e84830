"""Batching-policy registry and the state a policy reads.

A policy is a mapper-side decision (DESIGN.md: "what runs when"): before each iteration of a
replica the serving loop (hwsim.serving) asks it for the next ``Batch`` — which requests compute
which tokens — given the ``ServingState`` (requests waiting, requests running, the paged KV
cache). The policy admits requests (moving them from `waiting` to `running` and reserving their
KV blocks through the state); the loop costs the batch, advances time and applies its tokens.

KV cache (vLLM's PagedAttention, Kwon et al. SOSP'23): blocks of `block_tokens` tokens. A request
is admitted only when blocks for its whole prompt plus all its output tokens are free (a
reservation at admission, as Orca's scheduler does for the maximum length, Yu et al. OSDI'22:
the simulator knows each request's output length); until then it waits, first come first served
(a request that does not fit blocks those behind it). So the cache can never overflow and no
request is preempted. vLLM instead allocates blocks as tokens are generated and preempts (by
recompute) when the cache fills; that is not modelled (stated).
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
    `decode` = requests computing one token each."""
    prefill: list[tuple[int, int]] = field(default_factory=list)
    decode: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def tokens(self) -> int:
        return sum(q for _, q in self.prefill) + len(self.decode)

    def __bool__(self) -> bool:
        return bool(self.prefill) or len(self.decode) > 0


@dataclass
class ServingState:
    """What the serving loop tracks per request (arrays indexed by request id), and the queues."""
    prompt: np.ndarray                   # prompt tokens
    output: np.ndarray                   # output tokens to generate
    block_tokens: int                    # tokens per KV block
    total_blocks: int                    # KV blocks of the replica
    prefilled: np.ndarray = None         # prompt tokens computed so far
    generated: np.ndarray = None         # output tokens generated so far
    waiting: deque = field(default_factory=deque)   # arrived, not admitted (FCFS)
    running: list = field(default_factory=list)     # admitted, not finished (admission order)
    used_blocks: int = 0
    peak_blocks: int = 0

    def __post_init__(self):
        n = len(self.prompt)
        self.prefilled = np.zeros(n, dtype=np.int64)
        self.generated = np.zeros(n, dtype=np.int64)
        self.blocks = -(-(self.prompt + self.output) // self.block_tokens)   # reserved at admission

    def held_tokens(self, rids) -> np.ndarray:
        """Tokens in the KV cache of each request: its computed prompt tokens plus every output
        token but the newest (whose KV its next decode step writes)."""
        return self.prefilled[rids] + np.maximum(self.generated[rids] - 1, 0)

    def fits(self, rid: int) -> bool:
        return self.used_blocks + int(self.blocks[rid]) <= self.total_blocks

    def admit(self, rid: int) -> None:
        """Move the head of `waiting` to `running`, reserving its blocks."""
        assert self.waiting[0] == rid and self.fits(rid)
        self.waiting.popleft()
        self.running.append(rid)
        self.used_blocks += int(self.blocks[rid])
        self.peak_blocks = max(self.peak_blocks, self.used_blocks)

    def release(self, rid: int) -> None:
        self.used_blocks -= int(self.blocks[rid])

    def decoding(self) -> np.ndarray:
        """Running requests whose prompt is done (they decode), in admission order."""
        run = np.asarray(self.running, dtype=np.int64)
        return run[self.prefilled[run] == self.prompt[run]] if len(run) else run

    def prefilling(self) -> list[int]:
        return [r for r in self.running if self.prefilled[r] < self.prompt[r]]


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
BUILTIN_POLICY_MODULES = ("static", "continuous", "chunked")
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
