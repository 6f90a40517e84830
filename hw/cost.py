"""The cost of running one op on one unit, before any contention (filled by hw cost models)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OpCost:
    compute_ns: float                    # busy time of the unit at full rate
    bytes_by_level: dict[str, float]     # traffic per memory level ("hbm", "sram", "link")
    energy_j: float
    roofline_ns: float                   # max(FLOPs / peak, off-chip bytes / peak bandwidth)
    latency_ns: float = 0.0              # not overlapped with anything (fill, launch, hops)
    engine: str = ""                     # which datapath ran it ("systolic", "vector", ...)
    extra_demands: dict[str, float] = field(default_factory=dict)
