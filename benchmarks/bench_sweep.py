#!/usr/bin/env python
"""Throughput of `hwsim sweep` on the NeuPIMs design space (main system only, no baselines).

    python benchmarks/bench_sweep.py                       # N = 50, 200, 1000 on 2 workers + models
    python benchmarks/bench_sweep.py --only full           # every layer simulated (~6 minutes)
    python benchmarks/bench_sweep.py --sizes 50 200        # quicker
    python benchmarks/bench_sweep.py --only driver         # one section: space | driver | models

Sections:
  space   `hwsim.dse.run_sweep` of N random points (seed 0) of an enlarged NeuPIMs space
          (configs/neupims.yaml: PIM MACs/bank x channels+capacity x NPU cores x batch), with
          --jobs workers, into a fresh results folder. Reports wall time, points/s, the mean
          per-point evaluation time measured inside the workers, and the parallel efficiency
          (sum of per-point times / (wall x jobs)): what the sweep driver, process start-up and
          the results store cost on top of the simulations. Dense decoders are simulated with 1,
          2, 3, ... layers until a steady period shows and extended over it (the sweep default,
          hwsim.extrapolate); "extrap." is the share of points that were (the rest: every layer).
  full    the same with every layer simulated (extrapolate_layers: false); not run by default.
  driver  the same with the model cut to one layer and batches of 2..62 (a few ms per point),
          so the driver's own per-point overhead shows.
  models  per-point cost as the model grows (gpt3-7b / 13b / 30b on the NeuPIMs device), serial,
          in this process: evaluation time with every layer simulated and extrapolated, the
          number of ops and tasks of the full run, and how far the extrapolated throughput is.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hwsim.configs import CONFIG_DIR
from timing import table
from hwsim.dse import load_results, run_sweep

BASE = CONFIG_DIR / "neupims.yaml"


def space_spec(samples: int, tiny: bool = False, extrapolate: bool = True) -> dict:
    """The NeuPIMs space of configs/sweeps/neupims-space.yaml, with more values per axis so that
    1,000 distinct points exist (5 x 3 x 4 x 31 = 1,860), sampled at random. `tiny`: one layer
    and batches of 2..62, the same number of points, a few ms each."""
    return {
        "name": "bench-neupims",
        "base": str(BASE),
        "set": {"workload.model.n_layers": 1} if tiny else {},
        "axes": [
            {"key": "hardware.pim.macs_per_bank", "values": [4, 8, 16, 32, 64]},
            {"zip": [{"key": "hardware.memory.channels", "values": [16, 32, 64]},
                     {"key": "hardware.memory.capacity_gib", "values": [16, 32, 64]}]},
            {"key": "hardware.npu.cores", "values": [1, 2, 4, 8]},
            {"key": "workload.batch", "range": [2, 62, 2] if tiny else [32, 512, 16]},
        ],
        "objectives": [{"maximize": "throughput_tokens_per_s"}, {"minimize": "energy_per_token_j"}],
        "strategy": "random", "samples": samples, "seed": 0,
        "extrapolate_layers": extrapolate,
    }


def bench_space(sizes: list[int], jobs: int, tiny: bool, title: str, extrapolate: bool = True) -> None:
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="hwsim-bench-sweep-") as tmp:
            t0 = time.perf_counter()
            report = run_sweep(space_spec(n, tiny, extrapolate), Path(tmp) / "out", jobs=jobs,
                               progress=False)
            wall = time.perf_counter() - t0
            df = load_results(Path(tmp) / "out")
        per_point = df["elapsed_s"].dropna()
        efficiency = per_point.sum() / (wall * jobs) if wall > 0 else float("nan")
        statuses = ", ".join(f"{v} {k}" for k, v in sorted(report.statuses.items()))
        extrapolated = df.loc[df["status"] != "failed", "extrapolation_period"].notna().mean()
        rows.append([n, f"{wall:.1f}", f"{n / wall:.2f}", f"{per_point.mean() * 1e3:.1f}",
                     f"{per_point.max() * 1e3:.0f}", f"{efficiency:.0%}", f"{extrapolated:.0%}", statuses])
    table(f"{title}, {jobs} workers (wall includes pool start-up and the store)",
          ["N", "wall s", "points/s", "mean ms/pt", "max ms/pt", "efficiency", "extrap.", "statuses"], rows)


def bench_models(models: list[str], repeat: int) -> None:
    from hwsim.config.loader import load_config
    from hwsim.errors import ConfigError
    from hwsim.pipeline import evaluate
    rows = []
    for model in models:
        try:
            cfg = load_config(BASE, [f"workload.model={model}", "baselines={}"])
            while True:   # the smallest tp (from the config's 4) at which the model fits a device
                try:
                    evaluate(cfg)
                    break
                except ConfigError as exc:
                    if "does not fit" not in str(exc) or cfg.workload.tp >= 64:
                        raise
                    cfg = load_config(BASE, [f"workload.model={model}", "baselines={}",
                                             f"workload.tp={cfg.workload.tp * 2}"])
            times, fast_times = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                result = evaluate(cfg)
                times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                fast = evaluate(cfg, extrapolate_layers=True)
                fast_times.append(time.perf_counter() - t0)
        except ConfigError as exc:
            rows.append([model, "-", "-", "-", "-", "-", "-", "-", "-", f"error: {exc}"[:90]])
            continue
        ops = len(result.main.graph)
        tasks = len(result.main.schedule.tasks)
        full, quick = result.main.metrics.throughput_tokens_per_s, fast.main.metrics.throughput_tokens_per_s
        rows.append([model, cfg.workload.model.n_layers, cfg.workload.tp, ops, tasks,
                     f"{statistics.median(times):.3f}", f"{statistics.median(fast_times):.3f}",
                     fast.main.extrapolation_period or "-", f"{(quick - full) / full:+.1e}", ""])
    table(f"per-point cost vs model size (NeuPIMs device, batch 512, smallest tp >= 4 that fits, "
          f"serial, median of {repeat}): every layer simulated vs extrapolated over a steady period",
          ["model", "layers", "tp", "ops", "tasks", "full s", "extrap. s", "period", "tok/s rel. diff",
           "note"], rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs per model row")
    ap.add_argument("--only", choices=["space", "full", "driver", "models"], action="append",
                    help="sections (default: space, driver, models; `full` takes ~6 minutes)")
    args = ap.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    sections = args.only or ["space", "driver", "models"]
    t0 = time.perf_counter()
    print(f"hwsim sweep benchmark  python {sys.version.split()[0]}  cpus {os.cpu_count()}")
    if "space" in sections:
        bench_space(args.sizes, args.jobs, False,
                    "NeuPIMs design space, GPT3-7B (32 layers) extrapolated over a steady period (the default)")
    if "full" in sections:
        bench_space(args.sizes, args.jobs, False, "NeuPIMs design space, GPT3-7B, every layer simulated "
                    "(extrapolate_layers: false)", extrapolate=False)
    if "driver" in sections:
        bench_space(args.sizes, args.jobs, True, "driver overhead: same space cut to 1 layer, batch 2..62")
    if "models" in sections:
        bench_models(["gpt3-7b", "gpt3-13b", "gpt3-30b"], args.repeat)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
