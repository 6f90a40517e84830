"""Devices on a topology: routes, collectives lowered to per-link flows, and their simulation.

The closed forms are the tests of the lowering: ring all-reduce 2(p-1)/p·B per device in 2(p-1)
steps (Patarasuk & Yuan, JPDC 2009); all-gather / reduce-scatter (p-1)/p·B in p-1 steps,
pairwise all-to-all in p-1 rounds and the hierarchical all-reduce as RS + AR + AG (Thakur,
Rabenseifner & Gropp, IJHPCA 2005); the double binary tree's 2·⌊log2 p⌋ pipeline steps (Sanders,
Speck & Träff, Parallel Computing 2009). Simulated times come from the engine (links shared
max-min fair), checked against the same closed forms to 1e-9.
"""
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hwsim.configs import PRESETS_DIR
from hwsim.hw.interconnect import (
    Algorithm, ClosSpec, Collective, FullMeshSpec, MeshSpec, Routing, SwitchSpec,
    add_collective, link_resource_name, lower_collective, lower_transfers, route_bottleneck_gbps,
    route_latency_ns, topology_from_dict)
from hwsim.hw.interconnect.collectives import binary_tree_parents, tree_height
from hwsim.sim.engine import simulate
from hwsim.sim.schedule import Schedule

B = 64e6          # bytes
W = 100.0         # GB/s per direction = bytes/ns
LAT = 500.0       # ns per link


def switch(p, bw=W, lat=LAT, pj=0.0):
    return SwitchSpec(kind="switch", devices=p, port_bw_gbps=bw, link_latency_ns=lat,
                      energy_pj_per_bit=pj).build()


def run(lowered, label="c"):
    s = Schedule(resources={})
    tasks = add_collective(s, lowered, label)
    return s, tasks, simulate(s)


def close(a, b, rel=1e-9):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


# ------------------------------------------------------------------ routes

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.sampled_from(["mesh", "torus"]),
       st.data())
def test_route_length_is_manhattan_on_a_mesh_and_wrap_distance_on_a_torus(dims, kind, data):
    spec = MeshSpec(kind=kind, dims=dims, link_bw_gbps=W, hop_latency_ns=1, energy_pj_per_bit=0)
    net = spec.build()
    n = spec.num_devices
    if n < 2:
        return
    src = data.draw(st.integers(0, n - 1))
    dst = data.draw(st.integers(0, n - 1).filter(lambda d: d != src))
    (route,) = net.equal_cost_paths(src, dst)
    a, b = spec.coords(src), spec.coords(dst)
    expected = sum(min(abs(x - y), m - abs(x - y)) if kind == "torus" else abs(x - y)
                   for x, y, m in zip(a, b, dims))
    assert len(route) == expected == spec.hops(src, dst)
    # dimension order: the dimension a hop moves along never decreases
    moved = []
    for link in route:
        ca, cb = spec.coords(int(link.src[3:])), spec.coords(int(link.dst[3:]))
        moved.append(next(i for i in range(len(dims)) if ca[i] != cb[i]))
    assert moved == sorted(moved)


def all_topologies():
    return [
        MeshSpec(kind="mesh", dims=(3, 4), link_bw_gbps=W, hop_latency_ns=LAT, energy_pj_per_bit=1),
        MeshSpec(kind="torus", dims=(4, 3), link_bw_gbps=W, hop_latency_ns=LAT, energy_pj_per_bit=1),
        SwitchSpec(kind="switch", devices=5, port_bw_gbps=W, link_latency_ns=LAT, energy_pj_per_bit=1),
        FullMeshSpec(kind="full_mesh", devices=4, link_bw_gbps=W, link_latency_ns=LAT,
                     energy_pj_per_bit=1),
        ClosSpec(kind="clos", devices_per_leaf=3, leaves=3, spines=2, uplinks_per_leaf=4,
                 link_bw_gbps=W, link_latency_ns=LAT, energy_pj_per_bit=1),
    ]


@pytest.mark.parametrize("spec", all_topologies(), ids=lambda s: s.kind)
def test_every_path_is_a_chain_of_links_from_source_to_destination(spec):
    net = spec.build()
    for src in range(net.num_devices):
        for dst in range(net.num_devices):
            if src == dst:
                continue
            for route in net.equal_cost_paths(src, dst):
                assert route[0].src == f"dev{src}" and route[-1].dst == f"dev{dst}"
                assert all(a.dst == b.src for a, b in zip(route, route[1:]))
                assert len({link.name for link in route}) == len(route)   # no link twice


