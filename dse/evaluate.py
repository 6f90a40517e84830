"""Evaluating design points: one point in any process, and three ways to run many.

``evaluate_point(config)`` runs ``hwsim.pipeline.evaluate`` and returns a plain, picklable outcome
(never raises): ``status`` 'ok' with flat metrics; 'infeasible' when evaluation raised a
``ConfigError`` (the point cannot be simulated as described, e.g. the model does not fit memory);
'failed' with the error text for anything else (a bug: the sweep goes on, the point is recorded).

Evaluators run a list of ``(point_id, RunConfig)`` and yield ``(point_id, outcome)`` as points
finish, in any order; only the caller (the parent process) writes results:
- ``SerialEvaluator``: in this process (``--jobs 1``).
- ``LocalPoolEvaluator``: worker processes (``concurrent.futures.ProcessPoolExecutor``). Points are
  sent in chunks to keep per-point overhead small, but each worker streams every finished point
  back through a queue at once, so a chunk in progress never holds finished points hostage: when
  the sweep is killed, only points still being simulated are lost.
- ``DaskEvaluator``: a dask.distributed scheduler (``--cluster ADDRESS``), ``client.submit`` of
  chunks and ``as_completed``; a chunk's points arrive when the chunk finishes. The workers must
  be able to import the same hwsim.
Results do not depend on the evaluator: the pipeline is deterministic for a given config.
"""
from __future__ import annotations

import math
import os
import queue as queue_module
import threading
import time
from collections.abc import Iterator
from typing import Any

from hwsim.errors import ConfigError

Item = tuple[str, Any]     # (point_id, RunConfig)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys: {'utilization': {'npu': 0.5}} -> {'utilization.npu': 0.5}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def metrics_of(doc: dict) -> dict[str, Any]:
    """Metric columns of a ``RunResult.to_json()``: the main system's metrics, flattened, and
    (when the sweep evaluates baselines) ``speedup.<baseline>``. Read generically, so metrics
    added to ``hwsim.metrics.Metrics`` become columns without changes here."""
    metrics = flatten(doc.get("metrics", {}))
    if doc.get("speedup"):
        metrics.update(flatten({"speedup": doc["speedup"]}))
    return metrics


def evaluate_point(config, extrapolate_layers: bool = False) -> dict[str, Any]:
    """Evaluate one RunConfig; return an outcome dict (status, metrics, error, extrapolated,
    extrapolation_period, elapsed_s, hwsim_version). Never raises for a bad point.
    `extrapolate_layers`: see ``hwsim.pipeline.run_system``; ``extrapolation_period`` is the
    period (in decoder layers) the main system's metrics were extended over, None when every
    layer was simulated."""
    from hwsim import __version__
    from hwsim.pipeline import evaluate
    t0 = time.perf_counter()
    try:
        if extrapolate_layers:
            result = evaluate(config, extrapolate_layers=True)
        else:
            result = evaluate(config)
        doc = result.to_json()
        outcome = {"status": "ok", "metrics": metrics_of(doc), "error": None,
                   "extrapolated": result.main.extrapolated,
                   "extrapolation_period": result.main.extrapolation_period}
    except ConfigError as exc:
        outcome = {"status": "infeasible", "metrics": {}, "error": str(exc)}
    except Exception as exc:   # recorded, not raised: one bad point must not stop a sweep
        outcome = {"status": "failed", "metrics": {}, "error": f"{type(exc).__name__}: {exc}"}
    outcome["elapsed_s"] = time.perf_counter() - t0
    outcome["hwsim_version"] = __version__
    return outcome


def evaluate_chunk(items: list[Item], extrapolate_layers: bool = False) -> list[tuple[str, dict]]:
    """Evaluate a chunk of points in one task (what dask workers run)."""
    return [(pid, evaluate_point(cfg, extrapolate_layers)) for pid, cfg in items]


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def chunk_size(n_items: int, workers: int, cap: int = 16) -> int:
    """About four chunks per worker (for balance at the end), at most `cap` points each."""
    return max(1, min(cap, math.ceil(n_items / max(1, workers * 4))))


class SerialEvaluator:
    """Evaluate in this process, one point after another."""
    description = "serial"

    def __init__(self, extrapolate_layers: bool = False):
        self.extrapolate_layers = extrapolate_layers

    def run(self, items: list[Item]) -> Iterator[tuple[str, dict]]:
        for pid, cfg in items:
            yield pid, evaluate_point(cfg, self.extrapolate_layers)

    def close(self, abort: bool = False) -> None:
        pass


# --- local worker processes -------------------------------------------------------------

_RESULTS_QUEUE = None


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent is gone (it was killed): an orphaned worker must not linger."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(0.5)


