"""Hardwired-neurons LPU (issue 15, item 2): hwsim/hw/hnlpu.py, the `hnlpu_pipeline` mapper, the
gpt-oss-120b workload (MXFP4 weights, alternating sliding-window attention).

Weights are never read (the only bytes at the memories are KV entries and embedding rows, in
closed form), capacities (KV in the Attention Buffers then HBM, the 216 slots), no task faster
than its own roofline and the pass no faster than its busiest resource, the area and cost closed
forms against the paper's own arithmetic (62 dies, 43% yield, 60 of 70 masks shared), and every
refusal exits 2 with one line."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR, MODELS_DIR
from hwsim.errors import ConfigError
from hwsim.hw.hnlpu import (BUFFER_LEVEL, COL_PORTS, HBM_LEVEL, ROW_PORTS, all_gather_egress,
                            all_reduce_egress, chip_area_mm2, dies_per_wafer, economics, hardwired_weights,
                            hardwired_weights_total, hn_ns, murphy_yield, reduce_egress)
from hwsim.mappers.hnlpu import busy_by_bound, kv_placement
from hwsim.pipeline import evaluate
from hwsim.workloads.models import ModelSpec
from hwsim.workloads.ops import MXFP4_BITS_PER_WEIGHT, OpKind, WEIGHT_DTYPE_BYTES
from hwsim.workloads.transformer import TransformerWorkload, _Builder

CONFIG = CONFIG_DIR / "hnlpu-gpt-oss-120b.yaml"
# a short pass for the structural tests: 16 sequences, 2 groups
SMALL = ["workload.batch=16", "mapper.groups=2"]


@pytest.fixture(scope="module")
def full():
    return evaluate(load_config(CONFIG)).main


@pytest.fixture(scope="module")
def small():
    return evaluate(load_config(CONFIG, SMALL)).main


def spec_of(r):
    return r.system.hardware.specs("hnlpu")[0]


def gpt_oss() -> ModelSpec:
    return ModelSpec(**yaml.safe_load((MODELS_DIR / "gpt-oss-120b.yaml").read_text()))


# ---- the workload: MXFP4 and sliding windows ---------------------------------------------------

def test_mxfp4_is_4_25_bits_per_weight():
    assert MXFP4_BITS_PER_WEIGHT == 4.25 and WEIGHT_DTYPE_BYTES["mxfp4"] == 4.25 / 8


def test_gpt_oss_sizes_and_windows():
    m = gpt_oss()
    assert m.param_count() == pytest.approx(116.83e9, rel=1e-3)
    assert m.param_count(active=True) - m.vocab * m.d_model == pytest.approx(5.13e9, rel=1e-3)
    assert [m.window(i) for i in range(4)] == [128, None, 128, None]
    assert m.attended(0, 2049) == 128 and m.attended(1, 2049) == 2049
    # FLOPs per token: the attention term counts 128 tokens in the 18 sliding layers
    full = m.model_copy(update={"sliding_window": None})
    diff = full.flops_per_token(2048) - m.flops_per_token(2048)
    assert diff == pytest.approx(2.0 * m.n_heads * 2 * m.hd * 18 * (2048 - 128))


def test_sliding_window_caps_kv_bytes_and_attention_in_the_graph():
    m = gpt_oss()
    w = TransformerWorkload(model=m, phase="decode", batch=2, dtype="bf16", weight_dtype="mxfp4",
                            requests={"distribution": "fixed", "context_len": 1000})
    g = _Builder(w).build()
    per_token_layer = 2 * m.kv_heads * m.hd * 2                 # K and V, bf16
    assert g.info.kv_bytes_per_device == 2 * per_token_layer * (18 * 128 + 18 * 1001)
    ops = {op.name: op for op in g.ops}
    for i, ctx in ((0, 128), (1, 1001)):
        s = ops[f"L{i}.attn_score"]
        assert s.attention.context_lens == (ctx, ctx)
        assert s.kv_read_bytes == 2 * ctx * m.kv_heads * m.hd * 2
        assert s.flops == 2.0 * m.n_heads * m.hd * 2 * ctx
    # MXFP4 weights: an expert's up projection (k 2880, n 5760, with bias) at 4.25 bits
    up = next(op for op in g.ops if op.expert is not None and op.name.endswith(".up"))
    assert up.weight_bytes == math.ceil((2880 * 5760 + 5760) * 4.25 / 8)
    # the embedding table keeps bf16, the rest 4.25 bits
    table = m.vocab * m.d_model
    assert g.info.weight_bytes_per_device == math.ceil((m.param_count() - table) * 4.25 / 8) + 2 * table


def test_a_window_with_latent_attention_is_refused():
    data = yaml.safe_load((MODELS_DIR / "deepseek-v3.yaml").read_text())
    with pytest.raises(ValueError, match="sliding_window"):
        ModelSpec(**data, sliding_window=128)


# ---- weights in metal ----------------------------------------------------------------------------

def test_no_weight_byte_is_read(full):
    """The memories serve only KV entries (split between the buffers and HBM by the placement) and
    the embedding rows the tokens look up: closed form, no weight term."""
    g, s = full.graph, spec_of(full)
    kv_read = sum(op.kv_read_bytes + op.kv_write_bytes for op in g.ops)
    embed = sum(op.act_out_bytes for op in g.ops if op.kind == OpKind.EMBEDDING)
    moved = full.metrics.bytes
    share = kv_placement(s, g.info.kv_bytes_per_device)
    assert moved[BUFFER_LEVEL] == pytest.approx(kv_read * share, rel=1e-9)
    assert moved[HBM_LEVEL] == pytest.approx(kv_read * (1 - share) + embed, rel=1e-9)
    assert all(t.level in ("", HBM_LEVEL) for t in full.schedule.tasks)
    assert all(not t.level or t.datapath == "embedding" for t in full.schedule.tasks)
    # the graph's weights (62 GB at MXFP4) would dwarf what moved
    assert moved[HBM_LEVEL] + moved[BUFFER_LEVEL] < g.info.weight_bytes_per_device / 2


def test_capacities(full, small):
    s = spec_of(full)
    assert s.slots == 216
    kv = full.graph.info.kv_bytes_per_device
    # 216 x 2,048 tokens of KV: more than the 16 x 320 MB buffers, the rest in HBM
    assert kv > s.buffer_bytes_per_chip * s.chips
    assert kv_placement(s, kv) == pytest.approx(s.buffer_bytes_per_chip * s.chips / kv)
    assert full.schedule.resident_bytes[BUFFER_LEVEL] == pytest.approx(s.buffer_bytes_per_chip * s.chips)
    # 16 sequences fit the buffers entirely
    assert kv_placement(s, small.graph.info.kv_bytes_per_device) == 1.0
    assert small.metrics.bytes.get(HBM_LEVEL, 0.0) == pytest.approx(
        sum(op.act_out_bytes for op in small.graph.ops if op.kind == OpKind.EMBEDDING))
    assert small.metrics.bytes[BUFFER_LEVEL] == pytest.approx(
        sum(op.kv_read_bytes + op.kv_write_bytes for op in small.graph.ops))


def test_no_task_beats_its_roofline_nor_the_pass_its_busiest_resource(full):
    d = full.trace.end_ns - full.trace.start_ns
    for t in full.schedule.tasks:
        assert d[t.id] >= t.roofline_ns * (1 - 1e-9) - 4 * np.spacing(full.trace.end_ns[t.id]), t.name
    assert full.trace.makespan_ns >= max(busy_by_bound(full.schedule).values()) * (1 - 1e-9)
    assert full.trace.makespan_ns >= full.metrics.roofline_bound_s * 1e9 * (1 - 1e-9)


def test_port_bytes_are_the_dataflow_closed_form(small):
    """Per token and layer, the column ports carry the Q all-reduce and K/V reduces, the softmax
    statistics and partial outputs, the W_o all-gather and the MoE all-reduce; the row ports the
    W_o and MoE all-reduces; plus the logits' all-gather once per token."""
    m, s = gpt_oss(), spec_of(small)
    R, C, n, ab, d = s.grid_rows, s.grid_cols, s.chips, 2, m.d_model
    T = small.graph.info.tokens
    hq, hkv = m.n_heads // C * m.hd, m.kv_heads // C * m.hd
    col = (all_reduce_egress(R, hq * ab) + 2 * reduce_egress(R, hkv * ab)
           + all_reduce_egress(R, m.n_heads // C * 2 * ab) + all_reduce_egress(R, hq * ab)
           + all_gather_egress(R, d // R * ab) + all_reduce_egress(R, d * ab))
    row = all_reduce_egress(C, d // R * ab) + all_reduce_egress(C, d * ab)
    chunk = math.ceil(m.vocab / n) * ab
    col_total = T * (m.n_layers * col + all_gather_egress(R, C * chunk))
    row_total = T * (m.n_layers * row + all_gather_egress(C, chunk))
    work = {r: sum(t.demands.get(r, 0.0) for t in small.schedule.tasks) for r in (ROW_PORTS, COL_PORTS)}
    assert work[COL_PORTS] == pytest.approx(col_total, rel=1e-9)
    assert work[ROW_PORTS] == pytest.approx(row_total, rel=1e-9)


def test_hn_blocks_are_bit_serial():
    s = load_config(CONFIG).main.hardware.specs("hnlpu")[0]
    busy, lat = hn_ns(s, 10, 2880)
    assert busy == 10 * s.activation_bits / s.clock_ghz
    assert lat == (s.activation_bits + 12) / s.clock_ghz        # ceil(log2 2880) = 12


def test_more_groups_never_slow_the_pass():
    """Groups only add overlap (the pipeline's): the step is no longer with more of them."""
    t = [evaluate(load_config(CONFIG, ["workload.batch=16", f"mapper.groups={g}"])).main.trace.makespan_ns
         for g in (1, 4)]
    assert t[1] <= t[0] * (1 + 1e-9)


# ---- area and economics --------------------------------------------------------------------------

def test_area_closed_form(full):
    s, m = spec_of(full), gpt_oss()
    w = hardwired_weights(m)
    total_w = w["layers"] + 15 * w["router_copies"] + w["unembedding"]
    assert hardwired_weights_total(s) == total_w
    per_weight = 200 / 138e6 / 15
    a = chip_area_mm2(s)
    assert a["hn_array"] == pytest.approx(total_w / 16 * per_weight)
    assert a["attention_buffer"] == pytest.approx(136.11, rel=1e-4)
    assert full.metrics.area_mm2 == pytest.approx(16 * sum(a.values()))


def test_wafer_arithmetic_is_the_papers():
    """[HN] Appendix B note 3: 62 dies of 827 mm2 per 300 mm wafer, 43% Murphy yield (D0 0.11)."""
    assert dies_per_wafer(827.08, 300) == 62
    assert murphy_yield(827.08, 0.11) == pytest.approx(0.43, abs=0.005)
    assert murphy_yield(827.08, 0.0) == 1.0


def test_economics_arithmetic(full):
    s = spec_of(full)
    e = s.economics
    area = sum(chip_area_mm2(s).values())
    power, tok = 5000.0, 250000.0
    c = economics(s, e, area, power, tok)
    units = 58 + 12 * 6
    assert c.mask_shared_usd == pytest.approx((15e6 * 120 / units, 30e6 * 120 / units))
    assert c.mask_embedding_usd == pytest.approx((16 * 15e6 * 10 / units, 16 * 30e6 * 10 / units))
    # [HN] Table 5: shared masks $13.85M-27.69M, embedding masks $18.46M-36.92M
    assert c.mask_shared_usd[1] == pytest.approx(27.69e6, rel=1e-3)
    assert c.mask_embedding_usd[1] == pytest.approx(36.92e6, rel=1e-3)
    good = dies_per_wafer(area, 300) * murphy_yield(area, 0.11)
    assert c.die_usd == pytest.approx(16988 / good)
    hours = 3 * 365 * 24
    capex_lo = c.mask_shared_usd[0] + c.mask_embedding_usd[0] + 26.87e6 + 16 * c.recurring_usd_per_chip[0] \
        + 12e6 * power * 1.4 / 1e6
    assert c.initial_capex_usd[0] == pytest.approx(capex_lo)
    energy_kwh = power * 1.4 / 1e3 * hours
    assert c.cost_per_mtoken_usd[0] == pytest.approx(
        (capex_lo + energy_kwh * 0.095) / (tok * hours * 3600 / 1e6))
    assert c.carbon_tco2e == pytest.approx((16 * 124.9 + energy_kwh * 0.38) / 1e3)
    # re-spin: only the embedding masks and the chips again ([HN] 3.2)
    assert c.respin_usd[0] == pytest.approx(c.mask_embedding_usd[0] + 16 * c.recurring_usd_per_chip[0])


# ---- refusals ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("workload.batch=217", "exceeds the 216 sequences"),
    ("workload.model=mixtral-8x7b", "hardwires gpt-oss-120b"),
    ("hardware.hnlpu.model=nope", "no model 'nope'"),
    ("hardware.hnlpu.model=llama3-8b", "Mixture-of-Experts"),
    ("hardware.hnlpu.grid_rows=3", "grid_rows x grid_cols"),
    ("hardware.hnlpu.chips=256", "must divide the model's 128 experts"),
    ("hardware.hnlpu.clock_ghz=-1", "clock_ghz"),
    ("workload.tp=2", "tp=2"),
    ("hardware.hnlpu.economics.mask_set_usd=[3e7, 1e7]", "mask_set_usd"),
])
def test_bad_inputs_exit_2(override, message):
    r = CliRunner().invoke(main, ["run", str(CONFIG), "--set", override, "--set", "workload.batch=8"
                                  if not override.startswith("workload.batch") else override])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_kv_that_fits_nowhere_is_refused():
    with pytest.raises(ConfigError, match="does not fit one device: KV cache 17.3"):
        evaluate(load_config(CONFIG, ["hardware.hnlpu.hbm_gb_per_stack=0.001"]))


def test_the_mappers_own_kv_check():
    from hwsim.mappers.placement import PlacementError
    s = load_config(CONFIG).main.hardware.specs("hnlpu")[0]
    cap = (s.buffer_bytes_per_chip + s.hbm_bytes_per_chip) * s.chips
    assert kv_placement(s, cap) == pytest.approx(s.buffer_bytes_per_chip / (s.buffer_bytes_per_chip + s.hbm_bytes_per_chip))
    with pytest.raises(PlacementError, match="exceeds the Attention Buffers and HBM"):
        kv_placement(s, cap * 1.01)


# ---- MXFP4 and the hardwired neuron's arithmetic (--check) ------------------------------------------

def test_mxfp4_quantization():
    from hwsim.hw.kernels.mxfp4 import VALUES, dequantize_mxfp4, quantize_mxfp4
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 8)) * np.exp2(rng.integers(-6, 6, size=(1, 8)))
    codes, exp = quantize_mxfp4(w)
    assert codes.max() < 16 and exp.shape == (2, 8)
    d = dequantize_mxfp4(codes, exp)
    blocks = w.reshape(2, 32, 8)
    amax = np.abs(blocks).max(axis=1)
    # each block's scale puts its largest element in [4, 8): E2M1's top binade, clamped at 6
    assert np.all((amax / np.exp2(exp) >= 4) & (amax / np.exp2(exp) < 8))
    # every element within half the E2M1 step of its binade (at most 1 x scale, the 4-6 step), or
    # clamped at 6 (at most 2 x scale below 8)
    scaled = np.abs(blocks) / np.exp2(exp)[:, None, :]
    err = np.abs(d - w).reshape(2, 32, 8) / np.exp2(exp)[:, None, :]
    assert np.all(err[scaled <= 6] <= 1.0 + 1e-12) and np.all(err <= 2.0 + 1e-12)
    assert np.all(np.abs(d.reshape(2, 32, 8))[scaled > 6] == 6 * np.exp2(exp)[:, None, :].repeat(32, 1)[scaled > 6])
    assert set(np.unique(np.abs(VALUES[codes]))) <= set(np.abs(VALUES))
    with pytest.raises(ValueError, match="multiple of the MX block"):
        quantize_mxfp4(np.ones((33, 2)))