def test_switch_full_mesh_and_clos_route_shapes():
    assert [ln.name for ln in switch(4).equal_cost_paths(1, 3)[0]] == ["dev1->sw0", "sw0->dev3"]
    fm = FullMeshSpec(kind="full_mesh", devices=4, link_bw_gbps=W, link_latency_ns=1,
                      energy_pj_per_bit=0).build()
    assert [ln.name for ln in fm.equal_cost_paths(2, 0)[0]] == ["dev2->dev0"]
    clos = ClosSpec(kind="clos", devices_per_leaf=2, leaves=2, spines=2, uplinks_per_leaf=4,
                    link_bw_gbps=W, link_latency_ns=1, energy_pj_per_bit=0).build()
    assert len(clos.equal_cost_paths(0, 1)) == 1 and len(clos.equal_cost_paths(0, 1)[0]) == 2
    paths = clos.equal_cost_paths(0, 2)          # across leaves: one path per uplink
    assert len(paths) == 4 and all(len(p) == 4 for p in paths)
    assert {p[1].dst for p in paths} == {"spine0", "spine1"}
    assert len({p[1].name for p in paths}) == 4   # two lanes to each spine


def test_torus_takes_the_short_way_round():
    spec = MeshSpec(kind="torus", dims=(8,), link_bw_gbps=W, hop_latency_ns=1, energy_pj_per_bit=0)
    (route,) = spec.build().equal_cost_paths(0, 7)
    assert [ln.name for ln in route] == ["dev0->dev7"]


# ------------------------------------------------------------------ ring all-reduce

@pytest.mark.parametrize("p", [2, 3, 5, 8, 16])
def test_ring_all_reduce_sends_2_p_minus_1_over_p_B_per_device_and_per_ring_link(p):
    net = switch(p)
    ar = lower_collective(net, Collective.ALL_REDUCE, range(p), B)
    assert ar.steps == 2 * (p - 1)
    assert ar.num_flows == p                          # identical steps collapsed: O(p) flows
    want = 2 * (p - 1) / p * B
    assert all(close(v, want) for v in ar.bytes_sent().values())
    assert all(close(v, want) for v in ar.bytes_received().values())
    link_bytes = ar.link_bytes()
    for i in range(p):
        assert close(link_bytes[f"dev{i}->sw0"], want)
        assert close(link_bytes[f"sw0->dev{(i + 1) % p}"], want)


@pytest.mark.parametrize("p", [2, 4, 7, 8])
def test_ring_all_reduce_on_a_switch_takes_the_closed_form_time(p):
    """2(p-1)/p·B/W + 2(p-1)·(per-step route latency), from the engine."""
    ar = lower_collective(switch(p), Collective.ALL_REDUCE, range(p), B)
    s, tasks, trace = run(ar)
    assert close(trace.makespan_ns, 2 * (p - 1) / p * B / W + 2 * (p - 1) * 2 * LAT)
    assert len(s.tasks) == p + 1                      # p flows and one barrier


@pytest.mark.parametrize("p", [3, 6])
def test_ring_all_reduce_on_a_ring_network_takes_the_closed_form_time(p):
    torus = MeshSpec(kind="torus", dims=(p,), link_bw_gbps=W, hop_latency_ns=LAT,
                     energy_pj_per_bit=0).build()
    _, _, trace = run(lower_collective(torus, Collective.ALL_REDUCE, range(p), B))
    assert close(trace.makespan_ns, 2 * (p - 1) / p * B / W + 2 * (p - 1) * LAT)


