"""`hwsim validate --report DIR`: DIR/validation.md (the table, each band's reason) and one
published-vs-ours plot per system (DIR/<system>.png)."""
from __future__ import annotations

import math
from pathlib import Path

from hwsim.validate import Outcome, Status, slug
from hwsim.validate.command import fmt, fmt_band, summary_line

COLORS = {Status.PASS: "tab:green", Status.FAIL: "tab:red", Status.NOT_REPRODUCED: "0.5"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(outcomes: list[Outcome], counts: dict, folder: Path) -> Path:
    by_system: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_system.setdefault(o.claim.system, []).append(o)
    lines = ["# hwsim validate", "",
             "Each row is a published claim (a paper's table or figure, or a peer simulator's "
             "committed report), re-run by hwsim. *ours* must fall in the accepted band for "
             "*pass*; a *not reproduced* claim is one hwsim deliberately does not model, with the "
             "reason. Published numbers are targets, never inputs.", "",
             f"**{summary_line(counts)}.**", ""]
    for system, rows in by_system.items():
        plot = plot_system(system, rows, folder / f"{slug(system)}.png")
        lines += [f"## {system}", "", f"![{system}: published vs ours]({plot.name})", "",
                  "| claim | source | config | published | ours | accepted band | status | why this band / why not |",
                  "| --- | --- | --- | ---: | ---: | --- | --- | --- |"]
        for o in rows:
            c = o.claim
            lines.append("| " + " | ".join(_cell(x) for x in [
                f"{c.claim} (`{c.id}`)", c.source, f"`{c.config}`", fmt(c.published, c.unit),
                fmt(o.ours, c.unit), fmt_band(*c.bounds, c.unit), f"**{o.status}**", c.reason]) + " |")
        lines.append("")
    path = folder / "validation.md"
    path.write_text("\n".join(lines))
    return path


def plot_system(system: str, rows: list[Outcome], path: Path) -> Path:
    """One row per claim: ours divided by the published value (or, for a direction, by the band's
    finite edge) on a log axis, with the accepted band as a bar and 1 marked."""
    from matplotlib.figure import Figure    # no pyplot: nothing global, no GUI backend

    fig = Figure(figsize=(8, 1.4 + 0.32 * len(rows)))
    ax = fig.add_subplot()
    points = []   # (y, band low, band high, ours) divided by the reference; None where absent
    for y, o in enumerate(rows):
        c, (low, high) = o.claim, o.claim.bounds
        reference = c.published if c.published else (low if math.isfinite(low) and low else high)
        scaled = lambda v: v / reference if v is not None and math.isfinite(v) else None  # noqa: E731
        points.append((y, scaled(low), scaled(high), scaled(o.ours), o))
    finite = [v for p in points for v in p[1:4] if v is not None and v > 0] + [1.0]
    left, right = min(finite) / 1.6, max(finite) * 1.6
    for y, lo, hi, ours, o in points:
        if lo is not None or hi is not None:
            ax.plot([max(lo or left, left), hi or right], [y, y], color="0.8", lw=6,
                    solid_capstyle="butt")
        if ours is not None and ours > 0:
            ax.plot([ours], [y], "o", color=COLORS[o.status],
                    mfc="none" if o.status == Status.NOT_REPRODUCED else COLORS[o.status])
        elif o.ours is None:
            ax.text(1, y, " not reproduced", va="center", fontsize=7, color="0.4")
    labels = [o.claim.id.split(".", 1)[1][:48] for o in rows]
    ax.set_xlim(left, right)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("ours / published (grey: accepted band; hollow: not reproduced)")
    ax.set_title(f"{system}: published vs ours", fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.subplots_adjust(left=0.38, right=0.97, bottom=0.9 / fig.get_figheight(),
                        top=1 - 0.35 / fig.get_figheight())
    fig.savefig(path, dpi=100)
    return path
