"""The crash-safe results store of a sweep: ``DIR/results.sqlite`` (stdlib sqlite3, WAL mode).

Tables:
- ``points``: one row per evaluated design point. ``point_id`` (primary key: a hash of the base
  config's identity and the point's axis values, see ``Sweep.point_id``), ``status`` ('ok',
  'infeasible': evaluation raised a ConfigError such as "does not fit memory", or a constraint
  is violated; 'failed': evaluation raised anything else), ``error`` (the message), ``violations``
  (JSON list of broken constraints), ``extrapolated`` (1 when the metrics were extended from
  short runs, 0 when every layer was simulated, see ``hwsim.extrapolate``), ``extrapolation_period``
  (the period, in decoder layers, they were extended over; NULL when every layer was simulated),
  ``hwsim_version``, ``elapsed_s``, ``created_at`` (UTC), one
  column per axis key (named by the dotted key) and one per metric (dotted names for nested
  metrics, ``utilization.npu``). Metric columns are added with ALTER TABLE as new names appear.
- ``meta``: key/value text: the spec (YAML), its fingerprint (axes and base identity),
  constraints, objectives, axis keys.

Only the parent process writes. Each point is committed on its own as it arrives; in WAL mode
with ``synchronous=NORMAL`` a committed transaction survives the process being killed (only a
power loss can drop the last commits). So killing a sweep loses no finished point, and
re-running skips every stored point.
"""
from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hwsim.errors import ConfigError

STORE_FILE = "results.sqlite"
FIXED_COLUMNS = ("point_id", "status", "error", "violations", "extrapolated", "extrapolation_period",
                 "hwsim_version", "elapsed_s", "created_at")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def cell(value: Any) -> Any:
    """A value as sqlite stores it: scalars as themselves (NaN as NULL), the rest as JSON."""
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item") and not isinstance(value, (list, dict)):   # numpy scalar
        return cell(value.item())
    return json.dumps(value, sort_keys=True)


