"""A training step as an op graph: the forward pass, backpropagation (the gradient w.r.t. each
layer's input and w.r.t. its weights) and the optimizer's update of every weight layer.

Built from a CNN's inference graph (workloads/cnn.py), hardware-neutral like it. Every op keeps
its `kind` (what it computes: conv, depthwise conv, matmul, norm, pool, elementwise, optimizer)
and says in `step` (``TrainStep``) which product of backpropagation it is; costs read both, never
op names.

Closed forms (single sample or batch B; a conv's MACs M = B * out_h * out_w * k_h * k_w *
in_c / groups * out_c; a fully connected layer's M = B * in * out):
- forward: as inference, M MACs;
- gradient w.r.t. the input (dL/dx = dL/dy convolved with the flipped filters, a transposed
  convolution): M MACs, the same M as forward (each product w * x of the forward pass appears
  once as w * dy); skipped for the first layer (nothing upstream needs the input's gradient);
- gradient w.r.t. the weights (dL/dW = x correlated with dL/dy): M MACs;
  so a trained conv / FC layer costs 3 M, its backward 2 M (Goodfellow, Bengio, Courville, "Deep
  Learning", section 6.5; the 2x rule used by every training FLOP count, e.g. Kaplan et al. 2020);
- BatchNorm (Ioffe & Szegedy, ICML 2015, Algorithm 1 and its backward), after every conv whose
  inference graph folded one (`Op.folded_norm`, set by the model builders): per element, forward
  mean and variance (2 adds, 1 multiply) and the normalisation and affine (subtract, multiply,
  multiply, add), with ReLU (1): 8 FLOPs; backward: the sums of dy and dy * x_hat for dgamma and
  dbeta (3) and dx = gamma / sigma * (dy - mean(dy) - x_hat * mean(dy * x_hat)) (5), ReLU's mask
  (1): 9 FLOPs. `norms: none` drops them (ReLU's mask then rides on the conv ops, uncounted);
- pooling backward: one operation per input element (average: dy / window; max: route to the
  argmax); a residual add's backward passes dy to both inputs unchanged (no op); a tensor used by
  two layers (a residual branch point) gets the sum of their gradients (one add per element);
- the update: `sgd` 2 FLOPs per parameter (w -= lr * g), `momentum` 4 (v = mu v + g; w -= lr v,
  one state tensor), `adam` 10 (two moments, bias correction folded in the step size, a square
  root and a division; Kingma & Ba, ICLR 2015, Algorithm 1; two state tensors).

Memory (`training_memory`): what a training step keeps live besides its transient buffers —
the weights, their gradients, the optimizer's state, and the activations saved in the forward
pass for the backward pass: each conv / FC layer's input (for its weight gradient), each norm's
input (x_hat's statistics are recomputed from it) and each pool's input. A tensor saved for
several consumers is stored once. Transient: the largest pair of gradient buffers live at once
(dL/dy of a layer and the dL/dx it produces).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from hwsim.workloads.ops import DTYPE_BYTES, Op, OpGraph, OpKind, TrainStep

INPUT = "<input>"

# FLOPs per element (module docstring).
NORM_FORWARD_FLOPS = 8.0
NORM_BACKWARD_FLOPS = 9.0
OPTIMIZER_FLOPS = {"sgd": 2.0, "momentum": 4.0, "adam": 10.0}
OPTIMIZER_STATE_TENSORS = {"sgd": 0, "momentum": 1, "adam": 2}
WEIGHT_KINDS = (OpKind.CONV, OpKind.DEPTHWISE_CONV, OpKind.MATMUL)


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes a training step keeps resident (module docstring)."""
    weight_bytes: float
    grad_bytes: float
    optimizer_state_bytes: float
    saved_activation_bytes: float
    transient_bytes: float
    saved: dict[str, float]          # tensor (producing op or INPUT) -> bytes saved for backward

    @property
    def total_bytes(self) -> float:
        return (self.weight_bytes + self.grad_bytes + self.optimizer_state_bytes
                + self.saved_activation_bytes + self.transient_bytes)


def _out_elements(op: Op) -> int:
    return op.act_out_bytes // op.dtype_bytes


