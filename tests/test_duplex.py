"""Duplex (hwsim.hw.duplex, mappers/duplex.py, configs/duplex.yaml): Op/B from the op graph (GQA
group g gives ~g in decode), placement by Op/B and co-processing, physics (no op beats its
roofline on the unit that ran it, Logic-PIM never reads faster than the TSVs provide, bytes
conserved), the Logic-PIM GEMM's accumulation precision, bad inputs, the validate rows."""
import functools

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.config.loader import load_config
from hwsim.configs import CONFIG_DIR
from hwsim.hw.duplex import LogicPIMSpec, logic_pim_gemm, op_per_byte
from hwsim.workloads.ops import OpKind

CONFIG = CONFIG_DIR / "duplex.yaml"


@functools.cache
def run(*overrides):
    from hwsim.pipeline import evaluate
    return evaluate(load_config(CONFIG, ["baselines={}", *overrides])).main


def _placed(r, kind):
    return [p for p in r.schedule.placement["ops"] if p["kind"] == kind]


@pytest.mark.parametrize("model,tp,g", [("llama2-7b", 1, 1), ("mixtral-8x7b", 2, 4),
                                        ("llama3-70b", 4, 8)])
def test_gqa_group_g_gives_about_g_op_per_byte_in_decode(model, tp, g):
    """Decode attention reads each K (V) element once for g query heads: 2 g FLOPs per 2 bytes.
    The query, scores and outputs add a little traffic, so Op/B is just under g."""
    r = run(f"workload.model={model}", f"workload.tp={tp}")
    for kind in ("attention_score", "attention_context"):
        rows = _placed(r, kind)
        assert rows
        for p in rows:
            assert 0.93 * g <= p["op_per_byte_self"] <= g * (1 + 1e-9), (kind, p)
            assert p["unit"] == "duplex"          # g <= 8 is far below the ~31 Op/B crossover


def test_expert_op_per_byte_is_about_its_tokens():
    """An expert GEMM that receives t tokens does 2 t FLOPs per 2-byte weight: Op/B ~ t."""
    r = run()
    ops = [op for op in r.graph.ops if op.expert is not None and op.kind == OpKind.MATMUL]
    assert ops
    for op in ops:
        t = op.matmul.m
        assert 0.9 * t <= op_per_byte(op) <= t * (1 + 1e-9)


def test_threshold_and_co_processing_placement():
    r = run()
    pl = r.schedule.placement
    # the default threshold: Logic-PIM peak / xPU peak bandwidth = 102.4 TFLOPS / 3.35 TB/s
    assert pl["threshold_op_per_byte"] == pytest.approx(102.4e3 / 3350, rel=1e-9)
    by_unit = {}
    for p in pl["ops"]:
        by_unit.setdefault(p["unit"], set()).add(p["kind"])
    # dense GEMMs at batch 64 (Op/B ~ 61) stay on the xPU; norms and the router too
    for p in pl["ops"]:
        if p["kind"] in ("norm", "router") or (p["kind"] == "matmul" and p["expert"] is None):
            assert p["unit"] == "gpu", p
    # co-processing: each layer's experts on both units, the xPU's with the higher Op/B
    layer0 = [p for p in pl["ops"] if p["layer"] == 0 and p["expert"] is not None]
    on_x = [p["op_per_byte"] for p in layer0 if p["unit"] == "gpu"]
    on_p = [p["op_per_byte"] for p in layer0 if p["unit"] == "duplex"]
    assert on_x and on_p and min(on_x) >= max(on_p)
    # the tasks ran where the placement says
    unit_of = {(p["op"]): p["unit"] for p in pl["ops"]}
    for t in r.schedule.tasks:
        if t.op in unit_of and t.component != "link":
            assert t.component == unit_of[t.op], t.name


def test_fixed_threshold_extremes():
    """Threshold above every Op/B: all weight GEMMs and attention on Logic-PIM; below every Op/B:
    everything on the xPU, which then runs as the plain GPU does."""
    r_all = run("mapper.co_processing=false", "mapper.opb_threshold=1000")
    for p in r_all.schedule.placement["ops"]:
        if p["kind"] in ("matmul", "attention_score", "attention_context"):
            assert p["unit"] == "duplex", p
    r_none = run("mapper.co_processing=false", "mapper.opb_threshold=0.001")
    assert {p["unit"] for p in r_none.schedule.placement["ops"]} == {"gpu"}
    from hwsim.pipeline import evaluate
    gpu = evaluate(load_config(CONFIG, ["baselines={}", "mapper.name=gpu"])).main
    assert r_none.metrics.throughput_per_s == pytest.approx(gpu.metrics.throughput_per_s, rel=0.02)
    # co-processing is never slower than the fixed threshold
    fixed = run("mapper.co_processing=false")
    assert run().metrics.throughput_per_s >= fixed.metrics.throughput_per_s * 0.999


def _durations(r):
    return {t.id: r.trace.end_ns[t.id] - r.trace.start_ns[t.id] for t in r.schedule.tasks}


def test_no_op_beats_its_roofline_on_the_unit_that_ran_it():
    r = run()
    dur = _durations(r)
    assert any(t.component == "duplex" for t in r.schedule.tasks)
    for t in r.schedule.tasks:
        assert dur[t.id] >= t.roofline_ns * (1 - 1e-9), t.name


