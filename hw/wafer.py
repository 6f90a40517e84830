"""Wafer-scale engines (Cerebras WSE-2, WSE-3): a 2-D mesh of cores, each with its own SRAM and
MAC rate, on a fabric of nearest-neighbour links, modelled by *regions* of cores (never one
object per core); several wafers joined by a wafer-to-wafer link.

The chip (research/system_anchors.md B.2; presets configs/presets/wse-2.yaml, wse-3.yaml cite
each number or say "assumed"): `cores` cores on a near-square mesh of side
``mesh_side = ceil(sqrt(cores))``; per core

    sram_bytes_per_core   = sram_gb x 1e9 / cores
    sram_bw_per_core      = sram_bw_pb_per_s x 1e6 / cores          (bytes/ns)
    flops_per_core_per_ns = peak_pflops x 1e6 / cores
    link_bw               = fabric_pbit_per_s x 1e6 / 8 / (4 x cores) (bytes/ns, one directed link:
                            the quoted aggregate read as the sum over every core's four outgoing
                            links [assumed reading])
    hop_ns                = hop_cycles / clock_ghz

A *region* of ``c`` cores is a near-square block of side ``s = ceil(sqrt(c))``. An op of one
decode token on a region (its weights stationary in the region's SRAM):

    busy      = max(FLOPs / (c x flops_per_core), SRAM bytes / (c x sram_bw_per_core))
    hops      = 2 (s - 1)   for a matrix-vector product (the input broadcast along the rows, the
                            partial sums reduced along the columns) and for a norm or softmax (a
                            reduction along the row holding the vector and the broadcast back);
                0           for an element-wise op or the embedding lookup (local)
    stream    = (input + output bytes) / s / link_bw   (each of the s rows/columns carries 1/s)
    latency   = hops x hop_ns + stream                  (not overlapped with busy: at batch 1 the
                                                         reduction waits for the MACs)
    roofline  = max(FLOPs / (c x flops_per_core), SRAM bytes / (c x sram_bw_per_core)) <= busy

A transfer of ``b`` bytes between adjacent regions of sides s_a, s_b (centre to centre):

    hops = ceil((s_a + s_b) / 2),  time = hops x hop_ns + b / (min(s_a, s_b) x link_bw)

and across the wafer-to-wafer link: ``wafer_link_latency_ns + b / wafer_link_gb_per_s`` (plus the
on-wafer hops to and from the wafer edge, taken as the two regions' half-sides).

Energy: the quoted power of the system (CS-2 15 kW, CS-3 ~23 kW) is drawn by every wafer for the
whole iteration (static power x wafers); no dynamic energy is charged on top (the quoted figure
is wall power, which already contains it). Area: the quoted die area per wafer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field

from hwsim.hw.cost import OpCost
from hwsim.hw.memory import MemoryLevel
from hwsim.spec import Spec
from hwsim.workloads.ops import Op, OpKind

SRAM_LEVEL = "wafer_sram"
FABRIC = "fabric"
WAFER_LINK = "wafer_link"


class WaferSpec(Spec):
    """One wafer-scale engine (and how many of them the system joins): see the module docstring."""
    cores: int = Field(gt=0, description="cores on one wafer")
    sram_gb: float = Field(gt=0, description="on-wafer SRAM, all cores (1e9 bytes)")
    sram_bw_pb_per_s: float = Field(gt=0, description="aggregate SRAM bandwidth (1e15 bytes/s)")
    fabric_pbit_per_s: float = Field(gt=0, description="aggregate fabric bandwidth (1e15 bits/s)")
    peak_pflops: float = Field(gt=0, description="peak 16-bit FLOP/s of one wafer (1e15)")
    clock_ghz: float = Field(gt=0, description="core and fabric clock")
    hop_cycles: float = Field(gt=0, description="cycles for a word to cross one router + link")
    process_nm: int = Field(gt=0, description="process node (TSMC), a label: no energy or area "
                            "is scaled from it (5 nm is outside the Stillmaker & Baas table)")
    die_area_mm2: float = Field(gt=0)
    power_w: float = Field(gt=0, description="system power of one wafer (drawn whether busy or not)")
    wafers: int = Field(default=1, gt=0, description="wafers joined by the wafer-to-wafer link")
    wafer_link_gb_per_s: float = Field(gt=0, description="bandwidth of one wafer's link to the next "
                                       "(1e9 bytes/s, each direction)")
    wafer_link_latency_ns: float = Field(ge=0, description="one crossing of the wafer-to-wafer "
                                         "link, end to end")

    @property
    def mesh_side(self) -> int:
        return math.ceil(math.sqrt(self.cores))

    @property
    def sram_bytes_per_core(self) -> float:
        return self.sram_gb * 1e9 / self.cores

    @property
    def sram_bw_per_core(self) -> float:
        """bytes/ns of one core's SRAM"""
        return self.sram_bw_pb_per_s * 1e6 / self.cores

    @property
    def flops_per_core_per_ns(self) -> float:
        return self.peak_pflops * 1e6 / self.cores

    @property
    def link_bw(self) -> float:
        """bytes/ns of one directed core-to-core link"""
        return self.fabric_pbit_per_s * 1e6 / 8 / (4 * self.cores)

    @property
    def hop_ns(self) -> float:
        return self.hop_cycles / self.clock_ghz

    @property
    def wafer_link_bw(self) -> float:
        """bytes/ns of the wafer-to-wafer link"""
        return self.wafer_link_gb_per_s

    @property
    def peak_flops_per_ns(self) -> float:
        """one wafer"""
        return self.peak_pflops * 1e6


