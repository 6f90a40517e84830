"""Topologies: devices and switches joined by directed links, and the equal-cost paths between
two devices.

A topology spec (pydantic, units in field names) builds a `Network`: the nodes (devices
`dev0..dev{N-1}` first, then switches) and one `Link` per direction of every cable, each its own
resource with a bandwidth per direction, a latency and an energy per bit. Bandwidths are in GB/s
(= bytes per ns, the repository's `bw_gbps` convention: 400 Gb/s is 50 GB/s); times in ns.

Each spec also says which paths a flow between two devices may take (`equal_cost_paths`):

- mesh: one path, dimension-order routing (dimension 0 first, then 1, ...: the XY routing of
  on-chip meshes; Dally & Towles, "Principles and Practices of Interconnection Networks", 2004,
  section 14.2); its length is the Manhattan distance;
- torus: the same, each dimension taking the shorter way round (the + direction on a tie); its
  length is the wrap distance, sum over dimensions of min(|d|, n - |d|);
- switch (star): device -> switch -> device;
- full mesh: the direct link;
- two-tier Clos (leaf-spine): within a leaf device -> leaf -> device; across leaves up-down,
  device -> leaf -> spine -> leaf -> device, one path per uplink of the source leaf (which one a
  flow takes is the routing policy's choice: `routing.py`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Annotated, Literal, Union

from pydantic import Discriminator, Field, Tag, TypeAdapter, model_validator

from hwsim.hw.interconnect.routing import Routing
from hwsim.spec import Spec


@dataclass(frozen=True)
class Link:
    """One direction of a cable: its own resource in a schedule."""
    name: str                    # "dev3->sw0"; parallel cables carry a lane suffix "#k"
    src: str
    dst: str
    bw_gbps: float               # GB/s = bytes/ns, this direction only
    latency_ns: float
    energy_pj_per_bit: float


Route = tuple[Link, ...]         # the directed links a flow crosses, in order


def device_name(index: int) -> str:
    return f"dev{index}"


@dataclass
class Network:
    """A built topology: nodes, links by name, and the spec that routes between devices."""
    spec: "TopologySpec"
    devices: tuple[str, ...]
    switches: tuple[str, ...]
    links: dict[str, Link]
    _paths: dict[tuple[int, int], tuple[Route, ...]] = field(default_factory=dict, repr=False)

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    def equal_cost_paths(self, src: int, dst: int) -> tuple[Route, ...]:
        """Every path a flow from device `src` to device `dst` may take (at least one)."""
        key = (src, dst)
        if key not in self._paths:
            for d in key:
                if not 0 <= d < self.num_devices:
                    raise ValueError(f"device {d} is not in this {self.spec.kind} "
                                     f"of {self.num_devices} devices")
            if src == dst:
                raise ValueError(f"a flow from device {src} to itself has no route")
            self._paths[key] = tuple(tuple(self.links[n] for n in path)
                                     for path in self.spec.link_paths(src, dst))
        return self._paths[key]


def _build(spec, switches: tuple[str, ...], cables) -> Network:
    """cables: (name, src, dst, bw_gbps, latency_ns, energy_pj_per_bit) per directed link."""
    links = {}
    for name, src, dst, bw, lat, pj in cables:
        if name in links:
            raise ValueError(f"duplicate link {name}")
        links[name] = Link(name, src, dst, bw, lat, pj)
    return Network(spec=spec, devices=tuple(device_name(i) for i in range(spec.num_devices)),
                   switches=switches, links=links)


def _hop(a: str, b: str) -> str:
    return f"{a}->{b}"


class _Spec(Spec):
    """What every topology has besides its shape: how flows choose among equal-cost paths and
    which all-reduce algorithm the tensor-parallel groups run ("auto": the least estimated
    time for each message, hw/interconnect/collectives.py `lower_all_reduce`)."""
    routing: Routing = Field(default_factory=Routing)
    all_reduce: Literal["ring", "double_binary_tree", "star", "auto"] = "ring"


class MeshSpec(_Spec):
    """A 2-D (or n-D) grid of devices, each linked to its neighbours in every dimension: an
    on-chip network or a wafer. `torus` adds the wrap-around links."""
    kind: Literal["mesh", "torus"]
    dims: tuple[int, ...] = Field(min_length=1, description="devices along each dimension")
    link_bw_gbps: float = Field(gt=0, description="per link, per direction")
    hop_latency_ns: float = Field(ge=0, description="router + wire, per hop")
    energy_pj_per_bit: float = Field(ge=0, description="per hop")

    @model_validator(mode="after")
    def _positive_dims(self):
        if any(n < 1 for n in self.dims):
            raise ValueError(f"dims must be positive, got {list(self.dims)}")
        return self

    @property
    def num_devices(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    def coords(self, index: int) -> tuple[int, ...]:
        """Row-major: the last dimension varies fastest."""
        out = []
        for n in reversed(self.dims):
            out.append(index % n)
            index //= n
        return tuple(reversed(out))

    def index(self, coords) -> int:
        i = 0
        for c, n in zip(coords, self.dims):
            i = i * n + c
        return i

    def _neighbour(self, coords, dim: int, step: int) -> tuple[int, ...] | None:
        c = list(coords)
        c[dim] += step
        n = self.dims[dim]
        if self.kind == "torus":
            c[dim] %= n
        elif not 0 <= c[dim] < n:
            return None
        return tuple(c)

    def build(self) -> Network:
        cables = {}
        for i in range(self.num_devices):
            here = self.coords(i)
            for dim in range(len(self.dims)):
                for step in (1, -1):
                    there = self._neighbour(here, dim, step)
                    if there is None or there == here:
                        continue
                    name = _hop(device_name(i), device_name(self.index(there)))
                    cables[name] = (name, device_name(i), device_name(self.index(there)),
                                    self.link_bw_gbps, self.hop_latency_ns, self.energy_pj_per_bit)
        return _build(self, (), cables.values())

    def hops(self, src: int, dst: int) -> int:
        """Manhattan distance (mesh) or wrap distance (torus): the length of the route."""
        total = 0
        for a, b, n in zip(self.coords(src), self.coords(dst), self.dims):
            d = abs(b - a)
            total += min(d, n - d) if self.kind == "torus" else d
        return total

    def link_paths(self, src: int, dst: int) -> list[tuple[str, ...]]:
        here, goal = list(self.coords(src)), self.coords(dst)
        names = []
        for dim, n in enumerate(self.dims):
            delta = goal[dim] - here[dim]
            step, count = (1 if delta > 0 else -1), abs(delta)
            if self.kind == "torus":
                forward = delta % n
                step, count = (1, forward) if forward <= n - forward else (-1, n - forward)
            for _ in range(count):
                nxt = self._neighbour(here, dim, step)
                names.append(_hop(device_name(self.index(here)), device_name(self.index(nxt))))
                here = list(nxt)
        return [tuple(names)]


class SwitchSpec(_Spec):
    """A star: every device has one port on a single switch (NVSwitch-class scale-up). The
    switch is non-blocking; a device's port is two links, device->switch and switch->device."""
    kind: Literal["switch"]
    devices: int = Field(ge=1)
    port_bw_gbps: float = Field(gt=0, description="per device, per direction")
    link_latency_ns: float = Field(ge=0, description="per link; a route crosses two")
    energy_pj_per_bit: float = Field(ge=0, description="per link; a route crosses two")

    @property
    def num_devices(self) -> int:
        return self.devices

    def build(self) -> Network:
        cables = []
        for i in range(self.devices):
            d = device_name(i)
            for a, b in ((d, "sw0"), ("sw0", d)):
                cables.append((_hop(a, b), a, b, self.port_bw_gbps, self.link_latency_ns,
                               self.energy_pj_per_bit))
        return _build(self, ("sw0",), cables)

    def link_paths(self, src: int, dst: int) -> list[tuple[str, ...]]:
        return [(_hop(device_name(src), "sw0"), _hop("sw0", device_name(dst)))]


