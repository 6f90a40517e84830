"""Every hostile input of issue 9 gets one line naming the file and key, and exit code 2 (or a
correct result): files that are not UTF-8, YAML bombs, strict types, non-finite and absurd
numbers, names that would escape results/, unwritable output paths, request CSVs, broken pipes,
oversized sweeps, exploding constraints, unknown or non-numeric pareto metrics and foreign
results stores.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwsim.cli import BROKEN_PIPE_EXIT, main
from hwsim.config.yamlio import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES
from hwsim.configs import CONFIG_DIR, SWEEPS_DIR
from hwsim.spec import MAX_MAGNITUDE, Spec
from hwsim.workloads.ops import MAX_BATCH

BASE = CONFIG_DIR / "gpt3-7b-npu.yaml"
BASE_TEXT = BASE.read_text()
TINY = SWEEPS_DIR / "tiny.yaml"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(*args) -> str:
    """Run the CLI in-process; assert exit 2 and one 'error:' line on stderr; return it."""
    result = cli(*args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def edited(old: str, new: str) -> str:
    assert BASE_TEXT.count(old) == 1, old
    return BASE_TEXT.replace(old, new)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- not UTF-8 text

NOT_UTF8 = {
    "utf16": BASE_TEXT.encode("utf-16"),
    "latin1": (BASE_TEXT + "# caf\u00e9\n").encode("latin-1"),
    "binary": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("command", ["run", "show"])
@pytest.mark.parametrize("kind", sorted(NOT_UTF8))
def test_config_that_is_not_utf8_text(tmp_path, command, kind):
    path = write(tmp_path / "bad.yaml", NOT_UTF8[kind])
    line = error_line(command, path)
    assert str(path) in line and "not UTF-8 text" in line


@pytest.mark.parametrize("kind", sorted(NOT_UTF8))
def test_sweep_spec_that_is_not_utf8_text(tmp_path, kind):
    path = write(tmp_path / "spec.yaml", TINY.read_text().encode("utf-16") if kind == "utf16" else NOT_UTF8[kind])
    line = error_line("sweep", path, "--out", tmp_path / "out")
    assert str(path) in line and "not UTF-8 text" in line
    assert not (tmp_path / "out").exists()


def test_sweep_base_that_is_not_utf8_text(tmp_path):
    base = write(tmp_path / "base.yaml", (CONFIG_DIR / "neupims.yaml").read_text().encode("utf-16"))
    spec = write(tmp_path / "spec.yaml", TINY.read_text().replace("base: ../neupims.yaml", "base: base.yaml"))
    line = error_line("sweep", spec, "--out", tmp_path / "out")
    assert str(base) in line and "not UTF-8 text" in line


def test_utf8_with_bom_is_read(tmp_path):
    path = write(tmp_path / "bom.yaml", b"\xef\xbb\xbf" + BASE_TEXT.encode())
    assert cli("show", path).exit_code == 0


# --------------------------------------------------------------------------- bounded YAML

def billion_laughs(levels: int = 9) -> str:
    text = "name: x\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, levels):
        text += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n"
    return text


@pytest.mark.parametrize("command", ["show", "sweep"])
def test_alias_bomb_fails_fast_naming_the_limit(tmp_path, command):
    path = write(tmp_path / "bomb.yaml", billion_laughs())
    start = time.perf_counter()
    line = error_line(command, path)
    assert time.perf_counter() - start < 1.0
    assert str(path) in line and f"{MAX_VALUES:,}" in line


def test_recursive_alias(tmp_path):
    path = write(tmp_path / "loop.yaml", "name: &a [1, *a]\n")
    assert "recursive alias" in error_line("show", path)


@pytest.mark.parametrize("text", ["name: " + "[" * 5000 + "]" * 5000 + "\n",
                                  "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n"])
def test_deep_nesting_names_the_limit(tmp_path, text):
    path = write(tmp_path / "deep.yaml", text)
    line = error_line("show", path)
    assert str(path) in line and f"deeper than {MAX_DEPTH} levels" in line


def test_file_size_limit(tmp_path):
    path = write(tmp_path / "big.yaml", BASE_TEXT + "#" * MAX_FILE_BYTES)
    line = error_line("show", path)
    assert str(path) in line and f"{MAX_FILE_BYTES:,}" in line


def test_control_characters_are_a_yaml_error(tmp_path):
    path = write(tmp_path / "nul.yaml", "name: x\x00\n")
    assert "YAML syntax error" in error_line("show", path)


def test_exponent_without_dot_is_a_number():
    """YAML 1.1 (PyYAML) reads 1e9 as text; hwsim reads it as the number it looks like."""
    result = cli("show", BASE, "--set", "hardware.npu.freq_ghz=1e0")
    assert result.exit_code == 0, result.output
    assert "freq_ghz: 1.0" in result.stdout


# --------------------------------------------------------------------------- strict types

@pytest.mark.parametrize("assignment, key, expected", [
    ('workload.batch="64"', "workload.batch", "the text '64'"),
    ("workload.batch=true", "workload.batch", "true (a boolean)"),
    ("workload.tp=true", "workload.tp", "true (a boolean)"),
    ("workload.batch=64.5", "workload.batch", "whole number"),
    ("workload.batch=64.0", "workload.batch", "whole number"),
    ('hardware.npu.freq_ghz="1.5"', "hardware.npu.freq_ghz", "expected a number"),
    ("hardware.npu.pipelined_folds=1", "hardware.npu.pipelined_folds", "true or false"),
    ("hardware.npu.rows=[128]", "hardware.npu.rows", "a list"),
])
def test_no_type_coercion(assignment, key, expected):
    line = error_line("show", BASE, "--set", assignment)
    assert f"--set: {key}:" in line and expected in line


def test_bool_tp_blames_tp_in_the_file(tmp_path):
    path = write(tmp_path / "c.yaml", edited("  tp: 4\n", "  tp: true\n"))
    line = error_line("run", path, "--out", tmp_path / "out")
    assert f"{path}:" in line and "workload.tp" in line and "workload.batch" not in line


def test_lists_still_fill_tuple_fields():
    result = cli("show", BASE, "--set", "workload.requests={distribution: list, lens: [100, 200]}")
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- finite and sane

@pytest.mark.parametrize("assignment, key, expected", [
    ("hardware.npu.freq_ghz=.inf", "hardware.npu.freq_ghz", "finite"),
    ("hardware.npu.freq_ghz=.nan", "hardware.npu.freq_ghz", "finite"),
    ("hardware.npu.freq_ghz=1e308", "hardware.npu.freq_ghz", f"{MAX_MAGNITUDE:g}"),
    ("hardware.npu.freq_ghz=1e-300", "hardware.npu.freq_ghz", "1e-12"),
    ("hardware.npu.sram_kib=.inf", "hardware.npu.sram_kib", "finite"),
    ("hardware.memory.capacity_gib=1e13", "hardware.memory.capacity_gib", f"{MAX_MAGNITUDE:g}"),
    ("workload.batch=1000000000000", "workload.batch", f"{MAX_BATCH}"),
    ("workload.batch=1048577", "workload.batch", f"{MAX_BATCH}"),
    ("baselines.gpu.hardware.gpu.peak_tflops.fp16=0", "baselines.gpu.hardware.gpu.peak_tflops.fp16", "greater than 0"),
    ("baselines.gpu.hardware.gpu.peak_tflops.fp16=-312", "baselines.gpu.hardware.gpu.peak_tflops.fp16", "greater than 0"),
    ("baselines.gpu.hardware.gpu.peak_tflops.fp16=.inf", "baselines.gpu.hardware.gpu.peak_tflops.fp16", "finite"),
    ("baselines.gpu.hardware.gpu.kernel_overhead_us.matmul=-21", "baselines.gpu.hardware.gpu.kernel_overhead_us.matmul", "greater than or equal to 0"),
    ("baselines.gpu.hardware.gpu.vector_tflops=-1", "baselines.gpu.hardware.gpu.vector_tflops", "greater than 0"),
    ("baselines.gpu.hardware.gpu.peak_tflops={}", "baselines.gpu.hardware.gpu.peak_tflops", "no tensor peak for"),
])
def test_values_must_be_finite_and_sane(tmp_path, assignment, key, expected):
    line = error_line("run", BASE, "--out", tmp_path / "out", "--set", assignment)
    assert f"--set: {key}:" in line and expected in line
    assert not (tmp_path / "out").exists()


def test_every_spec_inherits_the_strict_base():
    """Every model a user writes (run config and sweep spec, all the way down) is a Spec, so a
    new one cannot silently lose strict types or the finite/sane checks."""
    import typing

    from pydantic import BaseModel

    from hwsim.config.schema import RunConfig
    from hwsim.dse.spec import SweepSpec
    from hwsim.hw.dram import DramTiming
    from hwsim.mappers import MAPPERS

    seen: set[type] = set()

    def visit(annotation):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in seen:
                return
            seen.add(annotation)
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for arg in typing.get_args(annotation):
            visit(arg)

    for root in (RunConfig, SweepSpec, DramTiming, *(m.options for m in MAPPERS.values())):
        visit(root)
    assert len(seen) >= 15
    assert [m.__name__ for m in seen if not issubclass(m, Spec)] == []


def test_metrics_json_can_never_hold_inf():
    from hwsim.outputs import check_finite
    check_finite({"metrics": {"a": 1.0, "b": [2, 3.5]}})
    with pytest.raises(RuntimeError, match="metrics.b.1"):
        check_finite({"metrics": {"b": [1.0, float("inf")]}}, "metrics")


# --------------------------------------------------------------------------- names and output paths

@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", "..", ".hidden", ""])
def test_name_must_be_a_plain_name(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path / "..")
    path = write(tmp_path / "c.yaml", edited("name: gpt3-7b-npu\n", f"name: {json.dumps(name)}\n"))
    line = error_line("run", path)
    assert f"{path}:" in line and ": name: expected a plain name" in line
    assert not (tmp_path / "results").exists() and not Path("/tmp/abs").exists()


def test_sweep_name_must_be_a_plain_name(tmp_path):
    spec = write(tmp_path / "sweeps" / "s.yaml", TINY.read_text().replace("name: tiny", "name: ../../escape"))
    write(tmp_path / "neupims.yaml", (CONFIG_DIR / "neupims.yaml").read_text())
    line = error_line("sweep", spec)
    assert f"{spec}:" in line and "name" in line and "plain name" in line


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "tiny"
    result = cli("sweep", TINY, "--out", out, "--quiet", "--jobs", "1")
    assert result.exit_code == 0, result.output
    return out


def output_cases(tmp_path, sweep_dir):
    afile = write(tmp_path / "afile", "x")
    return [
        (("run", BASE, "--out", afile / "out"), "--out"),
        (("sweep", TINY, "--out", afile / "out", "--quiet"), "--out"),
        (("results", sweep_dir, "--csv", afile / "p.csv"), "--csv"),
        (("results", sweep_dir, "--parquet", afile / "p.parquet"), "--parquet"),
        (("pareto", sweep_dir, "--out", afile / "p.png"), "--out"),
    ]


def test_output_under_a_file(tmp_path, sweep_dir):
    for args, key in output_cases(tmp_path, sweep_dir):
        line = error_line(*args)
        assert f"{tmp_path / 'afile'}" in line and f": {key}:" in line and "is a file" in line, line


def test_output_on_a_read_only_filesystem(tmp_path, sweep_dir, monkeypatch):
    """The writability probe creates a scratch folder; a read-only filesystem refuses it."""
    import hwsim.outputs

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(hwsim.outputs.tempfile, "mkdtemp", read_only)
    cases = [(("run", BASE, "--out", tmp_path / "out"), "--out"),
             (("sweep", TINY, "--out", tmp_path / "out", "--quiet"), "--out"),
             (("results", sweep_dir, "--csv", tmp_path / "p.csv"), "--csv"),
             (("results", sweep_dir, "--parquet", tmp_path / "p.parquet"), "--parquet"),
             (("pareto", sweep_dir, "--out", tmp_path / "p.png"), "--out")]
    for args, key in cases:
        line = error_line(*args)
        assert f": {key}:" in line and "Read-only file system" in line, line
    assert not (tmp_path / "out").exists()


def test_output_checked_before_the_simulation(tmp_path, monkeypatch):
    import hwsim.pipeline
    monkeypatch.setattr(hwsim.pipeline, "evaluate", lambda *a, **k: pytest.fail("simulated anyway"))
    write(tmp_path / "afile", "x")
    error_line("run", BASE, "--out", tmp_path / "afile" / "out")


# --------------------------------------------------------------------------- request CSV

def test_request_csv_resolves_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "study"
    write(folder / "lens.csv", "context_len\n100\n300\n")
    path = write(folder / "c.yaml", edited("requests: {distribution: fixed, context_len: 1024}",
                                           "requests: {distribution: csv, path: lens.csv}"))
    monkeypatch.chdir(tmp_path)          # not the config's folder
    result = cli("show", path)
    assert result.exit_code == 0, result.output
    assert "- 100\n" in result.stdout and "- 300\n" in result.stdout


@pytest.mark.parametrize("csv_text, expected", [
    (None, "file not found"),
    ("context_len\n100\n1.5\n", "whole number"),
    ("context_len\n100\ninf\n", "whole number"),
    ("context_len\n", "no request lengths"),
    ("\xff\xfe\x00\x01", "not a CSV text file"),
])
def test_bad_request_csv(tmp_path, csv_text, expected):
    if csv_text is not None:
        (tmp_path / "lens.csv").write_bytes(csv_text.encode("latin-1"))
    path = write(tmp_path / "c.yaml", edited("requests: {distribution: fixed, context_len: 1024}",
                                             "requests: {distribution: csv, path: lens.csv}"))
    line = error_line("run", path, "--out", tmp_path / "out")
    assert str(path) in line and "workload.requests" in line and expected in line


# --------------------------------------------------------------------------- broken pipe

@pytest.mark.parametrize("args", [
    ("list", "configs"),
    ("scalesim", "--topology", CONFIG_DIR / "topologies" / "resnet18.csv"),
    ("run", BASE, "--json", "--out", "{tmp}/out"),
])
def test_broken_pipe_exits_quietly(tmp_path, args):
    """`hwsim ... | head -1`: the reader closes the pipe before hwsim writes."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("HWSIM_DEBUG", None)
    argv = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "hwsim.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()                  # the reader is gone before the first write
    stderr = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert code in (0, BROKEN_PIPE_EXIT), (code, stderr)
    assert stderr == "", stderr


