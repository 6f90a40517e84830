"""GPU baseline: spec and the time, bytes and energy of the kernels it runs.

A GPU runs an op graph as a sequence of kernels on one stream. Two ways to cost a kernel:

*Datasheet mode* (no `profile`: the way to model a GPU you do not have). Peak rates and bandwidth
come from the datasheet; a small set of named effects, each with its source, turns them into
kernel times:

1. Wave and tile quantization of GEMMs: the output is cut into `tile_m x tile_n` thread-block
   tiles that run in waves of `sms` at once, each tile doing its whole K loop at the per-SM rate
   (NVIDIA Deep Learning Performance Guide, "Matrix Multiplication Background": tile and wave
   quantization). The rate a library reaches on its best shapes is `compute_efficiency` of the
   dense datasheet peak: the "Maximum Achievable Matmul FLOPS" (MAMF) a public brute-force
   PyTorch study measured per GPU (stas00/ml-engineering, compute/accelerator/README.md).
2. The fraction of peak DRAM bandwidth a streaming kernel reaches, `bw_efficiency`
   (a public measurement; see each preset).
3. FlashAttention as one IO-aware kernel (Dao et al. 2022): Q, K, V read once and O written once;
   the score matrix never reaches HBM. Its tensor rate is the FlashAttention-2 rate measured on
   the GPU generation (`flash_attention_efficiency` of the dense peak, times the sequence-length
   curve of FlashAttention-2 in Shah et al. 2024, FlashAttention-3, Fig. 5), quantized in waves of
   `attention_block_m`-row query blocks; in decode (one query row per request and KV head group)
   every block still computes `attention_block_m` rows, so decode attention is compute-bound on
   padded rows once the batch fills the GPU (FlashAttention-2 source: kBlockM = 128 for head dim
   128, 64 in its split-KV decode kernel).
4. Kernel launch: inside a CUDA graph each kernel costs at least `graph_kernel_us` on the GPU;
   launched eagerly from PyTorch each costs at least the CPU's per-op time `kernel_overhead_us`
   (an eager stack is CPU-bound whenever the kernel is shorter).
5. Fused vs unfused elementwise ops: a serving stack runs each norm / activation as one kernel
   and folds a residual add into the RMSNorm after it (LayerNorm has no such kernel); PyTorch
   eager code (Hugging Face) runs RMSNorm as 8 kernels, SwiGLU as 2, GELU (tanh form) as 8 and
   LayerNorm as 1, each passing the tensor through memory (`UNFUSED_KERNELS`).
6. Memory latency: a kernel's chain of dependent global-memory accesses (first load, any
   re-read after a reduction, the store the next kernel waits for), each at the load-to-use
   latency a public pointer-chase microbenchmark measured for HBM (`dram_latency_ns`) or L2
   (`l2_latency_ns`): `memory_chain_ns`. It adds to the kernel's transfer time, not overlaps it
   (the latency-bandwidth model, Hockney 1994: the first bytes arrive one latency after the
   first request, the rest stream behind them at the bandwidth; the last store follows the
   last load). It matters for small kernels (norms, activations, KV-cache writes, split-K
   reductions, FlashAttention's split-KV combine) whose bytes take about as long as that chain.

*Profile mode* (`profile: NAME`): the kernel times measured by `hwsim calibrate gpu` on a real
card (configs/profiles/NAME/) are interpolated over shape (hwsim.hw.gpu_profile); the serving
stack's launch mode still applies. The datasheet constants are never fitted to those
measurements: they are the datasheet mode's out-of-sample test (hwsim.validate.gpu_fidelity).
"""
from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_validator

from hwsim.hw.cost import OpCost
from hwsim.hw.energy import energy_components_j
from hwsim.spec import NonNegativeFloat, PositiveFloat, Spec
from hwsim.workloads.ops import Attention, Op, OpKind

Launch = Literal["cuda_graph", "eager"]

# FlashAttention-2 forward rate over sequence length on an H100 SXM5, head dim 128, causal,
# batch x seqlen = 16k tokens: Shah et al. 2024 (FlashAttention-3, arXiv 2407.08608), Fig. 5,
# FlashAttention-2 bars: 191, 260, 298, 319, 333, 335 TFLOPS at 512 ... 16k; here divided by the
# non-causal plateau (370 TFLOPS at 8k-16k, same figure) to give the shape of the curve.
FA2_SEQ = np.array([512, 1024, 2048, 4096, 8192, 16384])
FA2_CAUSAL_OF_PLATEAU = np.array([191, 260, 298, 319, 333, 335]) / 370.0
FA2_NONCAUSAL_OF_PLATEAU = np.array([309, 350, 362, 368, 370, 370]) / 370.0  # same figure
# The causal bars count nominal FLOPs (half the square, FA3's benchmark script); the kernel
# computes whole 128 x 64 tiles along the diagonal (FA2 head dim 128 on sm80/sm90:
# Flash_fwd_kernel_traits<128, 128, 64, 4>, csrc/flash_attn/src/flash_fwd_launch_template.h),
# so at sequence length L its query block j computes (j + 1) x 128 keys: (L + 128) / L times the
# nominal FLOPs. The causal bars times this are the rate over the FLOPs the tiles compute.
FA2_CAUSAL_TILES_OF_NOMINAL = (FA2_SEQ + 128) / FA2_SEQ

