"""``ConfigError``: bad user input, reported on one line (file, line, dotted key, what was expected).

The base of every layer: readers of input files in hw/ and workloads/ (SCALE-Sim topologies, ONNX
models) import it from here, the face (CLI, loader) through ``hwsim.errors``. This module imports
nothing, so ``hwsim --help`` and ``hwsim scalesim --topology`` stay free of pydantic.
"""
from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """Bad user input: a config file, a key in it, or a value that cannot be simulated."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None):
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.key:
            where.append(self.key)
        return ": ".join(where + [self.message])
