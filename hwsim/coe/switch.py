"""Model switching as engine tasks: one expert copied from the level that stores it into HBM.

Every device of the replica (tensor rank) holds its slice of the expert, so a switch copies each
device's slice at once. A device's copy is one DMA stream: one task per layer (plus the
embedding and the head), each after the previous one; a task moves its bytes on

- the store's path of that device: `<store><link>`, one resource per link, at the store level's
  sustained bandwidth (SN40L: each socket's own DDR; a GPU node: the PCIe link, shared by
  `devices_per_link` GPUs);
- the host DRAM of the node when the store is `host` (`host_dram`, shared by every device);
- the device's HBM (`hbm<i>`, the write).

The switch time is the engine's makespan of these tasks; with one device per link and no shared
resource it is the closed form bytes per device / store bandwidth (tests/test_sn40l.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from hwsim.sim.engine import simulate
from hwsim.sim.schedule import Resource, Schedule


@dataclass(frozen=True)
class SwitchCost:
    time_s: float
    energy_j: float              # all devices
    bytes_per_device: float
    devices: int
    schedule: Schedule
    links: int                   # store paths (resources) the devices share


def copy_schedule(chunks: list[float], devices: int, store, hbm, devices_per_link: int = 1,
                  shared_bw_gbps: float | None = None) -> Schedule:
    """The tasks of one switch (module docstring). `chunks`: bytes per layer of one device's
    slice; `store`, `hbm`: MemoryLevels; `shared_bw_gbps`: the node's host DRAM, if any."""
    s = Schedule(resources={})
    links = -(-devices // devices_per_link)
    for j in range(links):
        s.add_resource(Resource(f"{store.name}{j}", "memory", store.sustained_bw_gbps, store.peak_bw_gbps,
                                exclusive=False, unit=store.name))
    if shared_bw_gbps is not None:
        s.add_resource(Resource("host_dram", "memory", shared_bw_gbps, shared_bw_gbps, exclusive=False,
                                unit="host_dram"))
    for i in range(devices):
        s.add_resource(Resource(f"{hbm.name}{i}", "memory", hbm.sustained_bw_gbps, hbm.peak_bw_gbps,
                                exclusive=False, unit=hbm.name))
    for i in range(devices):
        prev = None
        for k, nbytes in enumerate(chunks):
            if nbytes <= 0:
                continue
            demands = {f"{store.name}{i // devices_per_link}": nbytes, f"{hbm.name}{i}": nbytes}
            if shared_bw_gbps is not None:
                demands["host_dram"] = nbytes
            bws = [store.peak_bw_gbps, hbm.peak_bw_gbps] + ([shared_bw_gbps] if shared_bw_gbps else [])
            energy = store.energy_j(nbytes) + hbm.energy_j(nbytes)
            prev = s.add(f"copy d{i} chunk {k}", "", f"{store.name}{i // devices_per_link}", demands,
                         deps=() if prev is None else (prev,),
                         bytes_by_level={store.name: nbytes, hbm.name: nbytes}, energy_j=energy,
                         energy_by_component_j={"dram": energy}, roofline_ns=nbytes / min(bws),
                         device=i, component="copy", datapath="dma", level=store.name)
    return s


def switch_cost(chunks: list[float], devices: int, store, hbm, devices_per_link: int = 1,
                shared_bw_gbps: float | None = None) -> SwitchCost:
    s = copy_schedule(chunks, devices, store, hbm, devices_per_link, shared_bw_gbps)
    trace = simulate(s)
    energy = sum(t.energy_j for t in s.tasks)
    return SwitchCost(trace.makespan_ns * 1e-9, energy, float(sum(chunks)), devices, s,
                      -(-devices // devices_per_link))
