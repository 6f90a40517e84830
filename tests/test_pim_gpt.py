"""PIM-GPT (issue 14, item 1): the 8-model zoo, the GEMV-on-every-bank cost model against the
NeuPIMs PIM model it extends and against GDDR6-AiM's rated FLOPS, the physics of every model's
run (rooflines, in-bank bandwidth, weight and KV bytes read per token), the mapper's placement
and the `hwsim validate` rows."""
from __future__ import annotations

import json
import math

import pytest
import yaml
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.configs import MODELS_DIR
from hwsim.hw.pim import PIMSpec, columns_per_row, gwrite_cycles, tile_cycles
from hwsim.hw.pim_gpt import (GemvPIMSpec, gemv_layout, gemv_tile_cycles, gemv_work, gemv_write_cycles,
                              internal_bw_gbps, peak_flops_per_ns)
from hwsim.validate import REGISTRY, Status, all_claims, evaluate_claim
from hwsim.validate.model_zoo import LLM_PARAMS_B
from hwsim.validate.pim_gpt import MODELS, pim_gpt_run
from hwsim.workloads.models import ModelSpec

CONTRACT = {"id", "system", "claim", "source", "config", "metric", "published", "ours", "low",
            "high", "unit", "status", "reason"}

# (layers, d_model, heads, context): Radford et al. 2019 Table 2 / HF gpt2 configs; Brown et al.
# 2020 Table 2.1 (GPT-3 XL: 16 heads of 128, configs/models/gpt3-1.3b.yaml says why).
PUBLISHED_SHAPES = {
    "gpt2-small": (12, 768, 12, 1024), "gpt2-medium": (24, 1024, 16, 1024),
    "gpt2-large": (36, 1280, 20, 1024), "gpt2-xl": (48, 1600, 25, 1024),
    "gpt3-125m": (12, 768, 12, 2048), "gpt3-350m": (24, 1024, 16, 2048),
    "gpt3-760m": (24, 1536, 16, 2048), "gpt3-1.3b": (24, 2048, 16, 2048),
}


def model(name: str) -> ModelSpec:
    return ModelSpec(**yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text()))


def preset_pim() -> GemvPIMSpec:
    from hwsim.configs import CONFIG_DIR
    data = yaml.safe_load((CONFIG_DIR / "presets" / "pim-gpt-pim.yaml").read_text())
    data.pop("component")
    return GemvPIMSpec(**data)


# --------------------------------------------------------------------------- the zoo

@pytest.mark.parametrize("name", MODELS)
def test_zoo_model_has_published_shape_and_size(name):
    m = model(name)
    assert (m.n_layers, m.d_model, m.n_heads, m.max_seq_len) == PUBLISHED_SHAPES[name]
    assert (m.vocab, m.d_ff, m.norm, m.ffn, m.tied_embeddings) == (50257, 4 * m.d_model, "layernorm",
                                                                   "gelu", True)
    published = LLM_PARAMS_B[name][0] * 1e9
    assert m.param_count() == pytest.approx(published, rel=0.02)


# --------------------------------------------------------------------------- cost model