def test_a_ring_whose_hops_share_links_is_slowed_by_the_engine():
    """On a line of 4 devices the ring order 0,2,1,3 sends 0->2 and 1->3 over the link 1->2,
    and 2->1 and 3->0 over 2->1: two flows on each of those links, so twice the time."""
    line = MeshSpec(kind="mesh", dims=(4,), link_bw_gbps=W, hop_latency_ns=0,
                    energy_pj_per_bit=0).build()
    per_flow = 2 * 3 / 4 * B
    good = lower_collective(line, Collective.ALL_REDUCE, [0, 1, 2, 3], B)
    bad = lower_collective(line, Collective.ALL_REDUCE, [0, 2, 1, 3], B)
    assert max(good.link_bytes().values()) == per_flow
    assert max(bad.link_bytes().values()) == 2 * per_flow
    assert close(run(good)[2].makespan_ns, per_flow / W)
    assert close(run(bad)[2].makespan_ns, 2 * per_flow / W)


def stepwise_ring_all_reduce_ns(net, p):
    """The slow reference: 2(p-1) lock-step phases of p chunk flows (B/p each), one after the
    other, as the algorithm runs them."""
    s = Schedule(resources={})
    done = ()
    for step in range(2 * (p - 1)):
        lc = lower_transfers(net, [(i, (i + 1) % p, B / p) for i in range(p)])
        done = (add_collective(s, lc, f"step{step}", deps=done).done,)
    return simulate(s).makespan_ns


def test_collapsed_ring_equals_the_step_by_step_ring():
    """The collapsed phase is one lock-step step stretched by the step count, also where the
    ring's hops differ: on a Clos its leaf-crossing hops are longer and share an uplink."""
    for p in (2, 5, 8):
        torus = MeshSpec(kind="torus", dims=(p,), link_bw_gbps=W, hop_latency_ns=LAT,
                         energy_pj_per_bit=0).build()
        for net in (switch(p), torus):
            _, _, trace = run(lower_collective(net, Collective.ALL_REDUCE, range(p), B))
            assert close(trace.makespan_ns, stepwise_ring_all_reduce_ns(net, p))
    clos = ClosSpec(kind="clos", devices_per_leaf=3, leaves=3, spines=1, uplinks_per_leaf=1,
                    link_bw_gbps=W, link_latency_ns=LAT, energy_pj_per_bit=0).build()
    _, _, trace = run(lower_collective(clos, Collective.ALL_REDUCE, range(9), B))
    assert close(trace.makespan_ns, stepwise_ring_all_reduce_ns(clos, 9))


# ------------------------------------------------------------------ other collectives

@pytest.mark.parametrize("collective", [Collective.ALL_GATHER, Collective.REDUCE_SCATTER])
@pytest.mark.parametrize("p", [2, 5, 8])
def test_ring_all_gather_and_reduce_scatter_match_their_closed_forms(collective, p):
    lc = lower_collective(switch(p), collective, range(p), B)
    assert lc.steps == p - 1 and lc.num_flows == p
    assert all(close(v, (p - 1) / p * B) for v in lc.bytes_sent().values())
    _, _, trace = run(lc)
    assert close(trace.makespan_ns, (p - 1) / p * B / W + (p - 1) * 2 * LAT)


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 7, 8, 16, 33])
def test_binary_tree_is_an_in_order_tree_of_height_floor_log2_p(p):
    parents = binary_tree_parents(p)
    assert sum(q is None for q in parents) == 1
    children = {i: [j for j, q in enumerate(parents) if q == i] for i in range(p)}
    assert all(len(c) <= 2 for c in children.values())
    assert tree_height(parents) == (int(math.log2(p)) if p > 1 else 0)
    # in-order: every left descendant has a smaller label, every right one a larger
    for i, c in children.items():
        assert all((j < i) != (k < i) for j in c for k in c if j != k)
    # odd labels (even positions) are the leaves
    assert all(not children[i] for i in range(0, p, 2))


@pytest.mark.parametrize("p", [2, 4, 6, 8, 16])
def test_double_binary_tree_moves_2_p_minus_1_B_in_2_log2_p_steps(p):
    lc = lower_collective(switch(p), Collective.ALL_REDUCE, range(p), B,
                          Algorithm.DOUBLE_BINARY_TREE)
    assert lc.steps == 2 * int(math.log2(p))
    assert close(lc.total_bytes, 2 * (p - 1) * B)
    assert lc.num_flows == 4 * (p - 1)
    # with p even every device is interior in at most one tree, so it sends at most 2B
    # (B/2 up and B down where interior, B/2 up where a leaf) — full bandwidth like the ring
    assert max(lc.bytes_sent().values()) <= 2 * B * (1 + 1e-12)
    _, _, trace = run(lc)
    assert trace.makespan_ns >= max(lc.bytes_sent().values()) / W


