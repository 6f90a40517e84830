#!/usr/bin/env python
"""Time of writing a run's results folder, piece by piece, in-process (the simulation excluded).

    python benchmarks/bench_report.py                         # neupims and neupims-gpt3-175b
    python benchmarks/bench_report.py --repeat 5 configs/tpu-like.yaml

For each config: the tasks of the main system's trace, then the median time of each file that
`hwsim.report.write_results` writes (trace.json, timeline.svg, roofline.svg, the CSV/JSON files
together) and of the whole folder; plus the import of what writing plots needs, in a fresh
process. Times are CPU seconds of this process (time.process_time), which other work on a
shared machine disturbs less than wall time; still take the median of several and compare
before/after in the same minute.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import table


def median_cpu(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.pipeline import evaluate

DEFAULT = [CONFIG_DIR / "neupims.yaml", CONFIG_DIR / "neupims-gpt3-175b.yaml"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import hwsim.report as report
    from hwsim.plots import roofline_plot, timeline_plot
    def import_cpu(module: str) -> float:
        """CPU seconds of a fresh process that imports `module` (children's rusage)."""
        import resource
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    imports = {m: statistics.median(import_cpu(m) for _ in range(args.repeat))
               for m in ("numpy", "matplotlib.pyplot", "matplotlib.figure, matplotlib.backends.backend_agg")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwsim-bench-report-") as tmp:
        out = Path(tmp)
        for cfg in args.configs:
            result = evaluate(load_config(cfg))
            trace = result.main.trace
            times = {
                "trace.json": median_cpu(lambda: trace.write_chrome_trace(out / "trace.json"), args.repeat),
                "timeline.svg": median_cpu(lambda: timeline_plot(result, out / "timeline.svg"), args.repeat),
                "roofline.svg": median_cpu(lambda: roofline_plot(result, out / "roofline.svg"), args.repeat),
                "folder": median_cpu(lambda: report.write_results(result, out / "folder"), args.repeat),
            }
            rows.append([cfg.name, f"{len(trace.schedule.tasks):,}"] + [f"{s:.3f}" for s in times.values()])
    table(f"writing the results folder, in-process, CPU seconds, median of {args.repeat} "
          "(imports, fresh process, CPU s: " + ", ".join(f"{m} {s:.2f}" for m, s in imports.items()) + ")",
          ["config", "tasks", "trace.json s", "timeline.svg s", "roofline.svg s", "whole folder s"], rows)


if __name__ == "__main__":
    main()
