"""`hwsim validate`: re-run every published claim hwsim reproduces and print the table.

Exit codes: 0 every reproduced claim passes, 3 a claim failed (a finding, not a bug), 2 bad input
(an unknown `--only` name, an unwritable `--report` folder), 1 an internal error.
"""
from __future__ import annotations

import functools
import json
import sys
import textwrap
import time
from pathlib import Path

import click

from hwsim.errors import ConfigError

EXIT_CLAIM_FAILED = 3


def _guarded(fn):
    """hwsim.cli's guard (one-line error, exit 2), imported when called: cli imports this module."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from hwsim.cli import _guarded as guard
        return guard(fn)(*args, **kwargs)
    return wrapper


def fmt(value: float | None, unit: str = "") -> str:
    """A value as the table shows it: integers with thousands separators, else 6 significant digits."""
    if value is None:
        return "—"
    text = f"{value:,.0f}" if value == round(value) and abs(value) >= 100 else f"{value:.6g}"
    return f"{text} {unit}".strip()


def fmt_band(low: float, high: float, unit: str) -> str:
    if low == high:
        return f"= {fmt(low, unit)}"
    if high == float("inf"):
        return f">= {fmt(low, unit)}"
    if low == float("-inf"):
        return f"<= {fmt(high, unit)}"
    return f"{fmt(low)} .. {fmt(high, unit)}"


COLUMNS = [("system", 10), ("claim", 40), ("source", 32), ("config", 32), ("published", 15),
           ("ours", 15), ("accepted band", 22), ("status", 14)]


def table_rows(outcomes) -> list[list[str]]:
    rows, last_system = [], None
    for o in outcomes:
        c = o.claim
        rows.append([c.system if c.system != last_system else "", c.claim, c.source, c.config,
                     fmt(c.published, c.unit), fmt(o.ours, c.unit), fmt_band(*c.bounds, c.unit),
                     str(o.status)])
        last_system = c.system
    return rows


def format_table(outcomes) -> str:
    """A fixed-width table; long cells wrap onto continuation lines."""
    def line(cells):
        return "  ".join(cell.ljust(width) for cell, (_, width) in zip(cells, COLUMNS)).rstrip()

    out = [line([name for name, _ in COLUMNS]), line(["-" * width for _, width in COLUMNS])]
    for row in table_rows(outcomes):
        wrapped = [textwrap.wrap(cell, width) or [""] for cell, (_, width) in zip(row, COLUMNS)]
        for i in range(max(len(w) for w in wrapped)):
            out.append(line([w[i] if i < len(w) else "" for w in wrapped]))
    return "\n".join(out)


def summary_line(counts: dict, seconds: float | None = None) -> str:
    line = (f"{counts['passed']} of {counts['total']} reproduced claims pass, {counts['failed']} fail; "
            f"{counts['not_reproduced']} not reproduced")
    return line if seconds is None else f"{line} ({seconds:.1f} s)"


@click.command("validate")
@click.option("--only", metavar="NAME", help="One system (e.g. neupims, scalesim) or one claim id.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout, nothing else.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write DIR/validation.md and a published-vs-ours plot per system.")
@_guarded
def validate_command(only, as_json, report_dir):
    """Re-run every published claim hwsim reproduces; print published, ours, band and status.

    Exit 0 when every reproduced claim passes, 3 when one fails, 2 for bad input."""
    from hwsim.validate import all_claims, evaluate_claims, select, summary

    start = time.perf_counter()
    claims = all_claims()
    try:
        claims = select(claims, only)
    except KeyError:
        systems = sorted({c.system for c in claims})
        raise ConfigError(f"unknown system or claim '{only}'; systems: {', '.join(systems)}; "
                          f"claims: {', '.join(c.id for c in claims)}", key="--only") from None
    if report_dir is not None:
        from hwsim.extras import require
        require("plots", "`hwsim validate --report`")
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder: {exc.strerror}", file=str(report_dir),
                              key="--report") from None
    outcomes = evaluate_claims(claims)
    counts = summary(outcomes)
    seconds = time.perf_counter() - start
    if report_dir is not None:
        from hwsim.validate.report import write_report
        write_report(outcomes, counts, report_dir)
    if as_json:
        click.echo(json.dumps({"claims": [o.to_json() for o in outcomes], **counts,
                               "seconds": round(seconds, 3)}, allow_nan=False))
    else:
        click.echo(format_table(outcomes))
        skipped = [o.claim for o in outcomes if o.status == "not reproduced"]
        if skipped:
            click.echo("\nnot reproduced:")
            for c in skipped:
                click.echo(textwrap.fill(f"{c.id}: {c.not_reproduced}", 110, initial_indent="  ",
                                         subsequent_indent="    "))
        click.echo("\n" + summary_line(counts, seconds))
        if report_dir is not None:
            click.echo(f"report: {report_dir / 'validation.md'}")
    if counts["failed"]:
        sys.exit(EXIT_CLAIM_FAILED)