def _in_elements(op: Op) -> int:
    """Elements of one input tensor of `op` (an add's act_in counts both of its inputs)."""
    n = op.act_in_bytes // op.dtype_bytes
    return n // 2 if op.kind == OpKind.ELEMENTWISE else n


def training_graph(forward: OpGraph, optimizer: str = "sgd", norms: str = "batchnorm",
                   first_layer_input_grad: bool = False, nm: tuple[int, int] | None = None) -> OpGraph:
    """Forward + backward + update of one step over `forward`'s batch (module docstring).
    `nm` = (N, M): the weights of every conv (groups 1) and FC layer are pruned N:M in the
    forward and the backward pass (SAT's bidirectional weight pruning, BDWP: Fang et al., TCAD
    2023): their forward and input-gradient ops carry `nm`; the weight gradient stays dense."""
    if nm is not None and not 0 < nm[0] <= nm[1]:
        raise ValueError(f"N:M sparsity needs 0 < N <= M, got {nm[0]}:{nm[1]}")
    if optimizer not in OPTIMIZER_FLOPS:
        raise ValueError(f"unknown optimizer {optimizer!r}; one of {', '.join(OPTIMIZER_FLOPS)}")
    if norms not in ("batchnorm", "none"):
        raise ValueError(f"norms must be 'batchnorm' or 'none', got {norms!r}")
    info = replace(forward.info, phase="training", tokens=1, work_unit="step")
    g = OpGraph(info)
    dtype = forward.ops[0].dtype if len(forward) else "fp32"
    b = DTYPE_BYTES[dtype]
    out_name: dict[str, str] = {}        # forward op -> the op whose output stands for it (its norm)
    ops = forward.ops

    # -- forward, a norm after every conv when asked (BatchNorm is folded in inference graphs)
    def pruned(op: Op) -> bool:
        return nm is not None and (op.kind == OpKind.MATMUL or (op.kind == OpKind.CONV and op.conv.groups == 1))

    for op in ops:
        preds = [out_name[p] for p in forward.predecessors(op.name)]
        g.add(replace(op, nm=nm) if pruned(op) else op, after=preds)
        out_name[op.name] = op.name
        if norms == "batchnorm" and op.folded_norm:
            n = _out_elements(op)
            g.add(Op(name=f"{op.name}.bn", kind=OpKind.NORM, layer=op.layer, dtype=dtype,
                     flops=NORM_FORWARD_FLOPS * n, elements=n, act_in_bytes=n * b, act_out_bytes=n * b,
                     weight_bytes=2 * op.conv.out_c * b, function="batchnorm"), after=[op.name])
            out_name[op.name] = f"{op.name}.bn"
    last_forward = out_name[ops[-1].name]

    # -- backward, in reverse order: grad_of[t] lists the ops producing pieces of dL/d(output of t)
    grad_of: dict[str, list[str]] = {ops[-1].name: [last_forward]}   # the loss gradient follows the last op
    first_weight_op = next((op.name for op in ops if op.kind in WEIGHT_KINDS), None)
    updates = []

    def grad_ready(name: str) -> list[str]:
        """The op(s) whose completion makes dL/d(output of forward op `name`) available; a sum
        op when several consumers contribute."""
        parts = grad_of.get(name, [])
        if len(parts) <= 1:
            return parts
        fwd = forward.op(name)
        n = _out_elements(fwd)
        s = g.add(Op(name=f"{name}.grad_sum", kind=OpKind.ELEMENTWISE, layer=fwd.layer, dtype=dtype,
                     flops=float(n * (len(parts) - 1)), elements=n, act_in_bytes=n * b * len(parts),
                     act_out_bytes=n * b, function="add", step=TrainStep.INPUT_GRAD), after=parts)
        return [s]

    for op in reversed(ops):
        deps = grad_ready(op.name)
        preds = forward.predecessors(op.name)
        if norms == "batchnorm" and op.folded_norm:
            n = _out_elements(op)
            deps = [g.add(Op(name=f"{op.name}.bn.input_grad", kind=OpKind.NORM, layer=op.layer,
                             dtype=dtype, flops=NORM_BACKWARD_FLOPS * n, elements=n,
                             act_in_bytes=2 * n * b, act_out_bytes=n * b, weight_bytes=2 * op.conv.out_c * b,
                             function="batchnorm", step=TrainStep.INPUT_GRAD), after=deps)]
        if op.kind in WEIGHT_KINDS:
            wg = g.add(replace(op, name=f"{op.name}.weight_grad", step=TrainStep.WEIGHT_GRAD, nm=None,
                               weight_bytes=0, act_in_bytes=op.act_in_bytes + op.act_out_bytes,
                               act_out_bytes=op.weight_bytes), after=deps)
            n_w = op.weight_bytes // b
            updates.append(g.add(Op(name=f"{op.name}.update", kind=OpKind.OPTIMIZER, layer=op.layer,
                                    dtype=dtype, flops=OPTIMIZER_FLOPS[optimizer] * n_w, elements=n_w,
                                    weight_bytes=op.weight_bytes * (1 + OPTIMIZER_STATE_TENSORS[optimizer]),
                                    act_in_bytes=op.weight_bytes, act_out_bytes=op.weight_bytes,
                                    function=optimizer, step=TrainStep.UPDATE), after=[wg]))
            if op.name == first_weight_op and not first_layer_input_grad:
                continue
            ig = g.add(replace(op, name=f"{op.name}.input_grad", step=TrainStep.INPUT_GRAD,
                               nm=nm if pruned(op) else None,
                               act_in_bytes=op.act_out_bytes, act_out_bytes=op.act_in_bytes), after=deps)
        elif op.kind == OpKind.POOL:
            n_in = _in_elements(op)
            ig = g.add(Op(name=f"{op.name}.input_grad", kind=OpKind.POOL, layer=op.layer, dtype=dtype,
                          flops=float(n_in), elements=n_in, act_in_bytes=op.act_out_bytes,
                          act_out_bytes=n_in * b, function=op.function, step=TrainStep.INPUT_GRAD),
                       after=deps)
        else:                       # a residual add: dy flows to both inputs unchanged
            ig = deps[0] if deps else None
        for p in preds:
            if ig is not None:
                grad_of.setdefault(p, []).append(ig)
    g.info = replace(g.info, n_layers=forward.info.n_layers)
    return g


