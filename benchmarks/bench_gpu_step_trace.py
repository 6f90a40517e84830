"""Per-kernel breakdown of measured H200 decoder steps (configs/profiles/h200-sxm/step_trace/):
per kernel class the GPU time inside the CUDA graph, the kernels, and the gaps between kernels,
next to the same kernels measured alone (the profile's microbenchmarks, which include the gap of a
back-to-back repeat of one kernel).

    python benchmarks/bench_gpu_step_trace.py
"""
import csv
import statistics
from collections import defaultdict

from hwsim.hw.gpu_profile import profiles_dir

TRACE = profiles_dir() / "h200-sxm" / "step_trace" / "step_trace.csv"


def kernel_class(name: str) -> str:
    n = name.lower()
    if "splitkreduce" in n:
        return "gemm split-K reduce"
    if "flash" in n:
        return "attention"
    if "nvjet" in n or "gemm" in n or "cutlass" in n:
        return "gemm"
    for key in ("add_rmsnorm", "silu_mul", "rope"):
        if key in n:
            return key
    if "kv_write" in n:
        return "kv_write (KV cache write)"
    if "direct_copy" in n:
        return "copy (KV cache write)"        # harness 1: two copy kernels (K, V)
    return "other"


def steps(path=TRACE) -> dict:
    """(phase, batch, ctx) -> list over replays of the replay's kernel rows."""
    by = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            by[(r["phase"], int(r["batch"]), int(r["ctx"]))][int(r["rep"])].append(r)
    return {k: list(v.values()) for k, v in by.items()}


def summary(replay: list[dict]) -> dict:
    tot, n, gap = defaultdict(float), defaultdict(int), 0.0
    for i, e in enumerate(replay):
        c = kernel_class(e["name"])
        tot[c] += float(e["dur_us"])
        n[c] += 1
        if i:
            prev = replay[i - 1]
            gap += max(0.0, float(e["start_us"]) - float(prev["start_us"]) - float(prev["dur_us"]))
    span = float(replay[-1]["start_us"]) + float(replay[-1]["dur_us"])
    return {"span_us": span, "gap_us": gap, "kernels": len(replay), "busy_us": dict(tot),
            "count": dict(n), "step_us": float(replay[0]["step_us"])}


def main():
    for key, replays in sorted(steps().items()):
        s = sorted((summary(r) for r in replays), key=lambda s: s["span_us"])[len(replays) // 2]
        print(f"\n{key}: graph {s['step_us']:.0f} us (no profiler), traced {s['span_us']:.0f} us, "
              f"{s['kernels']} kernels, gaps {s['gap_us']:.0f} us "
              f"({s['gap_us'] / max(s['kernels'] - 1, 1):.2f} us per kernel boundary)")
        for c in sorted(s["busy_us"], key=lambda c: -s["busy_us"][c]):
            print(f"  {c:24s} n={s['count'][c]:4d} {s['busy_us'][c]:10.1f} us "
                  f"{s['busy_us'][c] / s['count'][c]:9.2f} us/kernel")


if __name__ == "__main__":
    main()
