"""Turn a YAML file (plus `--set` overrides) into a validated ``RunConfig``.

Resolution order: the file; named presets (`model: llama2-7b` from configs/models/,
`gpu: a100-40gb` or `{preset: a100-40gb, ...}` from configs/presets/) with the file's inline keys
on top; each baseline inherits the main workload, hardware and mapper, overriding what it names;
then `--set key=value` overrides. Every value keeps the file and line it came from, so a
validation error names them.
"""
from __future__ import annotations

import copy
import difflib
import functools
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hwsim.config.schema import WORKLOAD_KINDS, RunConfig, missing_hardware
from hwsim.serving.spec import SCENARIO_SPECS
from hwsim.config.yamlio import SourceMap, load_scalar, parse_yaml, read_yaml
from hwsim.configs import MODELS_DIR, PRESETS_DIR
from hwsim.errors import ConfigError
from hwsim.hw.registry import COMPONENTS
from hwsim.hw.system import HardwareSpec
from hwsim.mappers import MAPPERS


def available(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _load_preset(folder: Path, name: Any, key: str, sources: SourceMap, component: str | None):
    file, line = sources.locate(key)
    if not isinstance(name, str):
        raise ConfigError(f"expected a preset name, got {name!r}", file=file, line=line, key=key)
    path = folder / f"{name}.yaml"
    if not path.exists():
        names = available(folder)
        raise ConfigError(f"unknown preset '{name}'{_did_you_mean(name, names)}; "
                          f"available: {', '.join(names)}", file=file, line=line, key=key)
    data, preset_sources = _read_preset(path, key)
    if not isinstance(data, dict):
        raise ConfigError("a preset file must hold a mapping", file=str(path))
    declared = data.pop("component", None)
    if component and declared and declared != component:
        raise ConfigError(f"preset '{name}' describes a {declared}, not a {component}",
                          file=file, line=line, key=key)
    for k, v in preset_sources.items():
        sources.setdefault(k, v)
    return data


def _read_preset(path: Path, key: str):
    """A preset file's data and sources, parsed once per file version (a sweep resolves the same
    presets for every design point; PyYAML's pure-Python parser is the slow part of a load)."""
    stat = path.stat()
    data, sources = _parse_preset(path, key, stat.st_mtime_ns, stat.st_size)
    return copy.deepcopy(data), SourceMap(sources)


@functools.lru_cache(maxsize=256)
def _parse_preset(path: Path, key: str, _mtime_ns: int, _size: int):
    return read_yaml(path, prefix=key)


def _resolve_named(value: Any, folder: Path, key: str, sources: SourceMap, component=None):
    """`name` or `{preset: name, **overrides}` -> the preset's mapping with overrides applied."""
    if isinstance(value, str):
        return _load_preset(folder, value, key, sources, component)
    if isinstance(value, dict) and "preset" in value:
        value = dict(value)
        base = _load_preset(folder, value.pop("preset"), f"{key}.preset", sources, component)
        return _deep_merge(base, value)
    return value


def _deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve_path(value: str, key: str, sources: SourceMap) -> str:
    """A file a config names (CNN topology, ONNX, request lengths CSV), relative to the folder
    of the file that names it (`--set` values: to the working directory)."""
    file, line = sources.locate(key)
    path = Path(value).expanduser()
    if not path.is_absolute() and file and file != "--set":
        path = Path(file).parent / path
    if not path.is_file():
        raise ConfigError(f"file not found: {path}", file=file, line=line, key=key)
    return str(path.resolve())


def _resolve_system(section: dict, prefix: str, sources: SourceMap, kind: str = "transformer") -> None:
    wl = section.get("workload")
    if isinstance(wl, dict) and wl.get("kind", kind) == "cnn":   # `model:` names a built-in CNN
        for key in ("topology", "onnx"):
            if isinstance(wl.get(key), str):
                wl[key] = _resolve_path(wl[key], f"{prefix}workload.{key}", sources)
    elif isinstance(wl, dict) and wl.get("kind", kind) == "transformer":
        if "model" in wl:
            wl["model"] = _resolve_named(wl["model"], MODELS_DIR, f"{prefix}workload.model", sources)
        requests = wl.get("requests")
        if isinstance(requests, dict) and isinstance(requests.get("path"), str):
            requests["path"] = _resolve_path(requests["path"], f"{prefix}workload.requests.path", sources)
    scenario = section.get("scenario")
    arrivals = scenario.get("arrivals") if isinstance(scenario, dict) else None
    if isinstance(arrivals, dict) and isinstance(arrivals.get("path"), str):
        arrivals["path"] = _resolve_path(arrivals["path"], f"{prefix}scenario.arrivals.path", sources)
    hw = section.get("hardware")
    if isinstance(hw, dict):
        for comp in COMPONENTS.names():   # every registered component kind, in registry order
            if comp not in hw:
                continue
            kind = COMPONENTS[comp]
            if kind.many and isinstance(hw[comp], list):   # several levels, fastest first
                hw[comp] = [_resolve_named(v, PRESETS_DIR, f"{prefix}hardware.{comp}.{i}", sources,
                                           component=comp) for i, v in enumerate(hw[comp])]
            else:
                hw[comp] = _resolve_named(hw[comp], PRESETS_DIR, f"{prefix}hardware.{comp}",
                                          sources, component=comp)


def _apply_override(data: dict, assignment: str, sources: SourceMap) -> None:
    if "=" not in assignment:
        raise ConfigError(f"expected KEY=VALUE, got '{assignment}'", file="--set")
    key, _, raw = assignment.partition("=")
    key = key.strip()
    try:
        value = load_scalar(raw)
    except ConfigError:     # not YAML: the text itself
        value = raw
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part) if isinstance(node, dict) else None
        if nxt is None:
            nxt = node[part] = {}
            sources[".".join(parts[:i + 1])] = ("--set", None)   # a section --set created
        if not isinstance(nxt, dict):
            raise ConfigError(f"'{'.'.join(parts[:i + 1])}' is not a section", file="--set", key=key)
        node = nxt
    node[parts[-1]] = value
    sources[key] = ("--set", None)


