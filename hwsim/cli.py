"""`hwsim` command line: a thin layer over the Python API.

Exit codes: 0 success, 2 bad input (one line naming file, key and what was expected), 1 internal
error (set HWSIM_DEBUG=1 for the traceback).
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from hwsim.errors import ConfigError


def _guarded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # an internal error, not the user's
            if os.environ.get("HWSIM_DEBUG"):
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} "
                       "(set HWSIM_DEBUG=1 for a traceback)", err=True)
            sys.exit(1)
    return wrapper


SET_HELP = "Override a config key, e.g. --set hardware.npu.freq_ghz=1.5 (repeatable)."


@click.group()
@click.version_option(package_name="hwsim")
def main():
    """hwsim: simulate AI accelerators from YAML and explore their design space."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Results folder (default: the config's output.dir, else results/<name>/).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout, nothing else.")
@click.option("--check", "check", is_flag=True,
              help="Also run the numba models of the kernels on random data against float64 and "
              "report the errors; exit 1 if one exceeds its tolerance (HWSIM_CHECK_SEED replays).")
@_guarded
def run(config, overrides, out_dir, as_json, check):
    """Simulate CONFIG and its baselines; print a table and write a results folder."""
    from hwsim.config.loader import load_config
    from hwsim.pipeline import evaluate
    from hwsim.report import format_table, write_results

    cfg = load_config(config, list(overrides))
    try:
        result = evaluate(cfg)
    except ConfigError as exc:   # e.g. does not fit memory: raised without the file's name
        exc.file = exc.file or str(config)
        raise
    report = None
    if check:                    # imports numba: only when asked
        from hwsim.check import check_run
        report = check_run(result)
        result.check, result.check_detail = report.errors(), report.detail()
    out_dir = out_dir or Path(cfg.output.dir or Path("results") / cfg.name)
    write_results(result, out_dir)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(format_table(result))
        click.echo(f"\nresults: {out_dir}/")
    if report is not None and not report.passed:
        sys.exit(1)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@_guarded
def show(config, overrides):
    """Print the fully resolved CONFIG (presets expanded, defaults filled in)."""
    import yaml

    from hwsim.config.loader import load_config
    cfg = load_config(config, list(overrides))
    click.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), nl=False)


@main.command(name="list")
@click.argument("what", type=click.Choice(["models", "presets", "mappers", "configs", "sweeps"]))
@_guarded
def list_(what):
    """List the shipped models, hardware presets, mappers, run configs or sweep specs."""
    from hwsim.config.loader import available
    from hwsim.configs import CONFIG_DIR, MODELS_DIR, PRESETS_DIR, SWEEPS_DIR
    if what == "mappers":
        from hwsim.mappers import MAPPERS
        for name, entry in sorted(MAPPERS.items()):
            click.echo(f"{name:16s} {entry.summary} (needs: {', '.join(entry.needs)})")
        return
    folder = {"models": MODELS_DIR, "presets": PRESETS_DIR, "configs": CONFIG_DIR,
              "sweeps": SWEEPS_DIR}[what]
    for name in available(folder):
        click.echo(name)


from hwsim.cli_dse import pareto, results, sweep  # noqa: E402  (design-space exploration; lazy inside)
main.add_command(sweep); main.add_command(results); main.add_command(pareto)  # noqa: E702
from hwsim.scalesim import scalesim_command  # noqa: E402  (SCALE-Sim compatible per-layer report)
main.add_command(scalesim_command)
from hwsim.calibrate.cli import calibrate  # noqa: E402  (GPU microbenchmarks; torch imported inside)
main.add_command(calibrate)

if __name__ == "__main__":
    main()
