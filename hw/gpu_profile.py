"""Profile mode of the GPU model: kernel times measured on a real card, interpolated over shape.

A profile is a folder configs/profiles/NAME/ written by `hwsim calibrate gpu` (CSV files, see
hwsim.calibrate.gpu_bench). Only the microbenchmarks are read here: GEMMs (gemm.csv),
FlashAttention (attention.csv), elementwise kernels (elementwise.csv), launch costs
(launch.csv) and, where the profile has it, the small kernels in context (in_context.csv). Whole
decoder steps (decoder_step.csv) and their traces (step_trace/) are never read: they are the
held-out test of how the kernels compose (hwsim.validate.gpu_fidelity).

Interpolation, all in log-log space (times follow power laws between the regimes):
- GEMM x[m,k] @ W[k,n]: the measured (n, k) family nearest in log n + log k, interpolated over m,
  scaled by n k / (n_f k_f) (both weight bytes and FLOPs scale so); past the largest m, linear in m.
- FlashAttention prefill (causal): over its FLOPs; decode (one query row): over its KV bytes.
- Elementwise: over elements, per op kind and fused / unfused variant (the KV cache write too).

Energy (power.csv, optional): idle power, energy per HBM byte and per bf16 FLOP from the board
power in three sustained states (ProfileEnergy); without it the preset's datasheet energy stands.

Kernels in context (in_context.csv, optional): a fused small kernel right after the GEMM that
writes its input costs more than the same kernel replayed back to back after itself (H200,
2026-12-03, 1-128 tokens: add+RMSNorm +0.8..1.6 us, rope +0.7..1.0, the KV write +0.3..1.0,
SiLU-and-mul +0.2..1.1; split-KV decode attention +2.0..2.3 us at batch 1-2 x 512 keys). In a
decode step every fused add+RMSNorm, rope, SiLU-and-mul (and any activation costed from its
curve), KV write and decode attention kernel runs right after the kernel that writes its input,
so where the profile has the section each costs its time alone (as above) plus its excess,
in_context_us - alone_us of the same run: over log elements (attention: over log batch x heads
at each measured context, then over log context), held flat past the measured points. The
difference, not the in-context time itself, carries over, so the card's drift between sessions
stays out. A difference no larger than the spread of its rounds (spread_us, the range of pair -
GEMM over the rounds) is not resolved and counts as 0: next to large GEMMs (512-2048 tokens,
60-520 us) the pair's round-to-round noise swamps a small kernel. Without the section (profiles
measured before it, e.g. h100-sxm) the times alone stand; the unfused (PyTorch eager) kernels
and prefill attention were not measured in context and keep their times alone.
"""
from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.hw.gpu import (GPUSpec, KernelTime, ServingStack, _hbm_bytes, decode_keys,
                          flash_splits_kv, folded_into_norm)
from hwsim.workloads.ops import Attention, Op, OpKind

PROFILE_FILES = ("gemm.csv", "attention.csv", "elementwise.csv", "launch.csv")
IN_CONTEXT_FILE = "in_context.csv"     # optional (gpu_bench's in_context section)
POWER_FILE = "power.csv"               # optional (gpu_bench's power section)