class FullMeshSpec(_Spec):
    """Every pair of devices directly linked (point-to-point scale-up)."""
    kind: Literal["full_mesh"]
    devices: int = Field(ge=1)
    link_bw_gbps: float = Field(gt=0, description="per pair, per direction")
    link_latency_ns: float = Field(ge=0)
    energy_pj_per_bit: float = Field(ge=0)

    @property
    def num_devices(self) -> int:
        return self.devices

    def build(self) -> Network:
        cables = []
        for i in range(self.devices):
            for j in range(self.devices):
                if i != j:
                    a, b = device_name(i), device_name(j)
                    cables.append((_hop(a, b), a, b, self.link_bw_gbps, self.link_latency_ns,
                                   self.energy_pj_per_bit))
        return _build(self, (), cables)

    def link_paths(self, src: int, dst: int) -> list[tuple[str, ...]]:
        return [(_hop(device_name(src), device_name(dst)),)]


class ClosSpec(_Spec):
    """A two-tier Clos (leaf-spine): `devices_per_leaf` devices on each of `leaves` leaf
    switches; each leaf has `uplinks_per_leaf` cables to the spines, spread evenly (so
    `uplinks_per_leaf / spines` parallel cables, "lanes", to each spine). All cables have the
    same bandwidth, so the oversubscription is devices_per_leaf / uplinks_per_leaf."""
    kind: Literal["clos"]
    devices_per_leaf: int = Field(ge=1)
    leaves: int = Field(ge=1)
    spines: int = Field(ge=1)
    uplinks_per_leaf: int = Field(ge=1)
    link_bw_gbps: float = Field(gt=0, description="every cable, per direction")
    link_latency_ns: float = Field(ge=0, description="per link (switch hop + wire)")
    energy_pj_per_bit: float = Field(ge=0, description="per link")

    @model_validator(mode="after")
    def _even_uplinks(self):
        if self.uplinks_per_leaf % self.spines:
            raise ValueError(f"uplinks_per_leaf ({self.uplinks_per_leaf}) must be a multiple of "
                             f"spines ({self.spines}) so that every spine gets the same lanes")
        return self

    @property
    def num_devices(self) -> int:
        return self.devices_per_leaf * self.leaves

    @property
    def lanes(self) -> int:
        return self.uplinks_per_leaf // self.spines

    @property
    def oversubscription(self) -> float:
        """Bandwidth into a leaf from its devices over bandwidth out of it to the spines."""
        return self.devices_per_leaf / self.uplinks_per_leaf

    def leaf_of(self, device: int) -> int:
        return device // self.devices_per_leaf

    def _lane_link(self, a: str, b: str, lane: int) -> str:
        return _hop(a, b) + (f"#{lane}" if self.lanes > 1 else "")

    def build(self) -> Network:
        link = (self.link_bw_gbps, self.link_latency_ns, self.energy_pj_per_bit)
        cables = []
        for i in range(self.num_devices):
            d, leaf = device_name(i), f"leaf{self.leaf_of(i)}"
            cables += [(_hop(d, leaf), d, leaf, *link), (_hop(leaf, d), leaf, d, *link)]
        for lf in range(self.leaves):
            for s in range(self.spines):
                leaf, spine = f"leaf{lf}", f"spine{s}"
                for k in range(self.lanes):
                    cables += [(self._lane_link(leaf, spine, k), leaf, spine, *link),
                               (self._lane_link(spine, leaf, k), spine, leaf, *link)]
        switches = tuple(f"leaf{i}" for i in range(self.leaves)) + \
            tuple(f"spine{i}" for i in range(self.spines))
        return _build(self, switches, cables)

    def link_paths(self, src: int, dst: int) -> list[tuple[str, ...]]:
        """Up-down: one path per uplink u of the source leaf, through spine u mod spines on lane
        u div spines, coming down on the same lane."""
        a, b = device_name(src), device_name(dst)
        la, lb = f"leaf{self.leaf_of(src)}", f"leaf{self.leaf_of(dst)}"
        if la == lb:
            return [(_hop(a, la), _hop(la, b))]
        paths = []
        for u in range(self.uplinks_per_leaf):
            spine, lane = f"spine{u % self.spines}", u // self.spines
            paths.append((_hop(a, la), self._lane_link(la, spine, lane),
                          self._lane_link(spine, lb, lane), _hop(lb, b)))
        return paths


def _topology_kind(value) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return "mesh" if kind == "torus" else kind



TopologySpec = Annotated[Union[Annotated[MeshSpec, Tag("mesh")], Annotated[SwitchSpec, Tag("switch")],
                               Annotated[FullMeshSpec, Tag("full_mesh")], Annotated[ClosSpec, Tag("clos")]],
                         Discriminator(_topology_kind)]


# The tags of the union above and their specs (pydantic puts a tag in an error's location: the
# config loader drops it and finds the spec for did-you-mean hints).
TOPOLOGY_SPECS = {"mesh": MeshSpec, "switch": SwitchSpec, "full_mesh": FullMeshSpec, "clos": ClosSpec}


def topology_from_dict(data: dict) -> MeshSpec | SwitchSpec | FullMeshSpec | ClosSpec:
    """Validate a topology mapping (a preset's body, `component` key removed) by its `kind`."""
    return _topology_adapter().validate_python(data)


@functools.cache
def _topology_adapter() -> TypeAdapter:
    """The union's validator, built on first use (its schema costs ~30 ms: not at import)."""
    return TypeAdapter(TopologySpec)
