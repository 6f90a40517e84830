"""A small SVG chart: axes (linear or log), lines, points, bars, shaded spans, labels, a legend.

The plots of a run (`hwsim.plots`) are written as SVG with this module instead of matplotlib:
importing matplotlib and rasterizing two PNGs cost ~1 s of the ~2 s a `hwsim run` takes, while
these charts need only rectangles, lines, dots and text. SVG is vector (it scales for a paper),
opens in any browser and notebook, and its text stays searchable. The sweep plots (Pareto fronts)
and `hwsim validate --report` still use matplotlib, where the time does not matter.

Coordinates: the caller gives data values; `Chart` maps them to pixels (y grows downwards in
SVG). Log axes take decades as ticks; linear axes take 1-2-5 steps (`nice_ticks`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def escape(text: str) -> str:
    """Text as SVG character data: &, < and > escaped (what xml.sax.saxutils.escape does,
    without importing urllib and ssl with it)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# matplotlib's "tab10" cycle, so colours match the sweep plots (C0, C1, ...).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
FONT = "font-family:DejaVu Sans,Helvetica,Arial,sans-serif"


def color(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Ticks at 1, 2 or 5 x 10^k steps covering [lo, hi] with about `target` ticks."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [k * step for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        exp = math.floor(math.log10(abs(v)))
        mant = v / 10 ** exp
        return f"1e{exp}" if abs(mant - 1) < 1e-9 else f"{mant:g}e{exp}"
    return f"{v:g}"


@dataclass
class Axis:
    lo: float
    hi: float
    label: str = ""
    log: bool = False

    def unit(self, v: np.ndarray) -> np.ndarray:
        """Position in [0, 1] along the axis."""
        v = np.asarray(v, dtype=float)
        if self.log:
            lo, hi = math.log10(self.lo), math.log10(self.hi)
            return (np.log10(np.maximum(v, self.lo * 1e-3)) - lo) / (hi - lo)
        return (v - self.lo) / ((self.hi - self.lo) or 1.0)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0 ** k for k in range(math.ceil(math.log10(self.lo) - 1e-9),
                                             math.floor(math.log10(self.hi) + 1e-9) + 1)]
        return nice_ticks(self.lo, self.hi)


