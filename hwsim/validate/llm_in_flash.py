"""LLM in a flash (Alizadeh et al., Apple, arXiv 2312.11514; ACL 2024): OPT 6.7B with half the
model in DRAM, FFN neurons streamed from flash (configs/llm-in-flash.yaml; hw/flash.py;
mappers/flash.py). Speed-ups from full runs (main and baselines); I/O latencies from the flash
closed form over the mapper's plan; the DRAM share from the plan."""
from __future__ import annotations

import functools

from hwsim.validate import Between, Within, claim

PAPER = "LLM in a flash (Alizadeh et al., arXiv 2312.11514)"
CONFIG = "configs/llm-in-flash.yaml"


@functools.cache
def _run():
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / "llm-in-flash.yaml"))


def _latency(name: str) -> float:
    r = _run()
    return (r.main if name == "main" else r.baselines[name]).metrics.iteration_latency_s


# the paper's "predictor, no windowing" row (Table 2): each token reads its own predicted neurons
NO_WINDOW = ("mapper.window=1", "mapper.window_resident=0.10", "mapper.window_new=0.10")


@functools.cache
def _plan(dtype: str, bundling: bool, extra: tuple[str, ...] = ()):
    """(plan, flash spec) of the config's sparse loading at `dtype`."""
    return _config_plan("llm-in-flash.yaml", (f"workload.dtype={dtype}",
                                              f"mapper.bundling={str(bundling).lower()}", *extra))


def _config_plan(name: str, overrides: tuple[str, ...] = ()):
    """(plan, flash spec) of shipped config `name`'s sparse loading, with `overrides`."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.mappers.flash import flash_plan
    from hwsim.mappers.partition import partition
    cfg = load_config(CONFIG_DIR / name, overrides=list(overrides))
    graph = partition(cfg.main.workload).devices[0].graph
    return flash_plan(graph, cfg.main.mapper.options), cfg.main.hardware.flash


def io_latency_ms(dtype: str, bundling: bool, extra: tuple[str, ...] = ()) -> float:
    """Flash read time per token: each layer's misses in chunks (hw/flash.py closed form)."""
    plan, flash = _plan(dtype, bundling, extra)
    per_layer = plan.new_neurons_per_layer * plan.neuron_bytes
    return plan.ffn_layers * flash.read_time_ns(per_layer, plan.chunk_bytes) / 1e6


@claim(id="llm-in-flash.cpu_speedup_vs_naive", system="LLM in a flash",
       claim="4-5x faster inference than naive loading on the CPU (model twice the DRAM)",
       source=f"{PAPER}, abstract (v1) and section 7; Table 3: OPT 6.7B CPU 3182 ms naive vs 669 ms",
       config=f"{CONFIG}: baseline cpu-naive vs main (M1 Max CPU, fp32)",
       metric="naive token latency / sparse (predictor + window + bundling) token latency",
       published=4.5, unit="x",
       band=Between(2.8, 6.5, "4-5x, +-30% (issue 16): 2.8-6.5x. Not reproduced: our CPU computes a "
                    "token at its RAM roofline (200 GB/s: 134 ms naive, ~70 ms sparse), the paper's "
                    "fp32 PyTorch CPU takes 986 / 506 ms (Table 3), so its speed-up is held down by "
                    "compute that flash loading does not touch; ours is I/O-bound: 4.5 s of naive "
                    "fp32 reads (26.6 GB at 6.1 GB/s; the paper's naive I/O uses the 13.4 GB fp16 "
                    "size) against ~126 ms sparse. No constant stands in for PyTorch's CPU overhead"))
def _():
    return _latency("cpu-naive") / _latency("main")


@claim(id="llm-in-flash.gpu_speedup_vs_naive", system="LLM in a flash",
       claim="20-25x faster inference than naive loading on the GPU (model twice the memory)",
       source=f"{PAPER}, abstract (v1) and section 7; Table 3: OPT 6.7B GPU 2218 ms naive vs 84 ms",
       config=f"{CONFIG}: baseline gpu-naive vs baseline gpu (RTX 4090, bf16)",
       metric="naive token latency / sparse token latency", published=22.5, unit="x",
       band=Between(14.0, 32.5, "20-25x, +-30% (issue 16): 14-32.5x"))
def _():
    return _latency("gpu-naive") / _latency("gpu")


