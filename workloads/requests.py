"""The requests of a batch: how many tokens each one already holds (its context length).

- `fixed`: every request holds `context_len` tokens;
- `list`: explicit lengths (repeated cyclically if shorter than the batch);
- `sharegpt`: a seeded synthetic ShareGPT-like batch in steady-state decode. Input and output
  lengths are log-normal with means `mean_input` = 80 and `mean_output` = 296 tokens (the figures
  of NeuPIMs' ShareGPT traces as stated in our issue #3; the log-normal shape and sigma = 1 are our
  assumption, unverified against the dataset); a request caught mid-generation holds its input
  plus a uniform share of its output. Lengths are capped at `max_len` = 2048 (NeuPIMs
  trace-generator `max_seq_len`);
- `csv`: lengths read from a CSV file, column `context_len` or, as in NeuPIMs'
  request-traces/*.csv, the first column (`seq_len`).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class RequestSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    distribution: Literal["fixed", "list", "sharegpt", "csv"] = "fixed"
    context_len: int = Field(default=1024, gt=0, description="tokens per request (fixed)")
    lens: tuple[int, ...] | None = Field(default=None, description="tokens per request (list)")
    mean_input: float = Field(default=80.0, gt=0)
    mean_output: float = Field(default=296.0, gt=0)
    sigma: float = Field(default=1.0, gt=0, description="log-normal shape of both lengths")
    max_len: int = Field(default=2048, gt=1)
    seed: int = 0
    path: str | None = Field(default=None, description="CSV of request lengths (csv)")

    @model_validator(mode="after")
    def _lens_given(self):
        if self.distribution == "list":
            if not self.lens:
                raise ValueError("distribution 'list' needs `lens`")
            if min(self.lens) <= 0:
                raise ValueError("every entry of `lens` must be > 0")
        if self.distribution == "csv":
            if not self.path:
                raise ValueError("distribution 'csv' needs `path`")
            object.__setattr__(self, "lens", tuple(_read_lengths(self.path)))
        return self

    def context_lens(self, batch: int) -> np.ndarray:
        if self.distribution == "sharegpt":
            rng = np.random.default_rng(self.seed)
            def lognormal(mean):
                return rng.lognormal(np.log(mean) - self.sigma**2 / 2, self.sigma, batch)
            inputs, outputs = lognormal(self.mean_input), lognormal(self.mean_output)
            held = inputs + rng.uniform(0, 1, batch) * outputs
            return np.clip(np.round(held), 1, self.max_len - 1).astype(np.int64)
        if self.distribution in ("list", "csv"):
            return np.resize(np.asarray(self.lens, dtype=np.int64), batch)
        return np.full(batch, self.context_len, dtype=np.int64)

    def longest(self, batch: int) -> int:
        return int(self.context_lens(batch).max())


def _read_lengths(path: str) -> list[int]:
    import csv
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    col = header.index("context_len") if "context_len" in header else 0
    body = rows[1:] if not header[col].isdigit() else rows
    try:
        lens = [int(float(r[col])) for r in body if r]
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{path}: expected integer lengths in column {col}: {exc}") from None
    if not lens or min(lens) <= 0:
        raise ValueError(f"{path}: lengths must be positive integers")
    return lens
