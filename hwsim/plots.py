"""Plots of a run, written as SVG (`hwsim.svg`): the roofline of the main system with each op
placed on it, and its timeline. No matplotlib on the run path: importing it and rasterizing two
PNGs cost ~1 s of a ~2 s `hwsim run`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hwsim.svg import Axis, Chart, color, write_side_by_side, write_stacked

TIMELINE_WIDTH_PX = 1000


def roofline_points(result) -> tuple[np.ndarray, np.ndarray]:
    """(arithmetic intensity in FLOP per off-chip byte, achieved GFLOP/s) of every task with
    FLOPs, off-chip bytes and a duration on the main system's compute unit; off-chip bytes are
    those of the first memory resource's level (the roof roofline_plot draws)."""
    sched, trace = result.main.schedule, result.main.trace
    compute = next(r for r in sched.resources.values() if r.kind == "compute")
    memory = next((r for r in sched.resources.values() if r.kind == "memory"), None)
    frame = trace.columns
    # the level under the plot's bandwidth roof (a replica's resources are per device, "d0.ram",
    # its trace columns per level, "bytes_ram")
    level = "hbm"
    if memory is not None:
        for name in (memory.unit, memory.unit.rsplit(".", 1)[-1]):
            if f"bytes_{name}" in frame:
                level = name
                break
    off_chip = frame.get(f"bytes_{level}", np.zeros(len(frame["flops"])))
    on_unit = np.array(frame["unit"]) == compute.unit
    mask = on_unit & (frame["flops"] > 0) & (off_chip > 0) & (frame["duration_ns"] > 0)
    return frame["flops"][mask] / off_chip[mask], frame["flops"][mask] / frame["duration_ns"][mask]


def roofline_plot(result, path: Path) -> Path:
    """Achieved FLOP/s against arithmetic intensity (FLOPs per off-chip byte) for every task on
    the main system's compute unit, under the unit's compute and bandwidth roofs."""
    sched = result.main.schedule
    compute = next(r for r in sched.resources.values() if r.kind == "compute")
    memory = next((r for r in sched.resources.values() if r.kind == "memory"), None)
    intensity, achieved = roofline_points(result)
    peak = compute.peak_flops_per_ns                      # FLOP/ns = GFLOP/s
    x_lo, x_hi = 1e-2, 1e4
    floor = min([peak * 1e-4, *achieved.tolist()] + ([x_lo * memory.peak_per_ns] if memory else []))
    y = Axis(10.0 ** math.floor(math.log10(max(floor, 1e-9))), 10.0 ** math.ceil(math.log10(peak * 1.5)),
             "achieved GFLOP/s", log=True)
    chart = Chart(Axis(x_lo, x_hi, "arithmetic intensity (FLOP / off-chip byte)", log=True), y,
                  title=f"{result.config.name}: {compute.unit}")
    if memory is not None:
        x = np.logspace(-2, 4, 200)
        chart.line(x, np.minimum(peak, x * memory.peak_per_ns), "#000",
                   label=f"roofline: {peak:,.0f} GFLOP/s, {memory.peak_per_ns:,.0f} GB/s")
    chart.points(intensity, achieved, label="ops (achieved)")
    return chart.write(path)


