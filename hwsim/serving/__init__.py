"""The `serving` scenario (issue 12): one replica of a system serves a request stream.

- ``spec``: the `scenario:` section (arrivals, batching policy, SLOs, KV block size);
- ``loop``: the event loop over iterations, the paged KV budget;
- ``disagg``: prefill and decode on two replicas, the KV cache sent over the link;
- ``cost``: each iteration's time and energy from the pass machinery, through a cache;
- ``metrics``: TTFT, TPOT, E2E, queueing, rates, SLO attainment, goodput, the NanoFlow ceiling.
The batching policies are mapper-side decisions: hwsim.mappers.batching.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ServingScenario:
    """Serve `system.scenario.arrivals` on one replica of `system` (module docstring)."""
    name: str = "serving"

    def run(self, system, key_prefix: str = ""):
        from hwsim.scenarios import PassScenario
        from hwsim.serving.metrics import serving_metrics
        spec = system.scenario
        run = _serve(system, spec, key_prefix, _coster_of(system, key_prefix))
        doc = serving_metrics(run, system, spec)
        if spec.goodput.search:
            doc["goodput_rps"], doc["goodput_search"] = goodput(system, spec, run, doc, key_prefix)
            if doc["goodput_rps"] is not None:      # the sweep objective of issue 12 item 7
                w = system.workload
                doc["goodput_rps_per_device"] = doc["goodput_rps"] / (w.tp * w.ep * w.pp * run.replicas)
        # The graph, schedule and trace shown are those of the run's largest iteration (most
        # requests), a full pass (every layer) of its exact shape.
        query, cached = run.largest
        w = run.coster.workload(query, cached, full=True)
        rep = PassScenario().run(system.model_copy(update={"workload": w}), key_prefix)
        return dataclasses.replace(rep, metrics=metrics_of(run, rep.metrics, doc), serving=run)


def _serve(system, spec, key_prefix, coster, stream=None):
    """One replica, `replicas` round-robin replicas, or a prefill and a decode replica."""
    from hwsim.serving.disagg import serve_disaggregated, serve_replicas
    from hwsim.serving.loop import serve
    if spec.disaggregated is not None:
        return serve_disaggregated(system, spec, key_prefix, coster=coster, stream=stream)
    if spec.replicas > 1:
        return serve_replicas(system, spec, key_prefix, coster=coster, stream=stream)
    return serve(system, spec, key_prefix, stream=stream, coster=coster)


_COSTERS: dict = {}          # iteration caches by system (workload, hardware, mapper), newest last
_COSTERS_KEPT = 4


def _coster_of(system, key_prefix: str = ""):
    """One iteration cache per system, shared by the runs of one process that serve it (the
    main system and baselines that differ only in their policy or arrivals; goodput searches)."""
    from hwsim.serving.cost import IterationCoster
    key = "|".join(x.model_dump_json() for x in (system.workload, system.hardware, system.mapper))
    coster = _COSTERS.pop(key, None) or IterationCoster(system, key_prefix)
    _COSTERS[key] = coster
    while len(_COSTERS) > _COSTERS_KEPT:
        _COSTERS.pop(next(iter(_COSTERS)))
    return coster


def metrics_of(run, rep, doc):
    """The largest iteration's pass metrics (throughput, latency, energy, utilization, bytes:
    one full pass, as any pass run reports them, so every physics check of a pass holds), with
    the run's figures under `serving`."""
    return dataclasses.replace(rep, serving=doc)


def goodput(system, spec, run, doc, key_prefix: str = ""):
    """The highest arrival rate whose SLO attainment reaches `slo.attainment`: the same
    requests with their gaps rescaled, bisected on the rate (`goodput.iterations` steps), the
    iteration cache shared. None when no SLO is set or the process is a trace."""
    from hwsim.serving.metrics import per_request, slo_attainment
    from hwsim.workloads.arrivals import RequestStream
    if doc["slo_attainment"] is None or spec.arrivals.process == "trace":
        return None, None
    stream, base = run.stream, spec.arrivals.rate_per_s
    hi = spec.goodput.max_rate_per_s
    if hi is None:
        per_req = float(np.mean(stream.prompt_tokens + stream.output_tokens))
        c = doc["ceiling"]
        hi = 4.0 * c["optimal_tokens_per_s_per_device"] * system.workload.tp * run.replicas / per_req
    steps = []

    def attained(rate: float) -> bool:
        scaled = RequestStream(stream.arrival_s * (base / rate), stream.prompt_tokens, stream.output_tokens)
        r = _serve(system, spec, key_prefix, run.coster, stream=scaled)
        a = slo_attainment(per_request(r), spec.slo)
        steps.append({"rate_per_s": rate, "slo_attainment": a})
        return a >= spec.slo.attainment

    lo = 0.0
    if attained(hi):
        return hi, {"steps": steps, "note": "the upper end of the search meets the SLO"}
    for _ in range(spec.goodput.iterations):
        mid = (lo + hi) / 2.0
        if attained(mid):
            lo = mid
        else:
            hi = mid
    return (lo if lo > 0 else None), {"steps": steps}
