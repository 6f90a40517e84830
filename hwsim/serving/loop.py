"""The serving event loop: one replica serving a request stream, iteration by iteration.

Time advances by whole iterations (Orca's iteration-level model): before each one, requests that
have arrived join the waiting queue and the batching policy (hwsim.mappers.batching) picks the
batch, admitting requests whose KV blocks it reserves; the iteration's time and energy come from
the pass machinery (hwsim.serving.cost); when it ends, every prompt chunk's tokens enter the KV
cache, a request whose prompt is complete emits its first output token, each decoding request
emits one more, and requests with all their output tokens leave and free their blocks. When
nothing can run, the replica idles (static power only) until the next arrival.

Per request it records arrival, admission (the end of queueing), first token and completion;
per iteration its start, time, energy, tokens and KV blocks in use. A request whose prompt plus
output exceeds the model's max_seq_len stops generating there (vLLM's max_model_len), counted
in `outputs_cut`; a prompt that alone exceeds it is an input error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.mappers import MAPPERS
from hwsim.mappers.batching import load_policies
from hwsim.mappers.batching.registry import ServingState
from hwsim.serving.cost import IterationCoster
from hwsim.workloads.arrivals import RequestStream
from hwsim.workloads.ops import DTYPE_BYTES


@dataclass
class KVBudget:
    """The paged KV cache of one replica, per device: memory the engine may use, minus the
    weights, in blocks of `block_tokens`."""
    capacity_bytes: float          # one device's memory
    usable_bytes: float            # x memory_utilization
    weight_bytes: float            # resident per device
    bytes_per_token: float         # KV of one token, one device (all its layers)
    block_tokens: int

    @property
    def blocks(self) -> int:
        return int((self.usable_bytes - self.weight_bytes) // (self.bytes_per_token * self.block_tokens))

    @property
    def tokens(self) -> int:
        return self.blocks * self.block_tokens


def kv_budget(system, spec, key_prefix: str = "") -> KVBudget:
    from hwsim.workloads.transformer import transformer_info
    w = system.workload
    m = w.model
    capacity = system.hardware.memory_capacity_bytes(MAPPERS[system.mapper.name].needs)
    if capacity is None:
        raise ConfigError("serving needs a device with off-chip memory for the KV cache",
                          key=f"{key_prefix}hardware")
    info = transformer_info(w.model_copy(update={"phase": "decode", "batch": 1}))
    kv_bytes = DTYPE_BYTES[w.attention_dtype or w.dtype]          # the cache's dtype
    per_token = m.kv_cache_elements(w.tp) * kv_bytes * (m.n_layers // w.pp)
    budget = KVBudget(capacity, capacity * spec.memory_utilization, info.weight_bytes_per_device,
                      per_token, spec.kv_block_tokens)
    if budget.blocks <= 0:
        raise ConfigError(f"no room for a KV cache: weights {budget.weight_bytes / 1e9:.2f} GB per device "
                          f"fill {spec.memory_utilization:g} of {capacity / 1e9:.2f} GB (raise tp or "
                          f"scenario.memory_utilization, or add memory)", key=f"{key_prefix}workload.model")
    return budget


@dataclass
class ServingRun:
    """What one serving simulation produced (times in seconds from the first arrival)."""
    stream: RequestStream
    admitted_s: np.ndarray
    first_token_s: np.ndarray
    done_s: np.ndarray
    iter_start_s: np.ndarray
    iter_time_s: np.ndarray
    iter_energy_j: np.ndarray
    iter_prefill_tokens: np.ndarray
    iter_decode_tokens: np.ndarray
    iter_kv_blocks: np.ndarray        # blocks reserved during the iteration
    generated: np.ndarray             # output tokens each request produced
    kv: KVBudget
    peak_blocks: int
    idle_energy_j: float              # static power while no iteration ran
    simulations: int                  # pass simulations the cache needed
    cache_entries: int
    coster: IterationCoster
    largest: tuple = None             # (new tokens, cached tokens) of the iteration with most requests
    samples: list = None              # sample_every: [(chunks, decode contexts)] of sampled iterations
    preemptions: int = 0              # kv_allocation on_demand: recompute preemptions
    recomputed_tokens: int = 0        # prefill tokens computed again after them
    preempted_decoding: int = 0       # preemptions of requests that had emitted tokens
    outputs_cut: int = 0              # requests whose output was cut to the model's context
    replicas: int = 1                 # replicas that served the stream (2: disaggregated)
    iter_replica: np.ndarray = None   # which replica ran each iteration (disaggregated)
    extra_energy_j: float = 0.0       # energy outside iterations and idle (KV transfers)
    transfer_s: np.ndarray = None     # disaggregated: each request's KV transfer time
    iter_expert_bytes: np.ndarray = None  # routed-expert weight bytes each iteration read (MoE)
    iter_prefill_share: np.ndarray = None  # share of the layers its prompt tokens ran through
                                           # (layered prefill: one group's; else 1)

    @property
    def end_s(self) -> float:
        return float(self.done_s.max())

    @property
    def energy_j(self) -> float:
        return float(self.iter_energy_j.sum()) + self.idle_energy_j + self.extra_energy_j


def group_layers(group: tuple[int, int], n_layers: int) -> tuple[int, int]:
    """Layers (first, stop) of layer group g of n: contiguous, as even as the count allows."""
    g, n = group
    return round(g * n_layers / n), round((g + 1) * n_layers / n)


def check_serving_system(system, key_prefix: str = "") -> None:
    w = system.workload
    key = f"{key_prefix}workload"
    if w.kind != "transformer":
        raise ConfigError("the serving scenario serves Transformer decoders", key=f"{key}.kind")
    if w.pp > 1 or w.ep > 1:
        raise ConfigError("the serving scenario models one replica with tensor parallelism only "
                          "(pp = ep = 1)", key=f"{key}.{'pp' if w.pp > 1 else 'ep'}")
    if system.hardware.topology is not None:
        raise ConfigError("the serving scenario costs iterations on one device (with hardware.link "
                          "for tp > 1); drop hardware.topology", key=f"{key_prefix}hardware.topology")


def serve(system, spec, key_prefix: str = "", stream: RequestStream | None = None,
          coster: IterationCoster | None = None, sample_every: int = 0,
          prefilled: bool = False) -> ServingRun:
    """Serve `stream` (default: the spec's arrivals) on one replica of `system` under the spec's
    batching policy. `coster`: reuse another run's iteration cache (same system).
    `sample_every`: keep the shape of every so many iterations (``ServingRun.samples``).
    `prefilled`: the requests arrive with their prompt in the KV cache and their first token
    emitted (a decode replica of a disaggregated deployment; `arrival_s` = when their KV has
    arrived); first_token_s is then their arrival."""
    check_serving_system(system, key_prefix)
    stream = stream if stream is not None else spec.arrivals.generate()
    kv = kv_budget(system, spec, key_prefix)
    n = len(stream)
    prompt, output, arrival = stream.prompt_tokens, stream.output_tokens, stream.arrival_s
    limit = system.workload.model.max_seq_len
    if int(prompt.max()) >= limit:
        i = int(np.argmax(prompt))
        raise ConfigError(f"request {i} has a {int(prompt[i])}-token prompt but "
                          f"{system.workload.model.name} supports max_seq_len={limit}",
                          key=f"{key_prefix}scenario.arrivals")
    cut = int(np.sum(prompt + output > limit))
    if cut:                  # generation stops at the model's context, as vLLM's max_model_len
        output = np.minimum(output, limit - prompt)
        stream = RequestStream(arrival, prompt, output)
    longest = int((prompt + output).max())
    state = ServingState(prompt, output, kv.block_tokens, kv.blocks, on_demand=spec.kv_allocation == "on_demand")
    if prefilled:
        state.pending[:] = 0
        state.held[:] = prompt
        state.generated[:] = 1
    if -(-longest // kv.block_tokens) > kv.blocks:
        raise ConfigError(f"a request of {longest} tokens needs more KV blocks than the replica has "
                          f"({kv.blocks} blocks of {kv.block_tokens} tokens)", key=f"{key_prefix}scenario.arrivals")
    policy = load_policies()[spec.policy.name].make(spec.policy.options)
    coster = coster or IterationCoster(system, key_prefix)
    static_w = None

    first = arrival.astype(float).copy() if prefilled else np.full(n, math.nan)
    done = np.full(n, math.nan)
    it_start, it_time, it_energy, it_pre, it_dec, it_kv = [], [], [], [], [], []
    it_expert, it_share = [], []
    n_layers = system.workload.model.n_layers
    t, nxt, finished, idle_s = 0.0, 0, 0, 0.0
    most, largest, samples = (0, 0), None, []
    held, pending, generated, owned = state.held, state.pending, state.generated, state.owned
    bt = kv.block_tokens
    while finished < n:
        while nxt < n and arrival[nxt] <= t:
            state.waiting.append(nxt)
            nxt += 1
        state.now = t
        batch = policy.next_batch(state)
        if not batch:
            if nxt >= n:
                raise RuntimeError("serving loop stalled: requests wait but none can be admitted")
            idle_s += arrival[nxt] - t
            t = float(arrival[nxt])
            continue
        dec = batch.decode
        dec_ctx = held[dec]
        chunks = [(q, int(held[r])) for r, q in batch.prefill]
        size = (len(dec) + len(chunks), len(dec))       # most requests, then most decoding
        if size > most:
            most = size
            largest = (np.asarray([q for q, _ in chunks] + [1] * len(dec), dtype=np.int64),
                       np.asarray([cc for _, cc in chunks] + dec_ctx.tolist(), dtype=np.int64))
        steps = 1
        group = batch.prefill_group
        if chunks or not policy.decode_runs:
            c = (coster.cost(chunks, dec_ctx) if group is None else
                 coster.layered_cost(chunks, dec_ctx, group_layers(group, n_layers)))
            if sample_every and len(it_time) % sample_every == 0:
                samples.append((list(chunks), dec_ctx.copy()))
            it_start.append(t)
            it_kv.append(state.used_blocks)
            t += c.time_s
            it_time.append(c.time_s)
            it_energy.append(c.energy_j)
            it_pre.append(sum(q for q, _ in chunks))
            it_dec.append(len(dec))
            it_expert.append(c.expert_bytes)
            if group is not None:
                first_l, stop_l = group_layers(group, n_layers)
                it_share.append((stop_l - first_l) / n_layers)
            else:
                it_share.append(1.0)
        else:
            # A run of decode-only iterations over the same requests: it repeats unchanged until
            # a request finishes or arrives, or (on_demand) needs a new KV block (the policy's
            # `decode_runs`), each step one token longer per request; stepped here without
            # asking the policy again.
            d = len(dec)
            most_steps = int((output[dec] - generated[dec]).min())
            if state.on_demand:
                most_steps = min(most_steps, int((owned[dec] * bt - dec_ctx).min()))
            t_next = float(arrival[nxt]) if nxt < n else math.inf
            blocks = state.used_blocks
            steps = 0
            while steps < most_steps:
                if sample_every and len(it_time) % sample_every == 0:
                    samples.append(([], dec_ctx + steps))
                c = coster.decode_cost(dec_ctx + steps)
                it_start.append(t)
                it_kv.append(blocks)
                t += c.time_s
                it_time.append(c.time_s)
                it_energy.append(c.energy_j)
                it_pre.append(0)
                it_dec.append(d)
                it_expert.append(c.expert_bytes)
                it_share.append(1.0)
                steps += 1
                if t >= t_next:
                    break
        ended = []
        for rid, q in (batch.prefill if group is None or group[0] == group[1] - 1 else ()):
            held[rid] += q
            pending[rid] -= q
            if pending[rid] == 0:                  # the prefill emits the next output token
                generated[rid] += 1
                state.changed()
                if generated[rid] == 1:
                    first[rid] = t
                if generated[rid] >= output[rid]:
                    ended.append(rid)
        if len(dec):
            held[dec] += steps
            generated[dec] += steps
            ended.extend(dec[generated[dec] >= output[dec]].tolist())
        if ended:
            gone = set(ended)
            for rid in ended:
                done[rid] = t
                state.release(rid)
            state.running = [r for r in state.running if r not in gone]
            state.changed()
            finished += len(ended)
    if coster.last_schedule is not None:
        static_w = sum(coster.last_schedule.static_power_w.values()) * coster.devices
    return ServingRun(stream, state.admitted_s, first, done, np.asarray(it_start), np.asarray(it_time),
                      np.asarray(it_energy), np.asarray(it_pre, dtype=np.int64),
                      np.asarray(it_dec, dtype=np.int64), np.asarray(it_kv, dtype=np.int64),
                      generated.copy(), kv, state.peak_blocks, (static_w or 0.0) * idle_s,
                      coster.simulations, len(coster.cache), coster, largest, samples,
                      state.preemptions, state.recomputed_tokens, state.preempted_decoding, cut,
                      iter_expert_bytes=np.asarray(it_expert), iter_prefill_share=np.asarray(it_share))
