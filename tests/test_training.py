"""On-device training (issue 16, item 3): the training step's op graph (forward, gradients w.r.t.
inputs and weights, the update) against closed forms, the memory it keeps resident (saved
activations counted, capacity exceeded exits 2 naming the level), and the PULP cluster's physics."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.hw.pulp import op_macs
from hwsim.pipeline import evaluate
from hwsim.workloads.cnn import CNNBuilder, build_model
from hwsim.workloads.ops import DTYPE_BYTES, OpKind, TrainStep
from hwsim.workloads.training import (NORM_BACKWARD_FLOPS, NORM_FORWARD_FLOPS, OPTIMIZER_FLOPS,
                                      WEIGHT_KINDS, training_graph, training_memory)

R8 = CONFIG_DIR / "pulp-resnet8-train.yaml"
DS = CONFIG_DIR / "pulp-dscnn-train.yaml"


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


@pytest.fixture(scope="module")
def r8():
    return evaluate(load_config(R8))


def _by_step(graph, kind_filter=WEIGHT_KINDS):
    out = {s: 0.0 for s in TrainStep}
    for op in graph.ops:
        if op.kind in kind_filter:
            out[op.step] += op.flops
    return out


# --------------------------------------------------------------------------- the graph

@pytest.mark.parametrize("model", ["resnet8", "ds-cnn", "mobilenet_v2"])
def test_backward_flops_are_twice_forward_for_conv_and_fc(model):
    """Each conv / depthwise / FC layer: input gradient and weight gradient cost its forward MACs
    each, so backward = 2 x forward (closed form), the first layer's input gradient included."""
    fwd = build_model(model, dtype="fp32")
    g = training_graph(fwd, first_layer_input_grad=True)
    s = _by_step(g)
    forward = sum(op.flops for op in fwd.ops if op.kind in WEIGHT_KINDS)
    assert s[TrainStep.FORWARD] == pytest.approx(forward)
    assert s[TrainStep.INPUT_GRAD] == pytest.approx(forward)
    assert s[TrainStep.WEIGHT_GRAD] == pytest.approx(forward)
    # without the first layer's input gradient exactly that layer's MACs go
    g2 = training_graph(fwd)
    first = next(op for op in fwd.ops if op.kind in WEIGHT_KINDS)
    assert _by_step(g2)[TrainStep.INPUT_GRAD] == pytest.approx(forward - first.flops)


def test_one_conv_by_hand():
    """A single 3x3 conv, 8x8x4 -> 8x8x6: M = 64 x 36 x 6 MACs per pass; BN adds 8 + 9 FLOPs per
    output element; SGD 2 FLOPs per parameter (36 x 6 weights + 6 biases + 2 x 6 BN)."""
    b = CNNBuilder("one", 1, "fp32")
    b.conv(b.input(8, 8, 4), 6, 3, name="c")
    fwd = b.finish()
    g = training_graph(fwd, first_layer_input_grad=True)
    macs = 64 * 36 * 6
    convs = {op.step: op for op in g.ops if op.kind == OpKind.CONV}
    assert set(convs) == {TrainStep.FORWARD, TrainStep.INPUT_GRAD, TrainStep.WEIGHT_GRAD}
    for op in convs.values():
        assert op.flops == 2 * macs
    norms = {op.step: op.flops for op in g.ops if op.kind == OpKind.NORM}
    assert norms == {TrainStep.FORWARD: NORM_FORWARD_FLOPS * 64 * 6,
                     TrainStep.INPUT_GRAD: NORM_BACKWARD_FLOPS * 64 * 6}
    (upd,) = [op for op in g.ops if op.kind == OpKind.OPTIMIZER]
    assert upd.step == TrainStep.UPDATE and upd.flops == OPTIMIZER_FLOPS["sgd"] * (36 * 6 + 6)
    # the weight gradient writes one value per weight, the input gradient one per input element
    assert convs[TrainStep.WEIGHT_GRAD].act_out_bytes == (36 * 6 + 6) * 4
    assert convs[TrainStep.INPUT_GRAD].act_out_bytes == 8 * 8 * 4 * 4


