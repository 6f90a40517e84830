#!/usr/bin/env python
"""Whole-process time of `hwsim run` for DeepSeek-R1 decode on CloudMatrix384 from 8 to 384 NPUs
(issue 13, item 9: the 160-NPU decode iteration in <= 5 s; how the time grows with devices).

    python benchmarks/bench_scaleout.py                        # balanced at every size, skew at 8 NPUs
    python benchmarks/bench_scaleout.py --repeat 3 --skew-npus 8 32 --batch-per-npu 32

Every point is `hwsim run configs/cloudmatrix384-decode.yaml --set ...` in a fresh process (the
imports, the config, the simulation and the whole results folder: trace.json, timeline, plots),
timed as the median of `--repeat` runs: wall seconds, and CPU seconds of the child (user + sys,
which other work on a shared machine disturbs less). One rank per Ascend 910C die, two dies per
NPU; the EP degree is 2 x NPUs, with the expert layouts below (256 routed experts; the 160-NPU
row is the shipped config's layout, EP320 with 32 redundant experts and 32 shared-expert dies).

Balanced routing (an EPLB ideal) makes the dies of each kind identical: they are simulated once
and counted (`distinct` = dies simulated), so the time should barely grow with the NPU count.
Zipf-skewed routing (`workload.routing.distribution=zipf`, skew 1) gives every die its own
expert load, so every die is simulated: cost grows with distinct devices (tens of seconds at 32
NPUs), hence skew only at the sizes asked for. The batch per NPU defaults to 32, the largest of
the paper's operating points that fits a die's 64 GB at 8 NPUs (EP16: 59 GB of weights per die);
the 160-NPU shipped point (batch 96) is timed as its own row.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import table

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "cloudmatrix384-decode.yaml"
DIES_PER_NPU = 2
# NPUs -> (EP degree = dies, eplb.redundant_experts, eplb.shared_expert_groups): 256 routed experts
# (+ redundant copies) spread evenly over the EP - shared dies; 384 NPUs: one expert copy per die.
LAYOUTS = {8: (16, 0, 0), 32: (64, 0, 0), 64: (128, 0, 0), 160: (320, 32, 32), 384: (768, 480, 32)}


def sets_for(npus: int, batch_per_npu: int, routing: str) -> list[str]:
    ep, redundant, shared = LAYOUTS[npus]
    return [f"workload.ep={ep}", f"workload.batch={batch_per_npu * npus}",
            f"workload.eplb.redundant_experts={redundant}",
            f"workload.eplb.shared_expert_groups={shared}",
            f"workload.routing.distribution={routing}"]


def run_once(sets: list[str], out: Path) -> tuple[float, float, dict]:
    """(wall s, child CPU s, metrics) of one `hwsim run` process."""
    cmd = [sys.executable, "-m", "hwsim.cli", "run", str(CONFIG), "--out", str(out), "--json"]
    for s in sets:
        cmd += ["--set", s]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"hwsim run failed ({' '.join(sets)}):\n{proc.stderr.strip()}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, json.loads(proc.stdout)["metrics"]


def measure(label: str, npus: int, sets: list[str], repeat: int, out: Path) -> list:
    runs = [run_once(sets, out) for _ in range(repeat)]
    metrics = runs[-1][2]
    distinct = len({k.split(".")[0] for k in metrics["utilization"] if k.startswith("d")})
    tpot_ms = metrics["iteration_latency_s"] * 1e3
    return [label, npus, npus * DIES_PER_NPU, distinct, f"{tpot_ms:.2f}",
            f"{statistics.median(r[0] for r in runs):.2f}", f"{statistics.median(r[1] for r in runs):.2f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npus", type=int, nargs="*", default=sorted(LAYOUTS), choices=sorted(LAYOUTS))
    ap.add_argument("--skew-npus", type=int, nargs="*", default=[8], choices=sorted(LAYOUTS))
    ap.add_argument("--batch-per-npu", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-shipped", action="store_true", help="leave out the shipped config's row")
    args = ap.parse_args()
    rows = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwsim-bench-scaleout-") as tmp:
        out = Path(tmp) / "run"
        if not args.no_shipped:
            rows.append(measure("shipped (batch 96)", 160, [], args.repeat, out))
        for n in args.npus:
            rows.append(measure("balanced", n, sets_for(n, args.batch_per_npu, "balanced"), args.repeat, out))
        for n in args.skew_npus:
            rows.append(measure("zipf skew 1", n, sets_for(n, args.batch_per_npu, "zipf"), args.repeat, out))
    table(f"hwsim run, DeepSeek-R1 decode on CloudMatrix384, batch {args.batch_per_npu} per NPU "
          f"(shipped row: 96), whole process, median of {args.repeat}",
          ["routing", "NPUs", "dies (EP)", "distinct", "step ms", "wall s", "CPU s"], rows)
    print(f"\ntotal {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
