"""Plots of a run: the roofline of the main system with each op placed on it."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def roofline_plot(result, path: Path) -> Path:
    """Achieved FLOP/s against arithmetic intensity (FLOPs per off-chip byte) for every task on
    the main system's compute unit, under the unit's compute and bandwidth roofs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sched, trace = result.main.schedule, result.main.trace
    compute = next(r for r in sched.resources.values() if r.kind == "compute")
    memory = next((r for r in sched.resources.values() if r.kind == "memory"), None)
    frame = trace.columns
    off_chip = frame.get("bytes_hbm", np.zeros(len(frame["flops"])))
    on_unit = np.array(frame["unit"]) == compute.unit
    mask = on_unit & (frame["flops"] > 0) & (off_chip > 0) & (frame["duration_ns"] > 0)
    intensity = frame["flops"][mask] / off_chip[mask]
    achieved = frame["flops"][mask] / frame["duration_ns"][mask]      # FLOP/ns = GFLOP/s
    fig, ax = plt.subplots(figsize=(7, 4.5))
    peak = compute.peak_flops_per_ns
    x = np.logspace(-2, 4, 200)
    if memory is not None:
        ax.plot(x, np.minimum(peak, x * memory.peak_per_ns), "k-", lw=1.5,
                label=f"roofline: {peak:,.0f} GFLOP/s, {memory.peak_per_ns:,.0f} GB/s")
    ax.scatter(intensity, achieved, s=12, alpha=0.6, label="ops (achieved)")
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / off-chip byte)",
           ylabel="achieved GFLOP/s", title=f"{result.config.name}: {compute.unit}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)   # tight_layout costs ~1 s on log axes
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def timeline_plot(result, path: Path) -> Path:
    """Gantt chart of the main system: one row per unit (NPU, PIM, GPU, link, ...), a bar for each
    task while it ran; the first two layers are shaded so a layer's pattern can be read."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trace = result.main.trace
    cols = trace.columns
    units = sorted(set(cols["unit"]))
    unit_of = np.array(cols["unit"])
    start_ms, dur_ms = trace.start_ns / 1e6, (trace.end_ns - trace.start_ns) / 1e6
    height_in = 1.2 + 0.5 * len(units)
    fig, ax = plt.subplots(figsize=(9, height_in))
    for row, unit in enumerate(units):
        mine = unit_of == unit
        ax.broken_barh(list(zip(start_ms[mine], dur_ms[mine])), (row - 0.4, 0.8), lw=0)
    layers = np.array([t.layer for t in trace.schedule.tasks])
    for layer, shade in ((0, 0.12), (1, 0.06)):
        sel = layers == layer
        if sel.any():
            ax.axvspan(start_ms[sel].min(), (start_ms + dur_ms)[sel].max(), color="k", alpha=shade, lw=0)
    ax.set(yticks=range(len(units)), yticklabels=units, xlabel="time (ms)",
           xlim=(0, trace.makespan_ns / 1e6), title=f"{result.config.name}: timeline (layers 0 and 1 shaded)")
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.5 / height_in, top=1 - 0.35 / height_in)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
