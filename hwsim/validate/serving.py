"""Serving reproductions (issue 12 item 6).

1. Layered vs chunked prefill on Qwen3-30B-A3B, TP 2 on two H100s, 100 arXiv-summarization-like
   requests at 1.5 req/s (configs/serving-qwen3-layered.yaml, configs/serving-qwen3-chunked.yaml):
   the means of the scale-snu/layered-prefill README ("VS. vLLM (v0.10.2)": TTFT 1,018.75 ->
   712.84 ms, TPOT 19.71 -> 15.09 ms, E2E 4,904.02 -> 3,525.08 ms) and the paper's expert-load
   traffic (+12% to +39% for chunked prefill) and energy per token (-8% to -22% for layered;
   Lee et al., arXiv 2510.08055, abstract). Judged on the relative change, within +-10
   percentage points (issue 12); the abstract's extremes (TTFT -70%, E2E -41%) are rows of their
   own against the same pair: the two engines differ (vLLM 0.10.2 vs the authors'
   nano-vLLM-based engine) in ways hwsim does not model, so absolute times are reported, not judged.
2. Continuous vs static batching on LLaMA-2-7B / one A100 at rising load
   (configs/serving-llama2-7b-a100.yaml): the throughput gap at a load static batching cannot
   carry, and the latency knee (the highest rate whose mean E2E latency stays under twice its
   value at the lowest rate) — directions only, as Orca (Yu et al., OSDI'22, section 6) and vLLM
   (Kwon et al., SOSP'23, section 6) state them against request-level batching.
"""
from __future__ import annotations

import functools

from hwsim.validate import Between, claim

README = "scale-snu/layered-prefill README, 'VS. vLLM (v0.10.2)' (Qwen3-30B-A3B, arXiv trace, 1.5 req/s, 100 prompts)"
PAPER = "Lee et al., 'From Tokens to Layers' (arXiv 2510.08055; MLSys 2026), abstract"
PAIR = "configs/serving-qwen3-layered.yaml vs configs/serving-qwen3-chunked.yaml"
PP = ("+-10 percentage points around the published relative change (issue 12); ours is layered "
      "/ chunked - 1 of the two simulated runs of the same 100-request stream")
ENGINE = ("; absolute means (ours chunked -> layered) are in the report of `hwsim run`. Both runs "
          "model no per-iteration CPU/scheduler time (none is in hwsim's GPU model), which the "
          "reference engines spend on every iteration")


