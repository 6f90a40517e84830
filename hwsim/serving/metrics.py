"""Figures of merit of a serving run (`metrics.serving` in `--json`) and the NanoFlow ceiling.

Per request (seconds): TTFT = first token - arrival; TPOT = (completion - first token) /
(output tokens - 1), requests with one output token have none; E2E = completion - arrival;
queueing = admission - arrival. Each as mean, p50, p90, p99 (numpy's linear percentiles).
Rates are over the run, from the first arrival to the last completion. SLO attainment: the share
of requests with TTFT <= slo.ttft_s and TPOT <= slo.tpot_s (a target left unset always holds;
null when neither is set). Energy counts every iteration and static power while idle.

The ceiling (NanoFlow, Zhu et al. OSDI'25, section 3): a token costs at least 2 FLOPs per active
parameter, so one device can process at most peak FLOP/s / (2 x active parameters) tokens/s,
prompt and output tokens alike (LLaMA-2-70B at 312 TFLOPS: 2,229 tok/s per A100 with NanoFlow's
70e9 parameters, 2,261 with the model's 68.98e9 here). This is `optimal`, a hard bound (attention
FLOPs only add): the achieved share compares the tokens processed (prompt + output) per second
per device with it, and no run can exceed 1. The memory side, reported beside it as an estimate
for output tokens only: each decode iteration reads the weights and the KV cache in use; with
the cache full of requests of the stream's mean context (prompt + output / 2), one replica makes
at most (requests that fit) / ((weights + KV capacity) / peak bandwidth) output tokens per
second, per device. `binding` says which of the two is lower (memory: decode-heavy serving
cannot approach the compute bound). The network bound (tensor-parallel all-reduces) is not
computed.
"""
from __future__ import annotations

import math

import numpy as np


def _stats(x: np.ndarray) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    if not len(x):
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"mean": float(x.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}


def per_request(run) -> dict[str, np.ndarray]:
    s = run.stream
    out = run.stream.output_tokens
    tpot = np.where(out > 1, (run.done_s - run.first_token_s) / np.maximum(out - 1, 1), np.nan)
    return {"ttft_s": run.first_token_s - s.arrival_s, "tpot_s": tpot, "e2e_s": run.done_s - s.arrival_s,
            "queueing_s": run.admitted_s - s.arrival_s}


def slo_attainment(req: dict[str, np.ndarray], slo) -> float | None:
    if slo.ttft_s is None and slo.tpot_s is None:
        return None
    ok = np.ones(len(req["ttft_s"]), dtype=bool)
    if slo.ttft_s is not None:
        ok &= req["ttft_s"] <= slo.ttft_s
    if slo.tpot_s is not None:
        ok &= ~(req["tpot_s"] > slo.tpot_s)          # NaN (one output token): no TPOT to miss
    return float(ok.mean())


def compute_bound_tokens_per_s(peak_flops_per_s: float, model) -> float:
    """NanoFlow's compute-bound optimum of one device: peak / (2 x active parameters)."""
    return peak_flops_per_s / (2.0 * model.param_count(active=True))


def ceiling(run, system) -> dict[str, float | str]:
    """The NanoFlow optimum per device (module docstring)."""
    w = system.workload
    devices = w.tp * w.ep * w.pp
    active = w.model.param_count(active=True)
    peak = run.coster.peak_flops_per_s()
    compute = compute_bound_tokens_per_s(peak, w.model)
    kv = run.kv
    s = run.stream
    mean_ctx = float(np.mean(s.prompt_tokens) + np.mean(s.output_tokens) / 2.0)
    kv_tokens = kv.tokens
    fit = kv_tokens / mean_ctx
    read_s = (kv.weight_bytes + kv_tokens * kv.bytes_per_token) / run.coster.peak_memory_bw()
    memory = fit / read_s / devices if read_s > 0 else math.inf   # one replica's devices
    return {"optimal_tokens_per_s_per_device": compute,
            "compute_bound_tokens_per_s_per_device": compute,
            "memory_bound_output_tokens_per_s_per_device": memory,
            "binding": "compute" if compute <= memory else "memory",
            "active_params": float(active), "peak_flops_per_device": peak}


