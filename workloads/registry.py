"""Workload kinds: each registers itself in its own module (`workload.kind` in a config).

A `WorkloadKind` is the spec of its `workload:` section (pydantic, with a `kind` field), the
builder of the op graph of one pass, and optionally `sizes(spec) -> WorkloadInfo`: the bytes a
device holds, computed without building the graph, so that a model that cannot fit is refused
before the (costly) build. The config schema, the loader and the pass scenario iterate over
`WORKLOADS`; adding a kind is one module that calls `register_workload`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class WorkloadKind:
    name: str
    spec: type[BaseModel]
    build: Callable                  # spec -> OpGraph of one pass
    sizes: Callable | None = None    # spec -> WorkloadInfo, without the graph


WORKLOADS: dict[str, WorkloadKind] = {}
BUILTIN_WORKLOAD_MODULES = ("hwsim.workloads.transformer", "hwsim.workloads.cnn")
_loaded = False


def register_workload(kind: WorkloadKind) -> WorkloadKind:
    WORKLOADS[kind.name] = kind
    return kind


def load_workloads() -> dict[str, WorkloadKind]:
    """The registered kinds, the built-in ones imported first (lazily: they import this module)."""
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib
        for module in BUILTIN_WORKLOAD_MODULES:
            importlib.import_module(module)
    return WORKLOADS