@pytest.mark.parametrize("p", [2, 3, 8])
def test_star_all_reduce_reduces_to_the_root_then_broadcasts(p):
    lc = lower_collective(switch(p), Collective.ALL_REDUCE, range(p), B, Algorithm.STAR)
    assert lc.steps == 2 and len(lc.phases) == 2
    assert close(lc.total_bytes, 2 * (p - 1) * B)
    assert close(lc.bytes_received()[0], (p - 1) * B) and close(lc.bytes_sent()[0], (p - 1) * B)
    _, _, trace = run(lc)
    # each phase funnels (p-1)·B through the root's port: the engine shares it
    assert close(trace.makespan_ns, 2 * ((p - 1) * B / W + 2 * LAT))


@pytest.mark.parametrize("g, G", [(2, 2), (4, 2), (3, 4), (1, 4), (4, 1)])
def test_hierarchical_all_reduce_is_reduce_scatter_all_reduce_all_gather(g, G):
    p = g * G
    clos = ClosSpec(kind="clos", devices_per_leaf=g, leaves=G, spines=2, uplinks_per_leaf=2,
                    link_bw_gbps=W, link_latency_ns=LAT, energy_pj_per_bit=0).build()
    lc = lower_collective(clos, Collective.ALL_REDUCE, range(p), B, Algorithm.HIERARCHICAL,
                          local_size=g)
    assert lc.steps == 2 * (g - 1) + 2 * (G - 1)
    assert close(lc.total_bytes, 2 * G * (g - 1) * B + 2 * (G - 1) * B)
    per_device = 2 * (g - 1) / g * B + 2 * (G - 1) / G * B / g
    assert all(close(v, per_device) for v in lc.bytes_sent().values())
    # the local phases stay inside their leaf; only the cross-group phase reaches a spine
    for ph in lc.phases:
        uses_spine = any("spine" in ln.dst for f in ph.flows for ln in f.route)
        assert uses_spine == (ph.name == "cross-group all-reduce")


@pytest.mark.parametrize("p", [2, 3, 6])
def test_all_to_all_direct_and_pairwise_match_their_closed_forms(p):
    net = switch(p)
    direct = lower_collective(net, Collective.ALL_TO_ALL, range(p), B, Algorithm.DIRECT)
    pairwise = lower_collective(net, Collective.ALL_TO_ALL, range(p), B, Algorithm.PAIRWISE)
    assert direct.steps == 1 and pairwise.steps == p - 1
    for lc in (direct, pairwise):
        assert lc.num_flows == p * (p - 1)
        assert close(lc.total_bytes, (p - 1) * B)
        assert all(close(v, (p - 1) / p * B) for v in lc.bytes_sent().values())
        pairs = {(f.src, f.dst) for ph in lc.phases for f in ph.flows}
        assert pairs == {(a, b) for a in range(p) for b in range(p) if a != b}
    for ph in pairwise.phases:      # every round is a permutation
        assert sorted(f.src for f in ph.flows) == sorted(f.dst for f in ph.flows) == list(range(p))
    assert close(run(direct)[2].makespan_ns, (p - 1) / p * B / W + 2 * LAT)
    assert close(run(pairwise)[2].makespan_ns, (p - 1) * (B / p / W + 2 * LAT))


def test_p2p_is_one_flow_of_one_step():
    lc = lower_collective(switch(4), Collective.P2P, (3, 1), B)
    assert lc.steps == 1 and lc.num_flows == 1 and lc.bytes_sent()[3] == B
    assert close(run(lc)[2].makespan_ns, B / W + 2 * LAT)


def test_a_group_of_one_moves_nothing_and_still_gives_a_done_task():
    lc = lower_collective(switch(4), Collective.ALL_REDUCE, [2], B)
    assert lc.phases == () and lc.total_bytes == 0
    s, tasks, trace = run(lc)
    assert tasks.done == 0 and trace.makespan_ns == 0


# ------------------------------------------------------------------ conservation, energy, tasks