def serving_metrics(run, system, spec) -> dict:
    """The `metrics.serving` section of a run's JSON."""
    req = per_request(run)
    s = run.stream
    w = system.workload
    devices = w.tp * w.ep * w.pp * run.replicas
    duration = run.end_s - float(s.arrival_s.min())
    out_tokens = int(run.generated.sum())
    all_tokens = out_tokens + int(s.prompt_tokens.sum())
    ceil = ceiling(run, system)
    achieved = all_tokens / duration / devices if duration > 0 else math.inf
    ceil["achieved_tokens_per_s_per_device"] = achieved
    ceil["achieved_share"] = achieved / ceil["optimal_tokens_per_s_per_device"]
    out_rate = out_tokens / duration / devices if duration > 0 else math.inf
    ceil["achieved_output_share_of_memory_bound"] = out_rate / ceil["memory_bound_output_tokens_per_s_per_device"]
    kv = run.kv
    return {
        "policy": spec.policy.name if spec.disaggregated is None else
        f"disaggregated ({spec.disaggregated.prefill_policy.name} prefill, {spec.policy.name} decode)",
        "replicas": run.replicas,
        "requests": len(s),
        "outputs_cut_to_context": run.outputs_cut,
        "duration_s": duration,
        **{k: _stats(v) for k, v in req.items()},
        "output_tokens": out_tokens,
        "prompt_tokens": int(s.prompt_tokens.sum()),
        "output_tokens_per_s": out_tokens / duration if duration > 0 else math.inf,
        "output_tokens_per_s_per_device": out_tokens / duration / devices if duration > 0 else math.inf,
        "requests_per_s": len(s) / duration if duration > 0 else math.inf,
        "slo": {"ttft_s": spec.slo.ttft_s, "tpot_s": spec.slo.tpot_s, "attainment": spec.slo.attainment},
        "slo_attainment": slo_attainment(req, spec.slo),
        "goodput_rps": None,
        "energy_j": run.energy_j,
        "energy_per_output_token_j": run.energy_j / out_tokens,
        "iterations": len(run.iter_time_s),
        "mean_iteration_s": float(run.iter_time_s.mean()),
        "mean_tokens_per_iteration": float((run.iter_prefill_tokens * (
            1.0 if run.iter_prefill_share is None else run.iter_prefill_share) + run.iter_decode_tokens).mean()),
        "kv_cache": {"allocation": spec.kv_allocation, "preemptions": run.preemptions,
                     "recomputed_tokens": run.recomputed_tokens,
                     "blocks": kv.blocks, "block_tokens": kv.block_tokens, "capacity_tokens": kv.tokens,
                     "bytes_per_token_per_device": kv.bytes_per_token,
                     "peak_blocks": run.peak_blocks, "peak_share": run.peak_blocks / kv.blocks},
        "ceiling": ceil,
        "expert_weight_bytes": (float(run.iter_expert_bytes.sum()) if run.iter_expert_bytes is not None
                                else None),
        "cost_model": {"pass_simulations": run.simulations, "cache_entries": run.cache_entries,
                       "one_layer_extension": run.coster.extend,
                       "extension_error": max(run.coster.extension_error.values(), default=None)},
    }


def chrome_trace(run, name: str = "replica") -> dict:
    """The run as a Chrome/Perfetto trace (ui.perfetto.dev): process 1 is the replica, one track
    of its iterations — a prefill or mixed iteration is one slice; consecutive decode-only
    iterations of one batch size are one slice ("decode 45 x 12"; iterations.csv has each) —
    with a counter of the KV blocks reserved; process 2 holds the requests, one slice per phase
    — "queued" (arrival to admission), "prefill" (admission to first token), "decode" (first
    token to the last) — on lanes packed so that no two slices of a lane overlap
    (hwsim.sim.trace.pack_lanes). Times in microseconds."""
    from hwsim.sim.trace import pack_lanes
    us = 1e6
    ev: list[dict] = [
        {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": name}},
        {"name": "process_name", "ph": "M", "pid": 2, "args": {"name": "requests"}}]
    rep = (run.iter_replica if run.iter_replica is not None else np.zeros(len(run.iter_time_s), dtype=int)).tolist()
    names = (["iterations"] if run.replicas == 1 else
             [f"replica {k}" for k in range(run.replicas)] if run.transfer_s is None else
             ["prefill replica", "decode replica"])
    ev += [{"name": "thread_name", "ph": "M", "pid": 1, "tid": k, "args": {"name": nm}} for k, nm in enumerate(names)]
    start, dur = (run.iter_start_s * us).tolist(), (run.iter_time_s * us).tolist()
    pre, dec, kv = run.iter_prefill_tokens.tolist(), run.iter_decode_tokens.tolist(), run.iter_kv_blocks.tolist()
    i, n = 0, len(start)
    while i < n:
        j = i + 1
        if not pre[i]:          # a run of decode-only iterations of one batch size, back to back
            while j < n and not pre[j] and dec[j] == dec[i] and kv[j] == kv[i] and rep[j] == rep[i] \
                    and abs(start[j] - (start[j - 1] + dur[j - 1])) < 1e-3:
                j += 1
        steps = j - i
        label = (f"prompt {pre[i]} + decode {dec[i]}" if pre[i] else
                 f"decode {dec[i]}" + (f" x {steps}" if steps > 1 else ""))
        ev.append({"name": label, "ph": "X", "pid": 1, "tid": rep[i], "ts": start[i],
                   "dur": start[j - 1] + dur[j - 1] - start[i],
                   "args": {"iterations": steps, "prompt_tokens": pre[i], "decode_tokens": dec[i]}})
        if rep[i] == len(names) - 1 and (i == 0 or kv[i] != kv[i - 1]):   # the (last) replica's KV
            ev.append({"name": "KV blocks", "ph": "C", "pid": 1, "ts": start[i], "args": {"reserved": kv[i]}})
        i = j
    s = run.stream
    lanes = pack_lanes(s.arrival_s, run.done_s)
    phases = (("queued", s.arrival_s, run.admitted_s), ("prefill", run.admitted_s, run.first_token_s),
              ("decode", run.first_token_s, run.done_s))
    for i, lane in enumerate(lanes.tolist()):
        for label, a, b in phases:
            if b[i] > a[i]:
                ev.append({"name": f"{label} r{i}", "ph": "X", "pid": 2, "tid": lane + 1,
                           "ts": float(a[i]) * us, "dur": float(b[i] - a[i]) * us,
                           "args": {"prompt": int(s.prompt_tokens[i]), "output": int(s.output_tokens[i])}})
    return {"traceEvents": ev, "displayTimeUnit": "ms"}
