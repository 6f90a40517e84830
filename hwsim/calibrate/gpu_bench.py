"""GPU microbenchmarks that hwsim's GPU model reads (`hwsim calibrate gpu --out DIR`).

Standalone on purpose: this one file needs only the standard library and PyTorch (Triton, which
ships with PyTorch on Linux, for the fused elementwise kernels; without it those rows are left
out), so it can be copied to a machine with a GPU and run as `python3 gpu_bench.py --out DIR`.
torch is imported inside the functions, never at module level: `hwsim` imports this module on
machines without torch to say so in one line.

Method (every number): inputs drawn at random (never zeros), a warm-up, then the kernel launched
`reps` times back to back inside one CUDA graph (so the time is the GPU's, as a serving stack that
replays graphs sees it), timed with CUDA events around graph replays; the median of the replays
divided by `reps`. Where the operands of one call fit in L2, calls rotate over enough copies to
fill 3x the L2 so every call reads HBM. Sections write CSV rows as they go (flushed), so a run
cut short still leaves its data.

Clock state (where NVML, which ships with the driver, can be read): a kernel row is timed from a
card that has left any power or thermal slowdown earlier rows put it in (`Clocks.wait_unslowed`:
idle until NVML's clock-event reasons show none, at most 2 s a row and 120 s a run), so kernel
rows are boost-clock times, whatever ran before them; the engine, not the profile, holds a pass
at the board's power limit (sim.trace.power_capped). Every timed row records `sm_mhz` (median SM
clock read after each replay) and `slowed` (1 when a power or thermal slowdown was active after
any replay). Whole passes in a CUDA graph (decoder_step*.csv) are timed as a serving loop runs
them: replayed back to back for `PASS_SUSTAIN_S`, `us` the median replay after `PASS_SETTLE_S`
(the card held at its power limit where the pass draws enough), `cold_us` the first replay from
an unslowed card.

CSV files written under --out:
  env.json          GPU name, SMs, L2, clocks (nvidia-smi), driver, CUDA, torch versions, date
  gemm.csv          dtype, m, n, k, us, tflops, gbps (x[m,k] @ W[n,k]^T, as nn.Linear does)
  copy.csv          bytes, us, gbps (device-to-device copy; bytes = read + written)
  launch.csv        what, mode (eager|cuda_graph), us_per_kernel
  attention.csv     phase (prefill|decode), batch, q_len, kv_len, heads, head_dim, backend, us
  elementwise.csv   op, variant (fused|unfused), tokens, width, kernels, bytes, us
                    (op: add_rmsnorm, rmsnorm, add, silu_mul, rope, kv_write, layernorm, gelu;
                    kernels: what one call launches, counted by the profiler for layernorm and gelu)
  decoder_step.csv  phase, launch, fused, batch, ctx, layers, kv_buffers, kernels, cold_us, us
                    (whole LLaMA-2-7B stack; cold_us empty for eager rows)
  (gemm, copy, attention, elementwise, decoder_step*: + sm_mhz, slowed where NVML is readable)
  decoder_step_gpt.csv  model, then the same columns: whole GPT-3-6.7B-shaped passes (LayerNorm,
                    GELU, biases, unfused residual adds) in the serving stack, a second family
  in_context.csv    kernel, after, tokens, width, kv_len, heads, head_dim, gemm_us, pair_us,
                    alone_us, in_context_us, spread_us: a small kernel of the fused stack right
                    after the GEMM that writes its input, as in a decode step. One CUDA graph
                    holds [GEMM -> kernel] pairs back to back (operands rotated as above; the
                    kernel reads the GEMM's fresh output); in_context_us = pair_us - gemm_us (the
                    same GEMM alone, timed the same way), alone_us = the kernel alone back to back
                    on the same buffers. kernel: add_rmsnorm (after: o, down), rope, kv_write,
                    silu_mul (after: gate_up), attention (decode, after: qkv; tokens = batch; q
                    is the qkv output's view as the step uses it). The three timings are
                    interleaved over 3 rounds; each is the median of its rounds, spread_us the
                    range of the rounds' pair - GEMM. LLaMA-2-7B shapes. Not a decoder step: a
                    kernel microbenchmark, which profile mode may read.
  power.csv         phase (idle|copy|gemv|decode_attention|gemm_bf16), seconds, samples, power_w,
                    sm_mhz, flop_per_s, hbm_bytes_per_s: the board's median power (nvidia-smi
                    every 100 ms) in sustained states, each held 10 s, samples after the first
                    3 s (clocks as found, never set); profile mode's energy per FLOP, per HBM
                    byte and idle power come from them. Needs nvidia-smi; without it the section
                    is skipped. + memory_w where NVML reports the memory power domain (the HBM
                    stacks' power, a 1 s average read at the end of the phase); not read by
                    profile mode.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import statistics
import shutil
import subprocess
import sys
import threading
import time

# What the whole-step program (decoder_step.csv) runs, recorded in env.json as harness_version:
# 1 (profiles measured 2026-12-02): the fused stack too wrote K and V into the cache with two
#   PyTorch copy kernels per layer, and the Triton rope ran one program per (token, head);
# 2: the fused stack writes K and V with one Triton kernel (vLLM's reshape_and_cache) and rope
#   runs one program per token (vLLM's rotary_embedding grid); the unfused stack still copies K
#   and V separately (Hugging Face's cache update). elementwise.csv gains kv_write rows.
# 3: kernel rows timed from an unslowed card and whole CUDA-graph passes timed sustained (the
#   module docstring); rows record sm_mhz and slowed.
HARNESS_VERSION = 3

torch = None        # imported by _import_torch()
F = None
triton = None
tl = None


def availability_problem() -> str | None:
    """None when PyTorch with a CUDA GPU is importable here, else one line saying what is missing."""
    try:
        import torch as _torch
    except ImportError:
        return ("PyTorch is not installed: install it with a CUDA build "
                "(pip install 'hwsim[calibrate]', see pytorch.org for the CUDA wheel)")
    if not _torch.cuda.is_available():
        return f"PyTorch {_torch.__version__} sees no CUDA GPU (torch.cuda.is_available() is False)"
    return None


def _import_torch():
    global torch, F, triton, tl
    import torch as _torch
    import torch.nn.functional as _F
    torch, F = _torch, _F
    try:
        import triton as _triton
        import triton.language as _tl
        triton, tl = _triton, _tl
    except ImportError:
        triton = tl = None


# ---------------------------------------------------------------- output
class Table:
    """A CSV file written row by row and flushed, so a run cut short keeps its rows."""

    def __init__(self, path, columns, clocked=False):
        """clocked: each row ends with the SM clock and slowdown state of its timing (CLOCKS),
        where NVML is readable."""
        self.clocked = clocked and CLOCKS.available
        self.f = open(path, "w", newline="")
        self.w = csv.writer(self.f)
        self.w.writerow(list(columns) + (["sm_mhz", "slowed"] if self.clocked else []))
        self.f.flush()

    def row(self, *values):
        values = values + (CLOCKS.row_state() if self.clocked else ())
        self.w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in values])
        self.f.flush()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- clock state
# nvml.h, nvmlClocksEventReasons: SW power cap 0x4, HW slowdown 0x8, SW thermal slowdown 0x20,
# HW thermal slowdown 0x40, HW power brake slowdown 0x80 (idle 0x1 and application clocks 0x2
# are not slowdowns).
SLOWDOWN_REASONS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
NVML_CLOCK_SM = 1
NVML_FI_DEV_POWER_AVERAGE, NVML_POWER_SCOPE_MEMORY = 185, 2   # nvml.h field id and power scope


class Clocks:
    """The SM clock and clock-event reasons of the GPU being timed, read through NVML
    (libnvidia-ml.so.1, installed with the driver) with ctypes; `available` is False where it
    cannot be read (then rows carry no clock columns and no row waits)."""

    def __init__(self, wait_budget_s: float = 120.0, read_nvml: bool = True):
        self.available, self.readings = False, []
        self.wait_budget_s, self.waited_s, self.waits = wait_budget_s, 0.0, 0
        if not read_nvml:
            return
        try:
            import ctypes
            lib = ctypes.CDLL("libnvidia-ml.so.1")
            if lib.nvmlInit_v2() != 0:
                return
            handle = ctypes.c_void_p()
            props = torch.cuda.get_device_properties(0)
            bus = (f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
                   if hasattr(props, "pci_bus_id") else None)
            found = bus is not None and \
                lib.nvmlDeviceGetHandleByPciBusId_v2(bus.encode(), ctypes.byref(handle)) == 0
            count = ctypes.c_uint()
            if not found and (lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0 or count.value != 1
                              or lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) != 0):
                return                          # cannot tell which NVML device torch is timing
            self._reasons = getattr(lib, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                lib.nvmlDeviceGetCurrentClocksThrottleReasons
            self._ctypes, self._lib, self._handle = ctypes, lib, handle
            self.read()
            self.available = True
        except (OSError, AttributeError, RuntimeError):
            pass

    def read(self) -> tuple[int, int]:
        """(SM clock in MHz, clock-event reason bits) now."""
        c = self._ctypes
        mhz, reasons = c.c_uint(), c.c_ulonglong()
        if (self._lib.nvmlDeviceGetClockInfo(self._handle, NVML_CLOCK_SM, c.byref(mhz)) != 0
                or self._reasons(self._handle, c.byref(reasons)) != 0):
            raise RuntimeError("NVML read failed")
        return mhz.value, reasons.value

    def memory_power_w(self) -> float | None:
        """The HBM stacks' power over the last second (NVML field 185, POWER_AVERAGE, with
        scope 2 = memory: "GPU Memory Power Readings" in nvidia-smi -q), or None where the
        card or driver does not report it."""
        c = self._ctypes

        class FieldValue(c.Structure):          # nvml.h nvmlFieldValue_t
            _fields_ = [("fieldId", c.c_uint), ("scopeId", c.c_uint), ("timestamp", c.c_longlong),
                        ("latencyUsec", c.c_longlong), ("valueType", c.c_int),
                        ("nvmlReturn", c.c_int), ("value", c.c_ulonglong)]
        value = FieldValue(fieldId=NVML_FI_DEV_POWER_AVERAGE, scopeId=NVML_POWER_SCOPE_MEMORY)
        if (self._lib.nvmlDeviceGetFieldValues(self._handle, 1, c.byref(value)) != 0
                or value.nvmlReturn != 0):
            return None
        return value.value / 1e3                # milliwatts; an unsigned int value

    def wait_unslowed(self, max_s: float = 2.0) -> None:
        """Idle until no power or thermal slowdown is active (at most max_s, and at most
        wait_budget_s over the run), so the row about to be timed starts at the boost clock."""
        if not self.available or self.waited_s >= self.wait_budget_s:
            return
        t0 = time.time()
        while self.read()[1] & SLOWDOWN_REASONS and time.time() - t0 < max_s:
            time.sleep(0.01)
        waited = time.time() - t0
        self.waited_s += waited
        self.waits += waited > 0.01

    def start_row(self) -> None:
        self.readings = []

    def sample(self) -> None:
        if self.available:
            self.readings.append(self.read())

    def row_state(self) -> tuple:
        """(median SM MHz, 1 if any reading of the row showed a slowdown else 0) of the readings
        since start_row (a row that took none reads the state now); empty without NVML."""
        if not self.available:
            return ("", "")
        if not self.readings:
            self.sample()
        return (statistics.median(m for m, _ in self.readings),
                int(any(r & SLOWDOWN_REASONS for _, r in self.readings)))


CLOCKS = Clocks(read_nvml=False)      # replaced in run(), once torch is imported


# ---------------------------------------------------------------- timing
def l2_bytes() -> int:
    return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20))


def copies_to_defeat_l2(bytes_per_call: int, cap: int = 32) -> int:
    """How many operand sets to rotate over so that together they fill 3x the L2."""
    return max(1, min(cap, math.ceil(3 * l2_bytes() / max(bytes_per_call, 1))))


def _warm_up(calls) -> None:
    """Run `calls()` once on a side stream, outside any capture (cuBLAS handles, autotuning)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        calls()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()


