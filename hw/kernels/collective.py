"""Ring all-reduce, functionally: which partial sums are formed, in which order, in which format.

The ring algorithm (Patarasuk & Yuan, J. Parallel Distrib. Comput. 2009; NCCL's ring): the
buffer is cut into p chunks; in the reduce-scatter phase, at step s device r sends chunk
(r - s) mod p to device r + 1, which adds its own copy; after p - 1 steps device (c - 1) mod p
holds the full sum of chunk c, formed as ((x_c + x_{c+1}) + x_{c+2}) + ... in ring order starting
at device c. The all-gather phase copies it to every device unchanged. Each hop's sum is stored
in the buffer's format (NCCL reduces fp16 buffers in fp16: its sum of two halves is rounded back
to half), so the accumulator is the buffer dtype, with the fp16 tolerance.
"""
from __future__ import annotations

import numba
import numpy as np

from hwsim.hw.kernels.numerics import FORMATS, round_to


@numba.njit(cache=True)
def _ring_all_reduce(x, acc_code):
    p, n = x.shape
    out = np.empty((p, n), dtype=np.float64)
    bounds = np.empty(p + 1, dtype=np.int64)
    for c in range(p + 1):
        bounds[c] = (c * n) // p
    for c in range(p):
        for e in range(bounds[c], bounds[c + 1]):
            acc = float(x[c, e])
            for step in range(1, p):
                acc = round_to(acc + float(x[(c + step) % p, e]), acc_code)
            for r in range(p):                 # all-gather: every device gets the same value
                out[r, e] = acc
    return out


def ring_all_reduce(x: np.ndarray, accumulate: str = "fp16") -> np.ndarray:
    """x[p devices, n] -> [p, n], every row the ring's sum of the rows (module docstring)."""
    return _ring_all_reduce(np.ascontiguousarray(x, dtype=np.float32), FORMATS[accumulate].code)
