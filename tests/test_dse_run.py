"""Running sweeps: the results store, resume after a kill, serial = parallel = dask, failures.

Every sweep here is the NeuPIMs system shrunk to one or two decoder layers and small batches
(a few to a few tens of milliseconds per point).
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hwsim.configs import CONFIG_DIR
from hwsim.dse import load_results, run_sweep

from hwsim.cli import main

BASE = CONFIG_DIR / "neupims.yaml"
TINY = CONFIG_DIR / "sweeps" / "tiny.yaml"
VOLATILE = ["elapsed_s", "created_at"]     # the only columns allowed to differ between runs


def write_spec(tmp_path: Path, body: str, name: str = "spec.yaml", layers: int = 1) -> Path:
    path = tmp_path / name
    path.write_text(f"name: test\nbase: {BASE}\nset: {{workload.model.n_layers: {layers}}}\n{body}")
    return path


def table(out_dir):
    """The stored points without run-dependent columns, indexed and sorted by point_id."""
    df = load_results(out_dir)
    return df.drop(columns=VOLATILE).set_index("point_id").sort_index()


def assert_same_results(a, b):
    import pandas as pd
    pd.testing.assert_frame_equal(table(a), table(b), check_exact=True)


def stored_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:     # tables not created yet
        return 0


# --------------------------------------------------------------------------- store and CLI

def test_store_has_a_row_per_point_with_axis_and_metric_columns(tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(TINY), "--out", str(tmp_path / "out"),
                                       "--jobs", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "9 evaluated (9 ok)" in result.output
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [r[1] for r in conn.execute("PRAGMA table_info(points)")]
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    for col in ("point_id", "status", "error", "hwsim_version", "elapsed_s", "created_at",
                "hardware.pim.macs_per_bank", "workload.batch", "throughput_tokens_per_s",
                "energy_per_token_j", "utilization.npu", "bytes.hbm"):
        assert col in columns, col
    assert json.loads(meta["spec_yaml"]) == TINY.read_text()
    df = load_results(tmp_path / "out")
    assert len(df) == 9 and set(df["status"]) == {"ok"} and df["point_id"].is_unique
    assert sorted(zip(df["hardware.pim.macs_per_bank"], df["workload.batch"])) == \
        sorted((m, b) for m in (8, 16, 32) for b in (4, 8, 16))
    # metrics equal what `hwsim run` computes for the same point
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    row = df[(df["hardware.pim.macs_per_bank"] == 32) & (df["workload.batch"] == 8)].iloc[0]
    cfg = load_config(BASE, ["workload.model.n_layers=1", "hardware.pim.macs_per_bank=32",
                             "workload.batch=8", "baselines={}"])
    assert row["throughput_tokens_per_s"] == evaluate(cfg).main.metrics.throughput_tokens_per_s


def test_rerun_evaluates_nothing_and_limit_continues(tmp_path):
    out = tmp_path / "out"
    first = run_sweep(TINY, out, jobs=1, limit=4, progress=False)
    assert (first.evaluated, first.remaining) == (4, 5)
    second = run_sweep(TINY, out, jobs=1, progress=False)
    assert (second.already_stored, second.evaluated) == (4, 5)
    third = run_sweep(TINY, out, jobs=1, progress=False)
    assert (third.already_stored, third.evaluated) == (9, 0)
    assert len(load_results(out)) == 9


def test_serial_and_two_workers_give_identical_results(tmp_path):
    spec = write_spec(tmp_path, """axes:
  - {key: hardware.pim.macs_per_bank, values: [4, 16, 64]}
  - {key: hardware.npu.cores, values: [1, 8]}
  - {key: workload.batch, values: [8, 32]}
""")
    serial = run_sweep(spec, tmp_path / "serial", jobs=1, progress=False)
    parallel = run_sweep(spec, tmp_path / "parallel", jobs=2, progress=False)
    assert serial.evaluated == parallel.evaluated == 12
    assert "2 local worker processes" in parallel.evaluator
    assert_same_results(tmp_path / "serial", tmp_path / "parallel")


def test_failing_and_infeasible_points_are_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    """capacity 0.001 GiB cannot hold the weights: a ConfigError in evaluation -> 'infeasible'
    with its message; an exception inside the pipeline -> 'failed' with its text; a broken
    constraint -> 'infeasible' with the constraint. The other points are evaluated."""
    import hwsim.pipeline
    real = hwsim.pipeline.evaluate

    def flaky(cfg, **options):
        if cfg.hardware.pim.macs_per_bank == 8:
            raise ZeroDivisionError("simulated bug")
        return real(cfg, **options)
    monkeypatch.setattr(hwsim.pipeline, "evaluate", flaky)
    import pandas as pd
    spec = write_spec(tmp_path, """axes:
  - {key: hardware.memory.capacity_gib, values: [32, 0.001]}
  - {key: hardware.pim.macs_per_bank, values: [8, 16, 32]}
