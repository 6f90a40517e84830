"""Where the GPU model's decoder-step error comes from (issue 11): per kernel class, the time the
datasheet mode gives, the time the card's own microbenchmarks give (profile mode: each kernel as
measured alone, interpolated, plus its measured excess right after its GEMM where the profile has
in_context.csv), and the measured whole step.

    python benchmarks/bench_gpu_step_breakdown.py [h200-sxm|h100-sxm]

Per class (GEMMs by projection, FlashAttention, fused elementwise): datasheet - microbenchmark is
the datasheet mode's error on that kernel class, measured out of sample; "composition" is the
measured step minus the sum of its kernels as profile mode costs them: time the microbenchmarks
do not see (kernels back to back with different code and data, and anything the step launches
that the model does not count).
"""
import sys
from collections import defaultdict

import yaml

from hwsim.config.loader import load_config_text
from hwsim.hw.gpu_profile import profiles_dir, read_csv
from hwsim.pipeline import run_system

CLASSES = {"qkv": "gemm qkv", "out_proj": "gemm o", "up": "gemm gate+up", "down": "gemm down",
           "attn_score": "attention", "softmax": "attention", "attn_context": "attention"}


def per_class(gpu: dict, phase: str, batch: int, ctx: int) -> tuple[dict, float]:
    text = yaml.safe_dump({
        "name": "breakdown",
        "workload": {"model": "llama2-7b", "phase": phase, "batch": batch, "dtype": "bf16",
                     "lm_head": False, "requests": {"distribution": "fixed", "context_len": ctx}},
        "hardware": {"gpu": gpu}, "mapper": {"name": "gpu"}})
    r = run_system(load_config_text(text).main, extrapolate_layers=False)
    out = defaultdict(float)
    for t in r.schedule.tasks:
        op = t.name.split(".")[-1]
        out[CLASSES.get(op, "elementwise/other")] += (r.trace.end_ns[t.id] - r.trace.start_ns[t.id]) / 1e3
    return dict(out), r.trace.makespan_ns / 1e3


def main(card: str):
    rows = [r for r in read_csv(profiles_dir() / card / "decoder_step.csv")
            if r["launch"] == "cuda_graph" and r["fused"] == "1"]
    for r in rows:
        phase, b, ctx, meas = r["phase"], int(r["batch"]), int(r["ctx"]), float(r["us"])
        sheet, ts = per_class({"preset": card, "hbm_gib": 1024}, phase, b, ctx)
        prof, tp = per_class({"preset": card, "profile": card, "hbm_gib": 1024}, phase, b, ctx)
        print(f"\n{card} {phase} b={b} ctx={ctx}: measured {meas / 1e3:.3f} ms, datasheet "
              f"{ts / 1e3:.3f} ({ts / meas - 1:+.1%}), microbenchmarks {tp / 1e3:.3f} ({tp / meas - 1:+.1%})")
        print(f"  {'class':18s} {'datasheet us':>12s} {'microbench us':>13s} {'sheet-micro':>11s}")
        for c in sorted(prof, key=lambda c: -prof[c]):
            print(f"  {c:18s} {sheet[c]:12.0f} {prof[c]:13.0f} {sheet[c] - prof[c]:+11.0f}")
        print(f"  {'composition':18s} {'':12s} {meas - tp:+13.0f}  (measured step - profile-mode kernels)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "h200-sxm")