@pytest.mark.parametrize("spec", all_topologies(), ids=lambda s: s.kind)
def test_bytes_are_conserved_from_lowering_to_links(spec):
    net = spec.build()
    p = net.num_devices
    unsplit = lower_collective(net, Collective.ALL_TO_ALL, range(p), B)
    split = lower_collective(net, Collective.ALL_TO_ALL, range(p), B, routing=Routing(paths_per_flow=3))

    def by_pair(lc):
        out = {}
        for ph in lc.phases:
            for f in ph.flows:
                out[f.src, f.dst] = out.get((f.src, f.dst), 0.0) + f.nbytes
        return out
    a, b = by_pair(unsplit), by_pair(split)
    assert a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    s, tasks, trace = run(split)
    for tid, flow in tasks.flow_of_task.items():      # a task puts its bytes on every link
        assert s.tasks[tid].demands == {link_resource_name(ln): flow.nbytes for ln in flow.route}
    for name, nbytes in split.link_bytes().items():   # and the engine sees the same link bytes
        assert close(trace.work(f"link:{name}"), nbytes)
    hops_bytes = sum(f.nbytes * len(f.route) for ph in split.phases for f in ph.flows)
    assert close(sum(split.link_bytes().values()), hops_bytes)


def test_energy_is_bytes_times_hops_times_pj_per_bit():
    mesh = MeshSpec(kind="mesh", dims=(4, 4), link_bw_gbps=W, hop_latency_ns=1,
                    energy_pj_per_bit=0.5).build()
    lc = lower_collective(mesh, Collective.P2P, (0, 15), B)
    s, _, _ = run(lc)
    assert close(sum(t.energy_j for t in s.tasks), B * 8 * 6 * 0.5e-12)


def test_tasks_know_their_collective_phase_and_links():
    lc = lower_collective(switch(4), Collective.ALL_REDUCE, range(4), B, Algorithm.STAR)
    s, tasks, _ = run(lc, label="L3.attn.allreduce")
    assert [len(ids) for ids in tasks.phase_tasks] == [3, 3]
    for k, ids in enumerate(tasks.phase_tasks):
        for tid in ids:
            assert tasks.phase_of_task[tid] == k
            assert s.tasks[tid].name.startswith(f"L3.attn.allreduce.{k}:")
            assert s.tasks[tid].component == "link"
            assert s.tasks[tid].device == tasks.flow_of_task[tid].src
    assert s.tasks[tasks.done].deps == tasks.phase_tasks[-1]
    # phase 2 starts after phase 1 ends (through one barrier task)
    barrier = s.tasks[tasks.phase_tasks[1][0]].deps
    assert len(barrier) == 1 and s.tasks[barrier[0]].deps == tasks.phase_tasks[0]


# ------------------------------------------------------------------ fabrics

def clos(oversub_uplinks, spines, devices_per_leaf=4, leaves=2):
    return ClosSpec(kind="clos", devices_per_leaf=devices_per_leaf, leaves=leaves, spines=spines,
                    uplinks_per_leaf=oversub_uplinks, link_bw_gbps=W, link_latency_ns=LAT,
                    energy_pj_per_bit=0)


@pytest.mark.parametrize("uplinks", [4, 2, 1])
def test_an_oversubscribed_clos_slows_cross_leaf_traffic_by_its_oversubscription(uplinks):
    spec = clos(uplinks, spines=uplinks)
    assert spec.oversubscription == 4 / uplinks
    net = spec.build()
    # every device of leaf 0 sends B to its counterpart on leaf 1, spread over every uplink
    lc = lower_transfers(net, [(i, i + 4, B) for i in range(4)], Routing(paths_per_flow=uplinks))
    _, _, trace = run(lc)
    assert close(trace.makespan_ns, 4 * LAT + spec.oversubscription * B / W)


