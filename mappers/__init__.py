"""Mappers place an OpGraph on a machine and return a Schedule (data, not execution).

Each mapper is one module that registers itself; ``MAPPERS[name]`` (or ``get_mapper(name)``)
imports the module of a built-in mapper on first use (mappers/registry.py lists them)."""
from hwsim.mappers.registry import MAPPERS, MapperEntry, get_mapper, register

__all__ = ["MAPPERS", "MapperEntry", "get_mapper", "register"]
