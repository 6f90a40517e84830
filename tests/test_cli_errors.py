"""End-to-end CLI behaviour on bad and good input.

Every bad input must exit with code 2 and print exactly one line on stderr, starting with
"error:", that names the file (or `--set`) and the dotted key, and never a traceback. The good
path must print one JSON object with the documented keys and write the results folder.

Bad configs are small edits of the shipped configs/gpt3-7b-npu.yaml written into tmp_path.
Most cases use click's CliRunner (fast, in-process); a few use a real subprocess to check the
process exit code and that stderr carries no traceback.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.configs import CONFIG_DIR

BASE = CONFIG_DIR / "gpt3-7b-npu.yaml"
BASE_TEXT = BASE.read_text()

METRIC_KEYS = {"throughput_tokens_per_s", "iteration_latency_s", "energy_j",
               "energy_per_token_j", "roofline_bound_s", "utilization", "bytes"}
RESULT_FILES = ("config.yaml", "metrics.json", "metrics.csv", "timeline.csv", "trace.json",
                "roofline.svg", "timeline.svg")


# --------------------------------------------------------------------------- helpers

def edited(*edits: tuple[str, str]) -> str:
    """The shipped config with each (old, new) replaced; each `old` must occur exactly once."""
    text = BASE_TEXT
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} should occur once in {BASE.name}"
        text = text.replace(old, new)
    return text


def write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def subprocess_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("HWSIM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "hwsim.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def error_line(exit_code: int, stdout: str, stderr: str) -> str:
    """Assert the bad-input contract and return the single error line."""
    assert "Traceback" not in stderr, stderr
    assert exit_code == 2, f"exit code {exit_code}; stderr: {stderr!r}"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    assert lines[0].startswith("error:"), lines[0]
    assert stdout.strip() == "", f"nothing should go to stdout on error: {stdout!r}"
    return lines[0]


def run_error(*args) -> str:
    result = cli(*args)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return error_line(result.exit_code, result.stdout, result.stderr)


def bad_config(tmp_path: Path, *edits, extra_args=()) -> tuple[Path, str]:
    path = write(tmp_path, edited(*edits))
    return path, run_error("run", path, "--out", tmp_path / "out", *extra_args)


# --------------------------------------------------------------------------- file / YAML level

def test_missing_file_subprocess(tmp_path):
    path = tmp_path / "does-not-exist.yaml"
    proc = subprocess_cli("run", path, "--out", tmp_path / "out")
    line = error_line(proc.returncode, proc.stdout, proc.stderr)
    assert str(path) in line and "not found" in line


def test_yaml_syntax_error_names_line(tmp_path):
    text = edited(("  batch: 64\n", "  batch: [64\n"))
    path = write(tmp_path, text)
    line = run_error("run", path)
    assert f"{path}:" in line and "YAML syntax error" in line
    # the line number is named (PyYAML marks where it noticed the problem: at or after line 7)
    lineno = int(line.split(f"{path}:")[1].split(":")[0])
    assert lineno >= 7


def test_yaml_syntax_error_bad_indent(tmp_path):
    path = write(tmp_path, "name: x\nworkload:\n  model: gpt3-7b\n   batch: 4\n")
    line = run_error("show", path)
    assert f"{path}:" in line and "YAML syntax error" in line


def test_duplicate_key_names_key_and_lines(tmp_path):
    _, line = bad_config(tmp_path, ("  batch: 64\n", "  batch: 64\n  batch: 32\n"))
    assert "workload.batch" in line and "duplicate key 'batch'" in line
    assert ":8:" in line and "line 7" in line            # the second and the first occurrence


@pytest.mark.parametrize("text", ["- just\n- a list\n", "42\n"])
def test_config_not_a_mapping(tmp_path, text):
    path = write(tmp_path, text)
    line = run_error("run", path)
    assert str(path) in line and "mapping" in line


def test_empty_config_names_missing_key(tmp_path):
    path = write(tmp_path, "")
    line = run_error("run", path)
    assert str(path) in line and "name" in line and "missing" in line


# --------------------------------------------------------------------------- unknown keys

@pytest.mark.parametrize("edit, key, suggestion", [
    (("  npu: neupims-npu\n", "  npu: {preset: neupims-npu, freq_ghzz: 1.5}\n"),
     "hardware.npu.freq_ghzz", "freq_ghz"),
    (("  batch: 64\n", "  bach: 64\n"), "workload.bach", "batch"),
    (("\nworkload:\n", "\nworkloadd:\n"), "workloadd", "workload"),
    (("  requests: {distribution: fixed, context_len: 1024}\n",
      "  requests: {distribution: fixed, context_lenn: 1024}\n"),
     "workload.requests.context_lenn", "context_len"),
    (("    mapper: {name: gpu}\n", "    mapper: {name: gpu}\n    workload: {tpp: 2}\n"),
     "baselines.gpu.workload.tpp", "tp"),
])
def test_unknown_key_did_you_mean(tmp_path, edit, key, suggestion):
    path, line = bad_config(tmp_path, edit)
    assert str(path) in line
    assert key in line
    assert f"did you mean '{suggestion}'" in line


def test_unknown_key_line_number(tmp_path):
    path, line = bad_config(tmp_path, ("  batch: 64\n", "  bach: 64\n"))
    assert f"{path}:7:" in line


# --------------------------------------------------------------------------- bad values

def test_wrong_type(tmp_path):
    path, line = bad_config(tmp_path, ("  npu: neupims-npu\n",
                                       "  npu: {preset: neupims-npu, freq_ghz: fast}\n"))
    assert str(path) in line and "hardware.npu.freq_ghz" in line and "'fast'" in line


@pytest.mark.parametrize("edit, key", [
    (("  batch: 64\n", "  batch: 0\n"), "workload.batch"),
    (("  batch: 64\n", "  batch: -3\n"), "workload.batch"),
    (("  tp: 4\n", "  tp: 0\n"), "workload.tp"),
    (("  npu: neupims-npu\n", "  npu: {preset: neupims-npu, rows: -1}\n"), "hardware.npu.rows"),
    (("  npu: neupims-npu\n", "  npu: {preset: neupims-npu, freq_ghz: 0}\n"),
     "hardware.npu.freq_ghz"),
])
def test_zero_and_negative_sizes(tmp_path, edit, key):
    path, line = bad_config(tmp_path, edit)
    assert str(path) in line and key in line and "greater than 0" in line


# --------------------------------------------------------------------------- names

def test_unknown_hardware_preset(tmp_path):
    path, line = bad_config(tmp_path, ("      gpu: a100-40gb\n", "      gpu: a100-40g\n"))
    assert str(path) in line and "baselines.gpu.hardware.gpu" in line
    assert "unknown preset 'a100-40g'" in line and "did you mean 'a100-40gb'" in line


def test_unknown_model_preset(tmp_path):
    path, line = bad_config(tmp_path, ("  model: gpt3-7b\n", "  model: gpt3-7bb\n"))
    assert str(path) in line and "workload.model" in line and "did you mean 'gpt3-7b'" in line


def test_preset_of_the_wrong_component(tmp_path):
    path, line = bad_config(tmp_path, ("  npu: neupims-npu\n", "  npu: a100-40gb\n"))
    assert str(path) in line and "hardware.npu" in line and "gpu" in line


def test_unknown_mapper(tmp_path):
    path, line = bad_config(tmp_path, ("  name: npu_only\n", "  name: npu_onyl\n"))
    assert str(path) in line and "mapper.name" in line
    assert "unknown mapper 'npu_onyl'" in line and "did you mean 'npu_only'" in line


def test_unknown_baseline_mapper(tmp_path):
    path, line = bad_config(tmp_path, ("    mapper: {name: gpu}\n", "    mapper: {name: gpuu}\n"))
    assert str(path) in line and "baselines.gpu.mapper.name" in line and "'gpu'" in line


def test_unknown_mapper_option(tmp_path):
    path, line = bad_config(tmp_path, ("  name: npu_only\n", "  name: npu_only\n  tiles: 4\n"))
    assert str(path) in line and "mapper.tiles" in line


@pytest.mark.parametrize("assignment, expected", [
    ("mapper.channel_asignment=rr", "did you mean 'channel_assignment'"),
    ("mapper.channel_assignment=xx", "'clb' or 'rr'"),
    ("baselines.npu_pim_naive.mapper.channel_assignment=rr",
     "unknown option 'channel_assignment' of mapper 'npu_pim_naive'"),
])
def test_bad_mapper_option_value(assignment, expected):
    config = CONFIG_DIR / "neupims.yaml"
    if not config.exists():
        pytest.skip("needs the shipped neupims config (a mapper with options)")
    line = run_error("show", config, "--set", assignment)
    assert "--set" in line and assignment.split("=")[0] in line and expected in line


def test_mapper_missing_its_hardware(tmp_path):
    path, line = bad_config(tmp_path, ("  npu: neupims-npu\n", ""))
    assert str(path) in line and "hardware.npu" in line and "npu_only" in line


def test_tensor_parallel_without_link(tmp_path):
    path, line = bad_config(tmp_path, ("  link: nvlink3\nmapper", "mapper"))
    assert str(path) in line and "hardware.link" in line


# --------------------------------------------------------------------------- does not fit

def test_batch_does_not_fit_memory_subprocess(tmp_path):
    path = write(tmp_path, edited(("  batch: 64\n", "  batch: 100000\n")))
    proc = subprocess_cli("run", path, "--out", tmp_path / "out")
    line = error_line(proc.returncode, proc.stdout, proc.stderr)
    assert str(path) in line and "workload.batch" in line
    assert "GB" in line and "does not fit" in line
    assert not (tmp_path / "out").exists()


def test_large_model_does_not_fit_one_device(tmp_path):
    path, line = bad_config(tmp_path, ("  model: gpt3-7b\n", "  model: gpt3-175b\n"),
                            ("  tp: 4\n", "  tp: 1\n"))
    assert str(path) in line and "workload.batch" in line and "gpt3-175b" in line
    assert line.count("GB") >= 3             # weights, KV cache and memory are quoted


def test_context_longer_than_max_seq_len(tmp_path):
    path, line = bad_config(tmp_path, ("context_len: 1024", "context_len: 4096"))
    assert str(path) in line and "workload.requests" in line and "max_seq_len=2048" in line


# --------------------------------------------------------------------------- --set

def test_set_bad_value():
    line = run_error("run", BASE, "--set", "hardware.npu.freq_ghz=-1")
    assert "--set" in line and "hardware.npu.freq_ghz" in line and "greater than 0" in line


def test_set_malformed():
    line = run_error("run", BASE, "--set", "foo")
    assert "--set" in line and "KEY=VALUE" in line and "foo" in line


def test_set_unknown_key():
    line = run_error("show", BASE, "--set", "hardware.npu.freq_ghzz=2")
    assert "--set" in line and "hardware.npu.freq_ghzz" in line and "did you mean 'freq_ghz'" in line


def test_set_unknown_section_names_set():
    line = run_error("show", BASE, "--set", "workloadd.batch=2")
    assert "--set" in line and "workloadd" in line


def test_set_into_a_scalar():
    line = run_error("show", BASE, "--set", "workload.batch.x=1")
    assert "--set" in line and "workload.batch" in line and "not a section" in line


def test_set_unknown_preset():
    line = run_error("show", BASE, "--set", "workload.model=gpt3-13bb")
    assert "--set" in line and "workload.model" in line and "did you mean 'gpt3-13b'" in line


def test_set_batch_that_does_not_fit():
    line = run_error("run", BASE, "--set", "workload.batch=100000")
    assert "workload.batch" in line and "GB" in line


# --------------------------------------------------------------------------- good paths

def _check_metrics(metrics: dict):
    assert METRIC_KEYS <= set(metrics), METRIC_KEYS - set(metrics)
    for k in METRIC_KEYS - {"utilization", "bytes"}:
        assert isinstance(metrics[k], float) and math.isfinite(metrics[k]) and metrics[k] > 0, k
    assert isinstance(metrics["utilization"], dict) and metrics["utilization"]
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 + 1e-9
               for v in metrics["utilization"].values()), metrics["utilization"]
    assert isinstance(metrics["bytes"], dict) and metrics["bytes"]
    assert all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
               for v in metrics["bytes"].values()), metrics["bytes"]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("good") / "results"
    proc = subprocess_cli("run", BASE, "--out", out, "--json")
    return proc, out


def test_run_json_subprocess(good_run):
    proc, _ = good_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)                # exactly one JSON object, nothing else
    assert isinstance(doc, dict)
    assert doc["name"] == "gpt3-7b-npu"
    _check_metrics(doc["metrics"])
    assert doc["baselines"], "the shipped config has a gpu baseline"
    for name, baseline in doc["baselines"].items():
        _check_metrics(baseline["metrics"])
        assert isinstance(doc["speedup"][name], float) and doc["speedup"][name] > 0
    assert set(doc["speedup"]) == set(doc["baselines"])
    speedup = doc["metrics"]["throughput_tokens_per_s"] / \
        doc["baselines"]["gpu"]["metrics"]["throughput_tokens_per_s"]
    assert doc["speedup"]["gpu"] == pytest.approx(speedup)


def test_run_writes_results_folder(good_run):
    proc, out = good_run
    assert proc.returncode == 0, proc.stderr
    for name in RESULT_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    trace = json.loads((out / "trace.json").read_text())
    assert isinstance(trace["traceEvents"], list) and trace["traceEvents"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["throughput_tokens_per_s"] == \
        json.loads(proc.stdout)["metrics"]["throughput_tokens_per_s"]
    import xml.etree.ElementTree as ET
    for plot in ("roofline.svg", "timeline.svg"):
        assert ET.parse(out / plot).getroot().tag == "{http://www.w3.org/2000/svg}svg"


def test_set_changes_the_result(good_run, tmp_path):
    proc, _ = good_run
    before = json.loads(proc.stdout)["metrics"]["throughput_tokens_per_s"]
    result = cli("run", BASE, "--out", tmp_path / "fast", "--json",
                 "--set", "hardware.npu.freq_ghz=2")
    assert result.exit_code == 0, result.output
    after = json.loads(result.stdout)["metrics"]["throughput_tokens_per_s"]
    assert after > before


def test_show_prints_the_override():
    import yaml
    result = cli("show", BASE, "--set", "hardware.npu.freq_ghz=2")
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.stdout)
    assert resolved["hardware"]["npu"]["freq_ghz"] == 2.0
    assert "freq_ghz: 2.0" in result.stdout
    # presets are expanded and baselines inherit the main workload
    assert resolved["workload"]["model"]["name"] == "gpt3-7b"
    assert resolved["baselines"]["gpu"]["workload"]["batch"] == 64


@pytest.mark.parametrize("what, expected", [
    ("models", {"gpt3-7b", "gpt3-175b"}),
    ("presets", {"neupims-npu", "a100-40gb", "hbm2-32ch", "nvlink3"}),
    ("mappers", {"npu_only", "gpu"}),
    ("configs", {"gpt3-7b-npu", "neupims-gpt3-175b", "tpu-like"}),
    ("sweeps", {"neupims-space"}),
])
def test_list(what, expected):
    result = cli("list", what)
    assert result.exit_code == 0, result.output
    names = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert expected <= names


def test_list_unknown_category_is_usage_error():
    result = cli("list", "widgets")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_the_console_script_keeps_exit_codes_and_output(tmp_path):
    """`hwsim` (hwsim.cli:entry, `main` with the garbage collector set for a batch process)
    exits as `main` does: 0 with its output, 2 with one line for a bad input."""
    import subprocess
    import sys
    code = "import sys; from hwsim.cli import entry; sys.argv = ['hwsim'] + sys.argv[1:]; entry()"
    ok = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True,
                        cwd=tmp_path)
    assert ok.returncode == 0 and "version" in ok.stdout
    bad = subprocess.run([sys.executable, "-c", code, "run", "missing.yaml"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing.yaml" in bad.stderr