def test_ecmp_hash_collisions_raise_the_max_link_load_and_splitting_reaches_the_ideal():
    """4 devices per leaf send across to the next leaf over 4 spines: ideally one flow per
    uplink. ECMP hashes each flow to one spine and collides (probability 1 - 4!/4^4 per leaf);
    splitting every flow over all 4 spines gives each uplink exactly B."""
    spec = ClosSpec(kind="clos", devices_per_leaf=4, leaves=4, spines=4, uplinks_per_leaf=4,
                    link_bw_gbps=W, link_latency_ns=0, energy_pj_per_bit=0)
    net = spec.build()
    ideal = B
    for seed in range(10):
        ecmp = lower_collective(net, Collective.ALL_TO_ALL, range(16), 16 * B,
                                Algorithm.PAIRWISE, Routing(ecmp_seed=seed))
        split = lower_collective(net, Collective.ALL_TO_ALL, range(16), 16 * B,
                                 Algorithm.PAIRWISE, Routing(ecmp_seed=seed, paths_per_flow=4))
        # round 4 shifts every device to the same position on the next leaf
        ecmp_round = ecmp.phases[3]
        split_round = split.phases[3]
        loads = lambda ph: max(sum(f.nbytes for f in ph.flows if ln in f.route)
                               for f0 in ph.flows for ln in f0.route if "spine" in ln.dst)
        assert loads(ecmp_round) > ideal
        assert close(loads(split_round), ideal)
    # and the engine turns the extra load into time
    _, _, t_ecmp = run(lower_collective(net, Collective.ALL_TO_ALL, range(16), 16 * B,
                                        Algorithm.PAIRWISE, Routing(ecmp_seed=0)))
    _, _, t_split = run(lower_collective(net, Collective.ALL_TO_ALL, range(16), 16 * B,
                                         Algorithm.PAIRWISE, Routing(paths_per_flow=4)))
    assert t_ecmp.makespan_ns > t_split.makespan_ns


def test_ecmp_is_deterministic_for_a_seed_and_differs_across_seeds():
    net = clos(4, spines=4).build()
    pick = lambda seed: [lower_collective(net, Collective.P2P, (0, 4 + i % 4), B,
                                         routing=Routing(ecmp_seed=seed)).phases[0].flows[0].route[1].name
                         for i in range(8)]
    assert pick(3) == pick(3)
    assert len({tuple(pick(s)) for s in range(5)}) > 1


# ------------------------------------------------------------------ physics, property-based

topology_strategy = st.one_of(
    st.builds(lambda d, k, bw, lat: MeshSpec(kind=k, dims=d, link_bw_gbps=bw, hop_latency_ns=lat,
                                             energy_pj_per_bit=1),
              st.lists(st.integers(1, 4), min_size=1, max_size=2), st.sampled_from(["mesh", "torus"]),
              st.floats(1, 500), st.one_of(st.just(0.0), st.floats(1e-3, 1000))),
    st.builds(lambda n, bw, lat: SwitchSpec(kind="switch", devices=n, port_bw_gbps=bw,
                                            link_latency_ns=lat, energy_pj_per_bit=1),
              st.integers(2, 9), st.floats(1, 500), st.one_of(st.just(0.0), st.floats(1e-3, 1000))),
    st.builds(lambda n, bw, lat: FullMeshSpec(kind="full_mesh", devices=n, link_bw_gbps=bw,
                                              link_latency_ns=lat, energy_pj_per_bit=1),
              st.integers(2, 6), st.floats(1, 500), st.one_of(st.just(0.0), st.floats(1e-3, 1000))),
    st.builds(lambda dpl, leaves, spines, lanes, bw, lat: ClosSpec(
        kind="clos", devices_per_leaf=dpl, leaves=leaves, spines=spines,
        uplinks_per_leaf=spines * lanes, link_bw_gbps=bw, link_latency_ns=lat, energy_pj_per_bit=1),
        st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2),
        st.floats(1, 500), st.one_of(st.just(0.0), st.floats(1e-3, 1000))),
)

CHOICES = [(c, a) for c, algs in [(Collective.ALL_REDUCE, list(Algorithm)[:3]),
                                  (Collective.ALL_GATHER, [Algorithm.RING]),
                                  (Collective.REDUCE_SCATTER, [Algorithm.RING]),
                                  (Collective.ALL_TO_ALL, [Algorithm.DIRECT, Algorithm.PAIRWISE])]
           for a in algs]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topology_strategy, st.sampled_from(CHOICES), st.floats(1e3, 1e8), st.integers(1, 3),
       st.data())
