"""The op graph: what a workload asks of the hardware, with no hardware in it.

An ``Op`` carries its shape and its cost in hardware-neutral terms: FLOPs and bytes split into
weights, activations in/out and KV cache read/written. An ``OpGraph`` is a DAG of ops
(edge = data dependency) plus what the graph stands for (model, phase, tokens it produces).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

import numpy as np

from hwsim.frozen import evolve

# Most requests (or images) in one pass: a thousand times the largest batch of the systems modelled
# (NeuPIMs: 512). An assumed sanity bound: per-request arrays are built before the memory check.
MAX_BATCH = 1 << 20

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}

# Bytes per weight element of the formats weights may be stored in (a workload's `weight_dtype`),
# beyond DTYPE_BYTES. MXFP4 (OCP Microscaling Formats v1.0, section 5.3): blocks of 32 FP4 E2M1
# elements sharing one 8-bit E8M0 scale, (32 x 4 + 8) / 32 = 4.25 bits per weight.
MXFP4_BLOCK = 32
MXFP4_BITS_PER_WEIGHT = (MXFP4_BLOCK * 4 + 8) / MXFP4_BLOCK
WEIGHT_DTYPE_BYTES = {**DTYPE_BYTES, "mxfp4": MXFP4_BITS_PER_WEIGHT / 8}


class OpKind(StrEnum):
    MATMUL = "matmul"                        # out[m, n] = x[m, k] @ W[k, n], `count` times
    ATTENTION_SCORE = "attention_score"      # per request: Q K^T over its own context
    ATTENTION_CONTEXT = "attention_context"  # per request: P V over its own context
    SOFTMAX = "softmax"
    NORM = "norm"                            # LayerNorm or RMSNorm
    ELEMENTWISE = "elementwise"              # activation functions, residual adds, gating
    EMBEDDING = "embedding"                  # table lookup
    ROUTER = "router"                        # MoE gate: a small matmul plus top-k
    ALL_REDUCE = "all_reduce"
    ALL_TO_ALL = "all_to_all"
    CONV = "conv"                            # 2-D convolution (groups < channels), shape in `conv`
    DEPTHWISE_CONV = "depthwise_conv"        # groups == input channels, shape in `conv`
    POOL = "pool"                            # max/average pooling, on the vector units
    P2P = "p2p"                              # pipeline parallelism: activations from the previous stage
    OPTIMIZER = "optimizer"                  # training: the weight update of one layer (SGD, Adam, ...)

    @property
    def is_collective(self) -> bool:
        """Ops that run on a link rather than a compute unit."""
        return self in (OpKind.ALL_REDUCE, OpKind.ALL_TO_ALL, OpKind.P2P)

    @property
    def is_attention(self) -> bool:
        return self in (OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT)


class TrainStep(StrEnum):
    """Which pass of a training step an op belongs to (workloads/training.py). An op's `kind`
    says what it computes (a conv, a norm, ...), its `step` which of the three products of
    backpropagation: the forward output, the gradient w.r.t. its input, the gradient w.r.t. its
    weights — or the optimizer's update of the weights."""
    FORWARD = "forward"
    INPUT_GRAD = "input_grad"
    WEIGHT_GRAD = "weight_grad"
    UPDATE = "update"


@dataclass(frozen=True)
class MatMul:
    """x[m, k] @ W[k, n], repeated `count` times with different operands."""
    m: int
    n: int
    k: int
    count: int = 1

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count


