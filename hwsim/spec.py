"""``Spec``: the base class of every spec a user writes in YAML (hardware components, workloads,
mapper options, sweep specs, the run config itself). Inherit from it, not from pydantic's
``BaseModel``, and a new spec gets the input rules every other one has:

- **unknown keys are errors** and a spec is immutable (``extra="forbid"``, ``frozen=True``);
- **strict types**: no string -> number (``batch: "64"``), no bool -> number (``tp: true``),
  no float -> int (``batch: 64.5`` or ``64.0``), no number -> bool. A YAML list is accepted where
  a field is a tuple;
- **finite numbers**: ``.inf`` and ``.nan`` are refused (``allow_inf_nan=False``);
- **sane magnitudes**: every number a user writes (top-level, or inside a tuple, list or dict
  field) is 0 or has a magnitude between ``MIN_MAGNITUDE`` and ``MAX_MAGNITUDE``. Units live in
  key names (``freq_ghz``, ``sram_kib``), so a real value is never near these bounds; past them a
  number is a typo or a probe (1e308 GHz, 1e-300 pJ), and arithmetic on it would overflow to
  inf/NaN or underflow to 0 instead of failing. Fields whose size drives memory or time (a batch)
  add their own tighter ``le=`` bound.

Value rules (``gt=0``, ``le=``) stay on each field with pydantic's ``Field``; cross-field rules go
in a ``model_validator`` that raises ``ValueError``. Those errors reach the user as one line naming
the file, line and dotted key (hwsim.config.loader). This module imports only pydantic, so
``hw/``, ``workloads/``, ``mappers/`` and ``dse/`` can all use it. ``ConfigError``, the one-line
input error that readers of input files there (SCALE-Sim topologies, ONNX models) raise with the
file and line, lives in the dependency-free ``hwsim.input_error`` (``hwsim --help`` must not import
pydantic).
"""
from __future__ import annotations

import math
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from hwsim.input_error import ConfigError  # noqa: F401  (re-exported: readers of input files raise it)


MAX_MAGNITUDE = 1e12
MIN_MAGNITUDE = 1e-12

# Field types for numbers inside containers (`peak_tflops: dict[str, PositiveFloat]`).
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


def _is_tuple_type(annotation: Any) -> bool:
    if typing.get_origin(annotation) is tuple:
        return True
    return any(_is_tuple_type(a) for a in typing.get_args(annotation)
               if typing.get_origin(annotation) is not None)


def magnitude_problem(value: Any) -> str | None:
    """Why a number (or a number inside a list, tuple or dict) is out of hwsim's sane range."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        if value != 0 and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
            return (f"{value!r} is out of range: every number must be 0 or have a magnitude "
                    f"between {MIN_MAGNITUDE:g} and {MAX_MAGNITUDE:g} (in the key's unit)")
        return None
    if isinstance(value, (list, tuple)):
        return next((p for p in map(magnitude_problem, value) if p), None)
    if isinstance(value, dict):
        return next((p for p in map(magnitude_problem, value.values()) if p), None)
    return None


class Spec(BaseModel):
    """Base of every user-facing spec: strict types, finite and sane numbers, no unknown keys
    (see the module docstring)."""
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False, defer_build=True)

    @field_validator("*", mode="before")
    @classmethod
    def _list_as_tuple(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML has no tuples: accept a list where the field is a tuple (strict mode would not)."""
        if isinstance(value, list) and info.field_name in cls.model_fields \
                and _is_tuple_type(cls.model_fields[info.field_name].annotation):
            return tuple(value)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _sane_magnitude(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):   # a float inside Any
            raise ValueError(f"expected a finite number, got {value!r}")
        problem = magnitude_problem(value)
        if problem:
            raise ValueError(problem)
        return value