@dataclass(frozen=True)
class ProfileEnergy:
    """Profile mode's energy model, from the board power the calibration measured in three
    sustained states (power.csv): idle, a device copy streaming HBM, a large bf16 GEMM.

    - static_w: the idle board power (clocks as the card held them), charged over the pass;
    - pj_per_hbm_byte = (P_copy - P_idle) / copy's HBM bytes per second (read + write): what
      streaming a byte costs the whole board (HBM, memory controllers, L2, SMs issuing loads);
    - pj_per_flop = (P_gemm - P_idle - pj_per_hbm_byte x the GEMM's least HBM bytes per second)
      / its FLOP/s, at the clock the card held under that load (its power limit);
    - pj_per_attention_byte (where the decode_attention row is there, else pj_per_hbm_byte):
      the same for FlashAttention over a KV cache, (P_att - P_idle - pj_per_flop x its FLOP/s)
      / its KV bytes per second. On the H200 it is 2.3x the copy's: the decode attention kernel
      reaches the power limit at 2.3 TB/s where a copy draws 566 W at 4.2 TB/s.
    The gemv row (a decode-sized GEMM streaming weights) is a check, not an input: the copy's
    per-byte and the GEMM's per-FLOP energy predict its power (H200: 596 W vs 584 W measured,
    tests/test_gpu.py). Whole passes' measured energy (power_cap*/) is the held-out test
    (hwsim.validate.gpu_fidelity)."""
    static_w: float
    pj_per_hbm_byte: float
    pj_per_bf16_flop: float
    pj_per_attention_byte: float

    def power_w(self, flop_per_s: float, hbm_bytes_per_s: float, attention: bool = False) -> float:
        """Board power of a kernel sustaining these rates (the model the rows were derived for)."""
        per_byte = self.pj_per_attention_byte if attention else self.pj_per_hbm_byte
        return self.static_w + (flop_per_s * self.pj_per_bf16_flop + hbm_bytes_per_s * per_byte) * 1e-12

    @classmethod
    def from_rows(cls, rows: list[dict], where: str) -> "ProfileEnergy":
        by = {r["phase"]: r for r in rows}
        missing = {"idle", "copy", "gemm_bf16"} - set(by)
        if missing:
            raise ValueError(f"{where}: no {', '.join(sorted(missing))} row")
        watts = {k: float(r["power_w"]) for k, r in by.items()}
        for phase, rate in (("copy", "hbm_bytes_per_s"), ("gemm_bf16", "flop_per_s"),
                            ("decode_attention", "hbm_bytes_per_s")):
            if phase in by and not float(by[phase][rate]) > 0:
                raise ValueError(f"{where}: the {phase} row has no {rate}")
        copy_bps = float(by["copy"]["hbm_bytes_per_s"])
        gemm = by["gemm_bf16"]
        if not (watts["idle"] < watts["copy"] and watts["idle"] < watts["gemm_bf16"]):
            raise ValueError(f"{where}: a busy phase draws no more than idle ({watts})")
        per_byte = (watts["copy"] - watts["idle"]) / copy_bps * 1e12
        per_flop = ((watts["gemm_bf16"] - watts["idle"]) * 1e12
                    - per_byte * float(gemm["hbm_bytes_per_s"])) / float(gemm["flop_per_s"])
        if per_flop <= 0:
            raise ValueError(f"{where}: the GEMM's power is all explained by its HBM traffic")
        per_attention_byte = per_byte
        if "decode_attention" in by:
            att = by["decode_attention"]
            per_attention_byte = ((watts["decode_attention"] - watts["idle"]) * 1e12
                                  - per_flop * float(att["flop_per_s"])) / float(att["hbm_bytes_per_s"])
            if per_attention_byte <= 0:
                raise ValueError(f"{where}: decode_attention draws no more than idle")
        return cls(watts["idle"], per_byte, per_flop, per_attention_byte)


