"""The archive of past experiments: a CSV with one row per experiment and metric.

Columns (headers case-insensitive, in any order): ``experiment``, ``metric``, ``lift`` (the
relative lift, ``0.031`` or ``+3.1%``), ``se`` (its standard error, same forms) or a 95% interval
as ``lo`` and ``hi``, and optionally ``shipped`` (yes/no/true/false/1/0), ``end`` (YYYY-MM-DD) and
``category``. Every problem is reported before any model work, one line per problem naming the
file, the row and the column, as `InputError` (exit code 2 on the command line).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .scenario import InputError
from .tables import read_rows

REQUIRED = ("experiment", "metric", "lift")
OPTIONAL = ("se", "lo", "hi", "shipped", "end", "category")
Z95 = 1.959963984540054  # a 95% interval is lift ± Z95 · se
_TRUE = {"yes", "y", "true", "t", "1", "shipped"}
_FALSE = {"no", "n", "false", "f", "0", "not shipped"}


@dataclass(frozen=True)
class Archive:
    """The archive's rows: ``lift`` and ``se`` as fractions (0.031 for +3.1%); ``shipped`` True,
    False or None (not given); ``category`` None when the archive has no categories."""

    path: Path
    experiment: tuple[str, ...]
    metric: tuple[str, ...]
    lift: np.ndarray
    se: np.ndarray
    shipped: tuple[bool | None, ...]
    end: tuple[dt.date | None, ...]
    category: tuple[str | None, ...]
    sha256: str
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.experiment)

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories in order of first appearance (empty without a category column)."""
        return tuple(dict.fromkeys(c for c in self.category if c is not None))

    @property
    def keys(self) -> tuple[str, ...]:
        """One name per row: the experiment, or ``experiment [metric]`` when an experiment has
        several rows."""
        many = {e for e in self.experiment if self.experiment.count(e) > 1}
        return tuple(
            f"{e} [{m}]" if e in many else e
            for e, m in zip(self.experiment, self.metric, strict=True)
        )

    def subset(self, rows: np.ndarray) -> Archive:
        """The archive restricted to ``rows`` (indices)."""
        idx = [int(i) for i in rows]
        return Archive(
            self.path,
            tuple(self.experiment[i] for i in idx),
            tuple(self.metric[i] for i in idx),
            self.lift[idx],
            self.se[idx],
            tuple(self.shipped[i] for i in idx),
            tuple(self.end[i] for i in idx),
            tuple(self.category[i] for i in idx),
            self.sha256,
            self.notes,
        )


def _number(text: str) -> float | str:
    """A fraction from ``0.031``, ``+3.1%``, ``3.1 %`` or ``-0.5%``, or why it is not one."""
    t = text.strip().replace("\u2212", "-")
    if not t:
        return "empty"
    pct = t.endswith("%")
    core = t[:-1].strip() if pct else t
    try:
        v = float(core)
    except ValueError:
        return f"not a number ({t!r})"
    if not np.isfinite(v):
        return f"not a finite number ({t!r})"
    return v / 100 if pct else v


def archive_frame(
    experiment: list[str],
    lift: list[float] | np.ndarray,
    se: list[float] | np.ndarray,
    *,
    category: list[str | None] | None = None,
    shipped: list[bool | None] | None = None,
    path: str | Path = "<archive>",
) -> Archive:
    """An archive from arrays (for simulations and tests); one metric per experiment."""
    n = len(experiment)
    lift = np.asarray(lift, dtype=float)
    se = np.asarray(se, dtype=float)
    blob = np.concatenate([lift, se]).tobytes() + "|".join(experiment).encode()
    cats = tuple(category) if category is not None else (None,) * n
    blob += "|".join(str(c) for c in cats).encode()
    return Archive(
        Path(path),
        tuple(experiment),
        ("metric",) * n,
        lift,
        se,
        tuple(None if v is None else bool(v) for v in shipped)
        if shipped is not None
        else (None,) * n,
        (None,) * n,
        cats,
        hashlib.sha256(blob).hexdigest(),
    )