class ResultsStore:
    """Open (and, with ``create=True``, create) the store of a results folder."""

    def __init__(self, out_dir: str | Path, create: bool = True):
        self.dir = Path(out_dir)
        self.path = self.dir / STORE_FILE
        if self.dir.exists() and not self.dir.is_dir():
            raise ConfigError("is a file; expected a results folder", file=str(self.dir))
        fresh = not self.path.exists() or (self.path.is_file() and self.path.stat().st_size == 0)
        if fresh:
            if not create:
                raise ConfigError(f"no results store here (expected {self.path}); "
                                  f"run `hwsim sweep SPEC --out {self.dir}` first", file=str(self.dir))
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the results folder: {exc.strerror or exc}",
                                  file=str(self.dir)) from None
        else:
            _refuse_foreign(self.path)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS points (point_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
                "error TEXT, violations TEXT, extrapolated INTEGER, extrapolation_period INTEGER, "
                "hwsim_version TEXT, elapsed_s REAL, "
                "created_at TEXT)")
            self.conn.commit()
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the results store: {exc}", file=str(self.path)) from None
        self._columns = self._read_columns()

    def _read_columns(self) -> list[str]:
        return [row[1] for row in self.conn.execute("PRAGMA table_info(points)")]

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def lock(self) -> None:
        """Hold an exclusive lock on the folder until ``close``: a second sweep writing into the
        same folder at the same time is refused (ConfigError). The OS releases the lock when the
        process dies, even by SIGKILL, so a killed sweep never leaves the folder locked."""
        try:
            import fcntl
        except ImportError:    # not POSIX: no lock
            return
        self._lock_file = open(self.dir / (STORE_FILE + ".lock"), "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            raise ConfigError("another `hwsim sweep` is writing into this folder right now; wait "
                              "for it (or stop it) and re-run", file=str(self.dir)) from None

    def close(self) -> None:
        self.conn.close()
        if getattr(self, "_lock_file", None) is not None:
            self._lock_file.close()      # releases the lock
            self._lock_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----- meta

    def meta(self) -> dict[str, Any]:
        """Meta values, JSON-decoded where they are JSON."""
        out = {}
        for key, value in self.conn.execute("SELECT key, value FROM meta"):
            try:
                out[key] = json.loads(value)
            except (TypeError, json.JSONDecodeError):
                out[key] = value
        return out

    def set_meta(self, **values: Any) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                              [(k, json.dumps(v)) for k, v in values.items()])
        self.conn.commit()

    def check(self, sweep) -> None:
        """Refuse (ConfigError) a folder that holds another design space (axes or base differ)."""
        meta = self.meta()
        fingerprint = sweep.fingerprint()
        if "fingerprint" in meta:
            old = meta["fingerprint"]
            if old["axes"] != fingerprint["axes"]:
                raise ConfigError(
                    f"{self.dir} holds results of a different design space (its axes differ: stored "
                    f"{_axes_text(old['axes'])}); use another --out folder, or delete {self.dir} to start over",
                    file=sweep.spec_file, key="axes", line=sweep.spec_sources.locate("axes")[1])
            if old["base_hash"] != fingerprint["base_hash"]:
                raise ConfigError(
                    f"{self.dir} holds results of a different base config (the resolved base, with "
                    "presets and fixed overrides, has changed since they were stored); use another "
                    f"--out folder, or delete {self.dir} to start over",
                    file=sweep.spec_file, key="base", line=sweep.spec_sources.locate("base")[1])

    def bind(self, sweep) -> bool:
        """Tie this folder to `sweep` before the first point is stored: check it (see
        ``check``), record the spec. A changed constraint list is allowed: the status of every
        evaluated point is recomputed. Returns whether the folder already held this sweep."""
        self.check(sweep)
        meta = self.meta()
        fingerprint = sweep.fingerprint()
        constraints = [c.text for c in sweep.constraints]
        recheck = "fingerprint" in meta and meta.get("constraints") != constraints
        self.set_meta(fingerprint=fingerprint, spec_yaml=sweep.spec_text, spec_file=sweep.spec_file,
                      name=sweep.spec.name, axis_keys=sweep.axis_keys, constraints=constraints,
                      objectives=[list(o) for o in sweep.objectives], strategy=sweep.spec.strategy)
        if "created_at" not in meta:
            self.set_meta(created_at=_now())
        self.ensure_columns(sweep.axis_keys)
        if recheck:
            self.recheck(sweep)
        return "fingerprint" in meta

    # ----- points

    def stored_ids(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT point_id FROM points")}

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def ensure_columns(self, names) -> None:
        for name in names:
            if name not in self._columns:
                self.conn.execute(f"ALTER TABLE points ADD COLUMN {quote(name)}")
                self._columns.append(name)

    def add(self, point_id: str, point: dict[str, Any], outcome: dict[str, Any], status: str,
            broken: list[str] | None) -> bool:
        """Insert one point and commit. A point already stored is left as it is (False)."""
        metrics = {k: v for k, v in outcome.get("metrics", {}).items() if k not in FIXED_COLUMNS}
        row = {"point_id": point_id, "status": status, "error": outcome.get("error"),
               "violations": json.dumps(broken) if broken else None,
               "extrapolated": outcome.get("extrapolated"),
               "extrapolation_period": outcome.get("extrapolation_period"),
               "hwsim_version": outcome.get("hwsim_version"), "elapsed_s": outcome.get("elapsed_s"),
               "created_at": _now(), **point, **metrics}
        self.ensure_columns(row)
        names = list(row)
        cur = self.conn.execute(
            f"INSERT INTO points ({', '.join(map(quote, names))}) VALUES ({', '.join('?' * len(names))}) "
            "ON CONFLICT(point_id) DO NOTHING", [cell(row[n]) for n in names])
        self.conn.commit()
        return cur.rowcount == 1

    def rows(self, where: str = "", params=()) -> list[dict[str, Any]]:
        cur = self.conn.execute(f"SELECT * FROM points {where}", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def recheck(self, sweep) -> None:
        """Recompute 'ok'/'infeasible' of evaluated points under the sweep's constraints."""
        from hwsim.dse.runner import judge
        for row in self.rows("WHERE error IS NULL AND status != 'failed'"):
            status, broken = judge(sweep, row)
            self.conn.execute("UPDATE points SET status = ?, violations = ? WHERE point_id = ?",
                              (status, json.dumps(broken) if broken else None, row["point_id"]))
        self.conn.commit()


def _refuse_foreign(path: Path) -> None:
    """ConfigError unless `path` is a results store that hwsim wrote: an SQLite file whose only
    tables are ``meta`` and ``points`` (with ``point_id`` and ``status``). It is read through a
    read-only connection, so a foreign file is left byte for byte as it was."""
    if not path.is_file():
        raise ConfigError("is not a file; expected an hwsim results store", file=str(path))
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    if header != b"SQLite format 3\x00":
        raise ConfigError("not an hwsim results store (not an SQLite file); hwsim leaves it as "
                          "it is: use another folder", file=str(path))
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            columns = {row[1] for row in conn.execute("PRAGMA table_info(points)")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"not an hwsim results store ({exc}); hwsim leaves it as it is: use "
                          "another folder", file=str(path)) from None
    if tables != {"meta", "points"} or not {"point_id", "status"} <= columns:
        raise ConfigError(f"not an hwsim results store (its tables: {', '.join(sorted(tables)) or 'none'}); "
                          "hwsim leaves it as it is: use another folder", file=str(path))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _axes_text(axes: list[dict]) -> str:
    return "; ".join(f"{','.join(a['keys'])}: {len(a['values'])} values" for a in axes)
