"""Mappers place an OpGraph on a machine and return a Schedule (data, not execution).

Each mapper is one module that registers itself; ``get_mapper(name)`` finds it."""
from hwsim.mappers.registry import MAPPERS, MapperEntry, get_mapper, register

# Importing the modules registers them.
from hwsim.mappers import (attacc, duplex, flash, gpu, hnlpu, mcu, neupims, npu_only,  # noqa: E402,F401
                           pim_gpt, pulp, sat, tpi, wafer)

__all__ = ["MAPPERS", "MapperEntry", "get_mapper", "register"]