# --------------------------------------------------------------------------- sweeps

def sweep_spec(tmp_path: Path, body: str) -> Path:
    write(tmp_path / "neupims.yaml", (CONFIG_DIR / "neupims.yaml").read_text())
    return write(tmp_path / "sweeps" / "s.yaml", "name: s\nbase: ../neupims.yaml\n" + body)


def test_grid_size_cap_names_the_count(tmp_path):
    spec = sweep_spec(tmp_path, "axes:\n"
                      "  - {key: hardware.pim.macs_per_bank, range: [1, 100000, 1]}\n"
                      "  - {key: workload.batch, range: [1, 100000, 1]}\n"
                      "  - {key: hardware.npu.freq_ghz, linspace: [0.5, 2.0, 100000]}\n")
    start = time.perf_counter()
    line = error_line("sweep", spec, "--out", tmp_path / "out")
    assert time.perf_counter() - start < 10
    assert f"{spec}:" in line and "axes" in line and "1,000,000,000,000,000 points" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("constraint, expected", [
    ("'a' * 10**12 == 'a'", "applies to numbers"),
    ("2**2**2**2**2**2 > area_mm2", "exceeds"),
    ("area_mm2 < 10**400", "exceeds"),
    ("area_mm2 < 1/0", "division by zero"),
    ("-" * 400 + "area_mm2 < 1", "deeper"),
    ("area_mm2 < " + "1" * 600, "at most 500 characters"),
])
def test_constraints_that_explode_fail_fast(tmp_path, constraint, expected):
    spec = sweep_spec(tmp_path, "axes:\n  - {key: workload.batch, values: [4, 8]}\n"
                      f"constraints: [{json.dumps(constraint)}]\n")
    start = time.perf_counter()
    line = error_line("sweep", spec, "--out", tmp_path / "out")
    assert time.perf_counter() - start < 5
    assert f"{spec}:" in line and "constraints.0" in line and expected in line


