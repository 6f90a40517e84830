"""`hwsim scalesim`: SCALE-Sim's per-layer COMPUTE_REPORT from a topology CSV, in closed form.

    hwsim scalesim --topology configs/topologies/alexnet.csv --array 32x32 --dataflow ws
    hwsim scalesim --model mobilenet_v1 --array 64x64 --dataflow ws --bw-words 16 --csv out.csv

Each layer runs through ``hwsim.hw.systolic.layer_cost``; the table has SCALE-Sim's columns
(LayerID, Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, Compute Util %)
plus the layer name, and a total row: cycles and stalls summed, overall utilization of the whole
network (all MACs over all cycles), mapping efficiency and compute utilization averaged over all
folds of all layers. ``--csv`` writes SCALE-Sim's COMPUTE_REPORT.csv format (no name column,
no total row). By default the cycle counts follow SCALE-Sim's convention (one cycle fewer per
SCALE-Sim layer than the closed form; see hwsim.hw.systolic); ``--closed-form`` drops it.
A depthwise ("DP") layer is one row here (SCALE-Sim prints one row per channel).
"""
from __future__ import annotations

import functools
from pathlib import Path

import click

from hwsim.errors import ConfigError


def _guarded(fn):
    """hwsim.cli's guard (one-line error, exit 2), imported when called: cli imports this module."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from hwsim.cli import _guarded as guard
        return guard(fn)(*args, **kwargs)
    return wrapper


def _positive(text, option: str, kind=int):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a positive {'integer' if kind is int else 'number'}, got {text!r}",
                          key=option) from None
    if not value > 0:
        raise ConfigError(f"expected a positive {'integer' if kind is int else 'number'}, got {text!r}",
                          key=option)
    return value


def parse_array(text: str) -> tuple[int, int]:
    parts = str(text).lower().split("x")
    if len(parts) != 2:
        raise ConfigError(f"expected ROWSxCOLS such as 32x32, got {text!r}", key="--array")
    return _positive(parts[0], "--array"), _positive(parts[1], "--array")


def parse_sram(text: str) -> tuple[float, float, float]:
    """`64` (each of the three scratchpads) or `IFMAP,FILTER,OFMAP` in KiB."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) not in (1, 3):
        raise ConfigError(f"expected one size or IFMAP,FILTER,OFMAP in KiB, got {text!r}", key="--sram-kib")
    sizes = [_positive(p, "--sram-kib", float) for p in parts]
    return tuple(sizes * 3 if len(sizes) == 1 else sizes)


def _layers(topology: Path | None, model: str | None, batch: int):
    from hwsim.hw.systolic import array_layers
    if (topology is None) == (model is None):
        raise ConfigError("give exactly one of --topology FILE.csv or --model NAME", key="--topology")
    if model is not None:
        from hwsim.workloads.cnn import CNN_MODELS, build_model
        if model not in CNN_MODELS:
            raise ConfigError(f"unknown model '{model}'; available: {', '.join(sorted(CNN_MODELS))}",
                              key="--model")
        return array_layers(build_model(model, batch=batch))
    from hwsim.configs import find
    from hwsim.workloads.topology import read_topology
    topology = find(topology, "topologies", option="--topology")   # a file, or `--topology alexnet`
    return [(layer.name, layer.conv) for layer in read_topology(topology, batch=batch)]


def report_rows(costs, array) -> tuple[list[list], list]:
    """Per-layer rows and the total row of the COMPUTE_REPORT table."""
    rows = [[i, c.name, c.total_cycles, c.stall_cycles, 100 * c.overall_util,
             100 * c.mapping_efficiency, 100 * c.compute_util] for i, c in enumerate(costs)]
    folds = sum(c.folds for c in costs)
    cycles = sum(c.total_cycles for c in costs)
    macs = sum(c.macs for c in costs)
    pes = array.rows * array.cols * array.cores
    total = ["total", f"{len(costs)} layers", cycles, sum(c.stall_cycles for c in costs),
             100 * macs / (cycles * pes) if cycles else 0.0,
             100 * sum(c.mapping_efficiency * c.folds for c in costs) / folds if folds else 0.0,
             100 * sum(c.compute_util * c.folds for c in costs) / folds if folds else 0.0]
    return rows, total


def format_report(costs, array) -> str:
    rows, total = report_rows(costs, array)
    header = ["LayerID", "Layer", "Total Cycles", "Stall Cycles", "Overall Util %",
              "Mapping Efficiency %", "Compute Util %"]

    def cells(r):
        return [str(r[0]), str(r[1]), f"{r[2]:,}", f"{r[3]:,}", f"{r[4]:.3f}", f"{r[5]:.3f}", f"{r[6]:.3f}"]

    body = [cells(r) for r in rows] + [cells(total)]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]

    def line(cs):
        return "  ".join(c.ljust(w) if i in (0, 1) else c.rjust(w) for i, (c, w) in enumerate(zip(cs, widths)))
    sep = line(["-" * w for w in widths])
    return "\n".join([line(header), sep] + [line(b) for b in body[:-1]] + [sep, line(body[-1])])


