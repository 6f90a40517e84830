"""AttAcc (hwsim.hw.attacc, mappers/attacc.py, configs/attacc.yaml): the HBM3-PIM's bandwidth
closed forms, where each op ran, the KV read in the banks, the interface traffic, placement
errors, and the validate rows."""
import functools

import numpy as np
import pytest

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.hw.attacc import AttAccSpec
from hwsim.hw.pim import PIMSpec, comp_slot_cycles, internal_bw_gbps_per_channel
from hwsim.workloads.ops import OpKind

CONFIG = CONFIG_DIR / "attacc.yaml"


@functools.cache
def run(*overrides):
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG, list(overrides))).main


def test_internal_bandwidth_closed_form_and_bank_limit():
    """64 banks x 16 FP16 MACs x 2 B per nCCDAB = 6 cycles of 0.769 ns = 443.9 GB/s per channel;
    never more than every bank handing one burst per tCCD_L (what the banks provide)."""
    for pim in (AttAccSpec(), AttAccSpec(comp_interval_cycles=4), PIMSpec()):
        t = pim.dram
        bw = internal_bw_gbps_per_channel(pim, 2)
        assert bw == pytest.approx(t.banks_per_channel * pim.macs_per_bank * 2
                                   / (comp_slot_cycles(pim) * t.tck_ns), rel=1e-12)
        banks_provide = t.banks_per_channel * t.burst_bytes / (t.cycles(t.tccd_l_ns) * t.tck_ns)
        assert bw <= banks_provide * (1 + 1e-12)
    pim = AttAccSpec()
    assert pim.dram.banks_per_channel == 64
    assert internal_bw_gbps_per_channel(pim, 2) == pytest.approx(64 * 32 / (6 * 0.769), rel=1e-12)
    # power limit: 10.7x the channel's external bandwidth (the simulator's analytical mode: 9x)
    assert internal_bw_gbps_per_channel(pim, 2) / pim.dram.peak_bw_gbps_per_channel == \
        pytest.approx(10.67, abs=0.01)


def _tasks(r):
    return r.schedule.tasks


def test_ops_run_where_attacc_puts_them():
    r = run()
    kinds = {op.name: op.kind for op in r.graph.ops}
    for t in _tasks(r):
        kind = kinds.get(t.op)
        if t.component == "attacc":
            assert kind in (OpKind.ATTENTION_SCORE, OpKind.SOFTMAX, OpKind.ATTENTION_CONTEXT), t.name
        elif kind in (OpKind.MATMUL, OpKind.NORM, OpKind.ELEMENTWISE):
            assert t.component == "gpu", t.name
    assert {t.component for t in _tasks(r)} >= {"gpu", "attacc", "link"}


def test_kv_read_in_the_banks_is_the_attention_ops_kv():
    r = run()
    kv_ops = sum(op.kv_read_bytes for op in r.graph.ops if op.attention is not None)
    in_banks = sum(t.bytes_by_level.get("pim_internal", 0.0) for t in _tasks(r))
    assert kv_ops > 0
    assert in_banks == pytest.approx(kv_ops, rel=1e-9)
    # the GPU reads no KV: its HBM bytes are the weights (and activations), far below weights + KV
    hbm = sum(t.bytes_by_level.get("hbm", 0.0) for t in _tasks(r))
    weights = sum(op.weight_bytes for op in r.graph.ops)
    assert weights <= hbm < weights + kv_ops


def test_interface_carries_query_new_kv_and_output():
    r = run()
    a = next(op.attention for op in r.graph.ops if op.kind == OpKind.ATTENTION_SCORE)
    tokens = float(np.sum(a.query_array))
    per_layer = tokens * (a.heads + 2 * a.kv_heads + a.heads) * a.head_dim * 2
    moved = sum(t.bytes_by_level.get("attacc_interface", 0.0) for t in _tasks(r))
    assert moved == pytest.approx(per_layer * r.graph.info.n_layers, rel=1e-9)


def test_placement_kv_in_the_stacks_weights_in_the_gpu():
    r = run()
    res = r.schedule.resident_bytes
    assert res["attacc"] == r.graph.info.kv_bytes_per_device
    assert res["hbm"] == r.graph.info.weight_bytes_per_device


def test_kv_too_large_for_the_stacks_is_a_config_error():
    """72 requests fit the device (GPU HBM + stacks) but their KV (89.7 GB) not the stacks."""
    from hwsim.input_error import ConfigError
    with pytest.raises(ConfigError, match="AttAcc stacks"):
        run("workload.batch=72")


def test_power_limit_slows_attention():
    """nCCDAB 4 (no power limit) streams MACs faster than 6: the PIM's busy time shrinks."""
    busy = {}
    for cycles in (4, 6):
        r = run(f"hardware.attacc.comp_interval_cycles={cycles}")
        busy[cycles] = sum(r.trace.end_ns[t.id] - r.trace.start_ns[t.id]
                           for t in _tasks(r) if t.component == "attacc" and t.datapath == "pim")
    assert busy[4] < busy[6]


def test_validate_rows_exist():
    from hwsim.validate import REGISTRY, all_claims
    all_claims()
    for cid in ("attacc.speedup_over_gpu_same_capacity",
                "attacc.energy_efficiency_over_gpu_same_capacity", "attacc.internal_bandwidth"):
        assert cid in REGISTRY
    assert REGISTRY["attacc.speedup_over_gpu_same_capacity"].published == 2.81
    assert REGISTRY["attacc.energy_efficiency_over_gpu_same_capacity"].published == 2.67
