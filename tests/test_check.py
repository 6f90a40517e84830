"""`hwsim run CONFIG --check`: every op kind of a run checked against float64, the JSON and table
it adds, its failure exit code, and replay by seed. Configs are cut to 2 layers to stay fast."""
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.configs import CONFIG_DIR

SMALL = ("--set", "workload.model.n_layers=2")


def run_check(config, tmp_path, *extra, env=None):
    return CliRunner().invoke(main, ["run", str(CONFIG_DIR / config), "--check", "--out", str(tmp_path),
                                     *SMALL, *extra], env=env)


def check_json(config, tmp_path):
    res = run_check(config, tmp_path, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_npu_config_checks_attention_matmul_softmax_norm(tmp_path):
    data = check_json("gpt3-7b-npu.yaml", tmp_path)
    check, detail = data["check"], data["check_detail"]
    assert {"attention_score", "attention_context", "matmul", "softmax", "norm",
            "elementwise", "all_reduce"} <= set(check)
    assert all(isinstance(v, float) for v in check.values())
    tolerance = {}
    for row in detail["rows"]:
        tolerance[row["op_kind"]] = max(tolerance.get(row["op_kind"], 0.0), row["tolerance"])
        assert row["max_rel_error"] <= row["tolerance"], row
    assert all(check[k] <= tolerance[k] for k in check)
    assert detail["passed"] and isinstance(detail["seed"], int)
    assert "embedding" in detail["not_computed"]
    units = {(r["op_kind"], r["unit"]) for r in detail["rows"] if "main" in r["systems"]}
    assert ("matmul", "npu/systolic") in units
    assert ("matmul", "gpu") in {(r["op_kind"], r["unit"]) for r in detail["rows"] if "gpu" in r["systems"]}


def test_neupims_attention_is_checked_on_the_pim_gemv_path(tmp_path):
    data = check_json("neupims.yaml", tmp_path)
    rows = data["check_detail"]["rows"]
    pim_rows = [r for r in rows if r["unit"] == "pim"]
    assert {r["op_kind"] for r in pim_rows} == {"attention_score", "attention_context"}
    assert all("main" in r["systems"] and r["accumulate"] == "fp16" and r["passed"] for r in pim_rows)
    assert max(r["max_rel_error"] for r in pim_rows) > 0        # fp16 adders do round
    softmax = [r for r in rows if r["op_kind"] == "softmax" and "main" in r["systems"]]
    assert [r["kernel"].split(" (")[0] for r in softmax] == ["vector softmax"]
    assert all(r["passed"] for r in rows)


def test_a_broken_kernel_fails_the_run_with_exit_1(tmp_path, monkeypatch):
    """Drop the last element of K (an off-by-one in the fold loop): the table still prints,
    marks matmul FAIL, and the command exits 1."""
    from hwsim.hw.kernels import systolic
    good = systolic.systolic_gemm
    monkeypatch.setattr(systolic, "systolic_gemm",
                        lambda a, b, rows, dataflow="ws", accumulate="fp32":
                        good(a[:, :-1], b[:-1], rows, dataflow, accumulate))
    res = run_check("gpt3-7b-npu.yaml", tmp_path)
    assert res.exit_code == 1, res.output
    failing = [line for line in res.stdout.splitlines() if line.rstrip().endswith("FAIL")]
    assert failing and all("systolic GEMM" in line for line in failing)
    assert "ERRORS ABOVE TOLERANCE" in res.stdout
    res = run_check("gpt3-7b-npu.yaml", tmp_path, "--json")
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert data["check"]["matmul"] > 1e-3 and not data["check_detail"]["passed"]


def test_seed_is_fresh_each_run_and_replays_from_the_environment(tmp_path):
    from hwsim.check import check_run
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    result = evaluate(load_config(CONFIG_DIR / "gpt3-7b-npu.yaml", ["workload.model.n_layers=1"]))
    first, second = check_run(result), check_run(result)
    assert first.seed != second.seed and first.errors() != second.errors()
    replay = check_run(result, seed=first.seed)
    assert replay.errors() == first.errors()
    pinned = run_check("gpt3-7b-npu.yaml", tmp_path, "--json", env={"HWSIM_CHECK_SEED": str(first.seed)})
    assert json.loads(pinned.stdout)["check_detail"]["seed"] == first.seed


def test_cnn_convolutions_are_checked_and_int8_is_exact(tmp_path):
    config = tmp_path / "cnn.yaml"
    config.write_text("name: cnn-check\n"
                      "workload: {kind: cnn, model: mobilenet_v2, batch: 1, dtype: int8}\n"
                      "hardware: {npu: neupims-npu, memory: hbm2-32ch}\n"
                      "mapper: {name: npu_only}\n")
    res = CliRunner().invoke(main, ["run", str(config), "--check", "--json", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {"conv", "depthwise_conv", "matmul"} <= set(data["check"])
    assert data["check"]["conv"] == data["check"]["depthwise_conv"] == data["check"]["matmul"] == 0.0


def test_plain_run_does_not_import_the_kernels(tmp_path):
    code = ("import sys; from click.testing import CliRunner; from hwsim.cli import main; "
            f"r = CliRunner().invoke(main, ['run', {str(CONFIG_DIR / 'gpt3-7b-npu.yaml')!r}, '--json', "
            f"'--out', {str(tmp_path)!r}, '--set', 'workload.model.n_layers=1']); "
            "assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m.startswith(('hwsim.check', 'hwsim.hw.kernels'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("dim,cap,quantum,expected", [(4096, 512, 128, 512), (1025, 1024, 128, 897),
                                                      (11008, 512, 128, 512), (11000, 512, 128, 504),
                                                      (40, 64, 1, 40)])
def test_scaling_keeps_the_partial_last_fold(dim, cap, quantum, expected):
    from hwsim.check_cases import _cap
    got = _cap(dim, cap, quantum)
    assert got == expected and got <= cap and (got % quantum == dim % quantum or dim <= cap)
    assert np.isscalar(got)


def test_score_and_context_on_the_array_are_separate_runs_and_fused_flash_is_one():
    """Prefill attention runs on the systolic array (score, context: two GEMMs, two runs); the
    GPU baseline runs score -> softmax -> context as one flash kernel (one run, three kinds)."""
    from hwsim.check_cases import cases_for
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    result = evaluate(load_config(CONFIG_DIR / "llama2-7b-prefill.yaml", ["workload.model.n_layers=1"]))
    main_cases = {c.kind: c for c, _ in cases_for(result.main)[0]}
    assert main_cases["attention_score"].unit == "npu/systolic"
    assert main_cases["attention_score"].key != main_cases["attention_context"].key
    gpu_cases = {c.kind: c for c, _ in cases_for(result.baselines["gpu"])[0]}
    assert (gpu_cases["attention_score"].key == gpu_cases["softmax"].key
            == gpu_cases["attention_context"].key)


# ---- MXFP4 weights on a GPU or an NPU (issue 15: what is new in arithmetic) -----------------------

def test_mxfp4_weights_are_checked_dequantized_against_float64(tmp_path):
    """A workload with `weight_dtype: mxfp4` checks its GEMMs with MXFP4 weights dequantized to the
    activations' bf16 (the reference: float64 on the dequantized weights); the same config with
    bf16 weights checks plain bf16 x bf16."""
    def rows_of(config, *extra):
        res = run_check(config, tmp_path, "--json", *extra)
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)["check_detail"]["rows"]
    for config in ("gpt-oss-120b-h100.yaml", "sn40l-gpt-oss-120b.yaml"):
        rows = rows_of(config)
        gemms = [r for r in rows if r["op_kind"] in ("matmul", "router")]
        assert gemms and all("x mxfp4 (dequantized to bf16)" in r["precision"] for r in gemms), rows
        assert all(r["max_rel_error"] <= r["tolerance"] for r in gemms)
    rows = rows_of("gpt-oss-120b-h100.yaml", "--set", "workload.weight_dtype=bf16")
    assert {r["precision"] for r in rows if r["op_kind"] == "matmul"} == {"bf16 x bf16 -> fp32"}


@pytest.mark.parametrize("k", [64, 100, 31])
def test_mxfp4_check_weights_are_on_the_fp4_grid_and_exact_in_bf16(k):
    """The check's weights are MXFP4 values (an E2M1 value times its block's power of two; a
    partial last block padded), so dequantizing them to bf16 loses nothing and the kernel's
    error is the GEMM's alone."""
    from hwsim.hw.kernels.cases import _mxfp4_weights
    from hwsim.hw.kernels.mxfp4 import BLOCK, VALUES
    from hwsim.hw.kernels.numerics import quantize
    w = _mxfp4_weights(np.random.default_rng(k), k, 5)
    assert w.shape == (k, 5) and np.any(w != 0)
    for b in range(0, k, BLOCK):
        block = w[b:b + BLOCK]
        scale = 2.0 ** (np.floor(np.log2(np.abs(block).max(axis=0))) - 2)   # each column's E8M0 scale
        assert np.all(np.isin(block / scale, VALUES)), (b, block / scale)
    assert np.array_equal(quantize(w, "bf16").astype(np.float64), w)


def test_mxfp4_case_with_a_lossy_dequantization_fails():
    """The reference keeps the float64 dequantized weights: the case passes, and a kernel fed
    weights dequantized wrongly (off by an eighth) would fail the bf16 tolerance."""
    from hwsim.hw.kernels import cases
    from hwsim.hw.kernels.numerics import TOLERANCE, max_rel_error
    case = cases._gemm_case("matmul", "gpu", None, 8, 16, 256, "bf16", weight_format="mxfp4")
    assert case.precision == "bf16 x mxfp4 (dequantized to bf16) -> fp32"
    y, ref = case.run(np.random.default_rng(0))
    assert max_rel_error(y, ref) <= TOLERANCE[case.accumulate]
    good = cases._mxfp4_weights(np.random.default_rng(1), 256, 16)
    a = np.random.default_rng(2).standard_normal((8, 256)).astype(np.float32)
    bad = good * (1 + 2.0 ** -3)                  # a dequantization off by an eighth
    assert max_rel_error((a @ bad.astype(np.float32)), a.astype(np.float64) @ good) > TOLERANCE[case.accumulate]
