#!/usr/bin/env python
"""Cost of modelling every device of a replica on a topology (issue 10, item 4): whole-process
`hwsim run` time, distinct devices and tasks, and how they grow with the device count.

    python benchmarks/bench_replica.py            # median of 3 runs per case
    python benchmarks/bench_replica.py --repeat 1

Cases: the shipped LLaMA-2-70B TP 8 (and its PP 2 x TP 4 baseline) on an HGX H100; DeepSeek-MoE
16B decode (64 experts) with expert parallelism 8, 16, 32, 64 on a 64-port NVSwitch-class switch,
once with balanced routing (the expert groups are identical: one distinct device, the cost must
stay nearly flat) and once Zipf-skewed (every group distinct: the cost grows with them).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import table

REPO = Path(__file__).resolve().parents[1]
HWSIM = [sys.executable, "-m", "hwsim.cli"]

MOE = """name: moe-ep{ep}-{routing}
workload:
  model: deepseek-moe-16b
  phase: decode
  batch: 256
  requests: {{distribution: fixed, context_len: 1024}}
  ep: {ep}
  routing: {{distribution: {routing}, skew: 1.0, seed: 0}}
hardware:
  gpu: h100-sxm
  topology: {{preset: hgx-h100, devices: 64}}
mapper: {{name: gpu}}
"""


def timed_run(config: Path, out: Path, repeat: int) -> tuple[float, dict]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run = subprocess.run([*HWSIM, "run", str(config), "--out", str(out), "--json"],
                             capture_output=True, text=True, cwd=out.parent)
        times.append(time.perf_counter() - t0)
        if run.returncode:
            raise SystemExit(f"{config.name}: {run.stderr.strip()}")
    return statistics.median(times), json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wall, doc = timed_run(REPO / "configs" / "llama2-70b-tp8-hgx.yaml", tmp / "tp8", args.repeat)
        heads = (tmp / "tp8" / "trace.json").stat().st_size
        table("LLaMA-2-70B decode, batch 64, on an HGX H100 (main TP 8 + baseline PP 2 x TP 4)",
              ["case", "whole process s", "iteration ms (TP 8)", "trace.json MB"],
              [["llama2-70b-tp8-hgx", f"{wall:.2f}", f"{doc['metrics']['iteration_latency_s'] * 1e3:.3f}",
                f"{heads / 1e6:.1f}"]])
        rows = []
        for routing in ("balanced", "zipf"):
            for ep in (8, 16, 32, 64):
                path = tmp / f"moe-{routing}-{ep}.yaml"
                path.write_text(MOE.format(ep=ep, routing=routing))
                wall, doc = timed_run(path, tmp / f"moe-{routing}-{ep}", args.repeat)
                m = doc["metrics"]
                rows.append([f"EP {ep}, {routing}", str(m["devices"]), f"{wall:.2f}",
                             f"{m['iteration_latency_s'] * 1e3:.3f}", f"{m['throughput_tokens_per_s']:,.0f}"])
        table("DeepSeek-MoE 16B decode, batch 256, EP on a 64-port switch: whole process",
              ["case", "devices", "wall s", "iteration ms", "tokens/s"], rows)


if __name__ == "__main__":
    main()
