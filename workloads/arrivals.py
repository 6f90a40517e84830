"""Request streams for serving: when each request arrives and how many prompt and output tokens it
has. Seeded: the same spec gives the same stream.

Arrival processes (`arrivals.process`):
- `poisson`: exponential inter-arrival gaps of mean 1 / `rate_per_s`;
- `gamma`: gamma-distributed gaps of the same mean and coefficient of variation `cv` (shape
  k = 1 / cv^2, scale = 1 / (rate k)); cv = 1 is Poisson, cv > 1 is bursty (the process
  LLMServingSim, Vidur and the Splitwise paper use for bursty load);
- `trace`: arrival times and lengths read from a CSV (`path`); see ``read_trace``.

Lengths (`prompt`, `output`, each a ``LengthSpec``): `fixed`, `uniform` (integers low..high),
`lognormal` (mean and shape sigma), or `sharegpt`: the ShareGPT-like log-normal already shipped
for batches (hwsim.workloads.requests: mean input 80 and mean output 296 tokens, sigma = 1, capped
at 2048; the shape is our assumption, unverified against the dataset).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hwsim.spec import ConfigError, Spec
from hwsim.workloads.requests import MAX_CONTEXT_LEN, RequestSpec

# The ShareGPT-like defaults of hwsim.workloads.requests (NeuPIMs' ShareGPT figures, issue #3).
_SHAREGPT = RequestSpec()
SHAREGPT_MEAN = {"prompt": _SHAREGPT.mean_input, "output": _SHAREGPT.mean_output}
SHAREGPT_SIGMA = _SHAREGPT.sigma
SHAREGPT_MAX = _SHAREGPT.max_len

# Most requests one stream may hold (assumed bound: keeps a typo from asking for 1e12 requests).
MAX_REQUESTS = 10_000_000


class LengthSpec(Spec):
    """Tokens per request (prompt or output)."""
    dist: Literal["fixed", "uniform", "lognormal", "sharegpt"] = "sharegpt"
    tokens: int | None = Field(default=None, gt=0, le=MAX_CONTEXT_LEN, description="fixed length")
    low: int | None = Field(default=None, gt=0, le=MAX_CONTEXT_LEN, description="uniform: least")
    high: int | None = Field(default=None, gt=0, le=MAX_CONTEXT_LEN, description="uniform: most")
    mean: float | None = Field(default=None, gt=0, description="lognormal: mean tokens")
    sigma: float = Field(default=1.0, gt=0, le=10, description="lognormal: shape")
    max_tokens: int = Field(default=SHAREGPT_MAX, gt=0, le=MAX_CONTEXT_LEN, description="cap")

    @model_validator(mode="after")
    def _complete(self):
        need = {"fixed": ("tokens",), "uniform": ("low", "high"), "lognormal": ("mean",)}.get(self.dist, ())
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"dist '{self.dist}' needs {', '.join(missing)}")
        if self.dist == "uniform" and self.low > self.high:
            raise ValueError(f"low={self.low} exceeds high={self.high}")
        return self

    def sample(self, rng: np.random.Generator, n: int, which: str) -> np.ndarray:
        if self.dist == "fixed":
            out = np.full(n, self.tokens, dtype=np.int64)
        elif self.dist == "uniform":
            out = rng.integers(self.low, self.high + 1, n)
        else:
            mean = self.mean if self.dist == "lognormal" else SHAREGPT_MEAN[which]
            sigma = self.sigma if self.dist == "lognormal" else SHAREGPT_SIGMA
            out = np.round(rng.lognormal(math.log(mean) - sigma ** 2 / 2, sigma, n))
        return np.clip(out, 1, self.max_tokens).astype(np.int64)


@dataclass(frozen=True)
class RequestStream:
    """The requests of a serving run, sorted by arrival (seconds from the first)."""
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)


class ArrivalSpec(Spec):
    """`scenario.arrivals`: how requests arrive and how long they are."""
    process: Literal["poisson", "gamma", "trace"] = "poisson"
    rate_per_s: float | None = Field(default=None, gt=0, le=1e6, description="mean arrivals per second")
    cv: float = Field(default=1.0, gt=0, le=100, description="gamma: coefficient of variation of the gaps")
    num_requests: int | None = Field(default=None, gt=0, le=MAX_REQUESTS,
                                     description="requests to generate (trace: first N rows; all if unset)")
    prompt: LengthSpec = Field(default_factory=LengthSpec)
    output: LengthSpec = Field(default_factory=LengthSpec)
    path: str | None = Field(default=None, description="trace CSV (process: trace)")
    seed: int = 0

    @model_validator(mode="after")
    def _complete(self):
        if self.process == "trace":
            if not self.path:
                raise ValueError("process 'trace' needs `path` (a CSV)")
        else:
            if self.rate_per_s is None:
                raise ValueError(f"process '{self.process}' needs rate_per_s")
            if self.num_requests is None:
                raise ValueError(f"process '{self.process}' needs num_requests")
        if self.process != "gamma" and "cv" in self.model_fields_set and self.cv != 1.0:
            raise ValueError("cv applies to process 'gamma' only")
        return self

    def generate(self) -> RequestStream:
        if self.process == "trace":
            stream = read_trace(self.path)
            if self.num_requests is not None:
                n = self.num_requests
                stream = RequestStream(stream.arrival_s[:n], stream.prompt_tokens[:n], stream.output_tokens[:n])
            return stream
        rng = np.random.default_rng(self.seed)
        n = self.num_requests
        if self.process == "poisson":
            gaps = rng.exponential(1.0 / self.rate_per_s, n)
        else:
            k = 1.0 / self.cv ** 2
            gaps = rng.gamma(k, 1.0 / (self.rate_per_s * k), n)
        gaps[0] = 0.0                      # the first request opens the run
        arrival = np.cumsum(gaps)
        return RequestStream(arrival, self.prompt.sample(rng, n, "prompt"), self.output.sample(rng, n, "output"))


# ------------------------------------------------------------------ trace CSVs
# Column names accepted (lower-cased), first match wins: ours, then Splitwise / Azure LLM inference
# traces (TIMESTAMP, ContextTokens, GeneratedTokens: github.com/Azure/AzurePublicDataset,
# AzureLLMInferenceDataset2023.md), then Vidur's trace files (arrived_at, num_prefill_tokens,
# num_decode_tokens: microsoft/vidur, data/processed_traces).
TRACE_COLUMNS = {
    "arrival": ("arrival_s", "arrival_time_s", "arrival_time", "timestamp", "arrived_at"),
    "prompt": ("prompt_tokens", "contexttokens", "num_prefill_tokens", "input_tokens"),
    "output": ("output_tokens", "generatedtokens", "num_decode_tokens"),
}


def _timestamp_s(text: str) -> float:
    """Seconds: a number, or an ISO date-time (Azure: '2023-11-16 18:15:46.6805900', whose 7
    fractional digits are cut to the 6 Python reads)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    head, dot, frac = text.partition(".")
    if dot:
        digits = "".join(c for c in frac if c.isdigit())
        rest = frac[len(digits):]
        text = f"{head}.{digits[:6]}{rest}"
    return datetime.fromisoformat(text).timestamp()


