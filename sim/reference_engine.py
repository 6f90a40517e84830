"""The engine's slow reference: every task a SimPy process that yields on its dependencies,
its exclusive resources (SimPy PriorityResource, lowest task id first) and its share of the
fluid pool. `hwsim.sim.engine.simulate` must produce the same timeline with plain callbacks."""
from __future__ import annotations

import numpy as np
import simpy

from hwsim.sim.engine import _FluidPool
from hwsim.sim.schedule import Schedule
from hwsim.sim.trace import Trace, power_capped


def simulate_with_processes(schedule: Schedule) -> Trace:
    """Execute the schedule with one SimPy process per task; return the timeline."""
    env = simpy.Environment()
    tasks = schedule.tasks
    done = [env.event() for _ in tasks]
    units = {n: simpy.PriorityResource(env, capacity=1)
             for n, r in schedule.resources.items() if r.exclusive}
    pool = _FluidPool(env, schedule)
    start = np.zeros(len(tasks))
    end = np.zeros(len(tasks))

    def process(task):
        if task.deps:
            yield simpy.AllOf(env, [done[d] for d in task.deps])
        if task.release_ns > env.now:
            yield env.timeout(task.release_ns - env.now)
        held = []
        for name in sorted(r for r in task.demands if r in units):
            req = units[name].request(priority=task.id)
            yield req
            held.append((units[name], req))
        start[task.id] = env.now
        if task.latency_ns > 0:
            yield env.timeout(task.latency_ns)
        yield pool.run(task.id, task.demands)
        end[task.id] = env.now
        for res, req in held:
            res.release(req)
        done[task.id].succeed()

    for task in tasks:
        for d in task.deps:
            if d >= task.id:
                raise ValueError(f"task {task.name} depends on a later task {d}")
        env.process(process(task))
    env.run()
    unfinished = [t.name for t, ev in zip(tasks, done) if not ev.triggered]
    if unfinished:
        raise RuntimeError(f"schedule deadlocked; unfinished tasks: {unfinished[:5]}")
    return power_capped(Trace(schedule=schedule, start_ns=start, end_ns=end))
