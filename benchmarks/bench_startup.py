#!/usr/bin/env python
"""Whole-process wall time of the commands a new user types first (issue 9, item 5).

    python benchmarks/bench_startup.py               # median of 5 runs per command
    python benchmarks/bench_startup.py --repeat 9

Each command runs as a fresh process of the `hwsim` console script installed next to this
Python (process start-up, imports, work and exit all counted), from a temporary directory
so that `hwsim run` writes its results folder (metrics, trace, timeline.svg, roofline.svg) there.
Targets from issue 9 on the project's 2-core machine: `run` <= 1.5 s, `--help` <= 0.3 s,
`scalesim` <= 0.3 s. On a shared machine the spread is large: the min and max are printed next
to the median so a noisy minute shows.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import table

REPO = Path(__file__).resolve().parents[1]


def hwsim_script() -> str:
    """The console script of this interpreter's environment (falls back to PATH)."""
    here = Path(sys.executable).parent / "hwsim"
    return str(here) if here.exists() else (shutil.which("hwsim") or "hwsim")


def commands() -> list[tuple[str, list[str], float]]:
    """(label, argv after `hwsim`, target seconds)."""
    topologies = REPO / "configs" / "topologies"
    topology = next(p for p in (topologies / "resnet50.csv", topologies / "resnet18.csv") if p.exists())
    return [
        ("hwsim --help", ["--help"], 0.3),
        (f"hwsim scalesim --topology {topology.name} --array 32x32 --dataflow ws",
         ["scalesim", "--topology", str(topology), "--array", "32x32", "--dataflow", "ws"], 0.3),
        ("hwsim scalesim --model resnet50 --array 32x32 --dataflow ws",
         ["scalesim", "--model", "resnet50", "--array", "32x32", "--dataflow", "ws"], 0.3),
        ("hwsim run configs/neupims.yaml (results folder, plots)",
         ["run", str(REPO / "configs" / "neupims.yaml")], 1.5),
    ]


def time_command(argv: list[str], repeat: int, cwd: Path) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) times of `repeat` runs after one untimed warm-up run (which
    writes the bytecode caches an installed package has; PYTHONDONTWRITEBYTECODE is dropped for
    the same reason). CPU time moves less than wall time when other work shares the machine."""
    import resource
    times, cpu = [], []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["MPLBACKEND"] = "Agg"
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    script = hwsim_script()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwsim-startup-") as tmp:
        for label, argv, target in commands():
            times, cpu = time_command([script, *argv], args.repeat, Path(tmp))
            median = statistics.median(times)
            rows.append([label, f"{median:.3f}", f"{min(times):.3f}", f"{max(times):.3f}",
                         f"{statistics.median(cpu):.3f}", f"{target:.1f}",
                         "ok" if median <= target else "over"])
    table(f"whole-process wall time, median of {args.repeat} ({script})",
          ["command", "median s", "min s", "max s", "cpu s", "target s", ""], rows)


if __name__ == "__main__":
    main()
