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