def test_bit_serial_hardwired_product_is_exact():
    from hwsim.hw.kernels.mxfp4 import dequantize_mxfp4, hn_bit_serial_gemm, quantize_mxfp4
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(5, 96))
    x[0, :] = -128                                     # the MSB's negative weight
    codes, exp = quantize_mxfp4(rng.standard_normal((96, 7)))
    ref = x.astype(float) @ dequantize_mxfp4(codes, exp)
    assert np.array_equal(hn_bit_serial_gemm(x, codes, exp, 8), ref)
    # reading the MSB as positive (an unsigned input) is caught
    assert not np.array_equal(hn_bit_serial_gemm(x & 0xFF, codes, exp, 9), ref)


def test_check_runs_the_hardwired_kernel():
    r = CliRunner().invoke(main, ["run", str(CONFIG), "--set", "workload.batch=4", "--check"])
    assert r.exit_code == 0, r.output
    assert "hardwired neurons" in r.output and "int8 x mxfp4 -> exact" in r.output


def test_wafer_pipeline_keeps_idle_experts_in_their_layer():
    """A batch-1 MoE graph has ops for the 4 routed experts only; the wafer pipeline still keeps all
    128 experts of a layer in that layer's region (the WSE-3 baseline of HNLPU's Table 2)."""
    from hwsim.mappers.wafer import moe_idle_expert_bytes, op_groups
    r = evaluate(load_config(CONFIG_DIR / "wse3-gpt-oss-120b.yaml")).main
    g, m = r.graph, gpt_oss()
    idle = moe_idle_expert_bytes(g)
    expert = math.ceil((2880 * 5760 + 5760) * 4.25 / 8) + math.ceil((2880 * 2880 + 2880) * 4.25 / 8)
    routed = {op.expert for op in g.ops if op.layer == 0 and op.expert is not None and op.expert >= 0}
    assert idle[0] == (m.moe.n_experts - len(routed)) * expert
    _, resident = op_groups(g)
    kv = sum(op.kv_read_bytes + op.kv_write_bytes for op in g.ops)      # the wafer mapper's KV count
    assert sum(resident.values()) == pytest.approx(g.info.weight_bytes_per_device + kv)
    # the embedding group holds the bf16 table (and the norms' gains), not the idle experts
    assert resident["embed"] == pytest.approx(m.vocab * m.d_model * 2, rel=1e-3)


def test_prefill_runs_on_the_same_hardware():
    """A prefill pass: every prompt token through the HN blocks, attention over the prompt."""
    r = evaluate(load_config(CONFIG, ["workload.phase=prefill", "workload.batch=2",
                                      "workload.requests.context_len=256"])).main
    assert r.metrics.throughput_tokens_per_s > 0
    qkv = next(t for t in r.schedule.tasks if t.op == "L0.qkv")
    s = spec_of(r)
    assert qkv.roofline_ns == pytest.approx(256 * s.activation_bits / s.clock_ghz)   # 1 of 2 groups: 256 tokens
