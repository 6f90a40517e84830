"""The machine: `hardware:` sections validated against the component registry, devices built
from them, and a system of devices on an interconnect.

`HardwareSpec` is what a config's `hardware:` section holds: one entry per registered component
kind (hwsim.hw.registry), each validated by that kind's spec; a kind marked `many` (memory) may
be a list, fastest level first. It is the user-facing sugar; the model is `Device` and `System`:

- `Device`: the components a mapper uses (compute, PIM), its memory levels in order, fastest
  first (on-chip scratchpads that compute components bring, then the memory sections in order),
  its area and static power per component (each from the kind's registered functions).
- `System`: devices on an interconnect. Today every shipped config is one device kind replicated
  tp x ep x pp times on one link; the partition step (TP/EP/PP into per-device subgraphs) will
  build `System`s of distinct devices with counts, and the interconnect (hw/interconnect) will
  replace the single link. That seam is `System.devices` and `System.interconnect`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from hwsim.hw.memory import MemoryLevel
from hwsim.hw.registry import COMPONENTS, component
from hwsim.spec import ConfigError, Spec


class HardwareSpec(Spec):
    """`hardware:`: {component kind: its spec} for the kinds present (see the module docstring)."""
    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _registered_kinds(cls, data: Any) -> Any:
        if isinstance(data, HardwareSpec):
            return data.model_dump()
        if not isinstance(data, dict):
            return data
        out, errors = {}, []
        for name, value in data.items():
            if value is None:
                continue
            if name not in COMPONENTS:
                errors.append(InitErrorDetails(type="extra_forbidden", loc=(name,), input=value))
                continue
            kind = COMPONENTS[name]
            if kind.many and isinstance(value, list):
                if not value:
                    errors.append(InitErrorDetails(type="value_error", loc=(name,), input=value,
                                                   ctx={"error": ValueError("lists no levels")}))
                    continue
                items = [((name, i), v) for i, v in enumerate(value)]
            else:
                items = [((name,), value)]
            validated = []
            for loc, v in items:
                try:
                    validated.append(kind.spec.model_validate(v))
                except ValidationError as exc:
                    errors += [InitErrorDetails(type=e["type"], loc=loc + tuple(e["loc"]),
                                                input=e.get("input"), ctx=e.get("ctx") or {})
                               for e in exc.errors()]
            if len(validated) == len(items):
                out[name] = validated if isinstance(value, list) else validated[0]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return out

    def __getattr__(self, name: str):
        """A registered kind that is absent reads as None (`hw.pim is None`)."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in COMPONENTS:
                return None
            raise

    @classmethod
    def known_keys(cls) -> list[str]:
        """The keys `hardware:` accepts: the registered component kinds."""
        return COMPONENTS.names()

    @classmethod
    def spec_of(cls, key: str) -> type[BaseModel] | None:
        """The spec model of `hardware.<key>` (for the loader's did-you-mean)."""
        return COMPONENTS[key].spec if key in COMPONENTS else None

    def present(self) -> dict[str, Any]:
        """{kind: spec, or list of specs} for the kinds in this section, in registry order."""
        extra = self.model_extra or {}
        return {k: extra[k] for k in COMPONENTS.names() if extra.get(k) is not None}

    def specs(self, kind: str) -> list:
        """The spec(s) of `kind` as a list (empty if absent)."""
        value = (self.model_extra or {}).get(kind)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def memory_levels(self, used: tuple[str, ...] | None = None) -> tuple[MemoryLevel, ...]:
        """The levels the `used` kinds (default: all present) bring, fastest first: on-chip
        scratchpads, then the memory sections in the order written."""
        levels: list[MemoryLevel] = []
        for kind, _ in self.present().items():
            entry = COMPONENTS[kind]
            if entry.memory_levels is None or (used is not None and kind not in used):
                continue
            for spec in self.specs(kind):
                levels.extend(entry.memory_levels(spec))
        return tuple(sorted(levels, key=lambda lv: not lv.on_chip))

    def memory_capacity_bytes(self, used: tuple[str, ...] | None = None) -> float | None:
        """Off-chip capacity of the levels the `used` kinds bring (None: no off-chip level)."""
        off_chip = [lv.capacity_bytes for lv in self.memory_levels(used) if not lv.on_chip]
        return sum(off_chip) if off_chip else None

    def device(self, used: tuple[str, ...] | None = None) -> "Device":
        """The device made of the `used` kinds (default: all present)."""
        kinds = tuple(k for k in self.present() if used is None or k in used)
        return Device(self, kinds, self.memory_levels(kinds))


@dataclass(frozen=True)
class Device:
    """One device: the component kinds it uses and its memory levels, fastest first."""
    hardware: HardwareSpec
    kinds: tuple[str, ...]
    levels: tuple[MemoryLevel, ...]

    def spec(self, kind: str):
        """The spec of `kind` (the first one for a list-valued kind)."""
        specs = self.hardware.specs(kind)
        if kind not in self.kinds or not specs:
            raise KeyError(f"the device has no '{kind}' (it has: {', '.join(self.kinds)})")
        return specs[0]

    def level(self, name: str) -> MemoryLevel:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"the device has no memory level '{name}' (it has: "
                       f"{', '.join(lv.name for lv in self.levels)})")

    def level_of(self, kind: str) -> MemoryLevel:
        """The memory level the `kind` spec sits in (its `level:` key), or a ConfigError naming
        `hardware.<kind>.level` when the device has no such level."""
        name = self.spec(kind).level
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise ConfigError(f"'{name}' is not a memory level of this device (it has: "
                          f"{', '.join(lv.name for lv in self.levels)})", key=f"hardware.{kind}.level")

    @property
    def off_chip_levels(self) -> tuple[MemoryLevel, ...]:
        return tuple(lv for lv in self.levels if not lv.on_chip)

    def area_breakdown_mm2(self, dtype: str) -> dict[str, float]:
        """Area per part of each kind the device uses (each kind's registered `area_mm2`)."""
        out: dict[str, float] = {}
        for kind in self.kinds:
            fn = component(kind).area_mm2
            if fn is None:
                continue
            for spec in self.hardware.specs(kind):
                for part, mm2 in fn(spec, self, dtype).items():
                    out[part] = out.get(part, 0.0) + mm2
        return out

    def static_power_w(self, dtype: str) -> dict[str, float]:
        """Leakage/background power per kind (each kind's registered `static_power_w`)."""
        out: dict[str, float] = {}
        for kind in self.kinds:
            fn = component(kind).static_power_w
            if fn is None:
                continue
            for spec in self.hardware.specs(kind):
                out[kind] = out.get(kind, 0.0) + fn(spec, self, dtype)
        return out


@dataclass(frozen=True)
class System:
    """Devices on an interconnect: `devices` holds each distinct device with how many of it
    there are. Today: one device kind, tp x ep x pp copies, on the config's `link`."""
    devices: tuple[tuple[Device, int], ...]
    interconnect: Any = None

    @property
    def device_count(self) -> int:
        return sum(n for _, n in self.devices)

    @classmethod
    def replicated(cls, device: Device, count: int, interconnect=None) -> "System":
        return cls(((device, count),), interconnect)