def region_side(cores: int) -> int:
    """Side of the near-square block of `cores` cores."""
    return math.ceil(math.sqrt(cores))


# Ops whose result needs a reduction (and broadcast) across the region's side.
REDUCING = (OpKind.MATMUL, OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT, OpKind.NORM, OpKind.SOFTMAX)


@dataclass(frozen=True)
class RegionOpTime:
    """The parts of one op on a region (ns): what the report's bound attribution adds up."""
    compute_ns: float
    sram_ns: float
    hop_ns: float          # hops x per-hop latency
    stream_ns: float       # the input/output slices streaming over the region's rows/columns

    @property
    def busy_ns(self) -> float:
        return max(self.compute_ns, self.sram_ns)

    @property
    def latency_ns(self) -> float:
        return self.hop_ns + self.stream_ns


def sram_bytes(op: Op) -> float:
    """Bytes an op reads and writes in its region's SRAM: weights, KV, activations."""
    return float(op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes + op.act_in_bytes + op.act_out_bytes)


def region_op_time(spec: WaferSpec, cores: int, op: Op) -> RegionOpTime:
    s = region_side(cores)
    compute = op.flops / (cores * spec.flops_per_core_per_ns)
    sram = sram_bytes(op) / (cores * spec.sram_bw_per_core)
    if op.kind in REDUCING:
        hops = 2 * (s - 1)
        stream = (op.act_in_bytes + op.act_out_bytes) / s / spec.link_bw
    else:
        hops, stream = 0, 0.0
    return RegionOpTime(compute, sram, hops * spec.hop_ns, stream)


def region_op_cost(spec: WaferSpec, cores: int, op: Op) -> OpCost:
    """An op on a region of `cores` cores (module docstring). `engine` names what sets its busy
    time ("compute" or "sram"); the hops are its `latency_ns`."""
    t = region_op_time(spec, cores, op)
    roofline = max(op.flops / (cores * spec.flops_per_core_per_ns),
                   sram_bytes(op) / (cores * spec.sram_bw_per_core))
    return OpCost(compute_ns=t.busy_ns, bytes_by_level={SRAM_LEVEL: sram_bytes(op)}, energy_j=0.0,
                  roofline_ns=roofline, latency_ns=t.latency_ns,
                  engine="compute" if t.compute_ns >= t.sram_ns else "sram")


def wafer_op_cost(device, op: Op, where=None) -> OpCost:
    """The registry's view: `op` on a whole wafer (every core one region). The mapper costs ops
    on their own regions with `region_op_cost`."""
    spec: WaferSpec = device.spec("wafer")
    return region_op_cost(spec, spec.cores, op)


@dataclass(frozen=True)
class TransferTime:
    hops: int
    hop_ns: float
    stream_ns: float
    link_ns: float = 0.0       # the wafer-to-wafer crossing (latency + bytes / bandwidth)

    @property
    def ns(self) -> float:
        return self.hop_ns + self.stream_ns + self.link_ns


def fabric_transfer(spec: WaferSpec, nbytes: float, side_a: int, side_b: int) -> TransferTime:
    """`nbytes` between adjacent regions of sides `side_a`, `side_b` on one wafer."""
    hops = math.ceil((side_a + side_b) / 2)
    return TransferTime(hops, hops * spec.hop_ns, nbytes / (min(side_a, side_b) * spec.link_bw))


def wafer_link_transfer(spec: WaferSpec, nbytes: float, side_a: int, side_b: int) -> TransferTime:
    """`nbytes` from a region on one wafer to a region on the next: half of each region's side
    to and from the wafer edges, then the wafer-to-wafer link."""
    hops = math.ceil(side_a / 2) + math.ceil(side_b / 2)
    return TransferTime(hops, hops * spec.hop_ns, 0.0,
                        spec.wafer_link_latency_ns + nbytes / spec.wafer_link_bw)


# ---- registration ------------------------------------------------------------------------------

def _levels(spec: WaferSpec) -> list[MemoryLevel]:
    """The wafers' SRAM as the system's one memory level (there is no off-wafer memory in the
    inference path). Its energy is inside the system power (module docstring)."""
    return [MemoryLevel(SRAM_LEVEL, capacity_bytes=spec.sram_gb * 1e9 * spec.wafers,
                        peak_bw_gbps=spec.sram_bw_pb_per_s * 1e6 * spec.wafers,
                        sustained_bw_gbps=spec.sram_bw_pb_per_s * 1e6 * spec.wafers,
                        energy_pj_per_bit=0.0, on_chip=False)]


def _area(spec: WaferSpec, device, dtype: str) -> dict[str, float]:
    return {"wafer_dies": spec.die_area_mm2 * spec.wafers}


def _power(spec: WaferSpec, device, dtype: str) -> float:
    return spec.power_w * spec.wafers


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

WAFER_KINDS = (OpKind.MATMUL, OpKind.ATTENTION_SCORE, OpKind.ATTENTION_CONTEXT, OpKind.NORM,
               OpKind.SOFTMAX, OpKind.ELEMENTWISE, OpKind.EMBEDDING)

register_component(ComponentKind(
    name="wafer", spec=WaferSpec, role="compute",
    summary="wafer-scale engine: a 2-D mesh of cores with SRAM on a fabric, in regions; several "
            "wafers on a wafer-to-wafer link (Cerebras WSE-2/WSE-3)",
    op_costs={k.value: wafer_op_cost for k in WAFER_KINDS},
    area_mm2=_area, static_power_w=_power, energy_buckets=(), memory_levels=_levels))
