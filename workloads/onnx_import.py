"""Import an ONNX model as an ``OpGraph`` (one forward pass).

Shapes come from ``onnx.shape_inference``; a symbolic batch dimension (dim 0 of the graph
inputs) is set to the workload's `batch` first. Every supported node becomes one op, connected
to the ops that produce its inputs:

    Conv (incl. group / depthwise)   conv or depthwise_conv, shape in Op.conv
    Gemm, MatMul                     matmul (batched MatMul with two activation operands:
                                     `count` products, no weights)
    Relu, Clip, Sigmoid, Add, Mul    elementwise
    Softmax                          softmax
    MaxPool, AveragePool,
    GlobalAveragePool                pool
    BatchNormalization               elementwise (an affine map per channel at inference)
    LayerNormalization               norm
    Flatten, Reshape, Transpose,
    Squeeze, Unsqueeze, Identity     no op: shape only, the output aliases the input's producer
    Constant                         no op: a constant operand

FLOPs per element of the vector ops are counted as a straightforward kernel does them, as in
``hwsim.workloads.transformer.VECTOR_FLOPS_PER_ELEMENT``: ReLU 1 (max), Clip 2 (max, min),
Sigmoid 4 (neg, exp, add, div), Add/Mul 1, BatchNorm 2 (scale, shift), softmax 5, LayerNorm 5;
pooling one compare/add per window element. The file's element types are ignored: the
workload's `dtype` sets the bytes per element. Initializers (and Constant outputs) count as
weights. Anything else is a ``ConfigError`` naming the node, its op type and what is supported.
"""
from __future__ import annotations

import math
from pathlib import Path

from hwsim.input_error import ConfigError
from hwsim.workloads.cnn import conv_op, finish_graph, matmul_op, vector_op
from hwsim.workloads.ops import Conv, OpGraph, OpKind, WorkloadInfo

SHAPE_ONLY = ("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity")
ELEMENTWISE_FLOPS = {"Relu": 1, "Clip": 2, "Sigmoid": 4, "Add": 1, "Mul": 1, "BatchNormalization": 2}
SUPPORTED = ("Conv", "Gemm", "MatMul", "Relu", "Clip", "Sigmoid", "Add", "Mul", "Softmax", "MaxPool",
             "AveragePool", "GlobalAveragePool", "BatchNormalization", "LayerNormalization",
             *SHAPE_ONLY, "Constant")


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _fix_batch(model, batch: int, file: str) -> int:
    """Set symbolic leading dims of the graph inputs to `batch`; return the batch of the graph."""
    inits = {i.name for i in model.graph.initializer}
    found = None
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        dims = inp.type.tensor_type.shape.dim
        if not dims:
            continue
        if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            value = dims[0].dim_value
            if batch not in (1, value):
                raise ConfigError(f"input '{inp.name}' has a fixed batch of {value}; set "
                                  f"workload.batch to {value} (or 1)", file=file, key="workload.batch")
        else:
            dims[0].dim_value = value = batch
        for d in dims[1:]:
            if not d.HasField("dim_value"):
                raise ConfigError(f"input '{inp.name}' has a symbolic dimension "
                                  f"'{d.dim_param or '?'}' after the batch; hwsim needs static shapes",
                                  file=file)
        found = found or value
    return found or batch


