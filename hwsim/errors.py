"""Errors a user can act on.

A ``ConfigError`` names the file, the dotted key and what was expected; the CLI prints it on one
line and exits with code 2. Anything else escaping the pipeline is an internal error (exit 1).
The class lives in the import-free ``hwsim.input_error`` (hw/ and workloads/ reach it through
``hwsim.spec``); this is the face's name for it.
"""
from __future__ import annotations

from hwsim.input_error import ConfigError

__all__ = ["ConfigError"]
