"""Sweep specs: a base run config, the axes that vary, constraints, objectives and a strategy.

A spec is YAML, validated like a run config: a bad spec raises ``ConfigError`` naming the spec
file, the dotted key (``axes.1.linspace``) and the line, and the CLI exits with code 2 before
anything is evaluated.

    base: ../neupims.yaml          # a run config (path relative to this file) or an inline mapping
    set: {workload.model.n_layers: 2}   # optional fixed overrides of the base
    axes:
      - {key: hardware.pim.macs_per_bank, values: [8, 16, 32]}
      - {key: workload.batch, logspace: [16, 256, 5]}          # 16, 32, 64, 128, 256
      - zip:                                                   # coupled: move together
          - {key: hardware.memory.channels, values: [16, 32]}
          - {key: hardware.memory.capacity_gib, values: [16, 32]}
    constraints: ["energy_per_token_j <= 0.05", fits_memory]
    objectives: [{maximize: throughput_tokens_per_s}, {minimize: energy_per_token_j}]
    strategy: grid                 # grid | random (samples, seed) | nsga2 (population, generations, seed)
    baselines: false               # default: evaluate the main system only
    extrapolate_layers: true       # default: dense decoders from short runs (see below)

Axis values:
- ``values: [...]``: exactly these, in this order (no duplicates).
- ``linspace: [start, stop, num]``: num evenly spaced values, both ends included.
- ``range: [start, stop, step]``: start, start+step, ... up to stop, *including* stop when it
  lies on the grid (a closed range, like MATLAB's start:step:stop, because a sweep's end value
  is usually meant to be swept).
- ``logspace: [start, stop, num]``: num values evenly spaced in log between the *values* start and
  stop (numpy.geomspace, not numpy.logspace's exponents): [8, 64, 4] is 8, 16, 32, 64.
- Integer or float is decided by the numbers written: when start and stop (and a range's step)
  are all written as integers, the values are rounded to integers and repeated values dropped
  (keeping the first), so an int config key receives ints; otherwise they are floats.

``extrapolate_layers`` (default true): a dense decoder is simulated with 1, 2, 3, ... layers until
a steady period of layers shows, and its metrics are extended over whole periods to all layers
(``hwsim.extrapolate``: the numbers of ``hwsim run`` to float rounding, checked on every shipped
sweep space by tests/test_sweeps_equal_runs.py; every layer is simulated when no period shows
within half the layers, and for MoE and CNN workloads). The ``extrapolation_period`` column says
which. Set it to false to simulate every layer of every point. It is part of the base's
identity: a results folder holds points of one setting only.

A design point is the base plus ``KEY=VALUE`` overrides, applied by the run-config loader's own
``--set`` machinery (``hwsim.config.loader.resolve_config_dict``), so an axis key the config does
not have fails exactly as ``hwsim run --set`` would, with the spec file and the axis's line.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hwsim.config.yamlio import Dumper, SourceMap, load_scalar, parse_yaml, read_text
from hwsim.dse.constraints import FITS_MEMORY, Constraint
from hwsim.errors import ConfigError
from hwsim.spec import Spec

# Columns of the results store that are not axes or metrics; an axis may not take these names.
RESERVED_COLUMNS = ("point_id", "status", "error", "violations", "extrapolated", "extrapolation_period",
                    "hwsim_version", "elapsed_s", "created_at")
# A constraint may name this: true for every point whose evaluation succeeded (a model that does
# not fit memory raises in evaluation and is recorded as infeasible anyway).
MAX_AXIS_VALUES = 100_000
# Most design points one sweep may evaluate (a grid's size, random samples, NSGA-II trials): at
# tens of points per second, a million is a day of compute. Past it a spec is a mistake (an axis
# too fine, a zip forgotten); split the space or sample it with strategy random.
MAX_POINTS = 1_000_000
_KEY_RE = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _three_numbers(value: Any, what: str) -> list:
    if not isinstance(value, list) or len(value) != 3 or not all(_is_number(v) for v in value):
        raise ValueError(f"expected [{what}] (three numbers), got {value!r}")
    if not all(math.isfinite(v) for v in value):
        raise ValueError(f"expected finite numbers, got {value!r}")
    return value


def _count(num: Any) -> int:
    if not (isinstance(num, int) or (isinstance(num, float) and num.is_integer())) or num < 1:
        raise ValueError(f"num must be a whole number >= 1, got {num!r}")
    if num > MAX_AXIS_VALUES:
        raise ValueError(f"num must be at most {MAX_AXIS_VALUES}, got {num!r}")
    return int(num)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _integers_or_floats(raw: list[float], as_int: bool) -> list:
    """Round to int (dropping repeats, keeping the first) or clean float noise (12 digits)."""
    if not as_int:
        return [float(f"{v:.12g}") for v in raw]
    return list(dict.fromkeys(int(round(v)) for v in raw))     # in order, repeats dropped


class AxisSpec(Spec):
    """One axis: a key and its values, or ``zip:`` of axes that move together."""

    key: str | None = Field(default=None, description="dotted config key, as for --set")
    values: list[Any] | None = None
    linspace: list[Any] | None = Field(default=None, description="[start, stop, num]")
    range: list[Any] | None = Field(default=None, description="[start, stop, step], stop included")
    logspace: list[Any] | None = Field(default=None, description="[start, stop, num], geometric")
    zip: list[AxisSpec] | None = Field(default=None, description="coupled axes of equal length")

    @field_validator("key")
    @classmethod
    def _key_is_dotted(cls, key):
        if key is not None and not _KEY_RE.match(key):
            raise ValueError(f"expected a dotted config key like hardware.pim.macs_per_bank, got {key!r}")
        if key in RESERVED_COLUMNS:
            raise ValueError(f"'{key}' is a column of the results store; it cannot be an axis")
        return key

    @field_validator("values")
    @classmethod
    def _values_distinct(cls, values):
        if values is not None:
            if not values:
                raise ValueError("expected at least one value")
            seen = set()
            for v in values:
                c = _canonical(v)
                if c in seen:
                    raise ValueError(f"value {v!r} is listed twice")
                seen.add(c)
        return values

    @field_validator("linspace")
    @classmethod
    def _linspace(cls, v):
        if v is not None:
            _three_numbers(v, "start, stop, num")
            _count(v[2])
        return v

    @field_validator("logspace")
    @classmethod
    def _logspace(cls, v):
        if v is not None:
            _three_numbers(v, "start, stop, num")
            if v[0] <= 0 or v[1] <= 0:
                raise ValueError(f"logspace start and stop must be > 0, got {v[0]!r} and {v[1]!r}")
            _count(v[2])
        return v

    @field_validator("range")
    @classmethod
    def _range(cls, v):
        if v is not None:
            start, stop, step = _three_numbers(v, "start, stop, step")
            if step == 0:
                raise ValueError("range step must not be 0")
            if (stop - start) / step < 0:
                raise ValueError(f"range step {step!r} goes away from stop: [{start}, {stop}, {step}]")
            if (stop - start) / step + 1 > MAX_AXIS_VALUES:
                raise ValueError(f"range gives more than {MAX_AXIS_VALUES} values")
        return v

    @model_validator(mode="after")
    def _one_generator(self):
        given = [f for f in ("values", "linspace", "range", "logspace", "zip")
                 if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("an axis needs exactly one of values, linspace, range, logspace "
                             f"(or zip: [axes] for coupled axes); got {', '.join(given) or 'none'}")
        if self.zip is not None:
            if self.key is not None:
                raise ValueError("a zip axis has no key of its own; its members name the keys")
            if not self.zip:
                raise ValueError("zip needs at least one member axis")
            for member in self.zip:
                if member.zip is not None:
                    raise ValueError("zip members cannot be zips themselves")
            lengths = [(m.key, len(m.expand())) for m in self.zip]
            if len({n for _, n in lengths}) > 1:
                raise ValueError("zip members must have the same number of values; got "
                                 + ", ".join(f"{k}: {n}" for k, n in lengths))
        elif self.key is None:
            raise ValueError("missing required key 'key' (the dotted config key this axis sets)")
        return self

    def expand(self) -> list:
        """The values of a single (non-zip) axis, in order."""
        if self.values is not None:
            return list(self.values)
        if self.linspace is not None:
            start, stop, num = self.linspace
            num = int(num)
            raw = [start + (stop - start) * i / (num - 1) for i in range(num)] if num > 1 else [start]
            return _integers_or_floats(raw, isinstance(start, int) and isinstance(stop, int))
        if self.logspace is not None:
            start, stop, num = self.logspace
            num = int(num)
            ratio = math.log(stop / start)
            raw = [start * math.exp(ratio * i / (num - 1)) for i in range(num)] if num > 1 else [start]
            if num > 1:
                raw[-1] = stop
            return _integers_or_floats(raw, isinstance(start, int) and isinstance(stop, int))
        if self.range is not None:
            start, stop, step = self.range
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            raw = [start + i * step for i in range(n)]
            return _integers_or_floats(raw, all(isinstance(x, int) for x in self.range))
        raise AssertionError("zip axes expand through Axis")


class Objective(Spec):
    """``{maximize: metric}`` or ``{minimize: metric}``."""

    maximize: str | None = Field(default=None, min_length=1)
    minimize: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self):
        if (self.maximize is None) == (self.minimize is None):
            raise ValueError("an objective is {maximize: METRIC} or {minimize: METRIC}")
        return self

    @property
    def metric(self) -> str:
        return self.maximize if self.maximize is not None else self.minimize

    @property
    def sense(self) -> str:
        return "max" if self.maximize is not None else "min"


class SweepSpec(Spec):
    """The whole sweep spec (see the module docstring)."""

    name: str | None = None
    base: str | dict[str, Any] = Field(description="run config path (relative to the spec) or mapping")
    set: dict[str, Any] = Field(default_factory=dict, description="fixed overrides of the base")
    axes: list[AxisSpec] = Field(min_length=1)
    constraints: list[str] = Field(default_factory=list)
    objectives: list[Objective] = Field(default_factory=list)
    strategy: Literal["grid", "random", "nsga2"] = "grid"
    samples: int | None = Field(default=None, gt=0, description="random: points to draw")
    seed: int = Field(default=0, description="random / nsga2 seed")
    population: int | None = Field(default=None, ge=2, description="nsga2: trials per generation (default 16)")
    generations: int | None = Field(default=None, gt=0, description="nsga2: generations (default 8)")
    baselines: bool = Field(default=False, description="also evaluate the base config's baselines")
    extrapolate_layers: bool = Field(
        default=True, description="dense decoders: simulate a few layers and extend over a steady "
        "period to all (hwsim.extrapolate; the numbers of the full simulation); false: simulate every layer")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name):
        from hwsim.outputs import plain_name_problem
        problem = name is not None and plain_name_problem(name)
        if problem:
            raise ValueError(problem)
        return name

    @field_validator("constraints", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _strategy_options(self):
        if self.strategy == "random" and self.samples is None:
            raise ValueError("strategy random needs samples: N")
        if self.strategy != "random" and self.samples is not None:
            raise ValueError(f"samples applies to strategy random, not {self.strategy}")
        if self.strategy != "nsga2" and (self.population or self.generations):
            raise ValueError(f"population/generations apply to strategy nsga2, not {self.strategy}")
        if self.strategy == "nsga2" and not self.objectives:
            raise ValueError("strategy nsga2 needs objectives")
        return self


# --------------------------------------------------------------------------- metric names

def metric_names() -> dict[str, bool]:
    """Top-level metric names (``hwsim.metrics.metric_names``: every JSON name of a
    ``Metrics`` field, e.g. ``throughput_tokens_per_s`` and ``throughput_inferences_per_s``) ->
    whether it holds a mapping (``utilization`` -> columns ``utilization.npu``, ...)."""
    from hwsim.metrics import metric_names as names
    return names()


def check_metric_name(name: str, baselines: bool) -> str | None:
    """None if `name` can be a metric column; else why not (with a did-you-mean)."""
    known = metric_names()
    head = name.split(".")[0]
    if name in known or (known.get(head)) or (baselines and head == "speedup"):
        return None
    options = sorted(known) + (["speedup.<baseline>"] if baselines else [])
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown metric '{name}'{hint}; metrics: {', '.join(options)}"


# --------------------------------------------------------------------------- errors

def _did_you_mean(word, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _raise_validation(exc: ValidationError, sources: SourceMap, file: str):
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in err["loc"]]
    dotted = ".".join(loc)
    if err["type"] == "extra_forbidden":
        owner = (AxisSpec if loc[0] == "axes" else Objective if loc[0] == "objectives" else SweepSpec)
        fields = list(owner.model_fields)
        hint = _did_you_mean(loc[-1], fields)
        msg = f"unknown key '{loc[-1]}'{hint}" + ("" if hint else f"; expected one of: {', '.join(fields)}")
    elif err["type"] == "missing":
        msg = "missing required key"
    else:
        from hwsim.config.loader import value_message
        msg = value_message(err)
    _where, line = sources.locate(dotted)
    raise ConfigError(msg, file=file, line=line, key=dotted or None) from None


# --------------------------------------------------------------------------- the sweep

@dataclasses.dataclass(frozen=True)
class Axis:
    """An expanded axis: the keys it sets (one, or several for a zip) and, per step, one value
    per key. ``label`` names it (the key, or ``zip(a,b)``)."""
    keys: tuple[str, ...]
    values: tuple[tuple, ...]
    spec_key: str          # where it is in the spec, e.g. axes.2
    line: int | None

    @property
    def label(self) -> str:
        return self.keys[0] if len(self.keys) == 1 else f"zip({','.join(self.keys)})"

    def __len__(self) -> int:
        return len(self.values)


def _override_text(key: str, value: Any) -> str:
    """``KEY=VALUE`` that the loader's --set parser reads back as exactly `value`."""
    text = yaml.dump(value, Dumper=Dumper, default_flow_style=True, width=math.inf,
                     sort_keys=False).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    if "\n" in text or load_scalar(text) != value:
        raise ConfigError(f"value {value!r} cannot be written as an override", key=key)
    return f"{key}={text}"


