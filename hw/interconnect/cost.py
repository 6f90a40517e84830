"""What one flow of a lowered collective costs before contention: its latency, its energy and
its roofline. Contention on shared links is the engine's (each directed link is a shared
resource, max-min fair among the flows on it).

- latency = steps × the route's per-step latency (sum of its links' latencies): each collapsed
  step pays the route's latency once (see `collectives` on collapsing);
- energy = bytes × 8 × sum over the route's links of pJ/bit (bytes × hops × pJ/bit when the
  links are alike): every link a byte crosses spends its energy per bit;
- roofline = bytes / the route's bottleneck bandwidth + latency: no flow can finish sooner, even
  alone on the fabric.
"""
from __future__ import annotations

import math

from hwsim.hw.cost import OpCost
from hwsim.hw.energy import energy_components_j
from hwsim.hw.interconnect.collectives import Flow
from hwsim.hw.interconnect.topology import Route


def route_latency_ns(route: Route) -> float:
    return math.fsum(link.latency_ns for link in route)


def route_bottleneck_gbps(route: Route) -> float:
    """The slowest link's bandwidth (GB/s = bytes/ns): a flow alone runs at this rate."""
    return min(link.bw_gbps for link in route)


def route_pj_per_bit(route: Route) -> float:
    return math.fsum(link.energy_pj_per_bit for link in route)


def flow_cost(flow: Flow, steps: int) -> OpCost:
    """The cost of a flow that collapses `steps` algorithm steps (its bytes are their sum)."""
    latency = steps * route_latency_ns(flow.route)
    parts = energy_components_j(link=flow.nbytes * 8 * route_pj_per_bit(flow.route))
    return OpCost(compute_ns=0.0, bytes_by_level={"link": flow.nbytes},
                  energy_j=math.fsum(parts.values()),
                  roofline_ns=flow.nbytes / route_bottleneck_gbps(flow.route) + latency,
                  latency_ns=latency, engine="link", energy_by_component_j=parts)
