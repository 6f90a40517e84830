"""Pareto fronts (against an O(n^2) reference, with hypothesis), knee points, `hwsim pareto`
plots and `hwsim results` exports from a real (tiny) sweep."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hwsim.configs import CONFIG_DIR
from hwsim.dse import load_results, run_sweep
from hwsim.dse.pareto import knee_index, pareto_mask, pareto_mask_bruteforce
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwsim.cli import main

TINY = CONFIG_DIR / "sweeps" / "tiny.yaml"


# --------------------------------------------------------------------------- front

@st.composite
def objective_sets(draw):
    k = draw(st.integers(1, 4))
    n = draw(st.integers(0, 40))
    # few distinct values so that ties and exact duplicates are common
    elements = st.one_of(st.integers(-3, 3).map(float), st.sampled_from([np.nan, np.inf, -np.inf]))
    values = draw(arrays(np.float64, (n, k), elements=elements))
    senses = draw(st.lists(st.sampled_from(["max", "min"]), min_size=k, max_size=k))
    return values, senses


@settings(max_examples=150, deadline=None)
@given(objective_sets())
def test_pareto_mask_equals_bruteforce(case):
    values, senses = case
    assert np.array_equal(pareto_mask(values, senses), pareto_mask_bruteforce(values, senses))


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.just(2)),
              elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_knee_is_on_the_front_and_order_does_not_matter(values):
    senses = ["max", "min"]
    knee = knee_index(values, senses)
    assert pareto_mask(values, senses)[knee]
    perm = np.random.default_rng(0).permutation(len(values))
    assert np.array_equal(pareto_mask(values[perm], senses), pareto_mask(values, senses)[perm])


def test_front_conventions():
    values = np.array([[1, 5], [1, 5], [2, 4], [2, 5], [0, 0], [np.nan, 9]], dtype=float)
    # maximize both: (2, 5) dominates everything but itself; NaN rows never on the front
    assert pareto_mask(values, ["max", "max"]).tolist() == [False, False, False, True, False, False]
    # minimize both: (0, 0) alone
    assert pareto_mask(values, ["min", "min"]).tolist() == [False, False, False, False, True, False]
    # max x, min y: duplicates (1, 5) are both dominated by (2, 4); (0, 0) and (2, 4) remain
    assert pareto_mask(values, ["max", "min"]).tolist() == [False, False, True, False, True, False]
    dup = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert pareto_mask(dup, ["min", "min"]).tolist() == [True, True]      # duplicates both kept


def test_knee_definitions():
    # a convex front (minimize both): the corner point is farthest from the extremes' line
    front = np.array([[0, 10], [1, 2], [2, 1.8], [3, 1.5], [10, 0]], dtype=float)
    assert knee_index(front, ["min", "min"]) == 1
    # 3 objectives: closest to the ideal point in normalized space
    three = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [0.4, 0.4, 0.4]])
    assert knee_index(three, ["min", "min", "min"]) == 3
    assert knee_index(np.zeros((0, 2)), ["min", "min"]) is None


# --------------------------------------------------------------------------- CLI on a real sweep

@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("dse") / "tiny"
    run_sweep(TINY, out, jobs=1, progress=False)
    return out


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_pareto_writes_a_png_and_prints_the_front(tiny_results, tmp_path):
    out = tmp_path / "front.png"
    result = cli("pareto", tiny_results, "--out", out, "--color", "hardware.pim.macs_per_bank")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    df = load_results(tiny_results)
    ok = df[df["status"] == "ok"]
    mask = pareto_mask(ok[["throughput_tokens_per_s", "iteration_latency_s"]].to_numpy(), ["max", "min"])
    assert f"Pareto front: {mask.sum()} of {len(ok)} feasible points" in result.output
    assert result.output.count("  *") == 1                                # one knee
    svg = tmp_path / "front.svg"
    result = cli("pareto", tiny_results, "--x", "energy_per_token_j", "--y", "throughput_tokens_per_s",
                 "--out", svg)
    assert result.exit_code == 0, result.output
    assert svg.read_text().lstrip().startswith("<?xml")


def test_pareto_grid_for_three_objectives(tiny_results, tmp_path):
    from hwsim.dse.plots import plot_front
    df = load_results(tiny_results)
    fig = plot_front(df, [("throughput_tokens_per_s", "max"), ("iteration_latency_s", "min"),
                          ("energy_per_token_j", "min")], out=tmp_path / "grid.png")
    assert len(fig.axes) == 3 and (tmp_path / "grid.png").exists()


def test_pareto_colours_by_a_text_column(tiny_results, tmp_path):
    """A categorical colour (pandas 3 keeps text as StringDtype, which numpy cannot read) gets
    one colour per value, its names on the colour bar."""
    import pandas as pd
    from hwsim.dse.plots import plot_front
    df = load_results(tiny_results)
    df["kind"] = pd.Series([("a", "b")[i % 2] for i in range(len(df))], dtype="string")
    fig = plot_front(df, [("throughput_tokens_per_s", "max"), ("iteration_latency_s", "min")],
                     out=tmp_path / "front.png", color="kind")
    bar = fig.axes[-1]
    assert {t.get_text() for t in bar.get_yticklabels()} <= set(df["kind"]) and bar.get_yticklabels()


@pytest.mark.parametrize("args, fragments", [
    (["--x", "throughput", "--y", "energy_per_token_j"],
     ["--x", "unknown metric 'throughput'", "available:", "throughput_tokens_per_s", "utilization.npu"]),
    (["--x", "energy_j"], ["--y", "give both --x and --y"]),
    (["--color", "hardware.pim.macs"], ["--color", "unknown axis", "hardware.pim.macs_per_bank"]),
    (["--out", "front.jpg"], ["--out", ".png"]),
])
def test_pareto_bad_input_exits_2(tiny_results, args, fragments):
    result = cli("pareto", tiny_results, *args)
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in line
    for f in fragments:
        assert f in line, (f, line)


def test_results_of_a_missing_folder_exits_2(tmp_path):
    result = cli("results", tmp_path / "nothing")
    assert result.exit_code == 2 and "no results store" in result.output


def test_results_summary_and_csv_parquet_round_trip(tiny_results, tmp_path):
    csv, parquet = tmp_path / "points.csv", tmp_path / "points.parquet"
    result = cli("results", tiny_results, "--csv", csv, "--parquet", parquet)
    assert result.exit_code == 0, result.output
    assert "tiny: 9 points stored (9 ok)" in result.output
    assert "axis workload.batch: 4, 8, 16" in result.output
    df = load_results(tiny_results)
    for back in (pd.read_csv(csv), pd.read_parquet(parquet)):
        assert list(back.columns) == list(df.columns)
        assert back["point_id"].tolist() == df["point_id"].tolist()
        for col in ("throughput_tokens_per_s", "energy_per_token_j", "utilization.npu",
                    "hardware.pim.macs_per_bank", "workload.batch"):
            np.testing.assert_allclose(back[col].to_numpy(float), df[col].to_numpy(float), rtol=1e-15)
