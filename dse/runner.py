"""Run a sweep: pick the points (grid, random or NSGA-II), evaluate the missing ones, store each.

Strategies:
- ``grid``: every combination of the axes (last axis fastest). All configs of the points still
  to evaluate are built and validated before the first evaluation, so a bad key or value stops
  the sweep at once with the loader's error.
- ``random``: ``samples`` distinct grid points drawn with numpy's PCG64 seeded by ``seed``; the
  same seed and samples give the same points. Every axis value is validated up front (one point
  per value); a point whose combination of values is invalid is stored as 'infeasible'.
- ``nsga2``: optuna's ``NSGAIISampler`` (seeded) through the ask/tell interface. Each axis is an
  integer parameter, the index of its value. A generation is ``population`` asks, evaluated in
  parallel, then told in ask order. Constraints go to NSGA-II as constraint values (the number
  of broken constraints; a point that could not be evaluated counts as len(constraints) + 1 and
  gets the worst objective values), so feasible points always rank first.

  Resume, by replay: the study lives in memory and is rebuilt on every run from the seed. Every
  ask is repeated in the same order; a point already in the store is told its stored values
  without being evaluated, a missing one is evaluated. Because the sampler is seeded and is told
  the same values in the same order, it asks the same points as an uninterrupted run would, so a
  killed-and-resumed (or ``--limit``-ed) NSGA-II sweep ends with exactly the points of one
  uninterrupted run, and re-running a finished one evaluates nothing. (Replaying stored rows with
  ``study.add_trial`` instead would not restore the sampler's random state, so the run would
  continue differently from an uninterrupted one.) ``--limit`` stops after that many new
  evaluations; the next run continues from there.

``extrapolate_layers: true`` (the default in a spec): dense decoders are simulated with a few
layers and extended over a steady period to all of them (see ``hwsim.dse.spec``); the
``extrapolated`` and ``extrapolation_period`` columns say which points were, and over how many
layers a period.

``baselines: false`` (the default in a spec): only the main system is evaluated, the base's
baselines are dropped (a sweep explores the main system's design space; baselines multiply the
cost). ``baselines: true`` keeps them and adds ``speedup.<baseline>`` columns.
"""
from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim.dse.evaluate import make_evaluator
from hwsim.dse.constraints import FITS_MEMORY, violations
from hwsim.dse.spec import Sweep, load_sweep
from hwsim.dse.store import ResultsStore

from hwsim.errors import ConfigError

NSGA2_POPULATION = 16
NSGA2_GENERATIONS = 8


@dataclass
class SweepReport:
    """What a run of a sweep did."""
    out_dir: Path
    strategy: str
    points: int               # points of this strategy (grid size, samples, or NSGA-II asks)
    already_stored: int       # of those, found in the store and skipped
    evaluated: int            # evaluated by this run
    statuses: Counter = field(default_factory=Counter)   # of the points evaluated by this run
    seconds: float = 0.0
    evaluator: str = ""
    remaining: int = 0        # points left for a later run (--limit)
    first_error: str | None = None

    def summary(self) -> str:
        rate = f", {self.evaluated / self.seconds:.1f} points/s" if self.seconds > 0 and self.evaluated else ""
        stored = (f"{self.points} asks, {self.already_stored} answered from the store" if self.strategy == "nsga2"
                  else f"{self.points} points, {self.already_stored} already stored")
        parts = [f"{self.strategy}: {stored}, "
                 f"{self.evaluated} evaluated ({', '.join(f'{n} {s}' for s, n in sorted(self.statuses.items())) or 'none'})"
                 f" in {self.seconds:.1f} s{rate} [{self.evaluator}]"]
        if self.remaining:
            parts.append(f"{self.remaining} left: re-run the same command to continue")
        if self.first_error:
            parts.append(f"first error: {self.first_error}")
        parts.append(f"results: {self.out_dir / 'results.sqlite'}")
        return "\n".join(parts)


def judge(sweep: Sweep, values: dict[str, Any]) -> tuple[str, list[str]]:
    """('ok' | 'infeasible', broken constraints) of an evaluated point (metrics + axis values)."""
    broken = violations(sweep.constraints, {**values, FITS_MEMORY: True})
    return ("infeasible" if broken else "ok"), broken


