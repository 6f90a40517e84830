"""GPU baselines against measured GPUs: the held-out A100 GEMM point, and issue 11's fidelity
table as claims — the GPU model's median |error| per kind of kernel (GEMM, attention, decode
step, prefill) and per mode (datasheet, profile) against the committed H200 measurements, and
the same rows against the H100 SXM measurements, a second, independent card
(configs/profiles/<card>/, computed by hwsim.validate.gpu_fidelity).

The fidelity targets are issue 11's "Done when": datasheet mode within 10% median |error| for
GEMMs, decode steps and prefills, profile mode within 5% for every kind. Issue 11 sets no target
for attention in datasheet mode; these rows use the 10% of the other datasheet-mode kinds. Where
the model misses a target the row fails (tests/test_validate.py lists them in KNOWN_MISSED).
Each card's predictions take about 2 s, computed once per process and only when a row of that
card is evaluated (`hwsim validate --only neupims` never computes them).
"""
from __future__ import annotations

import functools
import itertools

from hwsim.validate import Between, Claim, Within, claim, register

SYSTEM = "GPU"


def a100_gemm_ms(m: int, n: int = 12288, k: int = 12288) -> float:
    """fp16 GEMM on the A100 80 GB preset: max(tiled tensor-core time, operands over the
    sustained bandwidth), without the per-kernel launch overhead (a measured kernel time)."""
    import yaml

    from hwsim.configs import PRESETS_DIR
    from hwsim.hw.gpu import GPUSpec, matmul_compute_ns
    data = yaml.safe_load((PRESETS_DIR / "a100-80gb.yaml").read_text())
    data.pop("component")
    gpu = GPUSpec(**data)
    compute = matmul_compute_ns(gpu, "fp16", m, n, k)
    memory = (k * n + m * k + m * n) * 2 / gpu.sustained_bw * 1e9
    return max(compute, memory) / 1e6


@claim(id="gpu.a100_gemm_1024x12288x12288", system=SYSTEM,
       claim="An A100 runs an fp16 GEMM M=1024, N=K=12288 in 1.20 ms (held out of the fit)",
       source="LLMCompass (Zhang et al., ISCA'24) real-A100 GEMM measurements",
       config="configs/presets/a100-80gb.yaml (hwsim.validate.gpu.a100_gemm_ms)",
       metric="GEMM time", published=1.20, unit="ms",
       band=Within(0.10, "a measurement the efficiency fit did not see: ±10%"))
def _():
    return a100_gemm_ms(1024)


# --------------------------------------------------------------------------- fidelity table

# The measured cards (a folder of configs/profiles/ and the preset of the same name).
CARDS = {"h200-sxm": "H200 SXM", "h100-sxm": "H100 SXM (a second, independent card)"}

# kind (hwsim.validate.gpu_fidelity) -> (words, the measurement file its rows come from)
KINDS = {"gemm": ("GEMMs", "gemm.csv"),
         "attention": ("attention kernels", "attention.csv"),
         "decode_step": ("LLaMA-2-7B decode steps", "decoder_step.csv, CUDA graph + fused rows; "
                         "H200: each replayed back to back as a serving loop runs it (harness 3)"),
         "prefill": ("LLaMA-2-7B prefills", "decoder_step.csv, CUDA graph + fused rows; H200: "
                     "each replayed back to back as a serving loop runs it (harness 3)"),
         "decode_step_gpt": ("GPT-3-6.7B-shaped decode steps (a second model family)",
                             "decoder_step_gpt.csv"),
         "prefill_gpt": ("GPT-3-6.7B-shaped prefills (a second model family)", "decoder_step_gpt.csv")}
# kinds whose rows come from an optional file: registered only for cards that have it
OPTIONAL_KINDS = {"decode_step_gpt": "decoder_step_gpt.csv", "prefill_gpt": "decoder_step_gpt.csv"}

DATASHEET = ("none of the datasheet mode's constants comes from these measurements, so every "
             "row is out of sample")
