"""Disaggregated prefill and decode (Splitwise, Patel et al. ISCA'24; DistServe, Zhong et al.
OSDI'24): one replica of the system prefills every prompt, emitting the first token; the
request's KV cache then crosses the interconnect to a second replica of the same system, which
decodes the rest.

The prefill replica runs `disaggregated.prefill_policy` on the stream with every request ending
at its first token (its blocks freed then). Each request's KV — prompt tokens x the KV bytes per
token of one device — goes over `hardware.link` as one point-to-point transfer per device (each
tensor-parallel rank sends its own shard on its own link), costed by the link model
(hwsim.hw.link.collective_cost: bytes / bandwidth + one step's latency, energy per bit). The
decode replica then serves the requests from the moment their KV has arrived under
`scenario.policy`, with their prompt already cached. Assumed (stated): transfers do not contend
with one another or with the tensor-parallel collectives; the prefill replica never waits for
room on the decode replica (no back-pressure); both replicas share one iteration cache.
"""
from __future__ import annotations

import numpy as np

from hwsim.errors import ConfigError
from hwsim.serving.loop import ServingRun, serve
from hwsim.workloads.arrivals import RequestStream


def kv_transfer(system, tokens: np.ndarray, bytes_per_token: float, key_prefix: str = ""):
    """(seconds, joules of the whole replica) to move `tokens` of KV per request over the link."""
    from hwsim.hw.link import collective_cost
    from hwsim.workloads.ops import Collective, Op, OpKind
    link = system.hardware.link
    if link is None:
        raise ConfigError("disaggregated serving sends the KV cache over hardware.link; add one "
                          "(e.g. link: nvlink3)", key=f"{key_prefix}hardware.link")
    devices = system.workload.tp * system.workload.ep * system.workload.pp
    time_s, energy = np.zeros(len(tokens)), np.zeros(len(tokens))
    for i, t in enumerate(tokens.tolist()):
        nbytes = float(t) * bytes_per_token
        op = Op(name="kv_transfer", kind=OpKind.P2P, layer=-1, dtype=system.workload.dtype, flops=0.0,
                act_in_bytes=nbytes, act_out_bytes=nbytes, collective=Collective(group=2, bytes=nbytes))
        c = collective_cost(op, link)
        time_s[i], energy[i] = c.roofline_ns * 1e-9, c.energy_j * devices
    return time_s, energy


def serve_disaggregated(system, spec, key_prefix: str = "", coster=None,
                        stream: RequestStream | None = None) -> ServingRun:
    stream = stream if stream is not None else spec.arrivals.generate()
    limit = system.workload.model.max_seq_len
    out = np.minimum(stream.output_tokens, np.maximum(limit - stream.prompt_tokens, 1))
    cut = int(np.sum(out < stream.output_tokens))
    stream = RequestStream(stream.arrival_s, stream.prompt_tokens, out)
    pre_spec = spec.model_copy(update={"policy": spec.disaggregated.prefill_policy})
    first_only = RequestStream(stream.arrival_s, stream.prompt_tokens, np.ones_like(out))
    pre = serve(system, pre_spec, key_prefix, stream=first_only, coster=coster)
    transfer_s, transfer_j = kv_transfer(system, stream.prompt_tokens, pre.kv.bytes_per_token, key_prefix)
    more = np.flatnonzero(out > 1)
    ready = pre.first_token_s[more] + transfer_s[more]
    order = np.argsort(ready, kind="stable")
    idx = more[order]
    n = len(stream)
    done = pre.done_s.copy()
    generated = np.ones(n, dtype=np.int64)
    dec = None
    if len(idx):
        dec_stream = RequestStream(ready[order], stream.prompt_tokens[idx], out[idx])
        dec = serve(system, spec, key_prefix, stream=dec_stream, coster=pre.coster, prefilled=True)
        done[idx] = dec.done_s
        generated[idx] = dec.generated
    parts = [pre] + ([dec] if dec is not None else [])
    cat = lambda name: np.concatenate([getattr(r, name) for r in parts])   # noqa: E731
    replica = np.concatenate([np.full(len(r.iter_time_s), k) for k, r in enumerate(parts)])
    base = dec if dec is not None else pre
    return ServingRun(
        stream, pre.admitted_s, pre.first_token_s, done, cat("iter_start_s"), cat("iter_time_s"),
        cat("iter_energy_j"), cat("iter_prefill_tokens"), cat("iter_decode_tokens"), cat("iter_kv_blocks"),
        generated, base.kv, base.peak_blocks, sum(r.idle_energy_j for r in parts), pre.coster.simulations,
        len(pre.coster.cache), pre.coster, base.largest, [], sum(r.preemptions for r in parts),
        sum(r.recomputed_tokens for r in parts), sum(r.preempted_decoding for r in parts),
        cut,
        replicas=2, iter_replica=replica, extra_energy_j=float(transfer_j.sum()), transfer_s=transfer_s)


def serve_replicas(system, spec, key_prefix: str = "", coster=None,
                   stream: RequestStream | None = None) -> ServingRun:
    """`scenario.replicas` identical replicas of the system, colocated prefill and decode each;
    requests are dispatched round-robin in arrival order (no load-aware routing; stated). Each
    replica is simulated on its own (they share nothing but the iteration cache) and the runs
    merged: iterations keep their replica (`iter_replica`), KV figures are the busiest
    replica's."""
    stream = stream if stream is not None else spec.arrivals.generate()
    k = spec.replicas
    n = len(stream)
    runs, parts_idx = [], []
    admitted, first, done = (np.full(n, np.nan) for _ in range(3))
    generated = np.zeros(n, dtype=np.int64)
    out = stream.output_tokens.copy()
    for r in range(k):
        idx = np.arange(r, n, k)
        if not len(idx):
            continue
        sub = RequestStream(stream.arrival_s[idx], stream.prompt_tokens[idx], stream.output_tokens[idx])
        run = serve(system, spec, key_prefix, stream=sub, coster=coster)
        coster = run.coster
        admitted[idx], first[idx], done[idx] = run.admitted_s, run.first_token_s, run.done_s
        generated[idx] = run.generated
        out[idx] = run.stream.output_tokens
        runs.append(run)
    cat = lambda name: np.concatenate([getattr(r, name) for r in runs])   # noqa: E731
    replica = np.concatenate([np.full(len(r.iter_time_s), i) for i, r in enumerate(runs)])
    busiest = max(runs, key=lambda r: r.peak_blocks)
    return ServingRun(
        RequestStream(stream.arrival_s, stream.prompt_tokens, out), admitted, first, done,
        cat("iter_start_s"), cat("iter_time_s"), cat("iter_energy_j"), cat("iter_prefill_tokens"),
        cat("iter_decode_tokens"), cat("iter_kv_blocks"), generated, busiest.kv, busiest.peak_blocks,
        sum(r.idle_energy_j for r in runs), coster.simulations, len(coster.cache), coster,
        busiest.largest, [], sum(r.preemptions for r in runs), sum(r.recomputed_tokens for r in runs),
        sum(r.preempted_decoding for r in runs), sum(r.outputs_cut for r in runs),
        replicas=len(runs), iter_replica=replica)
