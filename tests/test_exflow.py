"""ExFlow (issue 13 item 6; workloads/routing.py ExFlowSpec, hwsim/validate/exflow.py): the
inter-layer affinity Markov model keeps every layer's popularity, the affinity placement gains
nothing without affinity and cuts cross-device copies with it (closed forms for top-1), bytes are
conserved layer by layer, context coherence drops the combine, bad inputs are refused."""
import numpy as np
import pytest

from hwsim.validate.exflow import all_to_all_ns
from hwsim.workloads.models import MoESpec
from hwsim.workloads.ops import OpKind
from hwsim.workloads.routing import RoutingSpec, exflow_layers, expert_routes, expert_token_counts
from hwsim.workloads.transformer import DeviceCoord, build_transformer

from conftest import assert_refused_in_one_line
from test_partition import tiny_model, workload
from test_replica import run_on, switch

LAYERS = tuple(range(12))


def remote_fraction(affinity, placement, top_k=1, tokens=16384, experts=16, groups=8,
                    distribution="uniform"):
    """Dispatch copies sent to another device / all copies, over layers 1.. (layer 0 starts
    from the requests' own devices in both placements)."""
    r = RoutingSpec(distribution=distribution, affinity=affinity, seed=7)
    layers = exflow_layers(r, tokens, experts, top_k, LAYERS, groups, placement, 5000)
    return sum(sum(x.dispatch_copies) for x in layers[1:]) / ((len(LAYERS) - 1) * tokens * top_k)


def test_affinity_keeps_each_layers_popularity():
    """succ maps rank to rank: with or without affinity a layer's expert loads are draws of the
    same popularity (Zipf here), within sampling noise; affinity 0 is the sample routing always
    drew (bit-identical counts)."""
    tokens, n = 200_000, 8
    for layer in (1, 5):
        free = expert_token_counts(RoutingSpec(distribution="zipf", skew=1.0), tokens, n, 2, layer)
        tied = expert_token_counts(RoutingSpec(distribution="zipf", skew=1.0, affinity=0.9),
                                   tokens, n, 2, layer)
        assert np.allclose(tied / free, 1, atol=0.03)
        assert tied.sum() == free.sum() == tokens * 2
        zero = RoutingSpec(distribution="zipf", skew=1.0, affinity=0.0)
        assert (np.bincount(expert_routes(zero, tokens, n, 2, layer).ravel(), minlength=n) == free).all()


def test_affinity_is_the_probability_of_following_the_successor():
    """Top-1: P(next expert = succ(this)) = a + (1 - a)/n for uniform popularity."""
    from hwsim.workloads.routing import successor
    a, n, tokens = 0.6, 8, 100_000
    r = RoutingSpec(distribution="uniform", affinity=a, seed=3)
    here, there = expert_routes(r, tokens, n, 1, 4)[:, 0], expert_routes(r, tokens, n, 1, 5)[:, 0]
    followed = np.mean(successor(r, n, 4)[here] == there)
    assert followed == pytest.approx(a + (1 - a) / n, abs=0.01)


def test_without_affinity_the_placement_gains_nothing():
    """Affinity 0: the next expert is independent of the device a token sits on, so any
    placement sends 1 - 1/groups of the copies away (top-1), affinity-aware or not."""
    for placement in ("affinity", "contiguous"):
        assert remote_fraction(0.0, placement) == pytest.approx(1 - 1 / 8, abs=0.01)
    assert remote_fraction(0.0, "affinity") == pytest.approx(remote_fraction(0.0, "contiguous"), abs=0.01)


def test_with_affinity_the_placement_cuts_cross_device_copies():
    """Affinity a, top-1: a token follows its successor with probability a; the placement puts
    every successor on its predecessor's device, so only fresh draws leave: (1 - a)(1 - 1/groups)
    of the copies. The contiguous layout keeps 1 - 1/groups (succ is a random permutation,
    blind to devices). Zipf popularity too."""
    for a in (0.5, 0.9):
        assert remote_fraction(a, "affinity") == pytest.approx((1 - a) * (1 - 1 / 8), abs=0.015)
        assert remote_fraction(a, "contiguous") == pytest.approx(1 - 1 / 8, abs=0.02)
    assert remote_fraction(0.9, "affinity", distribution="zipf") < 0.5 * remote_fraction(0.9, "contiguous", distribution="zipf")


