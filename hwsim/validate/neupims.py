"""NeuPIMs (Heo et al., "NeuPIMs: NPU-PIM Heterogeneous Acceleration for Batched LLM Inferencing",
ASPLOS'24): the headline ratios, the ablation's direction, and the PIM cost model against the
NeuPIMs simulator's own constants (research/pim_anchors.md sections 1.2, 1.3, 1.9 and 7)."""
from __future__ import annotations

import functools

from hwsim.validate import Between, Exact, Within, claim

SYSTEM = "NeuPIMs"
PAPER = "NeuPIMs (Heo et al., ASPLOS'24)"
CONFIG = "configs/neupims.yaml"


@functools.cache
def neupims_run():
    """configs/neupims.yaml with its three baselines, evaluated once per process."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / "neupims.yaml"))


@functools.cache
def dual_row_buffer_only_tokens_per_s() -> float:
    """NeuPIMs with dual row buffers but without sub-batch interleaving."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import run_system
    cfg = load_config(CONFIG_DIR / "neupims.yaml", ["mapper.sub_batch_interleaving=false"])
    return run_system(cfg.main).metrics.throughput_tokens_per_s


RATIO_BAND = ("the abstract's ratio is one number for GPT3-7B..175B over ShareGPT and Alpaca; "
              "per-model figures were not retrieved (pim_anchors.md 1.9), so ±25%")


@claim(id="neupims.speedup_over_npu_pim_naive", system=SYSTEM,
       claim="NeuPIMs serves 1.6x the tokens/s of naive NPU+PIM (blocked mode)",
       source=f"{PAPER}, abstract", config=CONFIG,
       metric="throughput ratio NeuPIMs / npu_pim_naive (GPT3-7B, TP 4, batch 512)",
       published=1.6, unit="x", band=Within(0.25, RATIO_BAND))
def _():
    return neupims_run().speedup()["npu_pim_naive"]


@claim(id="neupims.speedup_over_npu_only", system=SYSTEM,
       claim="NeuPIMs serves 2.4x the tokens/s of the NPU-only system",
       source=f"{PAPER}, abstract (arXiv v1: 2.3x)", config=CONFIG,
       metric="throughput ratio NeuPIMs / npu_only (GPT3-7B, TP 4, batch 512)",
       published=2.4, unit="x", band=Within(0.25, RATIO_BAND))
def _():
    return neupims_run().speedup()["npu_only"]


@claim(id="neupims.speedup_over_gpu", system=SYSTEM,
       claim="NeuPIMs serves 3x the tokens/s of an A100 (GPU-only)",
       source=f"{PAPER}, abstract", config=CONFIG,
       metric="throughput ratio NeuPIMs / gpu (A100 40 GB model)",
       published=3.0, unit="x",
       band=Between(2.0, 4.0, "the paper's A100 is a measurement of PyTorch; ours is the GPU "
                    "model, so a sanity band of 2-4x"))
def _():
    return neupims_run().speedup()["gpu"]


@claim(id="neupims.ablation_sub_batch_interleaving", system=SYSTEM,
       claim="Sub-batch interleaving adds throughput on top of dual row buffers",
       source=f"{PAPER}, design (sub-batch interleaving); direction only",
       config=f"{CONFIG} vs --set mapper.sub_batch_interleaving=false",
       metric="throughput ratio dual+SBI / dual without SBI", published=None, unit="x",
       band=Between(1.0, None, "a direction: each mechanism must not lose throughput"))
def _():
    return neupims_run().main.metrics.throughput_tokens_per_s / dual_row_buffer_only_tokens_per_s()


@claim(id="neupims.ablation_dual_row_buffer", system=SYSTEM,
       claim="Dual row buffers without interleaving are no slower than blocked mode",
       source=f"{PAPER}, design (dual row buffers); direction only",
       config=f"{CONFIG} --set mapper.sub_batch_interleaving=false vs npu_pim_naive",
       metric="throughput ratio dual without SBI / blocked", published=None, unit="x",
       band=Between(1.0, None, "a direction: each mechanism must not lose throughput"))
def _():
    blocked = neupims_run().baselines["npu_pim_naive"].metrics.throughput_tokens_per_s
    return dual_row_buffer_only_tokens_per_s() / blocked


# --------------------------------------------------------------------------- PIM micro-targets
# The NeuPIMs simulator's NewtonSim DRAM config and its MHA latency estimator (pim_anchors.md
# 1.2-1.3): numbers derived from the simulator's source, i.e. a peer's, not a paper table.

SIMULATOR = "NeuPIMs simulator (casys-kaist/NeuPIMs), extern/NewtonSim config"
PIM_BUILDER = "hwsim.hw.pim.PIMSpec() (defaults: NeuPIMs' HBM2 PIM)"


@claim(id="neupims.pim_internal_bandwidth", system=SYSTEM,
       claim="In-bank GEMV bandwidth is 16x the channel's external bandwidth",
       source=f"{SIMULATOR}: 16 FP16 MACs x 32 banks per 2-cycle COMP", config=PIM_BUILDER,
       metric="internal / external bandwidth per channel", published=16.0, unit="x",
       band=Exact("a closed form of the same DRAM organisation: any difference is a bug"))
def _():
    from hwsim.hw.pim import PIMSpec, internal_bw_gbps_per_channel
    pim = PIMSpec()
    return internal_bw_gbps_per_channel(pim) / pim.dram.peak_bw_gbps_per_channel


@claim(id="neupims.gwrite_cycles", system=SYSTEM,
       claim="A GWRITE takes (tCCD_S + tCCD_L) x 32 = 96 cycles",
       source=f"{SIMULATOR}: timing.cc GWRITE latency", config=PIM_BUILDER,
       metric="GWRITE latency", published=96.0, unit="cycles",
       band=Exact("the same formula over the same HBM2 timings: any difference is a bug"))
def _():
    from hwsim.hw.pim import PIMSpec, gwrite_cycles
    return gwrite_cycles(PIMSpec())


@claim(id="neupims.attention_cycles", system=SYSTEM,
       claim="PIM attention of one request (GPT3-7B at TP 4, context 1024, one channel) "
             "takes about 25,352 cycles",
       source="NeuPIMs simulator, Scheduler.cc MHA latency estimator (100-cycle GWRITEs, "
              "184-cycle GEMV tiles)",
       config=f"{PIM_BUILDER}; Attention(heads=8, head_dim=128, context 1024)",
       metric="q.K + s.V cycles per request per layer", published=25_352.0, unit="cycles",
       band=Between(25_352 / 2, 25_352 * 2, "the estimator uses two fixed constants, ours the "
                    "DRAM command timings: within 2x"))
def _():
    from hwsim.hw.pim import PIMSpec, attention_cycles_per_request
    from hwsim.workloads.ops import Attention
    attn = Attention((1,), (1024,), heads=8, kv_heads=8, head_dim=128)
    pim = PIMSpec()
    score = attention_cycles_per_request(pim, attn, False)
    context = attention_cycles_per_request(pim, attn, True)
    return float(score[0] + context[0])
