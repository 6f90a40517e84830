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
