"""Workloads: model descriptions and their lowering to an ``OpGraph`` (knows nothing of hardware)."""
from hwsim.workloads.ops import DTYPE_BYTES, Attention, Collective, MatMul, Op, OpGraph, OpKind

__all__ = ["DTYPE_BYTES", "Attention", "Collective", "MatMul", "Op", "OpGraph", "OpKind"]
