"""Number formats, rounding in numba, the error metric and the tolerances of `hwsim run --check`.

Formats. A binary floating-point format is (p, emin, max): p significand bits including the
implicit one, 2**emin the smallest normal, `max` the largest finite value (IEEE 754-2008;
bf16 is fp32 with 8 significand bits; fp8 is OCP/NVIDIA E4M3, which has no infinity —
values past 448 saturate to NaN there, here they become inf, which the check would flag).

Rounding. `round_to(x, code)` rounds a float64 to the format, to nearest, ties to even, with
gradual underflow. A kernel keeps its partial sums in float64 and rounds after every addition or
multiplication: for p' = 53 >= 2p + 2 this double rounding gives exactly the correctly rounded
result of the narrow operation (Figueroa, "When is double rounding innocuous?", SIGNUM 1995), so
`round_to(a + b, FP16)` is an fp16 adder and `np.float32(a + b)` an fp32 adder.

Error metric. `max_rel_error(y, ref) = max|y - ref| / max|ref|`, a normwise (infinity-norm)
relative error. Not elementwise: an output near zero after cancellation has an unbounded
elementwise relative error even in a perfect fp32 datapath (Higham's bound is relative to
|A||B|, not |AB|). Not Frobenius: it would average one wrong element (a dropped tile, an index
off by one) into thousands of right ones; the max catches it. It is 0 exactly when the kernel is
exact, which the int8 check requires.

The reference is computed in float64 from the *same* quantized inputs, so the error is that of
the datapath (accumulation order and width), not the input format's representation error: that
one belongs to the workload's dtype and is the same on every unit.

Tolerances (by the format partial sums are kept in). Higham, "Accuracy and Stability of
Numerical Algorithms", 2nd ed. 2002, eq. (3.5) and section 4.2: a sum formed along a chain of n
rounded additions has |error| <= gamma_n * sum|terms|, gamma_n = n u / (1 - n u), u = 2**-p. For
our error metric this gives e <= gamma_n * kappa, kappa = max(|A||B|) / max|AB|, which for the
independent zero-mean inputs the check draws is about sqrt(K) (<= ~30 at the capped shapes).
- int32 (int8 operands): exact, tolerance 0.
- fp32 (u = 6.0e-8): a GEMM chain is at most K <= 512 additions at the capped shapes (one
  output-stationary chain; ws/is: R + K/R), so the *worst case* is gamma_512 * kappa <=
  512 * 6e-8 * 30 = 9e-4; softmax/attention sums over L <= 1024 have positive terms (kappa = 1),
  worst case 6e-5. Tolerance 1e-3 covers the worst case; observed errors are ~1e-7..1e-6, near
  the probabilistic bound lambda sqrt(n) u kappa (Higham & Mary, SIAM J. Sci. Comput. 41(5),
  2019). An fp16-width accumulator crosses it at K in the thousands (tests/test_kernels.py).
  bf16 and fp8 operands get the same tolerance: their products are exact in fp32, so only the
  fp32 accumulation rounds (the reference uses the same rounded operands).
- fp16 (u = 4.9e-4): the worst case is useless (gamma_36 * 30 > 0.5), so the tolerance comes from
  the probabilistic bound with lambda = 3 (failure probability ~1e-4 per sum, less for the
  max over outputs because kappa's worst element and the error's are rarely the same):
  3 * sqrt(36) * 4.9e-4 ~ 9e-3 -> 1e-2. Used by bank-PIM adders and fp16 ring all-reduce.
- bf16 (u = 3.9e-3): the same rule, 8x fp16 -> 8e-2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class Format:
    name: str
    code: int          # what the numba kernels take
    p: int             # significand bits including the implicit one
    emin: int          # smallest normal is 2**emin
    max: float         # largest finite value

    @property
    def unit_roundoff(self) -> float:
        return 2.0 ** -self.p


FP32 = Format("fp32", 0, 24, -126, float(np.finfo(np.float32).max))
FP16 = Format("fp16", 1, 11, -14, 65504.0)
BF16 = Format("bf16", 2, 8, -126, float.fromhex("0x1.fep127"))
FP8 = Format("fp8", 3, 4, -6, 448.0)          # E4M3
FORMATS = {f.name: f for f in (FP32, FP16, BF16, FP8)}

# Accumulator format -> tolerance on max_rel_error (module docstring says why).
TOLERANCE = {"int32": 0.0, "fp32": 1e-3, "fp16": 1e-2, "bf16": 8e-2}


@numba.njit(cache=True)
def round_to_format(x, p, emin, max_finite):
    """x (float64) rounded to a binary format of p significand bits, smallest normal 2**emin:
    round to nearest, ties to even, subnormals kept, overflow to +-inf."""
    if x == 0.0 or not math.isfinite(x):
        return x
    _, e = math.frexp(x)                 # x = m 2**e, 0.5 <= |m| < 1: leading bit weighs 2**(e-1)
    q = e - p if e - 1 >= emin else emin - p + 1   # weight of the last kept bit
    y = math.ldexp(np.rint(math.ldexp(x, -q)), q)
    if abs(y) > max_finite:
        return math.copysign(math.inf, x)
    return y


@numba.njit(cache=True)
def round_to(x, code):
    """x rounded to the format with numba code `code` (0 fp32, 1 fp16, 2 bf16, 3 fp8 E4M3)."""
    if code == 0:
        return float(np.float32(x))
    if code == 1:
        return round_to_format(x, 11, -14, 65504.0)
    if code == 2:
        return round_to_format(x, 8, -126, 3.3895313892515355e38)
    return round_to_format(x, 4, -6, 448.0)


@numba.njit(cache=True)
def _round_array(x, code):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = round_to(x[i], code)
    return out


def quantize(x: np.ndarray, dtype: str) -> np.ndarray:
    """`x` rounded to `dtype` (fp32/fp16/bf16/fp8), returned as float32 holding those values."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "fp32":
        return x.astype(np.float32)
    if dtype == "fp16":
        return x.astype(np.float16).astype(np.float32)
    fmt = FORMATS[dtype]
    return _round_array(x.ravel(), fmt.code).reshape(x.shape).astype(np.float32)


def random_operand(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    """Independent zero-mean inputs in `dtype`: N(0, 1) rounded to the format (float32
    array), or uniform integers in [-128, 127] for int8 (int8 array)."""
    if dtype == "int8":
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return quantize(rng.standard_normal(shape), dtype)


def max_rel_error(y: np.ndarray, ref: np.ndarray) -> float:
    """max|y - ref| / max|ref| (module docstring: why this one). 0 when both are all zero."""
    ref = np.asarray(ref, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        return math.inf              # a NaN or overflow must fail, not compare False
    diff = np.max(np.abs(np.asarray(y, dtype=np.float64) - ref)) if ref.size else 0.0
    scale = np.max(np.abs(ref)) if ref.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return float(diff / scale)
