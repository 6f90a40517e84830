"""The timeline a simulation produced, and the aggregates read off it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from hwsim.sim.schedule import Schedule


@dataclass
class Trace:
    schedule: Schedule
    start_ns: np.ndarray
    end_ns: np.ndarray

    @cached_property
    def makespan_ns(self) -> float:
        return float(self.end_ns.max(initial=0.0))

    @cached_property
    def tasks_on(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per resource: the ids of the tasks with work on it and that work, in one pass."""
        ids: dict[str, list[int]] = {name: [] for name in self.schedule.resources}
        work: dict[str, list[float]] = {name: [] for name in self.schedule.resources}
        for t in self.schedule.tasks:
            for r, w in t.demands.items():
                if w > 0:
                    ids[r].append(t.id)
                    work[r].append(w)
        return {r: (np.asarray(ids[r], dtype=np.int64), np.asarray(work[r], dtype=float)) for r in ids}

    @cached_property
    def flops(self) -> np.ndarray:
        return np.array([t.flops for t in self.schedule.tasks], dtype=float)

    def work(self, resource: str) -> float:
        return float(self.tasks_on[resource][1].sum())

    def busy_fraction(self, resource: str) -> float:
        """Share of the makespan some work was in progress on the resource (union of the
        intervals of its tasks)."""
        idx = self.tasks_on[resource][0]
        if not len(idx) or self.makespan_ns == 0:
            return 0.0
        order = np.argsort(self.start_ns[idx], kind="stable")
        starts, ends = self.start_ns[idx][order], self.end_ns[idx][order]
        reach = np.maximum.accumulate(ends)             # furthest end among intervals so far
        gap = np.maximum(starts[1:] - reach[:-1], 0.0)  # idle time before each next interval
        return float(reach[-1] - starts[0] - gap.sum()) / self.makespan_ns

    def utilization(self, resource: str) -> float:
        """Compute: FLOPs done / (peak FLOP/s * makespan). Memory and links: work / (peak * makespan)."""
        r = self.schedule.resources[resource]
        if self.makespan_ns == 0:
            return 0.0
        if r.kind == "compute" and r.peak_flops_per_ns > 0:
            flops = float(self.flops[self.tasks_on[resource][0]].sum())
            return flops / (r.peak_flops_per_ns * self.makespan_ns)
        return self.work(resource) / (r.peak_per_ns * self.makespan_ns)

    def bytes_by_level(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.schedule.tasks:
            for level, b in t.bytes_by_level.items():
                out[level] = out.get(level, 0.0) + b
        return out

    @cached_property
    def columns(self) -> dict[str, list | np.ndarray]:
        """One entry per task, column by column: where and when it ran and what it did."""
        tasks = self.schedule.tasks
        levels = sorted({lv for t in tasks for lv in t.bytes_by_level})
        data = {
            "task": [t.name for t in tasks], "op": [t.op for t in tasks],
            "unit": [t.unit for t in tasks], "phase": [t.phase for t in tasks],
            "layer": [t.layer for t in tasks], "micro_batch": [t.micro_batch for t in tasks],
            "device": [t.device for t in tasks], "component": [t.component for t in tasks],
            "datapath": [t.datapath for t in tasks], "level": [t.level for t in tasks],
            "start_ns": self.start_ns, "end_ns": self.end_ns,
            "duration_ns": self.end_ns - self.start_ns,
            "roofline_ns": np.array([t.roofline_ns for t in tasks]),
            "flops": self.flops, "energy_j": np.array([t.energy_j for t in tasks]),
        }
        for lv in levels:
            data[f"bytes_{lv}"] = np.array([t.bytes_by_level.get(lv, 0.0) for t in tasks])
        return data

    @property
    def frame(self):
        """The columns as a pandas DataFrame, one row per task."""
        import pandas as pd
        return pd.DataFrame(self.columns)

    def write_csv(self, path: Path) -> None:
        """The columns as CSV (stdlib csv: no pandas import on the `hwsim run` path)."""
        import csv
        cols = self.columns
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(cols)
            writer.writerows(zip(*(c.tolist() if isinstance(c, np.ndarray) else c for c in cols.values())))

    def write_chrome_trace(self, path: Path) -> None:
        """Chrome trace-event JSON (opens in ui.perfetto.dev): one row per unit, times in us."""
        pids = {u: i for i, u in enumerate(sorted({t.unit for t in self.schedule.tasks}))}
        events = [{"name": "process_name", "ph": "M", "pid": pid, "args": {"name": unit}}
                  for unit, pid in pids.items()]
        for t in self.schedule.tasks:
            events.append({"name": t.name, "cat": t.op or "task", "ph": "X",
                           "pid": pids[t.unit], "tid": 0, "ts": self.start_ns[t.id] / 1e3,
                           "dur": (self.end_ns[t.id] - self.start_ns[t.id]) / 1e3,
                           "args": {"flops": t.flops, "phase": t.phase, "component": t.component,
                                    "datapath": t.datapath, "level": t.level,
                                    **{f"bytes_{k}": v for k, v in t.bytes_by_level.items()}}})
        Path(path).write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
