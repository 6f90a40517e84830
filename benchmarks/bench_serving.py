#!/usr/bin/env python
"""Wall time of the serving scenario vs the number of requests (issue 12, item 8).

    python benchmarks/bench_serving.py                       # 1k, 3k, 10k requests, continuous
    python benchmarks/bench_serving.py --requests 1000 3000 --policy chunked
    python benchmarks/bench_serving.py --sweep            # static vs continuous vs chunked vs load
    python benchmarks/bench_serving.py --replicas 1 2 4   # 10k requests on R replicas at 8 R req/s

Each row is a fresh process (`python -c`: import hwsim, load configs/serving-llama2-7b-a100.yaml
with `scenario.arrivals.num_requests=N`, evaluate), the whole-process wall time measured from
outside, and its CPU time (user + system: on a shared machine the wall time grows with the
load of other processes, the CPU time much less); plus the in-process split (import + load, the serving loop), the iterations, the pass
simulations the iteration cache needed, and the cost per request. `--cli` also times the full
`hwsim run --json` (results folder, plots) for the largest N. `--replicas R ...` serves the
largest N on R round-robin replicas (`scenario.replicas`) at 8 R req/s, the same load per replica:
each replica is simulated (one shared iteration cache), so the cost follows the total requests and
the per-replica iteration counts, not R itself. `--sweep` serves the same
500 requests at rising Poisson rates under each policy in one process (one iteration cache) and
prints throughput and latency: the gap between static and continuous batching and where
latency turns up (the knee). Target: 10,000 requests of
LLaMA-2-7B on one A100 in <= 10 s whole-process on the 2-core development machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from timing import table

SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.pipeline import evaluate
cfg = load_config(CONFIG_DIR / "serving-llama2-7b-a100.yaml", sys.argv[1:])
t1 = time.perf_counter()
sv = evaluate(cfg).main.metrics.serving
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "evaluate_s": t2 - t1, "iterations": sv["iterations"],
                  "simulations": sv["cost_model"]["pass_simulations"],
                  "tok_s": sv["output_tokens_per_s"]}))
"""


def run(n: int, policy: str, replicas: int = 1) -> dict:
    args = [f"scenario.arrivals.num_requests={n}", f"scenario.policy={{name: {policy}}}"]
    if replicas > 1:
        args += [f"scenario.replicas={replicas}", f"scenario.arrivals.rate_per_s={8 * replicas}"]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", SNIPPET, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise SystemExit(out.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, **json.loads(out.stdout)}


def sweep(rates: list[float], n: int) -> None:
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.serving.loop import serve
    from hwsim.serving.metrics import serving_metrics
    cfg = load_config(CONFIG_DIR / "serving-llama2-7b-a100.yaml", [f"scenario.arrivals.num_requests={n}"])
    system, coster, rows = cfg.main, None, []
    for rate in rates:
        for policy in ("static", "continuous", "chunked"):
            spec = system.scenario.model_copy(update={
                "arrivals": system.scenario.arrivals.model_copy(update={"rate_per_s": rate}),
                "policy": type(system.scenario.policy)(name=policy)})
            t0 = time.perf_counter()
            run = serve(system, spec, coster=coster)
            coster = run.coster
            d = serving_metrics(run, system, spec)
            rows.append([f"{rate:g}", policy, f"{d['output_tokens_per_s']:,.0f}", f"{d['requests_per_s']:.2f}",
                         f"{d['ttft_s']['p50'] * 1e3:,.0f}", f"{d['ttft_s']['p99'] * 1e3:,.0f}",
                         f"{d['tpot_s']['p50'] * 1e3:.1f}", f"{d['tpot_s']['p99'] * 1e3:.1f}",
                         f"{d['e2e_s']['p50']:.2f}", f"{d['slo_attainment']:.3f}",
                         f"{d['ceiling']['achieved_share'] * 100:.1f}%", f"{time.perf_counter() - t0:.1f}"])
    table(f"LLaMA-2-7B on one A100, {n} ShareGPT-like requests, Poisson, SLO TTFT <= 1 s and TPOT <= 100 ms",
          ["req/s offered", "policy", "output tok/s", "req/s", "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms",
           "TPOT p99 ms", "E2E p50 s", "SLO met", "of optimal", "sim s"], rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--policy", default="continuous")
    ap.add_argument("--cli", action="store_true", help="also time `hwsim run --json` at the largest N")
    ap.add_argument("--sweep", action="store_true", help="policies vs load instead (500 requests)")
    ap.add_argument("--replicas", type=int, nargs="+", default=[],
                    help="also serve the largest N on R replicas at 8 R req/s, for each R")
    a = ap.parse_args()
    if a.sweep:
        sweep([2, 4, 8, 16, 32, 64], 500)
        return
    rows = []
    for n in a.requests:
        r = run(n, a.policy)
        rows.append([f"{n:,}", f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}", f"{r['load_s']:.2f}", f"{r['evaluate_s']:.2f}",
                     f"{r['iterations']:,}", f"{r['simulations']:,}", f"{r['wall_s'] / n * 1e3:.2f}",
                     f"{r['tok_s']:,.0f}"])
    table(f"serving LLaMA-2-7B on one A100, {a.policy} batching, Poisson 8 req/s (ShareGPT-like)",
          ["requests", "process s", "process CPU s", "import+load s", "serve s", "iterations", "pass sims",
           "ms/request", "output tok/s"], rows)
    if a.replicas:
        n, rows = max(a.requests), []
        for k in a.replicas:
            r = run(n, a.policy, k)
            rows.append([str(k), f"{8 * k:g}", f"{n:,}", f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}",
                         f"{r['evaluate_s']:.2f}",
                         f"{r['iterations']:,}", f"{r['simulations']:,}", f"{r['tok_s']:,.0f}"])
        table(f"the same {n:,} requests on R replicas, 8 req/s per replica ({a.policy} batching)",
              ["replicas", "req/s", "requests", "process s", "process CPU s", "serve s", "iterations", "pass sims",
               "output tok/s"], rows)
    if a.cli:
        n = max(a.requests)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hwsim.cli", "run", "serving-llama2-7b-a100", "--json",
                            "--out", tmp, "--set", f"scenario.arrivals.num_requests={n}",
                            "--set", f"scenario.policy={{name: {a.policy}}}"],
                           capture_output=True, check=True, env={**os.environ, "MPLBACKEND": "Agg"})
            print(f"\n`hwsim run --json` with {n:,} requests (results folder and plots included): "
                  f"{time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