def profiles_dir() -> Path:
    from hwsim.configs import CONFIG_DIR
    return CONFIG_DIR / "profiles"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _loglog(x, xs, ys) -> float:
    """Interpolate y(x) in log-log space; flat below the data, linear in x above it."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    if x >= xs[-1]:
        return float(ys[-1] * x / xs[-1])
    return float(np.exp(np.interp(math.log(max(x, 1e-30)), np.log(xs), np.log(ys))))


def _over_context(L: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """Time at context L from one batch's measured (context, time) curve: log-log between the
    points; past the longest context affine in L (the KV stream grows linearly, the fixed part
    stays: slope of the last two points); below the shortest, the log-log slope of the first two
    points held to [0, 1] (between a fixed cost and a proportional one)."""
    if len(xs) == 1:
        return float(ys[0] * (L / xs[0] if L > xs[0] else 1.0))
    if L > xs[-1]:
        slope = max(0.0, (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]))
        return float(ys[-1] + slope * (L - xs[-1]))
    if L < xs[0]:
        k = min(1.0, max(0.0, math.log(ys[1] / ys[0]) / math.log(xs[1] / xs[0])))
        return float(ys[0] * (L / xs[0]) ** k)
    return float(np.exp(np.interp(math.log(L), np.log(xs), np.log(ys))))


def _decode_attention_us(grid: dict, rows: float, L: float, waves=None) -> float:
    """Decode attention over the measured (batch x heads, context) grid: along context within
    each measured batch (_over_context), then log-log across batches; below the smallest batch
    the smallest batch's time (a decode kernel's fixed cost does not shrink with fewer rows) or,
    given `waves` (rows -> waves of thread blocks of the one-pass kernel), that time scaled by the
    waves (the grid then holds only points that run the same kernel); above the largest
    proportional to rows (more blocks in more waves)."""
    bs = sorted(grid)
    at = np.array([_over_context(L, *grid[b]) for b in bs])
    if rows <= bs[0]:
        return float(at[0] * (waves(rows) / waves(bs[0]) if waves else 1.0))
    if rows >= bs[-1]:
        return float(at[-1] * rows / bs[-1])
    return float(np.exp(np.interp(math.log(rows), np.log(bs), np.log(at))))


def _curve(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (x, y) with duplicate x merged by geometric mean."""
    by_x: dict[float, list[float]] = {}
    for x, y in points:
        by_x.setdefault(float(x), []).append(math.log(y))
    xs = np.array(sorted(by_x))
    return xs, np.array([math.exp(sum(by_x[x]) / len(by_x[x])) for x in xs])


