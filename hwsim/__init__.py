"""hwsim: a simulator and design-space explorer for AI accelerators.

The pipeline (see DESIGN.md): config -> workload -> op graph -> mapper -> schedule -> SimPy engine
-> trace -> report. Each stage is importable on its own: ``hwsim.workloads``, ``hwsim.hw``,
``hwsim.mappers``, ``hwsim.sim``, ``hwsim.dse``; ``hwsim.pipeline.evaluate`` runs them all.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hwsim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