def training_memory(forward: OpGraph, optimizer: str = "sgd", norms: str = "batchnorm") -> TrainingMemory:
    """Resident bytes of one training step of `forward` (module docstring)."""
    if not len(forward):
        return TrainingMemory(0.0, 0.0, 0.0, 0.0, 0.0, {})
    b = forward.ops[0].dtype_bytes
    saved: dict[str, float] = {}
    weights = 0.0
    for op in forward.ops:
        preds = forward.predecessors(op.name) or [INPUT]
        if op.kind in WEIGHT_KINDS or op.kind == OpKind.POOL:
            for p in preds:
                saved[p] = float(_in_elements(op) * b)
        if norms == "batchnorm" and op.folded_norm:
            saved[f"{op.name}.pre_norm"] = float(op.act_out_bytes)
            weights += 2 * op.conv.out_c * b
        weights += op.weight_bytes
    transient = max(float(op.act_in_bytes + op.act_out_bytes) for op in forward.ops)
    state = weights * OPTIMIZER_STATE_TENSORS[optimizer]
    return TrainingMemory(weights, weights, state, float(sum(saved.values())), transient, saved)


def forward_ops(graph: OpGraph) -> list[Op]:
    return [op for op in graph.ops if op.step == TrainStep.FORWARD]


# ---- Transformers ---------------------------------------------------------------------------------
#
# A training step of a Transformer (workloads/transformer.py's prefill graph of the batch: every
# token's forward pass; the loss on the pooled / last token's head output, as a classifier's class
# token or sequence pooling feeds its head). Backward, per forward op (T tokens, H query heads and
# KV key/value heads of head_dim hd, P = the (query, key) pairs of all heads: H x sum(q x L)):
# - linear layer y = x W (+ b) (qkv, out_proj, FFN up/down, head): dL/dx = dL/dy W^T and
#   dL/dW = x^T dL/dy, M MACs each (M = forward MACs; the 2x rule, as for convs above); the bias
#   gradient (a sum over rows) is not counted, as for the CNNs;
# - scores S = Q K^T: dQ = dS K and dK = dS^T Q, M MACs each; context O = P V: dP = dO V^T and
#   dV = P^T dO, M MACs each (the same products with one operand transposed);
# - softmax: dS = P * (dP - rowsum(dP * P)): 4 FLOPs per element (multiply, add into the row sum,
#   subtract, multiply);
# - LayerNorm backward per element: x_hat recomputed (2), g = dy * gamma (1), dgamma += dy * x_hat
#   (2), dbeta += dy (1), the row sums of g and g * x_hat (3), dx = rstd (g - mean g - x_hat mean
#   (g x_hat)) (4): 13; RMSNorm (no mean, no beta): x_hat (1), g (1), dgamma (2), sum g x_hat (2),
#   dx = rstd (g - x_hat mean(g x_hat)) (3): 9;
# - GELU (tanh form) backward: the forward's 8 to recompute tanh, its derivative 0.5 (1 + t) +
#   0.5 x (1 - t^2) c (1 + 3 a x^2) (7), times dy (1): 16; SwiGLU (silu(g) u): silu(g) recomputed
#   (4), du = dy silu(g) (1), dg = dy u sigma(g) (1 + g (1 - sigma(g))) (5): 10 per output element;
#   ReLU: the mask, 1; RoPE: the inverse rotation, the forward's 3;
# - a residual add passes dy to its inputs; a tensor read by several ops (the residual stream,
#   the norm feeding attention and, in a parallel block, the FFN) gets the sum of their gradients
#   (one add per element per extra consumer); Q, K and V are slices of the qkv output, so their
#   gradients are concatenated, not summed;
# - the embedding: its gradient scatter-adds dy into the rows used (one add per element, one more
#   for a learned position table); with a tied head, the head's weight gradient adds into it too
#   and one update covers both;
# - the update: every parameter (closed form: ModelSpec.param_count), the optimizer's FLOPs per
#   parameter as for the CNNs; the norms' gains and biases included.
# Saved for the backward pass (transformer_training_memory): each linear layer's input, Q, K, V,
# the softmax output P (the scores' backward and the context's both read it: stored once), each
# norm's input and its per-row statistics (mean and rstd for LayerNorm, rstd for RMSNorm), each
# activation function's input. Not saved: RoPE (its angles are recomputed), residual adds.