def test_no_flow_finishes_faster_than_its_bytes_over_its_slowest_link(spec, choice, nbytes, k, data):
    net = spec.build()
    if net.num_devices < 2:
        return
    group = data.draw(st.lists(st.integers(0, net.num_devices - 1), min_size=2, unique=True))
    collective, algorithm = choice
    lc = lower_collective(net, collective, group, nbytes, algorithm, Routing(paths_per_flow=k))
    s, tasks, trace = run(lc)
    for tid, flow in tasks.flow_of_task.items():
        took = trace.end_ns[tid] - trace.start_ns[tid]
        floor = flow.nbytes / route_bottleneck_gbps(flow.route)
        assert took >= floor * (1 - 1e-9)
        assert took >= s.tasks[tid].roofline_ns * (1 - 1e-9)
        steps = lc.phases[tasks.phase_of_task[tid]].steps
        assert close(s.tasks[tid].latency_ns, steps * route_latency_ns(flow.route))


# ------------------------------------------------------------------ presets and bad input

def preset(name):
    data = yaml.safe_load((PRESETS_DIR / f"{name}.yaml").read_text())
    assert data.pop("component") == "topology"
    return topology_from_dict(data)


def test_presets_carry_their_datasheet_bandwidths():
    hgx = preset("hgx-h100")
    assert hgx.devices == 8 and 2 * hgx.port_bw_gbps == 900      # 900 GB/s bidirectional
    dgx = preset("dgx-a100")
    assert dgx.devices == 8 and 2 * dgx.port_bw_gbps == 600      # 600 GB/s bidirectional
    ls = preset("leaf-spine-400g")
    assert ls.link_bw_gbps * 8 == 400                            # 400 Gb/s NIC
    assert ls.num_devices == 256 and ls.oversubscription == 1.0
    net = ls.build()
    spine_ports = sum(1 for ln in net.links.values() if ln.dst == "spine0")
    assert spine_ports == 64                                     # a 64-port switch


def test_hgx_ring_all_reduce_time_matches_its_closed_form():
    hgx = preset("hgx-h100")
    _, _, trace = run(lower_collective(hgx.build(), Collective.ALL_REDUCE, range(8), 1e9))
    assert close(trace.makespan_ns, 2 * 7 / 8 * 1e9 / 450 + 14 * 3400)


def test_bad_inputs_say_what_is_wrong():
    net = switch(4)
    with pytest.raises(ValueError, match="has no pairwise"):
        lower_collective(net, Collective.ALL_REDUCE, range(4), B, Algorithm.PAIRWISE)
    with pytest.raises(ValueError, match="distinct"):
        lower_collective(net, Collective.ALL_REDUCE, [0, 1, 1], B)
    with pytest.raises(ValueError, match="not in the network"):
        lower_collective(net, Collective.ALL_REDUCE, [0, 9], B)
    with pytest.raises(ValueError, match="local_size"):
        lower_collective(net, Collective.ALL_REDUCE, range(4), B, Algorithm.HIERARCHICAL,
                         local_size=3)
    with pytest.raises(ValueError, match="local_size"):
        lower_collective(net, Collective.ALL_REDUCE, range(4), B, Algorithm.RING, local_size=2)
    with pytest.raises(ValueError, match="non-negative"):
        lower_collective(net, Collective.ALL_REDUCE, range(4), -1.0)
    with pytest.raises(ValidationError, match="multiple of spines"):
        ClosSpec(kind="clos", devices_per_leaf=4, leaves=2, spines=3, uplinks_per_leaf=4,
                 link_bw_gbps=W, link_latency_ns=0, energy_pj_per_bit=0)
    with pytest.raises(ValidationError):
        topology_from_dict({"kind": "switch", "devices": 8, "port_bw_gbps": 0,
                            "link_latency_ns": 0, "energy_pj_per_bit": 0})
    with pytest.raises(ValidationError):
        topology_from_dict({"kind": "hypercube", "devices": 8})


# ------------------------------------------------------------------ balanced single paths

def link_loads(lowered) -> dict[str, float]:
    return lowered.link_bytes()


