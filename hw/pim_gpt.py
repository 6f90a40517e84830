"""PIM-GPT's two components: DRAM-PIM that runs every matrix-vector product, and a compact ASIC.

Wu, Wang & Lu, "PIM-GPT: A Hybrid Process-in-Memory Accelerator for Autoregressive
Transformers" (arXiv 2310.09385; npj Unconventional Computing 2024): batch-1 GPT decode in which
the MAC units inside the DRAM banks do every vector-matrix product (the weight GEMVs, q.K^T and
P.V), "partitioning a matrix among DRAM channels and banks to utilize all in-bank computation
resources concurrently" with row locality, while an ASIC does the non-linear functions
(softmax, layer norm, GELU), issues the PIM commands and moves vectors between channels
(abstract; research/pim_anchors.md section 3.4). What the paper's body specifies (channels,
banks, MAC width, clocks, ASIC size) was not retrievable here: the presets say which numbers
are assumed.

`gemv_pim` — bank-level PIM doing whole GEMVs. The bank datapath and its command costs are
NeuPIMs'/Newton's (hwsim.hw.pim: GWRITE of the input vector into the channel's global buffer,
tiles of one row open in every bank, a COMP stream rate-matched to the column reads, READRES,
precharge); what differs is the layout. A matrix W[k, n] is cut into bank rows of
``chunk = min(k, elements_per_row)`` consecutive k-elements of one output column; when k is
shorter than a row, ``elements_per_row // k`` output columns share a row (the same input vector
serves them all: row locality). One *unit* of work is one row in each of a channel's banks for one
(input vector, k-chunk); units are dealt over the channels round-robin, so every channel and bank
works at once and the busiest channel sets the time:

    units       = count x chunks x ceil(n / (banks x outputs_per_row))
    tiles/ch    = ceil(units / channels)
    tile        = ACT of all groups + tRCD + columns x max(BL/2, tCCD_S) + CL + READRES bursts + tRP
    GWRITEs/ch  = count x chunks when one vector's units cover every channel, else the tiles/ch
    time        = GWRITEs/ch x ceil(chunk / macs) x (tCCD_S + tCCD_L) + tiles/ch x tile

(`columns` = ceil(outputs_per_row x chunk / macs_per_bank), the column slots one tile streams;
a bias is one more row of W, multiplied by a 1 appended to the input vector;
with a full row and one result burst `tile` is hwsim.hw.pim.tile_cycles exactly.) Partial sums
of several k-chunks are added by the ASIC as the results arrive (not costed: k/row adds per
output). The weight bytes read inside the banks equal the matrix's bytes (each element
sits in exactly one bank row and is read once): a test holds this.

`asic` — the compact ASIC: `lanes` 16-bit vector ALUs at `clock_ghz` and an SRAM holding the
activation vectors; runs norms, softmax, activations, residual adds and the embedding lookup.
Moving vectors between channels is inside the PIM command costs (GWRITE broadcasts the next
input vector to each channel, READRES gathers the results).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field

from hwsim.hw.cost import OpCost
from hwsim.hw.energy import add_pj, energy_components_j, sram_pj_per_byte
from hwsim.hw.pim import PIM_INTERNAL_PJ_PER_BIT, PIMSpec
from hwsim.hw.technology import TechNodeNm
from hwsim.spec import Spec
from hwsim.workloads.ops import Op, OpKind


class GemvPIMSpec(PIMSpec):
    """DRAM-PIM running whole GEMVs over every channel and bank (PIM-GPT). Fields as
    hwsim.hw.pim.PIMSpec; `dual_row_buffer` is unused (nothing else touches the banks)."""
    timing: str = Field(default="gddr6_aim", description="DRAM timing preset of the PIM device")
    level: str = Field(default="gddr6", description="the memory level whose DRAM dies hold the PIM "
                       "units (its channels are the PIM channels)")
    internal_pj_per_bit: float = Field(default=PIM_INTERNAL_PJ_PER_BIT, gt=0)


@dataclass(frozen=True)
class GemvLayout:
    """How `count` GEMVs x[k] @ W[k, n] (one input vector each) sit on the banks."""
    chunk: int                 # k-elements of one output column in one bank row
    chunks: int                # bank rows per output column (k-chunks)
    outputs_per_row: int       # output columns sharing a bank row
    columns: int               # column slots one tile streams through the MACs
    units: int                 # tiles over all channels
    tiles_per_channel: int     # on the busiest channel
    gwrites_per_channel: int
    result_bytes_per_tile: int


def gemv_layout(pim: PIMSpec, k: int, n: int, count: int, channels: int, dtype_bytes: int) -> GemvLayout:
    t = pim.dram
    epr = t.row_bytes // dtype_bytes
    banks = t.banks_per_channel
    chunk = min(k, epr)
    chunks = math.ceil(k / epr)
    outputs_per_row = max(1, epr // k) if k < epr else 1
    columns = math.ceil(outputs_per_row * chunk / pim.macs_per_bank)
    per_vector = math.ceil(n / (banks * outputs_per_row))      # units of one (vector, chunk)
    units = count * chunks * per_vector
    tiles = math.ceil(units / channels)
    gwrites = count * chunks if per_vector >= channels else min(count * chunks, tiles)
    return GemvLayout(chunk, chunks, outputs_per_row, columns, units, tiles, gwrites,
                      banks * outputs_per_row * dtype_bytes)


def gemv_tile_cycles(pim: PIMSpec, columns: int, result_bytes: int) -> int:
    """One tile: activate every bank group, stream `columns` COMP slots, read the results out,
    precharge (hwsim.hw.pim.tile_cycles with a partial row and `result_bytes` of results)."""
    t = pim.dram
    activate = (t.bank_groups - 1) * t.cycles(t.trrd_s_ns) + t.cycles(t.trcd_ns)
    comp = columns * max(t.burst_cycles, t.cycles(t.tccd_s_ns))
    readres = t.cycles(t.cl_ns) + math.ceil(result_bytes / t.burst_bytes) * t.burst_cycles
    return activate + comp + readres + t.cycles(t.trp_ns)


def gemv_write_cycles(pim: PIMSpec, elements: int) -> int:
    """GWRITE of `elements` of the input vector into the global buffer (NewtonSim's formula,
    hwsim.hw.pim.gwrite_cycles, for a vector shorter than a row)."""
    t = pim.dram
    return math.ceil(elements / pim.macs_per_bank) * (t.cycles(t.tccd_s_ns) + t.cycles(t.tccd_l_ns))


def peak_flops_per_ns(pim: PIMSpec, channels: int) -> float:
    """Every MAC of every bank busy once per COMP slot."""
    t = pim.dram
    slot_ns = max(t.burst_cycles, t.cycles(t.tccd_s_ns)) * t.tck_ns
    return 2.0 * channels * t.banks_per_channel * pim.macs_per_bank / slot_ns


def internal_bw_gbps(pim: PIMSpec, channels: int, dtype_bytes: int) -> float:
    """Bytes per ns the banks hand to the MACs during COMP streams, all channels."""
    return peak_flops_per_ns(pim, channels) / 2.0 * dtype_bytes


@dataclass(frozen=True)
class GemvWork:
    """Totals of a set of GEMVs on the PIM (the busiest channel's time, all channels' bytes)."""
    ns: float
    tiles: int                  # all channels
    bank_bytes: float           # read from the bank rows into the MACs, all channels
    bus_bytes: float            # GWRITE vectors + READRES results on the channel buses
    macs: float
    slots: int = 0              # matrix elements the tiles' bank rows hold (the matrix + padding)


def gemv_work(pim: PIMSpec, k: int, n: int, count: int, channels: int, dtype_bytes: int) -> GemvWork:
    """A k longer than a row and not a multiple of it runs as its whole-row part and its
    remainder (packed `elements_per_row // remainder` outputs to a row), partial sums added by the
    ASIC: the last chunk does not stream a whole row's columns for a part of one."""
    epr = pim.dram.row_bytes // dtype_bytes
    if k > epr and k % epr:
        return _add(gemv_work(pim, k - k % epr, n, count, channels, dtype_bytes),
                    gemv_work(pim, k % epr, n, count, channels, dtype_bytes))
    lay = gemv_layout(pim, k, n, count, channels, dtype_bytes)
    t = pim.dram
    cycles = (lay.gwrites_per_channel * gemv_write_cycles(pim, lay.chunk)
              + lay.tiles_per_channel * gemv_tile_cycles(pim, lay.columns, lay.result_bytes_per_tile))
    per_vector = lay.units // (count * lay.chunks)          # units of one (vector, chunk)
    bus = (count * lay.chunks * min(channels, per_vector) * lay.chunk * dtype_bytes
           + lay.units * lay.result_bytes_per_tile)
    slots = lay.units * t.banks_per_channel * lay.outputs_per_row * lay.chunk
    return GemvWork(cycles * t.tck_ns, lay.units, float(k) * n * count * dtype_bytes, float(bus),
                    float(k) * n * count, slots)