def test_backward_follows_forward_and_updates_follow_their_gradients():
    g = training_graph(build_model("resnet8", dtype="fp16"))
    order = {op.name: i for i, op in enumerate(g.ops)}
    last_forward = max(i for op, i in zip(g.ops, range(len(g.ops))) if op.step == TrainStep.FORWARD)
    for op in g.ops:
        if op.step != TrainStep.FORWARD:
            assert order[op.name] > last_forward
        if op.step == TrainStep.UPDATE:
            assert any(g.op(p).step == TrainStep.WEIGHT_GRAD for p in g.predecessors(op.name))
    # the residual branch points sum two gradients
    sums = [op for op in g.ops if op.kind == OpKind.ELEMENTWISE and op.step == TrainStep.INPUT_GRAD]
    assert len(sums) == 3 and all(len(g.predecessors(op.name)) == 2 for op in sums)


def test_resnet8_norms_and_trainable_parameters():
    """MLPerf Tiny's ResNet-8 has 7 BatchNorms (none after the two 1x1 shortcuts); with their gamma
    and beta its trainable parameters are the released model's 78,186."""
    fwd = build_model("resnet8", dtype="fp32")
    g = training_graph(fwd)
    bns = [op for op in g.ops if op.kind == OpKind.NORM and op.step == TrainStep.FORWARD]
    assert len(bns) == 7
    mem = training_memory(fwd)
    assert mem.weight_bytes / 4 == 78186
    assert training_memory(fwd, norms="none").weight_bytes / 4 == 78186 - 480


def test_optimizer_state_and_flops():
    fwd = build_model("resnet8", dtype="fp32")
    n = {k: training_memory(fwd, k) for k in OPTIMIZER_FLOPS}
    w = n["sgd"].weight_bytes
    assert n["sgd"].optimizer_state_bytes == 0
    assert n["momentum"].optimizer_state_bytes == w
    assert n["adam"].optimizer_state_bytes == 2 * w
    flops = {k: sum(op.flops for op in training_graph(fwd, k).ops if op.kind == OpKind.OPTIMIZER)
             for k in OPTIMIZER_FLOPS}
    assert flops["adam"] / flops["sgd"] == pytest.approx(OPTIMIZER_FLOPS["adam"] / OPTIMIZER_FLOPS["sgd"])


# --------------------------------------------------------------------------- memory

def test_saved_activations_counted():
    """ResNet-8: every conv / FC / pool input and every BN input is saved once (a tensor read by
    two layers — a residual branch point — is stored once)."""
    fwd = build_model("resnet8", dtype="fp16")
    mem = training_memory(fwd)
    b = 2
    conv_inputs = {}
    for op in fwd.ops:
        if op.kind in WEIGHT_KINDS or op.kind == OpKind.POOL:
            key = tuple(fwd.predecessors(op.name)) or ("<input>",)
            conv_inputs[key] = op.act_in_bytes
    bn_inputs = sum(op.act_out_bytes for op in fwd.ops if op.folded_norm)
    assert mem.saved_activation_bytes == pytest.approx(sum(conv_inputs.values()) + bn_inputs)
    # the 32x32x3 image, and e.g. the 32x32x16 stem output (read by stack1.conv1 and the add) once
    assert mem.saved["<input>"] == 32 * 32 * 3 * b
    assert mem.saved["conv1"] == 32 * 32 * 16 * b
    no_bn = training_memory(fwd, norms="none")
    assert no_bn.saved_activation_bytes == pytest.approx(mem.saved_activation_bytes - bn_inputs)
    assert mem.grad_bytes == mem.weight_bytes


