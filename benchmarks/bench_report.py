#!/usr/bin/env python
"""Time of writing a run's results folder, piece by piece, in-process (the simulation excluded).

    python benchmarks/bench_report.py                         # neupims and neupims-gpt3-175b
    python benchmarks/bench_report.py --repeat 5 configs/tpu-like.yaml

For each config: the tasks of the main system's trace, then the median time of each file that
`hwsim.report.write_results` writes (trace.json, timeline.png, roofline.png, the CSV/JSON files
together) and of the whole folder; plus the import of what writing plots needs, in a fresh
process. Timings on a shared machine are noisy: take the median of several and compare
before/after in the same minute.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import median_time, table

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
    imports, _ = median_time(lambda: subprocess.run(
        [sys.executable, "-c", "import hwsim.plots as p; p.roofline_plot, p.timeline_plot; "
         "import matplotlib.figure, matplotlib.backends.backend_agg"], check=True), args.repeat)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwsim-bench-report-") as tmp:
        out = Path(tmp)
        for cfg in args.configs:
            result = evaluate(load_config(cfg))
            trace = result.main.trace
            times = {
                "trace.json": median_time(lambda: trace.write_chrome_trace(out / "trace.json"), args.repeat)[0],
                "timeline.png": median_time(lambda: timeline_plot(result, out / "timeline.png"), args.repeat)[0],
                "roofline.png": median_time(lambda: roofline_plot(result, out / "roofline.png"), args.repeat)[0],
                "folder": median_time(lambda: report.write_results(result, out / "folder"), args.repeat)[0],
            }
            rows.append([cfg.name, f"{len(trace.schedule.tasks):,}"] + [f"{s:.3f}" for s in times.values()])
    table(f"writing the results folder, in-process, median of {args.repeat} "
          f"(importing matplotlib for the plots, fresh process: {imports:.2f} s)",
          ["config", "tasks", "trace.json s", "timeline.png s", "roofline.png s", "whole folder s"], rows)


if __name__ == "__main__":
    main()
