"""Which of the equal-cost paths a flow takes.

A fabric with several equal-cost paths between two devices (the spines of a Clos) picks one per
flow by hashing the flow's identity — ECMP: every packet of a flow follows one path, so two large
flows may hash onto the same uplink while another stays idle (Hopps, RFC 2992, "Analysis of an
Equal-Cost Multi-Path Algorithm", 2000). Here the hash is of (seed, source, destination, flow
id) with BLAKE2b, so a run is reproducible and a different seed stands for a different switch
hash function. The choice is made once per path (at the source leaf), and the path comes down on
the same lane it went up.

`paths_per_flow = k > 1` splits each flow evenly over k distinct paths, starting at the hashed
one; k at least the number of paths puts an equal share on every path, the fluid limit of
per-packet spraying.

`assignment = "balanced"` is single-path transport placed by the application (e.g. by choosing
each connection's source port or queue pair so the switches' hash lands where it wants): the
flows of one phase that share a fabric (the leaf pair of a Clos) go round-robin over its paths,
one path each, and only the last `n mod paths` flows are split, evenly over all paths ("minimal
flow splitting"). For equal-size flows starting together — a collective's — every fabric link
then carries exactly what spraying puts on it (the claim of "Challenging the Need for Packet
Spraying in Large-Scale Distributed Training", Addanki et al., arXiv 2407.00550: single path with
minimal splitting matches ideal spraying in maximum congestion; `hwsim validate --only fabric-routing`).
"""
from __future__ import annotations

import hashlib

from typing import Literal

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from hwsim.spec import Spec

if TYPE_CHECKING:
    from hwsim.hw.interconnect.topology import Network, Route


class Routing(Spec):
    """`hardware.topology.routing`: how flows pick among equal-cost paths (module docstring)."""

    paths_per_flow: int = Field(default=1, ge=1,
                                description="1 = ECMP (one hashed path); k = split over k paths")
    ecmp_seed: int = Field(default=0, ge=0, description="the switches' hash seed")
    assignment: Literal["hash", "balanced"] = Field(
        default="hash", description="hash: ECMP; balanced: the application spreads each phase's "
        "flows over the paths, splitting only the remainder (module docstring)")

    @model_validator(mode="after")
    def _one_way_to_split(self):
        if self.assignment == "balanced" and self.paths_per_flow != 1:
            raise ValueError("paths_per_flow is for hashed routing; balanced assignment splits "
                             "flows itself")
        return self


def ecmp_hash(seed: int, src: int, dst: int, flow_id: int) -> int:
    """A deterministic 64-bit hash of a flow's identity (independent of PYTHONHASHSEED)."""
    digest = hashlib.blake2b(f"{seed}:{src}:{dst}:{flow_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def choose_paths(network: Network, src: int, dst: int, routing: Routing,
                 flow_id: int = 0) -> tuple[Route, ...]:
    """The paths a flow from `src` to `dst` uses; its bytes are divided evenly among them."""
    paths = network.equal_cost_paths(src, dst)
    if len(paths) == 1:
        return paths
    first = ecmp_hash(routing.ecmp_seed, src, dst, flow_id) % len(paths)
    k = min(routing.paths_per_flow, len(paths))
    return tuple(paths[(first + i) % len(paths)] for i in range(k))