@dataclass
class Chart:
    """One plot area with its axes. `width`, `height` and margins in pixels."""
    x: Axis
    y: Axis
    title: str = ""
    width: int = 760
    height: int = 480
    left: int = 80
    right: int = 20
    top: int = 36
    bottom: int = 52
    y_labels: list[tuple[float, str]] | None = None     # categorical rows instead of y ticks
    grid: bool = True
    _body: list[str] = field(default_factory=list)
    _legend: list[tuple[str, str, str]] = field(default_factory=list)   # (kind, colour, text)

    # -- coordinates
    def px_x(self, v) -> np.ndarray:
        return self.left + self.x.unit(v) * (self.width - self.left - self.right)

    def px_y(self, v) -> np.ndarray:
        return self.height - self.bottom - self.y.unit(v) * (self.height - self.top - self.bottom)

    # -- marks
    def line(self, xs, ys, stroke: str = "#000", width: float = 1.5, label: str = "") -> None:
        px, py = self.px_x(xs), self.px_y(ys)
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py))
        self._body.append(f'<polyline points="{pts}" fill="none" stroke="{stroke}" '
                          f'stroke-width="{width}"/>')
        if label:
            self._legend.append(("line", stroke, label))

    def points(self, xs, ys, fill: str = PALETTE[0], radius: float = 2.5, opacity: float = 0.6,
               label: str = "") -> None:
        """Dots; dots that land on the same pixel are drawn once (the picture is the same)."""
        px, py = np.round(self.px_x(xs)), np.round(self.px_y(ys))
        pairs = sorted(set(zip(px.tolist(), py.tolist())))
        dots = "".join(f'<circle cx="{a:.0f}" cy="{b:.0f}" r="{radius}"/>' for a, b in pairs)
        self._body.append(f'<g fill="{fill}" fill-opacity="{opacity}">{dots}</g>')
        if label:
            self._legend.append(("dot", fill, label))

    def bars(self, x0: np.ndarray, x1: np.ndarray, y_top: float, y_bottom: float, fill: str) -> None:
        """Horizontal bars [x0, x1) between two y values, as one path (one element per strip)."""
        if not len(x0):
            return
        a, b = self.px_x(x0), self.px_x(x1)
        top, bottom = float(self.px_y(y_top)), float(self.px_y(y_bottom))
        lo, h = min(top, bottom), abs(bottom - top)
        w = np.maximum(b - a, 0.5)      # a bar narrower than half a pixel would vanish
        d = "".join(f"M{s:.2f} {lo:.2f}h{ww:.2f}v{h:.2f}h{-ww:.2f}z" for s, ww in zip(a, w))
        self._body.append(f'<path d="{d}" fill="{fill}"/>')

    def span(self, x0: float, x1: float, opacity: float) -> None:
        """A shaded vertical band over the whole plot height."""
        a, b = float(self.px_x(x0)), float(self.px_x(x1))
        self._body.append(f'<rect x="{a:.2f}" y="{self.top}" width="{max(b - a, 0.5):.2f}" '
                          f'height="{self.height - self.top - self.bottom}" fill="#000" '
                          f'fill-opacity="{opacity}"/>')

    # -- output
    def svg(self) -> str:
        w, h, L, R, T, B = self.width, self.height, self.left, self.right, self.top, self.bottom
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
               f'viewBox="0 0 {w} {h}" style="{FONT}">',
               f'<rect width="{w}" height="{h}" fill="#fff"/>']
        if self.title:
            out.append(f'<text x="{w / 2:.0f}" y="{T - 12}" text-anchor="middle" font-size="14">'
                       f'{escape(self.title)}</text>')
        grid = []
        for v in self.x.ticks():
            px = float(self.px_x(v))
            grid.append(f'<line x1="{px:.1f}" y1="{T}" x2="{px:.1f}" y2="{h - B}"/>')
            out.append(f'<text x="{px:.1f}" y="{h - B + 16}" text-anchor="middle" font-size="11">'
                       f'{escape(_fmt(v))}</text>')
        if self.y_labels is None:
            for v in self.y.ticks():
                py = float(self.px_y(v))
                grid.append(f'<line x1="{L}" y1="{py:.1f}" x2="{w - R}" y2="{py:.1f}"/>')
                out.append(f'<text x="{L - 6}" y="{py + 4:.1f}" text-anchor="end" font-size="11">'
                           f'{escape(_fmt(v))}</text>')
        else:
            for v, text in self.y_labels:
                lines = text.split("\n")
                py = float(self.px_y(v)) - 5 * (len(lines) - 1) + 4
                spans = "".join(f'<tspan x="{L - 6}" dy="{0 if i == 0 else 11}">{escape(s)}</tspan>'
                                for i, s in enumerate(lines))
                out.append(f'<text y="{py:.1f}" text-anchor="end" font-size="10">{spans}</text>')
        if self.grid:
            out.append(f'<g stroke="#000" stroke-opacity="0.12">{"".join(grid)}</g>')
        out.append(f'<svg x="{L}" y="{T}" width="{w - L - R}" height="{h - T - B}" '
                   f'viewBox="{L} {T} {w - L - R} {h - T - B}" overflow="hidden">')
        out += self._body
        out.append("</svg>")
        out.append(f'<rect x="{L}" y="{T}" width="{w - L - R}" height="{h - T - B}" fill="none" '
                   f'stroke="#000"/>')
        if self.x.label:
            out.append(f'<text x="{(L + w - R) / 2:.0f}" y="{h - 12}" text-anchor="middle" '
                       f'font-size="12">{escape(self.x.label)}</text>')
        if self.y.label:
            out.append(f'<text transform="translate(16 {(T + h - B) / 2:.0f}) rotate(-90)" '
                       f'text-anchor="middle" font-size="12">{escape(self.y.label)}</text>')
        for k, (kind, fill, text) in enumerate(self._legend):
            y = h - B - 14 - 16 * (len(self._legend) - 1 - k)
            x = w - R - 10 - 7 * max(len(t) for _, _, t in self._legend) - 24
            mark = (f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="{fill}" '
                    f'stroke-width="2"/>' if kind == "line" else
                    f'<circle cx="{x + 9}" cy="{y - 4}" r="3" fill="{fill}"/>')
            out.append(f'{mark}<text x="{x + 24}" y="{y}" font-size="11">{escape(text)}</text>')
        out.append("</svg>\n")
        return "\n".join(out)

    def write(self, path: Path) -> Path:
        path.write_text(self.svg())
        return path


def _compose(charts: list[Chart], path: Path, across: bool) -> Path:
    """Several charts in one SVG file, side by side (`across`) or stacked."""
    width = sum(c.width for c in charts) if across else max(c.width for c in charts)
    height = max(c.height for c in charts) if across else sum(c.height for c in charts)
    parts, offset = [], 0
    for c in charts:
        body = c.svg().split("\n", 1)[1]            # the chart without its own <svg> opening
        x, y = (offset, 0) if across else (0, offset)
        parts.append(f'<svg x="{x}" y="{y}" width="{c.width}" height="{c.height}" '
                     f'viewBox="0 0 {c.width} {c.height}" style="{FONT}">\n{body}')
        offset += c.width if across else c.height
    path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                    f'viewBox="0 0 {width} {height}">\n' + "\n".join(parts) + "</svg>\n")
    return path


def write_side_by_side(charts: list[Chart], path: Path) -> Path:
    return _compose(charts, path, across=True)


def write_stacked(charts: list[Chart], path: Path) -> Path:
    return _compose(charts, path, across=False)