constraints: ["fits_memory", "hardware.pim.macs_per_bank < 32"]
objectives: [{maximize: throughput_tokens_per_s}, {minimize: energy_per_token_j}]
""")
    report = run_sweep(spec, tmp_path / "out", jobs=1, progress=False)
    assert report.evaluated == 6
    df = load_results(tmp_path / "out").set_index(["hardware.memory.capacity_gib",
                                                   "hardware.pim.macs_per_bank"])
    assert df.loc[(32, 16), "status"] == "ok"
    assert df.loc[(32, 8), "status"] == "failed"
    assert df.loc[(32, 8), "error"] == "ZeroDivisionError: simulated bug"
    assert df.loc[(32, 32), "status"] == "infeasible" and pd.isna(df.loc[(32, 32), "error"])
    assert "hardware.pim.macs_per_bank < 32" in json.loads(df.loc[(32, 32), "violations"])[0]
    for macs in (16, 32):
        assert df.loc[(0.001, macs), "status"] == "infeasible"
        assert "does not fit" in df.loc[(0.001, macs), "error"]
    # a later run with a changed constraint re-judges the stored points without re-evaluating
    spec.write_text(spec.read_text().replace(', "hardware.pim.macs_per_bank < 32"', ""))
    again = run_sweep(spec, tmp_path / "out", jobs=1, progress=False)
    assert again.evaluated == 0
    df = load_results(tmp_path / "out").set_index(["hardware.memory.capacity_gib",
                                                   "hardware.pim.macs_per_bank"])
    assert df.loc[(32, 32), "status"] == "ok"


def test_kill_and_resume_loses_nothing_and_matches_a_serial_run(tmp_path):
    """`hwsim sweep` as a real process, SIGKILLed once some points are committed; re-running
    finishes the sweep: every point stored exactly once, the points stored before the kill are
    unchanged, and all metrics equal a fresh serial run."""
    spec = write_spec(tmp_path, """axes:
  - {key: hardware.pim.macs_per_bank, values: [4, 8, 16, 32, 64]}
  - {key: hardware.npu.cores, values: [1, 2, 4, 8]}
  - {key: workload.batch, values: [64, 128, 256, 512]}
""", layers=4)
    out = tmp_path / "killed"
    db = out / "results.sqlite"
    total = 80      # enough that a busy CI machine cannot finish them all between two polls
    env = {**os.environ, "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "hwsim.cli", "sweep", str(spec), "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while stored_count(db) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)    # the workers we started, if any are left
        except ProcessLookupError:
            pass
    before = load_results(out).set_index("point_id")
    assert 3 <= len(before) < total, f"the kill did not interrupt the sweep ({len(before)} stored)"
    assert proc.returncode == -signal.SIGKILL

    rerun = subprocess.run(cmd + ["--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(before)} already stored, {total - len(before)} evaluated" in rerun.stdout
    after = load_results(out).set_index("point_id")
    assert len(after) == total and after.index.is_unique
    import pandas as pd
    pd.testing.assert_frame_equal(after.loc[before.index], before)     # nothing rewritten
    run_sweep(spec, tmp_path / "fresh", jobs=1, progress=False)
    assert_same_results(out, tmp_path / "fresh")


def test_random_strategy_is_seeded_and_resumable(tmp_path):
    body = """axes:
  - {key: hardware.pim.macs_per_bank, values: [4, 8, 16, 32, 64]}
  - {key: workload.batch, range: [2, 20, 2]}
