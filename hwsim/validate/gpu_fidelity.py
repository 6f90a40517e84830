"""How well the GPU model predicts a measured card, per kind of kernel and per mode.

The measurements are the committed output of `hwsim calibrate gpu` (configs/profiles/NAME/).
Both modes predict every measured row:

- datasheet mode: the preset alone (no profile); none of its constants comes from these data,
  so every row is out of sample;
- profile mode: the preset with `profile: NAME`. GEMM and attention rows are predicted
  leave-one-out (the profile without the row being predicted), so the number is the
  interpolation error; decoder steps and prefills (decoder_step.csv) are never part of the
  profile: they test how the measured kernels compose into a whole LLaMA-2-7B-shaped pass.

`fidelity_rows()` gives one row per (kind, mode): n, median and max |relative error|; this is
what `hwsim validate` and benchmarks/bench_gpu_fidelity.py report.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import yaml

from hwsim.hw.gpu import GPUCoster, GPUSpec, KernelTime, ServingStack
from hwsim.hw.gpu_profile import GPUProfile, load_profile, profiles_dir, read_csv
from hwsim.workloads.ops import Attention, MatMul, Op, OpKind

# The measured card and the preset that describes it from its datasheet.
MEASURED = {"h200-sxm": "h200-sxm", "h100-sxm": "h100-sxm"}

GRAPH = ServingStack(launch="cuda_graph", fused_elementwise=True)

# Appended to the band reason of every validate claim whose ratio divides by a GPU's modelled
# energy: a pass there does not vouch for the GPU side (energy_predictions below).
GPU_ENERGY_LOW = ("; caveat: the GPU model's energy per pass is well below the H200's measured "
                  "board energy (row gpu.h200-sxm.datasheet.step_energy: no on-chip data-movement "
                  "or clocked-idle energy; the H200's HBM stacks take ~3-6 pJ/bit of the ~100-120 "
                  "pJ per byte its board spends streaming, configs/profiles/h200-sxm/"
                  "memory_power-2026-12-04/), so the GPU side of this ratio is an underestimate")


@dataclass(frozen=True)
class Prediction:
    kind: str          # gemm | attention | decode_step | prefill | decode_step_eager ...
    mode: str          # datasheet | profile
    label: str
    measured_us: float
    predicted_us: float

    @property
    def error(self) -> float:
        return self.predicted_us / self.measured_us - 1.0


def preset(name: str, profile: str | None = None) -> GPUSpec:
    from hwsim.configs import PRESETS_DIR
    data = yaml.safe_load((PRESETS_DIR / f"{name}.yaml").read_text())
    data.pop("component", None)
    return GPUSpec(**data, **({"profile": profile} if profile else {}))


def _gemm_op(dtype: str, m: int, n: int, k: int) -> Op:
    b = 1 if dtype == "fp8" else 2
    return Op(name="gemm", kind=OpKind.MATMUL, layer=0, dtype=dtype, flops=2.0 * m * n * k,
              weight_bytes=n * k * b, act_in_bytes=m * k * b, act_out_bytes=m * n * 2,
              matmul=MatMul(m, n, k))


def _attention(row: dict) -> Attention:
    b, q, L = int(row["batch"]), int(row["q_len"]), int(row["kv_len"])
    return Attention(query_tokens=(q,) * b, context_lens=(L,) * b, heads=int(row["heads"]),
                     kv_heads=int(row["heads"]), head_dim=int(row["head_dim"]))


def _lone_us(coster: GPUCoster, k: KernelTime) -> float:
    """A lone kernel on the engine, as the harness times it (back to back in a CUDA graph): its
    launch gap and memory latency chains, then the longer of its SM time and its bytes at the
    HBM rate."""
    return (k.launch_ns + k.serial_ns + max(k.compute_ns, k.hbm_bytes / coster.hbm_rate * 1e9)) / 1e3


def _kernel_us(coster: GPUCoster, op: Op) -> float:
    return _lone_us(coster, coster.kernel(op))


def _flash_us(coster: GPUCoster, attn: Attention) -> float:
    return _lone_us(coster, coster.flash(attn, "bf16"))


def _without(profile: GPUProfile, table: str, row: dict) -> GPUProfile:
    """The profile less one measured row (leave one out). Also without its in-context rows
    (in_context.csv): the row it predicts is a kernel timed alone, back to back after itself."""
    rows = {t: list(getattr(profile, t)) for t in ("gemm", "attention", "elementwise", "launch")}
    rows[table] = [r for r in rows[table] if r != row]
    return GPUProfile(profile.name, rows["gemm"], rows["attention"], rows["elementwise"],
                      rows["launch"])


def kernel_predictions(name: str) -> list[Prediction]:
    """GEMM and attention microbenchmarks, both modes."""
    folder = profiles_dir() / name
    sheet = GPUCoster(preset(MEASURED[name]), GRAPH)
    full = load_profile(name)
    spec = preset(MEASURED[name], profile=name)
    out = []
    for row in read_csv(folder / "gemm.csv"):
        op = _gemm_op(row["dtype"], int(row["m"]), int(row["n"]), int(row["k"]))
        label = f"{row['dtype']} m={row['m']} n={row['n']} k={row['k']}"
        loo = GPUCoster.__new__(GPUCoster)
        loo.gpu, loo.stack, loo.profile = spec, GRAPH, _without(full, "gemm", row)
        out += [Prediction("gemm", "datasheet", label, float(row["us"]), _kernel_us(sheet, op)),
                Prediction("gemm", "profile", label, float(row["us"]), _kernel_us(loo, op))]
    for row in read_csv(folder / "attention.csv"):
        attn = _attention(row)
        label = f"{row['phase']} b={row['batch']} L={row['kv_len']}"
        loo = GPUCoster.__new__(GPUCoster)
        loo.gpu, loo.stack, loo.profile = spec, GRAPH, _without(full, "attention", row)
        out += [Prediction("attention", "datasheet", label, float(row["us"]), _flash_us(sheet, attn)),
                Prediction("attention", "profile", label, float(row["us"]), _flash_us(loo, attn))]
    return out


def harness_version(folder) -> int:
    """The version of the calibration harness that measured a folder's decoder_step.csv (a
    profile's name, or a folder path; env.json's harness_version,
    hwsim.calibrate.gpu_bench.HARNESS_VERSION); profiles measured before it was recorded ran
    harness 1."""
    import json
    return int(json.loads((profiles_dir() / folder / "env.json").read_text()).get("harness_version", 1))


def measured_stack(row: dict, harness: int) -> ServingStack:
    """The serving stack the harness ran for one decoder_step.csv row, as the model's knobs. The
    model is compared with the program that was measured: harness 1 wrote the new K and V into
    the cache with two copy kernels per layer in every stack (fused too), harness 2 with one
    Triton kernel in the fused stack (vLLM's reshape_and_cache) and two copies in the unfused
    one (Hugging Face's cache update); harness 3 runs harness 2's program (it changed how rows
    are timed, not what they run)."""
    fused = row["fused"] == "1"
    return ServingStack(launch=row["launch"], fused_elementwise=fused,
                        separate_kv_writes=harness < 2 or not fused)


def step_us(gpu: dict, phase: str, batch: int, context: int, stack: ServingStack,
            model: str = "llama2-7b") -> float:
    """Simulated time of one whole pass of `model` (no LM head) on the `gpu` mapper."""
    return step_metrics(gpu, phase, batch, context, stack, model).iteration_latency_s * 1e6


def step_metrics(gpu: dict, phase: str, batch: int, context: int, stack: ServingStack,
                 model: str = "llama2-7b"):
    """The metrics of one whole pass of `model` (no LM head) on the `gpu` mapper (`gpu`: the
    config's `hardware.gpu` mapping)."""
    from hwsim.config.loader import load_config_text
    from hwsim.pipeline import run_system
    text = yaml.safe_dump({
        "name": "fidelity",
        "workload": {"model": model, "phase": phase, "batch": batch, "dtype": "bf16",
                     "lm_head": False,
                     "requests": {"distribution": "fixed", "context_len": context}},
        "hardware": {"gpu": gpu},
        "mapper": {"name": "gpu", "launch": stack.launch,
                   "fused_elementwise": stack.fused_elementwise,
                   "separate_kv_writes": stack.separate_kv_writes}})
    system = load_config_text(text).main
    return run_system(system, extrapolate_layers=True).metrics


def _step_modes(name: str) -> dict[str, dict]:
    """The `gpu` config of each mode for whole passes. Capacity does not enter the time; it is
    raised so that batch 128 at 2048 fits (the card ran it with layers sharing KV buffers,
    decoder_step.csv's kv_buffers column)."""
    return {"datasheet": {"preset": MEASURED[name], "hbm_gib": 1024},
            "profile": {"preset": MEASURED[name], "profile": name, "hbm_gib": 1024}}


# The measured whole passes: file -> (model, suffix of their kinds). decoder_step.csv: the
# LLaMA-2-7B stack (issue 11's targets); decoder_step_gpt.csv (where a card has it): a
# GPT-3-6.7B-shaped stack, a second model family (LayerNorm, GELU, biases, unfused residual adds).
STEP_FILES = {"decoder_step.csv": ("llama2-7b", ""), "decoder_step_gpt.csv": ("gpt3-7b", "_gpt")}


def step_files(name: str) -> list[str]:
    return [f for f in STEP_FILES if (profiles_dir() / name / f).exists()]


def step_predictions(name: str) -> list[Prediction]:
    """Whole decoder steps and prefills (held out of every fit), both modes. Harness 3 times a
    CUDA-graph pass as a serving loop runs it (`us`: the median replay once it has run back to
    back for 2 s, at the card's power limit where the pass draws enough) and also records its
    first replay from an unslowed card (`cold_us`): the same prediction against that is kind
    `<kind>_cold`, informative (the engine holds every pass at the limit, so profile mode
    should follow `us`; datasheet mode, whose energy is too low to reach it, `cold_us`)."""
    out = []
    modes = _step_modes(name)
    for row, model, suffix, stack in _measured_passes(profiles_dir() / name):
        kind = "decode_step" if row["phase"] == "decode" else "prefill"
        kind += "_eager" if stack.launch == "eager" else ""
        kind += "_unfused" if not stack.fused_elementwise else ""
        kind += suffix
        b, ctx = int(row["batch"]), int(row["ctx"])
        # decode: the step attends over ctx cached keys + the new one; prefill: ctx tokens
        for mode, gpu in modes.items():
            us = step_us(gpu, row["phase"], b, ctx, stack, model)
            out.append(Prediction(kind, mode, f"b={b} ctx={ctx}", float(row["us"]), us))
            if row.get("cold_us"):
                out.append(Prediction(kind + "_cold", mode, f"b={b} ctx={ctx}",
                                      float(row["cold_us"]), us))
    return out


def _measured_passes(folder):
    """(row, model, kind suffix, the serving stack its harness ran) of every whole pass in a
    folder's decoder_step*.csv files (STEP_FILES)."""
    harness = harness_version(folder)
    for file, (model, suffix) in STEP_FILES.items():
        if (folder / file).exists():
            for row in read_csv(folder / file):
                yield row, row.get("model") or model, suffix, measured_stack(row, harness)


def other_card_predictions(name: str) -> list[Prediction]:
    """The whole passes of the same harness run on other cards of the model
    (configs/profiles/<name>/other_card-*/, harness 3), fused CUDA-graph rows, both modes:
    kinds `<kind>_other_card`. How far a profile of one card carries to another (the card-to-
    card spread is part of the error), informative."""
    out = []
    modes = _step_modes(name)
    for folder in sorted((profiles_dir() / name).glob("other_card-*")):
        for row, model, suffix, stack in _measured_passes(folder):
            if stack != GRAPH:
                continue
            kind = ("decode_step" if row["phase"] == "decode" else "prefill") + suffix
            b, ctx = int(row["batch"]), int(row["ctx"])
            for mode, gpu in modes.items():
                out.append(Prediction(kind + "_other_card", mode, f"b={b} ctx={ctx}",
                                      float(row["us"]), step_us(gpu, row["phase"], b, ctx, stack, model)))
    return out


# power_cap*/series.csv phases: (phase, batch, context) of the harness's LLaMA-2-7B stack
BOOST_POINTS = {"prefill_2048": ("prefill", 1, 2048), "prefill_1024": ("prefill", 1, 1024),
                "decode_b1_512": ("decode", 1, 512), "decode_b128_2048": ("decode", 128, 2048),
                "decode_b64_2048": ("decode", 64, 2048), "decode_b128_512": ("decode", 128, 512),
                "decode_b16_2048": ("decode", 16, 2048), "prefill_512": ("prefill", 1, 512),
                "prefill_256": ("prefill", 1, 256), "prefill_128": ("prefill", 1, 128),
                "decode_b32_512": ("decode", 32, 512), "decode_b64_512": ("decode", 64, 512)}


def boost_clock_predictions(name: str) -> list[Prediction]:
    """The power probes' passes (configs/profiles/<name>/power_cap*/, READMEs there), twice.
    `*_boost_clock`: the first CUDA-graph replay after 10 s of idle, before the 700 W power cap
    pulls the SM clock down. `*_sustained`: the median replay once the card has replayed the pass
    back to back for 8-25 s, the state a serving loop keeps it in. Informative kinds with no
    target: profile mode, whose measured energy lets the engine hold the card at its power limit
    (sim.trace.power_capped), should follow the sustained times; datasheet mode, whose energy is
    too low to reach the limit, the boost-clock ones."""
    out = []
    modes = _step_modes(name)
    for path in sorted((profiles_dir() / name).glob("power_cap*/series.csv")):
        rows = read_csv(path)
        measured: dict[tuple[str, str], float] = {}
        for row in rows:
            phase = row["phase"].removesuffix("_cold")
            if row["phase"].endswith("_cold") and phase in BOOST_POINTS:
                measured.setdefault((phase, "_boost_clock"), float(row["value"]) * 1e3)
        for point, replays in sustained_replays(rows).items():
            measured[(point, "_sustained")] = float(np.median([float(r["value"]) for r in replays])) * 1e3
        for (phase, suffix), us in measured.items():
            workload_phase, b, ctx = BOOST_POINTS[phase]
            kind = ("decode_step" if workload_phase == "decode" else "prefill") + suffix
            for mode, gpu in modes.items():
                out.append(Prediction(kind, mode, f"b={b} ctx={ctx}", us,
                                      step_us(gpu, workload_phase, b, ctx, GRAPH)))
    return out


# --------------------------------------------------------------- GEMMs measured by others
# Kernel times other people published (configs/published/gpu_gemm/, provenance in its README),
# against the datasheet preset of the same card: a second, independent out-of-sample test of
# datasheet mode (no constant of a preset comes from them). Source -> (preset, CSV file).
PUBLISHED_GEMMS = {"pytorch-ao-2427": ("b200-sxm", "b200-pytorch-ao-2427.csv")}


def published_gemm_dir():
    from hwsim.configs import CONFIG_DIR
    return CONFIG_DIR / "published" / "gpu_gemm"


def _kernel_body_us(coster: GPUCoster, k: KernelTime) -> float:
    """A kernel's own duration, as a profiler (CUPTI) times it: its memory latency chains, then
    the longer of its SM time and its bytes at the HBM rate; no launch gap."""
    return (k.serial_ns + max(k.compute_ns, k.hbm_bytes / coster.hbm_rate * 1e9)) / 1e3


def published_gemm_predictions(source: str) -> list[Prediction]:
    """Datasheet mode against one source's published GEMM kernel times (kind `gemm`)."""
    card, csv = PUBLISHED_GEMMS[source]
    sheet = GPUCoster(preset(card), GRAPH)
    out = []
    for row in read_csv(published_gemm_dir() / csv):
        m, n, k = int(row["m"]), int(row["n"]), int(row["k"])
        label = f"{row['dtype']} m={m} n={n} k={k}"
        out.append(Prediction("gemm", "datasheet", label, float(row["us"]),
                              _kernel_body_us(sheet, sheet.kernel(_gemm_op(row["dtype"], m, n, k)))))
    return out


# ------------------------------------------------------------------ energy of a whole pass
def _smi_power(folder) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since the first sample, board power in W) of a probe's smi.csv (nvidia-smi every
    100 ms, started just before the probe's clock: series.csv's t_s is on the same axis to
    ~0.1 s)."""
    import datetime as dt
    t, w = [], []
    for line in (folder / "smi.csv").read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4 or not parts[3].endswith(" W"):
            continue
        t.append(dt.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp())
        w.append(float(parts[3][:-2]))
    t = np.array(t)
    return t - t[0], np.array(w)


def measured_step_energy(name: str, folders: str = "power_cap*") -> dict[str, tuple[float, float, float]]:
    """Per sustained phase of the power probes (configs/profiles/<name>/<folders>/): (board
    power in W, step time in ms, energy per step in J): the median power of the samples from 1 s
    into the back-to-back replays to their end, times the median replay time."""
    out = {}
    for series in sorted((profiles_dir() / name).glob(f"{folders}/series.csv")):
        t, w = _smi_power(series.parent)
        for point, mine in sustained_replays(read_csv(series)).items():
            start, end = float(mine[0]["t_s"]) + 1.0, float(mine[-1]["t_s"])
            watts = float(np.median(w[(t >= start) & (t <= end)]))
            ms = float(np.median([float(r["value"]) for r in mine]))
            out[point] = (watts, ms, watts * ms / 1e3)
    return out


def sustained_replays(rows: list[dict]) -> dict[str, list[dict]]:
    """A probe's series.csv rows of each BOOST_POINTS pass replayed back to back
    (`<point>_sustained`), in order."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        point = r["phase"].removesuffix("_sustained")
        if r["phase"].endswith("_sustained") and point in BOOST_POINTS:
            out.setdefault(point, []).append(r)
    return out


def energy_predictions(name: str) -> list[Prediction]:
    """The energy of a whole LLaMA-2-7B pass (kind `step_energy`; J, in the Prediction's `_us`
    fields) against the card's measured board energy per step in the power probes: the GPU
    model's energy (dynamic energy per FLOP and per HBM byte, static power over the pass,
    hw/gpu.py: GPUSpec.pj_per_flop, dram_pj_per_bit, static_w; from the datasheet, or in profile
    mode from the profile's power.csv) against power x time."""
    out = []
    modes = _step_modes(name)
    for phase, (_w, _ms, joules) in measured_step_energy(name).items():
        workload_phase, b, ctx = BOOST_POINTS[phase]
        for mode, gpu in modes.items():
            m = step_metrics(gpu, workload_phase, b, ctx, GRAPH)
            out.append(Prediction("step_energy", mode, f"{workload_phase} b={b} ctx={ctx}",
                                  joules, m.energy_j))
    return out


def same_card_energy_predictions(name: str) -> list[Prediction]:
    """Kind `step_energy_same_card` (profile mode): the passes' board energy and the power.csv
    the energy constants come from, measured on one card in one lease (configs/profiles/<name>/
    same_card*/, README there), so the comparison holds no card-to-card spread (a second H200
    drew 15% more per HBM byte: power-2026-12-04b/). The model is the profile with that
    folder's power.csv in place of its own."""
    import shutil
    import tempfile
    from pathlib import Path
    from hwsim.hw.gpu_profile import IN_CONTEXT_FILE, POWER_FILE, PROFILE_FILES
    source = profiles_dir() / name
    out = []
    for folder in sorted(source.glob("same_card*")):
        with tempfile.TemporaryDirectory() as tmp:
            profile = Path(tmp) / name
            profile.mkdir()
            for f in (*PROFILE_FILES, IN_CONTEXT_FILE):
                if (source / f).exists():
                    shutil.copy(source / f, profile / f)
            shutil.copy(folder / POWER_FILE, profile / POWER_FILE)
            gpu = {"preset": MEASURED[name], "profile": str(profile), "hbm_gib": 1024}
            for phase, (_w, _ms, joules) in measured_step_energy(name, folder.name).items():
                workload_phase, b, ctx = BOOST_POINTS[phase]
                m = step_metrics(gpu, workload_phase, b, ctx, GRAPH)
                out.append(Prediction("step_energy_same_card", "profile",
                                      f"{workload_phase} b={b} ctx={ctx}", joules, m.energy_j))
    return out


@functools.lru_cache(maxsize=4)
def predictions(name: str = "h200-sxm") -> tuple[Prediction, ...]:
    return tuple(kernel_predictions(name) + step_predictions(name) + other_card_predictions(name)
                 + boost_clock_predictions(name) + energy_predictions(name)
                 + same_card_energy_predictions(name))


def summarize(preds) -> list[dict]:
    rows = []
    for kind in dict.fromkeys(p.kind for p in preds):
        for mode in ("datasheet", "profile"):
            errs = np.array([abs(p.error) for p in preds if p.kind == kind and p.mode == mode])
            if len(errs):
                rows.append({"kind": kind, "mode": mode, "n": len(errs),
                             "median_abs_err": float(np.median(errs)),
                             "max_abs_err": float(np.max(errs))})
    return rows


def fidelity_rows(name: str = "h200-sxm") -> list[dict]:
    """Per (kind, mode): n, median |err|, max |err| of the model against the card's measurements
    (kinds: gemm, attention, decode_step, prefill; `*_eager` / `*_unfused`: the serving-stack
    knobs, a few points each; `*_cold`: the same passes' first replay from an unslowed card;
    `*_other_card`: the same harness's passes on another card (other_card_predictions);
    `*_boost_clock` / `*_sustained`: the power probes' passes before and at the power cap,
    boost_clock_predictions)."""
    return summarize(predictions(name))


def measured_card(name: str = "h200-sxm") -> str:
    import json
    return json.loads((profiles_dir() / name / "env.json").read_text())["gpu_name"]


__all__ = ["fidelity_rows", "predictions", "summarize", "Prediction", "step_us", "preset",
           "harness_version", "measured_stack", "published_gemm_predictions", "PUBLISHED_GEMMS",
           "STEP_FILES", "step_files"]
