"""Published claims hwsim re-runs: one typed record per claim, registered by the module of its
system (``hwsim/validate/neupims.py``, ``scalesim.py``, ...), judged against a stated band.

A claim is what a paper (or a peer simulator's committed report) says, where it says it, which
shipped config or builder hwsim runs to check it, the published value and the band ``ours`` must
fall in, with the band's reason. Published numbers are targets, never inputs: the function that
computes ``ours`` runs the model and nothing else.

Adding a claim is a few lines in the module of its system (any module in this package is imported
by :func:`all_claims`; a module elsewhere can register too, once it is imported)::

    @claim(id="neupims.speedup_over_npu_only", system="NeuPIMs",
           claim="NeuPIMs serves 2.4x the tokens/s of the NPU-only system",
           source="NeuPIMs (Heo et al., ASPLOS'24), abstract", config="configs/neupims.yaml",
           metric="throughput ratio NeuPIMs / npu_only", published=2.4, unit="x",
           band=Within(0.25, "the paper's ratio averages models and datasets; ..."))
    def _():
        return neupims_run().speedup()["npu_only"]

Status: "pass" when ``low <= ours <= high``, "fail" otherwise (NaN included), and
"not reproduced" for a claim hwsim deliberately does not reproduce (``not_reproduced=`` gives the
reason); a not-reproduced claim never counts as a failure, and ``ours`` may still be shown.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable


# --------------------------------------------------------------------------- bands

@dataclass(frozen=True)
class Within:
    """``ours`` within ``rel`` (a fraction) of the published value, either side."""
    rel: float
    reason: str

    def bounds(self, published: float | None) -> tuple[float, float]:
        if published is None:
            raise ValueError("a relative band needs a published value")
        lo, hi = published * (1 - self.rel), published * (1 + self.rel)
        return (min(lo, hi), max(lo, hi))


@dataclass(frozen=True)
class Exact:
    """``ours`` equals the published value (integer cycle counts, closed forms)."""
    reason: str

    def bounds(self, published: float | None) -> tuple[float, float]:
        if published is None:
            raise ValueError("an exact band needs a published value")
        return (published, published)


@dataclass(frozen=True)
class Between:
    """``low <= ours <= high``; None leaves a side open (a direction: ``Between(1, None)``)."""
    low: float | None
    high: float | None
    reason: str

    def bounds(self, published: float | None) -> tuple[float, float]:
        return (-math.inf if self.low is None else self.low, math.inf if self.high is None else self.high)


Band = Within | Exact | Between


# --------------------------------------------------------------------------- claims

class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_REPRODUCED = "not reproduced"


@dataclass(frozen=True)
class Claim:
    id: str                  # "<system slug>.<what>", unique; `hwsim validate --only ID`
    system: str              # the system or source family, e.g. "NeuPIMs", "SCALE-Sim"
    claim: str               # the claim in words
    source: str              # paper (venue, year) + table/figure/section, or a peer's report file
    config: str              # the shipped config or builder hwsim runs to compute ours
    metric: str              # what ours measures
    published: float | None  # the published value (None: a direction or band only)
    unit: str
    band: Band               # the accepted band for ours, with its reason
    ours: Callable[[], float] | None   # computes ours from the model; None if not reproduced at all
    not_reproduced: str | None = None  # why hwsim deliberately does not reproduce it

    def __post_init__(self):
        if not re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+", self.id):
            raise ValueError(f"claim id {self.id!r}: expected '<system>.<what>' in lower case")
        if self.ours is None and self.not_reproduced is None:
            raise ValueError(f"claim {self.id}: a reproduced claim needs a function computing ours")
        low, high = self.bounds
        if not low <= high:
            raise ValueError(f"claim {self.id}: empty band [{low}, {high}]")

    @property
    def bounds(self) -> tuple[float, float]:
        """The accepted band for ours: (low, high), ±inf where open."""
        return self.band.bounds(self.published)

    @property
    def reason(self) -> str:
        return self.not_reproduced or self.band.reason


def judge(claim: Claim, ours: float | None) -> Status:
    """pass / fail / not reproduced: the one place a claim's status is decided."""
    if claim.not_reproduced is not None:
        return Status.NOT_REPRODUCED
    low, high = claim.bounds
    return Status.PASS if ours is not None and low <= ours <= high else Status.FAIL


@dataclass(frozen=True)
class Outcome:
    claim: Claim
    ours: float | None
    status: Status

    def to_json(self) -> dict:
        c, (low, high) = self.claim, self.claim.bounds
        finite = lambda x: x if x is not None and math.isfinite(x) else None  # noqa: E731 (JSON has no inf/NaN)
        return {"id": c.id, "system": c.system, "claim": c.claim, "source": c.source,
                "config": c.config, "metric": c.metric, "published": c.published,
                "ours": finite(self.ours), "low": finite(low), "high": finite(high), "unit": c.unit,
                "status": str(self.status), "reason": c.reason}


# --------------------------------------------------------------------------- the registry

REGISTRY: dict[str, Claim] = {}


def register(c: Claim) -> Claim:
    if c.id in REGISTRY:
        raise ValueError(f"claim {c.id} registered twice")
    REGISTRY[c.id] = c
    return c


def claim(*, id: str, system: str, claim: str, source: str, config: str, metric: str,
          published: float | None, unit: str, band: Band, not_reproduced: str | None = None):
    """Decorator: register the decorated function as the one computing ours for this claim."""
    def wrap(fn: Callable[[], float]) -> Callable[[], float]:
        register(Claim(id=id, system=system, claim=claim, source=source, config=config,
                       metric=metric, published=published, unit=unit, band=band, ours=fn,
                       not_reproduced=not_reproduced))
        return fn
    return wrap


NOT_CLAIM_MODULES = {"command", "report"}


def all_claims() -> list[Claim]:
    """Every registered claim, after importing each module of this package (one per system)."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in NOT_CLAIM_MODULES:
            importlib.import_module(f"{__name__}.{mod.name}")
    return list(REGISTRY.values())


def slug(text: str) -> str:
    """'SCALE-Sim' -> 'scalesim': how `--only` matches a system name."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def select(claims: list[Claim], only: str | None) -> list[Claim]:
    """Claims of the system named `only` (any case and punctuation), or the one with that id.
    Raises KeyError for a name that matches nothing."""
    if only is None:
        return claims
    picked = [c for c in claims if c.id == only or slug(c.system) == slug(only)]
    if not picked:
        raise KeyError(only)
    return picked


def evaluate_claim(c: Claim) -> Outcome:
    ours = None if c.ours is None else float(c.ours())
    return Outcome(c, ours, judge(c, ours))


def evaluate_claims(claims: list[Claim]) -> list[Outcome]:
    """Each claim runs once; claims sharing a simulation share it through the module's cache."""
    return [evaluate_claim(c) for c in claims]


def summary(outcomes: list[Outcome]) -> dict:
    """passed / total count the reproduced claims (pass + fail); not-reproduced ones are counted
    apart and never fail a run."""
    count = lambda s: sum(o.status == s for o in outcomes)  # noqa: E731
    return {"passed": count(Status.PASS), "failed": count(Status.FAIL),
            "total": count(Status.PASS) + count(Status.FAIL),
            "not_reproduced": count(Status.NOT_REPRODUCED)}
