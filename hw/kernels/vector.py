"""Vector-unit ops (NPU vector units, hw/npu.py: `vector_units` x `vector_lanes` lanes), fp32
compute on fp16/bf16 inputs, and their float64 references.

A row reduction (a norm's mean and variance, softmax's max and sum) runs the way a lane-parallel
unit does it: lane l accumulates elements l, l + lanes, l + 2 lanes, ... in fp32, then the lanes'
partials are summed pairwise (a log2(lanes)-level tree). Elementwise ops are one fp32 evaluation
per element. Functions and constants:
- layernorm: (x - mean) / sqrt(var + eps) * gamma + beta, two-pass mean then variance
  (Ba et al. 2016); rmsnorm: x / sqrt(mean(x^2) + eps) * gamma (Zhang & Sennrich 2019); eps 1e-5.
- softmax: max, exp(x - max), sum, divide (three passes over the row).
- gelu: the tanh form GPT-2/3 use, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  (Hendrycks & Gimpel 2016); swiglu: silu(a) * b of the up projection's two halves (Shazeer 2020).
- rope: rotate feature pairs (2i, 2i+1) by pos * 10000**(-2i/d) (Su et al. 2021), angles and their
  cos/sin tables in fp32 as the reference implementations build them.
- add: residual add; relu: max(x, 0); pool: max, or average (an fp32 chain over the window
  times 1/window) (CNNs).
"""
from __future__ import annotations

import math

import numba
import numpy as np

EPS = 1e-5


@numba.njit(cache=True)
def _lane_sum(x, lanes, part):
    """fp32 sum of x: strided per-lane chains, then a pairwise tree over the lanes."""
    for lane in range(lanes):
        part[lane] = np.float32(0.0)
    for i in range(x.size):
        part[i % lanes] += x[i]
    width = lanes
    while width > 1:
        half = width // 2
        for lane in range(half):
            part[lane] = part[2 * lane] + part[2 * lane + 1]
        if width % 2:
            part[half] = part[width - 1]
            half += 1
        width = half
    return part[0]


@numba.njit(cache=True)
def _norm(x, gamma, beta, lanes, rms):
    rows, n = x.shape
    out = np.empty((rows, n), dtype=np.float32)
    part = np.empty(lanes, dtype=np.float32)
    tmp = np.empty(n, dtype=np.float32)
    inv_n = np.float32(1.0 / n)
    eps = np.float32(EPS)
    for r in range(rows):
        if rms:
            mean = np.float32(0.0)
        else:
            mean = _lane_sum(x[r], lanes, part) * inv_n
        for i in range(n):
            c = x[r, i] - mean
            tmp[i] = c * c
        var = _lane_sum(tmp, lanes, part) * inv_n
        inv = np.float32(1.0) / np.float32(math.sqrt(var + eps))
        for i in range(n):
            y = (x[r, i] - mean) * inv * gamma[i]
            out[r, i] = y if rms else y + beta[i]
    return out


@numba.njit(cache=True)
def _softmax(x, lanes):
    rows, n = x.shape
    out = np.empty((rows, n), dtype=np.float32)
    part = np.empty(lanes, dtype=np.float32)
    for r in range(rows):
        m = x[r, 0]
        for i in range(1, n):
            m = max(m, x[r, i])
        for i in range(n):
            out[r, i] = np.float32(np.exp(x[r, i] - m))
        total = _lane_sum(out[r], lanes, part)
        for i in range(n):
            out[r, i] = out[r, i] / total
    return out


