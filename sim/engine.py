"""Run a ``Schedule`` with SimPy and record when each task ran.

A task waits for its dependencies, then for its exclusive resources (one task at a time, lowest
task id first among those waiting), then spends `latency_ns`, then joins the *fluid pool*: every
running task progresses on all its shared and exclusive resources at once, and when several
tasks use one resource its rate is divided by progressive filling — max-min fairness on each
task's speed relative to running alone (Bertsekas & Gallager, "Data Networks", section 6.5.2).
Rates change only when a task starts or ends, so the engine costs O(tasks) events, never a
cycle loop.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import simpy

from hwsim.sim.schedule import Schedule
from hwsim.sim.trace import Trace, power_capped

_EPS = 1e-9


@dataclass
class _Flow:
    usage: dict[str, float]      # work per ns on each resource when running at full speed
    standalone_ns: float
    remaining: float = 1.0       # fraction of the work still to do
    speed: float = 0.0           # fraction of full speed granted now
    done: simpy.Event | None = None


class _FluidPool:
    def __init__(self, env: simpy.Environment, schedule: Schedule):
        self.env = env
        self.capacity = {n: r.capacity_per_ns for n, r in schedule.resources.items()}
        self.flows: dict[int, _Flow] = {}
        # resource -> {flow id: its usage}, flows in start order, and the resources more than
        # one flow uses now (only those can be oversubscribed: a flow alone uses at most a
        # resource's capacity, its usage being work / standalone time)
        self.users: dict[str, dict[int, float]] = {r: {} for r in self.capacity}
        self.shared: set[str] = set()
        self.last = 0.0
        self.version = 0
        self.pending = False         # a reallocation is due at the current instant

    def run(self, tid: int, demands: dict[str, float]) -> simpy.Event:
        ev = self.env.event()
        work = {r: w for r, w in demands.items() if w > 0}
        if not work:
            ev.succeed()
            return ev
        standalone = max(w / self.capacity[r] for r, w in work.items())
        self._advance()
        usage = {r: w / standalone for r, w in work.items()}
        self.flows[tid] = _Flow(usage=usage, standalone_ns=standalone, done=ev)
        for r, u in usage.items():
            users = self.users[r]
            users[tid] = u
            if len(users) > 1:
                self.shared.add(r)
        self._reschedule_soon()
        return ev

    def _reschedule_soon(self) -> None:
        """Reallocate once per instant, after every flow starting or ending now has done so
        (rates over a zero-length interval move no work, so this changes no result)."""
        self.version += 1
        if not self.pending:
            self.pending = True
            self.env.timeout(0).callbacks.append(self._reschedule_now)

    def _reschedule_now(self, _ev) -> None:
        self.pending = False
        self._advance()
        self._reschedule()

    def _advance(self) -> None:
        dt = self.env.now - self.last
        if dt > 0:
            for f in self.flows.values():
                f.remaining -= f.speed * dt / f.standalone_ns
        self.last = self.env.now

    def _allocate(self) -> None:
        if all(sum(self.users[r].values()) <= self.capacity[r] * (1 + _EPS) for r in self.shared):
            for f in self.flows.values():       # nothing oversubscribed: all run at full speed
                f.speed = 1.0
            return
        residual = dict(self.capacity)
        active = set(self.flows)
        for f in self.flows.values():
            f.speed = 0.0
        while active:
            load: dict[str, float] = {}
            for i in active:
                for r, u in self.flows[i].usage.items():
                    load[r] = load.get(r, 0.0) + u
            step = min(1.0 - max(self.flows[i].speed for i in active),
                       min(residual[r] / u for r, u in load.items()))
            step = max(step, 0.0)
            for i in active:
                self.flows[i].speed += step
            for r, u in load.items():
                residual[r] -= step * u
            saturated = {r for r, u in load.items() if residual[r] <= _EPS * self.capacity[r]}
            active = {i for i in active if self.flows[i].speed < 1.0 - _EPS
                      and not saturated.intersection(self.flows[i].usage)}

    def _reschedule(self) -> None:
        self.version += 1
        if not self.flows:
            return
        self._allocate()
        wait = min(f.remaining * f.standalone_ns / f.speed for f in self.flows.values() if f.speed > 0)
        version = self.version
        self.env.timeout(max(wait, 0.0)).callbacks.append(lambda _ev: self._wake(version))

    def _wake(self, version: int) -> None:
        if version != self.version:
            return
        self._advance()
        finished = [i for i, f in self.flows.items() if f.remaining * f.standalone_ns <= 1e-6]
        if not finished:   # floating-point shortfall: finish the closest one
            finished = [min(self.flows, key=lambda i: self.flows[i].remaining * self.flows[i].standalone_ns)]
        for i in finished:
            flow = self.flows.pop(i)
            for r in flow.usage:
                users = self.users[r]
                del users[i]
                if len(users) < 2:
                    self.shared.discard(r)
            flow.done.succeed()
        self._reschedule_soon()


def simulate(schedule: Schedule) -> Trace:
    """Execute the schedule; return the timeline.

    Tasks are driven by callbacks on SimPy events rather than one process each (a process costs
    several generator resumptions per task): a task becomes ready when its last dependency ends
    and its release time has come,
    takes its exclusive resources in name order — each granted to the lowest waiting task id when
    released — then spends its latency and its fluid-pool work. `sim.reference_engine` does the
    same with processes and must agree (tests/test_engine.py)."""
    env = simpy.Environment()
    tasks = schedule.tasks
    n = len(tasks)
    for task in tasks:
        for d in task.deps:
            if d >= task.id:
                raise ValueError(f"task {task.name} depends on a later task {d}")
    exclusive = {name for name, r in schedule.resources.items() if r.exclusive}
    needs = [sorted(r for r in t.demands if r in exclusive) for t in tasks]
    holder: dict[str, int | None] = {name: None for name in exclusive}
    waiting: dict[str, list[int]] = {name: [] for name in exclusive}
    granted = [0] * n                              # how many of needs[tid] are held
    missing_deps = [len(set(t.deps)) for t in tasks]
    successors: list[list[int]] = [[] for _ in tasks]
    for t in tasks:
        for d in set(t.deps):
            successors[d].append(t.id)
    pool = _FluidPool(env, schedule)
    start = np.zeros(n)
    end = np.zeros(n)
    finished = [False] * n

    def acquire(tid: int) -> None:
        wanted = needs[tid]
        while granted[tid] < len(wanted):
            name = wanted[granted[tid]]
            if holder[name] is not None:
                heapq.heappush(waiting[name], tid)
                return
            holder[name] = tid
            granted[tid] += 1
        start[tid] = env.now
        latency = tasks[tid].latency_ns
        if latency > 0:
            env.timeout(latency).callbacks.append(lambda _ev: work(tid))
        else:
            work(tid)

    def work(tid: int) -> None:
        pool.run(tid, tasks[tid].demands).callbacks.append(lambda _ev: finish(tid))

    def ready(tid: int) -> None:
        """All dependencies done: wait for the release time (if any), then for the resources."""
        if tasks[tid].release_ns and tasks[tid].release_ns > env.now:
            env.timeout(tasks[tid].release_ns - env.now).callbacks.append(lambda _ev: acquire(tid))
        else:
            acquire(tid)

    def finish(tid: int) -> None:
        end[tid] = env.now
        finished[tid] = True
        handed_over = []
        for name in needs[tid]:
            if waiting[name]:
                nxt = heapq.heappop(waiting[name])
                holder[name] = nxt
                granted[nxt] += 1
                handed_over.append(nxt)
            else:
                holder[name] = None
        for nxt in handed_over:
            acquire(nxt)
        for s in successors[tid]:
            missing_deps[s] -= 1
            if missing_deps[s] == 0:
                ready(s)

    for tid in range(n):
        if missing_deps[tid] == 0:
            ready(tid)
    env.run()
    unfinished = [t.name for t, ok in zip(tasks, finished) if not ok]
    if unfinished:
        raise RuntimeError(f"schedule deadlocked; unfinished tasks: {unfinished[:5]}")
    return power_capped(Trace(schedule=schedule, start_ns=start, end_ns=end))
