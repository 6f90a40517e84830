"""What a user reads: the terminal table and the results folder."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from hwsim.pipeline import RunResult, SystemResult


def _row(name: str, r: SystemResult, speedup: str) -> list[str]:
    m = r.metrics
    return [name, r.system.mapper.name, f"{m.throughput_tokens_per_s:,.1f}",
            f"{m.iteration_latency_s * 1e3:,.3f}", f"{m.time_per_layer_s * 1e3:,.4f}",
            f"{m.roofline_bound_s * 1e3:,.3f}", f"{m.energy_per_token_j * 1e3:,.3f}", speedup]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)   # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def format_table(result: RunResult) -> str:
    info = result.main.graph.info
    head = (f"{result.config.name}: {info.model} {info.phase}, batch {info.batch}, "
            f"{info.n_layers} layers, tp {info.tp}, ep {info.ep}, pp {info.pp} ({len(result.main.graph)} ops/device)")
    speedups = result.speedup()
    rows = [_row("main", result.main, "1.00x")]
    rows += [_row(n, b, f"{speedups[n]:.2f}x") for n, b in result.baselines.items()]
    per = result.main.unit.removesuffix("s")          # what the scenario counts: token, inference
    systems = _table(["system", "mapper", f"{per}s/s", "iter ms", "layer ms", "roofline ms",
                      f"mJ/{per}", "speed-up"], rows)
    units = []
    for name, r in [("main", result.main), *result.baselines.items()]:
        m = r.metrics
        for unit in m.utilization:
            units.append([name, unit, f"{m.utilization[unit]:.3f}", f"{m.busy[unit]:.3f}"])
    util = _table(["system", "unit", "utilization", "busy"], units)
    traffic = _table(["system", "level", "GB/device"],
                     [[n, lv, f"{b / 1e9:,.3f}"] for n, r in [("main", result.main), *result.baselines.items()]
                      for lv, b in r.metrics.bytes.items()])
    sections = [head, systems, util, traffic, _memory_levels(result), _energy_area(result)]
    if result.check_detail is not None:
        sections.append(_check(result.check_detail))
    return "\n\n".join(sections)


def _memory_levels(result: RunResult) -> str:
    """Each off-chip memory level of each system, fastest first: what it holds, what it moved,
    how long it was busy and its energy (transfers + static) per token."""
    rows = []
    for name, r in [("main", result.main), *result.baselines.items()]:
        m = r.metrics
        for lv, d in m.memory_levels.items():
            rows.append([name, lv, f"{d['capacity_bytes'] / 1e9:,.1f}", f"{d['resident_bytes'] / 1e9:,.2f}",
                         f"{d['bytes'] / 1e9:,.3f}", f"{d['busy'] * m.iteration_latency_s * 1e3:,.3f}",
                         f"{d['energy_j'] / m.tokens_per_iteration * 1e3:,.3f}"])
    per = result.main.unit[:3]                        # tok, inf
    return _table(["system", "memory level", "capacity GB", "holds GB", "moved GB/device", "busy ms",
                   f"mJ/{per}"], rows)


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


def _energy_area(result: RunResult) -> str:
    """Area of one device and energy per token split by component (components that are zero in
    every system are left out)."""
    named = [("main", result.main), *result.baselines.items()]
    comps = [c for c in dict.fromkeys(c for _, r in named for c in r.metrics.energy_breakdown_j)
             if any(r.metrics.energy_breakdown_j.get(c, 0.0) for _, r in named)]
    rows = []
    for name, r in named:
        m = r.metrics
        per_token = [m.energy_breakdown_j.get(c, 0.0) / m.tokens_per_iteration * 1e3 for c in comps]
        rows.append([name, f"{m.area_mm2:,.1f}"] + [f"{e:,.3f}" for e in per_token]
                    + [f"{m.energy_per_token_j * 1e3:,.3f}"])
    per = result.main.unit[:3]                        # tok, inf
    return _table(["system", "area mm2/device"] + [f"{c} mJ/{per}" for c in comps] + [f"total mJ/{per}"], rows)


def _csv_text(rows: list[dict]) -> str:
    import csv
    import io
    header = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


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

    put("config.yaml", yaml.safe_dump(result.config.model_dump(mode="json"), sort_keys=False))
    put("metrics.json", json.dumps(result.to_json(), indent=2))
    flat = [{"system": n, **{k: v for k, v in r.metrics.to_json().items() if not isinstance(v, dict)},
             **{f"energy_{c}_j": e for c, e in r.metrics.energy_breakdown_j.items()},
             **{f"area_{c}_mm2": a for c, a in r.metrics.area_breakdown_mm2.items()}}
            for n, r in [("main", result.main), *result.baselines.items()]]
    put("metrics.csv", _csv_text(flat))
    result.main.trace.write_csv(out_dir / "timeline.csv")
    written.append(out_dir / "timeline.csv")
    result.main.trace.write_chrome_trace(out_dir / "trace.json")
    written.append(out_dir / "trace.json")
    from hwsim.plots import roofline_plot, timeline_plot
    written.append(roofline_plot(result, out_dir / "roofline.png"))
    written.append(timeline_plot(result, out_dir / "timeline.png"))
    return written