def test_logic_pim_reads_no_faster_than_the_tsvs_provide():
    r = run()
    device = load_config(CONFIG).hardware.device(("gpu", "duplex"))
    pim, level = device.spec("duplex"), device.level_of("duplex")
    tsv = pim.tsv_bw_gbps(level)
    assert tsv == pytest.approx(4 * 3350)
    dur = _durations(r)
    total = 0.0
    for t in r.schedule.tasks:
        nbytes = t.bytes_by_level.get("hbm", 0.0)
        total += nbytes
        if t.component == "duplex" and dur[t.id] > 0:
            assert nbytes / dur[t.id] <= tsv * (1 + 1e-9), t.name
    # all DRAM traffic of the device (xPU and Logic-PIM) crosses the TSVs within the iteration
    span = max(r.trace.end_ns) - min(r.trace.start_ns)
    assert total / span <= tsv


def test_bytes_conserved():
    """Logic-PIM reads exactly what its ops touch; weights and KV are each read once per step
    (xPU or Logic-PIM), so the HBM traffic covers them; an attention split by requests reads
    its KV exactly once."""
    r = run()
    ops = {op.name: op for op in r.graph.ops}
    hbm = sum(t.bytes_by_level.get("hbm", 0.0) for t in r.schedule.tasks)
    must = sum(op.weight_bytes + op.kv_read_bytes for op in r.graph.ops)
    assert hbm >= must * (1 - 1e-9)
    for t in r.schedule.tasks:
        if t.component == "duplex" and "@" not in t.name:
            assert t.bytes_by_level["hbm"] == ops[t.op].memory_bytes
    # a mixed batch: 3 requests decoding, 1 prefilling 512 tokens
    m = run("workload.phase=mixed", "workload.batch=4",
            "workload.requests={distribution: list, lens: [1000, 1000, 1000, 0], new_tokens: [1, 1, 1, 512]}")
    score = next(op for op in m.graph.ops if op.kind == OpKind.ATTENTION_SCORE)
    parts = [t for t in m.schedule.tasks if t.op == score.name]
    assert {t.component for t in parts} == {"gpu", "duplex"}      # attention co-processing
    rows = [p for p in m.schedule.placement["ops"] if p["op"] == score.name]
    assert {p["unit"]: p["requests"] for p in rows} == {"duplex": 3, "gpu": 1}


def test_logic_pim_gemm_accumulation_precision():
    """fp32 running sums stay at fp16-operand accuracy; fp16 running sums lose digits with k."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 4096)).astype(np.float16)
    b = rng.standard_normal((4096, 8)).astype(np.float16)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    err = {acc: np.max(np.abs(logic_pim_gemm(a, b, 16, acc) - ref)) / np.max(np.abs(ref))
           for acc in ("fp32", "fp16")}
    assert err["fp32"] < 1e-5
    assert err["fp16"] > 10 * err["fp32"]


def test_check_covers_logic_pim():
    from hwsim.check import check_run
    from hwsim.pipeline import evaluate
    report = check_run(evaluate(load_config(CONFIG, ["baselines={}"])), seed=0)
    rows = [row for row in report.rows if row.unit == "duplex"]
    assert {row.op_kind for row in rows} >= {"matmul", "attention_score", "attention_context"}
    assert all(row.passed and row.accumulate == "fp32" for row in rows), rows


@pytest.mark.parametrize("override,key", [
    ("hardware.duplex.stacks=4", "hardware.duplex.stacks"),
    ("hardware.duplex.level=ddr", "hardware.duplex.level"),
    ("hardware.duplex.tsv_bw_ratio=-1", "hardware.duplex.tsv_bw_ratio"),
    ("hardware.duplex.accumulate=int4", "hardware.duplex.accumulate"),
    ("mapper.opb_threshold=0", "mapper.opb_threshold"),
])
def test_bad_inputs_exit_2_naming_the_key(override, key):
    from hwsim.cli import main
    res = CliRunner().invoke(main, ["run", str(CONFIG), "--set", override, "--set", "baselines={}",
                                    "--out", "/tmp/hwsim-test-duplex-bad"])
    assert res.exit_code == 2, res.output
    assert key in (res.output + (res.stderr if res.stderr_bytes is not None else ""))


def test_spec_defaults_are_the_preset():
    """The preset and the spec agree (the preset states the sources)."""
    device = load_config(CONFIG).hardware.device(("gpu", "duplex"))
    assert device.spec("duplex") == LogicPIMSpec()


def test_validate_rows_exist():
    from hwsim.validate import REGISTRY, all_claims
    all_claims()
    assert REGISTRY["duplex.throughput_over_gpu"].published == 2.67
    assert REGISTRY["duplex.energy_reduction_vs_gpu"].published == 0.42
    assert REGISTRY["duplex.area_overhead"].published == 0.1471


def test_logic_pim_beats_bank_and_bankgroup_pim():
    """The same Op/B placement on PIM in the banks (9x the bandwidth, 1 FLOP per byte of it) or
    bank groups (3x): GQA attention (Op/B ~4) and the experts (~10-20) are compute-bound there, and
    bank groups have a third of the banks' rates, so Duplex > Bank-PIM > BankGroup-PIM."""
    from hwsim.validate.duplex import duplex_run
    sp = duplex_run().speedup()
    assert 1.0 < sp["bank_pim"] < sp["bankgroup_pim"]
    device = load_config(CONFIG).baselines["bank_pim"].hardware.device(("gpu", "duplex"))
    bank = device.spec("duplex")
    assert bank.peak_flops_per_ns() == pytest.approx(bank.tsv_bw_gbps(device.level_of("duplex")) * 1.0,
                                                     rel=1e-3)      # 1 FLOP per byte of internal bandwidth
