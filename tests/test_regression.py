"""Migration without drift (issue 10, item 8): every shipped run config gives the numbers it gave
before the machine-model rebuild, pinned in tests/pinned/ by tests/pin_metrics.py.

A pinned number may differ only where DELIBERATE says why (a model change made on purpose, e.g.
energy and area gaining static power and HBM stacks). A key may be renamed (RENAMED), never lost.
"""
import fnmatch
import json
import math
from pathlib import Path

import pytest

PINNED = Path(__file__).parent / "pinned"

# old dotted path (glob) -> new dotted path template ("{rest}" = what the glob's "*" matched).
RENAMED: dict[str, str] = {
    # Issue 9, item 6: a CNN run counts inferences, not tokens (Metrics.work_unit names the unit;
    # Transformer runs keep the token names).
    "*throughput_tokens_per_s": "{rest}throughput_inferences_per_s",
    "*energy_per_token_j": "{rest}energy_per_inference_j",
    "*tokens_per_iteration": "{rest}inferences_per_iteration",
}

# (config glob, dotted-path glob) -> why the number moved on purpose.
_GPU = "GPU model rebuilt from datasheet effects, issue 11"
_STATIC = ("static power joins the energy of every NPU system (issue 10, item 7): NPU and PIM "
           "logic leakage (Aladdin TSMC 40 nm, 12.3 mW/mm2 of counted area, hwsim.hw.area) and HBM "
           "background + refresh (DRAMsim3 HBM2_8Gb_x128 IDD2N/IDD5AB, hwsim.hw.dram); before, the "
           "NPU's static power defaulted to 0 W")
_LINK = ("the NVLink 3 preset charges 1.3 pJ/bit (NVLink-C2C's published figure, a lower bound) "
         "instead of 0 J for the bytes it moves")
_AREA = ("area counts the HBM stacks on the package (4 x 92 mm2 for 32 HBM2 channels, JEDEC HBM2 "
         "KGSD footprint), issue 10 item 7; a GPU's area is still its die only")
_GPU_FLOP = ("a datasheet GPU charges a FLOP (TDP - idle) / the GEMM rate of a card held at its "
             "power limit (GPUSpec.pj_per_flop, issue 11, 2026-12-04), not / its peak: compute "
             "energy up 15-65%; a GEMM-bound pass may now reach the limit and be slowed to it")
# The shipped configs with a datasheet GPU (or the Ascend 910C, costed as one) on some system.
_GPU_CONFIGS = ("attacc", "cloudmatrix384-decode", "cloudmatrix384-prefill", "deepseek-v3-ep8-h200",
                "duplex-glam", "duplex-serving", "duplex", "exflow-gpt-moe-ep8",
                "exflow-mixtral-ep8", "gpt-oss-120b-h100", "gpt-oss-120b-hgx-tp8",
                "llama2-70b-tp8-hgx", "llm-in-flash", "mixtral-8x7b-ep8-hgx", "pim-compare-b1",
                "pim-compare-moe", "pim-compare", "pim-gpt", "serving-qwen3-chunked",
                "serving-qwen3-layered", "sn40l-coe", "tokenring-llama")
DELIBERATE: dict[tuple[str, str], str] = {
    **{(config, key): _GPU_FLOP for config in _GPU_CONFIGS
       for key in ("*energy_breakdown_j.compute", "*serving.energy_j",
                   "*serving.energy_per_output_token_j")},
    # its balanced-placement baseline's prefill-heavy MoE pass now reaches the H100s' 700 W limit
    ("mixtral-8x7b-ep8-hgx", "baselines.balanced.*"): _GPU_FLOP,
    ("mixtral-8x7b-ep8-hgx", "speedup.balanced"): _GPU_FLOP,
    ("*", "metrics.serving.cost_model.*"):
        "counters of the iteration-cost cache, which is shared by every run in one process (the "
        "numbers it returns are exact either way): they depend on what ran before, not on the config",
    ("*", "*time_per_layer_s"):
        "issue 9 item 3: one definition for runs and sweeps, (last end - first start of the layers' "
        "tasks) / layers, so iteration = before + layers x time_per_layer + after; it was the mean "
        "span of one (layer, micro-batch)'s tasks, which overlap, so layers x it exceeded the iteration",
    # The GPU baselines (and the speed-ups over them) only; nothing else may move.
    ("neupims*", "baselines.gpu.*"): _GPU,
    ("neupims*", "speedup.gpu"): _GPU,
    ("gpt3-7b-npu", "baselines.gpu.*"): _GPU,
    ("gpt3-7b-npu", "speedup.gpu"): _GPU,
    ("llama2-7b-prefill", "baselines.gpu.*"): _GPU,
    ("llama2-7b-prefill", "speedup.gpu"): _GPU,
    ("mixtral-8x7b-h100", "*"): _GPU + " (the main system and its baseline are GPUs)",
    **{("*", f"{system}.{key}"): _STATIC
       for system in ("metrics", "baselines.npu_*.metrics")
       for key in ("energy_breakdown_j.static", "energy_j", "energy_per_token_j",
                    "energy_per_inference_j")},
    **{("*", f"{system}.{key}"): _LINK
       for system in ("metrics", "baselines.*.metrics")
       for key in ("energy_breakdown_j.link", "energy_j", "energy_per_token_j")},
    **{("*", f"{system}.area_mm2"): _AREA for system in ("metrics", "baselines.npu_*.metrics")},
}


def flatten(doc, prefix=""):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from flatten(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], doc


def lookup(flat: dict, path: str):
    if path in flat:
        return flat[path]
    for old, new in RENAMED.items():
        if fnmatch.fnmatchcase(path, old):
            star = old.index("*") if "*" in old else len(old)
            rest = path[star:len(path) - (len(old) - star - 1)] if "*" in old else ""
            return flat.get(new.format(rest=rest), KeyError)
    return KeyError


def deliberate(config: str, path: str) -> str | None:
    for (cglob, pglob), why in DELIBERATE.items():
        if fnmatch.fnmatchcase(config, cglob) and fnmatch.fnmatchcase(path, pglob):
            return why
    return None


@pytest.mark.parametrize("pinned", sorted(PINNED.glob("*.json")), ids=lambda p: p.stem)
def test_shipped_config_gives_its_pinned_numbers(pinned, config_dir):
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    config = config_dir / f"{pinned.stem}.yaml"
    assert config.exists(), f"shipped config {config.name} was removed; keep it running"
    now = dict(flatten(evaluate(load_config(config)).to_json()))
    drift = []
    for path, before in flatten(json.loads(pinned.read_text())):
        after = lookup(now, path)
        if after is KeyError:
            drift.append(f"{path}: lost (was {before!r})")
            continue
        same = (math.isclose(after, before, rel_tol=1e-9, abs_tol=1e-12)
                if isinstance(before, (int, float)) and isinstance(after, (int, float))
                and not isinstance(before, bool) else after == before)
        if not same and deliberate(config.stem, path) is None:
            drift.append(f"{path}: {before!r} -> {after!r}")
    assert not drift, "\n".join(drift)

