"""Plots of a run: the roofline of the main system with each op placed on it, and its timeline.

Drawn on a bare `matplotlib.figure.Figure` with the Agg canvas (no pyplot: no global figure
state, nothing to close), with collections rather than an artist per task.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TIMELINE_WIDTH_IN, TIMELINE_DPI = 9.0, 110


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def roofline_plot(result, path: Path) -> Path:
    """Achieved FLOP/s against arithmetic intensity (FLOPs per off-chip byte) for every task on
    the main system's compute unit, under the unit's compute and bandwidth roofs."""
    sched, trace = result.main.schedule, result.main.trace
    compute = next(r for r in sched.resources.values() if r.kind == "compute")
    memory = next((r for r in sched.resources.values() if r.kind == "memory"), None)
    frame = trace.columns
    off_chip = frame.get("bytes_hbm", np.zeros(len(frame["flops"])))
    on_unit = np.array(frame["unit"]) == compute.unit
    mask = on_unit & (frame["flops"] > 0) & (off_chip > 0) & (frame["duration_ns"] > 0)
    intensity = frame["flops"][mask] / off_chip[mask]
    achieved = frame["flops"][mask] / frame["duration_ns"][mask]      # FLOP/ns = GFLOP/s
    fig = _figure(7, 4.5)
    ax = fig.add_subplot()
    peak = compute.peak_flops_per_ns
    x = np.logspace(-2, 4, 200)
    if memory is not None:
        ax.plot(x, np.minimum(peak, x * memory.peak_per_ns), "k-", lw=1.5,
                label=f"roofline: {peak:,.0f} GFLOP/s, {memory.peak_per_ns:,.0f} GB/s")
    ax.scatter(intensity, achieved, s=12, alpha=0.6, label="ops (achieved)")
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / off-chip byte)",
           ylabel="achieved GFLOP/s", title=f"{result.config.name}: {compute.unit}")
    from matplotlib.ticker import NullLocator
    ax.xaxis.set_minor_locator(NullLocator())     # minor log ticks cost most of the drawing time
    ax.yaxis.set_minor_locator(NullLocator())
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)   # tight_layout costs ~1 s on log axes
    fig.savefig(path, dpi=110)
    return path


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


def timeline_figure(result):
    """Gantt chart of the main system: a row per unit (NPU, HBM, PIM, link, GPU, ...), a strip
    per resource instance in it, bars where some task had work on it — on a memory bus or a
    link, where at least one transfer was in flight. Tasks closer together than a pixel are
    drawn as one bar, so the drawing time does not grow with the number of tasks. The first
    two layers are shaded so a layer's pattern can be read."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    trace, metrics = result.main.trace, result.main.metrics
    rows = timeline_rows(result)
    makespan_ms = trace.makespan_ns / 1e6
    join_ms = makespan_ms / (2 * TIMELINE_WIDTH_IN * TIMELINE_DPI)     # half a pixel
    start_ms, end_ms = trace.start_ns / 1e6, trace.end_ns / 1e6
    verts, colors = [], []
    for row, (unit, resources) in enumerate(rows):
        height = 0.8 / len(resources)
        for k, name in enumerate(resources):
            ids = trace.tasks_on[name][0]
            s, e = merged_intervals(start_ms[ids], end_ms[ids], join_ms)
            top = row - 0.4 + k * height
            bottom = top + height * (0.85 if len(resources) > 1 else 1.0)
            box = np.empty((len(s), 4, 2))
            box[:, :, 0] = np.stack([s, s, e, e], axis=1)
            box[:, :, 1] = [top, bottom, bottom, top]
            verts.append(box)
            colors.append(np.tile(to_rgba(f"C{row % 10}"), (len(s), 1)))
    height_in = 1.2 + 0.55 * len(rows)
    fig = _figure(TIMELINE_WIDTH_IN, height_in)
    ax = fig.add_subplot()
    if verts:
        ax.add_collection(PolyCollection(np.concatenate(verts), facecolors=np.concatenate(colors),
                                         linewidths=0))
    layers = np.array([t.layer for t in trace.schedule.tasks])
    for layer, shade in ((0, 0.12), (1, 0.06)):
        sel = layers == layer
        if sel.any():
            ax.axvspan(start_ms[sel].min(), end_ms[sel].max(), color="k", alpha=shade, lw=0)
    labels = []
    for unit, resources in rows:
        count = f" x{len(resources)}" if len(resources) > 1 else ""
        figures = (f"\nbusy {metrics.busy[unit]:.2f}, util {metrics.utilization[unit]:.2f}"
                   if unit in metrics.busy else "")
        labels.append(f"{unit}{count}{figures}")
    ax.set(yticks=range(len(rows)), yticklabels=labels, xlabel="time (ms)",
           xlim=(0, makespan_ms or 1.0), ylim=(len(rows) - 0.5, -0.5),
           title=f"{result.config.name}: timeline of one device (layers 0 and 1 shaded)")
    ax.tick_params(axis="y", labelsize=8)
    fig.subplots_adjust(left=0.14, right=0.98, bottom=0.5 / height_in, top=1 - 0.35 / height_in)
    return fig


