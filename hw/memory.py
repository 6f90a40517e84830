"""Memory levels: what a device stores data in, fastest first (on-chip SRAM, HBM, DDR, flash).

`MemorySpec` is the `hardware.memory:` section (one level, or a list of levels fastest first).
Peak bandwidth = channels x per-channel bandwidth. What a stream sustains comes from the DRAM
timing model (``hwsim.hw.dram``) when a timing preset is named; otherwise from the peak.

`MemoryLevel` is what the rest of hwsim sees of any level, whoever brings it (a memory spec, a
GPU's HBM): capacity, bandwidth, energy per bit, static power and area. Mappers place weights,
KV cache and activations on levels (mappers/placement.py) and every byte moved is charged to
the level it came from.

Static power of a level: `static_power_w` when given; else, when the timing preset has IDD
currents (DRAMsim3's power section), channels x (precharge standby + refresh) per channel
(hwsim.hw.dram.DramTiming.background_power_w_per_channel); else 0 (not modelled, and the
report's per-level table shows 0 W).
Area: `area_mm2` when given; else stacks x the preset's stack footprint for HBM (on the
package); else 0 (off-package DIMMs are not device area).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field, field_validator

from hwsim.hw.energy import HBM2_PJ_PER_BIT
from hwsim.spec import Spec


@dataclass(frozen=True)
class MemoryLevel:
    """One level of a device's memory hierarchy, as placement, costs and reports see it."""
    name: str                      # resource and report name: "hbm", "ddr", "sram", ...
    capacity_bytes: float
    peak_bw_gbps: float
    sustained_bw_gbps: float
    energy_pj_per_bit: float
    static_power_w: float = 0.0
    area_mm2: float = 0.0
    on_chip: bool = False          # a scratchpad inside a compute component: not a schedule resource

    def energy_j(self, nbytes: float) -> float:
        return nbytes * 8 * self.energy_pj_per_bit * 1e-12


class MemorySpec(Spec):
    name: str = Field(default="hbm", description="the level's name in schedules and reports "
                      "(bytes, busy, utilization); distinct per level of a device")
    kind: str = Field(default="hbm2", description="technology label for reports")
    channels: int = Field(gt=0)
    channel_bw_gbps: float = Field(gt=0, description="peak GB/s per channel")
    capacity_gib: float = Field(gt=0)
    energy_pj_per_bit: float = Field(default=HBM2_PJ_PER_BIT, gt=0)
    sustained_fraction: float = Field(default=1.0, gt=0, le=1,
                                      description="share of peak a long sequential stream sustains "
                                      "(used when no `timing` preset is named)")
    timing: str | None = Field(default=None, description="DRAM timing preset (hwsim.hw.dram.PRESETS); "
                               "when set, the sustained bandwidth comes from its closed form")
    static_power_w: float | None = Field(default=None, ge=0, description="background + refresh power "
                                         "of the whole level; default: from the timing preset's IDDs, "
                                         "else 0")
    area_mm2: float | None = Field(default=None, ge=0, description="package area of the level; default: "
                                   "HBM stacks x the timing preset's stack footprint, else 0")

    @field_validator("timing")
    @classmethod
    def _known_timing(cls, name: str | None) -> str | None:
        from hwsim.hw.dram import PRESETS
        if name is not None and name not in PRESETS:
            raise ValueError(f"unknown DRAM timing preset {name!r} (known: {', '.join(sorted(PRESETS))})")
        return name

    @property
    def sustained_bw_gbps(self) -> float:
        """What a long sequential read stream sustains: the DRAM timing closed form (bursts,
        refresh, first-access latency) when a timing preset is named, else peak x fraction."""
        if self.timing is None:
            return self.peak_bw_gbps * self.sustained_fraction
        from hwsim.hw.dram import PRESETS, stream_cost
        t = PRESETS[self.timing]
        per_channel = stream_cost(t, 2**26, "sequential", channels=1).achieved_bw_gbps
        return min(self.peak_bw_gbps, per_channel / t.peak_bw_gbps_per_channel * self.peak_bw_gbps)

    @property
    def peak_bw_gbps(self) -> float:
        return self.channels * self.channel_bw_gbps

    @property
    def capacity_bytes(self) -> float:
        return self.capacity_gib * 2**30

    def energy_j(self, nbytes: float) -> float:
        return nbytes * 8 * self.energy_pj_per_bit * 1e-12

    def background_power_w(self) -> float:
        if self.static_power_w is not None:
            return self.static_power_w
        if self.timing is None:
            return 0.0
        from hwsim.hw.dram import PRESETS
        per_channel = PRESETS[self.timing].background_power_w_per_channel()
        return 0.0 if per_channel is None else self.channels * per_channel

    def package_area_mm2(self) -> float:
        if self.area_mm2 is not None:
            return self.area_mm2
        if self.timing is None:
            return 0.0
        from hwsim.hw.dram import PRESETS
        t = PRESETS[self.timing]
        if t.channels_per_stack is None or t.stack_footprint_mm2 is None:
            return 0.0
        return math.ceil(self.channels / t.channels_per_stack) * t.stack_footprint_mm2

    def level(self) -> MemoryLevel:
        return MemoryLevel(self.name, self.capacity_bytes, self.peak_bw_gbps, self.sustained_bw_gbps,
                           self.energy_pj_per_bit, self.background_power_w(), self.package_area_mm2())


@dataclass(frozen=True)
class OperandLevels:
    """Where one op's operands live: its weights (None: in metal, no weight traffic), its KV
    cache and its activations when they spill from the scratchpad. A mapper's placement step
    decides (mappers/placement.py); cost functions charge each byte to its level."""
    weights: MemoryLevel | None
    kv: MemoryLevel
    activations: MemoryLevel


# ---- registration ------------------------------------------------------------------------------

def _memory_area(spec: MemorySpec, device, dtype: str) -> dict[str, float]:
    area = spec.package_area_mm2()
    return {f"memory_{spec.name}_stacks": area} if area else {}


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

register_component(ComponentKind(
    name="memory", spec=MemorySpec, role="memory", many=True,
    summary="off-chip memory levels (HBM, DDR, ...), one spec or a list, fastest first",
    area_mm2=_memory_area, static_power_w=lambda spec, device, dtype: spec.background_power_w(),
    energy_buckets=("dram",), memory_levels=lambda spec: [spec.level()]))
