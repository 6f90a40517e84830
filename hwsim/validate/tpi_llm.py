"""TPI-LLM (Li, Feng, Guizani, Yu, arXiv 2410.00531, abstract): LLaMA-2-70B over 8 CPU edge devices
(configs/tpi-llm-70b.yaml; mappers/tpi.py). Peak memory from the tpi mapper's window plan of one
device; latencies from full runs; the star/ring comparison from the all-reduce of one token's
hidden state lowered on the config's topology (hw/interconnect/collectives.py)."""
from __future__ import annotations

import functools

from hwsim.validate import Between, Claim, Within, claim, register

TPI = "TPI-LLM (Li et al., arXiv 2410.00531), abstract"
CONFIG = "configs/tpi-llm-70b.yaml"


@functools.cache
def _run():
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / "tpi-llm-70b.yaml"))


@functools.cache
def _plans():
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.mappers.partition import partition
    from hwsim.mappers.tpi import memory_plan
    cfg = load_config(CONFIG_DIR / "tpi-llm-70b.yaml")
    graph = partition(cfg.main.workload).devices[0].graph
    opt = cfg.main.mapper.options
    return memory_plan(graph, opt.window), memory_plan(graph, opt.window, memory_schedule=False)


@claim(id="tpi-llm.llama2-70b_peak_memory", system="TPI-LLM",
       claim="LLaMA-2-70B needs only 3.1 GB of memory per device (8 devices, sliding window)",
       source=TPI, config=CONFIG, metric="peak RAM of one device: window of 2 blocks + KV + activations",
       published=3.1, unit="GB",
       band=Within(0.10, "±10% (issue 16). Not reproduced: the window of 2 fp32 blocks of one 8-way "
                   "slice is 0.48 GB (the largest pair, an MLP block 352 MB + an attention block 75 MB), "
                   "KV 0.04 GB; the published figure is a measured process footprint that includes "
                   "the PyTorch runtime and, on the master, the unsliced embedding and head (1.05 GB "
                   "each in fp32), none of which the plan holds; no constant was added for them"))
def _():
    return _plans()[0].peak_bytes / 1e9


@claim(id="tpi-llm.peak_memory_reduction", system="TPI-LLM",
       claim="the memory scheduler cuts LLaMA-2-70B's peak memory per device by 90%",
       source=TPI, config=f"{CONFIG} with mapper.memory_schedule=false as the reference",
       metric="1 - peak with the window / peak with every weight resident", published=0.90, unit="fraction",
       band=Between(0.90, None, "a direction: at least 90% less (ours omits the runtime footprint "
                    "common to both, which raises the ratio)"))
def _():
    win, full = _plans()
    return 1 - win.peak_bytes / full.peak_bytes


@claim(id="tpi-llm.token_latency_vs_accelerate", system="TPI-LLM",
       claim="over 80% less token latency than Accelerate",
       source=TPI, config=f"{CONFIG}: main vs baseline accelerate (blocking disk offload on one device)",
       metric="1 - token latency / Accelerate-like token latency", published=0.80, unit="fraction",
       band=Between(0.80, None, "a direction (over 80% less); the baseline is our reading of "
                    "Accelerate's disk offload: blocking reads, one device"))
def _():
    r = _run()
    return 1 - r.main.metrics.iteration_latency_s / r.baselines["accelerate"].metrics.iteration_latency_s


@claim(id="tpi-llm.star_beats_ring_allreduce", system="TPI-LLM",
       claim="link latency, not bandwidth, dominates the all-reduce, so a star beats a ring",
       source="TPI-LLM (arXiv 2410.00531), abstract and section 3",
       config=f"{CONFIG}'s topology, one token's hidden state (8192 x fp32) over 8 devices",
       metric="ring all-reduce time / star all-reduce time", published=None, unit="x",
       band=Between(1.0, None, "a direction: > 1 means the star is faster"))
def _():
    return ring_over_star()


def ring_over_star(nbytes: float = 8192 * 4) -> float:
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.hw.interconnect.collectives import estimated_time_ns, lower_all_reduce
    topo = load_config(CONFIG_DIR / "tpi-llm-70b.yaml").main.hardware.topology.root
    net, group = topo.build(), list(range(topo.num_devices))
    t = {a: estimated_time_ns(lower_all_reduce(net, group, nbytes, a)) for a in ("ring", "star")}
    return t["ring"] / t["star"]


@functools.cache
def _prefill_run():
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / "tpi-llm-70b.yaml", overrides=["workload.phase=prefill"]))


@claim(id="tpi-llm.ttft_vs_accelerate", system="TPI-LLM",
       claim="over 80% less time-to-first-token than Accelerate", source=TPI,
       config=f"{CONFIG} with workload.phase=prefill (the 512-token context as the prompt): main vs "
              "baseline accelerate", metric="1 - TTFT / Accelerate-like TTFT", published=0.80,
       unit="fraction",
       band=Between(0.80, None, "a direction (over 80% less). Not reproduced: a 512-token prompt's "
                    "all-reduce carries 16 MB, bandwidth-bound on 300 Mbps ports, and the star's root "
                    "port moves 2 (p-1) B of it: TTFT 1,031 s against 361 s for the one-device "
                    "blocking offload. With the ring (or `auto`) the same system takes 156 s, 57% "
                    "less, still short of 80%. The paper's prompt length and network were not found; "
                    "both are assumed here"))
def _():
    r = _prefill_run()
    return 1 - r.main.metrics.iteration_latency_s / r.baselines["accelerate"].metrics.iteration_latency_s
