"""CloudMatrix384 serving DeepSeek-R1 (issue 13, items 2, 4, 5, 8): the Ascend 910C and UB
presets, multi-token prediction, the EPLB expert layout, the decode identity, physics on the
decode config, the dispatch/combine closed form and bad input."""
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.hw.interconnect import Routing, topology_from_dict
from hwsim.hw.interconnect.collectives import estimated_time_ns
from hwsim.hw.interconnect.schedule import add_coflows
from hwsim.sim.engine import simulate
from hwsim.sim.schedule import Schedule
from hwsim.validate import cloudmatrix as cm
from hwsim.workloads.routing import expert_placement
from hwsim.workloads.transformer import MTPSpec, build_transformer, transformer_info

PRESETS = CONFIG_DIR / "presets"


def preset(name: str) -> dict:
    data = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())
    data.pop("component")
    return data


@pytest.fixture(scope="module")
def decode():
    return cm.decode_run()


# ---------------------------------------------------------------- presets and capacities

def test_the_die_is_half_the_package():
    die, npu = preset("ascend-910c-die"), preset("ascend-910c")
    assert npu["peak_tflops"] == {"fp16": 752, "bf16": 752, "int8": 1504}
    assert (npu["hbm_bw_gbps"], round(npu["hbm_gib"] * 2**30 / 1e9)) == (3200, 128)
    for key in ("hbm_bw_gbps", "sms", "tdp_w", "vector_tflops"):
        assert die[key] * 2 == pytest.approx(npu[key], rel=1e-3), key
    assert {k: 2 * v for k, v in die["peak_tflops"].items()} == npu["peak_tflops"]
    assert die["hbm_gib"] * 2 == pytest.approx(npu["hbm_gib"], rel=1e-3)


def test_the_ub_clos_has_384_npus_at_392_gb_s_non_blocking():
    dies, npus = topology_from_dict(preset("cloudmatrix384")), topology_from_dict(preset("cloudmatrix384-npu"))
    assert (dies.num_devices, npus.num_devices) == (768, 384)
    assert (dies.leaves, npus.leaves) == (48, 48)                     # 48 nodes
    assert npus.devices_per_leaf == 8 and dies.devices_per_leaf == 16  # 8 NPUs, 2 dies each
    assert dies.link_bw_gbps * 2 == npus.link_bw_gbps == 392
    assert dies.oversubscription == npus.oversubscription == 1.0
    net = dies.build()
    across = net.equal_cost_paths(0, 767)
    assert len(across) == 16 and all(len(r) == 4 for r in across)
    assert len(net.equal_cost_paths(0, 15)[0]) == 2                  # within a node


def test_decode_fits_a_die_and_every_die_is_counted(decode):
    info = transformer_info(decode.main.system.workload)
    assert info.weight_bytes_per_device + info.kv_bytes_per_device < 64e9
    # 48 requests x (4,096 + 2) cached tokens x 576 BF16 latent elements x (61 + 1 MTP) layers
    assert info.kv_bytes_per_device == 48 * 4098 * 576 * 2 * 62
    part, _ = decode.main.replica
    assert part.physical_devices == 320 and len(part.devices) <= 3


# ---------------------------------------------------------------- MTP and the decode identity

def test_mtp_tokens_per_step_is_the_expected_accepted_tokens():
    assert MTPSpec(acceptance_rate=0.7).tokens_per_step == pytest.approx(1.7, abs=1e-15)
    assert MTPSpec(draft_tokens=3, acceptance_rate=0.5).tokens_per_step == pytest.approx(1.875)
    assert MTPSpec(draft_tokens=2, acceptance_rate=0.0).tokens_per_step == 1.0


def test_decode_identity_tokens_per_npu_is_batch_per_npu_over_tpot(decode):
    p = cm.decode_point(decode)
    assert p["batch_per_npu"] == 96
    assert p["tokens_per_s_per_npu"] == pytest.approx(p["batch_per_npu"] / p["tpot_s"], rel=1e-12)
    assert p["tpot_s"] == pytest.approx(p["step_s"] / 1.7, rel=1e-12)
    assert decode.main.metrics.tokens_per_iteration == pytest.approx(15360 * 1.7, rel=1e-12)


def test_mtp_verifies_two_tokens_and_runs_the_draft_layer():
    cfg = load_config(CONFIG_DIR / "cloudmatrix384-decode.yaml")
    w = cfg.main.workload.model_copy(update={"ep": 1, "batch": 4, "eplb": type(cfg.main.workload.eplb)()})
    with_mtp = build_transformer(w)
    without = build_transformer(w.model_copy(update={"mtp": None}))
    layers = {op.layer for op in with_mtp.ops}
    assert 61 in layers and 61 not in {op.layer for op in without.ops}
    assert with_mtp.op("lm_head").matmul.m == 8 and without.op("lm_head").matmul.m == 4
    assert with_mtp.op("mtp0.lm_head").matmul.m == 4 and with_mtp.op("mtp0.proj").matmul.k == 2 * 7168
    # the verified step does 2 tokens per request through the 61 layers
    assert with_mtp.op("L10.q_up").matmul.m == 2 * without.op("L10.q_up").matmul.m


def test_mtp_needs_decode_and_a_model_with_mtp_modules():
    cfg = CONFIG_DIR / "cloudmatrix384-decode.yaml"
    for change in (["workload.phase=prefill"], ["workload.model=deepseek-v3"]):
        with pytest.raises(Exception):
            load_config(cfg, change)