def resolve_config_dict(data: Any, sources: SourceMap, overrides: list[str] = (),
                        file: str = "<config>") -> dict:
    """Presets, baseline inheritance and overrides applied; not yet validated."""
    if not isinstance(data, dict):
        raise ConfigError("a config must be a mapping with name, workload, hardware, mapper", file=file)
    data = copy.deepcopy(data)
    baselines = data.get("baselines") or {}
    if not isinstance(baselines, dict):
        raise ConfigError("expected a mapping of baseline name -> {hardware, mapper, workload}",
                          file=file, key="baselines", line=sources.locate("baselines")[1])
    for name, spec in baselines.items():
        if not isinstance(spec, dict):
            raise ConfigError("expected a mapping with hardware/mapper/workload", file=file,
                              key=f"baselines.{name}", line=sources.locate(f"baselines.{name}")[1])
    for _ in range(2):   # presets, then --set, then presets named by --set
        _resolve_system(data, "", sources)
        main_kind = (data.get("workload") or {}).get("kind", "transformer") \
            if isinstance(data.get("workload"), dict) else "transformer"
        for name, spec in baselines.items():
            _resolve_system(spec, f"baselines.{name}.", sources, kind=main_kind)
        if _ == 0:
            for assignment in overrides:
                _apply_override(data, assignment, sources)
            baselines = data.get("baselines") or {}
    for name, spec in baselines.items():
        # A baseline inherits the main workload (merged key by key) and, unless it names its
        # own, the main hardware and mapper (replaced whole: options of one do not fit another).
        merged = dict(spec)
        for key in ("workload", "scenario"):    # merged key by key
            main_section, own = data.get(key), spec.get(key)
            if isinstance(main_section, dict) and isinstance(own or {}, dict):
                merged[key] = _deep_merge(main_section, own or {})
            elif own is None and main_section is not None:   # malformed: reported at its own key
                merged[key] = copy.deepcopy(main_section)
        for key in ("hardware", "mapper"):
            if key not in spec and key in data:
                merged[key] = copy.deepcopy(data[key])
        baselines[name] = merged
    for system in [data, *baselines.values()]:
        _serving_workload(system)
    return data


