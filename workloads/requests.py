"""The requests of a batch: how many tokens each one already holds (its context length).

`fixed` gives every request `context_len` tokens; `list` takes explicit lengths (repeated
cyclically if shorter than the batch).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class RequestSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    distribution: Literal["fixed", "list"] = "fixed"
    context_len: int = Field(default=1024, gt=0, description="tokens per request (fixed)")
    lens: tuple[int, ...] | None = Field(default=None, description="tokens per request (list)")

    @model_validator(mode="after")
    def _lens_given(self):
        if self.distribution == "list":
            if not self.lens:
                raise ValueError("distribution 'list' needs `lens`")
            if min(self.lens) <= 0:
                raise ValueError("every entry of `lens` must be > 0")
        return self

    def context_lens(self, batch: int) -> np.ndarray:
        if self.distribution == "list":
            return np.resize(np.asarray(self.lens, dtype=np.int64), batch)
        return np.full(batch, self.context_len, dtype=np.int64)

    def max_len(self) -> int:
        return max(self.lens) if self.distribution == "list" else self.context_len
