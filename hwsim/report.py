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
    systems = _table(["system", "mapper", "tokens/s", "iter ms", "layer ms", "roofline ms",
                      "mJ/token", "speed-up"], rows)
    units = []
    for name, r in [("main", result.main), *result.baselines.items()]:
        m = r.metrics
        for unit in m.utilization:
            units.append([name, unit, f"{m.utilization[unit]:.3f}", f"{m.busy[unit]:.3f}"])
    util = _table(["system", "unit", "utilization", "busy"], units)
    traffic = _table(["system", "level", "GB/device"],
                     [[n, lv, f"{b / 1e9:,.3f}"] for n, r in [("main", result.main), *result.baselines.items()]
                      for lv, b in r.metrics.bytes.items()])
    return "\n\n".join([head, systems, util, traffic])


def write_results(result: RunResult, out_dir: Path) -> list[Path]:
    """Resolved config, metrics (JSON + CSV), op timeline, Chrome trace and roofline plot."""
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
    flat = [{"system": n, **{k: v for k, v in r.metrics.to_json().items() if not isinstance(v, dict)}}
            for n, r in [("main", result.main), *result.baselines.items()]]
    import pandas as pd
    put("metrics.csv", pd.DataFrame(flat).to_csv(index=False))
    put("timeline.csv", result.main.trace.frame.to_csv(index=False))
    result.main.trace.write_chrome_trace(out_dir / "trace.json")
    written.append(out_dir / "trace.json")
    from hwsim.plots import roofline_plot
    written.append(roofline_plot(result, out_dir / "roofline.png"))
    return written
