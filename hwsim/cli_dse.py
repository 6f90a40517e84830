"""`hwsim sweep`, `hwsim results`, `hwsim pareto`: the design-space exploration commands.

A thin layer over ``hwsim.dse``. Heavy imports (pandas, optuna, dask, matplotlib) happen inside
the commands, so `hwsim run` does not pay for them. Exit codes as for `hwsim run`: 2 for bad
input (spec, axis key, unknown metric, a folder holding another sweep), 130 when interrupted
(finished points are kept; re-running resumes).
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from hwsim.errors import ConfigError
from hwsim.extras import require


def _guarded(fn):
    """hwsim.cli's error handling (ConfigError -> one line, exit 2), looked up when the command
    runs: hwsim.cli imports this module, so importing it back here at load time would be
    circular under `python -m hwsim.cli`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from hwsim.cli import _guarded as guard
        return guard(fn)(*args, **kwargs)
    return wrapper


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Results folder (default: results/<spec name>/). Re-running resumes into it.")
@click.option("--jobs", type=int, default=None,
              help="Local worker processes (default: the number of CPUs; 1 = in this process).")
@click.option("--cluster", metavar="ADDRESS",
              help="Evaluate on a dask.distributed scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--limit", type=int, default=None, help="Evaluate at most N new points in this run.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Fixed override of the base config, e.g. --set workload.model.n_layers=2 "
                   "(repeatable; part of the base's identity).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_guarded
def sweep(spec, out_dir, jobs, cluster, limit, overrides, quiet):
    """Evaluate the design points of SPEC (a file, or a shipped spec's name) that are not yet in
    the results folder.

    Progress (done, failed, rate, ETA) goes to stderr; each point is committed to
    OUT/results.sqlite as it finishes, so an interrupted sweep resumes where it stopped.
    """
    require("dse", "`hwsim sweep`")
    from hwsim.configs import find
    from hwsim.dse.runner import run_sweep
    from hwsim.dse.spec import load_sweep
    from hwsim.outputs import check_output_dir

    spec = find(spec, "sweeps")      # a file, or a shipped spec by name (`hwsim list sweeps`)
    loaded = load_sweep(spec, list(overrides))
    out_key = "--out" if out_dir else "name"
    out_dir = out_dir or Path("results") / (loaded.spec.name or spec.stem)
    check_output_dir(out_dir, key=out_key)
    try:
        report = run_sweep(loaded, out_dir, jobs=jobs, cluster=cluster, limit=limit,
                           progress=not quiet)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished points are stored in {out_dir}; "
                   "re-run the same command to resume", err=True)
        sys.exit(130)
    click.echo(report.summary())


@click.command()
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every stored point as CSV.")
@click.option("--parquet", "parquet_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every stored point as Parquet.")
@_guarded
def results(results_dir, csv_path, parquet_path):
    """Summarize a sweep's results folder; export its points."""
    require("dse", "`hwsim results`")
    from hwsim.dse.results import export, load_results, summary
    from hwsim.outputs import check_output_file

    for path, key in ((csv_path, "--csv"), (parquet_path, "--parquet")):
        if path is not None:
            check_output_file(path, key)
    df = load_results(results_dir)
    click.echo(summary(df))
    for path in export(df, csv=csv_path, parquet=parquet_path):
        click.echo(f"wrote {path}")


@click.command()
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--x", "x_metric", metavar="METRIC", help="Metric on x (default: the first objective).")
@click.option("--y", "y_metric", metavar="METRIC", help="Metric on y (default: the second objective).")
@click.option("--color", metavar="AXIS", help="Colour the front by this axis key.")
@click.option("--maximize", multiple=True, metavar="METRIC",
              help="Treat METRIC as maximized (for a metric that is not one of the spec's objectives).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Image to write, .png or .svg (default: RESULTS_DIR/pareto.png).")
@_guarded
def pareto(results_dir, x_metric, y_metric, color, maximize, out_path):
    """Plot the Pareto front of a sweep and print its points (the knee marked with *).

    Objectives and their senses come from the spec; with 3 or more objectives and no --x/--y,
    a grid of pairwise panels. A metric that is not an objective is minimized unless named by
    --maximize.
    """
    require("dse", "`hwsim pareto`")
    require("plots", "`hwsim pareto`")
    from hwsim.dse.plots import plot_front
    from hwsim.dse.results import front, frontier_table, load_results, require_columns, require_numeric
    from hwsim.outputs import check_output_file

    df = load_results(results_dir)
    require_columns(df, list(maximize), option="--maximize")
    senses = dict(df.attrs.get("objectives", []))
    senses.update({m: "max" for m in maximize})
    if (x_metric is None) != (y_metric is None):
        raise ConfigError("give both --x and --y, or neither (to use the spec's objectives)",
                          key="--y" if y_metric is None else "--x")
    if x_metric:
        for metric, option in ((x_metric, "--x"), (y_metric, "--y")):
            require_columns(df, [metric], option=option)
            require_numeric(df, [metric], option=option)
        objectives = [(x_metric, senses.get(x_metric, "min")), (y_metric, senses.get(y_metric, "min"))]
    else:
        objectives = list(df.attrs.get("objectives", []))
        if len(objectives) < 2:
            raise ConfigError("the sweep's spec has fewer than two objectives; name the metrics "
                              "with --x and --y", file=str(results_dir))
        require_columns(df, [m for m, _ in objectives])
    if color:
        require_columns(df, [color], what="axis", option="--color")
    out_path = out_path or Path(results_dir) / "pareto.png"
    if out_path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ConfigError(f"expected a .png, .svg or .pdf file, got '{out_path.name}'", key="--out")
    check_output_file(out_path, "--out")
    ok, mask, knee = front(df, objectives)
    if not len(ok):
        raise ConfigError(f"no feasible points to plot ({len(df)} stored, none with status ok)",
                          file=str(results_dir))
    plot_front(df, objectives, out=out_path, color=color)
    axes = [k for k in df.attrs.get("axes", []) if k in df.columns]
    click.echo(f"Pareto front: {int(mask.sum())} of {len(ok)} feasible points "
               f"({', '.join(f'{m} {s}' for m, s in objectives)})")
    for line in frontier_table(ok, mask, knee, objectives, axes):
        click.echo("  " + line)
    click.echo(f"plot: {out_path}")