@pytest.mark.parametrize("devices_per_leaf, leaves, uplinks", [(4, 4, 4), (8, 3, 4), (3, 4, 4), (8, 2, 8)])
def test_single_paths_with_minimal_splitting_put_exactly_sprayings_load_on_every_link(
        devices_per_leaf, leaves, uplinks):
    """Equal-size collective flows (a direct all-to-all): balanced single paths give every link
    the bytes ideal spraying gives it, bytes are conserved, and only the remainder flows of a
    leaf pair (fewer than its paths) are split."""
    spec = ClosSpec(kind="clos", devices_per_leaf=devices_per_leaf, leaves=leaves, spines=4,
                    uplinks_per_leaf=uplinks, link_bw_gbps=W, link_latency_ns=0, energy_pj_per_bit=0)
    net, p = spec.build(), spec.num_devices
    spray = lower_collective(net, Collective.ALL_TO_ALL, range(p), p * B,
                             routing=Routing(paths_per_flow=uplinks))
    balanced = lower_collective(net, Collective.ALL_TO_ALL, range(p), p * B,
                                routing=Routing(assignment="balanced"))
    a, b = link_loads(spray), link_loads(balanced)
    assert a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    assert close(balanced.total_bytes, spray.total_bytes)
    pieces = {}
    for f in balanced.phases[0].flows:
        pieces[f.src, f.dst] = pieces.get((f.src, f.dst), 0) + 1
    split = sum(n > 1 for n in pieces.values())
    cross_pairs = leaves * (leaves - 1)
    per_pair = devices_per_leaf ** 2
    assert split == cross_pairs * (per_pair % uplinks)
    assert all(n in (1, uplinks) for n in pieces.values())


def test_rail_rings_collide_under_ecmp_and_not_when_balanced():
    """One ring step per local rank across the leaves: as many cross-leaf flows per leaf pair as
    uplinks. Balanced: one flow per uplink (nothing split); ECMP: some uplink takes two or more."""
    spec = ClosSpec(kind="clos", devices_per_leaf=8, leaves=4, spines=4, uplinks_per_leaf=8,
                    link_bw_gbps=W, link_latency_ns=0, energy_pj_per_bit=0)
    net = spec.build()
    ring = [(lf * 8 + r, ((lf + 1) % 4) * 8 + r, B) for lf in range(4) for r in range(8)]
    balanced = lower_transfers(net, ring, Routing(assignment="balanced"))
    assert len(balanced.phases[0].flows) == len(ring)
    assert close(max(link_loads(balanced).values()), B)
    assert max(link_loads(lower_transfers(net, ring, Routing())).values()) >= 2 * B


def test_balanced_assignment_splits_flows_itself():
    with pytest.raises(ValueError, match="balanced assignment splits"):
        Routing(assignment="balanced", paths_per_flow=2)


# ------------------------------------------------------------------ all-reduce algorithm choice

@pytest.mark.parametrize("nbytes", [1e3, 1e5, 1e7, 1e9])
def test_auto_all_reduce_takes_the_least_estimated_time(nbytes):
    """"auto" is the argmin of the alpha-beta estimate over ring, tree and star; small
    (latency-bound) messages on a 16-device switch avoid the ring's 30 steps, large ones take
    the ring (2(p-1)/p of the buffer per device, the least of the three)."""
    from hwsim.hw.interconnect.collectives import estimated_time_ns, lower_all_reduce
    net = SwitchSpec(kind="switch", devices=16, port_bw_gbps=W, link_latency_ns=LAT,
                     energy_pj_per_bit=0).build()
    each = {a: estimated_time_ns(lower_all_reduce(net, range(16), nbytes, a))
            for a in ("ring", "double_binary_tree", "star")}
    auto = lower_all_reduce(net, range(16), nbytes, "auto")
    assert estimated_time_ns(auto) == min(each.values())
    if nbytes <= 1e3:
        assert auto.algorithm != Algorithm.RING
    if nbytes >= 1e9:
        assert auto.algorithm == Algorithm.RING


def test_the_estimate_of_a_ring_is_its_closed_form():
    """Ring all-reduce alone on a switch: 2(p-1) steps x the route latency + 2(p-1)/p B at the
    port bandwidth."""
    from hwsim.hw.interconnect.collectives import estimated_time_ns
    p = 8
    net = SwitchSpec(kind="switch", devices=p, port_bw_gbps=W, link_latency_ns=LAT,
                     energy_pj_per_bit=0).build()
    ring = lower_collective(net, Collective.ALL_REDUCE, range(p), B)
    assert close(estimated_time_ns(ring), 2 * (p - 1) * 2 * LAT + 2 * (p - 1) / p * B / W)
