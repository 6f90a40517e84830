"""Shipped files by name (issue 9, item 2): after `pip install .` there is no configs/ folder in
the user's directory, so `hwsim run neupims`, `hwsim show neupims`, `hwsim sweep tiny` and
`hwsim scalesim --topology resnet18` find the installed copies by the names `hwsim list` prints.
A file path wins over a shipped name; a name that is neither is one line, exit 2, with close names.
Every test runs from an empty folder, as a user outside the checkout would.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hwsim.cli import main
from hwsim.configs import CONFIG_DIR, names


@pytest.fixture(autouse=True)
def outside_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("kind", ["configs", "models", "presets", "sweeps", "topologies"])
def test_list_prints_the_shipped_names(kind):
    result = invoke("list", kind)
    assert result.exit_code == 0 and result.stdout.split() == names(kind) and names(kind)


def test_show_by_name_equals_show_by_path():
    by_name = invoke("show", "neupims")
    by_path = invoke("show", CONFIG_DIR / "neupims.yaml")
    assert by_name.exit_code == 0 and by_name.stdout == by_path.stdout


def test_every_shipped_config_resolves_by_name():
    for name in names("configs"):
        by_name = invoke("show", name)
        assert by_name.exit_code == 0, (name, by_name.stderr)
        assert by_name.stdout == invoke("show", CONFIG_DIR / f"{name}.yaml").stdout


def test_run_by_name(tmp_path):
    result = invoke("run", "neupims", "--json", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["name"] == "neupims" and metrics["metrics"]["throughput_tokens_per_s"] > 0
    assert (tmp_path / "out" / "timeline.svg").is_file()


def test_sweep_by_name(tmp_path):
    result = invoke("sweep", "tiny", "--jobs", "1", "--limit", "1", "--quiet", "--out", tmp_path / "sw")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "sw" / "results.sqlite").is_file()


def test_scalesim_by_name():
    result = invoke("scalesim", "--topology", "resnet18")
    assert result.exit_code == 0, result.stderr
    assert "21 layers" in result.stdout


def test_a_file_wins_over_a_shipped_name(tmp_path):
    mine = (CONFIG_DIR / "neupims.yaml").read_text().replace("name: neupims", "name: my-neupims", 1)
    (tmp_path / "neupims").write_text(mine)
    result = invoke("show", "neupims")
    assert result.exit_code == 0 and result.stdout.startswith("name: my-neupims\n")


@pytest.mark.parametrize("args, listing", [
    (["run", "neupim"], "configs"), (["show", "neupim"], "configs"),
    (["sweep", "tinny"], "sweeps"), (["scalesim", "--topology", "resnet1"], "topologies")])
def test_unknown_name_one_line_with_close_names(args, listing):
    line = one_error_line(invoke(*args))
    wrong = args[-1]
    assert line.startswith(f"error: {wrong}:")
    assert "no such file" in line and f"`hwsim list {listing}`" in line
    close = {"configs": "neupims", "sweeps": "tiny", "topologies": "resnet18"}[listing]
    assert f"close names: {close}" in line


def test_unknown_name_without_close_names_points_to_the_list():
    line = one_error_line(invoke("run", "zzzz"))
    assert "close names" not in line and "`hwsim list configs`" in line


def test_a_missing_path_is_not_looked_up_by_name(tmp_path):
    """`sub/neupims` names a file in sub/, not the shipped config."""
    line = one_error_line(invoke("show", tmp_path / "sub" / "neupims"))
    assert line == f"error: {tmp_path / 'sub' / 'neupims'}: file not found"
