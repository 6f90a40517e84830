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

    def work(self, resource: str) -> float:
        return float(sum(t.demands.get(resource, 0.0) for t in self.schedule.tasks))

    def busy_fraction(self, resource: str) -> float:
        """Share of the makespan some work was in progress on the resource."""
        idx = [t.id for t in self.schedule.tasks if t.demands.get(resource, 0) > 0]
        if not idx or self.makespan_ns == 0:
            return 0.0
        spans = sorted(zip(self.start_ns[idx], self.end_ns[idx]))
        busy, cur_s, cur_e = 0.0, *spans[0]
        for s, e in spans[1:]:
            if s > cur_e:
                busy += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        return (busy + cur_e - cur_s) / self.makespan_ns

    def utilization(self, resource: str) -> float:
        """Compute: FLOPs done / (peak FLOP/s * makespan). Memory and links: work / (peak * makespan)."""
        r = self.schedule.resources[resource]
        if self.makespan_ns == 0:
            return 0.0
        if r.kind == "compute" and r.peak_flops_per_ns > 0:
            flops = sum(t.flops for t in self.schedule.tasks if t.demands.get(resource, 0) > 0)
            return flops / (r.peak_flops_per_ns * self.makespan_ns)
        return self.work(resource) / (r.peak_per_ns * self.makespan_ns)

    def bytes_by_level(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.schedule.tasks:
            for level, b in t.bytes_by_level.items():
                out[level] = out.get(level, 0.0) + b
        return out

    @cached_property
    def frame(self):
        """One row per task (a pandas DataFrame): where and when it ran and what it did."""
        import pandas as pd
        tasks = self.schedule.tasks
        levels = sorted({lv for t in tasks for lv in t.bytes_by_level})
        data = {
            "task": [t.name for t in tasks], "op": [t.op for t in tasks],
            "unit": [t.unit for t in tasks], "phase": [t.phase for t in tasks],
            "start_ns": self.start_ns, "end_ns": self.end_ns,
            "duration_ns": self.end_ns - self.start_ns,
            "roofline_ns": [t.roofline_ns for t in tasks],
            "flops": [t.flops for t in tasks], "energy_j": [t.energy_j for t in tasks],
        }
        for lv in levels:
            data[f"bytes_{lv}"] = [t.bytes_by_level.get(lv, 0.0) for t in tasks]
        return pd.DataFrame(data)

    def write_chrome_trace(self, path: Path) -> None:
        """Chrome trace-event JSON (opens in ui.perfetto.dev): one row per unit, times in us."""
        pids = {u: i for i, u in enumerate(sorted({t.unit for t in self.schedule.tasks}))}
        events = [{"name": "process_name", "ph": "M", "pid": pid, "args": {"name": unit}}
                  for unit, pid in pids.items()]
        for t in self.schedule.tasks:
            events.append({"name": t.name, "cat": t.op or "task", "ph": "X",
                           "pid": pids[t.unit], "tid": 0, "ts": self.start_ns[t.id] / 1e3,
                           "dur": (self.end_ns[t.id] - self.start_ns[t.id]) / 1e3,
                           "args": {"flops": t.flops, "phase": t.phase,
                                    **{f"bytes_{k}": v for k, v in t.bytes_by_level.items()}}})
        Path(path).write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
