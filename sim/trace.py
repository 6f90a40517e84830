"""The timeline a simulation produced, and the aggregates read off it."""
from __future__ import annotations

import heapq
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
    power_stretch: float = 1.0        # how much a unit's power limit slowed the pass (power_capped)

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

    def lanes(self, resource: str) -> tuple[np.ndarray, np.ndarray]:
        """The tasks with work on `resource` and, for each, a lane (0, 1, ...) such that no two
        tasks of one lane overlap in time. An exclusive resource runs one task at a time, so all
        its tasks share lane 0; a shared one (a memory bus, a link) gets as many lanes as tasks
        used it at once (interval partitioning, hwsim.sim.trace.pack_lanes)."""
        ids = self.tasks_on[resource][0]
        if self.schedule.resources[resource].exclusive:
            return ids, np.zeros(len(ids), dtype=np.int64)
        return ids, pack_lanes(self.start_ns[ids], self.end_ns[ids])

    def chrome_trace_events(self) -> list[dict]:
        """Chrome trace events (the JSON Perfetto and chrome://tracing read): a process per unit
        ("npu", "hbm", "pim", "link", ...), a thread per resource instance of it (each PIM
        channel, each memory bus, each link), and a slice per task on every resource it used
        (a task that reads HBM while the NPU computes appears on both; its provenance - FLOPs,
        component, layer, bytes per level - is on its first slice, the others carry its task
        id). A shared resource gets
        one thread per lane (see `lanes`) and a counter of the tasks using it, so no two slices
        of a thread overlap. Times in microseconds (the format's unit). The events as parsed
        from `chrome_trace_json`, which writes them."""
        return json.loads("[" + ",".join(self.chrome_trace_json()) + "]")

    def chrome_trace_json(self) -> list[str]:
        """The events of `chrome_trace_events`, each as its JSON text, in order: the text that
        `json.dumps(event, separators=(",", ":"))` gives, composed from pieces encoded once (a
        task's name, times and provenance; a resource's name), since a trace holds a slice per
        task and resource - hundreds of thousands on a rack-scale fabric - and encoding each as
        a dict was most of the time `hwsim run` spent writing results."""
        tasks = self.schedule.tasks
        units = list(dict.fromkeys(r.unit or name for name, r in self.schedule.resources.items()))
        pids = {u: i + 1 for i, u in enumerate(units)}
        events: list[str] = []
        for unit, pid in pids.items():
            events.append(f'{{"name":"process_name","ph":"M","pid":{pid},"args":{{"name":{_js(unit)}}}}}')
            events.append(f'{{"name":"process_sort_index","ph":"M","pid":{pid},"args":{{"sort_index":{pid}}}}}')
        tid = 0

        def thread(pid: int, name: str) -> int:
            nonlocal tid
            tid += 1
            events.append(f'{{"name":"thread_name","ph":"M","pid":{pid},"tid":{tid},"args":{{"name":{_js(name)}}}}}')
            events.append(f'{{"name":"thread_sort_index","ph":"M","pid":{pid},"tid":{tid},'
                          f'"args":{{"sort_index":{tid}}}}}')
            return tid

        # A task's provenance, without the fields at their defaults (no weights level, no bytes
        # at a level, device 0, ...): it goes on the task's first slice only, the others carry
        # the task id, since the file's size is most of the time `hwsim run` spends writing it.
        def about_task(t) -> str:
            args = {"flops": t.flops, "component": t.component, "datapath": t.datapath,
                    "layer": t.layer}
            if t.level:
                args["level"] = t.level
            if t.micro_batch:
                args["micro_batch"] = t.micro_batch
            if t.device:
                args["device"] = t.device
            args.update((f"bytes_{lv}", b) for lv, b in t.bytes_by_level.items() if b)
            return "," + json.dumps(args, separators=(",", ":"))[1:-1]

        ts_us = _floats(self.start_ns / 1e3)
        dur_us = _floats((self.end_ns - self.start_ns) / 1e3)
        # What every slice of a task shares: name and category, then (after pid and tid) its times.
        head = [f'{{"name":{_js(t.name)},"cat":{_js(t.op or "task")},"ph":"X","pid":' for t in tasks]
        when = [f',"ts":{s},"dur":{d},"args":{{"task":{i}' for i, (s, d) in enumerate(zip(ts_us, dur_us))]
        described = [False] * len(tasks)   # a task's provenance goes on its first slice only

        def slices(pid: int, track: int, ids, resource: str | None = None, work=None,
                   work_name: str = "") -> None:
            ids = ids.tolist()
            first = [i for i in ids if not described[i]]
            about = dict(zip(first, (about_task(tasks[i]) for i in first)))
            for i in first:
                described[i] = True
            track = f"{pid},\"tid\":{track}"
            if resource is None:
                events.extend(f"{head[i]}{track}{when[i]}{about.get(i, '')}}}}}" for i in ids)
                return
            tail = f',"resource":{_js(resource)},"{work_name}":'
            events.extend(f"{head[i]}{track}{when[i]}{about.get(i, '')}{tail}{w}}}}}"
                          for i, w in zip(ids, _floats(work)))

        for name, r in self.schedule.resources.items():
            pid = pids[r.unit or name]
            ids, lane = self.lanes(name)
            work = self.tasks_on[name][1]
            work_name = "work_ns" if r.kind == "compute" else "bytes_here"
            if r.exclusive or not len(ids):
                slices(pid, thread(pid, name), ids, name, work, work_name)
                continue
            n_lanes = int(lane.max()) + 1
            for k in range(n_lanes):
                mine = lane == k
                label = name if n_lanes == 1 else f"{name} [{k + 1}/{n_lanes}]"
                slices(pid, thread(pid, label), ids[mine], name, work[mine], work_name)
            events += _counter(pid, f"{name}: tasks using it", self.start_ns[ids], self.end_ns[ids])
        # Tasks with no work on any resource (pure latency: a launch, a wait), on their unit.
        used = np.zeros(len(tasks), dtype=bool)
        for ids, _ in self.tasks_on.values():
            used[ids] = True
        idle = np.flatnonzero(~used)
        if len(idle):
            for unit in dict.fromkeys(tasks[i].unit for i in idle.tolist()):
                mine = idle[[tasks[i].unit == unit for i in idle.tolist()]]
                if unit not in pids:
                    pids[unit] = len(pids) + 1
                    events.append(f'{{"name":"process_name","ph":"M","pid":{pids[unit]},'
                                  f'"args":{{"name":{_js(unit)}}}}}')
                lane = pack_lanes(self.start_ns[mine], self.end_ns[mine])
                for k in range(int(lane.max()) + 1):
                    slices(pids[unit], thread(pids[unit], f"{unit}: latency only [{k + 1}]"), mine[lane == k])
        return events

    def write_chrome_trace(self, path: Path) -> None:
        """`chrome_trace_events` as a JSON file (open it in ui.perfetto.dev)."""
        with open(path, "w") as f:
            f.write('{"traceEvents":[')
            f.write(",".join(self.chrome_trace_json()))
            f.write('],"displayTimeUnit":"ns"}')


