"""PIM-GPT (Wu, Wang & Lu, "PIM-GPT: A Hybrid Process-in-Memory Accelerator for Autoregressive
Transformers", arXiv 2310.09385 v2; npj Unconventional Computing 2024): the abstract's ranges over
its 8 GPT models (research/pim_anchors.md sections 3.4 and 7.9).

"41-137x speedup over GPU" and "123-383x energy efficiency" (v2) are ranges over the 8 models, so
each model's ratio must lie in the range; "growing with model size" is how issue 14 reads the
range (pim_anchors.md 7.9 tags that trend unverified). Ours: configs/pim-gpt.yaml with the model
swapped, PIM-GPT against its `gpu` baseline (a T4 running Hugging Face-style eager PyTorch, the
config says why), one decode step at context 512. The CPU claims are not reproduced: hwsim has
no CPU model.
"""
from __future__ import annotations

import functools

from hwsim.validate import Between, Claim, claim, register
from hwsim.validate.gpu_fidelity import GPU_ENERGY_LOW

SYSTEM = "PIM-GPT"
PAPER = "PIM-GPT (Wu, Wang & Lu, arXiv 2310.09385 v2), abstract"
CONFIG = "configs/pim-gpt.yaml"
# The paper's 8 models, smallest first (parameters: hwsim/validate/model_zoo.py).
MODELS = ("gpt2-small", "gpt3-125m", "gpt3-350m", "gpt2-medium", "gpt3-760m", "gpt2-large",
          "gpt3-1.3b", "gpt2-xl")
GPU = "gpu"


@functools.cache
def pim_gpt_run(model: str):
    """configs/pim-gpt.yaml for `model`, with its baselines, evaluated once per process."""
    from hwsim.config.loader import load_config
    from hwsim.configs import CONFIG_DIR
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG_DIR / "pim-gpt.yaml", [f"workload.model={model}"]))


def speedup(model: str, baseline: str = GPU) -> float:
    return pim_gpt_run(model).speedup()[baseline]


def energy_efficiency(model: str, baseline: str = GPU) -> float:
    """Energy per token of the baseline / PIM-GPT's."""
    r = pim_gpt_run(model)
    return r.baselines[baseline].metrics.energy_per_token_j / r.main.metrics.energy_per_token_j


SPEEDUP_BAND = ("the abstract's range over the 8 models: every model's speed-up lies in it; the "
                "paper's T4 is a measurement (software stack not retrieved), ours the GPU model "
                "running eager PyTorch")
ENERGY_BAND = ("the abstract's (v2) range over the 8 models: every model's ratio lies in it; the "
               "paper's GPU energy is a measurement, ours idle power x time + dynamic energy"
               + GPU_ENERGY_LOW)

for _model in MODELS:
    claim(id=f"pim-gpt.speedup_over_gpu.{_model}", system=SYSTEM,
          claim=f"PIM-GPT decodes {_model} 41-137x faster than the GPU (T4)", source=PAPER,
          config=f"{CONFIG} --set workload.model={_model}",
          metric="tokens/s ratio pim_gpt / gpu (T4, eager), batch 1, context 512",
          published=None, unit="x", band=Between(41.0, 137.0, SPEEDUP_BAND))(
              lambda m=_model: speedup(m))
    claim(id=f"pim-gpt.energy_over_gpu.{_model}", system=SYSTEM,
          claim=f"PIM-GPT spends 123-383x less energy per {_model} token than the GPU (T4)",
          source=f"{PAPER} (v1: 339-1085x)", config=f"{CONFIG} --set workload.model={_model}",
          metric="energy per token ratio gpu (T4, eager) / pim_gpt", published=None, unit="x",
          band=Between(123.0, 383.0, ENERGY_BAND))(lambda m=_model: energy_efficiency(m))


@claim(id="pim-gpt.speedup_grows_with_model_size", system=SYSTEM,
       claim="PIM-GPT's speed-up over the GPU grows with model size (41x at the smallest model, "
             "137x at the largest)",
       source=f"{PAPER}, range read as a trend by issue 14 (pim_anchors.md 7.9: unverified)",
       config=f"{CONFIG}, gpt2-xl vs gpt2-small",
       metric="speed-up of the largest model (gpt2-xl) / of the smallest (gpt2-small)",
       published=137 / 41, unit="x",
       band=Between(1.0, None, "a direction: the ratio of the range's ends if the trend holds, "
                    "any value above 1 accepted"))
def _():
    return speedup(MODELS[-1]) / speedup(MODELS[0])


NO_CPU = ("hwsim has no CPU model (no CPU component kind): the CPU baseline's speed-up and energy "
          "ratios are not computed")
register(Claim(id="pim-gpt.speedup_over_cpu", system=SYSTEM,
               claim="PIM-GPT decodes 631-1,074x faster than the CPU", source=PAPER, config=CONFIG,
               metric="tokens/s ratio pim_gpt / CPU", published=None, unit="x",
               band=Between(631.0, 1074.0, "the abstract's range over the 8 models"), ours=None,
               not_reproduced=NO_CPU))
register(Claim(id="pim-gpt.energy_over_cpu", system=SYSTEM,
               claim="PIM-GPT spends 320-602x less energy per token than the CPU",
               source=f"{PAPER} (v1: 890-1632x)", config=CONFIG,
               metric="energy per token ratio CPU / pim_gpt", published=None, unit="x",
               band=Between(320.0, 602.0, "the abstract's (v2) range over the 8 models"), ours=None,
               not_reproduced=NO_CPU))
