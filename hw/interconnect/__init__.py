"""Many devices on a topology: topology specs and the network they build (`topology`), which
path a flow takes (`routing`), collectives lowered to flows (`collectives`), what a flow costs
(`cost`) and the adapter that adds a lowered collective to a `Schedule` (`schedule`)."""
from hwsim.hw.interconnect.collectives import (
    ALGORITHMS, Algorithm, Collective, Flow, LoweredCollective, Phase, lower_collective, lower_transfers)
from hwsim.hw.interconnect.cost import (
    flow_cost, route_bottleneck_gbps, route_latency_ns, route_pj_per_bit)
from hwsim.hw.interconnect.routing import Routing, choose_paths, ecmp_hash
from hwsim.hw.interconnect.schedule import CollectiveTasks, add_collective, link_resource_name
from hwsim.hw.interconnect.topology import (
    ClosSpec, FullMeshSpec, Link, MeshSpec, Network, Route, SwitchSpec, TopologySpec,
    topology_from_dict)

__all__ = [
    "ALGORITHMS", "Algorithm", "ClosSpec", "Collective", "CollectiveTasks", "Flow",
    "FullMeshSpec", "Link", "LoweredCollective", "MeshSpec", "Network", "Phase", "Route",
    "Routing", "SwitchSpec", "TopologySpec", "add_collective", "choose_paths", "ecmp_hash",
    "flow_cost", "link_resource_name", "lower_collective", "lower_transfers", "route_bottleneck_gbps",
    "route_latency_ns", "route_pj_per_bit", "topology_from_dict",
]