def test_exflow_conserves_tokens_and_copies():
    """Per layer: tokens on the devices before and after add up to the batch; copies that leave
    plus those that stay are tokens x top_k; expert loads add up to tokens x top_k; every
    device holds experts / groups experts."""
    r = RoutingSpec(distribution="zipf", skew=1.2, affinity=0.7, seed=1)
    tokens, n, k, groups = 4096, 16, 2, 4
    for layer, x in zip(LAYERS, exflow_layers(r, tokens, n, k, LAYERS, groups, "affinity", 5000)):
        assert sum(x.tokens_in) == sum(x.tokens_out) == tokens
        routes = expert_routes(r, tokens, n, k, layer)
        home = np.empty(tokens, dtype=int)
        for g, ids in enumerate(x.tokens_in_ids):
            home[ids] = g
        stay = int(np.sum(x.expert_group[routes] == home[:, None]))
        assert sum(x.dispatch_copies) + stay == tokens * k
        assert (np.bincount(x.expert_group, minlength=groups) == n // groups).all()
        assert expert_token_counts(r, tokens, n, k, layer).sum() == tokens * k


def exflow_workload(placement="affinity", top_k=1, affinity=0.8, **kw):
    moe = MoESpec(n_experts=8, top_k=top_k, d_ff_expert=1024)
    return workload(tiny_model(moe), ep=4, batch=64,
                    routing=RoutingSpec(distribution="uniform", affinity=affinity),
                    exflow={"placement": placement} if placement else None, **kw)


def test_graph_bytes_are_the_copies_sent():
    """Each device's dispatch op carries its copies x d_model x bytes; top-1 has no combine
    (context coherence); the devices' tokens per layer are the routing's."""
    w = exflow_workload()
    layers = exflow_layers(w.routing, 64, 8, 1, tuple(range(4)), 4, "affinity", 5000)
    for g in range(4):
        graph = build_transformer(w, DeviceCoord(0, g))
        names = {op.name for op in graph.ops}
        assert not any(".combine" in n for n in names)
        for i, x in enumerate(layers):
            assert graph.op(f"L{i}.dispatch").collective.bytes == x.dispatch_copies[g] * 512 * 2
            assert graph.op(f"L{i}.qkv").matmul.m == x.tokens_in[g]
            assert graph.op(f"L{i}.residual2").elements == x.tokens_out[g] * 512


def test_context_coherence_halves_the_all_to_alls_on_a_switch():
    """Top-1 on a switch: the standard pass runs dispatch + combine per layer, ExFlow the
    dispatch alone (and one token all-gather per pass); with latency-bound messages the routing
    time about halves; with affinity the affinity placement moves fewer bytes than contiguous."""
    def measured(w):
        _, replica, trace = run_on(w, switch(4))
        ops = [op for op in build_transformer(w, DeviceCoord(0, 0)).ops if op.kind == OpKind.ALL_TO_ALL]
        link = sum(t.demands.get(r, 0.0) for t in replica.schedule.tasks for r in t.demands
                   if r.startswith("link:dev"))
        return len(ops), link, trace

    std_ops, std_bytes, _ = measured(exflow_workload(placement=None))
    ex_ops, ex_bytes, _ = measured(exflow_workload("affinity"))
    co_ops, co_bytes, _ = measured(exflow_workload("contiguous"))
    assert std_ops == 2 * 4 and ex_ops == co_ops == 4 + 1
    assert ex_bytes < co_bytes < std_bytes


@pytest.mark.parametrize("overrides, words", [
    (["workload.ep=1"], ["exflow", "ep > 1"]),
    (["workload.phase=prefill"], ["exflow", "decode"]),
    (["workload.routing.distribution=balanced"], ["affinity"]),
    (["workload.routing.affinity=1.5"], ["affinity"]),
    (["workload.exflow.placement=ilp"], ["placement"]),
])
def test_bad_exflow_inputs_are_refused(overrides, words, tmp_path):
    assert_refused_in_one_line("configs/exflow-gpt-moe-ep8.yaml", overrides, words, str(tmp_path))


def test_shipped_config_routing_time(tmp_path):
    """The shipped config: ExFlow's routing time is below the standard's, the all-to-all count
    per MoE layer is 1 vs 2."""
    from hwsim.validate.exflow import exflow_run
    r = exflow_run()
    assert all_to_all_ns(r.main) < 0.6 * all_to_all_ns(r.baselines["standard"])
    assert all_to_all_ns(r.main) <= all_to_all_ns(r.baselines["coherent_only"]) * 1.001