# Kernels per op in PyTorch eager code (Hugging Face transformers), by the op's function:
# LlamaRMSNorm.forward (to(fp32), pow, mean, +eps, rsqrt, mul, to(dtype), mul weight): 8;
# nn.LayerNorm (GPT-2, OPT, Falcon): PyTorch's one native layer_norm kernel; LlamaMLP's
# act(gate) * up: 2 (silu, mul); NewGELUActivation ("gelu_new", GPT-2 / GPT-J): 8 (pow, mul,
# add, mul, tanh, add, mul, mul); apply_rotary_pos_emb as the calibration harness writes it
# (gather cos, gather sin, neg, cat, mul, mul, add, copy): 8. An H200's profiler counts the same
# for the layernorm and gelu rows of configs/profiles/h200-sxm/elementwise.csv. Any other
# function (an add, ReLU, softmax) is one kernel.
UNFUSED_KERNELS = {"rmsnorm": 8, "layernorm": 1, "swiglu": 2, "gelu": 8, "rope": 8}

# FlashAttention-2 counts two 128-thread blocks per SM when it decides to split the KV (flash_api.cpp,
# set_params_splitkv: "We multiply number of SMs by 2 to hard-code the fact that we're using 128
# threads per block").
FA2_BLOCKS_PER_SM = 2

# Split-K: the least K a split-K slice keeps (4 k-blocks of 64, CUTLASS's default tile K for
# 16-bit Hopper GEMMs); assumed.
SPLIT_K_MIN = 256


class GPUSpec(Spec):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    peak_tflops: dict[str, PositiveFloat] = Field(description="dense tensor-core TFLOP/s by dtype")
    vector_tflops: float = Field(gt=0, description="non-tensor FP32 TFLOP/s (vector ops)")
    hbm_bw_gbps: float = Field(gt=0)
    hbm_gib: float = Field(gt=0)
    l2_mib: float = Field(gt=0)
    sms: int = Field(gt=0)
    tile_m: int = Field(default=128, gt=0)
    tile_n: int = Field(default=128, gt=0)
    compute_efficiency: float = Field(gt=0, le=1, description="best-shape GEMM rate / dense peak "
                                      "(16-bit dtypes)")
    fp8_efficiency: float | None = Field(default=None, gt=0, le=1,
                                         description="the same for fp8 (compute_efficiency if unset)")
    bw_efficiency: float = Field(gt=0, le=1, description="fraction of peak HBM bandwidth a "
                                 "streaming kernel reaches")
    flash_attention_efficiency: float = Field(gt=0, le=1, description="FlashAttention-2 forward "
                                              "plateau rate / dense peak")
    attention_block_m: int = Field(default=128, gt=0, description="query rows per FlashAttention "
                                   "thread block")
    attention_split_block_m: int = Field(default=64, gt=0, description="query rows per block of "
                                         "the split-KV decode kernel")
    attention_block_n: int = Field(default=64, gt=0, description="keys per step of a "
                                   "FlashAttention thread block's loop (FlashAttention-2, head dim "
                                   "128: Flash_fwd_kernel_traits<128, 128, 64, 4>, "
                                   "csrc/flash_attn/src/flash_fwd_launch_template.h)")
    graph_kernel_us: float = Field(gt=0, description="least GPU time of one kernel replayed in a "
                                   "CUDA graph")
    dram_latency_ns: float | None = Field(default=None, gt=0, description="load-to-use latency of "
                                          "one dependent HBM access (pointer chase); none: no "
                                          "memory latency chain")
    l2_latency_ns: float | None = Field(default=None, gt=0, description="load-to-use latency of "
                                        "one dependent L2 hit (pointer chase)")
    kernel_overhead_us: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="eager PyTorch: least time per kernel by op class "
        "(matmul, softmax, vector), CPU issue included")
    profile: str | None = Field(default=None, description="measured profile under "
                                "configs/profiles/ (profile mode); none = datasheet mode")
    tdp_w: float = Field(gt=0, description="board power limit: the engine holds a pass at it "
                         "(sim.trace.power_capped). Profile energies were measured at the card's "
                         "own limit; below it they overstate the slowdown (energy per op falls "
                         "with the clock and voltage)")
    idle_power_w: float = Field(ge=0)
    peak_clock_mhz: float | None = Field(default=None, gt=0, le=10_000, description="SM clock "
                                         "the datasheet's tensor peaks are quoted at")
    clock_at_power_limit_mhz: float | None = Field(
        default=None, gt=0, le=10_000, description="SM clock the card holds at tdp_w under a "
        "full tensor-core load (datasheet-mode energy per FLOP, `pj_per_flop`); none: the "
        "clock its peaks are quoted at")
    hbm_pj_per_bit: float = Field(gt=0)
    die_area_mm2: float = Field(gt=0, description="GPU die area from the datasheet/whitepaper "
                                "(the device's area metric; HBM stacks not counted)")
    tech_node_nm: int | None = Field(default=None, gt=0, description="process node of the datasheet "
                                     "figures; informational only: GPU energy and area come from the "
                                     "datasheet and are never node-scaled")

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, name: str | None) -> str | None:
        if name is not None:
            from hwsim.hw.gpu_profile import load_profile
            load_profile(name)          # raises ValueError naming the known profiles
        return name

    @model_validator(mode="after")
    def _static_power_below_the_limit(self) -> "GPUSpec":
        """The engine holds a pass at tdp_w (sim.trace.power_capped): the power the card draws
        doing nothing must be below it."""
        if self.static_w >= self.tdp_w:
            what = "the profile's measured idle power" if self.profile else "idle_power_w"
            raise ValueError(f"tdp_w ({self.tdp_w:g} W) must exceed {what} ({self.static_w:g} W)")
        if (self.peak_clock_mhz is None) != (self.clock_at_power_limit_mhz is None):
            raise ValueError("clock_at_power_limit_mhz and peak_clock_mhz go together: the "
                             "energy per FLOP needs the ratio of the two")
        return self

    def peak(self, dtype: str) -> float:
        if dtype not in self.peak_tflops:
            raise KeyError(f"{self.name} has no tensor peak for {dtype}")
        return self.peak_tflops[dtype] * 1e12

    def matmul_efficiency(self, dtype: str) -> float:
        if dtype == "fp8" and self.fp8_efficiency is not None:
            return self.fp8_efficiency
        return self.compute_efficiency

    @property
    def sustained_bw(self) -> float:
        """Bytes/s a streaming kernel reaches (datasheet mode's HBM rate)."""
        return self.hbm_bw_gbps * 1e9 * self.bw_efficiency

    @property
    def measured_energy(self):
        """The profile's measured energy model (ProfileEnergy), or None: datasheet energy."""
        if self.profile is None:
            return None
        from hwsim.hw.gpu_profile import load_profile
        return load_profile(self.profile).energy

    @property
    def static_w(self) -> float:
        """Board power charged over the whole pass: the profile's measured idle power, else
        the datasheet `idle_power_w`."""
        energy = self.measured_energy
        return self.idle_power_w if energy is None else energy.static_w

    @property
    def dram_pj_per_bit(self) -> float:
        """Energy per HBM bit moved: the profile's measured board energy per streamed byte / 8
        (HBM, controllers, L2 and the SMs issuing the loads), else the datasheet
        `hbm_pj_per_bit` (the DRAM alone)."""
        energy = self.measured_energy
        return self.hbm_pj_per_bit if energy is None else energy.pj_per_hbm_byte / 8

    @property
    def attention_pj_per_bit(self) -> float:
        """Energy per HBM bit an attention kernel moves: the profile's measured figure for
        FlashAttention over a KV cache (ProfileEnergy.pj_per_attention_byte / 8), else
        `dram_pj_per_bit`."""
        energy = self.measured_energy
        return self.dram_pj_per_bit if energy is None else energy.pj_per_attention_byte / 8

    @property
    def power_limited_clock_fraction(self) -> float:
        """clock_at_power_limit_mhz / peak_clock_mhz: the fraction of its datasheet tensor rate
        a card held at its power limit by tensor-core work keeps (1 without the two clocks)."""
        if self.clock_at_power_limit_mhz is None or self.peak_clock_mhz is None:
            return 1.0
        return self.clock_at_power_limit_mhz / self.peak_clock_mhz

    def pj_per_flop(self, dtype: str) -> float:
        """Dynamic energy per FLOP.

        Datasheet: (TDP - idle) / R, R the GEMM rate of a card held at its TDP by tensor-core
        work: peak x matmul_efficiency x power_limited_clock_fraction [derived]. So a pass of
        large GEMMs draws the TDP at the clock the card holds there, and the engine's power cap
        (sim.trace.power_capped) slows a pass that would draw more to that clock; work below
        the limit is charged that clock's energy per FLOP too (energy per FLOP falls with clock
        and voltage: an overstatement there). The datasheet peaks are quoted at a clock below
        the highest one an idle card boosts to (H100/H200 SXM: 1,830 vs 1,980 MHz), and a card
        held at 700 W by GEMMs runs slower still.

        Profile: the measured bf16 figure, scaled by peak(bf16) / peak(dtype) for other dtypes
        (the same power at each dtype's peak rate, as the datasheet form assumes)."""
        energy = self.measured_energy
        if energy is None or "bf16" not in self.peak_tflops:
            rate = self.peak(dtype) * self.matmul_efficiency(dtype) * self.power_limited_clock_fraction
            return (self.tdp_w - self.idle_power_w) / rate * 1e12
        return energy.pj_per_bf16_flop * self.peak("bf16") / self.peak(dtype)

    def eager_ns(self, kind: OpKind) -> float:
        cls = {OpKind.MATMUL: "matmul", OpKind.ROUTER: "matmul", OpKind.ATTENTION_SCORE: "matmul",
               OpKind.ATTENTION_CONTEXT: "matmul", OpKind.SOFTMAX: "softmax"}.get(kind, "vector")
        return self.kernel_overhead_us.get(cls, 0.0) * 1e3


