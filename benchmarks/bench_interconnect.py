"""Lowering and simulating one all-reduce on 8, 64 and 512 devices behind a switch, on a 2-D
mesh and on a two-tier Clos: flows and tasks per collective (ring must grow no worse than O(p)),
and wall time to lower, to build the schedule and to simulate. Prints figures; asserts nothing.

    python benchmarks/bench_interconnect.py
"""
import time

from timing import median_time, table

from hwsim.hw.interconnect import (
    Algorithm, ClosSpec, Collective, MeshSpec, SwitchSpec, add_collective, lower_collective)
from hwsim.sim.engine import simulate
from hwsim.sim.schedule import Schedule

NBYTES = 256e6     # a 256 MB gradient bucket
LINK = dict(link_latency_ns=1000.0, energy_pj_per_bit=5.0)   # assumed, the same everywhere


def topologies(p):
    mesh_dims = {8: (2, 4), 64: (8, 8), 512: (16, 32)}[p]
    per_leaf = {8: 4, 64: 8, 512: 32}[p]
    return {
        "switch": SwitchSpec(kind="switch", devices=p, port_bw_gbps=450, **LINK),
        "mesh": MeshSpec(kind="mesh", dims=mesh_dims, link_bw_gbps=100, hop_latency_ns=50,
                         energy_pj_per_bit=1.0),
        "clos": ClosSpec(kind="clos", devices_per_leaf=per_leaf, leaves=p // per_leaf, spines=4,
                         uplinks_per_leaf=per_leaf, link_bw_gbps=50, **LINK),
    }


def one(spec, algorithm, local_size=None):
    net = spec.build()
    p = net.num_devices
    t0 = time.perf_counter()
    lowered = lower_collective(net, Collective.ALL_REDUCE, range(p), NBYTES, algorithm,
                               local_size=local_size)
    t1 = time.perf_counter()
    schedule = Schedule(resources={})
    add_collective(schedule, lowered, "allreduce")
    t2 = time.perf_counter()
    trace = simulate(schedule)
    t3 = time.perf_counter()
    return lowered.num_flows, len(schedule.tasks), t1 - t0, t2 - t1, t3 - t2, trace.makespan_ns


def main():
    rows = []
    for p in (8, 64, 512):
        for name, spec in topologies(p).items():
            cases = [(Algorithm.RING, None), (Algorithm.DOUBLE_BINARY_TREE, None)]
            if name == "clos":
                cases.append((Algorithm.HIERARCHICAL, spec.devices_per_leaf))
            for algorithm, local in cases:
                total, (flows, tasks, lower_s, build_s, sim_s, makespan) = median_time(
                    lambda: one(spec, algorithm, local), repeat=3)
                rows.append([name, p, algorithm.value, flows, tasks, f"{tasks / p:.2f}",
                             f"{lower_s * 1e3:.1f}", f"{build_s * 1e3:.1f}", f"{sim_s * 1e3:.1f}",
                             f"{total * 1e3:.1f}", f"{makespan / 1e3:.1f}"])
    table("all-reduce of 256 MB: lowering + simulation (median of 3; wall times are noisy)",
          ["topology", "p", "algorithm", "flows", "tasks", "tasks/p", "lower ms", "build ms",
           "simulate ms", "total ms", "simulated us"], rows)


if __name__ == "__main__":
    main()