PROFILE = {"gemm": "each GEMM predicted leave-one-out (the profile without that row)",
           "attention": "each attention kernel predicted leave-one-out (the profile without that row)",
           "decode_step": "whole steps are never part of the profile: they test how the measured "
                          "kernels compose",
           "prefill": "whole prefills are never part of the profile: they test how the measured "
                      "kernels compose",
           "decode_step_gpt": "whole steps of a second model family, never part of the profile",
           "prefill_gpt": "whole prefills of a second model family, never part of the profile"}


def target(mode: str, kind: str) -> tuple[float, str]:
    """The accepted ceiling of the median |error| in %, and why."""
    if mode == "profile":
        if kind in OPTIONAL_KINDS:
            return 5.0, f"issue 11's profile-mode target, applied to a second model family; {PROFILE[kind]}"
        return 5.0, f"issue 11 target: profile mode within 5% for each kind; {PROFILE[kind]}"
    if kind == "attention":
        return 10.0, ("issue 11 sets no target for attention in datasheet mode; the 10% of its "
                      f"other datasheet-mode kinds, chosen here; {DATASHEET}")
    if kind in OPTIONAL_KINDS:
        return 10.0, f"issue 11's datasheet-mode target, applied to a second model family; {DATASHEET}"
    return 10.0, f"issue 11 target: datasheet mode within 10%; {DATASHEET}"


@functools.cache
def fidelity_by_kind(card: str) -> dict[tuple[str, str], dict]:
    """(kind, mode) -> n, median and max |error| of the model against the card's measurements."""
    from hwsim.validate.gpu_fidelity import fidelity_rows
    return {(row["kind"], row["mode"]): row for row in fidelity_rows(card)}


def median_abs_error_percent(card: str, kind: str, mode: str) -> float:
    return 100.0 * fidelity_by_kind(card)[(kind, mode)]["median_abs_err"]


def fidelity_claim_id(card: str, mode: str, kind: str) -> str:
    return f"gpu.{card}.{mode}.{kind}"


def card_kinds(card: str) -> list[str]:
    """The kinds a card is compared on: all but the optional ones whose file it lacks."""
    from hwsim.hw.gpu_profile import profiles_dir
    return [k for k in KINDS if k not in OPTIONAL_KINDS or (profiles_dir() / card / OPTIONAL_KINDS[k]).exists()]


def _register_fidelity_claims() -> None:
    for card, card_words in CARDS.items():
        second = card != "h200-sxm"
        for mode, kind in itertools.product(("datasheet", "profile"), card_kinds(card)):
            ceiling, why = target(mode, kind)
            words, csv = KINDS[kind]
            profile = f" + profile: {card}" if mode == "profile" else ""
            register(Claim(
                id=fidelity_claim_id(card, mode, kind), system=SYSTEM,
                claim=(f"{card_words}: {mode} mode predicts the measured {words} within "
                       f"{ceiling:g}% median |error|"),
                source=(f"hwsim issue 11 target{' (set for the H200, applied to this card)' if second else ''}; "
                        f"measurements configs/profiles/{card}/ (committed raw CSV, provenance "
                        f"in its README)"),
                config=f"configs/presets/{card}.yaml{profile} ({mode} mode; hwsim.validate.gpu_fidelity)",
                metric=f"median |predicted / measured - 1| over {csv}",
                published=0.0, unit="%",
                band=Between(0.0, ceiling, why),
                ours=functools.partial(median_abs_error_percent, card, kind, mode)))


_register_fidelity_claims()


# ------------------------------------------------------------ GEMMs measured by other people
# (source -> words, the card's name); the data and their provenance: configs/published/gpu_gemm/
PUBLISHED_SOURCES = {
    "pytorch-ao-2427": ("B200: 7 bf16 square GEMMs, 1024 to 8192 (pytorch/ao PR #2427, "
                        "benchmarks/float8/bench_matmul.py, profiler kernel times)", "B200"),
}


@functools.cache
def published_gemm_error_percent(source: str) -> float:
    from hwsim.validate.gpu_fidelity import published_gemm_predictions, summarize
    (row,) = summarize(published_gemm_predictions(source))
    return 100.0 * row["median_abs_err"]


