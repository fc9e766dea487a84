"""`krsim portfolio`: every team's OKRs, every week — many scenarios run (or tracked), their
history kept in a database, the fits fanned out over processes or a Dask cluster.

A portfolio is a folder of scenario files (or a list of files and globs). Each scenario is run
like `krsim run` (the recommended option's P(met) per key result), or, when its `tracking:` block
names `actuals:`, tracked like `krsim track` under `tracking.option`. A scenario that fails (bad
input, an error while fitting) is listed with its one-line error and does not stop the others.

**The week.** A portfolio run belongs to an ISO week (`--week 2026-W49`, default this week). Its
per-KR results go to the database (`Store`): SQLite by default (`DIR/krsim.sqlite`, the standard
library's driver), or a server database given by URL (`postgresql://...`) through SQLAlchemy. Each
result is written to a staging table as it arrives; when every scenario is done, one transaction
replaces the week's rows with the staged ones, so re-running a week is idempotent and an
interrupted run (Ctrl-C) leaves no partial week. "A week ago" is the latest stored week before
this one.

**Fan-out.** `workers=1` runs in this process. `workers=N` runs N local processes (spawned, so
no state is shared), each with its own PyTensor compile directory under the cache (compilation
is not safe to share between processes; a slot keeps its directory from one run to the next, so
its compiled code is reused). `engine="dask"` sends each scenario to a Dask cluster
(`distributed.Client(scheduler)`); a Dask worker process sets its own compile directory before
its first fit. Dask rather than Ray: it installs from PyPI as pure Python, runs a local cluster
in-process for tests, and its futures API is all a portfolio needs.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.scenario import InputError
from ..version import __version__

SCHEMA_VERSION = 1


# ------------------------------------------------------------------------------ one scenario


def this_week(today: dt.date | None = None) -> str:
    y, w, _ = (today or dt.date.today()).isocalendar()
    return f"{y}-W{w:02d}"


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files: a folder's *.yaml / *.yml (sorted), files as given, globs expanded."""
    out: list[Path] = []
    problems = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml"))
        elif p.exists():
            out.append(p)
        else:
            hits = sorted(Path(x) for x in glob.glob(str(p)))
            if not hits:
                problems.append(f"{p}: no such file or folder")
            out += hits
    if problems:
        raise InputError(problems)
    if not out:
        raise InputError([f"{', '.join(map(str, paths))}: no scenario files (*.yaml) found"])
    seen, unique = set(), []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, InputError):
        return "; ".join(exc.problems)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def run_one(
    path: str, out: str | None = None, draws: int | None = None, compiledir: str | None = None
) -> dict[str, Any]:
    """Run (or track, when the scenario names its actuals) one scenario and return its result
    as plain data; never raises for the scenario's own problems (status "error")."""
    if compiledir and "pytensor" not in sys.modules:
        os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={compiledir}"
    start = time.monotonic()
    name = Path(path).stem
    base: dict[str, Any] = {"name": name, "path": str(path), "pid": os.getpid()}
    try:
        res = _evaluate(Path(path), Path(out) if out else None, draws)
    except Exception as exc:  # a scenario's failure is a result, not the portfolio's
        return base | {"status": "error", "error": _one_line(exc), "key_results": {}}
    return base | res | {"status": "ok", "error": None, "seconds": time.monotonic() - start}


KR_FIELDS = ("p_met", "p_met_se", "median", "interval80")  # what a portfolio keeps of a KR


def _kr_fields(kr: dict[str, Any]) -> dict[str, Any]:
    return {f: kr[f] for f in KR_FIELDS}


