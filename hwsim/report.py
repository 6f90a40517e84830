"""What a user reads: the terminal table (each table followed by a legend saying what its columns
mean and in which unit) and the results folder."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import yaml

from hwsim.config.schema import RunConfig
from hwsim.pipeline import RunResult, SystemResult


# --------------------------------------------------------------------------- the table
def _mapper_label(r: SystemResult) -> str:
    """The mapper's name; for the GPU, with the serving stack it modelled."""
    from hwsim.hw.gpu import ServingStack
    options = r.system.mapper.options
    if isinstance(options, ServingStack):
        return f"{r.system.mapper.name} ({options.launch}, " \
               f"{'fused' if options.fused_elementwise else 'unfused'})"
    return r.system.mapper.name


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned others. A header cell may span lines ("\\n"),
    aligned to the bottom, so long names stay narrow."""
    head = [h.split("\n") for h in header]
    depth = max(len(h) for h in head)
    head_lines = [[""] * (depth - len(h)) + h for h in head]        # bottom-aligned
    widths = [max(len(x) for x in [*h, *(str(r[i]) for r in rows)]) for i, h in enumerate(head_lines)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)   # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    lines = [line([h[k] for h in head_lines]) for k in range(depth)]
    return "\n".join(lines + [line(["-" * w for w in widths])] + [line(r) for r in rows])


def _legend(entries: list[tuple[str, str]], width: int = 100) -> str:
    """`name: meaning` lines under a table, wrapped and indented."""
    out = []
    for name, meaning in entries:
        out.append(textwrap.fill(f"{name}: {meaning}", width=width, initial_indent="  ",
                                 subsequent_indent="      "))
    return "\n".join(out)


def _systems(result: RunResult) -> list[tuple[str, SystemResult]]:
    return [("main", result.main), *result.baselines.items()]


def _header(result: RunResult) -> str:
    """Model, phase, batch, layers of the model and per pipeline stage, parallelism and what
    was simulated."""
    info = result.main.graph.info
    workload = result.main.system.workload
    if workload.kind == "transformer":
        layers = f"{workload.model.n_layers} decoder layers"
        if info.pp > 1:
            layers += f" ({info.n_layers} per pipeline stage)"
    else:
        layers = f"{info.n_layers} weight layers"
    devices = info.tp * info.ep * info.pp
    replica = f"one replica = tp {info.tp} x ep {info.ep} x pp {info.pp} = {_count(devices, 'device')}"
    if result.main.replica is not None:
        part, merged = result.main.replica
        topology = result.main.system.hardware.topology.root
        simulated = (f"every device on the {topology.kind} of {topology.num_devices}: "
                     f"{_count(len(part.devices), 'distinct device')} simulated "
                     f"({len(merged.schedule.tasks):,} tasks), identical ones counted")
    elif info.pp > 1:
        simulated = (f"one device of the last pipeline stage simulated ({len(result.main.graph)} ops; "
                     "the other stages taken to be as busy)")
    else:
        simulated = f"one device simulated ({len(result.main.graph)} ops)"
    return f"{result.config.name}: {info.model} {info.phase}, batch {info.batch}, {layers}; {replica}; {simulated}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _iteration_meaning(result: RunResult) -> str:
    info = result.main.graph.info
    if info.work_unit == "inference":
        what = f"one forward pass of a batch of {_count(info.batch, 'input')}"
    elif info.phase == "training":
        what = f"one training step (forward, backward, update) of a batch of {info.batch}"
    elif info.phase == "decode":
        what = f"one decode step: one new token for each of the {info.batch} requests"
    elif info.phase == "mixed":
        what = f"one serving iteration: {info.tokens:,} new tokens over {info.batch} requests"
    else:
        what = f"one prefill pass over the {info.batch} requests' prompts ({info.tokens:,} tokens)"
    if info.pp > 1:
        what += f", its {info.pp} micro-batches through one pipeline stage"
    return f"time of one iteration, {what}"


def _systems_table(result: RunResult) -> str:
    unit = result.main.metrics.work_unit           # "token" | "inference"
    speedups = result.speedup()
    rows = []
    for name, r in _systems(result):
        m = r.metrics
        rows.append([name, _mapper_label(r), f"{m.throughput_per_s:,.1f}",
                     f"{m.throughput_per_s / m.devices:,.1f}", f"{m.iteration_latency_s * 1e3:,.3f}",
                     f"{m.time_per_layer_s * 1e3:,.4f}", f"{m.roofline_bound_s * 1e3:,.3f}",
                     f"{m.energy_per_work_unit_j * 1e3:,.3f}",
                     "1.00x" if name == "main" else f"{speedups[name]:.2f}x"])
    table = _table(["system", "mapper", f"{unit}s/s\nper replica", f"{unit}s/s\nper device",
                    "iteration\nms", "layer\nms", "roofline\nms", f"energy\nmJ/{unit}",
                    "speed-up\nof main"], rows)
    counts = {name: r.metrics.devices for name, r in _systems(result)}
    devices = (_count(counts["main"], "device") if len(set(counts.values())) == 1
               else "its devices (" + ", ".join(f"{n} {d}" for n, d in counts.items()) + ")")
    legend = _legend([
        (f"{unit}s/s per replica", f"{unit}s produced per second by one replica, a copy of the "
         f"model on tp x ep x pp devices (all of them together)"),
        (f"{unit}s/s per device", f"the same divided by {devices}"),
        ("iteration ms", _iteration_meaning(result)),
        ("layer ms", "time per decoder layer (see docs)" if unit == "token"
         else "time per weight layer (see docs)"),
        ("roofline ms", "a lower bound on the iteration no schedule can beat: the longest chain "
         "of ops each at its roofline, or the busiest resource's work at its peak rate, "
         "whichever is longer"),
        (f"energy mJ/{unit}", f"energy of the whole replica per {unit} (dynamic and static)"),
        ("speed-up of main", f"main's {unit}s/s divided by this row's: 2.00x on a baseline's "
         "row means main is twice as fast as that baseline; main's own row is 1.00x"),
    ])
    slowed = [f"{name} {r.metrics.power_limit_slowdown:.2f}x" for name, r in _systems(result)
              if r.metrics.power_limit_slowdown > 1.0]
    if slowed:
        legend += "\n" + _legend([("power limit", "iteration ms includes the slowdown of a "
                                    "device held at its power limit (a GPU at its TDP: the "
                                    "pass's energy over its time at full clock would exceed "
                                    "it): " + ", ".join(slowed))])
    sheet = [name for name, r in _systems(result)
             if r.metrics.power_limit_slowdown == 1.0 and _datasheet_gpu(r)]
    if sheet:
        legend += "\n" + _legend([("GPU datasheet mode", ", ".join(sheet) + ": kernel times at "
                                    "full clock. Datasheet energy per HBM byte is the DRAM's "
                                    "alone (an H200 board spends 3-4x that per streamed byte), so "
                                    "only tensor-core work takes the card to its power limit, "
                                    "and a memory-bound pass's slowdown there is not in these "
                                    "times: an H200 at 700 W runs large-batch decode steps up "
                                    "to 15% slower (configs/profiles/h200-sxm/). A measured "
                                    "profile (hardware.gpu.profile) includes it")])
    return f"{table}\n{legend}"


def _datasheet_gpu(r: SystemResult) -> bool:
    """Whether the system runs on a GPU costed from its datasheet (no measured profile)."""
    return any(spec.profile is None for spec in r.system.hardware.specs("gpu"))


def _units_table(result: RunResult) -> str:
    rows = []
    for name, r in _systems(result):
        m = r.metrics
        instances: dict[str, int] = {}
        for res_name, res in r.schedule.resources.items():
            instances[res.unit or res_name] = instances.get(res.unit or res_name, 0) + 1
        for unit in m.utilization:
            rows.append([name, unit, str(instances.get(unit, 1)),
                         f"{m.utilization[unit]:.3f}", f"{m.busy[unit]:.3f}"])
    table = _table(["system", "unit", "instances\nper device", "utilization\n(0-1)", "busy\n(0-1)"], rows)
    legend = _legend([
        ("utilization", "how much of the unit's peak rate the iteration used: for compute, FLOPs "
         "done / (peak FLOP/s x iteration time); for memory and links, bytes moved / (peak "
         "bandwidth x iteration time)"),
        ("busy", "share of the iteration with at least one task in progress on the unit, at any "
         "rate (a memory bus serving small requests all the time is busy 1.000 at low "
         "utilization)"),
        ("instances", "both figures are for one device, averaged over the unit's instances "
         "(e.g. its PIM channels)"),
    ])
    return f"{table}\n{legend}"


def _traffic_table(result: RunResult) -> str:
    rows = [[n, lv, f"{b / 1e9:,.3f}"] for n, r in _systems(result) for lv, b in r.metrics.bytes.items()]
    table = _table(["system", "level", "GB per device\nper iteration"], rows)
    legend = _legend([("GB per device per iteration", "bytes moved at each memory level (and "
                       "sent over the links) by one device in one iteration, 1 GB = 1e9 bytes")])
    return f"{table}\n{legend}"


def _energy_area(result: RunResult) -> str:
    """Area of one device and energy per work unit split by component (components that are
    zero in every system are left out)."""
    named = _systems(result)
    unit = result.main.metrics.work_unit
    comps = [c for c in dict.fromkeys(c for _, r in named for c in r.metrics.energy_breakdown_j)
             if any(r.metrics.energy_breakdown_j.get(c, 0.0) for _, r in named)]
    rows = []
    for name, r in named:
        m = r.metrics
        per_unit = [m.energy_breakdown_j.get(c, 0.0) / m.work_per_iteration * 1e3 for c in comps]
        rows.append([name, f"{m.area_mm2:,.1f}"] + [f"{e:,.3f}" for e in per_unit]
                    + [f"{m.energy_per_work_unit_j * 1e3:,.3f}"])
    table = _table(["system", "area mm2\nper device"] + [f"{c}\nmJ/{unit}" for c in comps]
                   + [f"total\nmJ/{unit}"], rows)
    legend = _legend([
        ("area mm2 per device", "silicon area of one device's components that the mapper uses"),
        (f"mJ/{unit}", f"energy of the whole replica per {unit}, by component (static: static "
         "power x iteration time); the components add up to the total"),
    ])
    return f"{table}\n{legend}"


def _serving_header(result: RunResult) -> str:
    sv = result.main.system.scenario
    w = result.main.system.workload
    a = sv.arrivals
    if a.process == "trace":
        arrivals = f"trace {Path(a.path).name}"
    else:
        arrivals = f"{a.process} {a.rate_per_s:g} req/s" + (f" (cv {a.cv:g})" if a.process == "gamma" else "")
    d = result.main.metrics.serving
    kv = d["kv_cache"]
    info = result.main.graph.info
    devices = info.tp * info.ep * info.pp
    return (f"{result.config.name}: serving {w.model.name} ({w.model.n_layers} decoder layers), "
            f"{d['requests']:,} requests ({arrivals}, prompt {a.prompt.dist}, output {a.output.dist}), "
            f"{d['policy']} batching; {'one replica' if d['replicas'] == 1 else 'two replicas (prefill, decode), each' if 'disaggregated' in d['policy'] else str(d['replicas']) + ' replicas (round-robin), each'}"
            f" = tp {info.tp} x ep {info.ep} x pp {info.pp} = {_count(devices, 'device')}; KV cache {kv['capacity_tokens']:,} tokens in "
            f"{kv['blocks']:,} blocks of {kv['block_tokens']}; {d['iterations']:,} iterations costed by "
            f"{d['cost_model']['pass_simulations']:,} one-layer pass simulations (hwsim.serving.cost)")


def _ms(x) -> str:
    return "-" if x is None else f"{x * 1e3:,.1f}"


def _serving_tables(result: RunResult) -> str:
    rows = []
    for name, r in _systems(result):
        d = r.metrics.serving
        for what in ("ttft_s", "tpot_s", "e2e_s", "queueing_s"):
            st = d[what]
            rows.append([name, d["policy"], what.removesuffix("_s").upper() if what != "queueing_s"
                         else "queueing", _ms(st["mean"]), _ms(st["p50"]), _ms(st["p90"]), _ms(st["p99"])])
    latency = _table(["system", "policy", "latency", "mean\nms", "p50\nms", "p90\nms", "p99\nms"], rows)
    rows = []
    for name, r in _systems(result):
        d = r.metrics.serving
        c = d["ceiling"]
        att = d["slo_attainment"]
        rows.append([name, f"{d['output_tokens_per_s']:,.1f}", f"{d['output_tokens_per_s_per_device']:,.1f}",
                     f"{d['requests_per_s']:,.3f}", "-" if att is None else f"{att:.3f}",
                     "-" if d["goodput_rps"] is None else f"{d['goodput_rps']:,.3f}",
                     f"{d['energy_per_output_token_j'] * 1e3:,.2f}",
                     f"{c['optimal_tokens_per_s_per_device']:,.0f}",
                     f"{c['memory_bound_output_tokens_per_s_per_device']:,.0f}",
                     f"{c['achieved_share'] * 100:.1f}%", f"{d['kv_cache']['peak_share'] * 100:.1f}%"])
    rates = _table(["system", "output\ntok/s", "output tok/s\nper device", "requests\n/s", "SLO\nattained",
                    "goodput\nreq/s", "energy mJ per\noutput token", "optimal tok/s\nper device",
                    "memory-bound\noutput tok/s", "share of\noptimal", "KV peak\nused"], rows)
    slo = result.main.system.scenario.slo
    targets = ", ".join(f"{k} <= {v * 1e3:g} ms" for k, v in (("TTFT", slo.ttft_s), ("TPOT", slo.tpot_s))
                        if v is not None) or "none set"
    legend = _legend([
        ("TTFT", "time to first token: from arrival to the end of the iteration that completes the prompt"),
        ("TPOT", "time per output token after the first: (completion - first token) / (output tokens - 1)"),
        ("E2E", "arrival to the last output token"),
        ("queueing", "arrival to admission (the batching policy reserves the request's KV blocks)"),
        ("output tok/s", "output tokens per second of the deployment (every replica), first arrival "
         "to last completion; per device: divided by all its devices"),
        ("SLO attained", f"share of requests meeting every target ({targets})"),
        ("goodput", f"highest arrival rate with at least {slo.attainment:g} of requests meeting the SLO "
         "(scenario.goodput.search; '-' when not searched)"),
        ("energy mJ per output token", "every iteration's energy plus static power while idle, whole "
         "replica, per output token"),
        ("optimal tok/s per device", "NanoFlow's ceiling: peak FLOP/s / (2 x active parameters), "
         "tokens processed (prompt and output) per second of one device (hwsim.serving.metrics)"),
        ("memory-bound output tok/s", "estimate for decode, per device: the requests that fit the KV "
         "cache at the stream's mean context, one token each per read of weights and full cache"),
        ("share of optimal", "tokens processed (prompt + output) per second per device / optimal"),
        ("KV peak used", "most KV blocks reserved at once / the blocks that fit beside the weights"),
    ])
    return f"{latency}\n\n{rates}\n{legend}"


def format_table(result: RunResult) -> str:
    if result.main.serving is not None:
        info = result.main.graph.info
        largest = (f"The run's largest iteration ({info.batch} requests, {info.tokens:,} new tokens), "
                   f"one full pass of its exact shape:\n{_header(result)}")
        sections = [_serving_header(result), _serving_tables(result), largest, _systems_table(result),
                    _units_table(result), _traffic_table(result), _memory_levels(result), _energy_area(result)]
        if result.check_detail is not None:
            sections.append(_check(result.check_detail))
        return "\n\n".join(sections)
    sections = [_header(result), _systems_table(result), _units_table(result),
                _traffic_table(result), _memory_levels(result), _energy_area(result)]
    if result.main.metrics.coe is not None:
        from hwsim.coe import coe_header
        sections.insert(1, coe_header(result))
    if result.main.metrics.seqpar is not None:
        from hwsim.seqpar import seqpar_header
        sections.insert(1, seqpar_header(result))
    plan = _memory_plan(result)
    if plan:
        sections.insert(5, plan)
    placement = _placement(result)
    if placement:
        sections.append(placement)
    bounds = _wafer_bounds(result)
    if bounds:
        sections.append(bounds)
    if result.check_detail is not None:
        sections.append(_check(result.check_detail))
    return "\n\n".join(sections)


def _placement(result: RunResult) -> str:
    """Systems whose mapper placed ops by Op/B (mappers/duplex.py): per op kind and unit, how
    many ops went there and their Op/B range; "" if none (every op's row: metrics.json)."""
    rows = []
    for name, r in _systems(result):
        pl = getattr(r.schedule, "placement", None)
        if not pl:
            continue
        groups: dict[tuple[str, str], list[float]] = {}
        for p in pl["ops"]:
            groups.setdefault((p["kind"], p["unit"]), []).append(p["op_per_byte"])
        for (kind, unit), opbs in sorted(groups.items()):
            rows.append([name, kind, unit, str(len(opbs)), f"{min(opbs):,.2f}", f"{max(opbs):,.2f}"])
        rows.append([name, "(threshold)", "", "", f"{pl['threshold_op_per_byte']:,.2f}", ""])
    if not rows:
        return ""
    table = _table(["system", "op kind", "ran on", "ops", "Op/B\nmin", "Op/B\nmax"], rows)
    legend = _legend([("Op/B", "FLOPs per byte of memory the op's placement unit touches (an "
                       "attention, an expert, a GEMM); below the threshold it runs on the PIM (co-processing "
                       "splits a layer's experts by Op/B to balance the two units); "
                       "each op's row is in metrics.json under 'placement'")])
    return f"{table}\n{legend}"


def _memory_plan(result: RunResult) -> str:
    """Systems whose mapper made a peak-SRAM plan (mappers/mcu.py): the peak, where it falls,
    the capacities and, with patches, the recomputed MACs."""
    rows = []
    for name, r in [("main", result.main), *result.baselines.items()]:
        plan = getattr(r.schedule, "memory_plan", None)
        if plan is None:
            continue
        levels = r.metrics.memory_levels
        macs = sum(op.flops / 2 for op in r.graph.ops if op.conv is not None or op.matmul is not None)
        st = plan.patch
        rows.append([name, f"{plan.peak_bytes / 1024:,.1f}", plan.peak_op,
                     f"{levels['sram']['capacity_bytes'] / 1024:,.0f}", f"{plan.weight_bytes / 1024:,.1f}",
                     f"{levels['flash']['capacity_bytes'] / 1024:,.0f}",
                     "-" if st is None else f"{st.grid}x{st.grid} to {st.split_after}",
                     "-" if st is None else f"{st.peak_bytes / 1024:,.1f}",
                     "-" if st is None else f"{st.recompute_macs / 1e6:,.2f} (+{st.recompute_macs / macs:.1%})"])
    if not rows:
        return ""
    table = _table(["system", "peak SRAM\nkB", "at layer", "SRAM\nkB", "weights\nkB", "flash\nkB",
                    "patches", "patch stage\npeak kB", "recomputed\nM MACs"], rows)
    legend = _legend([
        ("peak SRAM kB", "the largest set of activation buffers live at once (inputs, outputs, "
         "residuals held across a block; kB = 1024 B); it must fit the SRAM"),
        ("patches", "MCUNetV2 patch-based stage: an n x n grid over the output of the named op"),
        ("recomputed M MACs", "MACs spent again on the overlapping halos of the patches (share of "
         "the model's MACs)"),
    ])
    return f"{table}\n{legend}"


def _wafer_bounds(result: RunResult) -> str:
    """Systems on wafer-scale engines (the `wafer_pipeline` mapper): the per-token chain split by
    what sets it (hwsim.mappers.wafer.token_latency_terms) and which bound binds; "" if none."""
    on_wafer = [(name, r) for name, r in _systems(result)
                if any(t.component == "wafer" for t in r.schedule.tasks)]
    if not on_wafer:
        return ""
    from hwsim.mappers.wafer import BOUNDS, token_latency_terms
    rows = []
    for name, r in on_wafer:
        terms = token_latency_terms(r.schedule)
        total = sum(terms.values()) or 1.0
        rows.append([name] + [f"{terms[b] / 1e3:,.1f} ({terms[b] / total:.0%})" for b in BOUNDS]
                    + [max(terms, key=terms.get)])
    if not rows:
        return ""
    table = _table(["system"] + [f"{b}\nus (share)" for b in BOUNDS] + ["binds"], rows)
    legend = _legend([
        ("compute, sram", "a region op's busy time, whichever of its MACs and its SRAM bandwidth "
         "is slower"),
        ("fabric_hops", "the reductions and broadcasts across each region (2 x side hops per "
         "matrix-vector product, norm or softmax) and the hand-offs between regions"),
        ("wafer_links", "crossings of the wafer-to-wafer link, with their hops to the wafer edge"),
        ("binds", "the largest term: at batch 1 the terms add up to the token's latency"),
    ])
    return f"{table}\n{legend}"


def _memory_levels(result: RunResult) -> str:
    """Each off-chip memory level of each system, fastest first: what it holds, what it moved,
    how long it was busy and its energy (transfers + static) per token."""
    rows = []
    for name, r in [("main", result.main), *result.baselines.items()]:
        m = r.metrics
        for lv, d in m.memory_levels.items():
            rows.append([name, lv, f"{d['capacity_bytes'] / 1e9:,.1f}", f"{d['resident_bytes'] / 1e9:,.2f}",
                         f"{d['bytes'] / 1e9:,.3f}", f"{d['busy'] * m.iteration_latency_s * 1e3:,.3f}",
                         f"{d['energy_j'] / m.work_per_iteration * 1e3:,.3f}"])
    unit = result.main.metrics.work_unit
    table = _table(["system", "memory\nlevel", "capacity\nGB", "holds\nGB", "moved GB per\ndevice",
                    "busy\nms", f"energy\nmJ/{unit}"], rows)
    legend = _legend([
        ("holds GB", "what placement put in the level (weights, KV cache, spilled activations), "
         "one device"),
        ("moved GB per device", "bytes the level served in one iteration, one device"),
        ("busy ms", "time in the iteration with at least one transfer on the level"),
        (f"energy mJ/{unit}", f"the level's transfer energy plus its static (background, refresh) "
         f"power over the iteration, whole replica, per {unit}"),
    ])
    return f"{table}\n{legend}"


def _check(detail: dict) -> str:
    """`--check`: one row per system, op kind and kernel (hwsim.check)."""
    rows = [[",".join(r["systems"]), r["op_kind"], r["unit"], r["kernel"], r["precision"], r["shape"],
             f"{r['max_rel_error']:.2e}", f"{r['tolerance']:.0e}", "pass" if r["passed"] else "FAIL"]
            for r in detail["rows"]]
    table = _table(["systems", "op kind", "unit", "kernel", "precision", "shape checked",
                    "max rel err", "tolerance", "result"], rows)
    skipped = "".join(f"\nnot computed: {k} ({why})" for k, why in detail["not_computed"].items())
    verdict = "all within tolerance" if detail["passed"] else "ERRORS ABOVE TOLERANCE"
    return (f"check: functional kernels vs float64, error = {detail['metric']}; seed {detail['seed']} "
            f"(replay: {detail['replay']}): {verdict}\n{table}{skipped}")


# --------------------------------------------------------------------------- the results folder

_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _config_text(config: RunConfig) -> str:
    """The resolved config as written to config.yaml (defaults included). libyaml's emitter
    when PyYAML has it: the same text as `yaml.safe_dump` (tests/test_report.py), 3x faster."""
    return yaml.dump(config.model_dump(mode="json"), Dumper=_SAFE_DUMPER, sort_keys=False)


def _differing_keys(a, b, prefix: str = "") -> list[str]:
    """Dotted keys where two parsed configs differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in dict.fromkeys([*a, *b])
                for k in _differing_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix[:-1] or "(whole file)"]


def _holds_other_config(folder: Path, text: str) -> str | None:
    """None when `folder` may take this config's results (absent, empty, or holding the same
    resolved config); else a short description of what it holds instead."""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return None
    stored = folder / "config.yaml"
    if not stored.is_file():
        return "files of something else (no config.yaml)"
    try:
        old = stored.read_text()
    except (OSError, UnicodeDecodeError):
        return "an unreadable config.yaml"
    if old == text:
        return None
    try:
        keys = _differing_keys(yaml.safe_load(old), yaml.safe_load(text))
    except yaml.YAMLError:
        keys = []
    shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
    return f"the results of a different config (differs at {shown})" if keys else \
        "the results of a different config"


def results_dir(config: RunConfig, out: Path | None = None) -> tuple[Path, str | None]:
    """Where `hwsim run` writes the results folder, and a notice for the user, or None.

    `out` (`--out DIR`) is written as asked, with a notice when it held another config's
    results. Otherwise the default folder (the config's `output.dir`, else results/<name>/) is
    used when it is new or holds the same resolved config; when it holds another config's
    results (e.g. an earlier `--set` run), this run goes to the first of <default>-2/,
    <default>-3/, ... that is new or holds this same config, so a run never silently replaces
    another's results and re-running a config reuses its folder."""
    text = _config_text(config)
    if out is not None:
        other = _holds_other_config(out, text)
        return out, (f"note: {out}/ held {other}; replaced" if other else None)
    base = Path(config.output.dir or Path("results") / config.name)
    other = _holds_other_config(base, text)
    if other is None:
        return base, None
    n = 2
    while _holds_other_config(folder := Path(f"{base}-{n}"), text) is not None:
        n += 1
    return folder, (f"note: {base}/ holds {other}; this run's results are in {folder}/ "
                    "(--out DIR to choose the folder)")


def _csv_text(rows: list[dict]) -> str:
    import csv
    import io
    header = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _columns_csv(columns: dict) -> str:
    """CSV text of equal-length numeric numpy columns (repr of each value: exact floats, NaN as
    'nan'; no quoting needed)."""
    cells = [list(map(repr if np.asarray(c).dtype.kind == "f" else str, np.asarray(c).tolist()))
             for c in columns.values()]
    return ",".join(columns) + "\n" + "".join(f"{line}\n" for line in map(",".join, zip(*cells)))


def write_results(result: RunResult, out_dir: Path) -> list[Path]:
    """Resolved config, metrics (JSON + CSV), op timeline (CSV and plot), Chrome trace and roofline plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, text: str) -> None:
        path = out_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        written.append(path)

    put("config.yaml", _config_text(result.config))
    put("metrics.json", json.dumps(result.to_json(), indent=2))
    flat = [{"system": n, **{k: v for k, v in r.metrics.to_json().items() if not isinstance(v, dict)},
             **{f"energy_{c}_j": e for c, e in r.metrics.energy_breakdown_j.items()},
             **{f"area_{c}_mm2": a for c, a in r.metrics.area_breakdown_mm2.items()}}
            for n, r in _systems(result)]
    put("metrics.csv", _csv_text(flat))
    if result.main.serving is not None:         # serving: one row per request and per iteration
        run = result.main.serving
        from hwsim.serving.metrics import per_request
        s = run.stream
        put("requests.csv", _columns_csv({
            "request": np.arange(len(s)), "arrival_s": s.arrival_s, "prompt_tokens": s.prompt_tokens,
            "output_tokens": s.output_tokens, **per_request(run)}))
        put("iterations.csv", _columns_csv({
            "start_s": run.iter_start_s, "time_s": run.iter_time_s, "energy_j": run.iter_energy_j,
            "prefill_tokens": run.iter_prefill_tokens, "decode_tokens": run.iter_decode_tokens,
            "kv_blocks": run.iter_kv_blocks}))
        from hwsim.serving.metrics import chrome_trace
        put("serving_trace.json", json.dumps(chrome_trace(run), separators=(",", ":")))
    result.main.trace.write_csv(out_dir / "timeline.csv")
    written.append(out_dir / "timeline.csv")
    result.main.trace.write_chrome_trace(out_dir / "trace.json")
    written.append(out_dir / "trace.json")
    from hwsim.plots import roofline_plot, timeline_plot
    written.append(roofline_plot(result, out_dir / "roofline.svg"))
    written.append(timeline_plot(result, out_dir / "timeline.svg"))
    if result.main.serving is not None:
        from hwsim.plots import serving_plots
        written += serving_plots(result, out_dir)
    return written