class _Run:
    """One invocation: the store, the evaluator (started only when needed), the progress bar."""

    def __init__(self, sweep: Sweep, store: ResultsStore, jobs, cluster, progress: bool):
        self.sweep, self.store = sweep, store
        self.jobs, self.cluster, self.progress = jobs, cluster, progress
        self.evaluator = None
        self.bar = None
        self.statuses: Counter = Counter()
        self.first_error = None
        self.evaluated = 0

    def start_bar(self, total: int, initial: int = 0):
        from tqdm import tqdm
        self.bar = tqdm(total=total, initial=initial, desc=self.sweep.spec.name or "sweep",
                        unit="pt", file=sys.stderr, disable=not self.progress, mininterval=0.5,
                        smoothing=0.05, dynamic_ncols=True)

    def evaluate(self, todo: list[tuple[str, dict, Any]]) -> dict[str, dict]:
        """Evaluate (point_id, point, RunConfig) triples; store each as it arrives; return the
        stored rows by point_id."""
        if not todo:
            return {}
        if self.evaluator is None:
            self.evaluator = make_evaluator(self.jobs, self.cluster, self.sweep.spec.extrapolate_layers)
        points = {pid: point for pid, point, _ in todo}
        rows = {}
        for pid, outcome in self.evaluator.run([(pid, cfg) for pid, _, cfg in todo]):
            rows[pid] = self.record(pid, points[pid], outcome)
        return rows

    def record(self, pid: str, point: dict, outcome: dict) -> dict:
        status, broken = outcome["status"], None
        if status == "ok":
            status, broken = judge(self.sweep, {**outcome["metrics"], **point})
        self.store.add(pid, point, outcome, status, broken)
        self.evaluated += 1
        self.statuses[status] += 1
        if outcome.get("error") and self.first_error is None:
            self.first_error = outcome["error"]
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({s: self.statuses[s] for s in ("ok", "infeasible", "failed")},
                                 refresh=False)
        return {**outcome.get("metrics", {}), **point, "status": status,
                "violations": broken, "error": outcome.get("error")}

    def close(self, abort: bool):
        if self.bar is not None:
            self.bar.close()
        if self.evaluator is not None:
            self.evaluator.close(abort=abort)


def run_sweep(spec: str | Path | dict | Sweep, out_dir: str | Path, *, jobs: int | None = None,
              cluster: str | None = None, limit: int | None = None, overrides: list[str] = (),
              progress: bool = True) -> SweepReport:
    """Evaluate the design points of `spec` missing from ``out_dir/results.sqlite``.

    spec: a spec file, a mapping (same keys as the YAML) or a loaded ``Sweep``.
    jobs: local worker processes (default: os.cpu_count(); 1 runs in this process).
    cluster: a dask.distributed scheduler address; overrides `jobs`.
    limit: evaluate at most this many new points (re-run to continue).
    overrides: extra fixed ``KEY=VALUE`` applied to the base config (part of its identity).
    Raises ConfigError for a bad spec, an invalid point (grid) or a folder holding another sweep.
    """
    sweep = spec if isinstance(spec, Sweep) else load_sweep(spec, overrides)
    if limit is not None and limit < 0:
        raise ConfigError(f"must be >= 0, got {limit}", key="--limit")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"must be >= 1, got {jobs}", key="--jobs")
    t0 = time.perf_counter()
    sweep.check_axes()     # a bad axis key or value fails here, before the folder is touched
    out_dir = Path(out_dir)
    store = ResultsStore(out_dir)
    run = _Run(sweep, store, jobs, cluster, progress)
    aborted = True
    try:
        store.lock()
        if cluster:      # connect first: an unreachable scheduler is reported before any work
            run.evaluator = make_evaluator(jobs, cluster, sweep.spec.extrapolate_layers)
        store.check(sweep)
        strategy = {"grid": _grid, "random": _random, "nsga2": _nsga2}[sweep.spec.strategy]
        points, stored, remaining = strategy(run, limit)
        aborted = False
    finally:
        run.close(abort=aborted)
        store.close()
    return SweepReport(out_dir, sweep.spec.strategy, points, stored, run.evaluated, run.statuses,
                       time.perf_counter() - t0,
                       run.evaluator.description if run.evaluator else "nothing to evaluate",
                       remaining, run.first_error)