def _serving_workload(system: dict) -> None:
    """A serving run's workload needs no `phase` or `batch`: each iteration's batch comes from
    the batching policy (hwsim.serving); they are filled in (decode, 1) and not used."""
    scenario, workload = system.get("scenario"), system.get("workload")
    if isinstance(scenario, dict) and scenario.get("kind") == "serving" and isinstance(workload, dict) \
            and workload.get("kind", "transformer") == "transformer":
        workload.setdefault("phase", "decode")
        workload.setdefault("batch", 1)


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at `loc` (for did-you-mean)."""
    current: Any = model
    container_key = False
    for i, part in enumerate(loc):
        if container_key:    # a dict key or list index: stay on the item type
            container_key = False
            continue
        if i and loc[i - 1] == "workload" and part in WORKLOAD_KINDS:   # the union's tag
            current = WORKLOAD_KINDS[part]
            continue
        if current is HardwareSpec:            # keys are the registered component kinds
            current = HardwareSpec.spec_of(str(part))
            if current is None:
                return HardwareSpec
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return current
            current = field.annotation
        else:
            return None
        for _ in range(4):   # unwrap Optional[...] / dict[str, X] / list[X]
            args = [a for a in typing.get_args(current) if a is not type(None)]
            origin = typing.get_origin(current)
            if origin in (dict, list, tuple) and args:
                current = args[-1] if origin is dict else args[0]
                container_key = True
            elif args and origin is not None and not (isinstance(current, type) and issubclass(current, BaseModel)):
                models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
                current = models[0] if models else args[0]
            else:
                break
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _tagged() -> dict[str, dict]:
    """Sections whose kind picks their spec: the tag pydantic puts after them in an error's
    location (error paths only: the topology module is imported here, not by every run)."""
    from hwsim.hw.interconnect.topology import TOPOLOGY_SPECS
    return {"workload": WORKLOAD_KINDS, "scenario": SCENARIO_SPECS, "topology": TOPOLOGY_SPECS}


def _untag(loc: tuple) -> tuple:
    """Drop the workload, scenario or topology kind pydantic puts after `workload` / `scenario` /
    `topology` in an error's location (the tag of the discriminated union), so keys read as
    written: `workload.batch`, `scenario.arrivals`, `hardware.topology.routing`."""
    tagged = _tagged()
    return tuple(p for i, p in enumerate(loc)
                 if not (i and loc[i - 1] in tagged and p in tagged[loc[i - 1]]))


def _owner(loc: tuple) -> type[BaseModel] | None:
    """The spec owning the field at the (tagged) location `loc`."""
    tagged = _tagged()
    for i in range(len(loc) - 1, 0, -1):
        kinds = tagged.get(loc[i - 1])
        if kinds and loc[i] in kinds:
            return _model_at(kinds[loc[i]], loc[i + 1:])
    return _model_at(RunConfig, loc)


def _explain(err: dict) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        owner = _owner(loc[:-1])
        fields = (HardwareSpec.known_keys() if owner is HardwareSpec
                  else list(owner.model_fields) if owner else [])
        hint = _did_you_mean(loc[-1], fields)
        return f"unknown key '{loc[-1]}'{hint}" + (f"; expected one of: {', '.join(fields)}" if fields and not hint else "")
    if kind == "missing":
        return "missing required key"
    return value_message(err)


# Strict types (hwsim.spec.Spec): what a key expected, in words.
_EXPECTED = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
             "string_type": "text", "finite_number": "a finite number", "dict_type": "a mapping",
             "list_type": "a list", "tuple_type": "a list", "model_type": "a mapping",
             "model_attributes_type": "a mapping"}


def _as_written(value) -> str:
    """A value as YAML shows it, with its kind where a mix-up is likely."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"the text {value!r}" + (" (drop the quotes for a number)"
                                        if value.strip().lstrip("+-").replace(".", "", 1).isdigit() else "")
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def value_message(err: dict) -> str:
    """The message of a pydantic error about a value (not an unknown or missing key)."""
    kind = err["type"]
    if kind in _EXPECTED and "input" in err:
        return f"expected {_EXPECTED[kind]}, got {_as_written(err['input'])}"
    msg = err["msg"].removeprefix("Value error, ")
    if "input" in err and kind not in ("value_error", "assertion_error") and not isinstance(err["input"], dict):
        msg += f" (got {err['input']!r})"
    return msg