def read_archive(path: str | Path) -> Archive:
    """Read and check an archive CSV (see the module docstring); raises `InputError` with one line
    per problem: ``FILE: row R, column 'C': what is wrong``."""
    path = Path(path)
    rows, _delimiter, digest = read_rows(path, "experiment, metric, lift, se")
    header = [h.strip().lower() for h in rows[0]]
    problems: list[str] = []
    notes: list[str] = []
    for h in sorted({h for h in header if header.count(h) > 1}):
        problems.append(f"{path}: column {h!r}: appears more than once")
    for c in REQUIRED:
        if c not in header:
            problems.append(f"{path}: column {c!r}: missing (expected {', '.join(REQUIRED)}, se)")
    has_se = "se" in header
    has_ci = "lo" in header or "hi" in header
    if not has_se and not has_ci:
        problems.append(
            f"{path}: column 'se': missing (give each lift's standard error, or its 95% interval "
            "as columns lo and hi)"
        )
    elif has_ci and not has_se and not ("lo" in header and "hi" in header):
        which = "hi" if "lo" in header else "lo"
        problems.append(f"{path}: column {which!r}: missing (an interval needs both lo and hi)")
    ignored = [h for h in header if h not in (*REQUIRED, *OPTIONAL)]
    if ignored:
        notes.append(f"{path}: ignored columns: {', '.join(repr(h) for h in ignored)}")
    if problems:
        raise InputError(problems)
    body = rows[1:]
    if not body:
        raise InputError([f"{path}: no data rows below the header"])
    idx = {h: i for i, h in enumerate(header)}
    exps, mets, lifts, ses, shipped, ends, cats = [], [], [], [], [], [], []
    seen: dict[tuple[str, str], int] = {}
    for r, row in enumerate(body):
        line = r + 2
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))
        elif len(row) > len(header) and any(c.strip() for c in row[len(header) :]):
            problems.append(
                f"{path}: row {line}: has {len(row)} cells, the header has {len(header)}"
            )
            continue

        def cell(c: str, row: list[str] = row) -> str:
            return row[idx[c]].strip() if c in idx else ""

        def bad(c: str, what: str, line: int = line) -> None:
            problems.append(f"{path}: row {line}, column {c!r}: {what}")

        e, m = cell("experiment"), cell("metric")
        if not e:
            bad("experiment", "empty")
        if not m:
            bad("metric", "empty")
        if e and m:
            if (e, m) in seen:
                bad(
                    "experiment",
                    f"{e!r} with metric {m!r} appears twice (rows {seen[(e, m)]} and {line}); "
                    "one row per experiment and metric",
                )
            else:
                seen[(e, m)] = line
        lift = _number(cell("lift"))
        if isinstance(lift, str):
            bad("lift", lift)
        elif lift <= -1:
            bad("lift", f"a relative lift must be above -100%, got {cell('lift')}")
        se: float | str = "empty"
        if has_se and cell("se"):
            se = _number(cell("se"))
            if isinstance(se, str):
                bad("se", se)
            elif se < 0:
                bad("se", f"a standard error cannot be negative ({cell('se')})")
            elif se == 0:
                bad("se", "a standard error of 0 says the lift is known exactly; give its se")
        elif has_ci and (cell("lo") or cell("hi")):
            lo, hi = _number(cell("lo")), _number(cell("hi"))
            for c, v in (("lo", lo), ("hi", hi)):
                if isinstance(v, str):
                    bad(c, v)
            if not isinstance(lo, str) and not isinstance(hi, str):
                if not lo < hi:
                    bad("hi", f"the interval [{cell('lo')}, {cell('hi')}] is empty: hi <= lo")
                else:
                    se = (hi - lo) / (2 * Z95)
                    if not isinstance(lift, str) and not lo <= lift <= hi:
                        bad(
                            "lift",
                            f"{cell('lift')} lies outside its own interval [{cell('lo')}, {cell('hi')}]",
                        )
        else:
            bad(
                "se" if has_se else "lo",
                "empty: every lift needs its standard error (se) or 95% interval (lo, hi)",
            )
        sh: bool | None = None
        if cell("shipped"):
            t = cell("shipped").lower()
            if t in _TRUE:
                sh = True
            elif t in _FALSE:
                sh = False
            else:
                bad("shipped", f"{cell('shipped')!r}: write yes or no (or true/false, 1/0)")
        end: dt.date | None = None
        if cell("end"):
            try:
                end = dt.date.fromisoformat(cell("end"))
            except ValueError:
                bad("end", f"{cell('end')!r} is not a date (write YYYY-MM-DD)")
        exps.append(e)
        mets.append(m)
        lifts.append(lift if not isinstance(lift, str) else np.nan)
        ses.append(se if not isinstance(se, str) else np.nan)
        shipped.append(sh)
        ends.append(end)
        cats.append(cell("category") or None)
    if "category" in idx:
        named = [c for c in cats if c is not None]
        if named and len(named) < len(cats):
            for r, c in enumerate(cats):
                if c is None:
                    problems.append(
                        f"{path}: row {r + 2}, column 'category': empty while other rows have "
                        "one; give every row a category (or drop the column)"
                    )
    if problems:
        raise InputError(problems)
    return Archive(
        path,
        tuple(exps),
        tuple(mets),
        np.asarray(lifts, dtype=float),
        np.asarray(ses, dtype=float),
        tuple(shipped),
        tuple(ends),
        tuple(cats),
        digest,
        tuple(notes),
    )


def category_problem(archive: Archive, category: str | None) -> str | None:
    """Why ``category`` cannot be read from ``archive`` (None when it can)."""
    if category is None:
        return None
    if not archive.categories:
        return f"category {category!r}: {archive.path} has no category column"
    if category not in archive.categories:
        import difflib

        close = difflib.get_close_matches(category, archive.categories, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown category {category!r}{hint}; {archive.path} has " + ", ".join(
            archive.categories
        )
    return None


def check_ref(path: Path, category: str | None, written: str | None = None) -> list[str]:
    """The problems of a scenario's reference to an archive (the file reads as an archive, the
    category is one of its categories), each as one line; none when it is usable. ``written``:
    the file as the scenario names it."""
    try:
        archive = read_archive(path)
    except InputError as err:
        if len(err.problems) == 1 and err.problems[0].startswith(f"{path}: file not found"):
            shown = written if written is not None else str(path)
            return [f"archive file {shown!r} not found (looked for {path})"]
        return [
            f"archive {path} is invalid ({len(err.problems)} problems; run krsim archive {path})"
        ]
    problem = category_problem(archive, category)
    return [problem] if problem else []


def check_refs(scenario) -> None:
    """Raise `InputError` (one line per problem, naming the scenario file and the field) when a
    `from_archive` prior's archive is missing, invalid, or lacks the named category."""
    from .scenario import archive_refs

    src = scenario.source if scenario.source is not None else "<scenario>"
    problems = [
        f"{src}: {where}: {m}"
        for where, ref in archive_refs(scenario)
        for m in check_ref(ref.path, ref.category, ref.file)
    ]
    if problems:
        raise InputError(problems)
