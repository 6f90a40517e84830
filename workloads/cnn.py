"""CNN workloads: built-in ImageNet classifiers, SCALE-Sim topology CSVs and ONNX files, lowered
to the same ``OpGraph`` as the Transformers.

One pass of the graph is one forward pass of `batch` images (``WorkloadInfo.phase ==
"inference"``, ``tokens == batch``: the report counts inferences).

Lowering conventions (built-in models and topology CSVs):
- a convolution is one ``conv`` (or ``depthwise_conv`` when groups == input channels) op with
  its shape in ``Op.conv``; BatchNorm is folded into its weights and a per-channel bias, and
  the activation (ReLU/ReLU6) is applied as outputs leave the array, as inference compilers
  do and as TPUv1's activation pipeline does (Jouppi et al., ISCA 2017, section 2) — so no
  separate ops for them;
- pooling is a ``pool`` op on the vector units (one compare/add per window element per output);
- a residual add is an ``elementwise`` op (one add per element, two inputs);
- a fully connected layer is a ``matmul`` with m = batch.
ONNX files keep every node as its own op (``hwsim.workloads.onnx_import``).

Built-in layer shapes follow the papers (and torchvision's reference implementations, whose
published MAC and parameter counts the tests check):
- AlexNet: Krizhevsky, Sutskever, Hinton, NeurIPS 2012 (227x227 input, conv2/4/5 in two groups
  as trained on two GPUs): 0.72 GMAC, 61 M parameters.
- VGG-16: Simonyan & Zisserman, ICLR 2015 (configuration D): 15.5 GMAC, 138 M.
- ResNet-18 / ResNet-50: He et al., CVPR 2016, Table 1; ResNet-50 with the stride on the 3x3
  conv of each bottleneck ("v1.5", torchvision): 1.8 / 4.1 GMAC, 11.7 M / 25.6 M.
- MobileNetV1 (1.0, 224): Howard et al., arXiv 1704.04861, Table 1: 569 M mult-adds, 4.2 M.
- MobileNetV2 (1.0, 224): Sandler et al., CVPR 2018, Table 2: 300 M mult-adds, 3.4 M.
- MCUNet models (Lin et al., "MCUNet: Tiny Deep Learning on IoT Devices", NeurIPS 2020; the
  model zoo of mit-han-lab/mcunet, mcunet/model_zoo.py, profiled with TinyEngine). ProxylessNAS
  chains of inverted-residual blocks (t, c, n, s, k: expansion, channels, repeats, stride,
  depthwise kernel), ReLU6 folded, no final 1x1 "feature mix" conv unless stated:
  - ``mbv2-w0.35``: net_name "mbv2-w0.35-r144_imagenet": MobileNetV2 at width 0.35, 144 px, every
    channel count (the last 1x1 conv's 1280 included) scaled and rounded to a multiple of 8 as
    ``make_divisible`` does (torchvision / ProxylessNAS); the mcunet README lists it as
    "mbv2-320kB": 23.5 M MACs, 0.75 M parameters.
  - ``mcunet-in0``: net_name "mcunet-10fps_imagenet", 48 px; blocks as transcribed from its
    released JSON in a third-party torchvision-style port (init 24 channels, classifier on 192,
    no feature-mix conv); the mcunet README lists it as "mcunet-10fps": 6.4 M MACs, 0.75 M
    parameters (both checked in hwsim/validate/model_zoo.py). The JSON itself
    (hanlab's release server) was not readable here; mcunet-vww0's architecture was not found.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Callable, Literal

from pydantic import Field, field_validator, model_validator

from hwsim.spec import Spec
from hwsim.workloads.ops import DTYPE_BYTES, MAX_BATCH, Conv, MatMul, Op, OpGraph, OpKind, WorkloadInfo


# --------------------------------------------------------------------------- the config section

class CNNWorkload(Spec):
    """`workload: {kind: cnn, model: resnet50 | topology: file.csv | onnx: file.onnx, batch, dtype}`.

    `topology` and `onnx` paths are relative to the config file that names them (the loader
    makes them absolute)."""

    kind: Literal["cnn"]
    model: str | None = Field(default=None, description="a built-in network (CNN_MODELS)")
    topology: str | None = Field(default=None, description="a SCALE-Sim topology CSV")
    onnx: str | None = Field(default=None, description="an ONNX model file")
    batch: int = Field(default=1, gt=0, le=MAX_BATCH, description="images per pass")
    dtype: Literal["fp16", "bf16", "fp32", "fp8", "int8"] = "fp16"
    image_size_px: int | None = Field(default=None, gt=0,
                                      description="input height = width of a built-in model "
                                      "(default: the model's own, 224 or 227 for AlexNet)")

    @field_validator("model")
    @classmethod
    def _known_model(cls, name):
        if name is not None and name not in CNN_MODELS:
            close = difflib.get_close_matches(name, list(CNN_MODELS), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown CNN model '{name}'{hint}; available: {', '.join(sorted(CNN_MODELS))}")
        return name

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("model", "topology", "onnx") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of model, topology or onnx"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.image_size_px is not None and self.model is None:
            raise ValueError("image_size_px applies to built-in models only")
        return self

    # A CNN pass runs on one device (the parallelism fields of the Transformer workload).
    @property
    def tp(self) -> int:
        return 1

    @property
    def ep(self) -> int:
        return 1

    @property
    def pp(self) -> int:
        return 1

    @property
    def label(self) -> str:
        from pathlib import Path
        return self.model or Path(self.topology or self.onnx).stem


# --------------------------------------------------------------------------- op constructors

def conv_op(name: str, layer: int, conv: Conv, dtype: str, bias: bool = True,
            folded_norm: bool = False) -> Op:
    """A conv (or depthwise conv) op: 2 FLOPs per MAC, weights (+ one bias per filter), the
    ifmap in and the ofmap out; `folded_norm`: the model has a BatchNorm after it, folded."""
    b = DTYPE_BYTES[dtype]
    return Op(name=name, kind=OpKind.DEPTHWISE_CONV if conv.is_depthwise else OpKind.CONV,
              layer=layer, dtype=dtype, flops=2.0 * conv.macs,
              weight_bytes=(conv.weight_count + (conv.out_c if bias else 0)) * b,
              act_in_bytes=conv.batch * conv.in_h * conv.in_w * conv.in_c * b,
              act_out_bytes=conv.npix * conv.out_c * b, conv=conv, folded_norm=folded_norm)


def matmul_op(name: str, layer: int, m: int, k: int, n: int, dtype: str, weights: bool = True,
              bias: bool = True, count: int = 1) -> Op:
    """out[m, n] = x[m, k] @ W[k, n] (`count` times); `weights=False` when both operands are
    activations (e.g. attention scores in an imported graph)."""
    b = DTYPE_BYTES[dtype]
    w = (k * n + (n if bias else 0)) * b if weights else 0
    a_in = m * k * count * b + (0 if weights else k * n * count * b)
    return Op(name=name, kind=OpKind.MATMUL, layer=layer, dtype=dtype, flops=2.0 * m * n * k * count,
              weight_bytes=w, act_in_bytes=a_in, act_out_bytes=m * n * count * b,
              matmul=MatMul(m, n, k, count))


def vector_op(name: str, layer: int, kind: OpKind, elements: int, dtype: str,
              flops_per_element: float = 1.0, in_elements: int | None = None,
              weight_elements: int = 0, function: str = "") -> Op:
    """An op for the vector units: `elements` outputs, `flops_per_element` operations each."""
    b = DTYPE_BYTES[dtype]
    return Op(name=name, kind=kind, layer=layer, dtype=dtype, flops=float(flops_per_element * elements),
              elements=elements, weight_bytes=weight_elements * b,
              act_in_bytes=(elements if in_elements is None else in_elements) * b,
              act_out_bytes=elements * b, function=function)


def pool_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    span = size + 2 * padding - kernel
    return (-(-span // stride) if ceil_mode else span // stride) + 1


# --------------------------------------------------------------------------- the builder

@dataclass(frozen=True)
class Tensor:
    op: str | None      # the op that produced it (None: the graph input)
    h: int
    w: int
    c: int


class CNNBuilder:
    """Appends ops to an ``OpGraph`` while tracking activation shapes (NCHW, batch `batch`)."""

    def __init__(self, model: str, batch: int, dtype: str):
        self.batch, self.dtype = batch, dtype
        self.graph = OpGraph(WorkloadInfo(model=model, phase="inference", batch=batch,
                                          tokens=batch, n_layers=0, work_unit="inference"))
        self.layer = -1            # index of the current weight layer (conv / fc)
        self.norms = True          # convs have a BatchNorm (folded) unless a model says otherwise

    def _add(self, op: Op, inputs: list[Tensor]) -> str:
        return self.graph.add(op, after=[t.op for t in inputs if t.op is not None])

    def input(self, h: int, w: int, c: int) -> Tensor:
        return Tensor(None, h, w, c)

    def conv(self, x: Tensor, out_c: int, k: int, stride: int = 1, padding: int | None = None,
             groups: int = 1, name: str | None = None, bias: bool = True,
             norm: bool | None = None) -> Tensor:
        self.layer += 1
        pad = (k - 1) // 2 if padding is None else padding
        conv = Conv(in_h=x.h, in_w=x.w, in_c=x.c, out_c=out_c, kernel_h=k, kernel_w=k,
                    stride=stride, padding=pad, groups=groups, batch=self.batch)
        folded = self.norms if norm is None else norm
        name = self._add(conv_op(name or f"conv{self.layer}", self.layer, conv, self.dtype, bias, folded), [x])
        return Tensor(name, conv.out_h, conv.out_w, out_c)

    def dwconv(self, x: Tensor, k: int, stride: int = 1, name: str | None = None) -> Tensor:
        return self.conv(x, x.c, k, stride, groups=x.c, name=name)

    def pool(self, x: Tensor, k: int, stride: int, padding: int = 0, name: str | None = None) -> Tensor:
        h, w = pool_out(x.h, k, stride, padding), pool_out(x.w, k, stride, padding)
        out = self.batch * h * w * x.c
        op = vector_op(name or f"pool{len(self.graph)}", max(self.layer, 0), OpKind.POOL, out,
                       self.dtype, flops_per_element=k * k, in_elements=self.batch * x.h * x.w * x.c,
                       function="max")
        return Tensor(self._add(op, [x]), h, w, x.c)

    def global_pool(self, x: Tensor, name: str = "avgpool") -> Tensor:
        inputs = self.batch * x.h * x.w * x.c
        op = vector_op(name, max(self.layer, 0), OpKind.POOL, self.batch * x.c, self.dtype,
                       flops_per_element=x.h * x.w, in_elements=inputs, function="avg")
        return Tensor(self._add(op, [x]), 1, 1, x.c)

    def add(self, a: Tensor, b: Tensor, name: str) -> Tensor:
        n = self.batch * a.h * a.w * a.c
        op = vector_op(name, self.layer, OpKind.ELEMENTWISE, n, self.dtype, in_elements=2 * n,
                       function="add")
        return Tensor(self._add(op, [a, b]), a.h, a.w, a.c)

    def fc(self, x: Tensor, out: int, name: str) -> Tensor:
        self.layer += 1
        op = matmul_op(name, self.layer, self.batch, x.h * x.w * x.c, out, self.dtype)
        return Tensor(self._add(op, [x]), 1, 1, out)

    def finish(self) -> OpGraph:
        return finish_graph(self.graph, self.layer + 1)


def finish_graph(graph: OpGraph, n_layers: int) -> OpGraph:
    """Record the layer count and the resident weights (one device holds all of them)."""
    weights = int(sum(op.weight_bytes for op in graph.ops))
    graph.info = replace(graph.info, n_layers=n_layers, weight_bytes_per_device=weights)
    return graph


# --------------------------------------------------------------------------- the model zoo

def _alexnet(b: CNNBuilder, size: int) -> None:
    b.norms = False                               # no BatchNorm (2012)
    x = b.input(size, size, 3)
    x = b.conv(x, 96, 11, 4, 0, name="conv1")
    x = b.pool(x, 3, 2, name="pool1")
    x = b.conv(x, 256, 5, 1, 2, groups=2, name="conv2")
    x = b.pool(x, 3, 2, name="pool2")
    x = b.conv(x, 384, 3, 1, 1, name="conv3")
    x = b.conv(x, 384, 3, 1, 1, groups=2, name="conv4")
    x = b.conv(x, 256, 3, 1, 1, groups=2, name="conv5")
    x = b.pool(x, 3, 2, name="pool5")
    x = b.fc(x, 4096, "fc6")
    x = b.fc(x, 4096, "fc7")
    b.fc(x, 1000, "fc8")


def _vgg16(b: CNNBuilder, size: int) -> None:
    b.norms = False                               # configuration D has no BatchNorm
    x = b.input(size, size, 3)
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    block, i = 1, 1
    for v in cfg:
        if v == "M":
            x = b.pool(x, 2, 2, name=f"pool{block}")
            block, i = block + 1, 1
        else:
            x = b.conv(x, v, 3, 1, 1, name=f"conv{block}_{i}")
            i += 1
    x = b.fc(x, 4096, "fc6")
    x = b.fc(x, 4096, "fc7")
    b.fc(x, 1000, "fc8")


def _resnet(blocks: tuple[int, ...], bottleneck: bool):
    def build(b: CNNBuilder, size: int) -> None:
        x = b.input(size, size, 3)
        x = b.conv(x, 64, 7, 2, 3, bias=True, name="conv1")
        x = b.pool(x, 3, 2, 1, name="maxpool")
        for stage, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
            for i in range(n):
                stride = 2 if i == 0 and stage > 0 else 1
                p = f"layer{stage + 1}.{i}"
                if bottleneck:
                    out = width * 4
                    y = b.conv(x, width, 1, 1, 0, name=f"{p}.conv1")
                    y = b.conv(y, width, 3, stride, 1, name=f"{p}.conv2")
                    y = b.conv(y, out, 1, 1, 0, name=f"{p}.conv3")
                else:
                    out = width
                    y = b.conv(x, width, 3, stride, 1, name=f"{p}.conv1")
                    y = b.conv(y, width, 3, 1, 1, name=f"{p}.conv2")
                short = b.conv(x, out, 1, stride, 0, name=f"{p}.downsample") \
                    if stride != 1 or x.c != out else x
                x = b.add(y, short, f"{p}.add")
        x = b.global_pool(x)
        b.fc(x, 1000, "fc")
    return build


def _mobilenet_v1(b: CNNBuilder, size: int) -> None:
    x = b.input(size, size, 3)
    x = b.conv(x, 32, 3, 2, 1, name="conv0")
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + \
          [(1024, 2), (1024, 1)]
    for i, (out, stride) in enumerate(cfg, start=1):
        x = b.dwconv(x, 3, stride, name=f"dw{i}")
        x = b.conv(x, out, 1, 1, 0, name=f"pw{i}")
    x = b.global_pool(x)
    b.fc(x, 1000, "fc")


def _mobilenet_v2(b: CNNBuilder, size: int) -> None:
    x = b.input(size, size, 3)
    x = b.conv(x, 32, 3, 2, 1, name="conv0")
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]          # expansion t, channels c, repeats n, stride s
    block = 0
    for t, c, n, s in settings:
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"block{block}"
            y = x if t == 1 else b.conv(x, x.c * t, 1, 1, 0, name=f"{p}.expand")
            y = b.dwconv(y, 3, stride, name=f"{p}.dw")
            y = b.conv(y, c, 1, 1, 0, name=f"{p}.project")
            x = b.add(y, x, f"{p}.add") if stride == 1 and x.c == c else y
            block += 1
    x = b.conv(x, 1280, 1, 1, 0, name="conv_last")
    x = b.global_pool(x)
    b.fc(x, 1000, "fc")


def make_divisible(value: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of `divisor`, never down by more than 10% (torchvision's and
    ProxylessNAS's `_make_divisible`)."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


def _inverted_residual_net(init_c: int, blocks: list[tuple[int, int, int, int, int]],
                           last_c: int | None, width: float = 1.0):
    """A ProxylessNAS/MCUNet-style chain: a 3x3 stride-2 stem, inverted-residual blocks
    (t, c, n, s, k), an optional 1x1 conv to `last_c`, global pool and a 1000-way classifier;
    channels scaled by `width` (make_divisible). Op names as MobileNetV2's (block{i}.expand,
    .dw, .project, .add)."""
    def build(b: CNNBuilder, size: int) -> None:
        x = b.input(size, size, 3)
        x = b.conv(x, make_divisible(init_c * width), 3, 2, 1, name="conv0")
        block = 0
        for t, c, n, s, k in blocks:
            out = make_divisible(c * width)
            for i in range(n):
                stride = s if i == 0 else 1
                p = f"block{block}"
                y = x if t == 1 else b.conv(x, round(x.c * t), 1, 1, 0, name=f"{p}.expand")
                y = b.dwconv(y, k, stride, name=f"{p}.dw")
                y = b.conv(y, out, 1, 1, 0, name=f"{p}.project")
                x = b.add(y, x, f"{p}.add") if stride == 1 and x.c == out else y
                block += 1
        if last_c is not None:
            x = b.conv(x, make_divisible(last_c * width), 1, 1, 0, name="conv_last")
        x = b.global_pool(x)
        b.fc(x, 1000, "fc")
    return build


# MobileNetV2's (t, c, n, s) settings (Sandler et al., Table 2) with 3x3 depthwise kernels.
_MBV2_BLOCKS = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 32, 3, 2, 3), (6, 64, 4, 2, 3),
                (6, 96, 3, 1, 3), (6, 160, 3, 2, 3), (6, 320, 1, 1, 3)]
# mcunet-10fps_imagenet (mcunet-in0): (t, c, n, s, k) per block, module docstring.
_MCUNET_IN0_BLOCKS = [(1, 16, 1, 1, 3), (4, 16, 1, 2, 5), (3, 16, 1, 1, 3), (4, 16, 1, 1, 3),
                      (5, 24, 1, 2, 7), (4, 24, 1, 1, 5), (5, 24, 1, 1, 5), (5, 48, 1, 2, 7),
                      (4, 48, 1, 1, 5), (5, 56, 1, 1, 3), (4, 56, 1, 1, 5), (5, 56, 1, 1, 3),
                      (6, 112, 1, 2, 3), (4, 112, 1, 1, 5), (6, 192, 1, 1, 3)]


def _resnet8(b: CNNBuilder, size: int) -> None:
    """MLPerf Tiny's image-classification ResNet-8 (Banbury et al., "MLPerf Tiny Benchmark",
    NeurIPS 2021 Datasets and Benchmarks; the reference model `resnet_v1_eembc` of
    mlcommons/tiny, training/image_classification/keras_model.py): 32x32x3 CIFAR-10 input, a
    3x3/16 stem, three stacks of one residual block (3x3 convs, 16/32/64 filters, stride 2 and a
    1x1 stride-2 shortcut conv from the second stack on), an 8x8 average pool and a 10-way
    classifier. BatchNorm after every 3x3 conv, none after the 1x1 shortcuts (the released
    pretrainedResnet.h5 has 7 BN layers; folded here, a training scenario adds them back)."""
    x = b.input(size, size, 3)
    x = b.conv(x, 16, 3, 1, 1, name="conv1")
    for stack, width in enumerate((16, 32, 64), start=1):
        stride = 1 if stack == 1 else 2
        p = f"stack{stack}"
        y = b.conv(x, width, 3, stride, 1, name=f"{p}.conv1")
        y = b.conv(y, width, 3, 1, 1, name=f"{p}.conv2")
        short = b.conv(x, width, 1, stride, 0, name=f"{p}.shortcut", norm=False) if stride != 1 else x
        x = b.add(y, short, f"{p}.add")
    x = b.global_pool(x)
    b.fc(x, 10, "fc")


def _ds_cnn(b: CNNBuilder, size: int) -> None:
    """MLPerf Tiny's keyword-spotting DS-CNN (Banbury et al. 2021; mlcommons/tiny,
    training/keyword_spotting/keras_model.py, after Zhang et al., "Hello Edge", arXiv
    1711.07128, DS-CNN-S): 49 x 10 MFCC features (1 channel), a 10x4 stride-2 conv to 64
    channels ("same" padding: 25 x 5 out), four depthwise-separable blocks (3x3 depthwise + 1x1
    pointwise, 64 channels), a 25x5 average pool and a 12-way classifier. The first conv's
    asymmetric "same" padding (9 rows, 2 columns in total) is applied to its input (58 x 12, no
    further padding), as a SCALE-Sim topology row takes padded inputs; its MACs are the same.
    `size` is ignored: the input is 49 x 10."""
    conv = Conv(in_h=49 + 9, in_w=10 + 2, in_c=1, out_c=64, kernel_h=10, kernel_w=4, stride=2,
                padding=0, batch=b.batch)
    b.layer += 1
    name = b.graph.add(conv_op("conv1", b.layer, conv, b.dtype, folded_norm=True))
    x = Tensor(name, conv.out_h, conv.out_w, 64)
    for i in range(1, 5):
        x = b.dwconv(x, 3, 1, name=f"block{i}.dw")
        x = b.conv(x, 64, 1, 1, 0, name=f"block{i}.pw")
    x = b.global_pool(x)
    b.fc(x, 12, "fc")


# name -> (builder, native input size)
CNN_MODELS: dict[str, tuple[Callable[[CNNBuilder, int], None], int]] = {
    "alexnet": (_alexnet, 227),
    "vgg16": (_vgg16, 224),
    "resnet18": (_resnet((2, 2, 2, 2), bottleneck=False), 224),
    "resnet50": (_resnet((3, 4, 6, 3), bottleneck=True), 224),
    "mobilenet_v1": (_mobilenet_v1, 224),
    "mobilenet_v2": (_mobilenet_v2, 224),
    "mbv2-w0.35": (_inverted_residual_net(32, _MBV2_BLOCKS, 1280, width=0.35), 144),
    "mcunet-in0": (_inverted_residual_net(24, _MCUNET_IN0_BLOCKS, None), 48),
    "resnet8": (_resnet8, 32),
    "ds-cnn": (_ds_cnn, 49),
}


def build_model(name: str, batch: int = 1, dtype: str = "fp16", image_size_px: int | None = None) -> OpGraph:
    """The op graph of a built-in network's forward pass."""
    fn, native = CNN_MODELS[name]
    b = CNNBuilder(name, batch, dtype)
    fn(b, image_size_px or native)
    return b.finish()


