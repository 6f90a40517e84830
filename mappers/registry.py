"""Mapper registry: name -> (options model, required hardware, map function)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hwsim.hw.registry import LazyRegistry
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
    # (HardwareSpec, options, Attention) -> keys per tile of the decode attention kernel: each
    # request's keys are computed in whole tiles (FlashAttention-2 on a GPU); None: key by key.
    # The serving cost's decode fast path interpolates in these rounded keys (hwsim.serving.cost).
    decode_key_tile: Callable | None = None


# The built-in mappers and the module of each (importing a module registers its mappers). A new
# mapper that ships with hwsim adds its line here; one from outside registers by being imported.
BUILTIN_MAPPER_MODULES = {
    "gpu": "hwsim.mappers.gpu", "npu_only": "hwsim.mappers.npu_only",
    "neupims": "hwsim.mappers.neupims", "npu_pim_naive": "hwsim.mappers.neupims",
    "attacc": "hwsim.mappers.attacc", "duplex": "hwsim.mappers.duplex",
    "flash": "hwsim.mappers.flash", "flash-gpu": "hwsim.mappers.flash",
    "hnlpu_pipeline": "hwsim.mappers.hnlpu", "mcu": "hwsim.mappers.mcu",
    "pim_gpt": "hwsim.mappers.pim_gpt", "pulp": "hwsim.mappers.pulp", "sat": "hwsim.mappers.sat",
    "tpi": "hwsim.mappers.tpi", "wafer_pipeline": "hwsim.mappers.wafer",
}

# name -> entry; a mapper's module is imported when its name is first looked up.
MAPPERS: LazyRegistry = LazyRegistry(BUILTIN_MAPPER_MODULES, "mapper")


def register(name: str, summary: str, needs: tuple[str, ...], options: type[Spec] = NoOptions,
             workloads: tuple[str, ...] = ("transformer",), checks_fit: bool = False,
             layer_periodic: bool = True, decode_key_tile: Callable | None = None):
    def wrap(fn):
        MAPPERS[name] = MapperEntry(name, summary, needs, options, fn, workloads, checks_fit,
                                    layer_periodic, decode_key_tile)
        return fn
    return wrap


def get_mapper(name: str) -> MapperEntry:
    return MAPPERS[name]