def _add(a: GemvWork, b: GemvWork) -> GemvWork:
    return GemvWork(a.ns + b.ns, a.tiles + b.tiles, a.bank_bytes + b.bank_bytes,
                    a.bus_bytes + b.bus_bytes, a.macs + b.macs, a.slots + b.slots)


def op_gemvs(pim: PIMSpec, op: Op, channels: int) -> GemvWork:
    """The GEMVs of one op, one after another: a matmul's m x count rows, or per request and
    query head the score (q[hd] . K^T[hd, L]) or context (p[L] . V[L, hd]) products."""
    b = op.dtype_bytes
    if op.matmul is not None:
        mm = op.matmul
        # A bias is stored as one more row of W, met by a constant 1 appended to the input vector.
        k = mm.k + (1 if op.weight_bytes > mm.k * mm.n * mm.count * b else 0)
        return gemv_work(pim, k, mm.n, mm.count * mm.m, channels, b)
    attn = op.attention
    if attn is None:
        raise ValueError(f"op {op.name} ({op.kind}) is no matrix-vector product")
    total = GemvWork(0.0, 0, 0.0, 0.0, 0.0, 0)
    context = op.kind == OpKind.ATTENTION_CONTEXT
    for q, L in zip(attn.query_tokens, attn.context_lens):
        k, n = (L, attn.head_dim) if context else (attn.head_dim, L)
        total = _add(total, gemv_work(pim, k, n, q * attn.heads, channels, b))
    return total


