#!/usr/bin/env python
"""Wall time of the SCALE-Sim-compatible systolic model on ResNet-50.

    python benchmarks/bench_systolic.py              # the 9-run matrix, layer growth, pipeline
    python benchmarks/bench_systolic.py --repeat 5   # median of 5

Sections:
  matrix   ResNet-50 (54 array layers: 53 convs + the FC, batch 1) on 32x32, 64x64 and 128x128
           arrays in OS, WS and IS: `hwsim.hw.systolic.network_cost` with SCALE-Sim's 64 KiB
           scratchpads and 10 words/cycle of DRAM bandwidth (stall model on), i.e. what
           `hwsim scalesim --model resnet50 --bw-words 10` computes. Reports folds, cycles, the
           median wall time per run, and the total. (SCALE-Sim's Python cycle loop needs about
           1.5 minutes for AlexNet conv1 alone on 32x32 — its issue #4 — i.e. ~1,150 cycles/s.)
  layers   the first 14, 27 and 54 layers on 32x32 WS: time against layers and folds.
  pipeline the same 9 settings through the whole `hwsim run` pipeline (op graph -> npu_only
           mapper -> SimPy engine -> metrics) with an NPU of that array size.
"""
from __future__ import annotations

import argparse
import time

from hwsim.hw.systolic import SystolicArray, array_layers, network_cost
from timing import median_time, table
from hwsim.workloads.cnn import build_model

SIZES = (32, 64, 128)
DATAFLOWS = ("os", "ws", "is")


def array(size: int, dataflow: str) -> SystolicArray:
    return SystolicArray(rows=size, cols=size, dataflow=dataflow, bw_words_per_cycle=10,
                         scalesim_convention=True)


def matrix(layers, repeat: int) -> float:
    rows, total = [], 0.0
    for size in SIZES:
        for df in DATAFLOWS:
            wall, costs = median_time(lambda: network_cost(array(size, df), layers), repeat)
            total += wall
            folds = sum(c.folds for c in costs)
            cycles = sum(c.total_cycles for c in costs)
            stalls = sum(c.stall_cycles for c in costs)
            rows.append([f"{size}x{size}", df, len(costs), f"{folds:,}", f"{cycles:,}",
                         f"{stalls:,}", f"{wall * 1e3:.1f}", f"{folds / wall:,.0f}"])
    table(f"ResNet-50 per-layer systolic model (64 KiB SRAMs, 10 words/cycle), median of {repeat}",
          ["array", "df", "layers", "folds", "total cycles", "stall cycles", "wall ms", "folds/s"], rows)
    print(f"total wall time of the 9 runs: {total:.3f} s")
    return total


def layer_growth(layers, repeat: int) -> None:
    rows = []
    for n in (14, 27, len(layers)):
        sub = layers[:n]
        wall, costs = median_time(lambda: network_cost(array(32, "ws"), sub), repeat)
        rows.append([n, f"{sum(c.folds for c in costs):,}", f"{wall * 1e3:.1f}",
                     f"{wall / n * 1e3:.2f}"])
    table("growth with layers (32x32 WS)", ["layers", "folds", "wall ms", "ms/layer"], rows)


def pipeline(repeat: int) -> None:
    from hwsim.config.loader import load_config_text
    from hwsim.pipeline import evaluate
    rows, total = [], 0.0
    for size in SIZES:
        for df in DATAFLOWS:
            cfg = load_config_text(
                "name: bench\nworkload: {kind: cnn, model: resnet50, batch: 1, dtype: int8}\n"
                f"hardware:\n  npu: {{rows: {size}, cols: {size}, freq_ghz: 1.0, dataflow: {df}, "
                "sram_kib: 24576, vector_units: 1, vector_lanes: 256}\n  memory: hbm2-32ch\n"
                "mapper: {name: npu_only}\n")
            wall, result = median_time(lambda: evaluate(cfg), repeat)
            total += wall
            m = result.main.metrics
            rows.append([f"{size}x{size}", df, len(result.main.graph),
                         f"{m.iteration_latency_s * 1e3:.3f}", f"{m.utilization['npu']:.3f}",
                         f"{wall * 1e3:.1f}"])
    table(f"whole pipeline (hwsim run) on ResNet-50, 1 GHz, median of {repeat}",
          ["array", "df", "ops", "latency ms", "npu util", "wall ms"], rows)
    print(f"total wall time of the 9 runs: {total:.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["matrix", "layers", "pipeline"])
    args = ap.parse_args()
    t0 = time.perf_counter()
    layers = array_layers(build_model("resnet50"))
    print(f"ResNet-50 graph and layers built in {(time.perf_counter() - t0) * 1e3:.1f} ms "
          f"({len(layers)} array layers)")
    if args.only in (None, "matrix"):
        matrix(layers, args.repeat)
    if args.only in (None, "layers"):
        layer_growth(layers, args.repeat)
    if args.only in (None, "pipeline"):
        pipeline(args.repeat)


if __name__ == "__main__":
    main()
