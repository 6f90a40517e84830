"""The host beside a GPU node: its DRAM (where model weights wait) and the PCIe links to the GPUs.

`hardware.host:` a memory level named `host` for systems whose accelerators hold only what is in
their HBM (a DGX: 8 GPUs, 2 CPUs with DDR5, each GPU on a PCIe x16 link to the host). Models that
are not resident in HBM are copied host DRAM -> PCIe -> HBM when a request needs them (the
Composition-of-Experts scenario, hwsim.coe). The level a device sees:

- capacity: the node's host DRAM shared by its `devices` GPUs (each device's share);
- bandwidth: one device's PCIe link (`link_bw_gbps`, per direction); `devices_per_link` GPUs
  share a link when the board puts several behind one switch uplink; the host DRAM's own
  bandwidth (`dram_bw_gbps`) is shared by all of them (a copy to every GPU at once cannot exceed
  it). Contention between them comes from the engine (hwsim.coe.switch), not from a formula.

Every constant is in the preset or config that names it, with its source or "assumed".
"""
from __future__ import annotations

from pydantic import Field

from hwsim.spec import Spec


class HostSpec(Spec):
    """`hardware.host:` a node's host memory and its links to the accelerators."""
    dram_gib: float = Field(gt=0, description="host DRAM of the whole node")
    dram_bw_gbps: float = Field(gt=0, description="host DRAM bandwidth of the whole node, GB/s")
    link_bw_gbps: float = Field(gt=0, description="one host-to-accelerator link (PCIe), per "
                                "direction, GB/s")
    devices: int = Field(default=8, gt=0, le=4096, description="accelerators sharing the host")
    devices_per_link: int = Field(default=1, gt=0, le=64, description="accelerators behind one link")
    energy_pj_per_bit: float = Field(default=20.0, gt=0, description="DRAM read + link energy per "
                                     "bit (assumed)")

    @property
    def dram_bytes(self) -> float:
        return self.dram_gib * 2**30


def host_levels(spec: HostSpec):
    from hwsim.hw.memory import MemoryLevel
    return [MemoryLevel("host", spec.dram_bytes / spec.devices, spec.link_bw_gbps, spec.link_bw_gbps,
                        spec.energy_pj_per_bit)]


from hwsim.hw.registry import ComponentKind, register_component  # noqa: E402

register_component(ComponentKind(
    name="host", spec=HostSpec, role="memory",
    summary="a node's host DRAM and its PCIe links to the accelerators (where models wait "
            "outside HBM)",
    area_mm2=lambda spec, device, dtype: {},
    static_power_w=lambda spec, device, dtype: 0.0,
    energy_buckets=("dram",), memory_levels=host_levels))