LAYERNORM_BACKWARD_FLOPS = 13.0
RMSNORM_BACKWARD_FLOPS = 9.0
SOFTMAX_BACKWARD_FLOPS = 4.0
ACT_BACKWARD_FLOPS = {"gelu": 16.0, "swiglu": 10.0, "relu": 1.0, "rope": 3.0}


def _check_trainable(model, forward: OpGraph) -> None:
    if model.moe is not None or model.mla is not None:
        raise ValueError("Transformer training steps are modelled for dense MHA/GQA models (no moe, no mla)")
    info = forward.info
    if info.phase != "prefill" or info.tp * info.ep * info.pp != 1:
        raise ValueError("a Transformer training step is built from a prefill pass on one device "
                         "(phase prefill, tp = ep = pp = 1)")


def _norm_elements(op: Op, d: int) -> tuple[int, int]:
    """(rows, parameters) of a norm op over rows of d elements."""
    return op.elements // d, (2 * d if op.function == "layernorm" else d)


def transformer_training_graph(forward: OpGraph, model, optimizer: str = "sgd") -> OpGraph:
    """Forward + backward + update of one step over `forward` (a prefill graph of `model`,
    workloads/transformer.py; the closed forms are in the comment above)."""
    if optimizer not in OPTIMIZER_FLOPS:
        raise ValueError(f"unknown optimizer {optimizer!r}; one of {', '.join(OPTIMIZER_FLOPS)}")
    _check_trainable(model, forward)
    b = DTYPE_BYTES[forward.ops[0].dtype]
    # no KV cache: K and V are the qkv op's output, kept as saved activations
    info = replace(forward.info, phase="training", tokens=1, work_unit="step", kv_bytes_per_device=0,
                   weight_bytes_per_device=model.param_count() * b)
    g = OpGraph(info)
    ops = forward.ops
    dtype = ops[0].dtype
    d = model.d_model
    for op in ops:
        g.add(replace(op, kv_write_bytes=0), after=forward.predecessors(op.name))

    grad_of: dict[str, list[str]] = {ops[-1].name: [ops[-1].name]}   # the loss gradient
    # Q, K, V are slices of the qkv output (and Q, K of RoPE's): their gradients are concatenated
    concat = {op.name for op in ops if op.name.endswith((".qkv", ".rope"))}
    update_deps: dict[str, list[str]] = {}                             # embedding: its gradient parts

    def update(op: Op, n: int, after: list[str]) -> str:
        return g.add(Op(name=f"{op.name}.update", kind=OpKind.OPTIMIZER, layer=op.layer, dtype=dtype,
                        flops=OPTIMIZER_FLOPS[optimizer] * n, elements=n,
                        weight_bytes=n * b * (1 + OPTIMIZER_STATE_TENSORS[optimizer]),
                        act_in_bytes=n * b, act_out_bytes=n * b, function=optimizer,
                        step=TrainStep.UPDATE), after=after)

    def grad_ready(name: str) -> list[str]:
        parts = grad_of.get(name, [])
        if len(parts) <= 1 or name in concat:
            return parts
        fwd = forward.op(name)
        n = fwd.act_out_bytes // b
        return [g.add(Op(name=f"{name}.grad_sum", kind=OpKind.ELEMENTWISE, layer=fwd.layer, dtype=dtype,
                         flops=float(n * (len(parts) - 1)), elements=n, act_in_bytes=n * b * len(parts),
                         act_out_bytes=n * b, function="add", step=TrainStep.INPUT_GRAD), after=parts)]

    def route(preds: list[str], grad: str | None):
        if grad is not None:
            for p in preds:
                grad_of.setdefault(p, []).append(grad)

    def backward_op(op: Op, suffix: str, after: list[str], **fields) -> str:
        return g.add(replace(op, name=f"{op.name}.{suffix}", step=fields.pop("step", TrainStep.INPUT_GRAD),
                             kv_read_bytes=0, kv_write_bytes=0, **fields), after=after)

    for op in reversed(ops):
        deps = grad_ready(op.name)
        preds = forward.predecessors(op.name)
        if op.kind == OpKind.MATMUL:
            wg = backward_op(op, "weight_grad", deps, step=TrainStep.WEIGHT_GRAD, weight_bytes=0,
                             act_in_bytes=op.act_in_bytes + op.act_out_bytes, act_out_bytes=op.weight_bytes)
            if op.name == "lm_head" and model.tied_embeddings:
                update_deps.setdefault("embed", []).append(wg)
            else:
                update(op, op.weight_bytes // b, [wg])
            route(preds, backward_op(op, "input_grad", deps, act_in_bytes=op.act_out_bytes,
                                     act_out_bytes=op.act_in_bytes))
        elif op.kind == OpKind.ATTENTION_CONTEXT:          # O = P V
            pbytes, vbytes, obytes = op.act_in_bytes, op.kv_read_bytes, op.act_out_bytes
            route(preds, backward_op(op, "grad_p", deps, act_in_bytes=obytes + vbytes, act_out_bytes=pbytes))
            layer_qkv = f"L{op.layer}.qkv"
            route([layer_qkv], backward_op(op, "grad_v", deps, act_in_bytes=pbytes + obytes,
                                           act_out_bytes=vbytes))
        elif op.kind == OpKind.ATTENTION_SCORE:            # S = Q K^T
            qbytes, kbytes, sbytes = op.act_in_bytes, op.kv_read_bytes, op.act_out_bytes
            dq = backward_op(op, "grad_q", deps, act_in_bytes=sbytes + kbytes, act_out_bytes=qbytes)
            dk = backward_op(op, "grad_k", deps, act_in_bytes=sbytes + qbytes, act_out_bytes=kbytes)
            for grad in (dq, dk):
                route(preds, grad)
        elif op.kind == OpKind.SOFTMAX:
            n = op.elements
            route(preds, g.add(Op(name=f"{op.name}.input_grad", kind=OpKind.SOFTMAX, layer=op.layer,
                                  dtype=dtype, flops=SOFTMAX_BACKWARD_FLOPS * n, elements=n,
                                  act_in_bytes=2 * n * b, act_out_bytes=n * b, function="softmax",
                                  step=TrainStep.INPUT_GRAD), after=deps))
        elif op.kind == OpKind.NORM:
            n = op.elements
            rows, params = _norm_elements(op, d)
            per = LAYERNORM_BACKWARD_FLOPS if op.function == "layernorm" else RMSNORM_BACKWARD_FLOPS
            ig = g.add(Op(name=f"{op.name}.input_grad", kind=OpKind.NORM, layer=op.layer, dtype=dtype,
                          flops=per * n, elements=n, act_in_bytes=2 * n * b, act_out_bytes=n * b,
                          weight_bytes=params * b, function=op.function, step=TrainStep.INPUT_GRAD),
                       after=deps)
            update(op, params, [ig])
            route(preds, ig)
        elif op.kind == OpKind.EMBEDDING:
            n = op.elements
            adds = n * (2 if model.positions == "learned" else 1)
            wg = g.add(Op(name=f"{op.name}.weight_grad", kind=OpKind.ELEMENTWISE, layer=op.layer,
                          dtype=dtype, flops=float(adds), elements=adds, act_in_bytes=n * b,
                          act_out_bytes=adds * b, function="add", step=TrainStep.WEIGHT_GRAD), after=deps)
            table = model.vocab * d + (model.max_seq_len * d if model.positions == "learned" else 0)
            update(op, table, [wg] + update_deps.get("embed", []))
        elif op.kind == OpKind.ELEMENTWISE and op.function in ACT_BACKWARD_FLOPS:
            n = op.elements
            n_in = op.act_in_bytes // b
            route(preds, g.add(Op(name=f"{op.name}.input_grad", kind=OpKind.ELEMENTWISE, layer=op.layer,
                                  dtype=dtype, flops=ACT_BACKWARD_FLOPS[op.function] * n, elements=n,
                                  act_in_bytes=op.act_out_bytes + op.act_in_bytes, act_out_bytes=n_in * b,
                                  function=op.function, step=TrainStep.INPUT_GRAD), after=deps))
        elif op.kind == OpKind.ELEMENTWISE and op.function == "add":   # residual: dy to every input
            route(preds, deps[0] if deps else None)
        else:
            raise ValueError(f"no backward rule for op {op.name} ({op.kind}, {op.function!r})")
    return g


def transformer_training_memory(forward: OpGraph, model, optimizer: str = "sgd") -> TrainingMemory:
    """Resident bytes of one Transformer training step (the comment above lists what is saved)."""
    _check_trainable(model, forward)
    b = forward.ops[0].dtype_bytes
    d = model.d_model
    saved: dict[str, float] = {}

    def keep(key: str, nbytes: float):
        saved[key] = max(saved.get(key, 0.0), float(nbytes))

    for op in forward.ops:
        preds = forward.predecessors(op.name)
        if op.kind == OpKind.MATMUL:
            keep(preds[0], op.act_in_bytes)
        elif op.kind == OpKind.ATTENTION_SCORE:
            keep(f"{preds[0]}:q", op.act_in_bytes)
            keep(f"L{op.layer}.qkv:k", op.kv_read_bytes)
        elif op.kind == OpKind.SOFTMAX:
            keep(op.name, op.act_out_bytes)
        elif op.kind == OpKind.ATTENTION_CONTEXT:
            keep(preds[0], op.act_in_bytes)                # P: the softmax output, stored once
            keep(f"L{op.layer}.qkv:v", op.kv_read_bytes)
        elif op.kind == OpKind.NORM:
            rows, _ = _norm_elements(op, d)
            keep(preds[0], op.act_in_bytes)
            keep(f"{op.name}:stats", rows * (2 if op.function == "layernorm" else 1) * b)
        elif op.kind == OpKind.ELEMENTWISE and op.function in ACT_BACKWARD_FLOPS and op.function != "rope":
            keep(preds[0], op.act_in_bytes)
    weights = float(model.param_count() * b)
    transient = max(float(op.act_in_bytes + op.act_out_bytes) for op in forward.ops)
    return TrainingMemory(weights, weights, weights * OPTIMIZER_STATE_TENSORS[optimizer],
                          float(sum(saved.values())), transient, saved)