@functools.cache
def layered_pair() -> dict[str, dict]:
    """{'chunked': serving metrics, 'layered': serving metrics} of the two shipped configs."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.serving import _coster_of, _serve
    from hwsim.serving.metrics import serving_metrics
    out = {}
    for name in ("chunked", "layered"):
        system = load_config(CONFIG_DIR / f"serving-qwen3-{name}.yaml").main
        run = _serve(system, system.scenario, "", _coster_of(system))
        out[name] = serving_metrics(run, system, system.scenario)
    return out


def _change(key: str) -> float:
    pair = layered_pair()
    return pair["layered"][key]["mean"] / pair["chunked"][key]["mean"] - 1


@claim(id="layered-prefill.ttft_change", system="Layered prefill",
       claim="layered prefill cuts mean TTFT from 1,018.75 to 712.84 ms (-30.0%) against vLLM's chunked prefill",
       source=README, config=PAIR, metric="mean TTFT layered / chunked - 1", published=712.84 / 1018.75 - 1,
       unit="fraction", band=Between(712.84 / 1018.75 - 1 - 0.10, 712.84 / 1018.75 - 1 + 0.10, PP + ENGINE))
def _():
    return _change("ttft_s")


@claim(id="layered-prefill.tpot_change", system="Layered prefill",
       claim="layered prefill cuts mean TPOT from 19.71 to 15.09 ms (-23.4%)",
       source=README, config=PAIR, metric="mean TPOT layered / chunked - 1", published=15.09 / 19.71 - 1,
       unit="fraction", band=Between(15.09 / 19.71 - 1 - 0.10, 15.09 / 19.71 - 1 + 0.10, PP + ENGINE))
def _():
    return _change("tpot_s")


@claim(id="layered-prefill.e2e_change", system="Layered prefill",
       claim="layered prefill cuts mean E2E latency from 4,904.02 to 3,525.08 ms (-28.1%)",
       source=README, config=PAIR, metric="mean E2E layered / chunked - 1", published=3525.08 / 4904.02 - 1,
       unit="fraction", band=Between(3525.08 / 4904.02 - 1 - 0.10, 3525.08 / 4904.02 - 1 + 0.10, PP + ENGINE))
def _():
    return _change("e2e_s")


EXTREME = ("+-10 percentage points around the paper's extreme (issue 12). The abstract's 'up to' is "
           "the best case over its evaluation (two MoE models, two traces, several request rates), "
           "which it does not attribute to one setting; ours is the one setting the README publishes "
           "(Qwen3-30B-A3B, arXiv trace, 1.5 req/s), layered / chunked - 1")


@claim(id="layered-prefill.ttft_change_paper_extreme", system="Layered prefill",
       claim="layered prefill lowers TTFT by up to 70% against chunked prefill",
       source=PAPER, config=PAIR, metric="mean TTFT layered / chunked - 1", published=-0.70,
       unit="fraction", band=Between(-0.70 - 0.10, -0.70 + 0.10, EXTREME + ENGINE))
def _():
    return _change("ttft_s")


@claim(id="layered-prefill.e2e_change_paper_extreme", system="Layered prefill",
       claim="layered prefill lowers end-to-end latency by 41% against chunked prefill",
       source=PAPER, config=PAIR, metric="mean E2E layered / chunked - 1", published=-0.41,
       unit="fraction", band=Between(-0.41 - 0.10, -0.41 + 0.10, EXTREME + ENGINE))
def _():
    return _change("e2e_s")


@claim(id="layered-prefill.chunked_expert_traffic", system="Layered prefill",
       claim="chunked prefill's redundant expert loads raise expert-load traffic by 12% to 39%",
       source=PAPER, config=PAIR,
       metric="routed-expert weight bytes read (memory model, all iterations) chunked / layered - 1",
       published=0.39, unit="fraction",
       band=Between(0.12 - 0.10, 0.39 + 0.10, "the paper's range over two MoE models and two traces, "
                    "+-10 percentage points; its figure for Qwen3 on the arXiv trace is not separated "
                    "in the abstract. Ours counts the bytes of every routed-expert op through the memory "
                    "levels (balanced routing: a decode of D < 16 requests reads 8 D experts per layer)"))
def _():
    pair = layered_pair()
    return pair["chunked"]["expert_weight_bytes"] / pair["layered"]["expert_weight_bytes"] - 1


@claim(id="layered-prefill.energy_per_token_change", system="Layered prefill",
       claim="layered prefill cuts energy per token by 8% to 22%",
       source=PAPER, config=PAIR, metric="energy per output token layered / chunked - 1 (the same "
       "tokens in both, so equal to the paper's energy / (prompt + generated tokens))",
       published=-0.22, unit="fraction",
       band=Between(-0.22 - 0.10, -0.08 + 0.10, "the paper's range over two models and two traces, "
                    "+-10 percentage points; ours is the GPUs' dynamic energy of every op plus idle "
                    "power over the run (hwsim.hw.gpu); caveat: that energy is well below the H200's "
                    "measured board energy (row gpu.h200-sxm.datasheet.step_energy), so a saving "
                    "from moving fewer bytes is understated"))
def _():
    pair = layered_pair()
    return pair["layered"]["energy_per_output_token_j"] / pair["chunked"]["energy_per_output_token_j"] - 1


# ------------------------------------------------------------ continuous vs static batching
BATCHING_CONFIG = "configs/serving-llama2-7b-a100.yaml"
BATCHING_RATES = (1.0, 2.0, 4.0, 8.0, 16.0)      # requests/s
BATCHING_REQUESTS = 300                          # per rate: enough for the queue to build


@functools.cache
def batching_sweep() -> dict[str, list[dict]]:
    """Serving metrics of continuous and static batching at each rate of BATCHING_RATES (the
    shipped LLaMA-2-7B / A100 config, BATCHING_REQUESTS requests)."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.serving import _coster_of, _serve
    from hwsim.serving.metrics import serving_metrics
    out: dict[str, list[dict]] = {}
    for policy in ("continuous", "static"):
        rows = []
        for rate in BATCHING_RATES:
            system = load_config(CONFIG_DIR / "serving-llama2-7b-a100.yaml", [
                f"scenario.arrivals.rate_per_s={rate}", f"scenario.arrivals.num_requests={BATCHING_REQUESTS}",
                f"scenario.policy={{name: {policy}, max_num_seqs: 256}}"]).main
            run = _serve(system, system.scenario, "", _coster_of(system))
            rows.append(serving_metrics(run, system, system.scenario))
        out[policy] = rows
    return out


def knee_rate(rows: list[dict]) -> float:
    """The highest rate of BATCHING_RATES whose mean E2E latency is under twice that of the lowest."""
    base = rows[0]["e2e_s"]["mean"]
    ok = [r for r, m in zip(BATCHING_RATES, rows) if m["e2e_s"]["mean"] < 2 * base]
    return max(ok)


@claim(id="batching.continuous_over_static_throughput", system="Continuous batching",
       claim="iteration-level (continuous) batching serves more tokens/s than request-level "
       "(static) batching once the load exceeds what static batching carries",
       source="Orca (Yu et al., OSDI'22), section 6; vLLM (Kwon et al., SOSP'23), section 6",
       config=f"{BATCHING_CONFIG} at {BATCHING_RATES[-1]:g} req/s, {BATCHING_REQUESTS} requests, "
       "policy continuous vs static", metric="output tokens/s continuous / static",
       published=None, unit="x", band=Between(1.0, None, "a direction: the papers' gaps are against "
                                               "other engines (FasterTransformer, Orca), not one to hold"))
def _():
    s = batching_sweep()
    return s["continuous"][-1]["output_tokens_per_s"] / s["static"][-1]["output_tokens_per_s"]


@claim(id="batching.continuous_knee_later", system="Continuous batching",
       claim="continuous batching's latency knee comes at a higher request rate than static batching's",
       source="Orca (Yu et al., OSDI'22), Fig. 11-12; vLLM (Kwon et al., SOSP'23), Fig. 12",
       config=f"{BATCHING_CONFIG} at {', '.join(f'{r:g}' for r in BATCHING_RATES)} req/s, "
       f"{BATCHING_REQUESTS} requests each", metric="knee rate continuous / static (knee: the highest "
       "rate whose mean E2E is under twice its value at the lowest rate)",
       published=None, unit="x", band=Between(1.0 + 1e-9, None, "a direction: strictly later"))
def _():
    s = batching_sweep()
    return knee_rate(s["continuous"]) / knee_rate(s["static"])
