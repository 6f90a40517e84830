"""The cost of running one op on one unit, before any contention (filled by hw cost models)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class OpCost:
    """`energy_by_component_j` splits `energy_j` by component ("compute", "sram", "dram", "pim",
    "link"; see hwsim.hw.registry.energy_buckets). When given, `energy_j` is set to its exact sum (a
    mismatch beyond rounding is a bug and raises); when omitted, the whole energy is recorded
    as "other" so that breakdowns still add up."""
    compute_ns: float                    # busy time of the unit at full rate
    bytes_by_level: dict[str, float]     # traffic per memory level ("hbm", "sram", "link")
    energy_j: float
    roofline_ns: float                   # max(FLOPs / peak, off-chip bytes / peak bandwidth)
    latency_ns: float = 0.0              # not overlapped with anything (fill, launch, hops)
    engine: str = ""                     # which datapath ran it ("systolic", "vector", ...)
    extra_demands: dict[str, float] = field(default_factory=dict)
    energy_by_component_j: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if not self.energy_by_component_j:
            if self.energy_j:
                self.energy_by_component_j = {"other": self.energy_j}
            return
        total = math.fsum(self.energy_by_component_j.values())
        if not math.isclose(total, self.energy_j, rel_tol=1e-9, abs_tol=1e-30):
            raise ValueError(f"energy components sum to {total} J, not energy_j = {self.energy_j} J")
        self.energy_j = total
