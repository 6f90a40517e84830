import os

import pytest

from hwsim.configs import CONFIG_DIR

os.environ.setdefault("MPLBACKEND", "Agg")


def shipped_run_configs():
    return sorted(CONFIG_DIR.glob("*.yaml"))


@pytest.fixture(scope="session")
def config_dir():
    return CONFIG_DIR