def _register_published_gemm_claims() -> None:
    from hwsim.validate.gpu_fidelity import PUBLISHED_GEMMS
    for source, (card, csv) in PUBLISHED_GEMMS.items():
        words, card_words = PUBLISHED_SOURCES[source]
        register(Claim(
            id=f"gpu.published.{card}.gemm.{source}", system=SYSTEM,
            claim=(f"{card_words}: datasheet mode predicts GEMM kernel times someone else "
                   f"measured within 10% median |error|"),
            source=f"{words}; configs/published/gpu_gemm/{csv} (provenance in its README)",
            config=f"configs/presets/{card}.yaml (datasheet mode; hwsim.validate.gpu_fidelity)",
            metric=f"median |predicted / measured - 1| over {csv}",
            published=0.0, unit="%",
            band=Between(0.0, 10.0, "issue 11's datasheet-mode GEMM target, applied to a card "
                         "no preset constant was measured on"),
            ours=functools.partial(published_gemm_error_percent, source)))


_register_published_gemm_claims()


# ------------------------------------------------------------------ energy of a whole pass
# mode -> (what the model's energy is, config, why the band)
STEP_ENERGY_MODES = {
    "datasheet": ("H200 SXM: the GPU model's energy of a whole LLaMA-2-7B pass (decode at batch "
                  "1-128, prefills)",
                  "configs/presets/h200-sxm.yaml (datasheet mode)",
                  "no issue sets an energy target; 25%, looser than the time targets, chosen "
                  "here: the board power is a 100 ms average"),
    "profile": ("H200 SXM, profile mode: the energy of a whole LLaMA-2-7B pass from the measured "
                "idle power and energies per FLOP and per HBM byte (power.csv: a copy, a large "
                "GEMM, decode attention; none of the passes)",
                "configs/presets/h200-sxm.yaml with profile h200-sxm",
                "the datasheet row's band; the microbenchmarks' power and the passes' were "
                "measured in different sessions, maybe on different cards (a second H200 drew "
                "15% more per HBM byte: power-2026-12-04b/)"),
}


def _register_step_energy_claims() -> None:
    for mode, (what, config, why) in STEP_ENERGY_MODES.items():
        register(Claim(
            id=f"gpu.h200-sxm.{mode}.step_energy", system=SYSTEM,
            claim=f"{what} is the card's measured board energy per pass within 25% median |error|",
            source=("the board power nvidia-smi sampled every 100 ms during back-to-back "
                    "CUDA-graph replays, times the replay time (configs/profiles/h200-sxm/"
                    "power_cap*/, README there); 12 passes"),
            config=f"{config}; hwsim.validate.gpu_fidelity.energy_predictions",
            metric="median |modelled J / measured J - 1| per pass",
            published=0.0, unit="%", band=Between(0.0, 25.0, why),
            ours=functools.partial(median_abs_error_percent, "h200-sxm", "step_energy", mode)))


_register_step_energy_claims()


register(Claim(
    id="gpu.h200-sxm.profile.prefill_sustained", system=SYSTEM,
    claim=("H200 SXM, profile mode with the card held at its 700 W limit (its measured energy per "
           "pass, hwsim.sim.trace.power_capped): LLaMA-2-7B prefills of 128-2048 tokens replayed "
           "back to back for 8-25 s, within 5% median |error|"),
    source=("our H200's power probes: the median replay once the card sat at the cap "
            "(configs/profiles/h200-sxm/power_cap-2026-12-03/, power_cap_prefill-2026-12-04/, "
            "READMEs there); 5 prefills, none of them in the profile"),
    config=("configs/presets/h200-sxm.yaml with profile h200-sxm "
            "(hwsim.validate.gpu_fidelity.boost_clock_predictions)"),
    metric="median |modelled / measured time - 1| per prefill",
    published=0.0, unit="%",
    band=Between(0.0, 5.0, "issue 11's profile-mode target for prefills"),
    ours=functools.partial(median_abs_error_percent, "h200-sxm", "prefill_sustained", "profile")))
