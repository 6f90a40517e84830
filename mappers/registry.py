"""Mapper registry: name -> (options model, required hardware, map function)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hwsim.spec import Spec


class NoOptions(Spec):
    """A mapper without options."""


@dataclass(frozen=True)
class MapperEntry:
    name: str
    summary: str
    needs: tuple[str, ...]                     # hardware components it requires
    options: type[Spec]
    build: Callable                            # (OpGraph, HardwareSpec, options) -> Schedule
    workloads: tuple[str, ...] = ("transformer",)   # workload kinds it can place
    # True: the mapper checks every memory level's capacity itself (per level, naming the layer),
    # so the scenario's generic "weights + largest activations <= memory" check is skipped.
    checks_fit: bool = False
    # Each identical layer costs the same whatever the number of layers (sweeps may then simulate
    # a few layers and extend them: hwsim.extrapolate); False when a layer's placement depends on
    # how many there are (wafer regions sized to fill the wafer).
    layer_periodic: bool = True


MAPPERS: dict[str, MapperEntry] = {}


def register(name: str, summary: str, needs: tuple[str, ...], options: type[Spec] = NoOptions,
             workloads: tuple[str, ...] = ("transformer",), checks_fit: bool = False,
             layer_periodic: bool = True):
    def wrap(fn):
        MAPPERS[name] = MapperEntry(name, summary, needs, options, fn, workloads, checks_fit,
                                    layer_periodic)
        return fn
    return wrap


def get_mapper(name: str) -> MapperEntry:
    return MAPPERS[name]
