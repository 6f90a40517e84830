"""Edge device (laptop / home-device class): CPU cores, RAM as a hard-capacity level, a disk.

`hardware.edge:` one CPU-only device as TPI-LLM runs on (Li et al., "TPI-LLM: Serving 70B-scale
LLMs Efficiently on Low-resource Edge Devices", arXiv 2410.00531): a few cores, a few GB of RAM,
and a disk that holds the device's slice of the model weights. Two memory levels:

- `ram`: capacity `ram_gib` is a hard limit (a mapper checks what it keeps resident against it);
  every op reads its weights, activations and KV cache from it at `ram_bw_gbps`;
- `disk`: capacity `disk_gib`, read at `disk_read_gbps` (sequential reads of whole weight files,
  as TPI-LLM's memory scheduler does: one file per attention or MLP block).

Time of an op: FLOPs / (cores x FLOPs per cycle per core x clock x `efficiency`), the rate a
CPU BLAS reaches (an "assumed" figure in the preset, not a calibration); the roofline is
max(FLOPs / peak, RAM bytes / RAM bandwidth) with the peak at efficiency 1. The RAM traffic is
a demand on the shared `ram` resource, so a decode GEMV is RAM-bound when it should be.
"""
from __future__ import annotations

from pydantic import Field, model_validator

from hwsim.hw.cost import OpCost
from hwsim.spec import Spec
from hwsim.workloads.ops import Op, OpKind


class EdgeSpec(Spec):
    """`hardware.edge:` one CPU edge device (preset: edge-laptop-8gb; each constant's source in it)."""
    cores: int = Field(gt=0, le=256)
    freq_ghz: float = Field(gt=0, le=10)
    flops_per_cycle_per_core: float = Field(gt=0, description="peak FLOPs per cycle per core at the "
                                            "workload's dtype (SIMD width x FMA x pipes)")
    efficiency: float = Field(gt=0, le=1, description="share of the peak a CPU BLAS reaches on "
                              "the GEMMs/GEMVs (assumed in the preset)")
    ram_gib: float = Field(gt=0, description="RAM the process may use (hard limit)")
    ram_bw_gbps: float = Field(gt=0, description="RAM bandwidth, GB/s")
    disk_gib: float | None = Field(default=None, gt=0, description="disk capacity for the weight "
                                   "files (none: no `disk` level, e.g. when a `hardware.flash` "
                                   "section holds the weights)")
    disk_read_gbps: float | None = Field(default=None, gt=0, description="sequential disk read "
                                         "bandwidth, GB/s (with disk_gib)")
    power_w: float = Field(default=15.0, gt=0, description="package power while running (energy = "
                           "power x time; rough)")
    die_area_mm2: float = Field(gt=0, description="the CPU die (area only; no claim uses it)")
    ram_pj_per_bit: float = Field(default=20.0, gt=0, description="RAM access energy (assumed)")
    disk_pj_per_bit: float = Field(default=100.0, gt=0, description="disk read energy (assumed)")

    @property
    def peak_flops_per_ns(self) -> float:
        return self.cores * self.flops_per_cycle_per_core * self.freq_ghz

    @property
    def ram_bytes(self) -> float:
        return self.ram_gib * 2**30

    @model_validator(mode="after")
    def _disk_both_or_neither(self):
        if (self.disk_gib is None) != (self.disk_read_gbps is None):
            raise ValueError("disk_gib and disk_read_gbps come together (both or neither)")
        return self

    @property
    def disk_bytes(self) -> float:
        if self.disk_gib is None:
            from hwsim.input_error import ConfigError
            raise ConfigError("this edge device has no disk (set disk_gib and disk_read_gbps)",
                              key="hardware.edge.disk_gib")
        return self.disk_gib * 2**30


def edge_op_cost(spec: EdgeSpec, op: Op, ram_level) -> OpCost:
    """Time, RAM bytes and energy of `op` on the CPU (module docstring)."""
    compute = op.flops / (spec.peak_flops_per_ns * spec.efficiency)
    nbytes = float(op.weight_bytes + op.act_in_bytes + op.act_out_bytes)
    roof = max(op.flops / spec.peak_flops_per_ns, nbytes / ram_level.peak_bw_gbps)
    parts = {"compute": spec.power_w * compute * 1e-9, "ram": ram_level.energy_j(nbytes)}
    return OpCost(compute_ns=compute, bytes_by_level={"ram": nbytes}, energy_j=sum(parts.values()),
                  roofline_ns=roof, engine="cpu", energy_by_component_j=parts)


def edge_levels(spec: EdgeSpec):
    from hwsim.hw.memory import MemoryLevel
    levels = [MemoryLevel("ram", spec.ram_bytes, spec.ram_bw_gbps, spec.ram_bw_gbps, spec.ram_pj_per_bit)]
    if spec.disk_gib is not None:
        levels.append(MemoryLevel("disk", spec.disk_bytes, spec.disk_read_gbps, spec.disk_read_gbps,
                                  spec.disk_pj_per_bit))
    return levels


def _edge_cost(device, op: Op, where=None) -> OpCost:
    return edge_op_cost(device.spec("edge"), op, device.level("ram"))


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

EDGE_OPS = tuple(k for k in OpKind if not k.is_collective)

register_component(ComponentKind(
    name="edge", spec=EdgeSpec, role="compute",
    summary="CPU edge device (laptop class): BLAS-rate compute, RAM as a hard-capacity level, "
            "a disk holding the weights",
    op_costs={k.value: _edge_cost for k in EDGE_OPS},
    area_mm2=lambda spec, device, dtype: {"edge_die": spec.die_area_mm2},
    static_power_w=lambda spec, device, dtype: 0.0,
    energy_buckets=("compute", "ram", "disk"), memory_levels=edge_levels))
