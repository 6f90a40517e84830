"""`hardware.topology`: the devices of a replica on an interconnect (a registered component).

A config with a topology models every device of its replica (tp x ep x pp of them, placed on
the topology's devices 0, 1, ... in (stage, expert group, tensor rank) order): the partition
step builds one graph per distinct device, the mapper maps each, and every collective becomes
flows on the topology's links (mappers/partition.py, `merge_device_schedules`). A config with
a `link` instead keeps the one-device model with closed-form collectives.

The mapper of a device sees the topology as a plain `link` (`device_link`): the bandwidth and
latency of a route between two of its devices. Its collective tasks are placeholders that the
merge replaces with the lowered flows, so these figures only matter if a device is mapped on
its own.
"""
from __future__ import annotations

from pydantic import ConfigDict, RootModel

from hwsim.hw.interconnect.cost import route_bottleneck_gbps, route_latency_ns, route_pj_per_bit
from hwsim.hw.interconnect.topology import TopologySpec
from hwsim.hw.link import LinkSpec, collective_cost
from hwsim.hw.registry import ComponentKind, register_component
from hwsim.workloads.ops import OpKind


class InterconnectSpec(RootModel[TopologySpec]):
    """`hardware.topology:` one of the topology specs (hw/interconnect/topology.py), by `kind`."""
    model_config = ConfigDict(frozen=True)

    @property
    def spec(self):
        return self.root


def device_link(section: InterconnectSpec) -> LinkSpec:
    """A device's view of the topology as one link: the route from device 0 to device 1 (the
    last device when there is one)."""
    topo = section.root
    network = topo.build()
    dst = 1 if network.num_devices > 1 else 0
    route = network.equal_cost_paths(0, dst)[0] if dst else ()
    if not route:
        return LinkSpec(bw_gbps=1.0)
    return LinkSpec(bw_gbps=route_bottleneck_gbps(route), latency_us=route_latency_ns(route) / 1e3,
                    energy_pj_per_bit=route_pj_per_bit(route))


register_component(ComponentKind(
    name="topology", spec=InterconnectSpec, role="link",
    summary="devices on an interconnect (mesh/torus, switch, full mesh, two-tier Clos): every "
            "device of the replica modelled, collectives lowered to flows on its links",
    op_costs={k.value: lambda device, op, where: collective_cost(op, device_link(device.spec("topology")))
              for k in OpKind if k.is_collective},
    energy_buckets=("link",)))
