"""ExFlow vs the standard expert parallelism (issue 13 item 6): configs/exflow-gpt-moe-ep8.yaml
with 8 and 64 experts per layer (the paper's range; `python benchmarks/bench_exflow.py 8 16 32 64`
for all four) at EP8, each run as the standard
dispatch + combine (`standard`), context coherence alone (`coherent_only`) and ExFlow (context
coherence + affinity placement): cross-device routing time (hwsim.validate.exflow.all_to_all_ns),
bytes sent over the links per device, tokens/s. Then the routing alone: copies sent to another
device vs the inter-layer affinity (top-1, 16 experts on 8 devices). Prints figures; asserts
nothing. About 30 s.

    python benchmarks/bench_exflow.py
"""
import sys

from timing import table

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.pipeline import evaluate
from hwsim.validate.exflow import all_to_all_ns
from hwsim.workloads.routing import RoutingSpec, exflow_layers

SYSTEMS = ("standard", "coherent_only", "main")


def runs(experts_list):
    rows = []
    for experts in experts_list:
        r = evaluate(load_config(CONFIG_DIR / "exflow-gpt-moe-ep8.yaml",
                                 [f"workload.model.moe.n_experts={experts}"]))
        results = {"main": r.main, **r.baselines}
        base = results["standard"]
        for name in SYSTEMS:
            s = results[name]
            rows.append([experts, "exflow" if name == "main" else name,
                         f"{all_to_all_ns(s) / 1e3:.1f}",
                         f"{1 - all_to_all_ns(s) / all_to_all_ns(base):+.0%}",
                         f"{s.metrics.bytes.get('link', 0.0) / 1e6:.3f}",
                         f"{s.metrics.throughput_per_s:,.0f}",
                         f"{s.metrics.throughput_per_s / base.metrics.throughput_per_s:.3f}x"])
    table("ExFlow vs standard, GPT MoE decode at EP8 (DGX A100)",
          ["experts", "system", "all-to-all us", "less routing", "link MB/device", "tokens/s",
           "vs standard"], rows)


def affinity_sweep():
    rows = []
    layers = tuple(range(12))
    for a in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        r = RoutingSpec(distribution="uniform", affinity=a)
        out = []
        for placement in ("contiguous", "affinity"):
            x = exflow_layers(r, 8192, 16, 1, layers, 8, placement, 5000)
            out.append(sum(sum(y.dispatch_copies) for y in x[1:]) / (11 * 8192))
        rows.append([a, f"{out[0]:.3f}", f"{out[1]:.3f}", f"{(1 - a) * 7 / 8:.3f}"])
    table("Copies sent to another device, top-1, 16 experts on 8 devices",
          ["affinity", "remote copies contiguous", "remote copies affinity",
           "closed form (1-a)(1-1/8)"], rows)


if __name__ == "__main__":
    runs([int(x) for x in sys.argv[1:]] or [8, 64])
    affinity_sweep()
