"""Reading a results folder: a pandas DataFrame, a printed summary, the Pareto front, exports."""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from hwsim.dse.store import FIXED_COLUMNS, ResultsStore

from hwsim.errors import ConfigError


def load_results(out_dir: str | Path):
    """All stored points of a sweep as a pandas DataFrame, one row per point, in the order they
    were stored. Columns: point_id, status, error, violations, hwsim_version, elapsed_s,
    created_at, one per axis key, one per metric. ``df.attrs`` holds ``axes`` (axis keys),
    ``objectives`` ([(metric, 'max'|'min')]), ``constraints``, ``spec_yaml`` and ``name``."""
    import pandas as pd
    store = ResultsStore(out_dir, create=False)
    try:
        meta = store.meta()
        df = pd.read_sql_query("SELECT * FROM points ORDER BY rowid", store.conn)
    finally:
        store.close()
    df.attrs.update(axes=list(meta.get("axis_keys", [])),
                    objectives=[tuple(o) for o in meta.get("objectives", [])],
                    constraints=list(meta.get("constraints", [])),
                    spec_yaml=meta.get("spec_yaml"), name=meta.get("name"))
    return df


def metric_columns(df) -> list[str]:
    axes = set(df.attrs.get("axes", []))
    return [c for c in df.columns if c not in FIXED_COLUMNS and c not in axes]


def require_columns(df, names: Sequence[str], what: str = "metric", option: str | None = None) -> None:
    """ConfigError naming the first unknown column and listing the available ones."""
    for name in names:
        if name not in df.columns:
            pool = metric_columns(df) if what == "metric" else list(df.attrs.get("axes", []))
            close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown {what} '{name}'{hint}; available: {', '.join(pool) or 'none'}",
                              key=option)


def require_numeric(df, names: Sequence[str], option: str | None = None) -> None:
    """ConfigError naming the first column that holds something other than numbers (a Pareto
    front compares numbers; `status` or a text axis cannot be one of its objectives)."""
    import pandas as pd
    for name in names:
        column = df[name].dropna()
        if pd.api.types.is_bool_dtype(column) or pd.to_numeric(column, errors="coerce").isna().any():
            sample = next((v for v in column if not isinstance(v, (int, float)) or isinstance(v, bool)), None)
            raise ConfigError(f"column '{name}' holds values that are not numbers (e.g. {sample!r}); "
                              "a Pareto front needs a numeric metric", key=option)


def front(df, objectives: Sequence[tuple[str, str]]):
    """(ok rows, Pareto mask over them, knee position or None) for the given objectives. Only
    points with status 'ok' (evaluated and meeting every constraint) compete."""
    import numpy as np
    from hwsim.dse.pareto import knee_index, pareto_mask
    require_columns(df, [m for m, _ in objectives])
    require_numeric(df, [m for m, _ in objectives])
    ok = df[df["status"] == "ok"].reset_index(drop=True)
    values = ok[[m for m, _ in objectives]].apply(_numeric).to_numpy(dtype=float) if len(ok) else \
        np.zeros((0, len(objectives)))
    senses = [s for _, s in objectives]
    mask = pareto_mask(values, senses)
    return ok, mask, knee_index(values, senses)


def _numeric(column):
    import pandas as pd
    return pd.to_numeric(column, errors="coerce")


def summary(df, max_errors: int = 3) -> str:
    """A few lines: counts by status, the axes' values, the best point per objective and the
    Pareto front size, and the first errors."""
    lines = [f"{df.attrs.get('name') or 'sweep'}: {len(df)} points stored"
             + (" (" + ", ".join(f"{n} {s}" for s, n in df["status"].value_counts().sort_index().items()) + ")"
                if len(df) else "")]
    for key in df.attrs.get("axes", []):
        if key in df.columns:
            values = list(dict.fromkeys(df[key].tolist()))
            try:
                values.sort()
            except TypeError:   # mixed kinds: keep the stored order
                pass
            shown = ", ".join(map(str, values[:12])) + (", ..." if len(values) > 12 else "")
            lines.append(f"  axis {key}: {shown}")
    objectives = df.attrs.get("objectives", [])
    ok = df[df["status"] == "ok"]
    if objectives and len(ok):
        present = [(m, s) for m, s in objectives if m in df.columns]
        for metric, sense in present:
            col = _numeric(ok[metric])
            if col.notna().any():
                best = ok.loc[col.idxmax() if sense == "max" else col.idxmin()]
                where = ", ".join(f"{k}={best[k]}" for k in df.attrs.get("axes", []) if k in best)
                lines.append(f"  best {metric} ({sense}): {col.loc[best.name]:.6g} at {where}")
        if len(present) >= 2:
            _, mask, _ = front(df, present)
            lines.append(f"  Pareto front over {', '.join(m for m, _ in present)}: {int(mask.sum())} points"
                         " (hwsim pareto DIR to plot)")
    errors = df[df["error"].notna()]
    groups = errors.groupby(["status", "error"], sort=False).size().sort_values(ascending=False, kind="stable")
    for (status, error), n in list(groups.items())[:max_errors]:
        lines.append(f"  {n} {status}: {error}")
    if len(groups) > max_errors:
        lines.append(f"  ... {len(groups) - max_errors} more distinct errors")
    return "\n".join(lines)


def export(df, csv: str | Path | None = None, parquet: str | Path | None = None) -> list[Path]:
    """Write the table as CSV and/or Parquet; return the paths written."""
    try:
        return _export(df, csv, parquet)
    except OSError as exc:       # checked before reading (hwsim.outputs); the disk may still fill
        raise ConfigError(f"cannot write: {exc.strerror or exc}", file=str(exc.filename or csv or parquet)) from None


def _export(df, csv, parquet) -> list[Path]:
    written = []
    if csv:
        df.to_csv(csv, index=False)
        written.append(Path(csv))
    if parquet:
        table = df.copy()
        table.attrs = {}
        for col in table.columns:     # a column mixing numbers and text is stored as text
            if table[col].dtype == object:
                kinds = {type(v) for v in table[col].dropna()}
                if len(kinds) > 1:
                    table[col] = table[col].map(lambda v: None if v is None else str(v))
        import pyarrow  # noqa: F401  (pandas' parquet engine; missing: the CLI names the extra)
        table.to_parquet(parquet, index=False)
        written.append(Path(parquet))
    return written


def frontier_table(ok, mask, knee, objectives, axes) -> list[str]:
    """Printable lines of the front, best first in the first objective, the knee marked."""
    import numpy as np
    rows = ok[mask].copy()
    rows["_knee"] = False
    if knee is not None:
        rows.loc[rows.index == knee, "_knee"] = True
    first, sense = objectives[0]
    rows = rows.sort_values(first, ascending=(sense == "min"))
    cols = list(axes) + [m for m, _ in objectives]
    out = ["  ".join(cols) + "  knee"]
    for _, r in rows.iterrows():
        cells = [f"{r[c]:.6g}" if isinstance(r[c], (float, np.floating)) else str(r[c]) for c in cols]
        out.append("  ".join(cells) + ("  *" if r["_knee"] else ""))
    return out