def graph_from_topology(layers, model: str, batch: int, dtype: str) -> OpGraph:
    """A chain of the topology's layers (conv rows as conv ops, GEMM rows as matmuls)."""
    graph = OpGraph(WorkloadInfo(model=model, phase="inference", batch=batch, tokens=batch, n_layers=0,
                                 work_unit="inference"))
    prev: list[str] = []
    for i, layer in enumerate(layers):
        if layer.gemm is not None:
            m, n, k = layer.gemm
            op = matmul_op(layer.name, i, m * batch, k, n, dtype, bias=False)
        else:
            op = conv_op(layer.name, i, layer.conv, dtype, bias=False)
        if op.name in graph:
            op = replace(op, name=f"{op.name}#{i}")
        prev = [graph.add(op, after=prev)]
    return finish_graph(graph, len(layers))


def build_cnn(workload: CNNWorkload) -> OpGraph:
    """The op graph of one forward pass of `batch` images for a `kind: cnn` workload."""
    if workload.model is not None:
        return build_model(workload.model, workload.batch, workload.dtype, workload.image_size_px)
    if workload.topology is not None:
        from hwsim.workloads.topology import read_topology
        layers = read_topology(workload.topology, batch=workload.batch)
        return graph_from_topology(layers, workload.label, workload.batch, workload.dtype)
    from hwsim.workloads.onnx_import import import_onnx
    return import_onnx(workload.onnx, batch=workload.batch, dtype=workload.dtype)


def param_count(graph: OpGraph) -> int:
    """Parameters = weight bytes / bytes per element (conv and FC weights plus biases)."""
    return int(sum(op.weight_bytes // op.dtype_bytes for op in graph.ops))


from hwsim.workloads.registry import WorkloadKind, register_workload  # noqa: E402

register_workload(WorkloadKind("cnn", CNNWorkload, build_cnn))
