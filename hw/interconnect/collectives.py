"""Collectives lowered to flows on a topology: data, not tasks.

A lowered collective is a list of phases run one after the other; a phase is a set of flows
(source device, destination device, bytes, route) that run at the same time, and a step count.

**Collapsing identical steps.** A ring all-reduce is 2(p-1) steps in which every device sends a
B/p chunk to its ring successor. Emitting 2(p-1)·p chunk flows would make the task count grow as
p²; instead the identical steps are one phase of p flows, each carrying the bytes of all its
steps (2(p-1)/p·B), and the phase's `steps` (2(p-1)) multiplies the per-step latency of each
flow's route (`cost.flow_cost`). This is exact when the steps are identical (same flows, routes
and chunk sizes) and the collective has the links to itself: run lock-step, each step is the
same fluid problem (latency, then chunk bytes shared max-min fair on the links), and the
collapsed phase is that problem with every latency and every byte count multiplied by the step
count, i.e. the same schedule stretched in time by that factor — the bandwidth term is exact,
the latency is counted per step (tests: equal to the step-by-step ring to 1e-9 on a switch, a
torus and a Clos whose leaf-crossing hops are longer and share an uplink). Where other traffic
shares the links for part of the collective, the collapsed phase spreads that interference over
all its steps instead of the steps it overlaps: the two then differ.

Sizes follow NCCL's and MPI's conventions: `nbytes` is the buffer of one device — all-reduce's
input (= output); all-gather's output (each device contributes nbytes/p); reduce-scatter's input
(each device keeps nbytes/p); all-to-all's send buffer (nbytes/p to each device, its own block
stays local); p2p's message. The closed forms (the tests of this module):

| collective / algorithm     | bytes sent per device | steps          | source |
| all-reduce ring            | 2(p-1)/p·B            | 2(p-1)         | Patarasuk & Yuan, JPDC 2009 |
| all-reduce double bin. tree| total 2(p-1)·B        | 2·⌊log2 p⌋     | Sanders, Speck & Träff, Parallel Computing 2009 |
| all-reduce star            | total 2(p-1)·B        | 2              | reduce to a root, then broadcast |
| all-reduce hierarchical    | see `_hierarchical`   | 2(g-1)+2(G-1)  | Thakur, Rabenseifner & Gropp, IJHPCA 2005 (RS + AR + AG) |
| all-gather / reduce-scatter ring | (p-1)/p·B       | p-1            | Thakur et al. 2005 |
| all-to-all direct          | (p-1)/p·B             | 1              | every pair at once |
| all-to-all pairwise        | (p-1)/p·B             | p-1            | Thakur et al. 2005 (pairwise exchange) |
| p2p                        | B                     | 1              | |

The double binary tree is pipelined (as in NCCL): half the buffer goes up and down each tree;
in steady state every tree edge carries its half-buffer in both directions at once, and filling
and draining the pipeline costs one step per level up and down, 2·height steps in all. The
bandwidth term is that of an infinitely fine pipeline (a bound on the chunked algorithm).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from hwsim.hw.interconnect.routing import Routing, choose_paths
from hwsim.hw.interconnect.topology import Network, Route


class Collective(StrEnum):
    ALL_REDUCE = "all_reduce"
    ALL_GATHER = "all_gather"
    REDUCE_SCATTER = "reduce_scatter"
    ALL_TO_ALL = "all_to_all"
    P2P = "p2p"


class Algorithm(StrEnum):
    RING = "ring"
    DOUBLE_BINARY_TREE = "double_binary_tree"
    STAR = "star"
    HIERARCHICAL = "hierarchical"
    DIRECT = "direct"
    PAIRWISE = "pairwise"


# The algorithms each collective can be lowered with; the first is the default.
ALGORITHMS: dict[Collective, tuple[Algorithm, ...]] = {
    Collective.ALL_REDUCE: (Algorithm.RING, Algorithm.DOUBLE_BINARY_TREE, Algorithm.STAR,
                            Algorithm.HIERARCHICAL),
    Collective.ALL_GATHER: (Algorithm.RING,),
    Collective.REDUCE_SCATTER: (Algorithm.RING,),
    Collective.ALL_TO_ALL: (Algorithm.DIRECT, Algorithm.PAIRWISE),
    Collective.P2P: (Algorithm.DIRECT,),
}


@dataclass(frozen=True)
class Flow:
    """Bytes from one device to another along one route (a split flow is several Flows)."""
    src: int
    dst: int
    nbytes: float
    route: Route


@dataclass(frozen=True)
class Phase:
    """Flows that run at once; `steps` identical algorithm steps collapsed into them."""
    name: str
    steps: int
    flows: tuple[Flow, ...]


@dataclass(frozen=True)
class LoweredCollective:
    collective: Collective
    algorithm: Algorithm
    group: tuple[int, ...]
    nbytes: float
    phases: tuple[Phase, ...]

    @property
    def steps(self) -> int:
        return sum(ph.steps for ph in self.phases)

    @property
    def num_flows(self) -> int:
        return sum(len(ph.flows) for ph in self.phases)

    @property
    def total_bytes(self) -> float:
        """Bytes injected by all devices (each byte once, however many links it crosses)."""
        return math.fsum(f.nbytes for ph in self.phases for f in ph.flows)

    def bytes_sent(self) -> dict[int, float]:
        out = {d: 0.0 for d in self.group}
        for ph in self.phases:
            for f in ph.flows:
                out[f.src] += f.nbytes
        return out

    def bytes_received(self) -> dict[int, float]:
        out = {d: 0.0 for d in self.group}
        for ph in self.phases:
            for f in ph.flows:
                out[f.dst] += f.nbytes
        return out

    def link_bytes(self) -> dict[str, float]:
        """Bytes crossing each directed link, over the whole collective."""
        out: dict[str, float] = {}
        for ph in self.phases:
            for f in ph.flows:
                for link in f.route:
                    out[link.name] = out.get(link.name, 0.0) + f.nbytes
        return out


Transfer = tuple[int, int, float]       # (src device, dst device, bytes) before routing


def _phase(network: Network, routing: Routing, name: str, steps: int,
           transfers: Sequence[Transfer]) -> Phase:
    if routing.assignment == "balanced":
        return Phase(name, steps, _balanced(network, transfers))
    flows = []
    for src, dst, nbytes in transfers:
        paths = choose_paths(network, src, dst, routing)
        flows += [Flow(src, dst, nbytes / len(paths), route) for route in paths]
    return Phase(name, steps, tuple(flows))


def _balanced(network: Network, transfers: Sequence[Transfer]) -> tuple[Flow, ...]:
    """Single paths placed by the application (hwsim.hw.interconnect.routing): transfers whose
    equal-cost paths cross the same fabric links (the middle of every path: a Clos's leaf pair)
    take its paths round-robin, whole; the last `n mod paths` of them are split evenly over
    every path. Flows come out in the order of `transfers`."""
    placed: list[tuple[Flow, ...]] = []
    turn: dict[tuple, int] = {}                       # fabric -> transfers placed so far
    count: dict[tuple, int] = {}
    paths_of = [network.equal_cost_paths(src, dst) for src, dst, _ in transfers]
    fabric_of = [tuple(route[1:-1] for route in paths) for paths in paths_of]
    for fabric in fabric_of:
        count[fabric] = count.get(fabric, 0) + 1
    for (src, dst, nbytes), paths, fabric in zip(transfers, paths_of, fabric_of):
        j = turn.get(fabric, 0)
        turn[fabric] = j + 1
        n, k = count[fabric], len(paths)
        if j < n - n % k:
            placed.append((Flow(src, dst, nbytes, paths[j % k]),))
        else:
            placed.append(tuple(Flow(src, dst, nbytes / k, route) for route in paths))
    return tuple(f for flows in placed for f in flows)


def _ring(group: Sequence[int], nbytes_per_flow: float) -> list[Transfer]:
    p = len(group)
    return [(group[i], group[(i + 1) % p], nbytes_per_flow) for i in range(p)]


def binary_tree_parents(p: int) -> list[int | None]:
    """The in-order binary tree over positions 0..p-1: position i is label i+1, the root of a
    label range is the label with the most trailing zero bits, so odd labels are the leaves
    (Sanders, Speck & Träff 2009, section 3; NCCL builds its trees the same way)."""
    parent: list[int | None] = [None] * p
    stack = [(1, p, 0)]
    while stack:
        lo, hi, par = stack.pop()
        if lo > hi:
            continue
        t = 1 << hi.bit_length()
        while (hi // t) * t < lo:
            t >>= 1
        m = (hi // t) * t
        parent[m - 1] = par - 1 if par else None
        stack += [(lo, m - 1, m), (m + 1, hi, m)]
    return parent


def tree_height(parents: Sequence[int | None]) -> int:
    depth: dict[int, int] = {}

    def d(i):
        if i not in depth:
            depth[i] = 0 if parents[i] is None else d(parents[i]) + 1
        return depth[i]
    return max((d(i) for i in range(len(parents))), default=0)


def _double_binary_tree(network, routing, group, nbytes) -> list[Phase]:
    p = len(group)
    parents = binary_tree_parents(p)
    transfers = []
    for shift in (0, 1):      # tree 2 = tree 1 with every rank moved one position on
        member = [group[(i - shift) % p] for i in range(p)]
        for i, q in enumerate(parents):
            if q is not None:
                transfers += [(member[i], member[q], nbytes / 2),     # reduce, up
                              (member[q], member[i], nbytes / 2)]     # broadcast, down
    return [_phase(network, routing, "double binary tree", 2 * tree_height(parents), transfers)]


def _star(network, routing, group, nbytes) -> list[Phase]:
    root, others = group[0], group[1:]
    return [_phase(network, routing, "reduce to root", 1, [(d, root, nbytes) for d in others]),
            _phase(network, routing, "broadcast from root", 1, [(root, d, nbytes) for d in others])]


def _hierarchical(network, routing, group, nbytes, local_size: int) -> list[Phase]:
    """Consecutive runs of `local_size` members form G = p / g local groups. Each local group
    reduce-scatters (ring, g-1 steps, (g-1)/g·B per device); then the g "rails" (the members
    with the same local index in every group) all-reduce their B/g shard (ring, 2(G-1) steps,
    2(G-1)/G·B/g per device); then each local group all-gathers (ring, g-1 steps). Total bytes:
    2·G·(g-1)·B + 2·(G-1)·B."""
    p, g = len(group), local_size
    if g < 1 or p % g:
        raise ValueError(f"hierarchical all-reduce needs local_size dividing the group size "
                         f"{p}, got {local_size}")
    G = p // g
    local = [group[i * g:(i + 1) * g] for i in range(G)]
    rails = [group[j::g] for j in range(g)]
    phases = []
    if g > 1:
        phases.append(_phase(network, routing, "local reduce-scatter", g - 1,
                             [t for grp in local for t in _ring(grp, (g - 1) / g * nbytes)]))
    if G > 1:
        shard = nbytes / g
        phases.append(_phase(network, routing, "cross-group all-reduce", 2 * (G - 1),
                             [t for rail in rails for t in _ring(rail, 2 * (G - 1) / G * shard)]))
    if g > 1:
        phases.append(_phase(network, routing, "local all-gather", g - 1,
                             [t for grp in local for t in _ring(grp, (g - 1) / g * nbytes)]))
    return phases


def _all_to_all(network, routing, group, nbytes, pairwise: bool) -> list[Phase]:
    p, block = len(group), nbytes / len(group)
    if not pairwise:
        return [_phase(network, routing, "all-to-all", 1,
                       [(a, b, block) for a in group for b in group if a != b])]
    # round k: position i sends its block to position i+k (a permutation every round)
    return [_phase(network, routing, f"round {k}", 1,
                   [(group[i], group[(i + k) % p], block) for i in range(p)])
            for k in range(1, p)]


def lower_transfers(network: Network, transfers: Sequence[Transfer],
                    routing: Routing = Routing()) -> LoweredCollective:
    """Point-to-point transfers (src device, dst device, bytes) that run at once, as one phase
    of one step: the boundary of a pipeline stage (every tensor-parallel rank sends to its
    peer), a shift, an all-to-all with an uneven traffic matrix."""
    for src, dst, nbytes in transfers:
        if src == dst or not (math.isfinite(nbytes) and nbytes >= 0):
            raise ValueError(f"a transfer needs two devices and non-negative bytes, "
                             f"got {(src, dst, nbytes)}")
    group = tuple(sorted({d for src, dst, _ in transfers for d in (src, dst)}))
    phases = (_phase(network, routing, "p2p", 1, transfers),) if transfers else ()
    return LoweredCollective(Collective.P2P, Algorithm.DIRECT, group,
                             math.fsum(t[2] for t in transfers), phases)


def lower_collective(network: Network, collective: Collective, group: Sequence[int],
                     nbytes: float, algorithm: Algorithm | None = None,
                     routing: Routing = Routing(), local_size: int | None = None
                     ) -> LoweredCollective:
    """Lower `collective` of an `nbytes` buffer over the devices `group` (indices into the
    network; ring order = group order; star and p2p: group[0] is the root / sender) with
    `algorithm` (default: the first of ALGORITHMS[collective]). `local_size` is the local group
    size of the hierarchical all-reduce and given for it only."""
    collective = Collective(collective)
    algorithm = Algorithm(algorithm) if algorithm is not None else ALGORITHMS[collective][0]
    if algorithm not in ALGORITHMS[collective]:
        raise ValueError(f"{collective} has no {algorithm} algorithm; choose one of "
                         f"{', '.join(ALGORITHMS[collective])}")
    if (local_size is not None) != (algorithm == Algorithm.HIERARCHICAL):
        raise ValueError("local_size is given for the hierarchical all-reduce, and only for it")
    group = tuple(int(d) for d in group)
    if not group or len(set(group)) != len(group):
        raise ValueError(f"a collective's group must be distinct devices, got {list(group)}")
    for d in group:
        if not 0 <= d < network.num_devices:
            raise ValueError(f"device {d} is not in the network of {network.num_devices} devices")
    if not (math.isfinite(nbytes) and nbytes >= 0):
        raise ValueError(f"nbytes must be finite and non-negative, got {nbytes}")
    if collective == Collective.P2P and len(group) != 2:
        raise ValueError(f"p2p needs a group of (sender, receiver), got {list(group)}")
    p = len(group)
    phases: list[Phase] = []
    if p > 1:
        if algorithm == Algorithm.RING:
            steps = {Collective.ALL_REDUCE: 2 * (p - 1)}.get(collective, p - 1)
            phases = [_phase(network, routing, f"ring {collective}", steps,
                             _ring(group, steps / p * nbytes))]
        elif algorithm == Algorithm.DOUBLE_BINARY_TREE:
            phases = _double_binary_tree(network, routing, group, nbytes)
        elif algorithm == Algorithm.STAR:
            phases = _star(network, routing, group, nbytes)
        elif algorithm == Algorithm.HIERARCHICAL:
            phases = _hierarchical(network, routing, group, nbytes, local_size)
        elif collective == Collective.P2P:
            phases = [_phase(network, routing, "p2p", 1, [(group[0], group[1], nbytes)])]
        else:
            phases = _all_to_all(network, routing, group, nbytes,
                                 pairwise=algorithm == Algorithm.PAIRWISE)
    return LoweredCollective(collective, algorithm, group, float(nbytes), tuple(phases))


def estimated_time_ns(lowered: LoweredCollective) -> float:
    """The time of `lowered` alone on the network in the alpha-beta model: per phase, its steps
    x the longest route's latency plus the busiest link's bytes over its bandwidth. A lower
    bound of the engine's time (no contention beyond the busiest link), and the kind of model
    NCCL's tuner uses to pick an algorithm per message size (NVIDIA/nccl src/graph/tuning.cc:
    latency + bytes / bandwidth per algorithm and protocol)."""
    total = 0.0
    for ph in lowered.phases:
        if not ph.flows:
            continue
        latency = max(math.fsum(link.latency_ns for link in f.route) for f in ph.flows)
        on_link: dict[str, float] = {}
        bw: dict[str, float] = {}
        for f in ph.flows:
            for link in f.route:
                on_link[link.name] = on_link.get(link.name, 0.0) + f.nbytes
                bw[link.name] = link.bw_gbps
        total += ph.steps * latency + max(b / bw[n] for n, b in on_link.items())
    return total


AUTO_ALL_REDUCE = (Algorithm.RING, Algorithm.DOUBLE_BINARY_TREE, Algorithm.STAR)


def lower_all_reduce(network: Network, group: Sequence[int], nbytes: float, algorithm: str = "ring",
                     routing: Routing = Routing()) -> LoweredCollective:
    """An all-reduce with `algorithm`, or with "auto" the one of ring, double binary tree and
    star whose `estimated_time_ns` is least for this message (ties: the first): latency-bound
    small messages take the few steps of a tree or star, bandwidth-bound large ones the ring's
    2(p-1)/p bytes per device."""
    if algorithm != "auto":
        return lower_collective(network, Collective.ALL_REDUCE, group, nbytes, Algorithm(algorithm),
                                routing)
    options = [lower_collective(network, Collective.ALL_REDUCE, group, nbytes, a, routing)
               for a in AUTO_ALL_REDUCE]
    return min(options, key=estimated_time_ns)
