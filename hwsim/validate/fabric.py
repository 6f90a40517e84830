"""Routing on a leaf-spine fabric: "Challenging the Need for Packet Spraying in Large-Scale
Distributed Training" (Addanki, Goyal, et al., arXiv 2407.00550). Its claim: for collective
traffic (flows of nearly equal size that start together and finish as one), single-path
transport with minimal application-level flow splitting reaches the same maximum link congestion
as ideal per-packet spraying, while plain ECMP hashing does not (flows collide on uplinks).

hwsim checks it on its shipped leaf-spine (configs/presets/leaf-spine-400g.yaml: 8 leaves of 32
devices, 4 spines x 8 lanes, non-blocking) with two collective patterns, routed three ways by
`hwsim.hw.interconnect.routing`: ECMP (`Routing()`), spraying (`paths_per_flow` = every path)
and single path with minimal splitting (`assignment: balanced`):
- one step of 32 rail rings across the 8 leaves (device r of each leaf talks to device r of the
  next leaf: the rings of a data-parallel all-reduce, one per local rank, as NCCL builds them);
- an all-to-all (expert-parallel dispatch) over the same fabric scaled to 8 devices per leaf
  and 8 uplinks (2 lanes per spine), still non-blocking: 64 devices, 4,032 transfers (on all 256
  devices, spraying alone would be 2 million flows and ~40 s of Python).
Maximum congestion = max over directed links of bytes / bandwidth (the time the busiest link
needs), from `LoweredCollective.link_bytes`, not a simulation.
"""
from __future__ import annotations

import functools

from hwsim.validate import Between, Within, claim

SYSTEM = "Fabric routing"
PAPER = "Addanki et al., \"Challenging the Need for Packet Spraying\", arXiv 2407.00550"
CONFIG = "configs/presets/leaf-spine-400g.yaml"
BLOCK_BYTES = 1 << 20


@functools.cache
def network(scaled_down: bool = False):
    """The shipped leaf-spine, or (`scaled_down`) the same with 8 devices and 8 uplinks per leaf."""
    import yaml

    from hwsim.configs import CONFIG_DIR
    from hwsim.hw.interconnect.topology import topology_from_dict
    data = yaml.safe_load((CONFIG_DIR / "presets" / "leaf-spine-400g.yaml").read_text())
    data.pop("component")
    if scaled_down:
        data |= {"devices_per_leaf": 8, "uplinks_per_leaf": 8}
    return topology_from_dict(data).build()


def ring_step_transfers(spec_leaves: int, per_leaf: int) -> list[tuple[int, int, float]]:
    """Device r of leaf l sends a block to device r of leaf l+1 (mod leaves), for every r, l."""
    return [(leaf * per_leaf + r, ((leaf + 1) % spec_leaves) * per_leaf + r, float(BLOCK_BYTES))
            for leaf in range(spec_leaves) for r in range(per_leaf)]


def max_congestion_ns(lowered, net) -> float:
    """The busiest directed link's bytes over its bandwidth (ns)."""
    bw = {name: link.bw_gbps for name, link in net.links.items()}
    return max(b / bw[name] for name, b in lowered.link_bytes().items())


@functools.cache
def congestion(pattern: str) -> dict[str, float]:
    """Max congestion (ns) of `pattern` ("rings" or "all-to-all") routed by ECMP, spraying
    and single path with minimal splitting."""
    from hwsim.hw.interconnect import Collective, Routing, lower_collective, lower_transfers
    net = network(scaled_down=pattern == "all-to-all")
    spec = net.spec
    spray = Routing(paths_per_flow=spec.uplinks_per_leaf)
    out = {}
    for name, routing in (("ecmp", Routing()), ("spray", spray), ("balanced", Routing(assignment="balanced"))):
        if pattern == "rings":
            lowered = lower_transfers(net, ring_step_transfers(spec.leaves, spec.devices_per_leaf), routing)
        else:
            devices = list(range(spec.num_devices))
            lowered = lower_collective(net, Collective.ALL_TO_ALL, devices,
                                       float(BLOCK_BYTES * len(devices)), routing=routing)
        out[name] = max_congestion_ns(lowered, net)
    return out


for _pattern, _what in (("rings", "one step of 32 rail rings across 8 leaves"),
                        ("all-to-all", "an all-to-all over 64 devices of 8 leaves")):
    @claim(id=f"fabric.{_pattern.replace('-', '_')}.split_single_path_equals_spraying", system=SYSTEM,
           claim=f"single path + minimal flow splitting reaches spraying's max link congestion ({_what})",
           source=f"{PAPER}, abstract and main result", config=CONFIG,
           metric="max link congestion, single path with minimal splitting / ideal spraying",
           published=1.0, unit="x",
           band=Within(1e-9, "the paper proves equality for collective traffic; the split "
                             "assignment must give exactly spraying's link loads"))
    def _(pattern=_pattern):
        c = congestion(pattern)
        return c["balanced"] / c["spray"]

    @claim(id=f"fabric.{_pattern.replace('-', '_')}.ecmp_above_spraying", system=SYSTEM,
           claim=f"plain ECMP hashing does not reach spraying's max link congestion ({_what})",
           source=f"{PAPER}, abstract (a direction)", config=CONFIG,
           metric="max link congestion, ECMP / ideal spraying", published=None, unit="x",
           band=Between(1.0 + 1e-6, None, "a direction: hashed flows collide on some uplink"))
    def _(pattern=_pattern):
        c = congestion(pattern)
        return c["ecmp"] / c["spray"]