def _first_error(errors: list[dict]) -> dict:
    """An unknown key usually explains the 'missing' error next to it (`bach:` for `batch:`)."""
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _check_systems(data: dict, sources: SourceMap, file: str) -> None:
    """Mapper name, mapper options and the hardware a mapper needs, each named by its key.

    The schema checks these on a whole system, where pydantic's error has no key to name."""
    systems = [("", data)]
    baselines = data.get("baselines")
    if isinstance(baselines, dict):
        systems += [(f"baselines.{n}.", s) for n, s in baselines.items() if isinstance(s, dict)]

    def fail(message: str, key: str):
        where, line = sources.locate(key)
        raise ConfigError(message, file=where or file, line=line, key=key)

    for prefix, system in systems:
        workload = system.get("workload")
        if isinstance(workload, dict) and str(workload.get("kind", "transformer")) not in WORKLOAD_KINDS:
            kinds = list(WORKLOAD_KINDS)
            fail(f"unknown workload kind {workload['kind']!r}{_did_you_mean(workload['kind'], kinds)}; "
                 f"expected one of: {', '.join(kinds)}", f"{prefix}workload.kind")
        scenario = system.get("scenario")
        if isinstance(scenario, dict) and str(scenario.get("kind", "pass")) not in SCENARIO_SPECS:
            kinds = list(SCENARIO_SPECS)
            fail(f"unknown scenario kind {scenario['kind']!r}{_did_you_mean(scenario['kind'], kinds)}; "
                 f"expected one of: {', '.join(kinds)}", f"{prefix}scenario.kind")
        mapper = system.get("mapper")
        if not isinstance(mapper, dict) or not isinstance(mapper.get("name"), str):
            continue   # the schema reports a missing or mistyped mapper
        name = mapper["name"]
        if name not in MAPPERS:
            names = sorted(MAPPERS)
            fail(f"unknown mapper '{name}'{_did_you_mean(name, names)}; available: {', '.join(names)}",
                 f"{prefix}mapper.name")
        entry = MAPPERS[name]
        try:
            entry.options.model_validate({k: v for k, v in mapper.items() if k != "name"})
        except ValidationError as exc:
            err = _first_error(exc.errors())
            loc = [str(p) for p in err["loc"]]
            if err["type"] == "extra_forbidden":
                fields = list(entry.options.model_fields)
                hint = _did_you_mean(loc[-1], fields)
                msg = (f"unknown option '{loc[-1]}' of mapper '{name}'{hint}"
                       + ("" if hint else f"; its options: {', '.join(fields) or 'none'}"))
            else:
                msg = _explain(err)
            fail(msg, f"{prefix}mapper." + ".".join(loc))
        hardware = system.get("hardware")
        if isinstance(hardware, dict):
            workload = system.get("workload") if isinstance(system.get("workload"), dict) else {}
            tp, ep = workload.get("tp", 1), workload.get("ep", 1)
            present = {c for c, v in hardware.items() if v is not None}
            problem = missing_hardware(name, present, tp if isinstance(tp, int) else 1,
                                       ep if isinstance(ep, int) else 1)
            if problem:
                fail(f"missing: {problem[1]}", f"{prefix}hardware.{problem[0]}")
            gpu, dtype = hardware.get("gpu"), workload.get("dtype", "fp16")
            if "gpu" in entry.needs and isinstance(gpu, dict) and isinstance(gpu.get("peak_tflops"), dict) \
                    and isinstance(dtype, str) and dtype not in gpu["peak_tflops"]:
                fail(f"no tensor peak for the workload's dtype '{dtype}' (has: "
                     f"{', '.join(map(str, gpu['peak_tflops'])) or 'none'})", f"{prefix}hardware.gpu.peak_tflops")


def validate(data: dict, sources: SourceMap, file: str) -> RunConfig:
    _check_systems(data, sources, file)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        err = _first_error(exc.errors())
        loc = [str(p) for p in _untag(tuple(err["loc"])) if not str(p).startswith("function-")]
        dotted = ".".join(loc)
        where, line = sources.locate(dotted)
        raise ConfigError(_explain(err), file=where or file, line=line, key=dotted or None) from None


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read, resolve and validate a run config; raise ConfigError on bad input."""
    data, sources = read_yaml(Path(path))
    data = resolve_config_dict(data, sources, overrides, file=str(path))
    return validate(data, sources, str(path))


def load_config_text(text: str, overrides: list[str] = (), file: str = "<string>") -> RunConfig:
    data, sources = parse_yaml(text, file)
    return validate(resolve_config_dict(data, sources, overrides, file=file), sources, file)
