"""ONNX import: small models built in memory with onnx.helper (no downloads); MAC counts equal
hand counts, graph edges follow the data, unsupported ops are named."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwsim.errors import ConfigError  # noqa: E402
from hwsim.pipeline import evaluate  # noqa: E402
from hwsim.workloads.onnx_import import SUPPORTED, import_onnx  # noqa: E402
from hwsim.workloads.ops import OpKind  # noqa: E402


def init(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def model(nodes, inputs, outputs, initializers, opset=17):
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(m)
    return m


def two_conv_cnn(batch_dim="N"):
    """x[N,3,32,32] -> conv 3x3 (8) -> BN -> ReLU -> conv 3x3/2 (16) -> depthwise 3x3 (16)
    -> MaxPool 2/2 -> GlobalAveragePool -> Flatten -> Gemm (16 -> 10)."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], name="dw3", group=16, pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c3"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    inits = [init("w1", 8, 3, 3, 3), init("b1", 8), init("s", 8), init("bb", 8), init("m", 8),
             init("v", 8), init("w2", 16, 8, 3, 3), init("w3", 16, 1, 3, 3), init("wf", 10, 16),
             init("bf", 10)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, 10])
    return model(nodes, [x], [y], inits)


def test_two_conv_cnn_mac_counts():
    g = import_onnx(two_conv_cnn(), batch=2)
    ops = {op.name: op for op in g.ops}
    # hand counts per image: conv1 32*32 pixels x 8 filters x 27; conv2 16*16 x 16 x 72;
    # depthwise 16*16 x 16 x 9; fc 16 x 10
    per_image = {"conv1": 32 * 32 * 8 * 27, "conv2": 16 * 16 * 16 * 72, "dw3": 16 * 16 * 16 * 9,
                 "fc": 16 * 10}
    for name, macs in per_image.items():
        assert ops[name].flops == 2 * 2 * macs, name
    assert ops["conv1"].kind == OpKind.CONV and ops["dw3"].kind == OpKind.DEPTHWISE_CONV
    assert ops["dw3"].conv.groups == 16 and ops["conv2"].conv.stride == 2
    assert ops["fc"].matmul.m == 2 and ops["fc"].weight_bytes == (160 + 10) * 2
    assert ops["conv1"].weight_bytes == (8 * 27 + 8) * 2 and ops["conv2"].weight_bytes == 16 * 72 * 2
    assert ops["pool"].kind == OpKind.POOL and ops["pool"].elements == 2 * 16 * 8 * 8
    assert ops["gap"].flops == 2 * 16 * 8 * 8
    assert ops["bn1"].kind == OpKind.ELEMENTWISE and ops["bn1"].weight_bytes == 4 * 8 * 2
    assert "flatten" not in ops                                    # shape only
    assert g.predecessors("fc") == ["gap"] and g.predecessors("relu1") == ["bn1"]
    assert (g.info.phase, g.info.batch, g.info.tokens, g.info.n_layers) == ("inference", 2, 2, 4)


def transformer_block(tokens=16, d=64, ff=256):
    """Single-head attention and an MLP on x[1, T, d]:
    q,k,v = x Wq, x Wk, x Wv; s = softmax(q k^T); a = s v; h = x + a Wo; y = LN(h + W2 relu(W1 h))."""
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="q"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="k"),
        helper.make_node("MatMul", ["x", "wv"], ["v"], name="v"),
        helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="score"),
        helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["a"], name="context"),
        helper.make_node("MatMul", ["a", "wo"], ["o"], name="out_proj"),
        helper.make_node("Add", ["x", "o"], ["h"], name="residual1"),
        helper.make_node("MatMul", ["h", "w1"], ["u"], name="up"),
        helper.make_node("Relu", ["u"], ["ur"], name="act"),
        helper.make_node("MatMul", ["ur", "w2"], ["dn"], name="down"),
        helper.make_node("Add", ["h", "dn"], ["h2"], name="residual2"),
        helper.make_node("LayerNormalization", ["h2", "g", "b"], ["y"], name="ln", axis=-1),
    ]
    inits = [init("wq", d, d), init("wk", d, d), init("wv", d, d), init("wo", d, d),
             init("w1", d, ff), init("w2", ff, d), init("g", d), init("b", d)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, tokens, d])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, tokens, d])
    return model(nodes, [x], [y], inits)


def test_transformer_block_mac_counts():
    T, d, ff = 16, 64, 256
    g = import_onnx(transformer_block(T, d, ff))
    ops = {op.name: op for op in g.ops}
    for name in ("q", "k", "v", "out_proj"):
        assert ops[name].flops == 2 * T * d * d and ops[name].weight_bytes == d * d * 2
    assert ops["up"].flops == 2 * T * d * ff and ops["down"].flops == 2 * T * ff * d
    assert ops["score"].flops == 2 * T * T * d and ops["score"].weight_bytes == 0   # q k^T
    assert ops["context"].flops == 2 * T * T * d and ops["context"].weight_bytes == 0
    total = sum(op.flops for op in g.ops if op.kind == OpKind.MATMUL) / 2
    assert total == 4 * T * d * d + 2 * T * d * ff + 2 * T * T * d
    assert ops["softmax"].kind == OpKind.SOFTMAX and ops["softmax"].elements == T * T
    assert ops["ln"].kind == OpKind.NORM and ops["ln"].weight_bytes == 2 * d * 2
    assert sorted(g.predecessors("score")) == ["k", "q"]          # through the Transpose
    assert sorted(g.predecessors("residual2")) == ["down", "residual1"]
    assert ops["residual1"].act_in_bytes == 2 * T * d * 2


def test_unsupported_op_names_node_and_list():
    nodes = [helper.make_node("Erf", ["x"], ["y"], name="gelu_erf")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    with pytest.raises(ConfigError) as exc:
        import_onnx(model(nodes, [x], [y], []))
    text = str(exc.value)
    assert "'gelu_erf'" in text and "'Erf'" in text and "Conv" in text and "LayerNormalization" in text
    assert all(op in text for op in SUPPORTED)


def test_fixed_batch_and_missing_file(tmp_path):
    m = two_conv_cnn(batch_dim=4)
    assert import_onnx(m).info.batch == 4
    with pytest.raises(ConfigError, match="fixed batch of 4"):
        import_onnx(m, batch=2)
    with pytest.raises(ConfigError, match="not found"):
        import_onnx(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot read ONNX"):
        import_onnx(tmp_path / "junk.onnx")


def test_onnx_config_runs(tmp_path):
    onnx.save(two_conv_cnn(), tmp_path / "net.onnx")
    (tmp_path / "c.yaml").write_text(
        "name: onnx-test\nworkload: {kind: cnn, onnx: net.onnx, batch: 3}\n"
        "hardware:\n  npu: {rows: 16, cols: 16, freq_ghz: 1.0, sram_kib: 256, vector_units: 1, vector_lanes: 16}\n"
        "  memory: hbm2-32ch\nmapper: {name: npu_only}\n")
    from hwsim.config.loader import load_config
    result = evaluate(load_config(tmp_path / "c.yaml"))
    assert result.main.graph.info.model == "net" and result.main.graph.info.batch == 3
    assert result.main.metrics.iteration_latency_s > 0