def _listed(run: _Run, points: list[dict], limit, strict: bool):
    """Evaluate the missing ones of a fixed list of points."""
    sweep = run.sweep
    stored = run.store.stored_ids()
    ids = [sweep.point_id(p) for p in points]
    missing = [(pid, p) for pid, p in zip(ids, points) if pid not in stored]
    seen, unique = set(), []
    for pid, p in missing:
        if pid not in seen:
            seen.add(pid)
            unique.append((pid, p))
    todo_points = unique if limit is None else unique[:limit]
    todo, invalid = [], []
    for pid, p in todo_points:
        try:
            todo.append((pid, p, sweep.build(p)))
        except ConfigError as exc:
            if strict:
                raise
            invalid.append((pid, p, str(exc)))
    run.store.bind(sweep)
    run.start_bar(total=len(todo_points))
    for pid, p, message in invalid:
        run.record(pid, p, {"status": "infeasible", "metrics": {}, "error": message,
                            "elapsed_s": 0.0, "hwsim_version": None})
    run.evaluate(todo)
    return len(set(ids)), len(set(ids)) - len(unique), len(unique) - len(todo_points)


def _grid(run: _Run, limit):
    return _listed(run, list(run.sweep.grid()), limit, strict=True)


def _random(run: _Run, limit):
    spec = run.sweep.spec
    return _listed(run, run.sweep.random_points(spec.samples, spec.seed), limit, strict=False)


def _nsga2(run: _Run, limit):
    import warnings

    import optuna
    from optuna.distributions import IntDistribution

    sweep, spec = run.sweep, run.sweep.spec
    run.store.bind(sweep)
    population = spec.population or NSGA2_POPULATION
    generations = spec.generations or NSGA2_GENERATIONS
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = sweep.objectives
    worst = [float("-inf") if sense == "max" else float("inf") for _, sense in objectives]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=spec.seed,
                                                **_constraints_option())
    study = optuna.create_study(directions=["maximize" if s == "max" else "minimize" for _, s in objectives],
                                sampler=sampler)
    distributions = {a.label: IntDistribution(0, len(a) - 1) for a in sweep.axes}
    stored_rows = {r["point_id"]: r for r in run.store.rows()}
    run.start_bar(total=population * generations)
    asked, reused, remaining = 0, 0, 0
    for _generation in range(generations):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trials = [study.ask(distributions) for _ in range(population)]
        points = [sweep.point_from_indices([t.params[a.label] for a in sweep.axes]) for t in trials]
        ids = [sweep.point_id(p) for p in points]
        asked += len(trials)
        todo, seen = [], set()
        for pid, p in zip(ids, points):
            if pid not in stored_rows and pid not in seen:
                seen.add(pid)
                todo.append((pid, p))
        budget = None if limit is None else limit - run.evaluated
        if budget is not None and len(todo) > budget:
            remaining = len(todo) - budget      # at least; later generations are unknown yet
            todo = todo[:budget]
        reused += sum(1 for pid in ids if pid in stored_rows)
        if run.bar is not None:
            run.bar.update(len(trials) - len(todo))
        buildable = []
        for pid, p in todo:
            try:
                buildable.append((pid, p, sweep.build(p)))
            except ConfigError as exc:
                stored_rows[pid] = run.record(pid, p, {"status": "infeasible", "metrics": {},
                                                       "error": str(exc), "elapsed_s": 0.0,
                                                       "hwsim_version": None})
        stored_rows.update(run.evaluate(buildable))
        if remaining:
            break
        for trial, pid in zip(trials, ids):
            values, violation = _tell_values(stored_rows[pid], objectives, len(sweep.constraints), worst)
            _set_violation(trial, violation)
            study.tell(trial, values)
    return asked, reused, remaining


def _constraints_option() -> dict:
    """optuna >= 5 reads constraints set on the trial; older versions need constraints_func."""
    import optuna
    if hasattr(optuna.trial.Trial, "set_constraint"):
        return {}
    return {"constraints_func": lambda frozen: [frozen.user_attrs.get("hwsim_violation", 0.0)]}


def _set_violation(trial, violation: float) -> None:
    if hasattr(trial, "set_constraint"):
        trial.set_constraint("hwsim_violation", violation)
    else:
        trial.set_user_attr("hwsim_violation", violation)


def _tell_values(row: dict, objectives, n_constraints: int, worst: list[float]):
    """Objective values and constraint violation (broken constraints) of a stored row."""
    values = [row.get(metric) for metric, _ in objectives]
    usable = row.get("error") is None and row.get("status") != "failed" and all(
        isinstance(v, (int, float)) and not math.isnan(v) for v in values)
    if not usable:
        return worst, float(n_constraints + 1)
    broken = row.get("violations")
    if isinstance(broken, str):
        broken = json.loads(broken)
    return [float(v) for v in values], float(len(broken or []))
