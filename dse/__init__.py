"""Design-space exploration: sweep specs, search strategies, parallel evaluation, a crash-safe
results store, Pareto fronts and plots. Knows no hardware kind: a design point is a run config
plus ``KEY=VALUE`` overrides, evaluated by ``hwsim.pipeline.evaluate``.

    from hwsim.dse import run_sweep, load_results, pareto_mask
    report = run_sweep("configs/sweeps/tiny.yaml", "results/tiny", jobs=2)
    df = load_results("results/tiny")

Heavy dependencies (pandas, optuna, dask, matplotlib) are imported only when used.
"""
from hwsim.dse.pareto import knee_index, pareto_mask
from hwsim.dse.results import export, front, load_results, summary
from hwsim.dse.runner import SweepReport, run_sweep
from hwsim.dse.spec import Sweep, SweepSpec, load_sweep

__all__ = [
    "Sweep",
    "SweepReport",
    "SweepSpec",
    "export",
    "front",
    "knee_index",
    "load_results",
    "load_sweep",
    "pareto_mask",
    "plot_front",
    "run_sweep",
    "summary",
]


def plot_front(*args, **kwargs):
    """See ``hwsim.dse.plots.plot_front`` (imported on first use: matplotlib is slow to load)."""
    from hwsim.dse.plots import plot_front as _plot_front
    return _plot_front(*args, **kwargs)