def _evaluate(path: Path, out: Path | None, draws: int | None) -> dict[str, Any]:
    from ..analyses.track import status_of
    from ..api import load_scenario
    from ..engine.render import kr_label
    from ..io.data import read_history

    s = load_scenario(path)
    h = read_history(s)
    if draws is not None:
        s = s.with_overrides(draws=draws)
    th = s.tracking
    page = None
    if th.actuals:
        from ..analyses.track import read_launched_actuals, track

        option = th.option or s.control_option
        actuals = read_launched_actuals(s, h, s.resolve(th.actuals), option)
        r = track(s, actuals, option=option, history=h)
        krs = {k: _kr_fields(v.to_dict()) for k, v in r.key_results.items()}
        kind, periods_done, warnings = "track", r.periods_done, r.diagnostics.warnings
        if out is not None:
            from ..report.track_page import write_track_report

            page = write_track_report(r, out).name
    else:
        from ..api import simulate

        r = simulate(s, history=h)
        option = r.run.recommendation.option
        krs = {k: _kr_fields(v.to_dict()) for k, v in r.run.options[option].key_results.items()}
        kind, periods_done, warnings = "run", 0, r.run.diagnostics.warnings
        if out is not None:
            from ..report import write_report

            page = write_report(r, out).name
    for kr in s.key_results:
        krs[kr.id] |= {
            "label": kr_label(s, kr.id),
            "objective": kr.objective or "",
            "status": status_of(krs[kr.id]["p_met"], th),
        }
    return {
        "title": s.title,
        "kind": kind,
        "option": option,
        "option_label": s.options[option].label or option,
        "periods_done": periods_done,
        "horizon": s.horizon,
        "digest": s.sha256,
        "warnings": list(warnings),
        "page": page,
        "key_results": krs,
    }


# ---------------------------------------------------------------------------------- storage

# each table's columns with their SQL types, then its key; its staging copy adds `run` to both
_TABLES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "results": (
        {
            "week": "TEXT NOT NULL",
            "scenario": "TEXT NOT NULL",
            "kr": "TEXT NOT NULL",
            "option": "TEXT",
            "kind": "TEXT",
            "periods_done": "INTEGER",
            "p_met": "REAL",
            "p_met_se": "REAL",
            "median": "REAL",
            "low80": "REAL",
            "high80": "REAL",
            "status": "TEXT",
            "krsim": "TEXT",
            "digest": "TEXT",
            "created": "TEXT",
        },
        ("week", "scenario", "kr"),
    ),
    "errors": (
        {
            "week": "TEXT NOT NULL",
            "scenario": "TEXT NOT NULL",
            "error": "TEXT",
            "krsim": "TEXT",
            "created": "TEXT",
        },
        ("week", "scenario"),
    ),
}


def _columns(table: str) -> str:
    return ", ".join(_TABLES[table][0])


def _create(table: str, staging: bool) -> str:
    types, key = _TABLES[table]
    if staging:
        types, key = {"run": "TEXT NOT NULL", **types}, ("run", *key)
    cols = ", ".join(f"{c} {t}" for c, t in types.items())
    name = f"staging_{table}" if staging else table
    return f"CREATE TABLE IF NOT EXISTS {name} ({cols}, PRIMARY KEY ({', '.join(key)}))"


