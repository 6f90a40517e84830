"""The component registry: every hardware kind registers itself here, in its own module, once.

A `ComponentKind` says everything the rest of hwsim needs to know about a kind of hardware:

- `spec`: the pydantic model of its `hardware.<name>:` section (units in field names);
- `role`: what it is in a device — "compute" (runs ops), "memory" (an ordered memory level),
  "pim" (compute attached to a memory level) or "link" (device-to-device);
- `op_costs`: {op kind: cost function} for the ops it can run; `op_cost(kind, op_kind)` finds
  one and names both when there is none;
- `area_mm2(spec, device, dtype) -> {part: mm²}` and `static_power_w(spec, device, dtype) -> W`:
  what it adds to a device's area and leakage/background power (every constant cited where the
  function lives);
- `energy_buckets`: the energy components its costs charge ("compute", "sram", "dram", ...);
- `check_cases(datapath, device, op, ctx) -> KernelCase | None`: its `--check` functional model
  of an op on one of its datapaths (hw/kernels/cases.py: operands, kernel, float64 reference),
  and `check_unit(datapath) -> str`, how the check report names that unit;
- `memory_levels(spec) -> [MemoryLevel]`: the levels it brings (a memory spec: itself; a GPU:
  its HBM);
- `many`: the section may be a list (several memory levels, fastest first).

The loader, the area and static power of a device, the fit check, the report and `--check`
iterate over `COMPONENTS`; nothing else names a component kind. Adding hardware = one module
that calls `register_component` (+ a preset; + a mapper if placement changes).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

Role = Literal["compute", "memory", "pim", "link"]


@dataclass(frozen=True)
class ComponentKind:
    name: str
    spec: type[BaseModel]
    role: Role
    summary: str
    op_costs: Mapping[str, Callable] = field(default_factory=dict)
    area_mm2: Callable | None = None
    static_power_w: Callable | None = None
    energy_buckets: tuple[str, ...] = ()
    check_cases: Callable | None = None
    check_unit: Callable | None = None
    memory_levels: Callable | None = None
    many: bool = False
    weights_in_metal: bool = False   # the kind hardwires the model's weights: they occupy no memory level


COMPONENTS: dict[str, ComponentKind] = {}

# The modules of the built-in kinds (each registers itself when imported); a new kind that
# ships with hwsim adds its module here, a kind from outside registers by being imported.
BUILTIN_COMPONENT_MODULES = ("hwsim.hw.npu", "hwsim.hw.gpu", "hwsim.hw.memory", "hwsim.hw.pim",
                             "hwsim.hw.pim_gpt", "hwsim.hw.attacc", "hwsim.hw.duplex", "hwsim.hw.wafer",
                             "hwsim.hw.link", "hwsim.hw.interconnect.component", "hwsim.hw.mcu",
                             "hwsim.hw.edge", "hwsim.hw.hnlpu", "hwsim.hw.host", "hwsim.hw.pulp",
                             "hwsim.hw.sat", "hwsim.hw.flash")
_builtins_loaded = False


def load_builtins() -> dict[str, ComponentKind]:
    """Import the built-in kinds once (lazily: they import this module); returns COMPONENTS."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        import importlib
        for module in BUILTIN_COMPONENT_MODULES:
            importlib.import_module(module)
    return COMPONENTS


def register_component(kind: ComponentKind) -> ComponentKind:
    """Add (or replace: modules may be reloaded) a component kind."""
    COMPONENTS[kind.name] = kind
    return kind


def unregister_component(name: str) -> None:
    """Remove a kind (tests that register a throw-away kind clean up with this)."""
    COMPONENTS.pop(name, None)


def component(name: str) -> ComponentKind:
    load_builtins()
    if name not in COMPONENTS:
        raise KeyError(f"unknown component kind {name!r}; registered: {', '.join(sorted(COMPONENTS))}")
    return COMPONENTS[name]


class NoCostError(ValueError):
    """An op was placed on a component that cannot run it."""


def op_cost(kind: str, op_kind) -> Callable:
    """The cost function of `op_kind` on component `kind`; an error naming both if it has none."""
    entry = component(kind)
    fn = entry.op_costs.get(str(op_kind))
    if fn is None:
        known = ", ".join(sorted(entry.op_costs)) or "none"
        raise NoCostError(f"component '{kind}' cannot run op kind '{op_kind}' (it costs: {known})")
    return fn


def energy_buckets() -> tuple[str, ...]:
    """Every energy component any registered kind charges, plus "static": compute kinds' first,
    then memory, PIM and link kinds' (registration order within a role)."""
    load_builtins()
    order = {"compute": 0, "memory": 1, "pim": 2, "link": 3}
    kinds = sorted(COMPONENTS.values(), key=lambda k: order[k.role])
    out = dict.fromkeys(b for k in kinds for b in k.energy_buckets)
    out["static"] = None
    return tuple(out)
