"""Optional dependencies and the one-line message when one is missing.

`pip install hwsim` brings what `hwsim run` needs, plots included (numpy, simpy,
pydantic, pyyaml, click; the run's plots are SVG written by hwsim.svg). The rest comes with an extra (pyproject.toml's
[project.optional-dependencies]; tests/test_packaging.py keeps the two lists equal):

    dse    `hwsim sweep`, `hwsim results`, `hwsim pareto`: pandas, tqdm, optuna (NSGA-II),
           dask.distributed (--cluster), pyarrow (--parquet)
    onnx   `workload: {kind: cnn, onnx: FILE}`
    plots  matplotlib: the Pareto plot of `hwsim pareto`, `hwsim validate --report`, notebooks
    check  `hwsim run --check`: numba models of the kernels
    calibrate  `hwsim calibrate gpu`: PyTorch (with CUDA, on the GPU to measure)
    test   dse, onnx, check and plots plus the test tools (not calibrate: the tests need no GPU)
"""
from __future__ import annotations

import importlib.util

# extra -> the modules it provides (import names, not distribution names)
EXTRAS = {"dse": ("pandas", "tqdm", "optuna", "dask", "distributed", "pyarrow"),
          "onnx": ("onnx",),
          "check": ("numba",),
          "plots": ("matplotlib",)}
# extras the test install leaves out: they need hardware the tests never have
GPU_EXTRAS = {"calibrate": ("torch",)}
EXTRA_OF = {module: extra for extra, modules in (EXTRAS | GPU_EXTRAS).items() for module in modules}


def install_hint(extra: str) -> str:
    return f'pip install "hwsim[{extra}]"'


def require(extra: str, what: str) -> None:
    """Raise a ConfigError (one line, exit 2) naming the missing modules of `extra` and the pip
    command that installs them; `what` says what needs them (e.g. "`hwsim sweep`")."""
    from hwsim.errors import ConfigError
    missing = [m for m in (EXTRAS | GPU_EXTRAS)[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{what} needs {', '.join(missing)}, not installed: {install_hint(extra)}")


def missing_extra_message(exc: BaseException) -> str | None:
    """For a ModuleNotFoundError of a module an extra provides: the one-line message saying
    which extra to install; None for anything else (a bug, reported as such)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    module = exc.name.partition(".")[0]
    extra = EXTRA_OF.get(module)
    return f"{module} is not installed: {install_hint(extra)}" if extra else None
