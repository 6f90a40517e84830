"""Convolution kernels: im2col onto the systolic GEMM, and direct depthwise convolution.

Layouts: input x[batch, in_h, in_w, in_c] (NHWC), weights w[kernel_h, kernel_w, in_c / groups,
out_c], output [batch, out_h, out_w, out_c], zero padding `padding` on every side,
out_h = (in_h + 2 padding - kernel_h) // stride + 1 (the fields of workloads.ops' `op.conv`).

- conv (groups >= 1): each group is one GEMM, im2col(x)[batch out_h out_w, kernel_h kernel_w
  in_c/groups] @ w_group[kernel_h kernel_w in_c/groups, out_c/groups], with K ordered
  (kernel row, kernel column, channel) — the order the array sums it in. This is how systolic
  accelerators run convolutions (Chellapilla et al. 2006; SCALE-Sim maps conv layers to this
  GEMM, Samajdar et al. 2020).
- depthwise (groups = in_c, out_c = in_c x multiplier): K per output is only kernel_h x
  kernel_w, far too short for the array; a vector unit runs it directly, one fp32 chain over the
  window in (row, column) order per output.
"""
from __future__ import annotations

import numba
import numpy as np

from hwsim.hw.kernels.numerics import FORMATS, round_to
from hwsim.hw.kernels.systolic import blocked_gemm, k_chunk


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: np.ndarray, kernel_h: int, kernel_w: int, stride: int, padding: int) -> np.ndarray:
    """x[b, h, w, c] -> patches[b * out_h * out_w, kernel_h * kernel_w * c], K ordered (i, j, c)."""
    b, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kernel_h, kernel_w), axis=(1, 2))
    win = win[:, ::stride, ::stride]                       # [b, out_h, out_w, c, kh, kw]
    oh, ow = out_size(h, kernel_h, stride, padding), out_size(w, kernel_w, stride, padding)
    win = win[:, :oh, :ow].transpose(0, 1, 2, 4, 5, 3)     # [b, out_h, out_w, kh, kw, c]
    return np.ascontiguousarray(win.reshape(b * oh * ow, kernel_h * kernel_w * c))


def conv2d_systolic(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int,
                    rows: int, dataflow: str = "ws", accumulate: str = "fp32") -> np.ndarray:
    """Grouped 2-D convolution as one systolic GEMM per group (module docstring)."""
    chunk = k_chunk(dataflow, rows, w.shape[0] * w.shape[1] * w.shape[2])
    return conv2d_im2col(x, w, stride, padding, groups, chunk, accumulate)


def conv2d_im2col(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int,
                  chunk: int, accumulate: str = "fp32") -> np.ndarray:
    """Grouped 2-D convolution as one im2col GEMM per group, K summed in chains of `chunk`
    (systolic.blocked_gemm: R for a ws/is array, 16 for a tensor core, all of K for a direct
    one-chain-per-output loop)."""
    b, h, wd, c = x.shape
    kh, kw, cg, out_c = w.shape
    if c != cg * groups or out_c % groups:
        raise ValueError(f"channels {c} / out {out_c} do not split into {groups} groups of {cg}")
    og = out_c // groups
    oh, ow = out_size(h, kh, stride, padding), out_size(wd, kw, stride, padding)
    out = np.empty((b * oh * ow, out_c), dtype=np.int32 if x.dtype == np.int8 else np.float64)
    for g in range(groups):
        patches = im2col(x[..., g * cg:(g + 1) * cg], kh, kw, stride, padding)
        weights = w[..., g * og:(g + 1) * og].reshape(kh * kw * cg, og)
        out[:, g * og:(g + 1) * og] = blocked_gemm(patches, weights, chunk, accumulate)
    return out.reshape(b, oh, ow, out_c)


@numba.njit(cache=True)
def _depthwise(x, w, stride, padding, acc_code):
    b, h, wd, c = x.shape
    kh, kw, _, out_c = w.shape
    mult = out_c // c
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    out = np.empty((b, oh, ow, out_c), dtype=np.float64)
    for n in range(b):
        for y in range(oh):
            for z in range(ow):
                for oc in range(out_c):
                    ic = oc // mult
                    acc = 0.0
                    for i in range(kh):
                        yy = y * stride - padding + i
                        if yy < 0 or yy >= h:
                            continue
                        for j in range(kw):
                            zz = z * stride - padding + j
                            if zz < 0 or zz >= wd:
                                continue
                            prod = round_to(float(x[n, yy, zz, ic]) * float(w[i, j, 0, oc]), acc_code)
                            acc = round_to(acc + prod, acc_code)
                    out[n, y, z, oc] = acc
    return out


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: int,
                     accumulate: str = "fp32") -> np.ndarray:
    """Depthwise convolution (w[kernel_h, kernel_w, 1, in_c x multiplier]), direct, fp32 chains."""
    if w.shape[2] != 1 or w.shape[3] % x.shape[3]:
        raise ValueError(f"depthwise weights must be [kh, kw, 1, in_c x m], got {w.shape}")
    return _depthwise(np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(w, dtype=np.float32),
                      int(stride), int(padding), FORMATS[accumulate].code)


def conv2d_reference(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int) -> np.ndarray:
    """float64 grouped convolution straight from the definition (no im2col), for the check."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    b, h, wd, _ = x.shape
    kh, kw, cg, out_c = w.shape
    og = out_c // groups
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    oh, ow = out_size(h, kh, stride, padding), out_size(wd, kw, stride, padding)
    out = np.zeros((b, oh, ow, out_c))
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            for g in range(groups):
                out[..., g * og:(g + 1) * og] += np.einsum(
                    "bhwc,co->bhwo", tap[..., g * cg:(g + 1) * cg], w[i, j, :, g * og:(g + 1) * og])
    return out
