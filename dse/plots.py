"""Pareto plots of a sweep (matplotlib, drawn on an Agg canvas: no display, no pyplot state).

Two objectives: one panel. Dominated points grey, points that broke a constraint as faint
crosses, the front coloured (by an axis when asked) and connected in order of x, each front point
labelled with its axis values, the knee marked with a star. Three or more: a grid of panels, one
per pair of objectives, showing the N-dimensional front (a projection is not a curve, so its
points are not connected or labelled).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from hwsim.dse.results import front, require_columns

MAX_LABELS = 24


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _label(row, axes) -> str:
    parts = []
    for k in axes:
        v = row[k]
        parts.append(f"{_short(k)}={v:.4g}" if isinstance(v, float) else f"{_short(k)}={v}")
    return ", ".join(parts)


def _arrow(sense: str) -> str:
    return "(higher is better)" if sense == "max" else "(lower is better)"


def plot_front(df, objectives: Sequence[tuple[str, str]], out: str | Path | None = None,
               color: str | None = None, title: str | None = None):
    """Draw the front of `df` (from ``load_results``) over `objectives` ([(metric, 'max'|'min')],
    at least two); save to `out` (.png, .svg, .pdf) when given. Returns the Figure."""
    import numpy as np
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(objectives) < 2:
        raise ValueError("a Pareto plot needs at least two objectives")
    axes_keys = [k for k in df.attrs.get("axes", []) if k in df.columns]
    if color is not None:
        require_columns(df, [color], what="axis", option="--color")
    ok, mask, knee = front(df, objectives)
    infeasible = df[(df["status"] == "infeasible")]
    pairs = list(itertools.combinations(range(len(objectives)), 2))
    ncols = min(3, len(pairs))
    nrows = -(-len(pairs) // ncols)
    fig = Figure(figsize=(6.4 * ncols if ncols > 1 else 8, 5.2 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    n_front = int(mask.sum())
    legend_rows = min(n_front, MAX_LABELS) if len(pairs) == 1 and axes_keys else 0
    grid = fig.add_gridspec(nrows + (1 if legend_rows else 0), ncols,
                            height_ratios=[5.2] * nrows + ([0.25 + 0.16 * legend_rows] if legend_rows else []))
    if legend_rows:
        fig.set_size_inches(8, 5.2 + 0.25 + 0.16 * legend_rows)

    colors = None
    if color is not None and len(ok):
        raw = ok[color]
        numeric = pd.api.types.is_numeric_dtype(raw)   # not np.issubdtype: pandas 3 strings are StringDtype
        if numeric:
            colors = raw.to_numpy(dtype=float)
        else:
            categories = list(dict.fromkeys(raw.astype(str)))
            colors = np.array([categories.index(v) for v in raw.astype(str)], dtype=float)

    for p, (i, j) in enumerate(pairs):
        ax = fig.add_subplot(grid[p // ncols, p % ncols])
        (xm, xs), (ym, ys) = objectives[i], objectives[j]
        x = pd.to_numeric(ok[xm], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(ok[ym], errors="coerce").to_numpy(dtype=float)
        if len(infeasible):
            ax.scatter(pd.to_numeric(infeasible[xm], errors="coerce"),
                       pd.to_numeric(infeasible[ym], errors="coerce"), marker="x", s=18, color="0.8",
                       label="infeasible", zorder=1)
        ax.scatter(x[~mask], y[~mask], s=16, color="0.65", label="dominated", zorder=2)
        kwargs = {"color": "C0"} if colors is None else {"c": colors[mask], "cmap": "viridis",
                                                         "vmin": np.nanmin(colors), "vmax": np.nanmax(colors)}
        sc = ax.scatter(x[mask], y[mask], s=36, edgecolor="black", linewidth=0.5, zorder=4,
                        label="Pareto front", **kwargs)
        if len(pairs) == 1 and mask.any():
            order = np.argsort(x[mask], kind="stable")
            ax.plot(x[mask][order], y[mask][order], color="C0", linewidth=1, zorder=3)
            if legend_rows:   # number the front points along x; list their axis values below
                front_rows = ok[mask].iloc[order]
                lines = []
                for n, ((_, row), xv, yv) in enumerate(zip(front_rows.iterrows(), x[mask][order],
                                                           y[mask][order]), start=1):
                    if n > MAX_LABELS:
                        lines.append(f"... {n_front - MAX_LABELS} more on the front")
                        break
                    ax.annotate(str(n), (xv, yv), textcoords="offset points", xytext=(4, 5), fontsize=8)
                    lines.append(f"{n:>2}: {_label(row, axes_keys)}")
                table_ax = fig.add_subplot(grid[nrows, :])
                table_ax.axis("off")
                table_ax.text(0, 1, "\n".join(lines), va="top", ha="left", family="monospace",
                              fontsize=7, transform=table_ax.transAxes,
                              in_layout=False)   # a long label is cut at the edge, never squeezes the panel
        if knee is not None:
            ax.scatter([x[knee]], [y[knee]], marker="*", s=260, color="red", edgecolor="black",
                       zorder=5, label="knee")
            if len(pairs) == 1:
                ax.annotate("knee", (x[knee], y[knee]), textcoords="offset points", xytext=(-10, -16),
                            fontsize=8, color="red")
        ax.set_xlabel(f"{xm} {_arrow(xs)}")
        ax.set_ylabel(f"{ym} {_arrow(ys)}")
        ax.grid(True, alpha=0.3)
        if p == 0:
            ax.legend(fontsize=8, loc="best")
        if colors is not None and p == len(pairs) - 1:
            bar = fig.colorbar(sc, ax=ax)
            bar.set_label(color)
            if not pd.api.types.is_numeric_dtype(ok[color]):
                categories = list(dict.fromkeys(ok[color].astype(str)))
                bar.set_ticks(range(len(categories)))
                bar.set_ticklabels(categories)
    n_ok = len(ok)
    fig.suptitle(title or f"{df.attrs.get('name') or 'sweep'}: {int(mask.sum())} of {n_ok} feasible "
                 f"points on the front ({len(df) - n_ok} infeasible or failed)", fontsize=10)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120)
    return fig