class Sweep:
    """A loaded, validated spec with its base config: makes design points and their configs."""

    def __init__(self, spec: SweepSpec, spec_text: str, spec_file: str, sources: SourceMap,
                 extra_overrides: list[str] = ()):
        self.spec = spec
        self.spec_text = spec_text
        self.spec_file = spec_file
        self.spec_sources = sources
        self.constraints = []
        for i, text in enumerate(spec.constraints):
            try:
                self.constraints.append(Constraint.parse(text))
            except ValueError as exc:
                raise ConfigError(str(exc), file=spec_file, line=self._line(f"constraints.{i}"),
                                  key=f"constraints.{i}") from None
        self.objectives = [(o.metric, o.sense) for o in spec.objectives]
        self.axes = self._expand_axes()
        self._check_size()
        self._check_names()
        self._load_base(list(extra_overrides))

    # ----- spec -> axes

    def _line(self, key: str) -> int | None:
        return self.spec_sources.locate(key)[1]

    def _expand_axes(self) -> list[Axis]:
        axes: list[Axis] = []
        seen: dict[str, str] = {}
        for i, a in enumerate(self.spec.axes):
            members = a.zip if a.zip is not None else [a]
            keys, columns = [], []
            for j, m in enumerate(members):
                where = f"axes.{i}.zip.{j}.key" if a.zip is not None else f"axes.{i}.key"
                if m.key in seen:
                    raise ConfigError(f"key '{m.key}' is already swept by {seen[m.key]}",
                                      file=self.spec_file, line=self._line(where), key=where)
                seen[m.key] = where.removesuffix(".key")
                keys.append(m.key)
                columns.append(m.expand())
            values = tuple(zip(*columns))
            axes.append(Axis(tuple(keys), values, f"axes.{i}", self._line(f"axes.{i}")))
        return axes

    def _check_size(self):
        spec = self.spec
        if spec.strategy == "grid" and self.size > MAX_POINTS:
            sizes = " x ".join(str(len(a)) for a in self.axes)
            raise ConfigError(f"the grid has {self.size:,} points ({sizes}), more than the "
                              f"{MAX_POINTS:,} a sweep evaluates; coarsen an axis or use strategy: "
                              "random with samples: N", file=self.spec_file, line=self._line("axes"),
                              key="axes")
        if spec.strategy == "random" and spec.samples > MAX_POINTS:
            raise ConfigError(f"{spec.samples:,} samples is more than the {MAX_POINTS:,} points a "
                              "sweep evaluates", file=self.spec_file, line=self._line("samples"),
                              key="samples")
        if spec.strategy == "nsga2":
            from hwsim.dse.runner import NSGA2_GENERATIONS, NSGA2_POPULATION
            trials = (spec.population or NSGA2_POPULATION) * (spec.generations or NSGA2_GENERATIONS)
            if trials > MAX_POINTS:
                raise ConfigError(f"population x generations = {trials:,} trials, more than the "
                                  f"{MAX_POINTS:,} points a sweep evaluates", file=self.spec_file,
                                  line=self._line("population"), key="population")

    def _check_names(self):
        axis_keys = set(self.axis_keys)
        for i, c in enumerate(self.constraints):
            for name in sorted(c.names):
                if name == FITS_MEMORY or name in axis_keys:
                    continue
                problem = check_metric_name(name, self.spec.baselines)
                if problem:
                    where = f"constraints.{i}"
                    raise ConfigError(f"{problem}; or an axis key: {', '.join(self.axis_keys)}",
                                      file=self.spec_file, line=self._line(where), key=where)
        for i, o in enumerate(self.spec.objectives):
            problem = check_metric_name(o.metric, self.spec.baselines)
            if problem:
                where = f"objectives.{i}.{'maximize' if o.sense == 'max' else 'minimize'}"
                raise ConfigError(problem, file=self.spec_file, line=self._line(where), key=where)

    # ----- base config

    def _load_base(self, extra_overrides: list[str]):
        from hwsim.config.loader import resolve_config_dict
        base = self.spec.base
        if isinstance(base, str):
            path = Path(base)
            if not path.is_absolute():
                path = Path(self.spec_file).parent / path
            if not path.exists():
                raise ConfigError(f"base config {str(path)!r} not found (a path relative to the "
                                  "spec file, or an inline mapping)", file=self.spec_file,
                                  line=self._line("base"), key="base")
            self.base_file = str(path)
            data, sources = parse_yaml(read_text(path), str(path))
        else:
            self.base_file = self.spec_file
            data = copy.deepcopy(base)
            sources = SourceMap({k[len("base."):]: v for k, v in self.spec_sources.items()
                                 if k.startswith("base.")})
        if not isinstance(data, dict):
            raise ConfigError("a base config must be a mapping", file=self.base_file)
        if not self.spec.baselines:
            data.pop("baselines", None)
        # Fixed overrides: the spec's `set:` then the caller's (CLI --set), each located.
        self._fixed: list[tuple[str, tuple]] = []
        for key, value in self.spec.set.items():
            self._fixed.append((_override_text(key, value),
                                (self.spec_file, self._line(f"set.{key}"))))
        for text in extra_overrides:
            self._fixed.append((text, ("--set", None)))
        fixed = [t for t, _ in self._fixed]
        # The base identity: the resolved base (presets expanded, fixed overrides applied).
        resolved = self._resolve(data, sources, fixed, {t.partition("=")[0].strip(): loc
                                                        for t, loc in self._fixed})
        self.base_hash = hashlib.sha256(_canonical(
            {"base": resolved, "baselines": self.spec.baselines,
             "extrapolate_layers": self.spec.extrapolate_layers}).encode()).hexdigest()
        if self.spec.baselines:
            # Baselines inherit the main workload when resolved, so a point must be resolved from
            # the raw base with all its overrides at once.
            self._base_data, self._base_sources, self._prefix = data, sources, fixed
        else:
            self._base_data, self._base_sources, self._prefix = resolved, sources, []
        self._resolve_config_dict = resolve_config_dict

    def _resolve(self, data, sources, overrides, located: dict[str, tuple]) -> dict:
        from hwsim.config.loader import resolve_config_dict
        try:
            return resolve_config_dict(data, sources, overrides, file=self.base_file)
        except ConfigError as exc:
            self._relocate(exc, located)
            raise
        finally:
            self._relocate_sources(sources, located)

    @staticmethod
    def _relocate_sources(sources: SourceMap, located: dict[str, tuple]):
        """Point keys (and sections) that an override created at the spec line that set them."""
        for key, loc in located.items():
            parts = key.split(".")
            for n in range(1, len(parts) + 1):
                prefix = ".".join(parts[:n])
                if sources.get(prefix) == ("--set", None) or n == len(parts):
                    sources[prefix] = loc

    def _relocate(self, exc: ConfigError, located: dict[str, tuple]):
        if exc.file == "--set" or exc.file is None:
            for key, (file, line) in located.items():
                if exc.key and (exc.key == key or exc.key.startswith(key + ".") or key.startswith(exc.key + ".")):
                    exc.file, exc.line = file, line
                    break
            else:
                exc.file = exc.file or self.base_file

    # ----- points

    @property
    def axis_keys(self) -> list[str]:
        return [k for a in self.axes for k in a.keys]

    @property
    def size(self) -> int:
        return math.prod(len(a) for a in self.axes)

    def point_from_indices(self, indices) -> dict[str, Any]:
        point = {}
        for axis, i in zip(self.axes, indices):
            point.update(zip(axis.keys, axis.values[int(i)]))
        return point

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination, the last axis varying fastest."""
        for indices in itertools.product(*(range(len(a)) for a in self.axes)):
            yield self.point_from_indices(indices)

    def random_points(self, samples: int, seed: int) -> list[dict[str, Any]]:
        """`samples` distinct points drawn uniformly from the grid with numpy's PCG64 seeded by
        `seed` (all of them, in grid order, when samples >= the grid size). Same seed and
        samples -> same points."""
        import numpy as np
        total = self.size
        if samples >= total:
            return list(self.grid())
        rng = np.random.default_rng(seed)
        sizes = [len(a) for a in self.axes]
        if total < 2**62:
            flat = [int(i) for i in rng.choice(total, size=samples, replace=False)]
            picks = []
            for f in flat:
                idx = []
                for n in reversed(sizes):
                    f, r = divmod(f, n)
                    idx.append(r)
                picks.append(tuple(reversed(idx)))
        else:   # astronomically large: draw per axis and drop repeats
            picks, seen = [], set()
            while len(picks) < samples:
                idx = tuple(int(rng.integers(n)) for n in sizes)
                if idx not in seen:
                    seen.add(idx)
                    picks.append(idx)
        return [self.point_from_indices(i) for i in picks]

    def point_id(self, point: dict[str, Any]) -> str:
        """Stable id: sha256 of the base identity and the canonical JSON of the axis values."""
        return hashlib.sha256(f"{self.base_hash}:{_canonical(point)}".encode()).hexdigest()[:20]

    def describe(self, point: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in point.items())

    def build(self, point: dict[str, Any]):
        """The validated ``RunConfig`` of a design point; ``ConfigError`` (naming the spec file
        and axis line for axis keys, the base file for base keys) when it is not valid."""
        from hwsim.config.loader import validate
        located = {}
        overrides = list(self._prefix)
        for k, v in point.items():
            overrides.append(_override_text(k, v))
        for axis in self.axes:
            for j, k in enumerate(axis.keys):
                key = f"{axis.spec_key}.zip.{j}" if len(axis.keys) > 1 else axis.spec_key
                located[k] = (self.spec_file, self._line(key))
        for text, loc in self._fixed:
            located.setdefault(text.partition("=")[0].strip(), loc)
        sources = SourceMap(self._base_sources)
        try:
            data = self._resolve(self._base_data, sources, overrides, located)
            return validate(data, sources, self.base_file)
        except ConfigError as exc:
            self._relocate(exc, located)
            if not (exc.key and any(exc.key == k or exc.key.startswith(k + ".") or k.startswith(exc.key + ".")
                                    for k in point)):
                exc.message += f" (design point {self.describe(point)})"
            raise

    def check_axes(self) -> None:
        """Validate every axis value once (on the first point, changing one axis at a time):
        a bad key or value fails before any evaluation, without building the whole grid."""
        first = [0] * len(self.axes)
        self.build(self.point_from_indices(first))
        for a, axis in enumerate(self.axes):
            for i in range(1, len(axis)):
                idx = list(first)
                idx[a] = i
                self.build(self.point_from_indices(idx))

    def fingerprint(self) -> dict:
        """What makes two sweeps the same design space: the axes and the base. A results
        folder refuses to resume a sweep whose fingerprint differs."""
        return {"axes": [{"keys": list(a.keys), "values": [list(v) for v in a.values]} for a in self.axes],
                "base_hash": self.base_hash}


def load_sweep(spec: str | Path | dict, overrides: list[str] = (), text: str | None = None) -> Sweep:
    """Read and validate a sweep spec (a path, or a mapping with `base` as a path relative to
    the current folder or inline). ``overrides`` are extra fixed ``KEY=VALUE`` on the base."""
    if isinstance(spec, dict):
        spec_text = yaml.safe_dump(spec, sort_keys=False)
        file = "<spec>"
        data, sources = parse_yaml(spec_text, file)
    else:
        file = str(spec)
        spec_text = read_text(Path(spec)) if text is None else text
        data, sources = parse_yaml(spec_text, file)
    if not isinstance(data, dict):
        raise ConfigError("a sweep spec must be a mapping with base, axes, objectives", file=file)
    try:
        model = SweepSpec.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc, sources, file)
    return Sweep(model, spec_text, file, sources, list(overrides))
