"""`hwsim` command line: a thin layer over the Python API.

Exit codes: 0 success, 2 bad input (one line naming file, key and what was expected), 1 internal
error (set HWSIM_DEBUG=1 for the traceback), 141 when the reader of stdout went away (`| head`).
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from hwsim.configs import find, names
from hwsim.errors import ConfigError
from hwsim.extras import missing_extra_message, require


# Exit status when stdout's reader went away (`hwsim list configs | head -1`): 128 + SIGPIPE,
# what a shell reports for a program killed by the signal.
BROKEN_PIPE_EXIT = 141


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):    # no real stdout (e.g. under a test runner)
        pass


def _guarded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except BrokenPipeError:    # `hwsim ... | head`: the reader is gone; stop quietly
            _quiet_stdout()
            sys.exit(BROKEN_PIPE_EXIT)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # an internal error, not the user's
            if os.environ.get("HWSIM_DEBUG"):
                raise
            if missing := missing_extra_message(exc):      # an optional dependency not installed
                click.echo(f"error: {missing}", err=True)
                sys.exit(2)
            click.echo(f"internal error: {type(exc).__name__}: {exc} "
                       "(set HWSIM_DEBUG=1 for a traceback)", err=True)
            sys.exit(1)
    return wrapper


SET_HELP = "Override a config key, e.g. --set hardware.npu.freq_ghz=1.5 (repeatable)."


class LazyGroup(click.Group):
    """Commands defined in other modules (``LAZY``), imported only when one runs or is listed,
    so `hwsim run` never loads the design-space or SCALE-Sim modules."""

    LAZY = {"sweep": "hwsim.cli_dse:sweep", "results": "hwsim.cli_dse:results",
            "pareto": "hwsim.cli_dse:pareto", "scalesim": "hwsim.scalesim:scalesim_command",
            "validate": "hwsim.validate.command:validate_command",
            "calibrate": "hwsim.calibrate.cli:calibrate"}

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx, name):
        if name in self.LAZY:
            import importlib
            module, _, attr = self.LAZY[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup)
@click.version_option(package_name="hwsim")
def main():
    """hwsim: simulate AI accelerators from YAML and explore their design space."""


def entry() -> None:
    """The `hwsim` console script: `main`, with Python's cyclic garbage collector set for a
    short batch process. A run allocates a few million objects and frees nearly all of them by
    reference counting; at the default gen-0 threshold (700) the collector ran ~220 times in
    `hwsim run configs/neupims.yaml` (~0.1 s), and the interpreter's final collections took
    another ~0.15 s. A gen-0 threshold of 20,000 and `gc.freeze()` before exit (nothing is
    collected at exit that the process is about to drop anyway; exit handlers and file flushes
    still run) remove most of that. In-process callers (tests, notebooks) use `main` and keep
    the defaults."""
    import gc
    gc.set_threshold(20_000, 10, 10)
    try:
        main()
    finally:
        gc.freeze()


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Results folder, replaced if it exists (default: the config's output.dir, else "
              "results/<name>/, or <that>-2/, -3/... when it holds another config's results).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout, nothing else.")
@click.option("--check", "check", is_flag=True,
              help="Also run the numba models of the kernels on random data against float64 and "
              "report the errors; exit 1 if one exceeds its tolerance (HWSIM_CHECK_SEED replays).")
@_guarded
def run(config, overrides, out_dir, as_json, check):
    """Simulate CONFIG and its baselines; print a table and write a results folder.

    CONFIG is a YAML file or the name of a shipped config (`hwsim list configs`); a file wins."""
    config = find(config, "configs")
    if check:
        require("check", "`hwsim run --check`")
    from hwsim.config.loader import load_config
    from hwsim.outputs import check_finite, check_output_dir
    from hwsim.pipeline import evaluate
    from hwsim.report import format_table, results_dir, write_results

    cfg = load_config(config, list(overrides))
    out_key = "--out" if out_dir else "output.dir" if cfg.output.dir else "name"
    check_output_dir(out_dir or Path(cfg.output.dir or Path("results") / cfg.name), key=out_key)
    out_dir, notice = results_dir(cfg, out_dir)
    check_output_dir(out_dir, key=out_key)     # a <default>-2/ folder may sit elsewhere
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
    doc = result.to_json()
    check_finite(doc, "metrics.json")
    try:
        write_results(result, out_dir)
    except OSError as exc:     # checked above; the disk may still fill up
        raise ConfigError(f"cannot write results: {exc.strerror or exc}",
                          file=str(exc.filename or out_dir), key=out_key) from None
    if as_json:
        click.echo(json.dumps(doc, allow_nan=False))
        if notice:
            click.echo(notice, err=True)
    else:
        click.echo(format_table(result))
        click.echo(f"\nresults: {out_dir}/" + (f"\n{notice}" if notice else ""))
    if report is not None and not report.passed:
        sys.exit(1)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@_guarded
def show(config, overrides):
    """Print the fully resolved CONFIG (presets expanded, defaults filled in); a file or the name
    of a shipped config."""
    import yaml

    from hwsim.config.loader import load_config
    cfg = load_config(find(config, "configs"), list(overrides))
    click.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), nl=False)


@main.command(name="list")
@click.argument("what", type=click.Choice(["configs", "models", "presets", "sweeps", "topologies",
                                           "mappers", "policies"]))
@_guarded
def list_(what):
    """List the shipped run configs, models, hardware presets, sweep specs, SCALE-Sim topologies,
    the mappers or the serving batching policies. Commands take these names in place of a file:
    `hwsim run neupims`."""
    if what == "policies":
        from hwsim.mappers.batching import load_policies
        for name, entry in sorted(load_policies().items()):
            options = ", ".join(entry.options.model_fields)
            click.echo(f"{name:16s} {entry.summary} (options: {options})")
        return
    if what == "mappers":
        from hwsim.mappers import MAPPERS
        for name, entry in sorted(MAPPERS.items()):
            click.echo(f"{name:16s} {entry.summary} (needs: {', '.join(entry.needs)})")
        return
    for name in names(what):
        click.echo(name)


if __name__ == "__main__":
    main()