def test_constraint_overflow_at_a_point_is_a_violation_not_a_crash():
    from hwsim.dse.constraints import Constraint, violations
    c = Constraint.parse("x ** y < 1")
    assert "exceeds" in violations([c], {"x": 10, "y": 10**12})[0]
    assert "applies to numbers" in violations([Constraint.parse("x * 3 == 'aaa'")], {"x": "a"})[0]
    assert violations([Constraint.parse("x ** 2 <= 16")], {"x": 4}) == []


def test_pareto_refuses_unknown_maximize(sweep_dir):
    line = error_line("pareto", sweep_dir, "--maximize", "foo")
    assert "--maximize" in line and "unknown metric 'foo'" in line


def test_pareto_refuses_a_text_column(sweep_dir):
    line = error_line("pareto", sweep_dir, "--x", "status", "--y", "area_mm2")
    assert "--x" in line and "'status'" in line and "not numbers" in line


@pytest.fixture
def foreign_sqlite(tmp_path) -> Path:
    path = tmp_path / "foreign" / "results.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("command", ["results", "pareto", "sweep"])
def test_foreign_sqlite_is_refused_untouched(foreign_sqlite, command):
    before = sha(foreign_sqlite)
    folder = foreign_sqlite.parent
    args = ("sweep", TINY, "--out", folder, "--quiet") if command == "sweep" else (command, folder)
    line = error_line(*args)
    assert str(foreign_sqlite) in line and "not an hwsim results store" in line
    assert sha(foreign_sqlite) == before
    assert sorted(p.name for p in folder.iterdir()) == ["results.sqlite"]


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = write(tmp_path / "r" / "results.sqlite", "not a database\n")
    line = error_line("results", path.parent)
    assert "not an SQLite file" in line and path.read_text() == "not a database\n"