class Store:
    """The portfolio's history: per week, scenario and key result, P(met) and its error, median
    and 80% interval, status, krsim version and scenario digest; failed scenarios with their
    error. ``url``: a file path (SQLite through the standard library) or a SQLAlchemy URL."""

    def __init__(self, url: str | Path):
        self.url = str(url)
        try:
            self._open()
        except InputError:
            raise
        except Exception as exc:  # a driver's or the file system's: the user's --db is wrong
            raise InputError([f"--db: cannot open {self.url}: {_one_line(exc)}"]) from None

    def _open(self) -> None:
        if "://" in self.url:
            try:
                import sqlalchemy
            except ImportError:
                raise InputError(
                    [f"--db: {self.url} needs SQLAlchemy (pip install 'krsim[portfolio]')"]
                ) from None
            self._engine = sqlalchemy.create_engine(self.url)
            self._text = sqlalchemy.text
            self._conn = None
        else:
            import sqlite3

            Path(self.url).parent.mkdir(parents=True, exist_ok=True)
            self._engine = None
            self._conn = sqlite3.connect(self.url)
        self._migrate()

    # one statement runner for both drivers: named parameters (:name) work in each
    def _run(self, statements: list[tuple[str, dict | list[dict] | None]]) -> list[list[tuple]]:
        """Run statements in one transaction; return each one's rows."""
        out = []
        if self._engine is not None:
            with self._engine.begin() as c:
                for sql, params in statements:
                    res = c.execute(self._text(sql), params or {})
                    out.append([tuple(r) for r in res] if res.returns_rows else [])
            return out
        c = self._conn
        with c:  # one transaction: committed at the end, rolled back on an error
            for sql, params in statements:
                if isinstance(params, list):
                    c.executemany(sql, params)
                    out.append([])
                else:
                    out.append(c.execute(sql, params or {}).fetchall())
        return out

    def _migrate(self) -> None:
        """Create the tables; record and upgrade the schema version."""
        stmts: list[tuple[str, Any]] = [
            ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)", None)
        ]
        for t in _TABLES:
            stmts += [(_create(t, staging=False), None), (_create(t, staging=True), None)]
        stmts.append(("SELECT value FROM meta WHERE key = 'schema_version'", None))
        rows = self._run(stmts)[-1]
        version = int(rows[0][0]) if rows else 0
        if version > SCHEMA_VERSION:
            raise InputError([f"--db: {self.url} was written by a newer krsim (schema {version})"])
        if version < SCHEMA_VERSION:  # version 0 -> 1: the tables above; later steps go here
            self._run(
                [
                    ("DELETE FROM meta WHERE key = 'schema_version'", None),
                    (
                        "INSERT INTO meta (key, value) VALUES ('schema_version', :v)",
                        {"v": str(SCHEMA_VERSION)},
                    ),
                ]
            )

    def stage(self, run: str, week: str, result: dict[str, Any]) -> None:
        """Keep one scenario's result in the staging tables as soon as it arrives."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if result["status"] == "error":
            row = {"run": run, "week": week, "scenario": result["name"], "error": result["error"]}
            self._insert("errors", [row | {"krsim": __version__, "created": now}])
            return
        rows = [
            {
                "run": run,
                "week": week,
                "scenario": result["name"],
                "kr": k,
                "option": result["option"],
                "kind": result["kind"],
                "periods_done": result["periods_done"],
                "p_met": v["p_met"],
                "p_met_se": v["p_met_se"],
                "median": v["median"],
                "low80": v["interval80"][0],
                "high80": v["interval80"][1],
                "status": v["status"],
                "krsim": __version__,
                "digest": result["digest"],
                "created": now,
            }
            for k, v in result["key_results"].items()
        ]
        self._insert("results", rows)

    def _insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Rows (each with its run) into a table's staging copy."""
        cols = ["run", *_TABLES[table][0]]
        names = ", ".join(f":{c}" for c in cols)
        self._run([(f"INSERT INTO staging_{table} ({', '.join(cols)}) VALUES ({names})", rows)])

    def commit_week(self, run: str, week: str) -> None:
        """Replace the week's rows by the run's staged ones, in one transaction."""
        stmts: list[tuple[str, Any]] = []
        for t in _TABLES:
            cols = _columns(t)
            stmts += [
                (f"DELETE FROM {t} WHERE week = :week", {"week": week}),
                (
                    f"INSERT INTO {t} ({cols}) SELECT {cols} FROM staging_{t} WHERE run = :run",
                    {"run": run},
                ),
                (f"DELETE FROM staging_{t} WHERE run = :run", {"run": run}),
            ]
        self._run(stmts)

    def drop_run(self, run: str) -> None:
        """Forget a run's staged rows (an interrupted run, or one left by a crash)."""
        self._run([(f"DELETE FROM staging_{t} WHERE run = :run", {"run": run}) for t in _TABLES])

    def weeks(self) -> list[str]:
        rows = self._run(
            [("SELECT DISTINCT week FROM results UNION SELECT DISTINCT week FROM errors", None)]
        )[0]
        return sorted(r[0] for r in rows)

    def week(self, week: str) -> dict[str, dict[str, float]]:
        """{scenario: {kr: p_met}} of a stored week."""
        rows = self._run(
            [("SELECT scenario, kr, p_met FROM results WHERE week = :w", {"w": week})]
        )[0]
        out: dict[str, dict[str, float]] = {}
        for sc, kr, p in rows:
            out.setdefault(sc, {})[kr] = p
        return out

    def series(self, scenario: str, kr: str) -> list[tuple[str, float]]:
        rows = self._run(
            [
                (
                    "SELECT week, p_met FROM results WHERE scenario = :s AND kr = :k ORDER BY week",
                    {"s": scenario, "k": kr},
                )
            ]
        )[0]
        return [(w, p) for w, p in rows]

    def count(self, table: str, week: str | None = None) -> int:
        sql = f"SELECT COUNT(*) FROM {table}" + (" WHERE week = :w" if week else "")
        return int(self._run([(sql, {"w": week} if week else None)])[0][0][0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._engine is not None:
            self._engine.dispose()


# ------------------------------------------------------------------------------ the portfolio


@dataclass(frozen=True)
class PortfolioResult:
    """One week of a portfolio: every scenario's result, last week's P(met) and the history."""

    week: str
    previous_week: str | None
    results: dict[str, dict[str, Any]]
    week_ago: dict[str, dict[str, float]] = field(default_factory=dict)
    series: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1
    engine: str = "local"

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for name, r in self.results.items():
            krs = {}
            for k, v in r["key_results"].items():
                krs[k] = {
                    "p_met": v["p_met"],
                    "p_met_se": v["p_met_se"],
                    "status": v["status"],
                    "p_met_week_ago": self.week_ago.get(name, {}).get(k),
                    "median": v["median"],
                    "interval80": v["interval80"],
                }
            out[name] = {
                "status": r["status"],
                "error": r["error"],
                "title": r.get("title"),
                "kind": r.get("kind"),
                "option": r.get("option"),
                "warnings": r.get("warnings", []),
                "key_results": krs,
            }
        return {
            "week": self.week,
            "previous_week": self.previous_week,
            "scenarios": out,
            "seconds": self.seconds,
            "workers": self.workers,
            "engine": self.engine,
        }

    def moves(self) -> list[tuple[float, str, str]]:
        """(change of P(met) since a week ago, scenario, KR), largest first."""
        out = []
        for name, r in self.results.items():
            for k, v in r["key_results"].items():
                before = self.week_ago.get(name, {}).get(k)
                if before is not None:
                    out.append((v["p_met"] - before, name, k))
        return sorted(out, key=lambda m: -abs(m[0]))


def _worker_init(slots, base: str) -> None:
    """A local worker's own compile directory: slot i of the pool keeps cache/pytensor-i; and it
    compiles in its own process (the pool's workers already use the CPUs)."""
    i = slots.get()
    os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={Path(base) / f'worker-{i}'}"
    os.environ["KRSIM_COMPILE_JOBS"] = "1"  # the workers share the CPUs: none forks compilers


def _compile_base() -> str:
    """Where the workers' compile directories live: beside PyTensor's own (its
    ``base_compiledir`` when PYTENSOR_FLAGS sets one, else ~/.pytensor), so they outlive a run
    and a fit cache."""
    flags = dict(
        kv.split("=", 1) for kv in os.environ.get("PYTENSOR_FLAGS", "").split(",") if "=" in kv
    )
    base = Path(flags.get("base_compiledir", Path.home() / ".pytensor"))
    return str(base / "krsim-workers")


def portfolio(
    paths: Iterable[str | Path],
    *,
    db: str | Path | None = None,
    workers: int = 1,
    engine: str = "local",
    scheduler: str | None = None,
    week: str | None = None,
    out: str | Path | None = None,
    draws: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> PortfolioResult:
    """Run every scenario, store the week, and return it with last week's numbers."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    files = discover(paths)
    week = week or this_week()
    if db is None:
        first = Path(paths[0])
        db = (first if first.is_dir() else first.parent) / "krsim.sqlite"
    store = Store(db)
    run = f"{week}-{os.getpid()}-{time.time_ns()}"
    start = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    args = [(str(f), str(out) if out else None, draws) for f in files]
    try:
        for r in _fan_out(args, workers, engine, scheduler):
            results[r["name"]] = r
            store.stage(run, week, r)
            if progress:
                progress(len(results), len(files), r["name"])
        store.commit_week(run, week)
    except BaseException:
        store.drop_run(run)  # the stored weeks stay as they were: no partial week
        raise
    weeks = [w for w in store.weeks() if w < week]
    previous = weeks[-1] if weeks else None
    series = {
        name: {k: store.series(name, k) for k in r["key_results"]} for name, r in results.items()
    }
    res = PortfolioResult(
        week=week,
        previous_week=previous,
        results={f.stem: results[f.stem] for f in files if f.stem in results},
        week_ago=store.week(previous) if previous else {},
        series=series,
        seconds=time.monotonic() - start,
        workers=workers,
        engine=engine,
    )
    store.close()
    return res


def _fan_out(args, workers: int, engine: str, scheduler: str | None):
    """Yield each scenario's result as it arrives."""
    if engine == "dask":
        yield from _on_dask(args, scheduler)
    elif engine != "local":
        raise InputError([f"--engine: {engine!r} is not an engine; use local or dask"])
    elif workers <= 1:
        for a in args:
            yield run_one(*a)
    else:
        yield from _on_local_workers(args, workers)


def _on_dask(args, scheduler: str | None):
    """Each scenario run on the Dask cluster at ``scheduler`` (an optional extra: Dask's
    distributed package), yielded as it arrives."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError(
            ["--engine dask: needs Dask's distributed package (pip install 'krsim[portfolio]')"]
        ) from None
    base = _compile_base()
    try:
        client = Client(scheduler)
    except (OSError, ValueError) as exc:
        raise InputError(
            [f"--scheduler: cannot reach the Dask scheduler at {scheduler}: {_one_line(exc)}"]
        ) from None
    with client:
        futures = [
            client.submit(run_one, p, o, d, f"{base}/dask-{i % 64}", pure=False)
            for i, (p, o, d) in enumerate(args)
        ]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.cancel(futures)


def _on_local_workers(args, workers: int):
    """Each scenario run in a pool of ``workers`` spawned processes, each with its own compile
    directory, yielded as it arrives; the rest cancelled when the caller stops."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures import as_completed as done

    ctx = mp.get_context("spawn")
    slots = ctx.Manager().Queue()
    for i in range(workers):
        slots.put(i)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(slots, _compile_base()),
    ) as pool:
        futures = [pool.submit(run_one, *a) for a in args]
        try:
            for fut in done(futures):
                yield fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


# ----------------------------------------------------------------------------------- words


def text_portfolio(result: PortfolioResult) -> str:
    """The terminal table: per scenario and KR, P(met) now and a week ago, status."""
    from ..engine.render import fmt_p

    lines = [
        f"Portfolio, week {result.week}"
        + (f" (a week ago: {result.previous_week})" if result.previous_week else "")
        + f": {len(result.results)} scenarios in {result.seconds:.0f} s"
        + (f" on {result.workers} workers" if result.workers > 1 else "")
        + (" on a Dask cluster" if result.engine == "dask" else ""),
        "",
    ]
    moves = [m for m in result.moves() if abs(m[0]) >= 0.05][:5]
    if moves:
        lines.append("Biggest moves since a week ago:")
        for d, name, k in moves:
            r = result.results[name]
            lines.append(
                f"  {r['title']} — {r['key_results'][k]['label']}: "
                f"{result.week_ago[name][k]:.2f} → {r['key_results'][k]['p_met']:.2f} ({d:+.2f})"
            )
        lines.append("")
    for name, r in result.results.items():
        if r["status"] == "error":
            lines.append(f"{name}: ERROR {r['error']}")
            continue
        what = (
            f"tracked under “{r['option_label']}”, {r['periods_done']} of {r['horizon']} periods done"
            if r["kind"] == "track"
            else f"recommended: “{r['option_label']}”"
        )
        lines.append(f"{name} — {r['title']} ({what})")
        for k, v in r["key_results"].items():
            before = result.week_ago.get(name, {}).get(k)
            ago = f"{before:.2f}" if before is not None else "—"
            lines.append(
                f"  {v['label']:<40} P(met) {fmt_p(v['p_met'], v['p_met_se']):<12} "
                f"a week ago {ago:<6} {v['status'].replace('_', ' ')}"
            )
        for w in r.get("warnings", []):
            lines.append(f"  warning: {w}")
    return "\n".join(lines)


def progress_printer(stream=None):
    """A progress line on stderr when it is a terminal: scenarios done of all, time so far."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    start = time.monotonic()

    def update(done: int, total: int, name: str) -> None:
        width = 30
        fill = int(width * done / max(total, 1))
        stream.write(
            f"\rportfolio [{'#' * fill}{'.' * (width - fill)}] {done}/{total} ({name}), "
            f"{time.monotonic() - start:.0f} s so far"
        )
        if done >= total:
            stream.write("\n")
        stream.flush()

    return update


def portfolio_json(result: PortfolioResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"
