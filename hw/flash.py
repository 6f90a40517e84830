"""Flash (NAND SSD) as a memory level whose read bandwidth depends on the chunk size.

`hardware.flash:` the storage that holds a model too large for DRAM ("LLM in a flash",
Alizadeh et al., Apple, arXiv 2312.11514, section 2.2). A read of `chunk` bytes pays a latency
to first byte (operating system, driver, interrupt, flash controller) before it streams at the
peak rate, so a stream of reads of one chunk size reaches

    bw(chunk) = chunk / (latency + chunk / peak)           [bytes/ns; latency in ns]

(the "latency to first byte" argument of the paper's section 2.2, as a closed form). `latency`
is the *effective* latency per chunk with the reads spread over many threads (the paper reads
over 32 threads, section 4.1): the per-read latency divided by the reads in flight. Reading
`n` chunks takes n x (latency + chunk / peak); a long sequential read (chunk -> inf) reaches
`peak`.

The level: capacity `capacity_gib`, peak `peak_read_gbps`; a mapper charges a read of `nbytes`
in chunks of `chunk` bytes as `read_time_ns` (mappers/flash.py puts it on the `flash` resource
as `effective_bytes`: the bytes that take the same time at the peak rate).
"""
from __future__ import annotations

import math

from pydantic import Field

from hwsim.spec import Spec


class FlashSpec(Spec):
    """`hardware.flash:` one flash/SSD level (preset: m1-max-flash; each constant's source in it)."""
    name: str = Field(default="flash", description="the level's name in schedules and reports")
    capacity_gib: float = Field(gt=0, description="flash capacity")
    peak_read_gbps: float = Field(gt=0, description="read bandwidth of a long sequential read, GB/s")
    read_latency_us: float = Field(ge=0, description="effective latency to first byte per chunk "
                                   "with the reads in flight (per-read latency / reads in flight), us")
    energy_pj_per_bit: float = Field(default=100.0, gt=0, description="read energy (assumed)")

    @property
    def capacity_bytes(self) -> float:
        return self.capacity_gib * 2**30

    def read_bw_gbps(self, chunk_bytes: float) -> float:
        """Throughput of a stream of reads of `chunk_bytes` each (GB/s = bytes/ns)."""
        return read_bw_gbps(chunk_bytes, self.read_latency_us, self.peak_read_gbps)

    def read_time_ns(self, nbytes: float, chunk_bytes: float) -> float:
        return read_time_ns(nbytes, chunk_bytes, self.read_latency_us, self.peak_read_gbps)

    def effective_bytes(self, nbytes: float, chunk_bytes: float) -> float:
        """Bytes that take as long at the peak rate as `nbytes` read in chunks of `chunk_bytes`."""
        return self.read_time_ns(nbytes, chunk_bytes) * self.peak_read_gbps


def read_bw_gbps(chunk_bytes: float, latency_us: float, peak_gbps: float) -> float:
    """bw(chunk) = chunk / (latency + chunk / peak) (module docstring); `peak` for an unbounded chunk."""
    if chunk_bytes <= 0:
        raise ValueError(f"chunk size must be positive, got {chunk_bytes}")
    if math.isinf(chunk_bytes):
        return peak_gbps
    return chunk_bytes / (latency_us * 1e3 + chunk_bytes / peak_gbps)


def read_time_ns(nbytes: float, chunk_bytes: float, latency_us: float, peak_gbps: float) -> float:
    """Time to read `nbytes` in chunks of `chunk_bytes` (the last chunk may be partial: each
    chunk pays the latency once, the bytes stream at the peak)."""
    if nbytes <= 0:
        return 0.0
    chunks = math.ceil(nbytes / chunk_bytes) if math.isfinite(chunk_bytes) else 1
    return chunks * latency_us * 1e3 + nbytes / peak_gbps


def flash_levels(spec: FlashSpec):
    from hwsim.hw.memory import MemoryLevel
    return [MemoryLevel(spec.name, spec.capacity_bytes, spec.peak_read_gbps, spec.peak_read_gbps,
                        spec.energy_pj_per_bit)]


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

register_component(ComponentKind(
    name="flash", spec=FlashSpec, role="memory",
    summary="flash/SSD level: read bandwidth set by the chunk size (latency to first byte + "
            "streaming at the peak)",
    area_mm2=lambda spec, device, dtype: {},
    static_power_w=lambda spec, device, dtype: 0.0,
    energy_buckets=("flash",), memory_levels=flash_levels))
