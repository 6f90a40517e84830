"""hwsim: a simulator and design-space explorer for AI accelerators.

The pipeline (see DESIGN.md): config -> workload -> op graph -> mapper -> schedule -> SimPy engine
-> trace -> report. Each stage is importable on its own: ``hwsim.workloads``, ``hwsim.hw``,
``hwsim.mappers``, ``hwsim.sim``, ``hwsim.dse``; ``hwsim.pipeline.evaluate`` runs them all.
"""


def __getattr__(name: str):
    """``hwsim.__version__``, read from the installed metadata on first use (importlib.metadata
    costs ~30 ms at start-up, which every command would pay)."""
    if name != "__version__":
        raise AttributeError(f"module 'hwsim' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version
    try:
        value = version("hwsim")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
