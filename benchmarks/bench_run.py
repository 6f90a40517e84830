#!/usr/bin/env python
"""Wall-time benchmark of `hwsim run` and of the in-process pipeline.

    python benchmarks/bench_run.py                 # everything, ~1-2 minutes
    python benchmarks/bench_run.py --repeat 1      # quicker
    python benchmarks/bench_run.py --only cli      # one section: cli | models | layers | batch | neupims

Sections:
  cli     `hwsim run <config> --json` as a subprocess for every run config in configs/*.yaml,
          process start-up included (median of --repeat runs).
  models  in-process `hwsim.pipeline.evaluate` as the model grows (gpt3-7b, 13b, 30b, 175b),
          each at the smallest power-of-two tensor parallelism that fits one device's memory.
  layers  the same model (the base config's) with n_layers overridden to 8/16/32/64/96.
  batch   the base config with batch 16/64/256/1024.
  neupims the NeuPIMs configs: GPT3 7B/13B/30B/175B as shipped (TP/PP of the paper), and
          configs/neupims.yaml with batch 64/128/256/512/1024 (tp raised when it does not fit).

In-process rows report the main system's ops and the tasks of all systems simulated (main plus
baselines), the median evaluate time and tasks/s. Loading the config and finding a tp that
fits are timed separately ("load+fit s").
When an override does not fit memory, tp is doubled until it does (up to --max-tp); the tp
column shows what was used.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hwsim.config.loader import load_config
from timing import median_time, table
from hwsim.configs import CONFIG_DIR
from hwsim.errors import ConfigError
from hwsim.pipeline import evaluate


# --------------------------------------------------------------------------- CLI subprocess

def bench_cli(configs: list[Path], repeat: int) -> None:
    """Subprocess wall time, and where it goes: imports, then (in-process) load, evaluate and
    writing the results folder."""
    from hwsim.report import write_results
    rows = []
    env = {**os.environ, "MPLBACKEND": "Agg"}
    imports, _ = median_time(lambda: subprocess.run(
        [sys.executable, "-c", "import hwsim.cli, hwsim.pipeline, hwsim.report"], env=env), repeat)
    with tempfile.TemporaryDirectory(prefix="hwsim-bench-") as tmp:
        for cfg in configs:
            out = Path(tmp) / cfg.stem

            def once():
                return subprocess.run([sys.executable, "-m", "hwsim.cli", "run", str(cfg),
                                       "--out", str(out), "--json"],
                                      capture_output=True, text=True, env=env)
            seconds, proc = median_time(once, repeat)
            if proc.returncode != 0:
                err = proc.stderr.strip().splitlines()[-1][:70] if proc.stderr.strip() else ""
                rows.append([cfg.name, f"{seconds:.2f}", "-", "-", "-", f"exit {proc.returncode}: {err}"])
                continue
            json.loads(proc.stdout)                  # one JSON object on stdout, or fail here
            load_s, conf = median_time(lambda: load_config(cfg), repeat)
            eval_s, result = median_time(lambda: evaluate(conf), repeat)
            write_s, _ = median_time(lambda: write_results(result, Path(tmp) / "inproc"), repeat)
            rows.append([cfg.name, f"{seconds:.2f}", f"{load_s:.3f}", f"{eval_s:.3f}",
                         f"{write_s:.3f}", f"{result.main.metrics.throughput_per_s:,.1f}"])
    table(f"hwsim run <config> --json: subprocess wall time, median of {repeat} "
          f"(imports alone: {imports:.2f} s; load/eval/write measured in-process)",
          ["config", "wall s", "load s", "eval s", "write s", "main tokens or inferences/s"], rows)


# --------------------------------------------------------------------------- in-process

def load_fitting(config: Path, overrides: list[str], max_tp: int):
    """Load with `overrides`; if it does not fit memory, double tp until it does."""
    cfg = load_config(config, overrides)
    tp = cfg.workload.tp
    while True:
        try:
            tries = load_config(config, overrides + [f"workload.tp={tp}"])
            evaluate_check(tries)
            return tries, tp
        except ConfigError as exc:
            if "does not fit" not in str(exc) or tp * 2 > max_tp:
                raise
            tp *= 2


def evaluate_check(cfg) -> None:
    """Just the memory check, without simulating (cheap)."""
    from hwsim.pipeline import check_fits
    from hwsim.workloads.transformer import transformer_info
    for key, system in [("", cfg.main)] + [(f"baselines.{n}.", s) for n, s in cfg.baselines.items()]:
        check_fits(system, transformer_info(system.workload), key)


def bench_inprocess(title: str, base: Path, cases: list[tuple[str, list[str]]], repeat: int,
                    max_tp: int) -> None:
    rows = []
    for label, overrides in cases:
        try:
            t0 = time.perf_counter()
            cfg, tp = load_fitting(base, overrides, max_tp)
            load_s = time.perf_counter() - t0
            seconds, result = median_time(lambda: evaluate(cfg), repeat)
        except ConfigError as exc:
            rows.append([label, "-", "-", "-", "-", "-", "-", f"error: {exc}"[:80]])
            continue
        systems = [result.main, *result.baselines.values()]
        ops = len(result.main.graph)
        tasks = sum(len(s.schedule.tasks) for s in systems)
        rows.append([label, tp, ops, tasks, f"{load_s:.3f}", f"{seconds:.3f}",
                     f"{tasks / seconds:,.0f}",
                     f"{result.main.metrics.throughput_tokens_per_s:,.1f}"])
    table(f"{title}: hwsim.pipeline.evaluate in-process, median of {repeat}",
          ["case", "tp", "ops", "tasks", "load+fit s", "eval s", "tasks/s", "main tok/s"], rows)


def bench_shipped(title: str, configs: list[Path], repeat: int) -> None:
    rows = []
    for path in configs:
        cfg = load_config(path)
        seconds, result = median_time(lambda: evaluate(cfg), repeat)
        systems = [result.main, *result.baselines.values()]
        tasks = sum(len(s.schedule.tasks) for s in systems)
        info = result.main.graph.info
        speedups = " ".join(f"{n} {v:.2f}x" for n, v in result.speedup().items())
        rows.append([path.name, f"tp{info.tp} pp{info.pp}", tasks, f"{seconds:.3f}",
                     f"{tasks / seconds:,.0f}", f"{result.main.metrics.throughput_tokens_per_s:,.0f}", speedups])
    table(f"{title}: hwsim.pipeline.evaluate in-process, median of {repeat}",
          ["config", "parallel", "tasks", "eval s", "tasks/s", "main tok/s", "speed-up"], rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=CONFIG_DIR / "gpt3-7b-npu.yaml",
                    help="base config of the in-process sweeps (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    ap.add_argument("--inproc-repeat", type=int, default=None,
                    help="runs per in-process row (default: --repeat)")
    ap.add_argument("--max-tp", type=int, default=64, help="largest tp tried to fit memory")
    ap.add_argument("--only", choices=["cli", "models", "layers", "batch", "neupims"], action="append",
                    help="run only these sections (repeatable)")
    args = ap.parse_args(argv)
    sections = args.only or ["cli", "models", "layers", "batch", "neupims"]
    inproc_repeat = args.inproc_repeat or args.repeat
    os.environ.setdefault("MPLBACKEND", "Agg")

    t_start = time.perf_counter()
    print(f"hwsim benchmark  python {sys.version.split()[0]}  base config {args.config.name}")
    if "cli" in sections:
        bench_cli(sorted(CONFIG_DIR.glob("*.yaml")), args.repeat)
    if "models" in sections:
        models = ["gpt3-7b", "gpt3-13b", "gpt3-30b", "gpt3-175b"]
        bench_inprocess("model size", args.config,
                        [(m, [f"workload.model={m}"]) for m in models], inproc_repeat, args.max_tp)
    if "layers" in sections:
        bench_inprocess("n_layers", args.config,
                        [(f"n_layers={n}", [f"workload.model.n_layers={n}"])
                         for n in (8, 16, 32, 64, 96)], inproc_repeat, args.max_tp)
    if "batch" in sections:
        bench_inprocess("batch", args.config,
                        [(f"batch={b}", [f"workload.batch={b}"]) for b in (16, 64, 256, 1024)],
                        inproc_repeat, args.max_tp)
    if "neupims" in sections:
        bench_shipped("NeuPIMs configs as shipped",
                      [CONFIG_DIR / f"neupims{s}.yaml" for s in ("", "-gpt3-13b", "-gpt3-30b", "-gpt3-175b")],
                      inproc_repeat)
        bench_inprocess("NeuPIMs batch", CONFIG_DIR / "neupims.yaml",
                        [(f"batch={b}", [f"workload.batch={b}"]) for b in (64, 128, 256, 512, 1024)],
                        inproc_repeat, args.max_tp)
    print(f"\ntotal {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