def gemv_op_cost(device, op: Op, where=None) -> OpCost:
    """Time, traffic and energy of a matmul or attention GEMV op on the device's `gemv_pim`.

    Energy: "pim" = bank bytes x internal pJ/bit + one ACT per bank per tile + the MACs;
    "dram" = the channel-bus bytes (GWRITE, READRES) at the level's pJ/bit. Bytes: the bank reads
    as "pim_internal" (matrix bytes, the weights or the KV read), the bus bytes on the level; a
    QKV projection also writes the new K and V over the bus."""
    from hwsim.hw.pim import pim_channels
    pim: GemvPIMSpec = device.spec("gemv_pim")
    level = device.level_of("gemv_pim")
    channels = pim_channels(pim, device)
    w = op_gemvs(pim, op, channels)
    bus = w.bus_bytes + op.kv_write_bytes
    t = pim.dram
    parts = energy_components_j(
        pim=w.bank_bytes * 8 * pim.internal_pj_per_bit + w.tiles * t.banks_per_channel * t.act_pj
        + w.macs * pim.mac_pj(op.dtype))
    parts["dram"] = level.energy_j(bus)
    roofline = max(op.flops / peak_flops_per_ns(pim, channels),
                   w.bank_bytes / internal_bw_gbps(pim, channels, op.dtype_bytes),
                   bus / level.peak_bw_gbps)
    return OpCost(compute_ns=w.ns, bytes_by_level={"pim_internal": w.bank_bytes, level.name: bus},
                  energy_j=sum(parts.values()), roofline_ns=roofline, engine="pim",
                  energy_by_component_j=parts)


# ---------------------------------------------------------------- the ASIC

class ASICSpec(Spec):
    """A small vector ASIC beside the PIM: `lanes` ALUs at `clock_ghz`, an SRAM for the
    activation vectors, built at `tech_node_nm` (energies and areas scaled from 45 nm)."""
    lanes: int = Field(gt=0, description="16-bit vector ALUs, one op per lane per cycle")
    clock_ghz: float = Field(gt=0)
    sram_kib: float = Field(gt=0, description="activation / intermediate-vector buffer")
    tech_node_nm: TechNodeNm = 45
    static_power_w: float | None = Field(default=None, ge=0, description="default: the leakage "
                                         "of the counted area (hwsim.hw.area)")

    @property
    def peak_flops_per_ns(self) -> float:
        return self.lanes * self.clock_ghz