def test_a_real_store_still_reads(sweep_dir):
    result = cli("results", sweep_dir)
    assert result.exit_code == 0 and "9 points stored" in result.stdout


# --------------------------------------------------------------------------- a GPU profile's CSVs

def broken_profile(tmp_path: Path, file: str, edit) -> Path:
    """A copy of the H200 profile's CSVs with one file changed by `edit(text) -> text | bytes`."""
    from hwsim.hw.gpu_profile import IN_CONTEXT_FILE, POWER_FILE, PROFILE_FILES, profiles_dir
    folder = tmp_path / "my-gpu"
    folder.mkdir()
    for name in (*PROFILE_FILES, IN_CONTEXT_FILE, POWER_FILE):
        text = (profiles_dir() / "h200-sxm" / name).read_text()
        data = edit(text) if name == file else text
        write(folder / name, data)
    config = write(tmp_path / "gpu.yaml", f"""name: t
workload: {{model: llama2-7b, phase: prefill, batch: 1, dtype: bf16, lm_head: false,
           requests: {{distribution: fixed, context_len: 128}}}}
hardware: {{gpu: {{preset: h200-sxm, profile: {folder}}}}}
mapper: {{name: gpu}}
""")
    return config


def second_line_value(old: str, new: str):
    """Replace `old` in the file's first data row."""
    def edit(text: str) -> str:
        head, first, rest = text.split("\n", 2)
        assert old in first, (old, first)
        return "\n".join([head, first.replace(old, new, 1), rest])
    return edit