def write_compute_report(costs, path: Path) -> None:
    """SCALE-Sim's COMPUTE_REPORT.csv: one row per layer, trailing commas included."""
    lines = ["LayerID, Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, Compute Util %,"]
    lines += [f"{i}, {c.total_cycles}, {c.stall_cycles}, {100 * c.overall_util!r}, "
              f"{100 * c.mapping_efficiency!r}, {100 * c.compute_util!r}," for i, c in enumerate(costs)]
    Path(path).write_text("\n".join(lines) + "\n")


@click.command("scalesim")
@click.option("--topology", type=click.Path(dir_okay=False, path_type=Path),
              help="SCALE-Sim topology CSV (conv or GEMM form), or a shipped one's name "
                   "(`hwsim list topologies`).")
@click.option("--model", help="A built-in CNN instead of a CSV (resnet50, mobilenet_v1, ...).")
@click.option("--array", "array_text", default="32x32", show_default=True, help="ROWSxCOLS.")
@click.option("--dataflow", default="ws", show_default=True, help="ws | os | is")
@click.option("--sram-kib", "sram_text", default="64", show_default=True,
              help="KiB of each scratchpad, or IFMAP,FILTER,OFMAP (SCALE-Sim's scale.cfg: 64 each).")
@click.option("--bw-words", "bw_text", default=None,
              help="DRAM words per cycle shared by all operands; default unlimited (no stalls).")
@click.option("--cores", "cores_text", default="1", show_default=True, help="Identical arrays.")
@click.option("--batch", "batch_text", default="1", show_default=True, help="Images per layer.")
@click.option("--word-bytes", "word_text", default="1", show_default=True,
              help="Bytes per word (SCALE-Sim: 1).")
@click.option("--depthwise", default="split", show_default=True,
              help="split (SCALE-Sim: one layer per channel) | packed (native, see hw/systolic.py)")
@click.option("--scalesim-convention/--closed-form", "scalesim_convention", default=True,
              show_default=True, help="Report one cycle fewer per layer, as SCALE-Sim does.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write SCALE-Sim's COMPUTE_REPORT.csv here.")
@_guarded
def scalesim_command(topology, model, array_text, dataflow, sram_text, bw_text, cores_text,
                     batch_text, word_text, depthwise, scalesim_convention, csv_path):
    """Per-layer cycles and utilization of a topology on a systolic array (SCALE-Sim compatible)."""
    from hwsim.hw.systolic import DATAFLOWS, DEPTHWISE_MODES, SystolicArray, network_cost

    rows, cols = parse_array(array_text)
    if dataflow not in DATAFLOWS:
        raise ConfigError(f"expected one of {', '.join(DATAFLOWS)}, got {dataflow!r}", key="--dataflow")
    if depthwise not in DEPTHWISE_MODES:
        raise ConfigError(f"expected one of {', '.join(DEPTHWISE_MODES)}, got {depthwise!r}",
                          key="--depthwise")
    ifmap, filt, ofmap = parse_sram(sram_text)
    bw = None if bw_text is None else _positive(bw_text, "--bw-words", float)
    array = SystolicArray(rows=rows, cols=cols, dataflow=dataflow,
                          cores=_positive(cores_text, "--cores"), ifmap_sram_kib=ifmap,
                          filter_sram_kib=filt, ofmap_sram_kib=ofmap, bw_words_per_cycle=bw,
                          word_bytes=_positive(word_text, "--word-bytes"),
                          scalesim_convention=scalesim_convention, depthwise=depthwise)
    costs = network_cost(array, _layers(topology, model, _positive(batch_text, "--batch")))
    click.echo(format_report(costs, array))
    memory = "unlimited DRAM bandwidth" if bw is None else (
        f"DRAM {bw:g} words/cycle: prefetch {sum(c.prefetch_cycles for c in costs):,} + drain "
        f"{sum(c.drain_cycles for c in costs):,} cycles outside the totals, "
        f"{sum(c.dram_read_words for c in costs):,} words read, "
        f"{sum(c.dram_write_words for c in costs):,} written")
    convention = "SCALE-Sim convention (one cycle fewer per layer)" if scalesim_convention \
        else "closed form (pen-and-paper cycles)"
    click.echo(f"\n{rows}x{cols} {dataflow.upper()} x {array.cores} core(s), SRAM "
               f"{ifmap:g}/{filt:g}/{ofmap:g} KiB, {memory}; {convention}")
    if csv_path is not None:
        try:
            write_compute_report(costs, csv_path)
        except OSError as exc:
            raise ConfigError(f"cannot write: {exc.strerror}", file=str(csv_path), key="--csv") from None
        click.echo(f"wrote {csv_path}")