def merged_intervals(start: np.ndarray, end: np.ndarray, join_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals [start, end), with gaps shorter than `join_gap` closed: what a
    bar chart can show at a resolution of `join_gap` per pixel. Returns (starts, ends), sorted;
    each start is some interval's start and each end some interval's end."""
    if not len(start):
        return start, end
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    reach = np.maximum.accumulate(e)                 # furthest end so far
    opens = np.r_[True, s[1:] > reach[:-1] + join_gap]
    closes = np.r_[opens[1:], True]
    return s[opens], reach[closes]


def timeline_rows(result) -> list[tuple[str, list[str]]]:
    """The timeline's rows, top to bottom: (unit, its resources), in the schedule's order. A
    row with several resources (e.g. 32 PIM channels) is split into one thin strip each."""
    rows: dict[str, list[str]] = {}
    for name, r in result.main.schedule.resources.items():
        rows.setdefault(r.unit or name, []).append(name)
    return list(rows.items())


def timeline_bars(result) -> list[tuple[int, int, int, np.ndarray, np.ndarray]]:
    """The timeline's bars: (row, strip in the row, strips in the row, starts ms, ends ms) per
    resource instance, where some task had work on it (on a memory bus or a link: at least one
    transfer in flight). Tasks closer together than half a pixel are one bar, so the drawing does
    not grow with the number of tasks."""
    trace = result.main.trace
    makespan_ms = trace.makespan_ns / 1e6
    join_ms = makespan_ms / (2 * TIMELINE_WIDTH_PX)
    start_ms, end_ms = trace.start_ns / 1e6, trace.end_ns / 1e6
    bars = []
    for row, (unit, resources) in enumerate(timeline_rows(result)):
        for k, name in enumerate(resources):
            ids = trace.tasks_on[name][0]
            s, e = merged_intervals(start_ms[ids], end_ms[ids], join_ms)
            bars.append((row, k, len(resources), s, e))
    return bars


def timeline_chart(result) -> Chart:
    """Gantt chart of the main system: a row per unit (NPU, HBM, PIM, link, GPU, ...), a strip
    per resource instance in it (`timeline_bars`); the first two layers are shaded so a layer's
    pattern can be read."""
    trace, metrics = result.main.trace, result.main.metrics
    rows = timeline_rows(result)
    makespan_ms = trace.makespan_ns / 1e6
    labels = []
    for row, (unit, resources) in enumerate(rows):
        count = f" x{len(resources)}" if len(resources) > 1 else ""
        figures = (f"\nbusy {metrics.busy[unit]:.2f}, util {metrics.utilization[unit]:.2f}"
                   if unit in metrics.busy else "")
        labels.append((float(row), f"{unit}{count}{figures}"))
    chart = Chart(Axis(0.0, makespan_ms or 1.0, "time (ms)"), Axis(len(rows) - 0.5, -0.5),
                  title=f"{result.config.name}: timeline of one device (layers 0 and 1 shaded)",
                  width=TIMELINE_WIDTH_PX, height=int(90 + 48 * len(rows)), left=150,
                  y_labels=labels, grid=False)
    layers = np.array([t.layer for t in trace.schedule.tasks])
    start_ms, end_ms = trace.start_ns / 1e6, trace.end_ns / 1e6
    for layer, shade in ((0, 0.12), (1, 0.06)):
        sel = layers == layer
        if sel.any():
            chart.span(float(start_ms[sel].min()), float(end_ms[sel].max()), shade)
    for row, k, strips, s, e in timeline_bars(result):
        height = 0.8 / strips
        top = row - 0.4 + k * height
        chart.bars(s, e, top, top + height * (0.85 if strips > 1 else 1.0), color(row))
    return chart


def timeline_plot(result, path: Path) -> Path:
    """`timeline_chart` as an SVG file."""
    return timeline_chart(result).write(path)


def serving_plots(result, out_dir: Path) -> list[Path]:
    """Serving runs: the latency CDFs (TTFT, TPOT, E2E of every request, main and baselines),
    and the main run over time (tokens per iteration, KV blocks reserved, requests finished)."""
    from hwsim.serving.metrics import per_request
    systems = [("main", result.main), *result.baselines.items()]
    panels = []
    for what, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E")):
        curves = []
        for k, (name, r) in enumerate(systems):
            x = np.sort(per_request(r.serving)[what])
            x = x[np.isfinite(x) & (x > 0)] * 1e3
            if len(x):
                curves.append((k, name, r, x))
        lo = min((c[3][0] for c in curves), default=1e-3)
        hi = max((c[3][-1] for c in curves), default=1.0)
        chart = Chart(Axis(10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi * 1.0001)),
                           f"{label} (ms)", log=True), Axis(0.0, 1.0, "share of requests"),
                      title=f"{result.config.name}: {label}", width=420, height=340, left=60)
        for k, name, r, x in curves:
            chart.line(x, np.arange(1, len(x) + 1) / len(x), color(k), 1.3,
                       label=f"{name} ({r.system.scenario.policy.name})" if label == "TTFT" else "")
        panels.append(chart)
    cdf = write_side_by_side(panels, out_dir / "serving_latency.svg")

    run = result.main.serving
    t = run.iter_start_s
    bins = np.linspace(t.min(), t.max() + 1e-9, min(2000, len(t)) + 1)
    which = np.clip(np.digitize(t, bins) - 1, 0, len(bins) - 2)
    count = np.maximum(np.bincount(which, minlength=len(bins) - 1), 1)
    mid = (bins[:-1] + bins[1:]) / 2
    means = [(np.bincount(which, tokens, minlength=len(bins) - 1) / count, what) for tokens, what in
             ((run.iter_decode_tokens, "decode tokens"), (run.iter_prefill_tokens, "prompt tokens"))]
    top = max(float(m.max()) for m, _ in means) if len(t) else 1.0
    x_axis = (float(t.min()), float(max(t.max(), run.done_s.max() if len(run.done_s) else 0.0)))
    tokens_chart = Chart(Axis(*x_axis, "time (s)"), Axis(0.0, top * 1.05 or 1.0,
                                                         "tokens per iteration (mean per time bin)"),
                         title=f"{result.config.name}: the main run over time", width=1000, height=300)
    for k, (m, what) in enumerate(means):
        tokens_chart.line(mid, m, color(k), 0.8, label=what)
    share_chart = Chart(Axis(*x_axis, "time (s)"), Axis(0.0, 1.02, "share"), width=1000, height=300)
    share_chart.line(t, run.iter_kv_blocks / run.kv.blocks, color(2), 0.8, label="KV blocks reserved")
    done = np.sort(run.done_s)
    if len(done):
        share_chart.line(done, np.arange(1, len(done) + 1) / len(done), color(3), 0.8,
                         label="requests finished")
    timeline = write_stacked([tokens_chart, share_chart], out_dir / "serving_timeline.svg")
    return [cdf, timeline]
