"""Per-layer systolic-array model that reproduces SCALE-Sim cycle for cycle, in closed form.

A layer (GEMM, convolution, depthwise convolution, fully connected) becomes the GEMM SCALE-Sim
builds from it (scalesim/compute/operand_matrix.py, scalesim/topology_utils.py of
scalesim-project/scale-sim-v2):

    conv:  ofmap E_h x E_w with E = ceil((H - R + s) / s) on the (already padded) input
           (``Conv.ceil_mode``; PyTorch's floor for the built-in networks), Npix = batch*E_h*E_w
           rows, window K = R*S*C/groups, N = filters/groups; out[Npix, N] = I[Npix, K] W[K, N].
    GEMM:  M, N, K becomes a conv with an M x K ifmap, a 1 x K filter, 1 channel and N filters
           (``gemm_as_conv``), so Npix = M and K = K.
    FC:    a GEMM with M = batch.
    depthwise / grouped: SCALE-Sim splits a depthwise ("DP") layer into C single-channel layers
           that run one after another (``load_arrays_conv``); a conv with `groups` groups is
           modelled the same way: `groups` identical GEMMs back to back (``depthwise="split"``).
           Each has K = R*S and N = 1 filter per channel, so a 3x3 depthwise layer fills 9 x 1 PEs
           of the array: this is why MobileNet's depthwise layers run at a few percent of peak
           (DRACO, Jha et al., ISVLSI 2020).
           ``depthwise="packed"`` is a native mapping SCALE-Sim does not have: the groups' filters
           side by side on the columns (a block-diagonal K/groups x N filter matrix), so one GEMM
           of Npix x (R*S*C/groups) x N. It needs an array that can feed each column its own
           input rows (a plain systolic array shares the row inputs across columns), so it is a
           what-if for a depthwise-capable array, not a description of SCALE-Sim's.

Spatial/temporal assignment (rows Sr, columns Sc, streamed T) per dataflow (SCALE-Sim
``calc_spatio_temporal_params``): WS (K, N, Npix), OS (Npix, N, K), IS (K, Npix, N). The array
is cut into ceil(Sr/R) x ceil(Sc/C) folds, column folds outer, row folds inner, and each fold
costs (``gemm_folds_and_fold_cycles``, which hwsim.hw.npu uses too)

    WS, IS:  2R + C + T - 2   (R cycles of stationary preload, R + C - 2 of skew, T streamed)
    OS:       R + C + T - 2

Cycle conventions. The closed form above is the demand-matrix height SCALE-Sim builds, i.e. the
"pen and paper" count: a 4x4 OS array computing a 4x4x4 product takes 4 + 4 + 4 - 2 = 10 cycles.
SCALE-Sim's reports say one cycle less per layer (9 here): its own issues #60 ("always one cycle
less than pen and paper") and #125 (4x4 OS validation: 9 instead of 10), and every golden report
checked (AlexNet conv1 WS 32x32: 112,283 vs 112,284). ``scalesim_convention=True`` reports
SCALE-Sim's number (one fewer per SCALE-Sim layer, so `groups` fewer for a split depthwise
layer); the default is the closed form. Stalls are separate from this choice.

Report metrics, as SCALE-Sim defines them (single_layer_sim.calc_report_data and
systolic_compute_*.py):
    overall util      = MACs / (total cycles x R x C x cores), total = compute + stall cycles
    mapping efficiency = mean over folds of rows_used x cols_used / (R x C)
                       = Sr x Sc / (folds x R x C)            (AlexNet conv1 WS 32x32: 363/384)
    compute util      = mean over folds of rows_used x cols_used x T / (R x C x fold_cycles'),
                        where fold_cycles' is the height + width - 1 of SCALE-Sim's per-fold
                        demand matrix: 2R + 2C + T - 3 (WS, IS), T + R + C - 2 (OS). (For WS/IS
                        this counts C - 1 cycles more than the per-fold cycles of the total, so
                        compute util and overall util do not reconcile by hand; it is
                        SCALE-Sim's definition, kept for comparability.)

Memory: three double-buffered scratchpads (ifmap, filter, ofmap; half of each is the active
buffer, SCALE-Sim's ``active_buf_frac = 0.5``) and one DRAM interface of `bw_words_per_cycle`
words per cycle shared by all operands and cores (SCALE-Sim gives each of its three buffers its
own interface at the configured bandwidth, so its stall counts are not comparable with these;
they are only a regression of its buffer model). Per fold, in SCALE-Sim's loop order:

  * an operand slice that changes with every fold (WS filter, OS ofmap, IS ifmap) moves once;
  * a slice indexed by the row fold only (WS/OS ifmap, IS filter) comes round once per column
    fold: the slices that fit the active half of the scratchpad on their own are read once if
    together they fit it too, otherwise every slice is re-read every time (what an LRU buffer
    does with a cyclic sweep larger than itself);
  * a slice indexed by the column fold only (OS filter; WS/IS ofmap partial sums) stays across
    the row folds if it fits the active half; otherwise it is re-read every fold (partial sums:
    written every fold and read back before each later row fold).

Fold i's inputs are prefetched while fold i-1 computes and fold i-2's outputs are written back
at the same time (double buffering), so the stall before fold i is
``max(0, ceil((in_i + out_{i-2}) / bw) - fold_cycles)``. The first fold's inputs are loaded
before cycle 0 (``prefetch_cycles``, SCALE-Sim v3's "Total Cycles (incl. prefetch)" adds these)
and the last outputs after the last compute cycle (``drain_cycles``). With `cores` arrays the
folds are dealt out in waves of `cores` (fold i on core i mod cores) and a wave's traffic is the
sum of its folds'; the reuse rules above are applied in the one-array fold order, as if the
cores shared one set of scratchpads of the given sizes (a simplification: SCALE-Sim v2 has one
array; v3's multi-core partitioning lives in a separate repository). Word size is 1 byte in
SCALE-Sim (hard-coded in single_layer_sim.py); here it is `word_bytes`.

``hwsim run`` (the npu_only mapper) uses the stall-free cycles of this model for conv ops
(``conv_compute_cycles``); off-chip bandwidth there is the engine's business, as for matmuls.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import numpy as np

from hwsim.workloads.ops import Conv, Op

if TYPE_CHECKING:
    from hwsim.hw.npu import NPUSpec

DATAFLOWS = ("ws", "os", "is")
DEPTHWISE_MODES = ("split", "packed")

# Which fold index each operand's slice depends on: "rc" both (a new slice every fold), "r" the
# row fold only, "c" the column fold only. Derived from the spatial assignment above.
_DEPENDS = {"ws": {"ifmap": "r", "filter": "rc", "ofmap": "c"},
            "os": {"ifmap": "r", "filter": "c", "ofmap": "rc"},
            "is": {"ifmap": "rc", "filter": "r", "ofmap": "c"}}


@dataclass(frozen=True)
class SystolicArray:
    """One or more identical R x C arrays with SCALE-Sim's three scratchpads (sizes per core).

    Scratchpad defaults follow SCALE-Sim's configs/scale.cfg (64 kB each); the
    DRAM bandwidth default, None, is unlimited (stall-free): SCALE-Sim's compute-only numbers."""
    rows: int
    cols: int
    dataflow: str = "ws"
    cores: int = 1
    ifmap_sram_kib: float = 64.0
    filter_sram_kib: float = 64.0
    ofmap_sram_kib: float = 64.0
    bw_words_per_cycle: float | None = None
    word_bytes: int = 1
    scalesim_convention: bool = False
    depthwise: str = "split"

    def __post_init__(self):
        for name in ("rows", "cols", "cores", "word_bytes"):
            if not isinstance(getattr(self, name), (int, np.integer)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, got {self.dataflow!r}")
        if self.depthwise not in DEPTHWISE_MODES:
            raise ValueError(f"depthwise must be one of {', '.join(DEPTHWISE_MODES)}, got {self.depthwise!r}")
        for name in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.bw_words_per_cycle is not None and not self.bw_words_per_cycle > 0:
            raise ValueError(f"bw_words_per_cycle must be > 0, got {self.bw_words_per_cycle!r}")

    def half_buffer_words(self, operand: str) -> float:
        """Words that fit the active half of an operand's scratchpad (double buffering)."""
        return getattr(self, f"{operand}_sram_kib") * 1024.0 / 2 / self.word_bytes


@dataclass(frozen=True)
class LayerCost:
    """What SCALE-Sim's COMPUTE_REPORT says of one layer, plus the memory traffic behind it."""
    name: str
    macs: int
    folds: int                      # all folds of the layer (groups included)
    cycles_per_fold: int
    compute_cycles: int             # stall-free, in the chosen cycle convention
    stall_cycles: int               # waiting for DRAM between folds
    prefetch_cycles: int            # first fold's operands, before cycle 0
    drain_cycles: int               # last outputs to DRAM, after the last compute cycle
    overall_util: float             # fraction, not %
    mapping_efficiency: float
    compute_util: float
    dram_read_words: int
    dram_write_words: int
    sram_read_words: int            # operand words the array reads from the scratchpads
    sram_write_words: int           # ofmap words written to the scratchpad
    resident: dict[str, bool] = field(default_factory=dict)   # operand reused from the scratchpad

    @property
    def total_cycles(self) -> int:
        """SCALE-Sim's "Total Cycles": compute plus stall cycles."""
        return self.compute_cycles + self.stall_cycles

    @property
    def cycles_with_memory(self) -> int:
        """Total cycles plus the first prefetch and the last write-back."""
        return self.total_cycles + self.prefetch_cycles + self.drain_cycles


def gemm_as_conv(m: int, n: int, k: int) -> Conv:
    """SCALE-Sim's GEMM input as a conv: ifmap M x K, filter 1 x K, 1 channel, N filters
    (topology_utils.load_arrays_gemm), so Npix = M and the window is K."""
    return Conv(in_h=m, in_w=k, in_c=1, out_c=n, kernel_h=1, kernel_w=k, stride=1, padding=0)


def gemm_view(conv: Conv, depthwise: str = "split") -> tuple[int, int, int, int]:
    """(Npix, K, N, groups): the GEMM each group runs and how many run back to back."""
    if depthwise == "packed" and conv.groups > 1:
        return conv.npix, conv.gemm_k, conv.out_c, 1
    return conv.npix, conv.gemm_k, conv.gemm_n, conv.groups


def gemm_folds_and_fold_cycles(rows: int, cols: int, dataflow: str, m, n, k):
    """Number of folds and cycles per fold for out[m,n] = A[m,k] B[k,n] (numpy-broadcastable)."""
    if dataflow == "ws":
        spatial_r, spatial_c, t, preload = k, n, m, rows
    elif dataflow == "os":
        spatial_r, spatial_c, t, preload = m, n, k, 0
    else:  # "is"
        spatial_r, spatial_c, t, preload = k, m, n, rows
    folds = -(-np.asarray(spatial_r) // rows) * -(-np.asarray(spatial_c) // cols)
    per_fold = preload + rows + cols + np.asarray(t) - 2
    return folds, per_fold


def spatial_temporal(dataflow: str, npix: int, n: int, k: int) -> tuple[int, int, int]:
    """(Sr, Sc, T) of SCALE-Sim's calc_spatio_temporal_params."""
    return {"ws": (k, n, npix), "os": (npix, n, k), "is": (k, npix, n)}[dataflow]


def util_fold_cycles(rows: int, cols: int, dataflow: str, t: int) -> int:
    """The per-fold cycles SCALE-Sim divides by in its compute utilization (see module doc)."""
    return t + rows + cols - 2 if dataflow == "os" else 2 * rows + 2 * cols + t - 3


def _fold_grid(sr: int, sc: int, rows: int, cols: int):
    """Row-fold index, column-fold index, rows used, columns used of every fold, in SCALE-Sim's
    order (column folds outer, row folds inner)."""
    rf, cf = -(-sr // rows), -(-sc // cols)
    r = np.tile(np.arange(rf, dtype=np.int64), cf)
    c = np.repeat(np.arange(cf, dtype=np.int64), rf)
    return r, c, np.minimum(rows, sr - r * rows), np.minimum(cols, sc - c * cols), rf


def fold_traffic(array: SystolicArray, sr: int, sc: int, t: int):
    """DRAM words read before and written after each fold of one GEMM (see module doc), and
    which operands are reused from their scratchpad."""
    r, c, ru, cu, rf = _fold_grid(sr, sc, array.rows, array.cols)
    sizes = {"rc": ru * cu, "r": ru * t, "c": cu * t}
    deps = _DEPENDS[array.dataflow]
    reads = np.zeros(len(r), dtype=np.int64)
    writes = np.zeros(len(r), dtype=np.int64)
    resident = {}
    for operand in ("ifmap", "filter"):
        dep, size = deps[operand], sizes[deps[operand]]
        half = array.half_buffer_words(operand)
        if dep == "rc":
            reads += size
            resident[operand] = False
        elif dep == "r":
            # The row slices come round once per column fold: an LRU buffer keeps the ones that
            # fit it alone if together they fit, and thrashes (misses them all) otherwise.
            fits = size <= half
            kept = fits & (int(size[(c == 0) & fits].sum()) <= half)
            reads += np.where(kept, size * (c == 0), size)
            resident[operand] = bool(kept.all())
        else:
            fits = size <= half
            reads += np.where(fits, size * (r == 0), size)
            resident[operand] = bool(fits.all())
    dep = deps["ofmap"]
    if dep == "rc":
        writes += sizes["rc"]
        resident["ofmap"] = False
    else:
        size = sizes["c"]
        fits = size <= array.half_buffer_words("ofmap")
        writes += np.where(fits, size * (r == rf - 1), size)
        reads += np.where(fits, 0, size * (r > 0))           # partial sums read back
        resident["ofmap"] = bool(fits.all())
    return reads, writes, resident


def _memory_cycles(array: SystolicArray, reads: np.ndarray, writes: np.ndarray,
                   per_fold: int) -> tuple[int, int, int]:
    """(stall, prefetch, drain) cycles for folds issued in waves of `cores` (see module doc)."""
    bw = array.bw_words_per_cycle
    if bw is None or len(reads) == 0:
        return 0, 0, 0
    cores = array.cores
    waves = -(-len(reads) // cores)
    pad = waves * cores - len(reads)
    w_in = np.pad(reads, (0, pad)).reshape(waves, cores).sum(axis=1)
    w_out = np.pad(writes, (0, pad)).reshape(waves, cores).sum(axis=1)
    # During wave w the interface brings wave w+1's inputs and writes wave w-1's outputs.
    nxt = np.append(w_in[1:], 0)
    prev = np.insert(w_out[:-1], 0, 0)
    shortfall = np.maximum(0, np.ceil((nxt + prev) / bw).astype(np.int64) - per_fold)
    stall = int(shortfall[:-1].sum())
    drain = int(shortfall[-1]) + math.ceil(w_out[-1] / bw)
    prefetch = math.ceil(w_in[0] / bw)
    return stall, prefetch, drain


def _sram_words(dataflow: str, sr: int, sc: int, t: int, rf: int, cf: int) -> tuple[int, int]:
    """Operand words the array reads from its scratchpads and ofmap words it writes, per GEMM:
    a slice indexed by the row (column) fold is read once per column (row) fold."""
    per = {"rc": sr * sc, "r": sr * t * cf, "c": sc * t * rf}
    deps = _DEPENDS[dataflow]
    return per[deps["ifmap"]] + per[deps["filter"]], per[deps["ofmap"]]


def layer_cost(array: SystolicArray, conv: Conv, name: str = "") -> LayerCost:
    """Cycles, stalls, SCALE-Sim's utilizations and DRAM traffic of one layer (see module doc)."""
    R, C, df = array.rows, array.cols, array.dataflow
    npix, k, n, groups = gemm_view(conv, array.depthwise)
    folds_g, per_fold = (int(x) for x in gemm_folds_and_fold_cycles(R, C, df, npix, n, k))
    sr, sc, t = spatial_temporal(df, npix, n, k)
    folds = folds_g * groups
    compute = -(-folds // array.cores) * per_fold - (groups if array.scalesim_convention else 0)
    reads, writes, resident = fold_traffic(array, sr, sc, t)
    if groups > 1:
        reads, writes = np.tile(reads, groups), np.tile(writes, groups)
    stall, prefetch, drain = _memory_cycles(array, reads, writes, per_fold)
    macs = npix * k * n * groups
    mapping = sr * sc / (folds_g * R * C)
    rf, cf = -(-sr // R), -(-sc // C)
    sram_r, sram_w = _sram_words(df, sr, sc, t, rf, cf)
    total = compute + stall
    return LayerCost(
        name=name, macs=macs, folds=folds, cycles_per_fold=per_fold, compute_cycles=compute,
        stall_cycles=stall, prefetch_cycles=prefetch, drain_cycles=drain,
        overall_util=macs / (total * R * C * array.cores) if total > 0 else 0.0,
        mapping_efficiency=mapping,
        compute_util=mapping * t / util_fold_cycles(R, C, df, t),
        dram_read_words=int(reads.sum()), dram_write_words=int(writes.sum()),
        sram_read_words=sram_r * groups, sram_write_words=sram_w * groups, resident=resident)


def gemm_cost(array: SystolicArray, m: int, n: int, k: int, name: str = "") -> LayerCost:
    """A GEMM out[m, n] = A[m, k] B[k, n], through the conv path as SCALE-Sim runs it."""
    return layer_cost(array, gemm_as_conv(m, n, k), name)


def network_cost(array: SystolicArray, layers: Iterable[tuple[str, Conv]]) -> list[LayerCost]:
    """One ``LayerCost`` per (name, conv) layer, in order (layers run one after another)."""
    return [layer_cost(array, conv, name) for name, conv in layers]


def array_layers(graph) -> list[tuple[str, Conv]]:
    """An OpGraph's array layers as (name, Conv) in graph order: convs as they are, matmuls as
    SCALE-Sim's GEMM-as-conv (one per repetition) — the input of ``network_cost``."""
    out = []
    for op in graph.ops:
        if op.conv is not None:
            out.append((op.name, op.conv))
        elif op.matmul is not None:
            mm = op.matmul
            conv = gemm_as_conv(mm.m, mm.n, mm.k)
            out += [(op.name if mm.count == 1 else f"{op.name}[{j}]", conv) for j in range(mm.count)]
    return out


# ---------------------------------------------------------------------------- used by hw/npu.py

def conv_compute_cycles(spec: NPUSpec, conv: Conv) -> int:
    """Stall-free cycles of a conv on an NPU: its groups' GEMMs (SCALE-Sim's split convention)
    through ``gemm_cycles``, which spreads the folds over the cores (and honours the NPU's
    fold pipelining option). Memory time is the engine's business, as for matmuls."""
    from hwsim.hw.npu import gemm_cycles
    npix, k, n, groups = gemm_view(conv)
    return gemm_cycles(spec, npix, n, k, count=groups)


def conv_sram_bytes(spec: NPUSpec, op: Op) -> float:
    """Scratchpad traffic of a conv op: the operand words the array reads (im2col view, each
    slice once per fold of the other spatial dimension) plus the ofmap it writes."""
    conv = op.conv
    npix, k, n, groups = gemm_view(conv)
    sr, sc, t = spatial_temporal(spec.dataflow, npix, n, k)
    rf, cf = -(-sr // spec.rows), -(-sc // spec.cols)
    reads, writes = _sram_words(spec.dataflow, sr, sc, t, rf, cf)
    return float((reads + writes) * groups * op.dtype_bytes)