def import_onnx(source, batch: int = 1, dtype: str = "fp16") -> OpGraph:
    """The op graph of an ONNX model (a path or a loaded ``onnx.ModelProto``)."""
    import onnx

    if isinstance(source, (str, Path)):
        file = str(source)
        try:
            model = onnx.load(file)
        except FileNotFoundError:
            raise ConfigError("ONNX file not found", file=file) from None
        except Exception as exc:  # a corrupt or non-ONNX file
            raise ConfigError(f"cannot read ONNX model: {exc}", file=file) from None
        name = Path(file).stem
    else:
        model, file, name = source, "<onnx>", source.graph.name or "onnx"
    model_batch = _fix_batch(model, batch, file)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:
        raise ConfigError(f"ONNX shape inference failed: {exc}", file=file) from None
    g = model.graph

    shapes: dict[str, list[int]] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else -1
                               for d in vi.type.tensor_type.shape.dim]
    constants: dict[str, list[int]] = {i.name: list(i.dims) for i in g.initializer}

    graph = OpGraph(WorkloadInfo(model=name, phase="inference", batch=model_batch,
                                 tokens=model_batch, n_layers=0, work_unit="inference"))
    producer: dict[str, str | None] = {}
    layer = -1

    def shape(tensor: str, node_label: str) -> list[int]:
        if tensor in constants:
            return constants[tensor]
        s = shapes.get(tensor)
        if s is None or any(d <= 0 for d in s):
            raise ConfigError(f"node {node_label}: shape inference could not determine a static "
                              f"shape for tensor '{tensor}'", file=file)
        return s

    def numel(s) -> int:
        return int(math.prod(s))

    for idx, node in enumerate(g.node):
        op_type = node.op_type
        label = f"'{node.name}' ({op_type})" if node.name else f"#{idx} ({op_type})"
        if op_type not in SUPPORTED or node.domain not in ("", "ai.onnx"):
            raise ConfigError(f"node {label}: op type '{op_type}' is not supported; supported: "
                              f"{', '.join(SUPPORTED)}", file=file)
        inputs = [t for t in node.input if t]
        act_inputs = [t for t in inputs if t not in constants]
        deps = sorted({producer[t] for t in act_inputs if producer.get(t)})
        if op_type == "Constant":
            value = _attrs(node).get("value")
            constants[node.output[0]] = list(value.dims) if value is not None else []
            continue
        if op_type in SHAPE_ONLY:
            src = producer.get(inputs[0]) if inputs else None
            for out in node.output:
                producer[out] = src
                if inputs and inputs[0] in constants:
                    constants[out] = shape(out, label) if out in shapes else constants[inputs[0]]
            continue
        op_name = node.name or f"{op_type.lower()}{idx}"
        if op_name in graph:
            op_name = f"{op_name}#{idx}"
        out_shape = shape(node.output[0], label)
        a = _attrs(node)
        if op_type == "Conv":
            x, w = shape(inputs[0], label), shape(inputs[1], label)
            if len(x) != 4:
                raise ConfigError(f"node {label}: only 2-D convolutions (4-D NCHW input) are "
                                  f"supported, got a {len(x)}-D input", file=file)
            if any(d != 1 for d in a.get("dilations", [1, 1])):
                raise ConfigError(f"node {label}: dilated convolutions are not supported", file=file)
            strides = a.get("strides", [1, 1])
            if strides[0] != strides[1]:
                raise ConfigError(f"node {label}: strides {list(strides)} differ; only equal "
                                  "strides are supported", file=file)
            n, c, h, wd = x
            kh, kw = w[2], w[3]
            out_h, out_w = out_shape[2], out_shape[3]
            stride = strides[0]
            # Padding from the inferred output (covers pads and auto_pad alike); an asymmetric
            # pad is folded into the input size (same output and MACs).
            pad_h = max(0, (out_h - 1) * stride + kh - h)
            pad_w = max(0, (out_w - 1) * stride + kw - wd)
            if pad_h == pad_w and pad_h % 2 == 0:
                conv = Conv(in_h=h, in_w=wd, in_c=c, out_c=w[0], kernel_h=kh, kernel_w=kw,
                            stride=stride, padding=pad_h // 2, groups=a.get("group", 1), batch=n)
            else:
                conv = Conv(in_h=h + pad_h, in_w=wd + pad_w, in_c=c, out_c=w[0], kernel_h=kh,
                            kernel_w=kw, stride=stride, padding=0, groups=a.get("group", 1), batch=n)
            if (conv.out_h, conv.out_w) != (out_h, out_w):
                raise ConfigError(f"node {label}: output {out_h}x{out_w} does not follow from "
                                  f"input {h}x{wd}, kernel {kh}x{kw}, stride {stride}", file=file)
            layer += 1
            op = conv_op(op_name, layer, conv, dtype, bias=len(inputs) > 2)
        elif op_type in ("Gemm", "MatMul"):
            sa, sb = shape(inputs[0], label), shape(inputs[1], label)
            layer += 1
            weights = inputs[1] in constants
            if op_type == "Gemm":
                m, k = (sa[1], sa[0]) if a.get("transA", 0) else (sa[0], sa[1])
                n = sb[0] if a.get("transB", 0) else sb[1]
                op = matmul_op(op_name, layer, m, k, n, dtype, weights=weights, bias=len(inputs) > 2)
            else:
                if len(sa) < 2 or len(sb) < 2:
                    raise ConfigError(f"node {label}: MatMul of 1-D operands is not supported", file=file)
                m, k, n = sa[-2], sa[-1], sb[-1]
                batch_dims = numel(out_shape[:-2])
                if weights and len(sb) == 2:      # x @ W: fold the batch dims into the rows
                    op = matmul_op(op_name, layer, m * batch_dims, k, n, dtype, bias=False)
                else:
                    op = matmul_op(op_name, layer, m, k, n, dtype, weights=weights, bias=False,
                                   count=batch_dims)
        elif op_type in ("MaxPool", "AveragePool", "GlobalAveragePool"):
            x = shape(inputs[0], label)
            window = x[2] * x[3] if op_type == "GlobalAveragePool" else numel(a.get("kernel_shape", [1]))
            op = vector_op(op_name, max(layer, 0), OpKind.POOL, numel(out_shape), dtype,
                           flops_per_element=window, in_elements=numel(x),
                           function="max" if op_type == "MaxPool" else "avg")
        elif op_type == "Softmax":
            op = vector_op(op_name, max(layer, 0), OpKind.SOFTMAX, numel(out_shape), dtype,
                           flops_per_element=5, function="softmax")
        elif op_type == "LayerNormalization":
            weights = sum(numel(constants[t]) for t in inputs[1:] if t in constants)
            op = vector_op(op_name, max(layer, 0), OpKind.NORM, numel(out_shape), dtype,
                           flops_per_element=5, weight_elements=weights, function="layernorm")
        else:   # Relu, Clip, Sigmoid, Add, Mul, BatchNormalization
            data = act_inputs if op_type in ("Add", "Mul") else act_inputs[:1]
            weights = sum(numel(constants[t]) for t in inputs if t in constants)
            op = vector_op(op_name, max(layer, 0), OpKind.ELEMENTWISE, numel(out_shape), dtype,
                           flops_per_element=ELEMENTWISE_FLOPS[op_type],
                           in_elements=sum(numel(shape(t, label)) for t in data) or numel(out_shape),
                           weight_elements=weights, function=op_type.lower())
        graph.add(op, after=deps)
        for out in node.output:
            producer[out] = op_name
    return finish_graph(graph, layer + 1)