@numba.njit(cache=True)
def _elementwise(x, y, what):
    """what: 0 add (x + y), 1 gelu(x), 2 swiglu silu(x) * y, 3 relu(x)."""
    out = np.empty(x.shape, dtype=np.float32)
    xf, yf, of = x.ravel(), y.ravel(), out.ravel()
    c = np.float32(math.sqrt(2.0 / math.pi))
    half, one, cubic = np.float32(0.5), np.float32(1.0), np.float32(0.044715)
    for i in range(xf.size):
        a = xf[i]
        if what == 0:
            of[i] = a + yf[i]
        elif what == 3:
            of[i] = max(a, np.float32(0.0))
        elif what == 1:
            of[i] = half * a * (one + np.float32(np.tanh(c * (a + cubic * a * a * a))))
        else:
            of[i] = a / (one + np.float32(np.exp(-a))) * yf[i]
    return out


@numba.njit(cache=True)
def _rope(x, cos, sin):
    """x[tokens, heads, d] rotated pairwise by the [tokens, d/2] cos/sin tables, fp32."""
    tokens, heads, d = x.shape
    out = np.empty_like(x)
    for t in range(tokens):
        for h in range(heads):
            for i in range(d // 2):
                a, b = x[t, h, 2 * i], x[t, h, 2 * i + 1]
                out[t, h, 2 * i] = a * cos[t, i] - b * sin[t, i]
                out[t, h, 2 * i + 1] = a * sin[t, i] + b * cos[t, i]
    return out


@numba.njit(cache=True)
def _pool(windows, average):
    """windows[outputs, window] -> max, or fp32 chain sum times 1/window."""
    outputs, size = windows.shape
    out = np.empty(outputs, dtype=np.float32)
    inv = np.float32(1.0 / size)
    for o in range(outputs):
        acc = windows[o, 0]
        for i in range(1, size):
            acc = acc + windows[o, i] if average else max(acc, windows[o, i])
        out[o] = acc * inv if average else acc
    return out


def pool(windows, average: bool):
    """Max or average pooling over each row of windows[outputs, kernel_h * kernel_w]."""
    return _pool(_f32(windows), bool(average))


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def layernorm(x, gamma, beta, lanes: int = 128):
    return _norm(_f32(x), _f32(gamma), _f32(beta), int(lanes), False)


def rmsnorm(x, gamma, lanes: int = 128):
    return _norm(_f32(x), _f32(gamma), _f32(gamma), int(lanes), True)


def softmax(x, lanes: int = 128):
    return _softmax(_f32(x), int(lanes))


def add(x, y):
    return _elementwise(_f32(x), _f32(y), 0)


def gelu(x):
    x = _f32(x)
    return _elementwise(x, x, 1)


def relu(x):
    x = _f32(x)
    return _elementwise(x, x, 3)


def swiglu(x, gate):
    return _elementwise(_f32(x), _f32(gate), 2)


def rope_tables(positions: np.ndarray, d: int, base: float = 10000.0):
    """fp32 cos/sin tables [tokens, d/2], built in fp32 (HF transformers' rotary embedding)."""
    inv_freq = (1.0 / base ** (np.arange(0, d, 2, dtype=np.float32) / np.float32(d))).astype(np.float32)
    angles = np.outer(positions.astype(np.float32), inv_freq).astype(np.float32)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def rope(x, positions):
    cos, sin = rope_tables(np.asarray(positions), x.shape[-1])
    return _rope(_f32(x), cos, sin)


# ----------------------------------------------------------------------- float64 references

def layernorm_reference(x, gamma, beta):
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * gamma + beta


def rmsnorm_reference(x, gamma):
    x = np.asarray(x, np.float64)
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + EPS) * gamma


def gelu_reference(x):
    x = np.asarray(x, np.float64)
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def swiglu_reference(x, gate):
    x = np.asarray(x, np.float64)
    return x / (1.0 + np.exp(-x)) * np.asarray(gate, np.float64)


def rope_reference(x, positions, base: float = 10000.0):
    x = np.asarray(x, np.float64)
    d = x.shape[-1]
    angles = np.outer(np.asarray(positions, np.float64), base ** (-np.arange(0, d, 2) / d))
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = x[..., 0::2] * cos - x[..., 1::2] * sin
    out[..., 1::2] = x[..., 0::2] * sin + x[..., 1::2] * cos
    return out
