"""Where hwsim may write: checked before any work starts, so a bad output path costs one line and
exit 2, not a finished simulation lost at the end.

- ``plain_name_problem``: a config's or sweep's ``name:`` becomes a folder under ``results/``; it
  must be a plain file name (no ``/``, no ``..``), so results never land outside ``results/``.
- ``check_output_dir`` / ``check_output_file``: the path is not under a regular file, is not the
  wrong kind of thing, and the nearest existing folder is writable: a scratch folder is created
  in it and removed at once (a read-only filesystem, or /proc and /sys, fail here; a permission
  check alone would pass them for root). Nothing is left behind: a run that then fails on its
  input leaves no folder.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hwsim.errors import ConfigError

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def plain_name_problem(name: str) -> str | None:
    """None if `name` can be a results folder name; else why not."""
    if _PLAIN_NAME.match(name):
        return None
    return (f"expected a plain name (letters, digits, '.', '_', '+', '-'; starting with a letter or "
            f"digit; at most 128 characters), got {name!r}: results go to results/<name>/")


def _nearest_existing(path: Path) -> Path:
    """`path` or its nearest existing ancestor; a non-folder on the way is an error."""
    current = path
    while not current.exists():
        if current.is_symlink():       # a dangling link: writing through it fails
            break
        parent = current.parent
        if parent == current:
            break
        current = parent
    return current


def _check(path: Path, key: str | None, want_dir: bool) -> None:
    path = Path(path)
    what = "folder" if want_dir else "file"
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"cannot write the {what}: it is a dangling symbolic link", file=str(path), key=key)
    existing = _nearest_existing(path)
    if existing == path and path.exists():
        if want_dir and not path.is_dir():
            raise ConfigError("exists and is not a folder", file=str(path), key=key)
        if not want_dir and path.is_dir():
            raise ConfigError("is a folder; expected a file name", file=str(path), key=key)
        if want_dir:
            _probe(path, path, key, what)
        elif not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
            raise ConfigError("cannot write the file: permission denied or read-only filesystem",
                              file=str(path), key=key)
        return
    if not existing.is_dir():
        raise ConfigError(f"cannot create the {what}: {existing} is a file, not a folder",
                          file=str(path), key=key)
    if not want_dir and existing != path.parent:
        raise ConfigError(f"cannot create the file: folder {path.parent} does not exist",
                          file=str(path), key=key)
    _probe(existing, path, key, what)


def _probe(folder: Path, path: Path, key: str | None, what: str) -> None:
    """Create and remove a scratch folder in `folder`: the one test of writability that a
    read-only filesystem cannot pass."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".hwsim-write-check-", dir=folder))
    except OSError as exc:
        raise ConfigError(f"cannot write the {what} under {folder}: {exc.strerror or exc}",
                          file=str(path), key=key) from None


def check_output_dir(path: str | Path, key: str | None = "--out") -> None:
    """ConfigError unless `path` is, or can be created as, a writable folder."""
    _check(Path(path), key, want_dir=True)


def check_output_file(path: str | Path, key: str | None) -> None:
    """ConfigError unless `path` is, or can be created as, a writable file."""
    _check(Path(path), key, want_dir=False)


def check_finite(doc, where: str = "metrics") -> None:
    """RuntimeError (a bug, exit 1) if a number in a JSON document is inf or NaN: JSON has no
    such numbers, and valid input must never produce them (hwsim.spec bounds every input)."""
    import math
    if isinstance(doc, float) and not math.isfinite(doc):
        raise RuntimeError(f"{where} is {doc!r}: a bug, valid input must give finite numbers")
    if isinstance(doc, dict):
        for key, value in doc.items():
            check_finite(value, f"{where}.{key}")
    elif isinstance(doc, (list, tuple)):
        for i, value in enumerate(doc):
            check_finite(value, f"{where}.{i}")