def _init_worker(results_queue, parent_pid: int) -> None:
    global _RESULTS_QUEUE
    _RESULTS_QUEUE = results_queue
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _stream_chunk(items: list[Item], extrapolate_layers: bool) -> int:
    """Evaluate a chunk, sending each outcome to the parent as soon as it is known."""
    for pid, cfg in items:
        _RESULTS_QUEUE.put((pid, evaluate_point(cfg, extrapolate_layers)))
    return len(items)


class LocalPoolEvaluator:
    """Worker processes on this machine (fork where available: no re-import per worker)."""

    def __init__(self, jobs: int, extrapolate_layers: bool = False):
        self.jobs = jobs
        self.extrapolate_layers = extrapolate_layers
        self.description = f"{jobs} local worker processes"
        self._executor = None
        self._queue = None

    def _start(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        self._queue = ctx.Queue()
        self._executor = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx,
                                             initializer=_init_worker,
                                             initargs=(self._queue, os.getpid()))

    def run(self, items: list[Item]) -> Iterator[tuple[str, dict]]:
        if not items:
            return
        if self._executor is None:
            self._start()
        size = chunk_size(len(items), self.jobs)
        pending = {self._executor.submit(_stream_chunk, chunk, self.extrapolate_layers)
                   for chunk in _chunks(items, size)}
        expected, received = len(items), 0
        idle_since = None
        while received < expected:
            try:
                pid, outcome = self._queue.get(timeout=0.2)
            except queue_module.Empty:
                for fut in [f for f in pending if f.done()]:
                    pending.discard(fut)
                    if fut.exception() is not None:
                        exc = fut.exception()
                        raise RuntimeError(f"a worker process failed ({type(exc).__name__}: {exc}); "
                                           "finished points are stored: re-run to resume") from exc
                if not pending:   # every chunk returned: the last outcomes are still in the pipe
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 60:
                        raise RuntimeError(f"{expected - received} outcomes never arrived from the workers")
                continue
            received += 1
            yield pid, outcome

    def close(self, abort: bool = False) -> None:
        if self._executor is None:
            return
        if abort:   # interrupted: do not wait for points in progress
            processes = list((getattr(self._executor, "_processes", None) or {}).values())
            self._executor.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                if p.is_alive():
                    p.terminate()
        else:
            self._executor.shutdown(wait=True)
        self._executor = None


# --- dask.distributed ---------------------------------------------------------------------

class DaskEvaluator:
    """A dask.distributed cluster: ``Client(address)``, ``client.submit`` per chunk."""

    def __init__(self, address: str, extrapolate_layers: bool = False):
        self.extrapolate_layers = extrapolate_layers
        try:
            from distributed import Client
        except ImportError:          # the [dse] extra
            from hwsim.extras import install_hint
            raise ConfigError(f"needs dask.distributed: {install_hint('dse')}", key="--cluster") from None
        try:
            self.client = Client(address, timeout="15s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot connect to the dask scheduler at {address!r}: {exc}",
                              file="--cluster") from None
        nthreads = self.client.nthreads()     # worker address -> threads
        self.threads = max(1, sum(nthreads.values()))
        self.description = f"dask cluster {address} ({len(nthreads)} workers, {self.threads} threads)"

    def run(self, items: list[Item]) -> Iterator[tuple[str, dict]]:
        from distributed import as_completed
        if not items:
            return
        chunks = _chunks(items, chunk_size(len(items), self.threads, cap=8))
        futures = {self.client.submit(evaluate_chunk, chunk, self.extrapolate_layers, pure=False): chunk
                   for chunk in chunks}
        for fut in as_completed(list(futures)):
            try:
                results = fut.result()
            except Exception as exc:   # the task itself died (e.g. a killed worker)
                results = [(pid, {"status": "failed", "metrics": {}, "elapsed_s": None,
                                  "hwsim_version": None,
                                  "error": f"dask task failed: {type(exc).__name__}: {exc}"})
                           for pid, _ in futures[fut]]
            yield from results

    def close(self, abort: bool = False) -> None:
        self.client.close()


def make_evaluator(jobs: int | None = None, cluster: str | None = None,
                   extrapolate_layers: bool = False):
    """``cluster`` -> dask; ``jobs == 1`` -> serial; else local processes (default: all CPUs)."""
    if cluster:
        return DaskEvaluator(cluster, extrapolate_layers)
    if jobs is not None and jobs < 1:
        raise ConfigError(f"must be >= 1, got {jobs}", key="--jobs")
    jobs = jobs or os.cpu_count() or 1
    return SerialEvaluator(extrapolate_layers) if jobs == 1 else LocalPoolEvaluator(jobs, extrapolate_layers)