def asic_op_cost(device, op: Op, where=None) -> OpCost:
    """A vector op (or the embedding lookup) on the ASIC: its FLOPs on the lanes; operands in
    the SRAM; the embedding row read from the PIM memory level over one channel bus."""
    asic: ASICSpec = device.spec("asic")
    compute_ns = op.flops / asic.peak_flops_per_ns
    sram = float(op.act_in_bytes + op.act_out_bytes)
    level_bytes = float(op.weight_bytes)
    pim_level = device.spec("gemv_pim").level if "gemv_pim" in device.kinds else None
    level = device.level_of("gemv_pim") if pim_level else device.off_chip_levels[0]
    bytes_by_level = {"sram": sram}
    roofline = compute_ns
    if level_bytes:
        bytes_by_level[level.name] = level_bytes
        channel_bw = level.peak_bw_gbps / max(1, _level_channels(device, level.name))
        compute_ns = max(compute_ns, level_bytes / channel_bw)
        roofline = max(roofline, level_bytes / level.peak_bw_gbps)
    ops = op.flops if op.flops else float(op.elements)
    parts = energy_components_j(compute=ops * add_pj(op.dtype, asic.tech_node_nm),
                                sram=sram * sram_pj_per_byte(asic.sram_kib * 1024, asic.tech_node_nm))
    if level_bytes:
        parts["dram"] = level.energy_j(level_bytes)
    return OpCost(compute_ns=compute_ns, bytes_by_level=bytes_by_level, energy_j=sum(parts.values()),
                  roofline_ns=roofline, engine="vector", energy_by_component_j=parts)


def _level_channels(device, name: str) -> int:
    for spec in device.hardware.specs("memory"):
        if spec.name == name:
            return spec.channels
    return 1


# ---- registration ------------------------------------------------------------------------------

def _gemv_pim_area(spec: GemvPIMSpec, device, dtype: str) -> dict[str, float]:
    from hwsim.hw.area import pim_area_breakdown_mm2
    from hwsim.hw.pim import pim_channels
    parts = pim_area_breakdown_mm2(spec, pim_channels(spec, device), dtype)
    return {f"gemv_{part}": mm2 for part, mm2 in parts.items()}      # gemv_pim_macs, gemv_pim_buffers


def _asic_area(spec: ASICSpec, device, dtype: str) -> dict[str, float]:
    """The lanes (a MAC-sized ALU + one register each) and the SRAM; control not counted."""
    from hwsim.hw.area import pe_area_um2, sram_area_mm2
    return {"asic_lanes": spec.lanes * pe_area_um2(dtype, spec.tech_node_nm, registers=1) * 1e-6,
            "asic_sram": sram_area_mm2(spec.sram_kib * 1024, spec.tech_node_nm)}


def _leakage(area_fn):
    def power(spec, device, dtype):
        if getattr(spec, "static_power_w", None) is not None:
            return spec.static_power_w
        from hwsim.hw.area import leakage_power_w
        return leakage_power_w(sum(area_fn(spec, device, dtype).values()))
    return power


def _check_case(unit: str):
    """`--check`: the functional kernels of hwsim.hw.kernels (the bank-partitioned PIM GEMV with
    its accumulation precision for gemv_pim; the vector kernels on `lanes` lanes for the ASIC)."""
    def case(datapath: str, device, op, ctx):
        from hwsim.hw.kernels.cases import op_case
        return op_case(unit, device.hardware, op, ctx)
    return case


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

GEMV_KINDS = (OpKind.MATMUL, OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT)
ASIC_KINDS = (OpKind.NORM, OpKind.SOFTMAX, OpKind.ELEMENTWISE, OpKind.EMBEDDING)

register_component(ComponentKind(
    name="gemv_pim", spec=GemvPIMSpec, role="pim",
    summary="bank-level DRAM-PIM running every GEMV with the matrix over all channels and banks "
            "(PIM-GPT)",
    op_costs={k.value: gemv_op_cost for k in GEMV_KINDS},
    area_mm2=_gemv_pim_area, static_power_w=_leakage(_gemv_pim_area), energy_buckets=("pim", "dram"),
    check_cases=_check_case("gemv_pim"), check_unit=lambda datapath: "gemv_pim"))

register_component(ComponentKind(
    name="asic", spec=ASICSpec, role="compute",
    summary="compact vector ASIC beside a PIM memory: norms, softmax, activations, embedding (PIM-GPT)",
    op_costs={k.value: asic_op_cost for k in ASIC_KINDS},
    area_mm2=_asic_area, static_power_w=_leakage(_asic_area), energy_buckets=("compute", "sram", "dram"),
    check_cases=_check_case("asic"), check_unit=lambda datapath: "asic"))
