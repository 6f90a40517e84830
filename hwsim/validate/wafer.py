"""Cerebras Inference on wafer-scale engines (WSE-3, CS-3 systems): single-stream decode speeds
Cerebras published for Llama-3.1 with native 16-bit weights (research/system_anchors.md B.2),
and the check that SRAM bandwidth is not what bounds them.

Ours: configs/wse3-llama3-8b.yaml (1 wafer), wse3-llama3-70b.yaml (4), wse3-llama3.1-405b.yaml
(21): every layer's weights stationary in a region of a wafer's SRAM, the activations over the
fabric and the wafer-to-wafer links (hwsim/mappers/wafer.py, hwsim/hw/wafer.py). The per-hop
latency (one cycle at 1.1 GHz) and the wafer link (150 GB/s, 1 us) are assumed, not fitted.
"""
from __future__ import annotations

import functools

from hwsim.validate import Between, Within, claim

SYSTEM = "Cerebras WSE"
LAUNCH = ("Cerebras, \"Introducing Cerebras Inference: AI at Instant Speed\", 27 Aug 2024 "
          "(https://cerebras.ai/blog/introducing-cerebras-inference-ai-at-instant-speed)")
NOV = ("Cerebras, Llama 3.1 405B on Cerebras Inference, Nov 2024, reported by Tom's Hardware, "
       "2024-11-20")
BAND = ("±25% (issue 15): a served speed (software, batching of one stream, sampling) against a "
        "hardware model of the decode step")


@functools.cache
def wse_run(config: str, *overrides: str):
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / config, list(overrides))).main


def tok_s(config: str) -> float:
    return wse_run(config).metrics.throughput_tokens_per_s


for _model, _config, _published, _source in (
        ("llama3.1-8b", "wse3-llama3-8b.yaml", 1800.0, LAUNCH),
        ("llama3.1-70b", "wse3-llama3-70b.yaml", 450.0, LAUNCH),
        ("llama3.1-405b", "wse3-llama3.1-405b.yaml", 969.0, NOV)):
    claim(id=f"wse.{_model}.decode_tok_s", system=SYSTEM,
          claim=f"Cerebras Inference decodes {_model} (16-bit weights) at {_published:,.0f} tokens/s "
                "per stream",
          source=_source, config=f"configs/{_config}", metric="tokens/s, batch 1, context 2,048",
          published=_published, unit="tok/s", band=Within(0.25, BAND))(lambda c=_config: tok_s(c))


WAFERLLM = ("WaferLLM (He et al., \"WaferLLM: A Wafer-Scale LLM Inference System\", arXiv 2502.04563 "
            "v2), abstract: 2,700 tok/s per request on Llama3-8B, 16-bit, on a WSE-2 (the v3 "
            "abstract gives ratios only)")


@claim(id="wse.waferllm.llama3-8b.wse2_decode_tok_s", system=SYSTEM,
       claim="WaferLLM decodes Llama3-8B (16-bit) at 2,700 tokens/s per request on a WSE-2",
       source=WAFERLLM, config="configs/wse3-llama3-8b.yaml --set hardware.wafer=wse-2",
       metric="tokens/s, batch 1, context 2,048 (WaferLLM's context not retrieved)",
       published=2700.0, unit="tok/s",
       band=Within(0.25, "±25%, as the Cerebras rows: a research system's measured decode speed "
                   "against a hardware model of the decode step"))
def _():
    return wse_run("wse3-llama3-8b.yaml", "hardware.wafer=wse-2").metrics.throughput_tokens_per_s


def _terms(config: str) -> dict[str, float]:
    from hwsim.mappers.wafer import token_latency_terms
    return token_latency_terms(wse_run(config).schedule)


@claim(id="wse.llama3.1-70b.sram_bandwidth_headroom", system=SYSTEM,
       claim="At 450 tok/s, Llama-3.1-70B streams 450 x 140 GB = 63 TB/s of weights, far below "
             "4 wafers x 21 PB/s of SRAM bandwidth",
       source=f"{LAUNCH}; arithmetic in research/system_anchors.md B.2 (issue 15)",
       config="configs/wse3-llama3-70b.yaml",
       metric="450 tok/s x our SRAM bytes per token / (wafers x SRAM bandwidth)",
       published=63e12 / (4 * 21e15), unit="share",
       band=Between(0.0, 0.01, "far below 1: SRAM bandwidth cannot be what limits 450 tok/s"))
def _():
    r = wse_run("wse3-llama3-70b.yaml")
    spec = r.system.hardware.specs("wafer")[0]
    return 450.0 * r.metrics.bytes["wafer_sram"] / (spec.wafers * spec.sram_bw_pb_per_s * 1e15)


@claim(id="wse.llama3.1-70b.sram_not_binding", system=SYSTEM,
       claim="Single-stream decode on wafers is limited by the pipeline's per-token latency, not SRAM "
             "bandwidth",
       source="research/system_anchors.md B.2 (from the 63 TB/s << 84 PB/s arithmetic)",
       config="configs/wse3-llama3-70b.yaml",
       metric="SRAM-bandwidth time of our per-token chain / its largest other term "
              "(compute, fabric hops, wafer links)",
       published=None, unit="x",
       band=Between(0.0, 1.0, "below 1: another bound binds"))
def _():
    t = _terms("wse3-llama3-70b.yaml")
    return t["sram"] / max(v for k, v in t.items() if k != "sram")