def _captured(calls):
    """A CUDA graph of `calls()`, replayed once (its first replay pays one-time costs)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        calls()
    graph.replay()
    torch.cuda.synchronize()
    return graph


def time_in_graph(call, nbuf: int, target_ms: float = 2.0, replays: int = 7, max_reps: int = 400):
    """Median GPU time of one `call(i)` (i rotates over nbuf operand sets), in microseconds,
    from replays of a CUDA graph holding `reps` calls back to back."""
    _warm_up(lambda: [call(i) for i in range(nbuf)])
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for i in range(nbuf):
        call(i)
    e1.record()
    e1.synchronize()
    est_ms = max(e0.elapsed_time(e1) / nbuf, 1e-4)
    reps = max(nbuf, min(max_reps, math.ceil(target_ms / est_ms)))
    reps = math.ceil(reps / nbuf) * nbuf
    graph = _captured(lambda: [call(r % nbuf) for r in range(reps)])
    CLOCKS.wait_unslowed()
    CLOCKS.start_row()
    times = []
    for _ in range(replays):
        e0.record()
        graph.replay()
        e1.record()
        e1.synchronize()
        CLOCKS.sample()
        times.append(e0.elapsed_time(e1) * 1e3 / reps)
    del graph
    return statistics.median(times)


# A whole pass in a CUDA graph is replayed back to back this long, and its time is the median
# replay after the settle time: on an H200 the 700 W limiter has engaged within ~1 s of a
# pass that draws more (configs/profiles/h200-sxm/power_cap_prefill-2026-12-04/).
PASS_SUSTAIN_S, PASS_SETTLE_S = 4.0, 2.0


def time_sustained(call, sustain_s: float = PASS_SUSTAIN_S, settle_s: float = PASS_SETTLE_S):
    """(cold_us, us) of `call()` captured once in a CUDA graph: cold_us its first replay from an
    unslowed card, us the median replay once it has been replayed back to back for settle_s
    (CLOCKS reads the SM clock after each replay kept)."""
    _warm_up(call)
    graph = _captured(call)
    CLOCKS.wait_unslowed()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    cold, kept, start = None, [], time.time()
    CLOCKS.start_row()
    while time.time() - start < sustain_s or len(kept) < 3:
        e0.record()
        graph.replay()
        e1.record()
        e1.synchronize()
        us = e0.elapsed_time(e1) * 1e3
        if cold is None:
            cold = us
        elif time.time() - start >= settle_s:
            kept.append(us)
            CLOCKS.sample()
    del graph
    return cold, statistics.median(kept)


def time_eager(call, replays: int = 7, inner: int = 20):
    """Median wall time per call of `call()` launched eagerly from Python, synchronised per
    batch of `inner` calls (what an eager PyTorch stack pays: GPU time or CPU issue, the longer)."""
    for _ in range(3):
        call()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        t0 = time.perf_counter()
        for _ in range(inner):
            call()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e6 / inner)
    return statistics.median(times)


def randn(*shape, dtype=None):
    return torch.randn(*shape, device="cuda", dtype=dtype or torch.bfloat16)


# ---------------------------------------------------------------- environment
def environment() -> dict:
    props = torch.cuda.get_device_properties(0)
    env = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpu_name": torch.cuda.get_device_name(0),
        "sms": props.multi_processor_count,
        "l2_bytes": l2_bytes(),
        "memory_bytes": props.total_memory,
        "compute_capability": f"{props.major}.{props.minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "triton": getattr(triton, "__version__", None),
        "python": platform.python_version(),
        "host": platform.node(),
        "harness_version": HARNESS_VERSION,
    }
    query = ("name,serial,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,"
             "power.limit,power.max_limit,temperature.gpu,persistence_mode")
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        env["nvidia_smi"] = dict(zip(query.split(","), [v.strip() for v in out.split(",")]))
    except Exception as exc:  # noqa: BLE001 - the environment record must not stop the run
        env["nvidia_smi"] = f"unavailable: {exc}"
    return env


# ---------------------------------------------------------------- sections
GEMM_NK = [  # (N, K) of LLM linear layers: LLaMA-2-7B, LLaMA-2-70B (GQA), plus the 7B LM head
    (12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008),      # 7B: qkv, o, gate+up, down
    (10240, 8192), (8192, 8192), (57344, 8192), (8192, 28672),      # 70B: qkv, o, gate+up, down
    (32000, 4096),                                                  # 7B LM head
]
GEMM_M = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]


def bench_gemm(out, smoke):
    t = Table(os.path.join(out, "gemm.csv"), ["dtype", "m", "n", "k", "us", "tflops", "gbps"],
              clocked=True)
    grid = [("bf16", m, n, k) for n, k in GEMM_NK for m in GEMM_M]
    grid += [("fp16", m, n, k) for n, k in [(12288, 4096), (4096, 11008)] for m in GEMM_M[::2]]
    grid += [("fp8", m, n, k) for n, k in [(12288, 4096), (4096, 11008), (57344, 8192)]
             for m in GEMM_M if m >= 16]
    if smoke:
        grid = [("bf16", 64, 4096, 4096), ("bf16", 4096, 4096, 4096), ("fp16", 256, 4096, 11008),
                ("fp8", 256, 12288, 4096)]
    fp8_ok = True
    for i, (dtype, m, n, k) in enumerate(grid):
        if dtype == "fp8" and not fp8_ok:
            continue
        try:
            us = _gemm_one(dtype, m, n, k)
        except Exception as exc:  # noqa: BLE001
            log(f"gemm {dtype} {m}x{n}x{k} failed: {type(exc).__name__}: {str(exc)[:200]}")
            fp8_ok = fp8_ok and dtype != "fp8"
            torch.cuda.empty_cache()
            continue
        size = 1 if dtype == "fp8" else 2
        nbytes = (m * k + n * k) * size + m * n * 2
        t.row(dtype, m, n, k, us, 2 * m * n * k / us / 1e6, nbytes / us / 1e3)
        if i % 15 == 0:
            log(f"gemm {i + 1}/{len(grid)} {dtype} m={m} n={n} k={k}: {us:.1f} us")
        torch.cuda.empty_cache()


def _gemm_one(dtype, m, n, k):
    size = 1 if dtype == "fp8" else 2
    nbuf = copies_to_defeat_l2((m * k + n * k) * size + m * n * 2)
    tdt = torch.float16 if dtype == "fp16" else torch.bfloat16
    xs = [randn(m, k, dtype=tdt) for _ in range(nbuf)]
    ws = [randn(n, k, dtype=tdt) for _ in range(nbuf)]
    ys = [torch.empty(m, n, device="cuda", dtype=tdt) for _ in range(nbuf)]
    if dtype == "fp8":
        f8 = torch.float8_e4m3fn
        xs = [x.to(f8) for x in xs]
        ws = [w.to(f8) for w in ws]
        ys = [torch.empty(m, n, device="cuda", dtype=torch.bfloat16) for _ in range(nbuf)]
        one = torch.ones((), device="cuda", dtype=torch.float32)

        def call(i):
            ys[i] = torch._scaled_mm(xs[i], ws[i].t(), scale_a=one, scale_b=one,
                                     out_dtype=torch.bfloat16)
        return time_in_graph(call, nbuf)

    def call(i):
        torch.matmul(xs[i], ws[i].t(), out=ys[i])
    return time_in_graph(call, nbuf)


def bench_copy(out, smoke):
    t = Table(os.path.join(out, "copy.csv"), ["bytes", "mode", "us", "gbps"], clocked=True)
    sizes = [2**p for p in ([24, 30] if smoke else range(20, 33))]
    for nbytes in sizes:
        n = nbytes // 2 // 2                   # bytes counts read + write of bf16 elements
        nbuf = copies_to_defeat_l2(nbytes)
        src = [randn(n) for _ in range(nbuf)]
        dst = [torch.empty_like(s) for s in src]
        us = time_in_graph(lambda i: dst[i].copy_(src[i]), nbuf)
        t.row(nbytes, "cuda_graph", us, nbytes / us / 1e3)
        if nbytes >= 2**28:                    # the same copy launched eagerly, timed by events
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            times = []
            CLOCKS.start_row()
            for _ in range(7):
                e0.record()
                dst[0].copy_(src[0])
                e1.record()
                e1.synchronize()
                CLOCKS.sample()
                times.append(e0.elapsed_time(e1) * 1e3)
            us = statistics.median(times[2:])
            t.row(nbytes, "eager", us, nbytes / us / 1e3)
        del src, dst
        torch.cuda.empty_cache()
    log("copy done")


def bench_launch(out, smoke):
    t = Table(os.path.join(out, "launch.csv"), ["what", "mode", "us_per_kernel"])
    x = randn(1)
    w = randn(128, 128)
    a = randn(1, 128)
    calls = {"tiny_add": lambda: x.add_(1.0), "tiny_gemm": lambda: torch.matmul(a, w.t())}
    for what, fn in calls.items():
        t.row(what, "eager", time_eager(fn, inner=200))
        t.row(what, "cuda_graph", time_in_graph(lambda i: fn(), 1, target_ms=1.0, max_reps=2000))
    log("launch done")


def _sdpa(q, k, v, causal):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def bench_attention(out, smoke):
    t = Table(os.path.join(out, "attention.csv"),
              ["phase", "batch", "q_len", "kv_len", "heads", "head_dim", "backend", "us"],
              clocked=True)
    H, D = 32, 128
    prefill = [(1, L) for L in (128, 256, 512, 1024, 2048, 4096, 8192, 16384)] + \
              [(8, L) for L in (512, 2048)]
    decode = [(b, L) for b in (1, 4, 16, 64, 128) for L in (512, 1024, 2048, 4096, 8192)
              if b * L <= 128 * 4096]
    if smoke:
        prefill, decode = [(1, 512)], [(4, 1024)]
    for b, L in prefill:
        nbuf = copies_to_defeat_l2(4 * b * H * L * D * 2)
        qkv = [randn(b, H, L, D) for _ in range(3 * nbuf)]
        outs = [None] * nbuf

        def call(i):
            outs[i] = _sdpa(qkv[3 * i], qkv[3 * i + 1], qkv[3 * i + 2], True)
        t.row("prefill", b, L, L, H, D, "flash", time_in_graph(call, nbuf))
        del qkv, outs
        torch.cuda.empty_cache()
    log("attention prefill done")
    for b, L in decode:
        nbuf = copies_to_defeat_l2(2 * b * H * L * D * 2)
        q = [randn(b, H, 1, D) for _ in range(nbuf)]
        kv = [randn(b, H, L, D) for _ in range(2 * nbuf)]
        outs = [None] * nbuf

        def call(i):
            outs[i] = _sdpa(q[i], kv[2 * i], kv[2 * i + 1], False)
        t.row("decode", b, 1, L, H, D, "flash", time_in_graph(call, nbuf))
        del q, kv, outs
        torch.cuda.empty_cache()
    log("attention decode done")


# ---- elementwise kernels: the fused ones as a serving stack writes them (one Triton kernel
# each, like vLLM's fused_add_rms_norm / silu_and_mul / rotary_embedding), the unfused ones as
# Hugging Face transformers' LLaMA writes them in PyTorch.
_KERNELS = {}


def _triton_kernels():
    if _KERNELS or triton is None:
        return _KERNELS

    @triton.jit
    def add_rmsnorm(x_ptr, res_ptr, w_ptr, out_ptr, n_cols, eps, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        cols = tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        r = tl.load(res_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        h = x + r
        tl.store(res_ptr + row * n_cols + cols, h.to(res_ptr.dtype.element_ty), mask=mask)
        var = tl.sum(h * h, axis=0) / n_cols
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        y = h * tl.rsqrt(var + eps) * w
        tl.store(out_ptr + row * n_cols + cols, y.to(out_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def silu_mul(gu_ptr, out_ptr, dff, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = cols < dff
        g = tl.load(gu_ptr + row * 2 * dff + cols, mask=mask, other=0.0).to(tl.float32)
        u = tl.load(gu_ptr + row * 2 * dff + dff + cols, mask=mask, other=0.0).to(tl.float32)
        y = g / (1.0 + tl.exp(-g)) * u
        tl.store(out_ptr + row * dff + cols, y.to(out_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def rope(qkv_ptr, pos_ptr, cos_ptr, sin_ptr, row_stride, HEADS: tl.constexpr,
             HALF: tl.constexpr):
        # one program per token over all its q and k heads, as vLLM's rotary_embedding_kernel
        # (csrc/pos_encoding_kernels.cu: grid = num_tokens, the block loops over the heads)
        tok = tl.program_id(0)
        p = tl.load(pos_ptr + tok)
        head = tl.arange(0, HEADS)[:, None]
        i = tl.arange(0, HALF)[None, :]
        base = qkv_ptr + tok.to(tl.int64) * row_stride + head * 2 * HALF
        x1 = tl.load(base + i).to(tl.float32)
        x2 = tl.load(base + HALF + i).to(tl.float32)
        c = tl.load(cos_ptr + p * HALF + i)
        s = tl.load(sin_ptr + p * HALF + i)
        tl.store(base + i, (x1 * c - x2 * s).to(qkv_ptr.dtype.element_ty))
        tl.store(base + HALF + i, (x2 * c + x1 * s).to(qkv_ptr.dtype.element_ty))

    @triton.jit
    def kv_write(qkv_ptr, k_ptr, v_ptr, row_stride, n_new, start, seq_cap, HEADS: tl.constexpr,
                 D: tl.constexpr):
        # the new K and V of one token into the caches [B, H, seq_cap, D] in one kernel, as vLLM's
        # reshape_and_cache (csrc/cache_kernels.cu: grid = num_tokens, K and V in one block);
        # token t is request t // n_new at position start + t % n_new
        t = tl.program_id(0)
        b = (t // n_new).to(tl.int64)
        pos = start + t % n_new
        head = tl.arange(0, HEADS)[:, None]
        d = tl.arange(0, D)[None, :]
        src = qkv_ptr + t.to(tl.int64) * row_stride + HEADS * D + head * D + d
        dst = ((b * HEADS + head) * seq_cap + pos) * D + d
        tl.store(k_ptr + dst, tl.load(src))
        tl.store(v_ptr + dst, tl.load(src + HEADS * D))

    _KERNELS.update(add_rmsnorm=add_rmsnorm, silu_mul=silu_mul, rope=rope, kv_write=kv_write)
    return _KERNELS


class Ops:
    """The elementwise ops of a LLaMA layer, fused (one kernel each) or as PyTorch eager code."""

    def __init__(self, fused: bool, d: int = 4096, heads: int = 32, head_dim: int = 128,
                 max_pos: int = 16384):
        self.fused = fused and bool(_triton_kernels())
        self.d, self.heads, self.head_dim = d, heads, head_dim
        half = head_dim // 2
        inv = 1.0 / (10000 ** (torch.arange(0, half, device="cuda", dtype=torch.float32) / half))
        ang = torch.arange(max_pos, device="cuda", dtype=torch.float32)[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos().contiguous(), ang.sin().contiguous()
        self.cos2 = torch.cat([self.cos, self.cos], -1).to(torch.bfloat16)
        self.sin2 = torch.cat([self.sin, self.sin], -1).to(torch.bfloat16)

    def add_rmsnorm(self, x, res, w, out):
        """res += x; out = rmsnorm(res) * w."""
        if self.fused:
            _KERNELS["add_rmsnorm"][(x.shape[0],)](x, res, w, out, x.shape[1], 1e-5,
                                                   BLOCK=triton.next_power_of_2(x.shape[1]),
                                                   num_warps=8)
            return out
        res.add_(x)
        return self.rmsnorm(res, w)

    def rmsnorm(self, h, w, out=None):
        """Unfused only: Hugging Face LlamaRMSNorm.forward (returns a new tensor)."""
        hf = h.to(torch.float32)
        var = hf.pow(2).mean(-1, keepdim=True)
        hf = hf * torch.rsqrt(var + 1e-5)
        return w * hf.to(h.dtype)

    def silu_mul(self, gu, out):
        dff = out.shape[1]
        if self.fused:
            _KERNELS["silu_mul"][(gu.shape[0], triton.cdiv(dff, 1024))](gu, out, dff, BLOCK=1024)
            return out
        return F.silu(gu[:, :dff]) * gu[:, dff:]         # HF LlamaMLP: act(gate) * up

    def layernorm(self, x, w, b):
        """LayerNorm with gain and bias (GPT-2/GPT-3/OPT-shaped models). Both stacks run
        PyTorch's one native kernel: vLLM's and Hugging Face's models call nn.LayerNorm; neither
        fuses the residual add into it (only RMSNorm has fused_add_rms_norm)."""
        return F.layer_norm(x, (x.shape[1],), w, b, 1e-5)

    def gelu(self, x):
        """GELU, tanh form, of the FFN's first projection. Fused: one kernel (vLLM's gelu_new
        op; F.gelu(approximate="tanh") computes the same); unfused: Hugging Face's
        NewGELUActivation written out (GPT-2, GPT-J: activation_function "gelu_new")."""
        if self.fused:
            return F.gelu(x, approximate="tanh")
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    def rope(self, qkv, pos):
        """Rotate the q and k heads of qkv [T, 3*H*D] in place at positions pos [T]."""
        H, D = self.heads, self.head_dim
        if self.fused:
            _KERNELS["rope"][(qkv.shape[0],)](qkv, pos, self.cos, self.sin, qkv.stride(0),
                                               HEADS=2 * H, HALF=D // 2)
            return qkv
        T = qkv.shape[0]                                  # HF apply_rotary_pos_emb
        qk = qkv[:, :2 * H * D].view(T, 2 * H, D)
        cos, sin = self.cos2[pos][:, None, :], self.sin2[pos][:, None, :]
        rot = torch.cat((-qk[..., D // 2:], qk[..., :D // 2]), dim=-1)
        qk.copy_(qk * cos + rot * sin)
        return qkv

    def kv_write(self, qkv, kc, vc, n_new, start):
        """Write the new K and V (columns d..3d of qkv [T, 3d]) into the caches [B, H, S, D]:
        token t is request t // n_new at position start + t % n_new. Fused: one kernel for K and
        V (vLLM's reshape_and_cache); unfused: one copy each (Hugging Face's cache update)."""
        T, H, D, d = qkv.shape[0], self.heads, self.head_dim, self.d
        if self.fused:
            _KERNELS["kv_write"][(T,)](qkv, kc, vc, qkv.stride(0), n_new, start, kc.shape[2],
                                       HEADS=H, D=D)
            return
        B = T // n_new
        for j, cache in ((1, kc), (2, vc)):
            new = qkv[:, j * d:(j + 1) * d].view(B, n_new, H, D).transpose(1, 2)
            cache[:, :, start:start + n_new].copy_(new)


def check_fused_kernels():
    """The fused Triton kernels against their PyTorch (unfused) versions on random data; raises
    if one is off (bf16: relative error under 1e-2, and the K/V cache written exactly)."""
    fused, ref = Ops(True), Ops(False)
    if not fused.fused:
        return
    T, d = 5, fused.d
    pos = torch.randint(0, 4096, (T,), device="cuda", dtype=torch.int64)
    qkv = randn(T, 3 * d)
    a, b = fused.rope(qkv.clone(), pos), ref.rope(qkv.clone(), pos)
    errs = {"rope": float((a.float() - b.float()).norm() / b.float().norm())}
    for n_new, start, B in ((1, 3, T), (T, 0, 1)):          # decode, prefill
        caches = [torch.full((B, fused.heads, 8, fused.head_dim), float("nan"), device="cuda",
                             dtype=torch.bfloat16) for _ in range(4)]
        fused.kv_write(qkv, caches[0], caches[1], n_new, start)
        ref.kv_write(qkv, caches[2], caches[3], n_new, start)
        torch.cuda.synchronize()
        same = all(torch.equal(torch.nan_to_num(caches[j], 7.0), torch.nan_to_num(caches[j + 2], 7.0))
                   for j in (0, 1))
        errs[f"kv_write n_new={n_new}"] = 0.0 if same else float("inf")
    x, res, w = randn(T, d), randn(T, d), randn(d)
    r1, r2 = res.clone(), res.clone()
    y = fused.add_rmsnorm(x, r1, w, torch.empty_like(x))
    r2.add_(x)
    errs["add_rmsnorm"] = float((y.float() - ref.rmsnorm(r2, w).float()).norm()
                                / ref.rmsnorm(r2, w).float().norm())
    gu = randn(T, 2 * 11008)
    y = fused.silu_mul(gu, torch.empty(T, 11008, device="cuda", dtype=torch.bfloat16))
    z = ref.silu_mul(gu, torch.empty(T, 11008, device="cuda", dtype=torch.bfloat16))
    errs["silu_mul"] = float((y.float() - z.float()).norm() / z.float().norm())
    log("fused kernels vs PyTorch: " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))
    bad = {k: v for k, v in errs.items() if not v < 1e-2}
    if bad:
        raise RuntimeError(f"fused kernels disagree with PyTorch: {bad}")


def bench_elementwise(out, smoke):
    t = Table(os.path.join(out, "elementwise.csv"),
              ["op", "variant", "tokens", "width", "kernels", "bytes", "us"], clocked=True)
    d, dff = 4096, 11008
    tokens = [1, 16] if smoke else [1, 4, 16, 64, 256, 1024, 4096, 16384]
    for fused in (True, False):
        ops = Ops(fused)
        if fused and not ops.fused:
            log("triton unavailable: fused elementwise rows skipped")
            continue
        variant = "fused" if fused else "unfused"
        for T in tokens:
            # add + rmsnorm: reads x, res, writes res, out (bf16)
            nb = 4 * T * d * 2
            nbuf = copies_to_defeat_l2(nb)
            xs = [randn(T, d) for _ in range(nbuf)]
            rs = [randn(T, d) for _ in range(nbuf)]
            os_ = [torch.empty(T, d, device="cuda", dtype=torch.bfloat16) for _ in range(nbuf)]
            w = randn(d)
            us = time_in_graph(lambda i: ops.add_rmsnorm(xs[i], rs[i], w, os_[i]), nbuf)
            t.row("add_rmsnorm", variant, T, d, 1 if fused else 9, nb, us)
            # rmsnorm alone (unfused only: a fused stack always folds the residual add in)
            if not fused:
                us = time_in_graph(lambda i: ops.rmsnorm(rs[i], w), nbuf)
                t.row("rmsnorm", variant, T, d, 8, 2 * T * d * 2, us)
                us = time_in_graph(lambda i: rs[i].add_(xs[i]), nbuf)
                t.row("add", variant, T, d, 1, 3 * T * d * 2, us)
            del xs, rs, os_
            # silu(gate) * up: reads [T, 2 dff], writes [T, dff]
            nb = 3 * T * dff * 2
            nbuf = copies_to_defeat_l2(nb)
            gus = [randn(T, 2 * dff) for _ in range(nbuf)]
            os_ = [torch.empty(T, dff, device="cuda", dtype=torch.bfloat16) for _ in range(nbuf)]
            us = time_in_graph(lambda i: ops.silu_mul(gus[i], os_[i]), nbuf)
            t.row("silu_mul", variant, T, dff, 1 if fused else 2, nb, us)
            del gus, os_
            # rope on the q and k heads of a [T, 3 d] qkv tensor, in place
            nb = 2 * 2 * T * d * 2
            nbuf = copies_to_defeat_l2(3 * T * d * 2)
            qkvs = [randn(T, 3 * d) for _ in range(nbuf)]
            pos = torch.randint(0, 4096, (T,), device="cuda", dtype=torch.int64)
            us = time_in_graph(lambda i: ops.rope(qkvs[i], pos), nbuf)
            t.row("rope", variant, T, 2 * d, 1 if fused else 8, nb, us)
            # LayerNorm over d (reads x, writes y; gain and bias), GELU over the 4d FFN width
            # (reads and writes T x 4d): GPT-shaped models' norm and activation
            nb = 2 * T * d * 2
            nbuf = copies_to_defeat_l2(nb)
            xs = [randn(T, d) for _ in range(nbuf)]
            lw, lb = randn(d), randn(d)
            us = time_in_graph(lambda i: ops.layernorm(xs[i], lw, lb), nbuf)
            t.row("layernorm", variant, T, d, _count_kernels(lambda: ops.layernorm(xs[0], lw, lb)) or 1,
                  nb, us)
            del xs
            nb = 2 * T * 4 * d * 2
            nbuf = copies_to_defeat_l2(nb)
            hs = [randn(T, 4 * d) for _ in range(nbuf)]
            us = time_in_graph(lambda i: ops.gelu(hs[i]), nbuf)
            t.row("gelu", variant, T, 4 * d, _count_kernels(lambda: ops.gelu(hs[0])) or
                  (1 if fused else 8), nb, us)
            del hs
            # the new K and V of T decode requests into their caches [T, H, 2, D] at position 1:
            # reads and writes 2 T d elements
            nb = 2 * 2 * T * d * 2
            nbuf = copies_to_defeat_l2(3 * T * d * 2 + 2 * T * 2 * d * 2)
            kcs = [torch.empty(T, ops.heads, 2, ops.head_dim, device="cuda", dtype=torch.bfloat16)
                   for _ in range(2 * nbuf)]
            us = time_in_graph(lambda i: ops.kv_write(qkvs[i], kcs[2 * i], kcs[2 * i + 1], 1, 1),
                               nbuf)
            t.row("kv_write", variant, T, 2 * d, 1 if fused else 2, nb, us)
            del qkvs, kcs
            torch.cuda.empty_cache()
        log(f"elementwise {variant} done")


# ---------------------------------------------------------------- whole decoder stacks
def _cache_and_attend(ops, qkv, kc, vc, ctx, decode, H, D):
    """A layer's attention over its KV cache from the fused qkv [T, 3 H D]: decode (T requests,
    each at position ctx) writes each new K and V and attends over ctx + 1 cached keys; prefill
    (one request of T tokens) writes the T keys and values and attends causally."""
    T, d = qkv.shape[0], H * D
    if decode:
        q = qkv[:, :d].view(T, H, 1, D)
        ops.kv_write(qkv, kc, vc, 1, ctx)
        return _sdpa(q, kc[:, :, :ctx + 1], vc[:, :, :ctx + 1], False).view(T, d)
    q, k, v = (qkv[:, j * d:(j + 1) * d].view(1, T, H, D).transpose(1, 2) for j in range(3))
    ops.kv_write(qkv, kc, vc, T, 0)
    return _sdpa(q, k, v, True).transpose(1, 2).reshape(T, d)


class Llama:
    """A LLaMA-2-7B-shaped stack of `layers` decoder layers with random bf16 weights (no LM
    head), as a serving stack runs it: fused QKV and gate+up projections, FlashAttention over a
    KV cache, and the elementwise ops fused or not."""

    def __init__(self, layers=32, d=4096, dff=11008, heads=32, vocab=32000):
        self.L, self.d, self.dff, self.H, self.D = layers, d, dff, heads, d // heads
        s = 0.02
        self.embed = randn(vocab, d) * s
        self.w = []
        for _ in range(layers):
            self.w.append(dict(n1=randn(d) * 0 + 1, qkv=randn(3 * d, d) * s, o=randn(d, d) * s,
                               n2=randn(d) * 0 + 1, gu=randn(2 * dff, d) * s,
                               down=randn(d, dff) * s))
        self.final = randn(d) * 0 + 1

    def alloc(self, batch, max_ctx, kv_budget_bytes):
        """KV cache [B, H, max_ctx, D] per layer; if all layers do not fit the budget, layers
        share buffers round-robin (each layer's cache is far larger than L2, so it still streams
        from HBM; recorded in the CSV as kv_buffers)."""
        per_layer = 2 * batch * self.H * max_ctx * self.D * 2
        n = max(1, min(self.L, int(kv_budget_bytes // per_layer)))
        self.kv = [(randn(batch, self.H, max_ctx, self.D), randn(batch, self.H, max_ctx, self.D))
                   for _ in range(n)]
        return n

    def forward(self, ids, pos, ctx, ops, decode):
        """One pass: `ids` [T] tokens; decode: T = batch, each request at position ctx attends
        over ctx + 1 cached keys; prefill (batch 1): T tokens, causal."""
        T, H, D = ids.shape[0], self.H, self.D
        h = F.embedding(ids, self.embed)
        res = torch.zeros_like(h)
        x = torch.empty_like(h)     # the fused norm's output buffer
        for i, w in enumerate(self.w):
            kc, vc = self.kv[i % len(self.kv)]
            x = ops.add_rmsnorm(h, res, w["n1"], x)
            qkv = torch.matmul(x, w["qkv"].t())
            ops.rope(qkv, pos)
            a = _cache_and_attend(ops, qkv, kc, vc, ctx, decode, H, D)
            h = torch.matmul(a, w["o"].t())
            x = ops.add_rmsnorm(h, res, w["n2"], x)
            gu = torch.matmul(x, w["gu"].t())
            act = ops.silu_mul(gu, torch.empty(T, self.dff, device="cuda", dtype=torch.bfloat16))
            h = torch.matmul(act, w["down"].t())
        return ops.add_rmsnorm(h, res, self.final, torch.empty_like(h))


class Gpt3:
    """A GPT-3-6.7B-shaped stack (configs/models/gpt3-7b.yaml: d 4096, 32 heads, FFN 16384,
    LayerNorm, GELU, biases, learned positions; no LM head) as vLLM runs GPT-style models: each
    projection one GEMM with its bias in the epilogue (F.linear), PyTorch's LayerNorm kernel, the
    residual added by a kernel of its own (no fused add+LayerNorm exists), one GELU kernel, the
    new K and V written by one kernel, FlashAttention over the KV cache."""

    def __init__(self, layers=32, d=4096, dff=16384, heads=32, vocab=50257, max_pos=2048):
        self.L, self.d, self.dff, self.H, self.D = layers, d, dff, heads, d // heads
        s = 0.02
        self.embed, self.pos_embed = randn(vocab, d) * s, randn(max_pos + 1, d) * s
        self.w = []
        for _ in range(layers):
            self.w.append(dict(ln1=(randn(d) * 0 + 1, randn(d) * s), qkv=(randn(3 * d, d) * s, randn(3 * d) * s),
                               o=(randn(d, d) * s, randn(d) * s), ln2=(randn(d) * 0 + 1, randn(d) * s),
                               fc1=(randn(dff, d) * s, randn(dff) * s), fc2=(randn(d, dff) * s, randn(d) * s)))
        self.final = (randn(d) * 0 + 1, randn(d) * s)

    alloc = Llama.alloc

    def forward(self, ids, pos, ctx, ops, decode):
        H, D = self.H, self.D
        h = F.embedding(ids, self.embed) + F.embedding(pos, self.pos_embed)
        for i, w in enumerate(self.w):
            kc, vc = self.kv[i % len(self.kv)]
            x = ops.layernorm(h, *w["ln1"])
            a = _cache_and_attend(ops, F.linear(x, *w["qkv"]), kc, vc, ctx, decode, H, D)
            h = h + F.linear(a, *w["o"])
            x = ops.layernorm(h, *w["ln2"])
            h = h + F.linear(ops.gelu(F.linear(x, *w["fc1"])), *w["fc2"])
        return ops.layernorm(h, *self.final)


def _count_kernels(fn):
    """Kernels one call launches, from the profiler (None if it is unavailable)."""
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if e.device_type.name == "CUDA")
    except Exception:  # noqa: BLE001
        return None


def bench_decoder(out, smoke, deadline):
    t = Table(os.path.join(out, "decoder_step.csv"),
              ["phase", "launch", "fused", "batch", "ctx", "layers", "kv_buffers", "kernels",
               "cold_us", "us"], clocked=True)
    layers = 2 if smoke else 32
    model = Llama(layers=layers)
    free = torch.cuda.mem_get_info()[0]
    budget = 0.75 * free - 6e9                       # leave room for activations and graphs
    fused_ops, unfused_ops = Ops(True), Ops(False)
    runs = []   # (phase, launch, fused, batch, ctx)
    batches = [1, 16] if smoke else [1, 2, 4, 8, 16, 32, 64, 128]
    for ctx in (512, 2048):
        runs += [("decode", "cuda_graph", True, b, ctx) for b in batches]
    lengths = [128, 512] if smoke else [128, 256, 512, 1024, 2048]
    runs += [("prefill", "cuda_graph", True, 1, L) for L in lengths]
    runs += [("prefill", "eager", True, 1, L) for L in lengths]
    for b in ([1] if smoke else [1, 16, 64]):       # the serving-stack knobs, a few points
        runs += [("decode", "eager", True, b, 512), ("decode", "eager", False, b, 512),
                 ("decode", "cuda_graph", False, b, 512)]
    runs += [("prefill", "eager", False, 1, L) for L in (lengths[:1] + lengths[-1:])]
    for n, (phase, launch, fused, b, ctx) in enumerate(runs):
        if time.time() > deadline:
            log("deadline reached: remaining decoder runs skipped")
            break
        ops = fused_ops if fused else unfused_ops
        if fused and not ops.fused:
            continue
        timed = _time_pass(model, phase, b, ctx, ops, launch, 32000, budget,
                           count=n < 1 or (b == 1 and ctx in (512, 128)))
        if timed is not None:
            t.row(phase, launch, int(fused), b, ctx, layers, *timed)
            log(f"{phase} {launch} fused={fused} b={b} ctx={ctx}: {timed[-1] / 1e3:.3f} ms")


def _time_pass(model, phase, b, ctx, ops, launch, vocab, budget, count):
    """One whole pass of `model` (decode: `b` requests at position ctx; prefill: one request of
    ctx tokens) timed as CUDA-graph replays (time_sustained) or launched eagerly: (KV buffers,
    kernels a pass launches (profiler; "" unless `count`), cold_us ("" when eager), us), or None
    when it does not fit the GPU."""
    decode = phase == "decode"
    try:
        nbuf = model.alloc(b if decode else 1, ctx + 1 if decode else ctx, budget)
        T = b if decode else ctx
        ids = torch.randint(0, vocab, (T,), device="cuda")
        pos = (torch.full((T,), ctx, device="cuda", dtype=torch.int64) if decode
               else torch.arange(T, device="cuda", dtype=torch.int64))
        step = lambda: model.forward(ids, pos, ctx, ops, decode)   # noqa: E731
        kernels = _count_kernels(step) if count else ""
        if launch == "eager":
            CLOCKS.start_row()
            cold_us, us = "", time_eager(step, replays=5, inner=3)
            CLOCKS.sample()
        else:
            cold_us, us = time_sustained(step)
    except torch.OutOfMemoryError:
        log(f"{type(model).__name__} {phase} b={b} ctx={ctx}: out of memory, skipped")
        return None
    finally:
        model.kv = []
        torch.cuda.empty_cache()
    return nbuf, kernels, cold_us, us


def bench_decoder_gpt(out, smoke, deadline):
    """decoder_step_gpt.csv: whole GPT-3-6.7B-shaped passes (Gpt3) as one CUDA graph with the
    serving stack's kernels: decode at batch 1-128 x contexts 512 / 2047, prefills of 128-2048
    tokens. A second model family for the whole-step test (LayerNorm, GELU, unfused residual
    adds, biases); never read by profile mode."""
    t = Table(os.path.join(out, "decoder_step_gpt.csv"),
              ["model", "phase", "launch", "fused", "batch", "ctx", "layers", "kv_buffers", "kernels",
               "cold_us", "us"], clocked=True)
    layers = 2 if smoke else 32
    model = Gpt3(layers=layers)
    budget = 0.75 * torch.cuda.mem_get_info()[0] - 6e9
    ops = Ops(True)
    if not ops.fused:
        log("triton unavailable: GPT decoder rows skipped (the stack writes K and V with Triton)")
        return
    # decode at 2047 cached keys: the new token is the model's 2048th (its max_seq_len)
    runs = [("decode", b, ctx) for ctx in (512, 2047) for b in ([1, 16] if smoke else [1, 4, 16, 64, 128])]
    runs += [("prefill", 1, L) for L in ([128] if smoke else [128, 512, 2048])]
    for phase, b, ctx in runs:
        if time.time() > deadline:
            log("deadline reached: remaining GPT decoder runs skipped")
            break
        timed = _time_pass(model, phase, b, ctx, ops, "cuda_graph", 50257, budget,
                           count=b == 1 and ctx in (512, 128))
        if timed is not None:
            t.row("gpt3-7b", phase, "cuda_graph", 1, b, ctx, layers, *timed)
            log(f"gpt {phase} b={b} ctx={ctx}: {timed[-1] / 1e3:.3f} ms")


# ---------------------------------------------------------------- kernels in context
# The LLaMA-2-7B GEMMs (n, k) of one layer, and which small kernel of the fused stack reads each
# one's output in a decode step (Llama.forward above).
IN_CONTEXT_GEMMS = {"qkv": (12288, 4096), "o": (4096, 4096), "gate_up": (22016, 4096),
                    "down": (4096, 11008)}
IN_CONTEXT_PAIRS = [("add_rmsnorm", "o"), ("add_rmsnorm", "down"), ("rope", "qkv"),
                    ("kv_write", "qkv"), ("silu_mul", "gate_up")]
IN_CONTEXT_TOKENS = [1, 4, 16, 64, 128, 512, 2048]
IN_CONTEXT_DECODE = [(b, L) for b in (1, 2, 4, 8, 16, 32, 64, 128) for L in (512, 2048)]
IN_CONTEXT_ROUNDS = 3


def _in_context_kernel(ops, kernel, T, nbuf, ys, kv_len=0):
    """`kernel` of the fused stack reading ys[i] (the GEMM's output [T, n]), with its other
    operands rotated over nbuf sets: a function of i."""
    d, dff, H, D = ops.d, 11008, ops.heads, ops.head_dim
    bf = torch.bfloat16
    if kernel == "add_rmsnorm":
        rs = [randn(T, d) for _ in range(nbuf)]
        os_ = [torch.empty(T, d, device="cuda", dtype=bf) for _ in range(nbuf)]
        w = randn(d)
        return lambda i: ops.add_rmsnorm(ys[i], rs[i], w, os_[i])
    if kernel == "silu_mul":
        os_ = [torch.empty(T, dff, device="cuda", dtype=bf) for _ in range(nbuf)]
        return lambda i: ops.silu_mul(ys[i], os_[i])
    if kernel == "rope":
        pos = torch.randint(0, 4096, (T,), device="cuda", dtype=torch.int64)
        return lambda i: ops.rope(ys[i], pos)
    if kernel == "kv_write":      # as elementwise.csv: caches [T, H, 2, D], written at position 1
        kcs = [torch.empty(T, H, 2, D, device="cuda", dtype=bf) for _ in range(2 * nbuf)]
        return lambda i: ops.kv_write(ys[i], kcs[2 * i], kcs[2 * i + 1], 1, 1)
    if kernel == "attention":     # decode: q is the view of the qkv output the step uses
        kv = [randn(T, H, kv_len, D) for _ in range(2 * nbuf)]
        outs = [None] * nbuf

        def call(i):
            outs[i] = _sdpa(ys[i][:, :d].view(T, H, 1, D), kv[2 * i], kv[2 * i + 1], False)
        return call
    raise ValueError(kernel)


def _in_context_one(ops, kernel, after, T, kv_len=0):
    """(gemm_us, pair_us, alone_us, spread_us) of `kernel` after the GEMM `after` at T tokens."""
    n, k = IN_CONTEXT_GEMMS[after]
    H, D = ops.heads, ops.head_dim
    small_bytes = 2 * T * H * kv_len * D * 2 if kernel == "attention" else 4 * T * n * 2
    nbuf = copies_to_defeat_l2((T * k + n * k + T * n) * 2 + small_bytes)
    xs = [randn(T, k) for _ in range(nbuf)]
    ws = [randn(n, k) for _ in range(nbuf)]
    ys = [torch.empty(T, n, device="cuda", dtype=torch.bfloat16) for _ in range(nbuf)]

    def gemm(i):
        torch.matmul(xs[i], ws[i].t(), out=ys[i])
    small = _in_context_kernel(ops, kernel, T, nbuf, ys, kv_len)

    def pair(i):
        gemm(i)
        small(i)
    g, p, a = [], [], []
    for _ in range(IN_CONTEXT_ROUNDS):
        g.append(time_in_graph(gemm, nbuf))
        p.append(time_in_graph(pair, nbuf))
        a.append(time_in_graph(small, nbuf))
    diffs = [pi - gi for pi, gi in zip(p, g)]
    return statistics.median(g), statistics.median(p), statistics.median(a), max(diffs) - min(diffs)


def bench_in_context(out, smoke):
    t = Table(os.path.join(out, "in_context.csv"),
              ["kernel", "after", "tokens", "width", "kv_len", "heads", "head_dim", "gemm_us",
               "pair_us", "alone_us", "in_context_us", "spread_us"])
    ops = Ops(True)
    if not ops.fused:
        log("triton unavailable: in_context skipped (it times the fused kernels)")
        return
    widths = {"add_rmsnorm": ops.d, "silu_mul": 11008, "rope": 2 * ops.d, "kv_write": 2 * ops.d}
    tokens = [1, 16] if smoke else IN_CONTEXT_TOKENS
    cases = [(kernel, after, T, 0) for kernel, after in IN_CONTEXT_PAIRS for T in tokens]
    cases += [("attention", "qkv", b, L) for b, L in ([(4, 1024)] if smoke else IN_CONTEXT_DECODE)]
    for kernel, after, T, L in cases:
        try:
            g, p, a, spread = _in_context_one(ops, kernel, after, T, L)
        except Exception as exc:  # noqa: BLE001 - one failed point must not lose the others
            log(f"in_context {kernel} after {after} T={T} L={L} failed: "
                f"{type(exc).__name__}: {str(exc)[:200]}")
            torch.cuda.empty_cache()
            continue
        t.row(kernel, after, T, widths.get(kernel, ops.d), L, ops.heads, ops.head_dim, g, p, a,
              p - g, spread)
        log(f"in_context {kernel} after {after} T={T} L={L}: gemm {g:.2f} pair {p:.2f} -> "
            f"{p - g:.2f} us in context, {a:.2f} alone (spread {spread:.2f})")
        torch.cuda.empty_cache()


class PowerSampler:
    """Board power and SM clock from `nvidia-smi -lms 100`, each sample stamped with the host
    clock when read, so a phase's samples are those between its start and end times."""

    def __init__(self):
        self.samples = []           # (host time, watts, sm MHz)
        self.proc = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=power.draw,clocks.sm", "--format=csv,noheader,nounits",
             "-lms", "100"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                watts, mhz = (float(v) for v in line.split(","))
            except ValueError:
                continue
            self.samples.append((time.time(), watts, mhz))

    def median(self, t0, t1):
        inside = [(w, f) for t, w, f in self.samples if t0 <= t <= t1]
        if len(inside) < 5:
            raise RuntimeError(f"only {len(inside)} power samples in {t1 - t0:.1f} s")
        return (statistics.median(w for w, _ in inside), statistics.median(f for _, f in inside),
                len(inside))

    def stop(self):
        self.proc.terminate()


def bench_power(out, smoke):
    """Board power in sustained states, for profile mode's energy model: idle (the card at rest
    between kernels), a device copy streaming HBM, a decode-sized GEMM (8 tokens, weights
    streamed), decode attention over a KV cache, and a large bf16 GEMM. Each busy phase
    runs `busy_s` back to back and keeps the samples after `settle_s` (the 700 W cap on an H200
    engages within a second); its rate comes from CUDA events over the same span."""
    if shutil.which("nvidia-smi") is None:
        log("power: no nvidia-smi on PATH, section skipped")
        return
    settle_s, busy_s, idle_s = (1.0, 3.0, 2.0) if smoke else (3.0, 10.0, 6.0)
    memory = CLOCKS.available and CLOCKS.memory_power_w() is not None
    t = Table(os.path.join(out, "power.csv"), ["phase", "seconds", "samples", "power_w", "sm_mhz",
                                               "flop_per_s", "hbm_bytes_per_s"]
              + (["memory_w"] if memory else []))
    memory_w = (lambda: (CLOCKS.memory_power_w() or 0.0,)) if memory else (lambda: ())
    sampler = PowerSampler()
    try:
        time.sleep(1.0)
        torch.cuda.synchronize()
        t0 = time.time()
        time.sleep(idle_s)
        watts, mhz, n = sampler.median(t0 + idle_s / 2, time.time())
        t.row("idle", idle_s / 2, n, watts, mhz, 0.0, 0.0, *memory_w())

        def sustained(phase, call, flop, nbytes):
            call()
            torch.cuda.synchronize()
            start, kept, calls = time.time(), None, 0
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            while time.time() - start < busy_s:
                if kept is None and time.time() - start >= settle_s:
                    torch.cuda.synchronize()
                    kept = time.time()
                    e0.record()
                for _ in range(10):
                    call()
                    calls += kept is not None
                torch.cuda.synchronize()
            e1.record()
            e1.synchronize()
            hbm_w = memory_w()                  # its 1 s average: the last second of the phase
            seconds = e0.elapsed_time(e1) * 1e-3
            watts, mhz, n = sampler.median(kept, time.time())
            t.row(phase, seconds, n, watts, mhz, flop * calls / seconds, nbytes * calls / seconds,
                  *hbm_w)
            log(f"power {phase}: {watts:.0f} W at {mhz:.0f} MHz, "
                f"{flop * calls / seconds / 1e12:.0f} TFLOP/s, {nbytes * calls / seconds / 1e9:.0f} GB/s")

        n = 2**30 // 2                          # 1 GiB of bf16 per buffer: far beyond the L2
        src, dst = randn(n), torch.empty(n, device="cuda", dtype=torch.bfloat16)
        sustained("copy", lambda: dst.copy_(src), 0.0, 2 * 2 * n)   # read + write
        del src, dst
        torch.cuda.empty_cache()
        # a decode-step GEMM: 8 tokens through LLaMA-2-70B's gate+up weights (940 MB, streamed)
        m, nw, k = 8, 57344, 8192
        x, w = randn(m, k), randn(nw, k)
        y = torch.empty(m, nw, device="cuda", dtype=torch.bfloat16)
        sustained("gemv", lambda: torch.matmul(x, w.t(), out=y), 2.0 * m * nw * k, nw * k * 2)
        del x, w, y
        torch.cuda.empty_cache()
        # decode attention (SDPA, one query row) over a KV cache: batch 64 x 2048 keys x 32 heads
        b, H, L, D = 64, 32, 2048, 128
        q, kc, vc = randn(b, H, 1, D), randn(b, H, L, D), randn(b, H, L, D)
        sustained("decode_attention", lambda: _sdpa(q, kc, vc, False), 4.0 * b * H * L * D,
                  2 * b * H * L * D * 2)
        del q, kc, vc
        torch.cuda.empty_cache()
        d = 8192
        a, b, c = randn(d, d), randn(d, d), torch.empty(d, d, device="cuda", dtype=torch.bfloat16)
        # HBM bytes: each operand once and the product once, the least a GEMM moves (tiles that
        # miss the L2 re-read more: unmeasured here)
        sustained("gemm_bf16", lambda: torch.matmul(a, b, out=c), 2.0 * d**3, 3 * d * d * 2)
        del a, b, c
        torch.cuda.empty_cache()
    finally:
        sampler.stop()


def warm_up_clocks(seconds: float = 3.0):
    """Large GEMMs for a few seconds, so the clocks have left their idle state before timing."""
    a, b = randn(8192, 8192), randn(8192, 8192)
    t0 = time.time()
    while time.time() - t0 < seconds:
        for _ in range(10):
            torch.matmul(a, b)
        torch.cuda.synchronize()
    del a, b
    torch.cuda.empty_cache()


SECTIONS = ["launch", "copy", "gemm", "attention", "elementwise", "decoder", "decoder_gpt",
            "in_context", "power"]


def run(out: str, smoke: bool = False, only: list[str] | None = None, budget_s: float = 540):
    """Run the sections into `out`; returns the environment record."""
    _import_torch()
    start = time.time()
    os.makedirs(out, exist_ok=True)
    env = environment()
    env["smoke"] = smoke
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump(env, f, indent=1)
    log(f"{env['gpu_name']}: {env['sms']} SMs, L2 {env['l2_bytes'] / 2**20:.0f} MiB, "
        f"torch {env['torch']}, CUDA {env['cuda']}, triton {env['triton']}")
    global CLOCKS
    CLOCKS = Clocks()
    log("clock state: " + ("NVML readable: kernel rows wait out slowdowns and record sm_mhz, slowed"
                           if CLOCKS.available else "NVML not readable: rows carry no clock state"))
    torch.manual_seed(0)
    check_fused_kernels()
    warm_up_clocks()
    for name in only or SECTIONS:
        t0 = time.time()
        try:
            if name in ("decoder", "decoder_gpt"):
                globals()[f"bench_{name}"](out, smoke, deadline=start + budget_s)
            else:
                globals()[f"bench_{name}"](out, smoke)
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
            log(f"section {name} FAILED: {type(exc).__name__}: {str(exc)[:300]}")
        log(f"section {name}: {time.time() - t0:.1f} s")
        torch.cuda.empty_cache()
    env["seconds"] = round(time.time() - start, 1)
    env["clock_state"] = ({"nvml": True, "rows_waited": CLOCKS.waits,
                           "seconds_waited": round(CLOCKS.waited_s, 1)}
                          if CLOCKS.available else {"nvml": False})
    env["nvidia_smi_at_end"] = environment()["nvidia_smi"]
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump(env, f, indent=1)
    log(f"all done in {env['seconds']} s")
    return env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--smoke", action="store_true", help="one point per section (API check)")
    p.add_argument("--only", nargs="*", choices=SECTIONS)
    p.add_argument("--budget-s", type=float, default=540)
    args = p.parse_args(argv)
    problem = availability_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    run(args.out, args.smoke, args.only, args.budget_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