@claim(id="llm-in-flash.io_windowing_no_bundling", system="LLM in a flash",
       claim="predictor + windowing without bundling: 0.2 GB per token from flash at 1.25 GB/s, "
             "164 ms of I/O (OPT 6.7B, 16 bit, M1 Max)",
       source=f"{PAPER}, Table 2, fourth row",
       config=f"{CONFIG} with workload.dtype=fp16, mapper.bundling=false (flash read time of the "
              "window misses, 8 KiB chunks)",
       metric="flash I/O per token", published=164.0, unit="ms",
       band=Within(0.30, "+-30%. The flash latency constant comes from Table 2's bundled row "
                   "(16 KiB at 2.25 GB/s); this unbundled row is a prediction of the closed form"))
def _():
    return io_latency_ms("fp16", False)


@claim(id="llm-in-flash.io_predictor_no_window", system="LLM in a flash",
       claim="predictor without windowing or bundling: 0.9 GB per token from flash at 1.25 GB/s, "
             "738 ms of I/O (OPT 6.7B, 16 bit, M1 Max)",
       source=f"{PAPER}, Table 2, third row",
       config=f"{CONFIG} with workload.dtype=fp16, mapper.bundling=false, window=1, "
              "window_resident=window_new=0.10 (each token reads its predicted neurons)",
       metric="flash I/O per token", published=738.0, unit="ms",
       band=Within(0.30, "+-30%; a prediction of the closed form at 8 KiB chunks, as the row above"))
def _():
    return io_latency_ms("fp16", False, NO_WINDOW)


@claim(id="llm-in-flash.bundling_io_gain", system="LLM in a flash",
       claim="row-column bundling doubles the chunk and about halves the I/O latency",
       source=f"{PAPER}, Table 2 (164 ms -> 87 ms, OPT 6.7B 16 bit on M1 Max)",
       config=f"{CONFIG} with workload.dtype=fp16, mapper.bundling=false / true",
       metric="I/O latency without bundling / with bundling", published=164 / 87, unit="x",
       band=Within(0.30, "+-30%; the bundled point (87 ms) is the one the flash latency was solved "
                   "from, so this row tests the unbundled prediction only"))
def _():
    return io_latency_ms("fp16", False) / io_latency_ms("fp16", True)


@claim(id="llm-in-flash.opt_dram_share", system="LLM in a flash",
       claim="DRAM holds 52.1% of OPT 6.7B (embeddings 3%, attention 32.3%, predictor 1.25%, "
             "FFN window 0.24 x 64.62%)",
       source=f"{PAPER}, section 4 (Results for OPT 6.7B)",
       config=f"{CONFIG}: main's plan",
       metric="weights kept in DRAM / model weights (no KV, no activations)", published=0.521,
       unit="fraction",
       band=Within(0.05, "+-5%: an accounting check of the window plan against the paper's breakdown "
                   "(the window shares 24% and the predictor rank are inputs)"))
def _():
    plan, _ = _plan("fp32", True)
    return plan.dram_weight_bytes / plan.model_bytes


__all__ = ["io_latency_ms"]


FALCON = "configs/llm-in-flash-falcon.yaml"


@functools.cache
def falcon_plan():
    """The plan of configs/llm-in-flash-falcon.yaml's sparse loading (Falcon 7B, fp32)."""
    return _config_plan("llm-in-flash-falcon.yaml")[0]


@claim(id="llm-in-flash.falcon_dram_share", system="LLM in a flash",
       claim="DRAM holds 52.93% of Falcon 7B (embeddings 4.2%, attention 19.4%, predictors 4%, "
             "FFN window of the last 4 tokens 0.33 x 76.8%)",
       source=f"{PAPER}, section 4.2 (Results for Falcon 7B Model)",
       config=f"{FALCON}: main's plan (configs/models/falcon-7b.yaml, LM head tied)",
       metric="weights kept in DRAM / model weights (no KV, no activations)", published=0.5293,
       unit="fraction",
       band=Within(0.05, "+-5%: an accounting check of the window plan against the paper's breakdown "
                   "(the window share 33% and the mean predictor rank 368 are inputs); the paper's "
                   "Falcon latency table was not read, so no Falcon speed-up row"))
def _():
    plan = falcon_plan()
    return plan.dram_weight_bytes / plan.model_bytes