# ---------------------------------------------------------------- EPLB layout

def test_eplb_placement_conserves_tokens_and_fills_every_slot():
    rng = np.random.default_rng(0)
    counts = tuple(int(x) for x in rng.integers(100, 2000, 256))
    placed = expert_placement(counts, 288, 32)
    assert len(placed) == 288 and all(len(g) == 1 for g in placed)
    per_expert = {}
    for g in placed:
        for e, t in g:
            per_expert[e] = per_expert.get(e, 0) + t
    assert per_expert == dict(enumerate(counts))
    # the replicas go to the hottest experts: the largest load left is at most the largest count
    # over 1 copy and no less than a perfect split
    loads = [sum(t for _, t in g) for g in placed]
    assert sum(counts) / 288 <= max(loads) <= max(counts)
    assert max(loads) < max(counts)                      # the hottest expert was split


def test_eplb_balanced_layout_of_the_decode_config(decode):
    """EP320: 15,360 requests x 2 tokens x top-8 over 256 experts = 960 tokens each; 32 of them
    split over two dies (480), and each of the 32 shared-expert dies takes 30,720 / 32 = 960."""
    w = decode.main.system.workload
    part, _ = decode.main.replica
    ffn_tokens = set()
    for d in part.devices:
        for op in d.graph.ops:
            if op.name.startswith("L10.") and op.name.endswith(".up"):
                ffn_tokens.add(op.matmul.m)
    assert ffn_tokens == {960, 480}
    assert w.eplb.redundant_experts == 32 and w.eplb.shared_expert_groups == 32


# ---------------------------------------------------------------- physics

def test_no_task_of_the_decode_runs_faster_than_its_roofline(decode):
    sched, trace = decode.main.schedule, decode.main.trace
    for t in sched.tasks:
        if t.roofline_ns:
            assert trace.end_ns[t.id] - trace.start_ns[t.id] >= t.roofline_ns * (1 - 1e-9), t.name
    util = decode.main.metrics.utilization
    assert all(0 <= u <= 1 + 1e-9 for u in util.values())


def test_decode_step_is_above_the_weight_and_kv_read_floor(decode):
    """Every die reads its weights and its latent cache once per step at most at 1.6 TB/s."""
    info = transformer_info(decode.main.system.workload)
    floor_s = (info.weight_bytes_per_device + info.kv_bytes_per_device) / 1.6e12
    assert decode.main.metrics.iteration_latency_s > floor_s


# ---------------------------------------------------------------- dispatch / combine

def test_dispatch_closed_form_on_two_nodes_with_spraying():
    """32 dies on two nodes, every path sprayed: every die's port carries its S sent bytes (and
    receives S), the leaf uplinks less, so the all-to-all takes S / 196 GB/s plus a cross-node
    route's latency (4 links x 0.5 us), in the engine and in the alpha-beta estimate."""
    data = preset("cloudmatrix384") | {"routing": Routing(paths_per_flow=16)}
    topo = topology_from_dict(data)
    lowered = cm.ub_all_to_all(32, 1, topo)
    sent = cm.all_to_all_bytes_per_rank(32, 1)
    assert sent == 128 * 8 * 7168 * 31 / 32
    closed_ns = sent / 196 + 4 * 500
    assert estimated_time_ns(lowered) == pytest.approx(closed_ns, rel=1e-12)
    schedule = Schedule(resources={})
    add_coflows(schedule, lowered, "a2a")
    assert simulate(schedule).makespan_ns == pytest.approx(closed_ns, rel=1e-6)


def test_ep256_dispatch_and_combine_are_no_faster_than_the_link_rate():
    for elem, name in ((1, "dispatch"), (2, "combine")):
        sent = cm.all_to_all_bytes_per_rank(256, elem)
        ours_us = cm.ub_all_to_all_us(256, elem)
        assert ours_us * 1e3 >= sent / 196 + 4 * 500 - 1e-6, name
    assert cm.ub_all_to_all_us(256, 2) > cm.ub_all_to_all_us(256, 1)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("change, key", [
    ("workload.ep=300", "workload"),
    ("workload.mtp.acceptance_rate=1.5", "workload.mtp.acceptance_rate"),
    ("workload.eplb.shared_expert_groups=320", "workload"),
    ("workload.phase=prefill", "workload"),
    ("workload.ep=640", "workload"),
])
def test_bad_cloudmatrix_input_is_one_line_exit_2(tmp_path, change, key):
    run = subprocess.run([sys.executable, "-m", "hwsim.cli", "run",
                          str(CONFIG_DIR / "cloudmatrix384-decode.yaml"), "--set", change,
                          "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert run.returncode == 2, (change, run.stderr)
    assert len(run.stderr.strip().splitlines()) == 1 and key in run.stderr, run.stderr


def test_deepseek_r1_is_deepseek_v3_with_an_mtp_module():
    r1 = load_config(CONFIG_DIR / "cloudmatrix384-decode.yaml").main.workload.model
    v3 = load_config(CONFIG_DIR / "deepseek-v3-ep8-h200.yaml").main.workload.model
    assert r1.param_count() == v3.param_count() and r1.param_count(active=True) == v3.param_count(active=True)
    assert r1.mtp_modules == 1 and v3.mtp_modules == 0
    # the MTP module with the shared embedding and head is the checkpoint's 685B - 671B = 14B
    assert math.isclose((r1.mtp_params() + 2 * r1.vocab * r1.d_model) / 1e9, 14, rel_tol=0.05)