def _mean_curve(points: dict[float, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted x and the mean of the values at each x (values may be 0 or negative)."""
    xs = sorted(points)
    return np.array(xs), np.array([float(np.mean(points[x])) for x in xs])


@dataclass
class GPUProfile:
    """Measured kernel times of one card (rows as read from the CSV files)."""
    name: str
    gemm: list[dict]
    attention: list[dict]
    elementwise: list[dict]
    launch: list[dict]
    in_context: list[dict] = field(default_factory=list)
    power: list[dict] = field(default_factory=list)
    _families: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        fams: dict[tuple[str, int, int], list[tuple[float, float]]] = {}
        for r in self.gemm:
            fams.setdefault((r["dtype"], int(r["n"]), int(r["k"])), []).append(
                (int(r["m"]), float(r["us"])))
        self._families = {key: _curve(pts) for key, pts in fams.items()}
        pre = [(_prefill_flops(int(r["batch"]), int(r["q_len"]), int(r["heads"]), int(r["head_dim"])),
                float(r["us"])) for r in self.attention if r["phase"] == "prefill"]
        self._prefill = _curve(pre) if pre else None
        # decode: time over (batch x heads) at each measured context length
        dec: dict[int, list[tuple[float, float]]] = {}
        for r in self.attention:
            if r["phase"] == "decode":
                dec.setdefault(int(r["kv_len"]), []).append(
                    (int(r["batch"]) * int(r["heads"]) * int(r["head_dim"]) / 128, float(r["us"])))
        self._decode = {L: _curve(pts) for L, pts in sorted(dec.items())}
        # the same rows by batch: rows -> curve of time over context length
        grid: dict[float, list[tuple[float, float]]] = {}
        for L, (xs, ys) in self._decode.items():
            for x, y in zip(xs, ys):
                grid.setdefault(float(x), []).append((L, y))
        self._decode_grid = {x: _curve(pts) for x, pts in sorted(grid.items())}
        ew: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for r in self.elementwise:
            ew.setdefault((r["op"], r["variant"]), []).append(
                (int(r["tokens"]) * int(r["width"]), float(r["us"])))
        self._elementwise = {key: _curve(pts) for key, pts in ew.items()}
        self._launch = {(r["what"], r["mode"]): float(r["us_per_kernel"]) for r in self.launch}
        # in context: excess over the kernel alone, per kernel over elements (tokens x width;
        # add+RMSNorm after either projection merged by their mean), for decode attention per
        # context length over batch x heads
        exc: dict[str, dict[float, list[float]]] = {}
        att: dict[float, dict[float, list[float]]] = {}
        for r in self.in_context:
            excess = float(r["in_context_us"]) - float(r["alone_us"])
            if abs(excess) <= float(r["spread_us"]):    # within its rounds' spread: not resolved
                excess = 0.0
            if r["kernel"] == "attention":
                rows = int(r["tokens"]) * int(r["heads"]) * int(r["head_dim"]) / 128
                att.setdefault(float(r["kv_len"]), {}).setdefault(rows, []).append(excess)
            else:
                exc.setdefault(r["kernel"], {}).setdefault(
                    float(int(r["tokens"]) * int(r["width"])), []).append(excess)
        self._excess = {kernel: _mean_curve(pts) for kernel, pts in exc.items()}
        self._attention_excess = {L: _mean_curve(pts) for L, pts in sorted(att.items())}

    def alone(self) -> "GPUProfile":
        """The same profile without its in-context rows: every kernel as measured alone."""
        return GPUProfile(self.name, self.gemm, self.attention, self.elementwise, self.launch,
                          power=self.power)

    @functools.cached_property
    def energy(self) -> ProfileEnergy | None:
        """The measured energy model, or None for a profile without power.csv (the preset's
        datasheet energy stands)."""
        return ProfileEnergy.from_rows(self.power, f"{self.name}/{POWER_FILE}") if self.power else None

    # -- lookups, microseconds
    def gemm_us(self, dtype: str, m: int, n: int, k: int) -> float:
        fams = [key for key in self._families if key[0] == dtype] or \
               [key for key in self._families if key[0] == "bf16"]
        if not fams:
            raise ValueError(f"profile {self.name} has no GEMM measurements")
        key = min(fams, key=lambda f: abs(math.log(n / f[1])) + abs(math.log(k / f[2])))
        xs, ys = self._families[key]
        return _loglog(m, xs, ys) * (n * k) / (key[1] * key[2])

    def attention_us(self, attn: Attention, dtype_bytes: int, gpu: GPUSpec | None = None) -> float:
        """FlashAttention time. Decode with `gpu` given: at the context rounded up to whole key
        tiles of the kernel FA2 picks (hwsim.hw.gpu.decode_keys; the measured contexts are whole
        tiles, so they come back as measured)."""
        q, ctx = attn.query_array, attn.context_array
        if np.any(q > 1):
            if self._prefill is None:
                raise ValueError(f"profile {self.name} has no prefill attention measurements")
            keys = ctx - q + (q + 1) / 2.0
            flops = 4.0 * float(np.sum(q * keys)) * attn.heads * attn.head_dim
            return _loglog(flops, *self._prefill)
        if not self._decode:
            raise ValueError(f"profile {self.name} has no decode attention measurements")
        # rows of work: requests x KV heads (x head_dim / 128); keys: the mean context
        rows = len(ctx) * attn.kv_heads * attn.head_dim / 128 * dtype_bytes / 2
        excess = self.attention_excess_us(rows, float(np.mean(ctx)))    # in a step (see above)
        if gpu is None:
            return _decode_attention_us(self._decode_grid, rows, float(np.mean(ctx))) + excess
        # only the measured batches that run the same kernel (split-KV or one pass: FA2's
        # heuristic, hwsim.hw.gpu.flash_splits_kv); the measured rows are MHA, head dim 128
        split = flash_splits_kv(gpu, attn)
        grid = {r: v for r, v in self._decode_grid.items()
                if flash_splits_kv(gpu, _mha_decode(int(round(r)))) == split} or self._decode_grid
        waves = None if split else (lambda r: math.ceil(r / gpu.sms))
        return _decode_attention_us(grid, rows, float(np.mean(decode_keys(gpu, attn, ctx))),
                                    waves) + excess

    def measured_kernel(self, kind: OpKind, function: str, fused: bool) -> str:
        """Which measured kernel (elementwise.csv's op) stands for a norm or elementwise op:
        LayerNorm and GELU their own rows where the profile has them; other norms the fused
        add+RMSNorm (unfused: the RMSNorm); rotary embedding the rope kernel (elements = tokens x
        (q + k) width, as measured); an add the measured add (one kernel in either stack); any
        other elementwise op SiLU-and-mul."""
        own = {"layernorm", "gelu", "add", "rope"} & {function}
        if own and any(key[0] == function for key in self._elementwise):
            return function
        if kind == OpKind.NORM:
            return "add_rmsnorm" if fused else "rmsnorm"
        return "silu_mul"

    def elementwise_us(self, kind: OpKind, elements: int, fused: bool, function: str = "") -> float:
        """A norm or elementwise kernel over `elements` from the measured rows of the kernel
        that stands for it (`measured_kernel`), in the stack's variant where measured."""
        variant = "fused" if fused else "unfused"
        op = self.measured_kernel(kind, function, fused)
        curve = self._elementwise.get((op, variant)) or self._elementwise.get((op, "unfused")) \
            or self._elementwise.get(("silu_mul", variant)) or self._elementwise.get(("silu_mul", "unfused"))
        if curve is None:
            raise ValueError(f"profile {self.name} has no elementwise measurements")
        us = _loglog(max(elements, 1), *curve)
        return us + self.in_context_excess_us(op, elements) if fused else us

    def in_context_excess_us(self, kernel: str, elements: float) -> float:
        """What the fused `kernel` (in_context.csv's name) costs more right after the kernel that
        writes its input than alone, at `elements`; 0 where the profile did not measure it."""
        if kernel not in self._excess:
            return 0.0
        xs, ys = self._excess[kernel]
        return float(np.interp(math.log(max(elements, 1)), np.log(xs), ys))

    def attention_excess_us(self, rows: float, L: float) -> float:
        """The same for the decode attention kernel at `rows` (batch x heads x head_dim / 128)
        and `L` keys: over log rows at each measured context, then over log context."""
        if not self._attention_excess:
            return 0.0
        Ls = sorted(self._attention_excess)
        at = [float(np.interp(math.log(rows), np.log(xs), ys))
              for xs, ys in (self._attention_excess[x] for x in Ls)]
        return float(np.interp(math.log(max(L, 1)), np.log(Ls), at))

    def kv_write_us(self, elements: int, separate: bool = False) -> float:
        """The KV cache write of `elements` new K and V values: the measured kv_write kernel (one
        kernel for K and V; `separate`: one copy each, its `unfused` rows). Profiles measured
        before kv_write rows existed (harness 1) take the fused SiLU-and-mul curve, once per
        kernel at the elements that kernel writes."""
        curve = self._elementwise.get(("kv_write", "unfused" if separate else "fused"))
        if curve is not None:
            us = _loglog(max(elements, 1), *curve)
            return us if separate else us + self.in_context_excess_us("kv_write", elements)
        kernels = 2 if separate else 1
        return kernels * self.elementwise_us(OpKind.ELEMENTWISE, max(elements // kernels, 1), True)

    def eager_us(self, kind: OpKind) -> float:
        what = "tiny_gemm" if kind in (OpKind.MATMUL, OpKind.ROUTER) or kind.is_attention else "tiny_add"
        return self._launch.get((what, "eager"), 0.0)

    # -- kernels
    def _launch_floor(self, kind: OpKind, stack: ServingStack, us: float) -> float:
        return max(us, self.eager_us(kind)) if stack.launch == "eager" else us

    def kernel(self, gpu: GPUSpec, op: Op, stack: ServingStack) -> KernelTime:
        hbm = _hbm_bytes(gpu, op)
        if op.matmul is not None:
            mm = op.matmul
            us = self.gemm_us(op.dtype, mm.m, mm.n, mm.k) * mm.count
            if op.kv_write_bytes:        # the KV cache write of the new K and V
                us += self.kv_write_us(op.kv_write_bytes // op.dtype_bytes, stack.separate_kv_writes)
            engine = "tensor"
        elif op.attention is not None:     # one of score / context on its own: half the kernel
            return _half(self.flash(gpu, op.attention, op.dtype, stack))
        elif folded_into_norm(op, stack):   # measured inside the fused add_rmsnorm kernel
            return KernelTime(0.0, hbm, "vector")
        else:
            us = self.elementwise_us(op.kind, op.elements or 1, stack.fused_elementwise, op.function)
            engine = "vector"
        return KernelTime(self._launch_floor(op.kind, stack, us) * 1e3, hbm, engine)

    def flash(self, gpu: GPUSpec, attn: Attention, dtype: str, stack: ServingStack) -> KernelTime:
        b = 1 if dtype in ("fp8", "int8") else 4 if dtype == "fp32" else 2
        us = self.attention_us(attn, b, gpu)
        kv = 2.0 * float(np.sum(attn.context_array)) * attn.kv_heads * attn.head_dim * b
        qo = 2.0 * float(np.sum(attn.query_array)) * attn.heads * attn.head_dim * b
        return KernelTime(self._launch_floor(OpKind.ATTENTION_SCORE, stack, us) * 1e3, kv + qo,
                          "tensor")


def _mha_decode(rows: int) -> Attention:
    """A measured decode point as an Attention: `rows` (batch x heads) single-query rows."""
    return Attention(query_tokens=(1,) * rows, context_lens=(1,) * rows, heads=1, kv_heads=1,
                     head_dim=128)


def _half(k: KernelTime) -> KernelTime:
    return KernelTime(k.compute_ns / 2, k.hbm_bytes / 2, k.engine)


def _prefill_flops(batch: int, seq: int, heads: int, head_dim: int) -> float:
    """Causal self-attention FLOPs (QK^T and PV over the lower triangle)."""
    return 4.0 * batch * heads * head_dim * seq * (seq + 1) / 2.0


# The columns profile mode reads from each file (gpu_bench.py writes them): which hold text and
# which whole counts; every other one a finite number >= 0.
PROFILE_COLUMNS = {
    "gemm.csv": ("dtype", "m", "n", "k", "us"),
    "attention.csv": ("phase", "batch", "q_len", "kv_len", "heads", "head_dim", "backend", "us"),
    "elementwise.csv": ("op", "variant", "tokens", "width", "us"),
    "launch.csv": ("what", "mode", "us_per_kernel"),
    IN_CONTEXT_FILE: ("kernel", "after", "tokens", "width", "kv_len", "heads", "head_dim",
                      "alone_us", "in_context_us"),
    POWER_FILE: ("phase", "power_w", "flop_per_s", "hbm_bytes_per_s"),
}
TEXT_COLUMNS = {"dtype", "phase", "backend", "op", "variant", "what", "mode", "kernel", "after"}
COUNT_COLUMNS = {"m", "n", "k", "batch", "q_len", "kv_len", "heads", "head_dim", "tokens",
                 "width", "kernels", "samples", "slowed"}
SIGNED_COLUMNS = {"in_context_us"}     # pair - GEMM: noise can take a tiny kernel below zero


def read_profile_csv(path: Path) -> list[dict]:
    """A profile file's rows, refused with one line naming the file, row and column where a
    file is not text, lacks a column profile mode reads, has no rows, or holds a value that is
    not a finite number >= 0 (a whole one in a count column), so that no bad measurement
    becomes a silently wrong time."""
    try:
        rows = read_csv(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a CSV text file ({type(exc).__name__})") from None
    header = set(rows[0]) if rows else set()
    missing = [c for c in PROFILE_COLUMNS[path.name] if c not in header]
    if not rows or missing:
        raise ValueError(f"{path}: " + ("no rows" if not rows else f"no column {', '.join(missing)}"))
    for i, row in enumerate(rows, start=2):
        for column, value in row.items():
            if column in TEXT_COLUMNS or column is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not (math.isfinite(number) and (number >= 0 or column in SIGNED_COLUMNS)) or (
                    column in COUNT_COLUMNS and number != int(number)):
                kind = "a whole number >= 0" if column in COUNT_COLUMNS else "a finite number >= 0"
                raise ValueError(f"{path}: line {i}, column {column}: {value!r} is not {kind}")
    return rows


def profile_from_dir(path: Path, name: str | None = None) -> GPUProfile:
    missing = [f for f in PROFILE_FILES if not (path / f).exists()]
    if missing:
        raise ValueError(f"profile folder {path} lacks {', '.join(missing)}")
    optional = {f: read_profile_csv(path / f) if (path / f).exists() else []
                for f in (IN_CONTEXT_FILE, POWER_FILE)}
    profile = GPUProfile(name or path.name, *(read_profile_csv(path / f) for f in PROFILE_FILES),
                         in_context=optional[IN_CONTEXT_FILE], power=optional[POWER_FILE])
    profile.energy                        # a bad power.csv fails here, at load
    return profile


@functools.lru_cache(maxsize=16)
def load_profile(name: str) -> GPUProfile:
    """The profile configs/profiles/NAME/ (or NAME as a folder path)."""
    path = Path(name) if ("/" in name or Path(name).is_dir()) else profiles_dir() / name
    if not path.is_dir():
        known = sorted(p.name for p in profiles_dir().iterdir() if p.is_dir()) \
            if profiles_dir().is_dir() else []
        raise ValueError(f"no GPU profile '{name}' (known: {', '.join(known) or 'none'})")
    return profile_from_dir(path, name)


def write_readme(folder, env: dict) -> None:
    """A provenance note next to freshly measured CSV files."""
    folder = Path(folder)
    nv = env.get("nvidia_smi") if isinstance(env.get("nvidia_smi"), dict) else {}
    clocks = env.get("clock_state") if isinstance(env.get("clock_state"), dict) else {}
    clock_note = (
        f"Clock state (NVML): kernel rows were timed from an unslowed card (the run waited before "
        f"{clocks.get('rows_waited')} rows, {clocks.get('seconds_waited')} s in all); each row's "
        "sm_mhz and slowed columns say how it ran. Whole passes (decoder_step*.csv) were replayed "
        "back to back: us is the median replay after 2 s, cold_us the first.\n\n"
        if clocks.get("nvml") else
        "Clock state: NVML was not readable, so rows carry no sm_mhz / slowed columns and were "
        "timed in whatever power state earlier rows left the card.\n\n")
    (folder / "README.md").write_text(
        f"# GPU profile: {env['gpu_name']}\n\n"
        f"Measured by `hwsim calibrate gpu` on {env['date_utc']} in {env.get('seconds', '?')} s: "
        f"{env['sms']} SMs, L2 {env['l2_bytes'] / 2**20:.0f} MiB, driver "
        f"{nv.get('driver_version', '?')}, CUDA {env['cuda']}, torch {env['torch']}, "
        f"triton {env.get('triton')}, serial {nv.get('serial', '?')}. Method and columns: "
        "hwsim/calibrate/gpu_bench.py.\n\n" + clock_note +
        "Profile mode reads gemm.csv, attention.csv, elementwise.csv, launch.csv, "
        "in_context.csv and power.csv (its energy; absent without nvidia-smi) only; "
        "decoder_step.csv (whole decoder steps and prefills) is held out as the test of how the "
        "kernels compose.\n")
