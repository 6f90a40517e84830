"""Transformer training steps (issue 16, item 3, "Transformers too"; workloads/training.py's
transformer_training_graph and transformer_training_memory; configs/pulp-transformer-train.yaml):
closed forms of the backward pass (every linear layer and attention product costs 2x its forward
MACs), the saved activations and optimizer state against hand-counted tensors, every parameter
updated once, and the physics of the step on the PULP cluster."""
from __future__ import annotations

import functools

import pytest

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.hw.pulp import op_macs
from hwsim.pipeline import evaluate
from hwsim.workloads.models import ModelSpec
from hwsim.workloads.ops import OpKind, TrainStep
from hwsim.workloads.training import (OPTIMIZER_STATE_TENSORS, transformer_training_graph,
                                      transformer_training_memory)
from hwsim.workloads.transformer import TransformerWorkload, build_transformer
from conftest import assert_refused_in_one_line

CFG = CONFIG_DIR / "pulp-transformer-train.yaml"
T, D, H, FF, L = 64, 128, 2, 128, 2          # CCT-2/3x2's encoder on 64 tokens (the config)


@functools.cache
def result():
    return evaluate(load_config(CFG)).main


def cct():
    return load_config(CFG).main.workload


# a LLaMA-like block (RMSNorm, SwiGLU, RoPE, GQA, tied head) and a Falcon-like parallel one
LLAMA = dict(name="tiny-llama", source="test", n_layers=2, d_model=64, n_heads=4, n_kv_heads=2,
             d_ff=96, vocab=50, max_seq_len=32, norm="rmsnorm", ffn="swiglu", positions="rope",
             bias=False, tied_embeddings=True)
FALCON = dict(LLAMA, name="tiny-falcon", norm="layernorm", ffn="gelu", n_kv_heads=1,
              tied_embeddings=False, parallel_block=True)


def step(model: dict | None = None, optimizer="sgd", tokens=16, dtype="fp16"):
    w = cct() if model is None else TransformerWorkload(
        model=ModelSpec(**model), phase="prefill", batch=1, dtype=dtype,
        requests={"distribution": "fixed", "context_len": tokens})
    fwd = build_transformer(w)
    return fwd, transformer_training_graph(fwd, w.model, optimizer), \
        transformer_training_memory(fwd, w.model, optimizer), w.model


MODELS = [None, LLAMA, FALCON]


@pytest.mark.parametrize("model", MODELS, ids=["cct", "llama", "falcon"])
def test_backward_macs_are_twice_forward_for_every_product(model):
    fwd, g, _, _ = step(model)
    for op in fwd.ops:
        if op.kind == OpKind.MATMUL:
            back = g.op(f"{op.name}.input_grad").flops + g.op(f"{op.name}.weight_grad").flops
            mm = op.matmul
            assert op.flops == 2.0 * mm.m * mm.k * mm.n            # closed form of y = x W
            assert back == 2.0 * op.flops, op.name
        elif op.kind == OpKind.ATTENTION_SCORE:
            assert g.op(f"{op.name}.grad_q").flops + g.op(f"{op.name}.grad_k").flops == 2.0 * op.flops
        elif op.kind == OpKind.ATTENTION_CONTEXT:
            assert g.op(f"{op.name}.grad_p").flops + g.op(f"{op.name}.grad_v").flops == 2.0 * op.flops
    # so the step's MACs are three forward passes' exactly (no input is left without its gradient)
    forward = sum(op_macs(op) for op in fwd.ops)
    assert sum(op_macs(op) for op in g.ops) == 3 * forward


def test_cct_forward_macs_by_hand():
    """Per layer: qkv 3 T D^2, out_proj T D^2, FFN 2 T D FF, Q K^T and P V T^2 D each; the head
    one row of D x 10."""
    fwd, _, _, _ = step()
    layer = 4 * T * D * D + 2 * T * D * FF + 2 * T * T * D
    assert sum(op_macs(op) for op in fwd.ops) == L * layer + D * 10