strategy: random
samples: 8
seed: 11
"""
    spec = write_spec(tmp_path, body)
    run_sweep(spec, tmp_path / "a", jobs=1, progress=False, limit=3)
    resumed = run_sweep(spec, tmp_path / "a", jobs=2, progress=False)
    assert (resumed.already_stored, resumed.evaluated) == (3, 5)
    run_sweep(spec, tmp_path / "b", jobs=1, progress=False)
    assert_same_results(tmp_path / "a", tmp_path / "b")
    other = write_spec(tmp_path, body.replace("seed: 11", "seed: 12"), "other.yaml")
    run_sweep(other, tmp_path / "c", jobs=1, progress=False)
    assert set(table(tmp_path / "c").index) != set(table(tmp_path / "b").index)


def test_nsga2_resume_replays_to_the_same_points_as_one_run(tmp_path):
    """NSGA-II through optuna: a run interrupted twice (--limit) ends with exactly the points and
    numbers of an uninterrupted run with the same seed; re-running evaluates nothing."""
    spec = write_spec(tmp_path, """axes:
  - {key: hardware.pim.macs_per_bank, values: [4, 8, 16, 32, 64]}
  - {key: hardware.npu.cores, range: [1, 8, 1]}
  - {key: workload.batch, logspace: [4, 256, 7]}
constraints: ["iteration_latency_s < 0.01"]
objectives: [{maximize: throughput_tokens_per_s}, {minimize: iteration_latency_s}]
strategy: nsga2
population: 6
generations: 3
seed: 3
""")
    whole = run_sweep(spec, tmp_path / "whole", jobs=1, progress=False)
    assert whole.points == 18 and 0 < whole.evaluated <= 18
    run_sweep(spec, tmp_path / "parts", jobs=1, progress=False, limit=5)
    run_sweep(spec, tmp_path / "parts", jobs=2, progress=False, limit=4)
    last = run_sweep(spec, tmp_path / "parts", jobs=2, progress=False)
    assert last.remaining == 0
    assert_same_results(tmp_path / "whole", tmp_path / "parts")
    assert run_sweep(spec, tmp_path / "whole", jobs=1, progress=False).evaluated == 0


def test_dask_local_cluster_equals_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = write_spec(tmp_path, """axes:
  - {key: hardware.pim.macs_per_bank, values: [4, 16, 64]}
  - {key: workload.batch, values: [8, 32]}
""")
    run_sweep(spec, tmp_path / "local", jobs=2, progress=False)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        report = run_sweep(spec, tmp_path / "dask", cluster=cluster.scheduler_address, progress=False)
    assert report.evaluated == 6 and "dask cluster" in report.evaluator
    assert_same_results(tmp_path / "local", tmp_path / "dask")


def test_extrapolated_sweep_is_close_to_the_full_simulation(tmp_path):
    """The default `extrapolate_layers: true` extends runs of 1 to 4 layers over a period of one
    layer to the model's 20 layers; `false` simulates all twenty. Marked per point with its
    period, within 0.1%, and part of the base identity."""
    body = "axes:\n  - {key: hardware.pim.macs_per_bank, values: [8, 32]}\n"
    fast = write_spec(tmp_path, body, "fast.yaml", layers=20)
    full = write_spec(tmp_path, body + "extrapolate_layers: false\n", "full.yaml", layers=20)
    run_sweep(fast, tmp_path / "fast", jobs=1, progress=False)
    run_sweep(full, tmp_path / "full", jobs=1, progress=False)
    a, b = load_results(tmp_path / "fast"), load_results(tmp_path / "full")
    assert a["extrapolated"].tolist() == [1, 1] and b["extrapolated"].tolist() == [0, 0]
    assert a["extrapolation_period"].tolist() == [1, 1] and b["extrapolation_period"].isna().all()
    assert set(a["point_id"]).isdisjoint(b["point_id"])
    for metric in ("throughput_tokens_per_s", "energy_per_token_j", "bytes.hbm"):
        assert a[metric].to_numpy() == pytest.approx(b[metric].to_numpy(), rel=1e-3), metric


def test_a_second_sweep_into_a_busy_folder_is_refused(tmp_path):
    from hwsim.dse.store import ResultsStore
    from hwsim.errors import ConfigError
    holder = ResultsStore(tmp_path / "out")
    holder.lock()
    try:
        with pytest.raises(ConfigError, match="another `hwsim sweep` is writing"):
            run_sweep(TINY, tmp_path / "out", jobs=1, progress=False)
    finally:
        holder.close()
    assert run_sweep(TINY, tmp_path / "out", jobs=1, progress=False).evaluated == 9
