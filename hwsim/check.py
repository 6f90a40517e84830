"""`hwsim run CONFIG --check`: run the functional model of every kernel a run relied on and
compare it with a numpy float64 reference.

For every system of the run (the main one and each baseline), every op of its graph is traced to
the unit that ran it, from the schedule's tasks (`Task.op`, `Task.unit`) and, on the NPU, from
the cost model's choice of datapath (`npu_op_cost(...).engine`: systolic array or vector units).
The op's shape is scaled down and the kernel of that unit (hw/kernels) is run on fresh
random operands in the op's dtype; the reference is float64 on the same operands. Ops of one
kind, unit and scaled shape are checked once (32 identical layers need one run).

Which kernel models which op, and how shapes are scaled down: hwsim/check_cases.py.

Randomness: operands are N(0, 1) rounded to the op's dtype (int8: uniform integers), drawn from a
seed taken from os.urandom on every run, printed with the results; HWSIM_CHECK_SEED=<seed> replays
it. Error metric and tolerances: hwsim/hw/kernels/numerics.py.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from hwsim.check_cases import cases_for
from hwsim.hw.kernels.numerics import TOLERANCE, max_rel_error

SEED_ENV = "HWSIM_CHECK_SEED"
METRIC = "max|y - ref| / max|ref|, ref = float64 on the same operands"


@dataclass
class KernelCheck:
    systems: list[str]      # the run's systems that rely on this kernel ("main", baselines)
    op_kind: str
    unit: str               # where it ran: npu/systolic, npu/vector, pim, gpu, link
    kernel: str
    precision: str          # operands -> accumulator
    accumulate: str
    shape: str              # the scaled shape checked (the worst one if several)
    ops: int                # ops of the graphs this row covers
    shapes: int             # distinct scaled shapes run
    max_rel_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_rel_error <= self.tolerance


@dataclass
class CheckReport:
    seed: int
    rows: list[KernelCheck] = field(default_factory=list)
    not_computed: dict[str, str] = field(default_factory=dict)   # op kind -> why

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def errors(self) -> dict[str, float]:
        """{op kind: largest max_rel_error over systems, units and shapes}."""
        out: dict[str, float] = {}
        for r in self.rows:
            out[r.op_kind] = max(out.get(r.op_kind, 0.0), r.max_rel_error)
        return out

    def detail(self) -> dict:
        return {"seed": self.seed, "replay": f"{SEED_ENV}={self.seed}", "metric": METRIC,
                "passed": self.passed,
                "rows": [{**asdict(r), "passed": r.passed} for r in self.rows],
                "not_computed": dict(self.not_computed)}


def seed_from_env() -> int:
    """HWSIM_CHECK_SEED if set, else 63 fresh bits from os.urandom."""
    text = os.environ.get(SEED_ENV, "").strip()
    if text:
        return int(text, 0)
    return int.from_bytes(os.urandom(8), "little") >> 1


def check_run(result, seed: int | None = None) -> CheckReport:
    """Check every op kind of the main system and of each baseline (module docstring). A kernel
    (unit, kernel, precision, scaled shape) used by several ops or systems is run once."""
    seed = seed_from_env() if seed is None else int(seed)
    report = CheckReport(seed)
    errors: dict[tuple, float] = {}
    rows: dict[tuple, KernelCheck] = {}
    seen: dict[tuple, set[str]] = {}
    for name, sys_result in [("main", result.main), *result.baselines.items()]:
        cases, skipped = cases_for(sys_result)
        for kind, why in skipped.items():
            report.not_computed.setdefault(kind, why)
        for case, _ in cases:
            if case.key not in errors:          # each distinct kernel run once, in a fixed order
                y, ref = case.run(np.random.default_rng([seed, len(errors)]))
                errors[case.key] = max_rel_error(y, ref)
            err = errors[case.key]
            row_key = (case.kind, case.unit, case.kernel, case.precision)
            row = rows.get(row_key)
            if row is None:
                rows[row_key] = KernelCheck([name], case.kind, case.unit, case.kernel, case.precision,
                                            case.accumulate, case.shape, 1, 1, err,
                                            TOLERANCE[case.accumulate])
                seen[row_key] = {case.shape}
                continue
            row.ops += 1
            if name not in row.systems:
                row.systems.append(name)
            if case.shape not in seen[row_key]:
                seen[row_key].add(case.shape)
                row.shapes += 1
            if err > row.max_rel_error or math.isnan(err):
                row.max_rel_error, row.shape = err, case.shape
    report.rows = list(rows.values())
    return report