def timeline_plot(result, path: Path) -> Path:
    """`timeline_figure` as a PNG."""
    timeline_figure(result).savefig(path, dpi=TIMELINE_DPI)
    return path


def serving_plots(result, out_dir: Path) -> list[Path]:
    """Serving runs: the latency CDFs (TTFT, TPOT, E2E of every request, main and baselines),
    and the main run over time (tokens per iteration, KV blocks reserved, requests finished)."""
    from hwsim.serving.metrics import per_request
    systems = [("main", result.main), *result.baselines.items()]
    fig = _figure(11, 3.6)
    for i, (what, label) in enumerate((("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E"))):
        ax = fig.add_subplot(1, 3, i + 1)
        for name, r in systems:
            x = np.sort(per_request(r.serving)[what])
            x = x[np.isfinite(x)]
            ax.plot(x * 1e3, np.arange(1, len(x) + 1) / max(len(x), 1), lw=1.3,
                    label=f"{name} ({r.system.scenario.policy.name})")
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} (ms)")
        ax.set_ylim(0, 1)
        ax.grid(True, which="both", alpha=0.3)
        if i == 0:
            ax.set_ylabel("share of requests")
            ax.legend(fontsize=8)
    fig.suptitle(f"{result.config.name}: latency CDFs")
    fig.tight_layout()
    cdf = out_dir / "serving_latency.png"
    fig.savefig(cdf, dpi=TIMELINE_DPI)

    run = result.main.serving
    fig = _figure(TIMELINE_WIDTH_IN, 5.0)
    ax1, ax2 = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    # tokens per iteration, as the mean over each of (at most) 2,000 time bins
    t = run.iter_start_s
    bins = np.linspace(t.min(), t.max() + 1e-9, min(2000, len(t)) + 1)
    which = np.clip(np.digitize(t, bins) - 1, 0, len(bins) - 2)
    count = np.maximum(np.bincount(which, minlength=len(bins) - 1), 1)
    mid = (bins[:-1] + bins[1:]) / 2
    for tokens, label in ((run.iter_decode_tokens, "decode tokens"), (run.iter_prefill_tokens, "prompt tokens")):
        ax1.plot(mid, np.bincount(which, tokens, minlength=len(bins) - 1) / count, lw=0.7, label=label)
    ax1.set_ylabel("tokens per iteration\n(mean per time bin)")
    ax1.legend(fontsize=8, loc="upper right")
    ax2.plot(t, run.iter_kv_blocks / run.kv.blocks, lw=0.8, color="C2", label="KV blocks reserved (share)")
    done = np.sort(run.done_s)
    ax2.plot(done, np.arange(1, len(done) + 1) / len(done), lw=0.8, color="C3", label="requests finished (share)")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("time (s)")
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    timeline = out_dir / "serving_timeline.png"
    fig.savefig(timeline, dpi=TIMELINE_DPI)
    return [cdf, timeline]
