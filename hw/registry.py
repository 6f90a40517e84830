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


class LazyRegistry(dict):
    """{name: entry}, filled on first use: looking a built-in name up imports the module that
    registers it, so a run imports the kinds (or mappers) its config names and no others
    (issue 9: `hwsim run` imports only what a command needs). Iterating, `len` and `items()`
    load every built-in module first; they list the built-in names in the order of `modules`,
    then the names registered from outside, in registration order."""

    def __init__(self, modules: Mapping[str, str], what: str):
        super().__init__()
        self.modules = dict(modules)      # built-in name -> the module that registers it
        self.what = what                  # "component kind", "mapper": for error messages

    def names(self) -> list[str]:
        """Every known name (built-in, then registered from outside), importing nothing."""
        return list(self.modules) + [n for n in dict.keys(self) if n not in self.modules]

    def __missing__(self, name: str):
        module = self.modules.get(name)
        if module is None:
            raise KeyError(name)
        import importlib
        importlib.import_module(module)
        if not dict.__contains__(self, name):
            raise KeyError(f"{module} was expected to register the {self.what} {name!r} and did not")
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self.modules

    def get(self, name: str, default=None):
        return self[name] if name in self else default

    def load_all(self) -> "LazyRegistry":
        for name in self.modules:
            if not dict.__contains__(self, name):
                self[name]    # noqa: B018  (imports its module)
        return self

    def _ordered(self) -> list[str]:
        self.load_all()
        return [n for n in self.names() if dict.__contains__(self, n)]

    def __iter__(self):
        return iter(self._ordered())

    def __len__(self) -> int:
        return len(self._ordered())

    def keys(self):
        return self._ordered()

    def values(self):
        return [dict.__getitem__(self, n) for n in self._ordered()]

    def items(self):
        return [(n, dict.__getitem__(self, n)) for n in self._ordered()]


# The built-in kinds and the module of each (importing a module registers its kinds). A new
# kind that ships with hwsim adds its line here; a kind from outside registers by being imported.
# This order is the order of `hardware:` sections in reports.
BUILTIN_COMPONENT_MODULES = {
    "npu": "hwsim.hw.npu", "gpu": "hwsim.hw.gpu", "memory": "hwsim.hw.memory",
    "pim": "hwsim.hw.pim", "gemv_pim": "hwsim.hw.pim_gpt", "asic": "hwsim.hw.pim_gpt",
    "attacc": "hwsim.hw.attacc", "duplex": "hwsim.hw.duplex", "wafer": "hwsim.hw.wafer",
    "link": "hwsim.hw.link", "topology": "hwsim.hw.interconnect.component",
    "mcu": "hwsim.hw.mcu", "edge": "hwsim.hw.edge", "hnlpu": "hwsim.hw.hnlpu",
    "host": "hwsim.hw.host", "pulp": "hwsim.hw.pulp", "sat": "hwsim.hw.sat",
    "flash": "hwsim.hw.flash",
}

COMPONENTS: LazyRegistry = LazyRegistry(BUILTIN_COMPONENT_MODULES, "component kind")

# The energy buckets costs may charge, in report order (what each holds: hw/energy.py's
# docstring). A kind charging another bucket is refused at registration: add it here first.
ENERGY_BUCKETS = ("compute", "sram", "dram", "flash", "ram", "disk", "pim", "link")


def register_component(kind: ComponentKind) -> ComponentKind:
    """Add (or replace: modules may be reloaded) a component kind."""
    unknown = [b for b in kind.energy_buckets if b not in ENERGY_BUCKETS]
    if unknown:
        raise ValueError(f"component kind {kind.name!r} charges energy bucket {unknown[0]!r}, "
                         f"which is not in hwsim.hw.registry.ENERGY_BUCKETS")
    COMPONENTS[kind.name] = kind
    return kind


def unregister_component(name: str) -> None:
    """Remove a kind (tests that register a throw-away kind clean up with this)."""
    COMPONENTS.pop(name, None)


def component(name: str) -> ComponentKind:
    if name not in COMPONENTS:
        raise KeyError(f"unknown component kind {name!r}; registered: {', '.join(sorted(COMPONENTS.names()))}")
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
    """Every energy bucket a kind may charge (`ENERGY_BUCKETS`), then "static". Fixed, so a
    report lists the same buckets whichever kinds a run imported (tests check it against the
    buckets every built-in kind registers: compute kinds' first, then memory, PIM, link)."""
    return ENERGY_BUCKETS + ("static",)
