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

`new_tokens` (phase `mixed` only, e.g. one iteration of a serving run): the tokens each request
computes in the pass (a prompt or a chunk of it, or 1 for a request decoding), on top of the
`context_lens` it already holds in its KV cache (repeated cyclically like `lens`).
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hwsim.spec import Spec


# Longest context a request may hold: far above any model's max_seq_len (assumed bound; keeps
# lengths read from a CSV inside what the KV-cache arithmetic handles exactly).
MAX_CONTEXT_LEN = 1 << 30


class RequestSpec(Spec):
    distribution: Literal["fixed", "list", "sharegpt", "csv"] = "fixed"
    context_len: int = Field(default=1024, gt=0, le=MAX_CONTEXT_LEN, description="tokens per request (fixed)")
    lens: tuple[int, ...] | None = Field(default=None, description="tokens per request (list)")
    mean_input: float = Field(default=80.0, gt=0)
    mean_output: float = Field(default=296.0, gt=0)
    sigma: float = Field(default=1.0, gt=0, description="log-normal shape of both lengths")
    max_len: int = Field(default=2048, gt=1, le=MAX_CONTEXT_LEN)
    seed: int = 0
    path: str | None = Field(default=None, description="CSV of request lengths (csv)")
    new_tokens: tuple[int, ...] | None = Field(default=None, description="tokens each request "
                                               "computes in the pass (phase mixed)")

    @model_validator(mode="after")
    def _lens_given(self):
        if self.distribution == "list":
            if not self.lens:
                raise ValueError("distribution 'list' needs `lens`")
            least = 0 if self.new_tokens is not None else 1     # a fresh prompt holds nothing yet
            if not all(least <= n <= MAX_CONTEXT_LEN for n in self.lens):
                raise ValueError(f"every entry of `lens` must be from {least} to {MAX_CONTEXT_LEN:,}")
        if self.new_tokens is not None and not all(0 < n <= MAX_CONTEXT_LEN for n in self.new_tokens):
            raise ValueError(f"every entry of `new_tokens` must be from 1 to {MAX_CONTEXT_LEN:,}")
        if self.new_tokens is not None and not self.new_tokens:
            raise ValueError("`new_tokens` is empty")
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

    def query_lens(self, batch: int) -> np.ndarray:
        """New tokens per request in a `mixed` pass (`new_tokens`)."""
        return np.resize(np.asarray(self.new_tokens, dtype=np.int64), batch)

    def longest(self, batch: int) -> int:
        return int(self.context_lens(batch).max())


def _read_lengths(path: str) -> list[int]:
    import csv
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path} is not a CSV text file: {exc}") from None
    if not rows:
        raise ValueError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    col = header.index("context_len") if "context_len" in header else 0
    body = rows[1:] if not header[col].isdigit() else rows
    lens = []
    for n, row in enumerate(body, start=len(rows) - len(body) + 1):
        if not row:
            continue
        try:
            value = float(row[col])
        except (ValueError, IndexError):
            value = math.nan
        if not (math.isfinite(value) and value.is_integer() and 0 < value <= MAX_CONTEXT_LEN):
            raise ValueError(f"{path}, row {n}: expected a whole number of tokens from 1 to "
                             f"{MAX_CONTEXT_LEN:,} in column {col}, got {row[col] if col < len(row) else 'nothing'!r}")
        lens.append(int(value))
    if not lens:
        raise ValueError(f"{path}: no request lengths in column {col}")
    return lens
