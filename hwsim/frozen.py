"""`evolve`: a copy of a dataclass instance with some fields changed, without re-running its
`__init__` (`dataclasses.replace` does, at ~25 us a call: it dominated merging the schedules of
many devices and splitting every op of a batch into sub-batches). Only for dataclasses without
`__post_init__` or `__slots__`. Imports nothing, so every folder may use it."""
from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def evolve(obj: T, **changes) -> T:
    """`dataclasses.replace(obj, **changes)` without `__init__`; field names are checked."""
    unknown = set(changes) - obj.__dict__.keys()
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new