def test_resident_state_reported_in_l2(r8):
    plan = r8.main.graph.training_memory
    assert r8.main.schedule.resident_bytes["l2"] == pytest.approx(plan.total_bytes)
    assert r8.main.metrics.memory_levels["l2"]["resident_bytes"] == pytest.approx(plan.total_bytes)
    # FP32 doubles every resident byte
    fp32 = r8.baselines["fp32"].graph.training_memory
    assert fp32.total_bytes == pytest.approx(2 * plan.total_bytes)


def test_capacity_exceeded_exits_2_naming_the_level(tmp_path):
    """ResNet-8's FP16 step keeps ~696 kB resident: a 512 kB L2 refuses it, naming 'l2', what it
    holds and the capacity; the forward pass alone fits."""
    r = run(R8, "--set", "hardware.pulp={preset: pulp-vega, l2_kib: 512}", "--out", tmp_path / "a")
    assert r.exit_code == 2, r.output
    assert "'l2'" in r.output and "saved activations" in r.output and "512 kB" in r.output
    assert "hardware.pulp.l2_kib" in r.output
    r = run(R8, "--set", "hardware.pulp={preset: pulp-vega, l2_kib: 512}", "--set", "scenario={kind: pass}",
            "--set", "baselines={}", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    # Adam's two moments push FP32 past Vega's 1.5 MB
    r = run(R8, "--set", "workload.dtype=fp32", "--set", "scenario.optimizer=adam", "--set", "baselines={}",
            "--out", tmp_path / "c")
    assert r.exit_code == 2 and "'l2'" in r.output, r.output


@pytest.mark.parametrize("override, key", [
    ("scenario.optimizer=lion", "scenario"), ("scenario.norms=layer", "scenario"),
    ("mapper.name=mcu", "mapper"), ("workload.dtype=int8", "workload.dtype")])
def test_bad_training_inputs_exit_2(override, key, tmp_path):
    r = run(R8, "--set", override, "--set", "baselines={}", "--out", tmp_path)
    assert r.exit_code == 2, r.output
    assert key in r.output


# --------------------------------------------------------------------------- physics

@pytest.mark.parametrize("config", [R8, DS])
def test_physics_of_a_training_step(config):
    res = evaluate(load_config(config))
    for system in [res.main, *res.baselines.values()]:
        spec = system.system.hardware.device(("pulp",)).spec("pulp")
        dtype = system.graph.ops[0].dtype
        lat_ns = system.metrics.iteration_latency_s * 1e9
        macs = sum(op_macs(op) for op in system.graph.ops)
        # never faster than the FPU peak, nor than the roofline of its tasks
        assert lat_ns >= macs / (spec.peak_macs_per_cycle(dtype) / spec.cycle_ns)
        assert lat_ns >= sum(t.roofline_ns for t in system.schedule.tasks) * (1 - 1e-9)
        for u in system.metrics.utilization.values():
            assert 0.0 <= u <= 1.0 + 1e-9
        assert system.metrics.energy_j > 0
        assert system.metrics.work_unit == "step" and system.metrics.work_per_iteration == 1
        # bytes conserved: every op's operands cross the DMA once
        moved = sum(op.weight_bytes + op.act_in_bytes + op.act_out_bytes for op in system.graph.ops)
        assert system.metrics.bytes == {"l2": pytest.approx(moved, abs=1)}


def test_fp16_simd_at_most_doubles_throughput(r8):
    """Packed FP16 doubles the FPU's MACs but not the shape transforms: 1 < FP32 / FP16 < 2."""
    ratio = r8.baselines["fp32"].metrics.iteration_latency_s / r8.main.metrics.iteration_latency_s
    assert 1.0 < ratio < 2.0


def test_training_step_is_about_three_forward_passes(r8, tmp_path):
    """The step's conv / FC time is forward + two gradient passes of the same MACs: between 2x and
    3.5x the inference pass of the same network on the same cluster (norms, im2col of the
    gradients and the update add; the first layer's input gradient is skipped)."""
    from hwsim.pipeline import run_system
    from hwsim.serving.spec import PassSpec
    cfg = load_config(R8)
    inference = run_system(cfg.main.model_copy(update={"scenario": PassSpec()}))
    ratio = r8.main.metrics.iteration_latency_s / inference.metrics.iteration_latency_s
    assert 2.0 < ratio < 3.5


def test_training_scenario_refuses_transformers(tmp_path):
    r = run(CONFIG_DIR / "llama2-7b-prefill.yaml", "--set", "scenario.kind=training", "--out", tmp_path)
    assert r.exit_code == 2, r.output
    assert "training" in r.output


def test_dtype_bytes_scale_weights():
    for dtype in ("fp16", "fp32"):
        g = training_graph(build_model("ds-cnn", dtype=dtype))
        w = sum(op.weight_bytes for op in g.ops if op.step == TrainStep.FORWARD and op.kind in WEIGHT_KINDS)
        assert w == 22604 * DTYPE_BYTES[dtype]


# --------------------------------------------------------------------------- N:M sparse training (SAT)

SAT = CONFIG_DIR / "sat-nm-train.yaml"


def test_bdwp_prunes_forward_and_input_grad_only():
    g = training_graph(build_model("resnet8", dtype="fp16"), nm=(2, 8))
    for op in g.ops:
        if op.kind in (OpKind.CONV, OpKind.MATMUL):
            assert (op.nm == (2, 8)) == (op.step != TrainStep.WEIGHT_GRAD), op.name
        else:
            assert op.nm is None
    # the FLOPs of the graph are the dense ones: sparsity is the hardware's to exploit
    dense = training_graph(build_model("resnet8", dtype="fp16"))
    assert g.total("flops") == dense.total("flops")


def test_sparse_gemm_shortens_the_reduction_by_n_over_m():
    from dataclasses import replace

    from hwsim.hw.sat import gemm_cycles, gemm_shape
    spec = load_config(SAT).main.hardware.device(("sat",)).spec("sat")
    g = training_graph(build_model("resnet18", dtype="fp16"), nm=(2, 8))
    for op in g.ops:
        if op.conv is None or op.step == TrainStep.WEIGHT_GRAD:
            continue
        _, _, k, _ = gemm_shape(op)
        cyc, macs = gemm_cycles(spec, op)
        cyc_dense, macs_dense = gemm_cycles(spec, replace(op, nm=None))
        assert macs == pytest.approx(macs_dense * -(-k // 8) * 2 / k)
        assert cyc_dense / 4 <= cyc < cyc_dense          # never more than M/N = 4x, always faster
    no_datapath = spec.model_copy(update={"nm_sparse": False})
    op = next(op for op in g.ops if op.conv is not None)
    assert gemm_cycles(no_datapath, op) == gemm_cycles(no_datapath, replace(op, nm=None))


def test_sat_speedup_is_amdahl_bounded():
    """2:8 speeds up only the forward and input-gradient GEMMs, at most 4x each: the step's
    speed-up is at most 1 / ((1 - f) + f / 4) with f their share of the dense step."""
    res = evaluate(load_config(SAT))
    dense, sparse = res.baselines["dense"], res.main
    span = lambda r, pred: sum(r.trace.end_ns[t.id] - r.trace.start_ns[t.id]  # noqa: E731
                               for t in r.schedule.tasks if pred(r.graph.op(t.op)))
    f = span(dense, lambda op: op.conv is not None and op.step != TrainStep.WEIGHT_GRAD and op.conv.groups == 1
             or (op.matmul is not None and op.step != TrainStep.WEIGHT_GRAD)) / (dense.metrics.iteration_latency_s * 1e9)
    speedup = dense.metrics.iteration_latency_s / sparse.metrics.iteration_latency_s
    assert 1.0 < speedup <= 1 / ((1 - f) + f / 4) * (1 + 1e-9)


def test_bad_nm_exits_2(tmp_path):
    r = run(SAT, "--set", "scenario.nm_sparsity={n: 4, m: 2}", "--set", "baselines={}", "--out", tmp_path)
    assert r.exit_code == 2 and "N <= M" in r.output, r.output