def test_gemv_tile_and_gwrite_reduce_to_the_neupims_commands():
    """A full row and one result burst: the NeuPIMs tile and GWRITE, cycle for cycle."""
    pim = PIMSpec()
    t = pim.dram
    assert gemv_tile_cycles(pim, columns_per_row(pim, 2), t.burst_bytes) == tile_cycles(pim)
    assert gemv_write_cycles(pim, t.row_bytes // 2) == gwrite_cycles(pim) == 96


def test_peak_is_gddr6_aim_rated_tflops():
    """One 8 Gb GDDR6-AiM die (2 channels x 16 banks x 16 MACs at 1 GHz) is rated 1 TFLOPS
    (Kwon et al., JSSC 2023, title): 1.024 by the closed form."""
    pim = preset_pim()
    assert peak_flops_per_ns(pim, 2) == 1024.0
    assert peak_flops_per_ns(pim, 2) == pytest.approx(1000.0, rel=0.025)


def test_internal_bandwidth_is_what_the_banks_provide():
    """All banks x one 32 B column per 1 ns slot: 16 x 32 = 512 GB/s per channel, 16x the
    channel's 32 GB/s pins."""
    pim = preset_pim()
    t = pim.dram
    assert internal_bw_gbps(pim, 1, 2) == t.banks_per_channel * t.burst_bytes / t.tck_ns == 512.0
    assert internal_bw_gbps(pim, 1, 2) / t.peak_bw_gbps_per_channel == 16.0


@pytest.mark.parametrize("k, n, count, channels", [
    (768, 2304, 1, 8), (6400, 1600, 1, 8), (64, 513, 12, 8), (513, 64, 25, 8), (1600, 50257, 1, 8),
    (3, 5, 1, 8), (4096, 16, 1, 1), (2048, 8192, 3, 4),
])
def test_layout_holds_the_matrix_with_bounded_padding(k, n, count, channels):
    pim = preset_pim()
    banks = pim.dram.banks_per_channel
    epr = pim.dram.row_bytes // 2
    lay = gemv_layout(pim, k, n, count, channels, 2)
    assert lay.chunk * lay.chunks >= k > lay.chunk * (lay.chunks - 1)
    assert lay.tiles_per_channel == math.ceil(lay.units / channels)
    assert lay.columns * pim.macs_per_bank >= lay.outputs_per_row * lay.chunk
    w = gemv_work(pim, k, n, count, channels, 2)
    assert w.slots >= k * n * count                      # the tiles hold the whole matrix
    # padding: at most one partial unit (banks x a row) per (vector, k-chunk)
    assert w.slots < k * n * count + count * math.ceil(k / epr) * banks * epr
    assert w.bank_bytes == k * n * count * 2 and w.macs == k * n * count
    # every input element reaches at least one channel, every output leaves once
    assert w.bus_bytes >= (k * count + n * count) * 2


def test_more_channels_never_slower_and_never_beat_the_roofline():
    pim = preset_pim()
    for k, n in ((768, 3072), (2048, 50257), (64, 1024)):
        times = [gemv_work(pim, k, n, 1, c, 2).ns for c in (1, 2, 4, 8, 16)]
        assert times == sorted(times, reverse=True)
        for c in (1, 2, 4, 8, 16):
            roofline = max(2.0 * k * n / peak_flops_per_ns(pim, c), k * n * 2 / internal_bw_gbps(pim, c, 2))
            assert gemv_work(pim, k, n, 1, c, 2).ns >= roofline


# --------------------------------------------------------------------------- every model's run

@pytest.fixture(scope="module", params=MODELS)
def run(request):
    return request.param, pim_gpt_run(request.param)


def test_each_op_on_its_unit_and_not_faster_than_its_roofline(run):
    name, r = run
    main_ = r.main
    durations = main_.trace.end_ns - main_.trace.start_ns
    for task in main_.schedule.tasks:
        op = main_.graph.op(task.op)
        gemv = op.matmul is not None or op.attention is not None
        assert (task.unit, task.component) == (("pim", "gemv_pim") if gemv else ("asic", "asic")), task.name
        assert durations[task.id] >= task.roofline_ns * (1 - 1e-9), task.name
        assert durations[task.id] > 0, task.name


def test_pim_internal_bandwidth_never_exceeds_the_banks(run):
    name, r = run
    main_ = r.main
    pim = main_.system.hardware.gemv_pim
    ceiling = internal_bw_gbps(pim, 8, 2)                            # bytes per ns, 8 channels
    durations = main_.trace.end_ns - main_.trace.start_ns
    for task in main_.schedule.tasks:
        inside = task.bytes_by_level.get("pim_internal", 0.0)
        if inside:
            assert inside / durations[task.id] <= ceiling * (1 + 1e-9), task.name
    total = main_.metrics.bytes["pim_internal"]
    assert total / (main_.metrics.iteration_latency_s * 1e9) <= ceiling


def test_weight_bytes_read_per_token_are_the_parameter_bytes(run):
    """Per token the banks read every parameter once: all of them but the LayerNorm gains and
    biases (read by the ASIC) and the position table (one row, by the embedding lookup); the
    token table is read whole by the tied LM head. KV: K and V of every layer over the context."""
    name, r = run
    m = model(name)
    g = r.main.graph
    on_pim = {t.op for t in r.main.schedule.tasks if t.component == "gemv_pim"}
    weights_in_banks = sum(t.bytes_by_level["pim_internal"] for t in r.main.schedule.tasks
                           if t.component == "gemv_pim" and g.op(t.op).matmul is not None)
    expected = (m.param_count() - (2 * m.n_layers + 1) * m.norm_params() - m.max_seq_len * m.d_model) * 2
    assert weights_in_banks == expected
    kv_in_banks = sum(t.bytes_by_level["pim_internal"] for t in r.main.schedule.tasks
                      if t.component == "gemv_pim" and g.op(t.op).attention is not None)
    context = r.config.main.workload.requests.context_len + 1
    assert kv_in_banks == 2 * m.n_layers * context * m.d_model * 2
    assert len(on_pim) == sum(1 for op in g.ops if op.matmul is not None or op.attention is not None)


def test_the_token_is_slower_than_reading_its_weights_at_the_internal_bandwidth(run):
    name, r = run
    m = r.main.metrics
    pim = r.main.system.hardware.gemv_pim
    assert m.iteration_latency_s * 1e9 >= m.bytes["pim_internal"] / internal_bw_gbps(pim, 8, 2)
    assert m.energy_breakdown_j["pim"] > 0 and m.energy_breakdown_j["dram"] > 0


# --------------------------------------------------------------------------- validate rows

def test_every_model_has_its_rows_and_the_cpu_is_not_reproduced():
    ids = {c.id for c in all_claims() if c.system == "PIM-GPT"}
    expected = ({f"pim-gpt.speedup_over_gpu.{m}" for m in MODELS}
                | {f"pim-gpt.energy_over_gpu.{m}" for m in MODELS}
                | {"pim-gpt.speedup_grows_with_model_size", "pim-gpt.speedup_over_cpu",
                   "pim-gpt.energy_over_cpu"})
    assert ids == expected
    for m in MODELS:
        assert REGISTRY[f"pim-gpt.speedup_over_gpu.{m}"].bounds == (41.0, 137.0)
        assert REGISTRY[f"pim-gpt.energy_over_gpu.{m}"].bounds == (123.0, 383.0)
    for cid in ("pim-gpt.speedup_over_cpu", "pim-gpt.energy_over_cpu"):
        assert evaluate_claim(REGISTRY[cid]).status == Status.NOT_REPRODUCED


def test_validate_json_rows_follow_the_contract():
    r = CliRunner().invoke(main, ["validate", "--only", "pim-gpt", "--json"])
    assert r.exit_code in (0, 3), r.output       # 3: a claim missed (a finding), never 1 or 2
    doc = json.loads(r.stdout)
    rows = {row["id"]: row for row in doc["claims"]}
    assert len(rows) == 2 * len(MODELS) + 3
    assert all(CONTRACT == set(row) for row in rows.values())
    for m in MODELS:
        row = rows[f"pim-gpt.speedup_over_gpu.{m}"]
        assert row["ours"] == pytest.approx(pim_gpt_run(m).speedup()["gpu"])
        assert row["status"] == ("pass" if 41 <= row["ours"] <= 137 else "fail")
    assert rows["pim-gpt.speedup_over_cpu"]["ours"] is None
    assert rows["pim-gpt.speedup_over_cpu"]["status"] == "not reproduced"


def test_check_runs_every_gemv_on_the_pim_kernel_and_vector_ops_on_the_asic(tmp_path):
    """`--check`: the GEMVs on the bank-partitioned PIM GEMV (fp16 accumulation, so it rounds),
    norms, softmax and activations on the ASIC's lanes; all within tolerance."""
    from hwsim.configs import CONFIG_DIR
    res = CliRunner().invoke(main, ["run", str(CONFIG_DIR / "pim-gpt.yaml"), "--check", "--json",
                                    "--out", str(tmp_path), "--set", "workload.model.n_layers=2"])
    assert res.exit_code == 0, res.output
    rows = [r for r in json.loads(res.stdout)["check_detail"]["rows"] if "main" in r["systems"]]
    units = {(r["op_kind"], r["unit"]) for r in rows}
    assert units == {("matmul", "gemv_pim"), ("attention_score", "gemv_pim"),
                     ("attention_context", "gemv_pim"), ("norm", "asic"), ("softmax", "asic"),
                     ("elementwise", "asic")}
    assert all(r["passed"] for r in rows)
    assert max(r["max_rel_error"] for r in rows if r["unit"] == "gemv_pim") > 0
    assert all("64 lanes" in r["kernel"] for r in rows if r["op_kind"] in ("norm", "softmax"))


@pytest.mark.parametrize("config, kind", [("pim-gpt.yaml", "gemv_pim"), ("neupims.yaml", "pim")])
def test_a_pim_in_a_memory_level_the_device_lacks_is_one_line_exit_2(tmp_path, config, kind):
    """Renaming the memory level under a PIM leaves the PIM's `level:` dangling: a bad input,
    named by its key, never a KeyError (found by the fuzz test)."""
    from hwsim.configs import CONFIG_DIR
    res = CliRunner().invoke(main, ["run", str(CONFIG_DIR / config), "--out", str(tmp_path),
                                    "--set", "hardware.memory.name=renamed"])
    assert res.exit_code == 2, res.output
    assert f"hardware.{kind}.level" in res.output and "renamed" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_a_mixture_of_experts_is_refused_in_one_line(tmp_path):
    """PIM-GPT maps dense decoders; a MoE router (top-k) has no unit: exit 2, never a traceback
    (it was an internal NoCostError)."""
    from conftest import assert_refused_in_one_line
    from hwsim.configs import CONFIG_DIR
    assert_refused_in_one_line(CONFIG_DIR / "pim-gpt.yaml", ["workload.model=mixtral-8x7b",
                                                            "hardware.memory.capacity_gib=128"],
                               ["workload.model", "mixtral-8x7b", "router", "dense decoders only"],
                               tmp_path)
