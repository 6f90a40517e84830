"""Placement of data on a device's memory levels: where weights, KV cache and activations live.

The policy (one obvious way, a mapper may bring its own):
- the KV cache and spilled activations live in the fastest off-chip level (the one next to the
  compute units); the KV cache of the whole batch is reserved there first;
- weights fill the off-chip levels fastest first, a layer at a time in graph order (the layers'
  weights whole in one level: the first layers in HBM, the rest spilled to DDR; ops outside the
  layers, such as the embedding and the LM head, count as one group); every micro-batch of a
  layer reads the same weights; weights the pass does not read (experts no request was routed
  to) take room after them, split over levels as needed;
- weights "in metal" (a hardwired chip) live in no level: no weight traffic at all.
A level too small is a `PlacementError` naming the level and the bytes (exit 2 from the CLI).
On-chip scratchpads hold tiles and activations; the cost model of the compute unit decides what
stays on chip (hwsim.hw.npu: activations when they fit half the scratchpad).
"""
from __future__ import annotations

from dataclasses import dataclass

from hwsim.hw.memory import MemoryLevel, OperandLevels
from hwsim.hw.system import Device
from hwsim.workloads.ops import Op, OpGraph


class PlacementError(ValueError):
    """The data does not fit the device's memory levels (names the level and the bytes)."""


@dataclass(frozen=True)
class DataPlacement:
    kv: MemoryLevel
    activations: MemoryLevel
    weights_of: dict[int, MemoryLevel | None]    # layer (-1: outside layers) -> level of its weights
    resident_bytes: dict[str, float]             # level name -> bytes placed there

    def levels_for(self, op: Op) -> OperandLevels:
        return OperandLevels(self.weights_of.get(op.layer, self.kv), self.kv, self.activations)


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.2f} GB"


def place_data(graph: OpGraph, device: Device, weights_in_metal: bool = False) -> DataPlacement:
    """Place `graph`'s data on `device`'s off-chip levels (module docstring)."""
    levels = device.off_chip_levels
    if not levels:
        raise PlacementError("the device has no off-chip memory level to hold the KV cache and weights")
    first = levels[0]
    kv = float(graph.info.kv_bytes_per_device)
    if kv > first.capacity_bytes:
        raise PlacementError(f"the KV cache ({_gb(kv)}) does not fit memory level '{first.name}' "
                             f"({_gb(first.capacity_bytes)})")
    free = {lv.name: lv.capacity_bytes for lv in levels}
    free[first.name] -= kv
    resident = {lv.name: 0.0 for lv in levels}
    resident[first.name] = kv
    weights_of: dict[int, MemoryLevel | None] = {}

    def put(nbytes: float, what: str) -> MemoryLevel:
        for lv in levels:
            if nbytes <= free[lv.name]:
                free[lv.name] -= nbytes
                resident[lv.name] += nbytes
                return lv
        raise PlacementError(f"{what} ({_gb(nbytes)}) fit no memory level: free "
                             + ", ".join(f"'{lv.name}' {_gb(free[lv.name])}" for lv in levels))

    if weights_in_metal:
        weights_of = {op.layer: None for op in graph.ops}
    else:
        per_layer: dict[int, float] = {}
        for op in graph.ops:                  # micro-batch 0 reads every weight of its layer once
            if op.weight_bytes and op.micro_batch == 0:
                per_layer[op.layer] = per_layer.get(op.layer, 0.0) + op.weight_bytes
        placed = 0.0
        for layer, nbytes in per_layer.items():
            what = f"the weights of layer {layer}" if layer >= 0 else "the weights outside the layers"
            weights_of[layer] = put(nbytes, what)
            placed += nbytes
        rest = float(graph.info.weight_bytes_per_device) - placed
        for lv in levels:                     # weights not read this pass: anywhere there is room
            take = min(max(rest, 0.0), free[lv.name])
            free[lv.name] -= take
            resident[lv.name] += take
            rest -= take
        if rest > 0:
            raise PlacementError(f"the device's weights do not fit its memory levels: {_gb(rest)} left "
                                 f"over after " + ", ".join(f"'{lv.name}' ({_gb(lv.capacity_bytes)})"
                                                            for lv in levels))
    return DataPlacement(first, first, weights_of, resident)