@pytest.mark.parametrize("model", MODELS, ids=["cct", "llama", "falcon"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_every_parameter_is_updated_once_and_state_is_per_parameter(model, optimizer):
    _, g, mem, spec = step(model, optimizer)
    updates = [op for op in g.ops if op.step == TrainStep.UPDATE]
    assert sum(op.elements for op in updates) == spec.param_count()
    b = 2
    assert mem.weight_bytes == mem.grad_bytes == spec.param_count() * b
    assert mem.optimizer_state_bytes == spec.param_count() * b * OPTIMIZER_STATE_TENSORS[optimizer]
    assert {"sgd": 0, "momentum": 1, "adam": 2}[optimizer] == OPTIMIZER_STATE_TENSORS[optimizer]
    # each update runs after its weights' gradient
    for op in updates:
        assert any(g.op(p).step in (TrainStep.WEIGHT_GRAD, TrainStep.INPUT_GRAD) for p in g.predecessors(op.name))
    if model is LLAMA:                     # tied head: its gradient joins the embedding's update
        assert "lm_head.update" not in g and "lm_head.weight_grad" in g.predecessors("embed.update")


def test_saved_activations_are_the_hand_counted_tensors():
    """CCT (MHA, LayerNorm, GELU, learned positions), per layer: the residual x (norm1's input),
    its LayerNorm statistics (2 per row), norm1's output (qkv's input), Q, K, V, P (H T^2: read by
    both attention backward products, stored once), the attention output (out_proj's input), the
    residual after attention (norm2's input) and its statistics, norm2's output (FFN up's input),
    GELU's input and output (down's input); then the final norm's input and statistics and the
    head's one row."""
    _, _, mem, _ = step()
    #        x, norm1 out, Q, K, V, attn out, residual1, norm2 out  stats  P          GELU in, out
    layer = 8 * T * D + 2 * 2 * T + H * T * T + 2 * T * FF
    hand = L * layer + T * D + 2 * T + D
    assert mem.saved_activation_bytes == sum(mem.saved.values()) == hand * 2
    assert mem.total_bytes == (mem.weight_bytes + mem.grad_bytes + mem.optimizer_state_bytes
                               + mem.saved_activation_bytes + mem.transient_bytes)


def test_parallel_block_sums_the_two_gradients_of_its_norm():
    _, g, mem, _ = step(FALCON)
    s = g.op("L0.norm1.grad_sum")
    assert set(g.predecessors(s.name)) == {"L0.qkv.input_grad", "L0.ffn.up.input_grad"}
    assert s.flops == 16 * 64                  # one add per element
    # norm1's output is saved once for both qkv and ffn.up
    assert mem.saved["L0.norm1"] == 16 * 64 * 2
    # Q, K, V slices are concatenated into qkv's gradient, never summed
    assert "L0.qkv.grad_sum" not in g and "L0.rope.grad_sum" not in g
    assert set(g.predecessors("L0.rope.input_grad")) == {"L0.attn_score.grad_q", "L0.attn_score.grad_k"}
    assert set(g.predecessors("L0.qkv.input_grad")) == {"L0.rope.input_grad", "L0.attn_context.grad_v"}


def test_step_within_the_cluster_peak_and_its_roofline():
    r = result()
    spec = r.system.hardware.device(("pulp",)).spec("pulp")
    cycles = r.metrics.iteration_latency_s * spec.freq_mhz * 1e6
    macs = sum(op_macs(op) for op in r.graph.ops)
    assert macs / cycles <= spec.peak_macs_per_cycle("fp16")          # 4 FPUs x 2 FP16 lanes
    assert macs / cycles <= spec.peak_macs_per_cycle("fp16") * spec.matmul_efficiency + 1e-9
    lat_ns = r.metrics.iteration_latency_s * 1e9
    assert lat_ns >= sum(t.roofline_ns for t in r.schedule.tasks) * (1 - 1e-9)
    for u in r.metrics.utilization.values():
        assert 0.0 <= u <= 1.0 + 1e-9
    assert r.metrics.energy_j > 0 and r.metrics.work_unit == "step"
    moved = sum(op.weight_bytes + op.act_in_bytes + op.act_out_bytes + op.kv_read_bytes for op in r.graph.ops)
    assert r.metrics.bytes == {"l2": pytest.approx(moved, abs=1)}
    assert r.schedule.resident_bytes["l2"] == pytest.approx(r.graph.training_memory.total_bytes)


def test_adam_in_fp32_does_not_fit_vega_l2(tmp_path):
    """FP32 weights + gradients + two Adam moments = 4 x 841 kB > 1.5 MB: exit 2 naming 'l2'."""
    assert_refused_in_one_line(CFG, ["workload.dtype=fp32", "scenario.optimizer=adam"],
                               ["'l2'", "saved activations", "hardware.pulp.l2_kib"], tmp_path)


@pytest.mark.parametrize("override, key", [
    ("workload.phase=decode", "workload.phase"),
    ("workload.tp=2", "tp=2"),
    ("scenario.nm_sparsity={n: 2, m: 8}", "scenario.nm_sparsity"),
    ("workload.weight_dtype=int8", "workload.weight_dtype"),
    ("workload.lm_head=false", "workload.lm_head")])
def test_bad_transformer_training_inputs_exit_2(override, key, tmp_path):
    assert_refused_in_one_line(CFG, [override], [key], tmp_path)