class ServingStack(Spec):
    """How the software runs the kernels: launched one by one from PyTorch (`eager`) or replayed
    as one CUDA graph, and whether norms/activations are fused kernels. The default is how LLMs
    are served today (vLLM, SGLang, TensorRT-LLM: CUDA graphs for decode, fused RMSNorm and
    SiLU-and-mul kernels, one KV-cache write kernel, MoE experts as grouped kernels: vLLM's
    FusedMoE layer, SGLang's fused_moe_triton)."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    launch: Launch = "cuda_graph"
    fused_elementwise: bool = True
    separate_kv_writes: bool = Field(default=False, description="write a step's new K and V "
                                     "into the KV cache with one kernel each (Hugging Face's "
                                     "cache update: one copy per tensor); false: one kernel for "
                                     "both (vLLM's reshape_and_cache)")
    fused_moe: bool = Field(default=True, description="run a MoE layer's routed experts as one "
                            "grouped kernel per step (up, activation, down), as vLLM's fused_moe "
                            "Triton kernel does (the default of vLLM and SGLang); false: one kernel per expert and step")


# ---------------------------------------------------------------- datasheet mode
def memory_chain_ns(gpu: GPUSpec, first_from_hbm: bool, dependent: int = 1) -> float:
    """Least time of a kernel's chain of dependent global-memory accesses: its first load (from
    HBM at `dram_latency_ns`, or an L2 hit at `l2_latency_ns`), then `dependent` accesses that
    each wait for the one before at the L2 latency: the stores the next kernel of the stream
    waits for (a grid retires once its writes reach L2, the GPU's point of coherence; one L2 round
    trip per store: assumed), and any load that depends on a value the kernel computed first.
    The chain adds to the kernel's transfer and compute time (module docstring, item 6).

    The latencies are load-to-use times of a single-thread pointer chase: H100 SXM 700 cycles to
    HBM and 291 to L2, A100 SXM 550 and 210 (markdewing/AI_kernels, latency/README.md, clocks
    not locked), converted at each preset's boost clock. Work-independent: it matters only for
    kernels whose bytes and FLOPs take about as long (norms, activations, KV-cache writes, split-K
    reductions, FlashAttention's split-KV combine at small batch). A GPU without the latencies
    has no chain."""
    if gpu.dram_latency_ns is None or gpu.l2_latency_ns is None:
        return 0.0
    first = gpu.dram_latency_ns if first_from_hbm else gpu.l2_latency_ns
    return first + dependent * gpu.l2_latency_ns


def split_k(gpu: GPUSpec, m, n, k, count=1):
    """(output tiles, K splits) of a GEMM: a grid of fewer tile_m x tile_n tiles than SMs is split
    along K so that the tiles fill the SMs (split-K, as cuBLAS and CUTLASS do for skinny GEMMs;
    chunks of at least SPLIT_K_MIN). Broadcasts over numpy arrays."""
    m, n, k = np.asarray(m), np.asarray(n), np.asarray(k)
    tiles = -(-m // gpu.tile_m) * -(-n // gpu.tile_n) * count
    splits = np.where(tiles < gpu.sms,
                      np.maximum(1, np.minimum(gpu.sms // np.maximum(tiles, 1), k // SPLIT_K_MIN)), 1)
    return tiles, splits


def matmul_compute_ns(gpu: GPUSpec, dtype: str, m, n, k, count=1) -> float:
    """Tiled tensor-core time: waves of tile_m x tile_n blocks, each block running its K loop at
    the per-SM rate the library reaches; skinny grids split along K (`split_k`). Broadcasts over
    numpy arrays (summed)."""
    m, n, k = np.asarray(m), np.asarray(n), np.asarray(k)
    tiles, splits = split_k(gpu, m, n, k, count)
    waves = -(-(tiles * splits) // gpu.sms)
    per_tile_s = 2.0 * gpu.tile_m * gpu.tile_n * (k / splits) / (gpu.peak(dtype) / gpu.sms)
    return float(np.sum(waves * per_tile_s)) / gpu.matmul_efficiency(dtype) * 1e9


def grouped_matmul_compute_ns(gpu: GPUSpec, dtype: str, m, n: int, k: int) -> float:
    """One grouped GEMM (a fused MoE kernel: vLLM's fused_moe, or CUTLASS grouped GEMM): the
    tile_m x tile_n tiles of every group (rows `m` each, all n x k) share the waves of one
    launch, where separate kernels would each round up to whole waves. Split-K as in
    ``matmul_compute_ns`` when all the tiles together do not fill the SMs."""
    m = np.asarray(m)
    tiles = int(np.sum(-(-m // gpu.tile_m))) * -(-n // gpu.tile_n)
    splits = max(1, min(gpu.sms // max(tiles, 1), k // SPLIT_K_MIN)) if tiles < gpu.sms else 1
    waves = -(-(tiles * splits) // gpu.sms)
    per_tile_s = 2.0 * gpu.tile_m * gpu.tile_n * (k / splits) / (gpu.peak(dtype) / gpu.sms)
    return waves * per_tile_s / gpu.matmul_efficiency(dtype) * 1e9


def flash_rate(gpu: GPUSpec, dtype: str, keys: float, causal: bool,
               whole_tiles: bool = False) -> float:
    """FLOP/s of FlashAttention-2 when each query block visits `keys` keys (the FA2_* curves of
    sequence length; flat outside 512-16k): short key ranges pay each block's fixed work
    (loading Q, rescaling, writing O) over fewer keys. Causal: the rate over nominal FLOPs (half
    the square), or with `whole_tiles` over the FLOPs of the whole diagonal tiles the kernel
    computes (FA2_CAUSAL_TILES_OF_NOMINAL)."""
    curve = FA2_CAUSAL_OF_PLATEAU if causal else FA2_NONCAUSAL_OF_PLATEAU
    if causal and whole_tiles:
        curve = curve * FA2_CAUSAL_TILES_OF_NOMINAL
    shape = np.interp(np.log2(max(keys, 1.0)), np.log2(FA2_SEQ), curve)
    return gpu.peak(dtype) * gpu.flash_attention_efficiency * float(shape)


def causal_block_keys(gpu: GPUSpec, new: int, ctx: int, group: int = 1) -> int:
    """Keys the query blocks of one causal prefill (or prefill chunk) compute, summed over its
    blocks: block j holds rows j x block_m ... (tokens x GQA group per KV head), so it runs
    over the ctx - new earlier keys plus its own tokens up to the last one it holds, in whole
    attention_block_n tiles (the diagonal tile is masked, not shortened), as causal_imbalance
    counts its work. At 128 tokens one 128 x 128 block computes 128 keys per row, twice the
    nominal 64.5."""
    j = np.arange(-(-(new * group) // gpu.attention_block_m))
    last = np.minimum(-(-(j + 1) * gpu.attention_block_m // group), new)
    tiles = np.maximum(1, -(-(ctx - new + last) // gpu.attention_block_n))
    return int(np.sum(tiles)) * gpu.attention_block_n


def fa2_split_block_n(head_dim: int) -> int:
    """Keys per block of FlashAttention-2's split-KV kernel (csrc/flash_attn/flash_api.cpp,
    set_params_splitkv: block_n = 256 for head dim <= 64, 128 up to 128, else 64; "this needs to
    match with run_mha_fwd_splitkv_dispatch")."""
    return 256 if head_dim <= 64 else 128 if head_dim <= 128 else 64


def fa2_num_splits(gpu: GPUSpec, attn: Attention) -> int:
    """Splits of the KV sequence FlashAttention-2 chooses for a decode attention (one query row
    per request and GQA group): csrc/flash_attn/flash_api.cpp, set_params_splitkv calls
    num_splits_heuristic(batch x heads x m-blocks of 64 rows, 2 x SMs, n-blocks of
    fa2_split_block_n keys, 128). That heuristic returns 1 once the blocks reach 0.8 of the slots;
    otherwise, over the eligible split counts up to min(128, slots, n-blocks) (a count is eligible
    when it changes the n-blocks per split), it takes the smallest whose wave efficiency
    n_waves / ceil(n_waves) reaches 0.85 of the best. More than one split runs the split-KV kernel
    and then flash_fwd_splitkv_combine_kernel (run_mha_fwd_splitkv_dispatch,
    flash_fwd_launch_template.h): two kernels. Prefill (more than one query row) is never split."""
    q = attn.query_array
    if len(q) == 0 or not flash_splits_kv(gpu, attn):
        return 1
    slots = FA2_BLOCKS_PER_SM * gpu.sms
    blocks = _split_kv_blocks(gpu, attn)
    n_blocks = -(-int(np.max(attn.context_array)) // fa2_split_block_n(attn.head_dim))
    max_splits = min(128, slots, n_blocks)
    eligible = [s for s in range(1, max_splits + 1)
                if s == 1 or -(-n_blocks // s) != -(-n_blocks // (s - 1))]
    eff = {s: (blocks * s / slots) / np.ceil(blocks * s / slots) for s in eligible}
    best = max(eff.values())
    return next(s for s in eligible if eff[s] >= 0.85 * best)


def flash_splits_kv(gpu: GPUSpec, attn: Attention) -> bool:
    """Whether FlashAttention-2 runs this (decode) attention as its split-KV kernel:
    set_params_splitkv (csrc/flash_attn/flash_api.cpp, also PyTorch's copy) calls
    num_splits_heuristic(batch x heads x m-blocks of 64 rows, 2 x SMs ("128 threads per block"),
    ...), which returns 1 split once the blocks reach 0.8 of that. Only that first test
    (profile mode picks its measured decode rows by it); datasheet mode counts the splits with
    the whole heuristic, `fa2_num_splits`."""
    if bool(np.any(attn.query_array > 1)):
        return False
    return _split_kv_blocks(gpu, attn) < 0.8 * FA2_BLOCKS_PER_SM * gpu.sms


def _split_kv_blocks(gpu: GPUSpec, attn: Attention) -> int:
    """Thread blocks of FA2's split-KV kernel before splitting: m-blocks of
    attention_split_block_m rows (query tokens x GQA group) per request and KV head."""
    return int(np.sum(-(-(attn.query_array * attn.group) // gpu.attention_split_block_m))) * attn.kv_heads


def decode_key_tile(gpu: GPUSpec, attn: Attention, splits: int | None = None) -> int:
    """Keys per tile of the decode FlashAttention kernel FA2 picks for `attn`: its main loop runs
    ceil(keys / kBlockN) whole tiles and masks the tail (kBlockN = attention_block_n in the
    one-pass kernel; fa2_split_block_n in the split-KV kernel). `splits`: `fa2_num_splits` of
    `attn` where the caller has it already."""
    if splits is None:
        splits = fa2_num_splits(gpu, attn)
    return fa2_split_block_n(attn.head_dim) if splits > 1 else gpu.attention_block_n


def decode_keys(gpu: GPUSpec, attn: Attention, ctx, splits: int | None = None):
    """Keys a decode FlashAttention block computes over: each request's context rounded up to
    whole key tiles (`decode_key_tile`), so a step at 512 cached keys plus its new one costs 9
    tiles of 64, not 8. The H200 step trace names the kernels (Flash_fwd_kernel_traits<128, 128,
    64, 4>, split-KV <128, 64, 128, 4>); a recheck on an H200 measured 513 keys at +16% over 512
    at batch 64-128. The serving cost's decode fast path is affine in these rounded keys
    (hwsim.serving.cost, item 4; MapperEntry.decode_key_tile)."""
    tile = decode_key_tile(gpu, attn, splits)
    return -(-np.asarray(ctx) // tile) * tile


# Past this many waves of blocks, a causal kernel's uneven blocks even out (< 1% at 31 waves):
# no list schedule is run.
IMBALANCE_MAX_WAVES = 32


def causal_imbalance(gpu: GPUSpec, q: tuple, ctx: tuple, kv_heads: int, group: int = 1) -> float:
    """Makespan of a causal FlashAttention-2 forward over the SMs / (waves x mean block work).

    FA2 launches a grid (query blocks, batch, heads) (csrc/flash_attn/src/flash_fwd_launch_template.h,
    run_flash_fwd: dim3 grid(num_m_block, batch, heads)); the hardware hands blocks to SMs in
    grid order as SMs free up (a greedy list schedule, one block per SM as in the wave model);
    under the causal mask query block j of a request with `c` keys and `n` new tokens runs over
    c - n + min((j + 1) block_m / group, n) keys (blocks as flash_attention_ns counts them: rows =
    tokens x GQA group per KV head). At batch 1 and 2k tokens (512 blocks, 3.9 waves) the last SMs
    finish 27% after the wave model's time; the effect fades with more waves. Applied to batches
    of prompts only: a mixed batch (decode rows beside prefill chunks) runs as a stack's own
    varlen / split kernels, not modelled here (the wave model's mean block)."""
    return _causal_imbalance(gpu.sms, gpu.attention_block_m, gpu.attention_block_n, q, ctx,
                             kv_heads, group)


@functools.lru_cache(maxsize=256)
def _causal_imbalance(sms: int, block_m: int, block_n: int, q: tuple, ctx: tuple,
                      heads: int, group: int) -> float:
    work = []
    for n, c in zip(q, ctx):
        m_blocks = -(-(n * group) // block_m)
        work += [max(1, -(-(c - n + min(-(-(j + 1) * block_m // group), n)) // block_n))
                 for j in range(m_blocks)]
    blocks = len(work) * heads
    waves = -(-blocks // sms)
    if not work or waves > IMBALANCE_MAX_WAVES:
        return 1.0
    free = [0.0] * sms
    for w in work * heads:        # grid order: m-block fastest, then request, then head
        heapq.heappush(free, heapq.heappop(free) + w)
    return max(free) / (waves * sum(work) / len(work))


def flash_attention_ns(gpu: GPUSpec, dtype: str, attn: Attention) -> tuple[float, float, int]:
    """(compute ns, HBM bytes, kernels) of one FlashAttention-2 forward over all requests.

    Each (request, KV head) runs ceil(rows / block_m) query blocks, rows = new tokens x GQA
    group; a block computes block_m rows against the request's whole context (causal prefill:
    half of it on average). Blocks run in waves of one per SM. Decode with fewer blocks than
    0.8 x SMs uses the split-KV kernel (64-row blocks, context split across SMs, plus one
    combine kernel), as FlashAttention-2's num_splits heuristic does (`fa2_num_splits`)."""
    q, ctx = attn.query_array, attn.context_array
    rows = q * attn.group
    causal = bool(np.any(q > 1))
    splits = fa2_num_splits(gpu, attn)
    split = splits > 1
    block_m = gpu.attention_split_block_m if split else gpu.attention_block_m
    blocks = -(-rows // block_m)
    # keys each block computes, in whole key tiles (the last one is masked, not shortened): all
    # of the context in decode, the causal triangle up to the block's last row in prefill
    keys = float(np.sum(np.where(q > 1, 0, blocks * decode_keys(gpu, attn, ctx, splits))))
    keys += sum(causal_block_keys(gpu, int(q[i]), int(ctx[i]), attn.group)
                for i in np.flatnonzero(q > 1))
    flops = 4.0 * block_m * keys * attn.head_dim * attn.kv_heads
    n_blocks = int(np.sum(blocks)) * attn.kv_heads * splits   # split: the context is cut in `splits`
    waves = -(-n_blocks // gpu.sms)
    fill = n_blocks / (waves * gpu.sms)                      # wave quantization
    seq = float(np.max(ctx)) if len(ctx) else 1.0
    compute_s = flops / (flash_rate(gpu, dtype, seq if causal else seq / splits, causal,
                                    whole_tiles=True) * fill)
    if bool(np.all(q > 1)):     # prefill: causal blocks differ in work, the SMs finish unevenly
        compute_s *= causal_imbalance(gpu, tuple(q.tolist()), tuple(ctx.tolist()), attn.kv_heads,
                                      attn.group)
    b = 2 if dtype in ("fp16", "bf16") else 1 if dtype in ("fp8", "int8") else 4
    kv = 2.0 * float(np.sum(ctx)) * attn.kv_heads * attn.head_dim * b
    qo = 2.0 * float(np.sum(q)) * attn.heads * attn.head_dim * b
    return compute_s * 1e9, kv + qo, 2 if split else 1


def vector_compute_ns(gpu: GPUSpec, flops: float) -> float:
    return flops / (gpu.vector_tflops * 1e12) * 1e9


@dataclass(frozen=True)
class KernelTime:
    """What a kernel (or a group of ops run as one kernel) asks of the GPU."""
    compute_ns: float       # busy time of the SMs (tensor or vector); eager: CPU issue floor
    hbm_bytes: float        # bytes through HBM
    engine: str             # "tensor" | "vector"
    launch_ns: float = 0.0  # not overlapped: the GPU's gap between kernels of a CUDA graph
    serial_ns: float = 0.0  # not overlapped: memory latency chains (memory_chain_ns) of the
    #                         op's kernels (main one, KV-cache write, split-K reduction, split-KV combine)


def _hbm_bytes(gpu: GPUSpec, op: Op) -> float:
    """Weights and KV always come from HBM; activations stay in L2 when inputs plus outputs fit
    in half of it."""
    l2_resident = op.act_in_bytes + op.act_out_bytes <= gpu.l2_mib * 2**20 / 2
    act = 0 if l2_resident else op.act_in_bytes + op.act_out_bytes
    return float(op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes + act)


def _launched(gpu: GPUSpec, kind: OpKind, stack: ServingStack, kernels: int,
              compute_ns: float, hbm: float, engine: str, serial_ns: float = 0.0) -> KernelTime:
    """Replayed in a CUDA graph, each kernel adds the GPU's gap between kernels; launched
    eagerly, a kernel takes at least the CPU's time to issue it (which hides that gap and the
    kernels' memory latency chains, `serial_ns`)."""
    if stack.launch == "cuda_graph":
        return KernelTime(compute_ns, hbm, engine, gpu.graph_kernel_us * 1e3 * kernels, serial_ns)
    return KernelTime(max(compute_ns + serial_ns, gpu.eager_ns(kind) * kernels), hbm, engine)


def folded_into_norm(op: Op, stack: ServingStack) -> bool:
    """A residual add that a fused serving stack computes inside the next RMSNorm kernel
    (vLLM's fused_add_rms_norm, vllm/model_executor/layers/layernorm.py: RMSNorm.forward with a
    residual): it launches no kernel of its own; its bytes still pass through memory. Before a
    LayerNorm it stays a kernel of its own: vLLM's LayerNorm models (OPT, GPT-2, Falcon) add the
    residual with a plain `+` and call nn.LayerNorm, which takes no residual."""
    return stack.fused_elementwise and op.function == "add" and op.residual_into == "rmsnorm"


def kernels_of(op: Op, stack: ServingStack, gpu: GPUSpec | None = None) -> int:
    """Kernels one op launches: a QKV projection that writes new KV also launches the cache
    write (vLLM's reshape_and_cache: one kernel; `separate_kv_writes`: one for K, one for V); a GEMM split along K launches a second kernel that sums the
    fp32 partial tiles (`gpu` given: datasheet mode's split-K; CUTLASS GemmSplitKParallel runs
    its ReductionKernel after the GEMM kernel, cutlass/gemm/device/gemm_splitk_parallel.h; cuBLAS
    likewise launches splitKreduce_kernel); unfused norms and activations launch
    UNFUSED_KERNELS (an unfused add is one kernel, x.add_(y)); a residual add folded into the
    next norm launches none."""
    if op.matmul is not None:
        n = 1 + (2 if stack.separate_kv_writes else 1) * bool(op.kv_write_bytes)
        if gpu is not None:
            mm = op.matmul
            n += int(np.max(split_k(gpu, mm.m, mm.n, mm.k, mm.count)[1]) > 1)
        return n
    if folded_into_norm(op, stack):
        return 0
    if not stack.fused_elementwise:
        return UNFUSED_KERNELS.get(op.function, 1)
    return 1


def vector_chain_ns(gpu: GPUSpec, op: Op, stack: ServingStack) -> float:
    """Memory latency chain of a vector op (memory_chain_ns), once per kernel it launches: the
    first load comes from HBM when the op reads weights or its activations do not stay in L2
    (_hbm_bytes), else from L2; one store."""
    return kernels_of(op, stack, gpu) * memory_chain_ns(gpu, _hbm_bytes(gpu, op) > 0)


def grouped_vector_kernels(gpu: GPUSpec, ops: list[Op], kernels: list[KernelTime],
                           stack: ServingStack) -> list[KernelTime]:
    """`kernels` of ops run as one grouped kernel (ServingStack.fused_moe), datasheet mode: in a
    CUDA graph the group pays one kernel's memory latency chain, not one per op, so each vector
    op keeps the time of its own work plus its share of the longest chain (GEMMs keep theirs:
    their work is far above it). Launched eagerly the CPU issue time hides the chain."""
    if stack.launch != "cuda_graph":
        return kernels
    chain = max(vector_chain_ns(gpu, op, stack) for op in ops)
    return [replace(k, serial_ns=chain / len(ops)) if op.matmul is None else k
            for op, k in zip(ops, kernels)]


def datasheet_kernel(gpu: GPUSpec, op: Op, stack: ServingStack) -> KernelTime:
    """One op as one kernel (or, unfused, as UNFUSED_KERNELS kernels), datasheet mode."""
    if op.attention is not None:        # score or context on its own: half the flash kernel
        k = datasheet_flash(gpu, op.attention, op.dtype, stack)
        return KernelTime(k.compute_ns / 2, k.hbm_bytes / 2, k.engine, k.launch_ns / 2,
                          k.serial_ns / 2)
    hbm = _hbm_bytes(gpu, op)
    kernels = kernels_of(op, stack, gpu)
    serial = 0.0
    if op.matmul is not None:
        mm = op.matmul
        compute = matmul_compute_ns(gpu, op.dtype, mm.m, mm.n, mm.k, mm.count)
        serial += memory_chain_ns(gpu, True)
        engine = "tensor"
        # the KV-cache write kernel(s) read the K and V the GEMM just wrote (L2) and store them
        writes = (2 if stack.separate_kv_writes else 1) * bool(op.kv_write_bytes)
        serial += writes * memory_chain_ns(gpu, False)
        tiles, splits = split_k(gpu, mm.m, mm.n, mm.k, mm.count)
        if np.max(splits) > 1:     # the reduction kernel reads the fp32 partials, writes the output
            partials = float(np.sum(splits * np.minimum(mm.m, gpu.tile_m) * gpu.tile_n * tiles)) * 4
            spills = partials > gpu.l2_mib * 2**20 / 2
            if spills:
                hbm += partials
            serial += memory_chain_ns(gpu, spills)
    else:
        compute = vector_compute_ns(gpu, op.flops)
        engine = "vector"
        if kernels > 1:       # unfused: every kernel passes the tensor through memory
            hbm = kernels * float(op.act_in_bytes + op.act_out_bytes) + op.weight_bytes
        serial += vector_chain_ns(gpu, op, stack)
    return _launched(gpu, op.kind, stack, kernels, compute, hbm, engine, serial)


def datasheet_flash(gpu: GPUSpec, attn: Attention, dtype: str, stack: ServingStack) -> KernelTime:
    """The FlashAttention kernel(s) with their memory latency chains (memory_chain_ns): the main
    kernel loads K and V from HBM and stores its output; the split-KV combine kernel
    (flash_fwd_splitkv_combine_kernel: combine_attn_seqk_parallel in flash_fwd_kernel.h) loads
    the splits' log-sum-exps, then the partial outputs it scales by them, then stores: a chain of
    three L2 accesses after the split kernel."""
    compute, hbm, kernels = flash_attention_ns(gpu, dtype, attn)
    serial = memory_chain_ns(gpu, True) + (memory_chain_ns(gpu, False, 2) if kernels > 1 else 0.0)
    return _launched(gpu, OpKind.ATTENTION_SCORE, stack, kernels, compute, hbm, "tensor", serial)


# ---------------------------------------------------------------- both modes
class GPUCoster:
    """Costs the kernels of one GPU under one serving stack, from the datasheet or, when the
    spec names a profile, from the measured profile."""

    def __init__(self, gpu: GPUSpec, stack: ServingStack | None = None):
        self.gpu, self.stack = gpu, stack or ServingStack()
        self.profile = None
        if gpu.profile is not None:
            from hwsim.hw.gpu_profile import load_profile
            self.profile = load_profile(gpu.profile)
        self._kernels: dict[tuple, KernelTime] = {}

    @property
    def hbm_rate(self) -> float:
        """Bytes/s the HBM resource serves: in profile mode the measured times already hold
        the achieved bandwidth, so HBM is only held to its peak (physics)."""
        return self.gpu.hbm_bw_gbps * 1e9 if self.profile else self.gpu.sustained_bw

    def kernel(self, op: Op) -> KernelTime:
        if self.profile is None:
            if op.attention is not None:
                return datasheet_kernel(self.gpu, op, self.stack)
            # The layers of a decoder repeat their ops' shapes: a kernel is costed once per
            # distinct key, which holds every field of `op` that datasheet_kernel reads.
            key = (op.kind, op.dtype, op.flops, op.weight_bytes, op.act_in_bytes, op.act_out_bytes,
                   op.kv_read_bytes, op.kv_write_bytes, op.matmul, op.function, op.residual_into)
            try:
                kernel = self._kernels.get(key)
            except TypeError:          # a matmul over numpy arrays: not hashable, not cached
                return datasheet_kernel(self.gpu, op, self.stack)
            if kernel is None:
                kernel = self._kernels[key] = datasheet_kernel(self.gpu, op, self.stack)
            return kernel
        return self.profile.kernel(self.gpu, op, self.stack)

    def flash(self, attn: Attention, dtype: str) -> KernelTime:
        if self.profile is None:
            return datasheet_flash(self.gpu, attn, dtype, self.stack)
        return self.profile.flash(self.gpu, attn, dtype, self.stack)

    def op_cost(self, op: Op, kernel: KernelTime, share: float = 1.0,
                flash: bool = False) -> OpCost:
        """OpCost of `op` as `share` of `kernel` (share < 1: one op of a fused group; flash: the
        kernel is FlashAttention, whose bytes cost `attention_pj_per_bit`)."""
        gpu = self.gpu
        hbm = kernel.hbm_bytes * share
        peak = gpu.peak(op.dtype) if kernel.engine == "tensor" else gpu.vector_tflops * 1e12
        per_bit = gpu.attention_pj_per_bit if flash else gpu.dram_pj_per_bit
        parts = energy_components_j(compute=op.flops * gpu.pj_per_flop(op.dtype),
                                    dram=hbm * 8 * per_bit)
        roofline = max(op.flops / peak * 1e9, hbm / gpu.hbm_bw_gbps)
        return OpCost(compute_ns=kernel.compute_ns * share, bytes_by_level={"hbm": hbm},
                      energy_j=sum(parts.values()), roofline_ns=roofline,
                      latency_ns=(kernel.launch_ns + kernel.serial_ns) * share,
                      engine=kernel.engine, energy_by_component_j=parts)


def gpu_op_cost(gpu: GPUSpec, op: Op, stack: ServingStack | None = None) -> OpCost:
    """Time, HBM traffic and energy of one op as its own kernel(s) (attention ops included: use
    the `gpu` mapper for FlashAttention's fusion of score, softmax and context)."""
    coster = GPUCoster(gpu, stack)
    return coster.op_cost(op, coster.kernel(op), flash=op.attention is not None)


# ---- registration ------------------------------------------------------------------------------

def _gpu_levels(spec: GPUSpec):
    """The GPU's HBM: its background power is inside `static_w`, its stacks are not counted
    in `die_area_mm2`."""
    from hwsim.hw.memory import MemoryLevel
    return [MemoryLevel("hbm", spec.hbm_gib * 2**30, spec.hbm_bw_gbps, spec.sustained_bw / 1e9,
                        spec.dram_pj_per_bit)]


def _gpu_check_case(datapath: str, device, op, ctx):
    from hwsim.hw.kernels.cases import op_case
    return op_case(_gpu_check_unit(datapath), device.hardware, op, ctx)


def _gpu_check_unit(datapath: str) -> str:
    return "gpu"


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

register_component(ComponentKind(
    name="gpu", spec=GPUSpec, role="compute",
    summary="GPU from its datasheet: tiled tensor-core GEMMs, HBM, idle power",
    # no conv kinds: gpu_op_cost has no convolution model
    op_costs={k.value: lambda device, op, where: gpu_op_cost(device.spec("gpu"), op)
              for k in OpKind if not k.is_collective
              and k not in (OpKind.CONV, OpKind.DEPTHWISE_CONV)},
    area_mm2=lambda spec, device, dtype: {"gpu_die": float(spec.die_area_mm2)},
    static_power_w=lambda spec, device, dtype: spec.static_w,
    energy_buckets=("compute", "dram"), check_cases=_gpu_check_case, check_unit=_gpu_check_unit,
    memory_levels=_gpu_levels))
