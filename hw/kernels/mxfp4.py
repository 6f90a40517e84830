"""MXFP4 weights and the hardwired neuron's bit-serial product (`hwsim run --check` on an HNLPU).

MXFP4 (OCP Microscaling Formats (MX) Specification v1.0, sections 5.2-5.3): blocks of 32 FP4
E2M1 elements (values 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives) share one E8M0 scale 2^e.
A block is quantized with e = floor(log2(max |w|)) - 2 (2 = the exponent of E2M1's largest
normal, 6 = 1.5 x 2^2) and each element rounded to the nearest E2M1 value, clamped at +-6.

The hardwired neuron (Liu et al., arXiv 2508.16151 v2, 3.1 and Fig. 4): the activations arrive
bit-serially, LSB first, as two's-complement integers of `bits` bits; each input is wired to the
accumulator of its weight's value, which counts the ones of that bit over its inputs (POPCNT);
the counts are shifted into place (the MSB weighing -2^(bits-1)), multiplied by the 16 constants
and the block scale, and summed. Every step is exact (integer counts, FP4 values are multiples of
1/2, scales powers of two), so the output equals the float64 product of the activations with the
dequantized weights exactly: the check's tolerance is 0.
"""
from __future__ import annotations

import numpy as np

BLOCK = 32
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
VALUES = np.concatenate([E2M1, -E2M1])        # code c: sign = c >> 3, magnitude E2M1[c & 7]
EMAX_ELEM = 2


def quantize_mxfp4(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w[K, N] (K a multiple of 32) -> (codes uint8 [K, N], scale exponents int [K / 32, N])."""
    k, n = w.shape
    if k % BLOCK:
        raise ValueError(f"K={k} is not a multiple of the MX block ({BLOCK})")
    blocks = w.reshape(k // BLOCK, BLOCK, n)
    amax = np.abs(blocks).max(axis=1)
    exp = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - EMAX_ELEM, 0).astype(int)
    scaled = blocks / np.exp2(exp)[:, None, :]
    mag = np.abs(scaled)
    idx = np.abs(mag[..., None] - E2M1).argmin(axis=-1)           # nearest E2M1 magnitude (clamps at 6)
    codes = (idx + 8 * (scaled < 0) * (idx > 0)).astype(np.uint8)
    return codes.reshape(k, n), exp


def dequantize_mxfp4(codes: np.ndarray, exp: np.ndarray) -> np.ndarray:
    k, n = codes.shape
    return (VALUES[codes].reshape(k // BLOCK, BLOCK, n) * np.exp2(exp)[:, None, :]).reshape(k, n)


def hn_bit_serial_gemm(x: np.ndarray, codes: np.ndarray, exp: np.ndarray, bits: int) -> np.ndarray:
    """x[M, K] signed integers of `bits` bits times MXFP4 weights, as hardwired neurons compute
    it (module docstring): per block and weight value, popcounts of each activation bit."""
    m, k = x.shape
    n = codes.shape[1]
    u = np.asarray(x, dtype=np.int64) & ((1 << bits) - 1)            # two's-complement bit pattern
    planes = [((u >> j) & 1) for j in range(bits)]                    # LSB first
    out = np.zeros((m, n))
    for b in range(k // BLOCK):
        rows = slice(b * BLOCK, (b + 1) * BLOCK)
        for c in range(16):
            if VALUES[c] == 0.0:
                continue
            wired = (codes[rows] == c).astype(np.int64)              # the metal wires to accumulator c
            acc = np.zeros((m, n), dtype=np.int64)
            for j, plane in enumerate(planes):
                count = plane[:, rows] @ wired                         # POPCNT of bit j
                acc += count << j if j < bits - 1 else -(count << j)
            out += acc * (VALUES[c] * np.exp2(exp[b]))[None, :]
    return out