def pack_lanes(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A lane per interval [start, end) so that intervals of one lane do not overlap, using as
    few lanes as the most intervals open at once: take intervals by start time, each into the
    lowest-numbered lane free by then (greedy interval partitioning, Kleinberg & Tardos,
    "Algorithm Design", section 4.1)."""
    order = np.lexsort((end, start))
    lane = np.zeros(len(start), dtype=np.int64)
    if len(order) < 2 or (start[order][1:] >= np.maximum.accumulate(end[order])[:-1]).all():
        return lane            # no two overlap: the greedy puts every interval in lane 0
    busy: list[tuple[float, int]] = []     # heap of (end, lane) of lanes in use
    free: list[int] = []                   # heap of free lanes
    n_lanes = 0
    for i in order.tolist():
        s = start[i]
        while busy and busy[0][0] <= s:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            k = heapq.heappop(free)
        else:
            k, n_lanes = n_lanes, n_lanes + 1
        lane[i] = k
        heapq.heappush(busy, (end[i], k))
    return lane


def _counter(pid: int, name: str, start: np.ndarray, end: np.ndarray) -> list[str]:
    """Counter events (JSON text): how many of the intervals are open, at each time it changes (us)."""
    times = np.concatenate([start, end])
    steps = np.concatenate([np.ones(len(start)), -np.ones(len(end))])
    order = np.lexsort((steps, times))         # at equal times, ends (-1) before starts
    times, level = times[order], np.cumsum(steps[order])
    last = np.r_[times[1:] != times[:-1], True]    # one value per instant: the last one
    head = f'{{"name":{_js(name)},"ph":"C","pid":{pid},"ts":'
    return [f'{head}{t},"args":{{"tasks":{v}}}}}'
            for t, v in zip(_floats(times[last] / 1e3), level[last].astype(np.int64).tolist())]


_js = json.encoder.encode_basestring_ascii     # a str as JSON text, as json.dumps writes it


def _floats(values: np.ndarray) -> list[str]:
    """Floats as JSON text, as json.dumps writes them (repr; NaN and Infinity spelled its way)."""
    values = np.asarray(values, dtype=float)
    if np.isfinite(values).all():
        return list(map(float.__repr__, values.tolist()))
    return [json.dumps(v) for v in values.tolist()]


def power_capped(trace: Trace) -> Trace:
    """The trace slowed down so that no unit with a power limit (Schedule.power_limit_w, e.g. a
    GPU's board limit, `tdp_w`) draws more than it on average over the makespan.

    A unit whose tasks' energy E (dynamic, as costed) plus its static power P_s over the makespan
    T exceeds its limit P_max x T runs, as a power manager holds it, slower: at P_max its time
    is E / (P_max - P_s). The whole timeline stretches by the largest such factor: every task at
    the same slower pace (a card's power manager lowers the SM clock for all its kernels; on a
    multi-device schedule the others wait for the capped one, approximated as the same pace). The
    tasks' energies stay as costed: they are the energies at the capped operating point when they
    were measured there (profile mode's power.csv: the GEMM ran at the 700 W limit on an H200).
    Averaging over the whole pass assumes the pass repeats back to back, as a serving loop's
    iterations do: the probes see the card's power manager act over about a second of load,
    far longer than a 5-60 ms pass. An H200's sustained prefills of 256+ tokens run 14-17%
    slower than their first replay after an idle (configs/profiles/h200-sxm/power_cap-2026-12-03/,
    power_cap_prefill-2026-12-04/)."""
    makespan = trace.makespan_ns * 1e-9
    if not trace.schedule.power_limit_w or makespan <= 0:
        return trace
    stretch = power_limit_stretch(trace.schedule, limited_unit_energy_j(trace.schedule), makespan)
    if stretch == 1.0:
        return trace
    return Trace(schedule=trace.schedule, start_ns=trace.start_ns * stretch,
                 end_ns=trace.end_ns * stretch, power_stretch=stretch)


def limited_unit_energy_j(schedule: Schedule) -> dict[str, float]:
    """Dynamic energy of the tasks on each unit that has a power limit."""
    energy = dict.fromkeys(schedule.power_limit_w, 0.0)
    for t in schedule.tasks:
        if t.unit in energy:
            energy[t.unit] += t.energy_j
    return energy


def power_limit_stretch(schedule: Schedule, energy_j: dict[str, float], seconds: float) -> float:
    """How much a pass of `seconds` whose limited units spend `energy_j` (dynamic) must slow down
    so that none draws more than its limit: max(1, E / (P_max - P_static) / seconds)."""
    stretch = 1.0
    for unit, joules in energy_j.items():
        limit = schedule.power_limit_w[unit]
        headroom = limit - schedule.static_power_w.get(unit, 0.0)
        if headroom <= 0:
            raise ValueError(f"unit {unit}: static power {limit - headroom} W is not below "
                             f"its power limit {limit} W")
        stretch = max(stretch, joules / headroom / seconds)
    return stretch
