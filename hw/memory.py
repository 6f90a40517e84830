"""Off-chip memory (HBM/DRAM) as a bandwidth-and-capacity spec.

Peak bandwidth = channels x per-channel bandwidth. What a stream sustains comes from the DRAM
timing model (``hwsim.hw.dram``) when a timing preset is named; otherwise from the peak.
"""
from __future__ import annotations

from pydantic import Field

from hwsim.hw.energy import HBM2_PJ_PER_BIT
from hwsim.spec import Spec


class MemorySpec(Spec):
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