@dataclass(frozen=True)
class Attention:
    """Per-request attention over a KV cache on one device.

    Request r brings `query_tokens[r]` new tokens and attends over `context_lens[r]` cached plus
    new tokens. Each of the `kv_heads` KV heads serves `heads // kv_heads` query heads (GQA), so a
    request's score op is, per KV head, a [group * q, head_dim] x [head_dim, L] product — a GEMV
    in decode (q = 1, group = 1 for MHA).
    """
    query_tokens: tuple[int, ...]
    context_lens: tuple[int, ...]
    heads: int
    kv_heads: int
    head_dim: int

    @property
    def group(self) -> int:
        return self.heads // self.kv_heads

    @cached_property
    def query_array(self) -> np.ndarray:
        return np.asarray(self.query_tokens, dtype=np.int64)

    @cached_property
    def context_array(self) -> np.ndarray:
        return np.asarray(self.context_lens, dtype=np.int64)

    @property
    def macs(self) -> int:
        return int(self.heads * self.head_dim * np.sum(self.query_array * self.context_array))


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution, NCHW: `batch` images of in_h x in_w x in_c, `out_c` filters of
    kernel_h x kernel_w x (in_c / groups), the same `stride` and symmetric zero `padding` on
    both axes. Depthwise: groups == in_c (out_c = in_c x depth multiplier).

    Output size is PyTorch's floor((in + 2 padding - kernel) / stride) + 1. `ceil_mode` uses
    ceil instead, which is what SCALE-Sim computes from a topology row (E = ceil((H - R + s) / s)
    on an input that already includes its padding; scalesim/topology_utils.py).

    As a GEMM (im2col, the view a systolic array and SCALE-Sim take): each of the `groups`
    groups is out[npix, n] = ifmap[npix, k] @ filter[k, n] with npix = batch * out_h * out_w,
    k = kernel_h * kernel_w * in_c / groups and n = out_c / groups.
    """
    in_h: int
    in_w: int
    in_c: int
    out_c: int
    kernel_h: int
    kernel_w: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    batch: int = 1
    ceil_mode: bool = False

    def __post_init__(self):
        for name in ("in_h", "in_w", "in_c", "out_c", "kernel_h", "kernel_w", "stride", "groups", "batch"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        if self.in_c % self.groups or self.out_c % self.groups:
            raise ValueError(f"groups={self.groups} must divide in_c={self.in_c} and out_c={self.out_c}")
        if self.kernel_h > self.in_h + 2 * self.padding or self.kernel_w > self.in_w + 2 * self.padding:
            raise ValueError(f"kernel {self.kernel_h}x{self.kernel_w} is larger than the padded input "
                             f"{self.in_h + 2 * self.padding}x{self.in_w + 2 * self.padding}")

    def _out(self, size: int, kernel: int) -> int:
        span = size + 2 * self.padding - kernel
        return (-(-span // self.stride) if self.ceil_mode else span // self.stride) + 1

    @property
    def out_h(self) -> int:
        return self._out(self.in_h, self.kernel_h)

    @property
    def out_w(self) -> int:
        return self._out(self.in_w, self.kernel_w)

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_c

    @property
    def npix(self) -> int:
        """GEMM rows: output pixels of the whole batch."""
        return self.batch * self.out_h * self.out_w

    @property
    def gemm_k(self) -> int:
        """GEMM reduction length of one group (the filter window)."""
        return self.kernel_h * self.kernel_w * (self.in_c // self.groups)

    @property
    def gemm_n(self) -> int:
        """GEMM columns of one group (its filters)."""
        return self.out_c // self.groups

    @property
    def weight_count(self) -> int:
        return self.gemm_k * self.out_c

    @property
    def macs(self) -> int:
        return self.npix * self.gemm_k * self.out_c


@dataclass(frozen=True)
class Collective:
    """A collective over `group` devices; `bytes` is the per-device buffer size."""
    group: int
    bytes: int


@dataclass(frozen=True)
class Op:
    name: str
    kind: OpKind
    layer: int                      # decoder layer index, -1 outside the layers
    dtype: str
    flops: float
    weight_bytes: int = 0
    act_in_bytes: int = 0
    act_out_bytes: int = 0
    kv_read_bytes: int = 0
    kv_write_bytes: int = 0
    matmul: MatMul | None = None
    attention: Attention | None = None
    collective: Collective | None = None
    elements: int = 0               # vector ops: elements processed
    expert: int | None = None       # MoE: which expert's FFN this op belongs to
    conv: Conv | None = None        # conv / depthwise_conv ops: the convolution's shape
    micro_batch: int = 0            # pipeline parallelism: which micro-batch the op serves
    function: str = ""              # vector ops: which function ("rmsnorm", "gelu", "swiglu", "rope",
                                    # "add", "relu", "max" or "avg" pooling, ...), for --check
    residual_into: str = ""         # a residual add: the norm function its sum feeds next
                                    # ("rmsnorm", "layernorm"); "" for any other op
    step: TrainStep = TrainStep.FORWARD   # training graphs: forward, input/weight gradient, update
    folded_norm: bool = False       # conv ops: a BatchNorm after it was folded into its weights
    nm: tuple[int, int] | None = None   # training: weights pruned N:M along this op's reduction (BDWP)

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def memory_bytes(self) -> int:
        """Bytes the op touches in the memory that holds weights and KV (before any reuse)."""
        return (self.weight_bytes + self.act_in_bytes + self.act_out_bytes
                + self.kv_read_bytes + self.kv_write_bytes)


@dataclass(frozen=True)
class WorkloadInfo:
    """What a graph stands for, so a report can turn time into tokens/s (or inferences/s)."""
    model: str
    phase: str                      # "prefill" or "decode" ("inference" for a CNN pass)
    batch: int                      # requests in the iteration
    tokens: int                     # work units produced by one pass of the graph (all requests)
    n_layers: int                   # decoder layers in the graph (one stage's under pipeline parallelism)
    tp: int = 1
    ep: int = 1
    pp: int = 1                     # pipeline stages; the graph is one stage (the last one)
    weight_bytes_per_device: int = 0
    kv_bytes_per_device: int = 0    # KV cache resident on one device at the end of the pass
    work_unit: str = "token"        # what `tokens` counts: "token", or "inference" (one CNN input)


@dataclass
class OpGraph:
    """A DAG of ops (edge = data dependency), keyed by op name.

    A plain adjacency structure: ops are added after their predecessors (``add`` refuses an
    unknown predecessor, so every graph is acyclic by construction), and ``ops`` is a
    deterministic topological order, insertion order breaking ties (Kahn's algorithm with a heap
    on insertion index). networkx did the same at ~0.25 s of import per process."""
    info: WorkloadInfo
    _op: dict[str, Op] = field(default_factory=dict, repr=False)
    _preds: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _succs: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def add(self, op: Op, after: list[str] | tuple[str, ...] = ()) -> str:
        if op.name in self._op:
            raise ValueError(f"duplicate op name {op.name}")
        preds = list(dict.fromkeys(after))
        for pred in preds:
            if pred not in self._op:
                raise ValueError(f"op {op.name} depends on {pred}, which is not in the graph")
        self._op[op.name] = op
        self._preds[op.name] = preds
        self._succs[op.name] = []
        for pred in preds:
            self._succs[pred].append(op.name)
        self.__dict__.pop("ops", None)
        return op.name

    @cached_property
    def ops(self) -> list[Op]:
        """Ops in a deterministic topological order (insertion order breaks ties)."""
        import heapq
        index = {name: i for i, name in enumerate(self._op)}
        waiting = {name: len(preds) for name, preds in self._preds.items()}
        ready = [index[name] for name, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        names = list(self._op)
        order = []
        while ready:
            name = names[heapq.heappop(ready)]
            order.append(self._op[name])
            for succ in self._succs[name]:
                waiting[succ] -= 1
                if waiting[succ] == 0:
                    heapq.heappush(ready, index[succ])
        return order

    def op(self, name: str) -> Op:
        return self._op[name]

    def __contains__(self, name: str) -> bool:
        return name in self._op

    def predecessors(self, name: str) -> list[str]:
        return list(self._preds[name])

    def successors(self, name: str) -> list[str]:
        return list(self._succs[name])

    def total(self, attr: str) -> float:
        return float(sum(getattr(op, attr) for op in self.ops))

    def __len__(self) -> int:
        return len(self._op)


def op_for_requests(op: Op, idx: np.ndarray, all_query: np.ndarray, all_context: np.ndarray) -> Op:
    """The part of `op` that serves requests `idx` of its batch (for sub-batching mappers).

    Token-proportional quantities (matmul rows, activations, vector elements, collective
    buffers, new KV) scale with the share of query tokens; attention keeps the chosen
    requests; weights are read in full by every part."""
    q_share = all_query[idx].sum() / all_query.sum()
    if op.attention is not None:
        a = op.attention
        q, ctx = a.query_array[idx], a.context_array[idx]
        sub = Attention(tuple(q.tolist()), tuple(ctx.tolist()), a.heads, a.kv_heads, a.head_dim)
        sub.__dict__["query_array"], sub.__dict__["context_array"] = q, ctx    # cached_property
        pairs_share = float(np.sum(sub.query_array * sub.context_array)) / \
            float(np.sum(a.query_array * a.context_array))
        kv_share = float(sub.context_array.sum()) / float(a.context_array.sum())
        return evolve(op, attention=sub, flops=op.flops * pairs_share,
                       kv_read_bytes=int(round(op.kv_read_bytes * kv_share)),
                       act_in_bytes=int(round(op.act_in_bytes * (pairs_share if op.kind == OpKind.ATTENTION_CONTEXT else q_share))),
                       act_out_bytes=int(round(op.act_out_bytes * (pairs_share if op.kind == OpKind.ATTENTION_SCORE else q_share))))
    share = q_share
    if op.kind == OpKind.SOFTMAX:
        pairs = all_query * all_context
        share = pairs[idx].sum() / pairs.sum()
    scaled = dict(flops=op.flops * share, act_in_bytes=int(round(op.act_in_bytes * share)),
                  act_out_bytes=int(round(op.act_out_bytes * share)),
                  kv_write_bytes=int(round(op.kv_write_bytes * share)),
                  elements=int(round(op.elements * share)))
    if op.matmul is not None:
        m = max(1, int(round(op.matmul.m * share)))
        scaled["matmul"] = MatMul(m, op.matmul.n, op.matmul.k, op.matmul.count)
        scaled["flops"] = 2.0 * m * op.matmul.n * op.matmul.k * op.matmul.count
    if op.collective is not None:
        nbytes = int(round(op.collective.bytes * share))
        scaled["collective"] = Collective(op.collective.group, nbytes)
    if op.kind == OpKind.EMBEDDING:
        scaled["weight_bytes"] = int(round(op.weight_bytes * share))
    return evolve(op, **scaled)

