import os

import pytest

from hwsim.configs import CONFIG_DIR

os.environ.setdefault("MPLBACKEND", "Agg")


def shipped_run_configs():
    return sorted(CONFIG_DIR.glob("*.yaml"))


@pytest.fixture(scope="session", params=shipped_run_configs(), ids=lambda p: p.stem)
def shipped_result(request):
    """Every shipped run config, evaluated once per test session (per xdist worker)."""
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    return evaluate(load_config(request.param))


def systems(result):
    """(name, SystemResult) of the main system and every baseline."""
    return [("main", result.main), *result.baselines.items()]


@pytest.fixture(scope="session")
def config_dir():
    return CONFIG_DIR


def hwsim_run(*args):
    """`hwsim run ARGS` in this process (click's test runner)."""
    from click.testing import CliRunner

    from hwsim.cli import main
    return CliRunner().invoke(main, ["run", *map(str, args)])


def assert_refused_in_one_line(config, overrides, words, out):
    """`hwsim run config --set o ...` is a bad input: exit 2, one line (no traceback) holding
    every one of `words`."""
    args = [config, "--out", out]
    for o in overrides:
        args += ["--set", o]
    r = hwsim_run(*args)
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and "Traceback" not in line
    for w in words:
        assert w in line, (w, line)
