"""Pareto fronts and knee points, in N dimensions, vectorized with numpy.

Conventions:
- ``senses[k]`` is 'max' or 'min' for objective k; values are turned into costs to minimize by
  negating the maximized ones.
- Point a *dominates* b when a is no worse in every objective and strictly better in at least
  one. The front is every point no other point dominates.
- Ties and duplicates: two points with identical objective values do not dominate each other, so
  duplicates are either all on the front or all off it (each is reported: the front keeps every
  design that achieves a non-dominated trade-off). A point equal to another in some objectives
  and worse in one is dominated.
- Rows with a NaN objective are never on the front and dominate nothing. +-inf compare as usual.

Knee (one point of the front to suggest):
- two objectives: the front point farthest from the straight line through the two extreme
  points of the front, in objectives normalized to [0, 1] over the front, on the side towards
  the ideal point — the "maximum distance to the line between the extremes" knee of
  Das (1999), "On characterizing the 'knee' of the Pareto curve based on Normal-Boundary
  Intersection", Structural Optimization 18, and the Kneedle idea (Satopaa et al., ICDCS-W 2011).
- three or more (or fewer than three front points): the front point closest (Euclidean) to the
  ideal ("utopia") point in the normalized objectives — compromise programming
  (Zeleny 1973; Deb, Multi-Objective Optimization Using Evolutionary Algorithms, 2001, sec. 8.5).
Ties go to the lowest index.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def costs_of(values, senses: Sequence[str]) -> np.ndarray:
    """(n, k) values -> costs to minimize (maximized columns negated)."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(senses):
        raise ValueError(f"expected an (n, {len(senses)}) array, got shape {values.shape}")
    bad = [s for s in senses if s not in ("max", "min")]
    if bad:
        raise ValueError(f"senses must be 'max' or 'min', got {bad}")
    sign = np.array([-1.0 if s == "max" else 1.0 for s in senses])
    return values * sign


def pareto_mask(values, senses: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `values` (n points x k objectives).

    Each surviving point removes, in one vectorized step, every point it dominates; points are
    visited best-first (by the sum of ranks) so the dominated ones go early. A dominated point
    is always removed: a non-dominated point that dominates it exists and is visited."""
    costs = costs_of(values, senses)
    n = len(costs)
    mask = np.zeros(n, dtype=bool)
    valid = ~np.isnan(costs).any(axis=1)
    idx = np.flatnonzero(valid)
    c = costs[idx]
    if len(c) == 0:
        return mask
    order = np.argsort(np.argsort(c, axis=0, kind="stable"), axis=0).sum(axis=1).argsort(kind="stable")
    idx, c = idx[order], c[order]
    i = 0
    while i < len(c):
        dominated = np.all(c[i] <= c, axis=1) & np.any(c[i] < c, axis=1)
        if dominated.any():
            keep = ~dominated
            i = int(keep[:i].sum())     # c[i] is never dominated by itself
            idx, c = idx[keep], c[keep]
        i += 1
    mask[idx] = True
    return mask


def pareto_mask_bruteforce(values, senses: Sequence[str]) -> np.ndarray:
    """O(n^2) reference of ``pareto_mask`` (for tests)."""
    costs = costs_of(values, senses)
    n = len(costs)
    mask = np.zeros(n, dtype=bool)
    for a in range(n):
        if np.isnan(costs[a]).any():
            continue
        mask[a] = not any(
            not np.isnan(costs[b]).any() and np.all(costs[b] <= costs[a]) and np.any(costs[b] < costs[a])
            for b in range(n) if b != a)
    return mask


def normalized(costs: np.ndarray) -> np.ndarray:
    """Costs scaled to [0, 1] per objective over the given points (a constant column -> 0)."""
    lo, hi = costs.min(axis=0), costs.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (costs - lo) / span


def knee_index(values, senses: Sequence[str]) -> int | None:
    """Index (into `values`) of the knee of the front of `values`; None if there is no point.
    See the module docstring for the definition."""
    costs = costs_of(values, senses)
    front = np.flatnonzero(pareto_mask(values, senses))
    finite = np.isfinite(costs[front]).all(axis=1)
    if finite.any():     # an infinite objective cannot be normalized: such points are no knee
        front = front[finite]
    if len(front) == 0:
        return None
    if len(front) == 1:
        return int(front[0])
    z = normalized(costs[front])
    if z.shape[1] == 2 and len(front) >= 3:
        a = z[np.argmin(z[:, 0])]    # best in objective 0
        b = z[np.argmin(z[:, 1])]    # best in objective 1
        direction = b - a
        length = np.hypot(*direction)
        if length > 0:
            # signed distance, positive on the side of the ideal point (0, 0)
            normal = np.array([-direction[1], direction[0]]) / length
            if normal @ (np.zeros(2) - a) < 0:
                normal = -normal
            distance = (z - a) @ normal
            return int(front[int(np.argmax(distance))])
    return int(front[int(np.argmin(np.linalg.norm(z, axis=1)))])