@pytest.mark.parametrize("file,edit,says", [
    ("gemm.csv", second_line_value("28.295", "abc"), "line 2, column us: 'abc' is not a finite number"),
    ("gemm.csv", second_line_value("28.295", "nan"), "column us: 'nan' is not a finite number"),
    ("gemm.csv", second_line_value("28.295", "-3"), "column us: '-3' is not a finite number"),
    ("gemm.csv", second_line_value(",1,", ",1.5,"), "column m: '1.5' is not a whole number"),
    ("power.csv", second_line_value("118.015", "inf"), "column power_w: 'inf' is not a finite number"),
    ("attention.csv", lambda t: t.replace(",backend,", ",engine,", 1), "no column backend"),
    ("launch.csv", lambda t: t.split("\n")[0] + "\n", "launch.csv: no rows"),
    ("elementwise.csv", lambda t: bytes(range(256)) * 4, "elementwise.csv: not a CSV text file"),
    ("power.csv", second_line_value("118.015", "900"), "draws no more than idle"),
])
def test_a_broken_gpu_profile_is_one_line_naming_the_file(tmp_path, file, edit, says):
    """A profile's measurements become every kernel's time: a value that is not a number, not
    finite, negative, a fraction where a count belongs, a missing column, no rows, a binary file
    or power figures the energy model cannot come from are refused, never silently used."""
    line = error_line("run", broken_profile(tmp_path, file, edit), "--out", tmp_path / "out")
    assert "hardware.gpu.profile" in line and file in line and says in line, line


@pytest.mark.parametrize("gpu,says", [
    ("{preset: h200-sxm, tdp_w: 50, idle_power_w: 60}", "tdp_w (50 W) must exceed idle_power_w (60 W)"),
    ("{preset: h200-sxm, profile: h200-sxm, tdp_w: 100}",
     "tdp_w (100 W) must exceed the profile's measured idle power (118.015 W)")])
def test_a_gpu_whose_power_limit_is_below_its_idle_power_is_refused(tmp_path, gpu, says):
    """The engine holds a pass at tdp_w: a card that draws more than that doing nothing has no
    operating point (before: 'internal error', exit 1)."""
    config = write(tmp_path / "gpu.yaml", f"""name: t
workload: {{model: llama2-7b, phase: decode, batch: 1, dtype: bf16, lm_head: false,
           requests: {{distribution: fixed, context_len: 128}}}}
hardware: {{gpu: {gpu}}}
mapper: {{name: gpu}}
""")
    line = error_line("run", config, "--out", tmp_path / "out")
    assert "hardware.gpu" in line and says in line, line