def read_trace(path: str) -> RequestStream:
    """A trace CSV: one request per row with its arrival time (seconds, or date-times as in the
    Azure traces), prompt tokens and output tokens, columns named as in TRACE_COLUMNS. Arrival
    times are shifted so the first request arrives at 0 and sorted. A bad row is a ConfigError
    naming the file and line."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ConfigError(f"cannot read the trace: {exc.strerror or exc}", file=path) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"not a CSV text file: {exc}", file=path) from None
    if not rows:
        raise ConfigError("the trace is empty", file=path)
    header = [h.strip().lower() for h in rows[0]]
    cols = {}
    for what, names in TRACE_COLUMNS.items():
        found = [header.index(n) for n in names if n in header]
        if not found:
            raise ConfigError(f"no {what} column: expected one of {', '.join(names)} (case-insensitive) "
                              f"in the header line, got {', '.join(rows[0]) or 'nothing'}", file=path, line=1)
        cols[what] = found[0]
    arrival, prompt, output = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            cells = {w: row[c] for w, c in cols.items()}
        except IndexError:
            raise ConfigError(f"expected {len(header)} columns, got {len(row)}", file=path, line=line) from None
        try:
            t = _timestamp_s(cells["arrival"])
        except ValueError:
            t = math.nan
        if not math.isfinite(t) or t < 0:
            raise ConfigError(f"expected an arrival time (seconds >= 0 or a date-time), got "
                              f"{cells['arrival']!r}", file=path, line=line)
        counts = []
        for what in ("prompt", "output"):
            try:
                v = float(cells[what])
            except ValueError:
                v = math.nan
            if not (math.isfinite(v) and v.is_integer() and 0 < v <= MAX_CONTEXT_LEN):
                raise ConfigError(f"expected a whole number of {what} tokens from 1 to "
                                  f"{MAX_CONTEXT_LEN:,}, got {cells[what]!r}", file=path, line=line)
            counts.append(int(v))
        arrival.append(t)
        prompt.append(counts[0])
        output.append(counts[1])
    if not arrival:
        raise ConfigError("the trace has no requests", file=path)
    a = np.asarray(arrival, dtype=float)
    order = np.argsort(a, kind="stable")
    return RequestStream(a[order] - a.min(), np.asarray(prompt, dtype=np.int64)[order],
                         np.asarray(output, dtype=np.int64)[order])
