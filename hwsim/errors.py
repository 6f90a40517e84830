"""Errors a user can act on.

A ``ConfigError`` names the file, the dotted key and what was expected; the CLI prints it on one
line and exits with code 2. Anything else escaping the pipeline is an internal error (exit 1).
This module imports nothing, so every layer may raise it (hw/ and workloads/ read input files
such as topologies and ONNX models and report bad rows themselves) and ``hwsim --help`` stays
free of pydantic.
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
