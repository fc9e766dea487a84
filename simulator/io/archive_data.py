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


Problem = tuple[str, str]  # (column, what is wrong) of one cell


def _archive_header(path: Path, header: list[str]) -> tuple[list[str], list[str]]:
    """The header's problems (columns twice or missing, a half interval) and the note of the
    columns it ignores."""
    problems = [
        f"{path}: column {h!r}: appears more than once"
        for h in sorted({h for h in header if header.count(h) > 1})
    ]
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
    notes = [f"{path}: ignored columns: {', '.join(repr(h) for h in ignored)}"] if ignored else []
    return problems, notes


def _read_names(
    cells: dict[str, str], line: int, seen: dict[tuple[str, str], int]
) -> tuple[str, str, list[Problem]]:
    """The row's experiment and metric, each given, the pair not seen on an earlier row
    (``seen``: pair -> its line, updated)."""
    e, m = cells["experiment"], cells["metric"]
    bad = [(c, "empty") for c, v in (("experiment", e), ("metric", m)) if not v]
    if e and m:
        if (e, m) in seen:
            bad.append(
                (
                    "experiment",
                    f"{e!r} with metric {m!r} appears twice (rows {seen[(e, m)]} and {line}); "
                    "one row per experiment and metric",
                )
            )
        else:
            seen[(e, m)] = line
    return e, m, bad


def _read_lift(cells: dict[str, str]) -> tuple[float | str, list[Problem]]:
    """The relative lift (or why it cannot be read), above -100%."""
    lift = _number(cells["lift"])
    if isinstance(lift, str):
        return lift, [("lift", lift)]
    if lift <= -1:
        return lift, [("lift", f"a relative lift must be above -100%, got {cells['lift']}")]
    return lift, []


def _se_of_interval(cells: dict[str, str], lift: float | str) -> tuple[float | str, list[Problem]]:
    """The standard error of a 95% interval ``lo``, ``hi`` that holds the lift."""
    lo, hi = _number(cells["lo"]), _number(cells["hi"])
    bad = [(c, v) for c, v in (("lo", lo), ("hi", hi)) if isinstance(v, str)]
    if bad:
        return "empty", bad
    if not lo < hi:
        return "empty", [("hi", f"the interval [{cells['lo']}, {cells['hi']}] is empty: hi <= lo")]
    if not isinstance(lift, str) and not lo <= lift <= hi:
        bad.append(
            (
                "lift",
                f"{cells['lift']} lies outside its own interval [{cells['lo']}, {cells['hi']}]",
            )
        )
    return (hi - lo) / (2 * Z95), bad


def _read_se(
    cells: dict[str, str], lift: float | str, has_se: bool, has_ci: bool
) -> tuple[float | str, list[Problem]]:
    """The lift's standard error: the ``se`` cell, else the interval's, else a problem."""
    if has_se and cells["se"]:
        se = _number(cells["se"])
        if isinstance(se, str):
            return se, [("se", se)]
        if se < 0:
            return se, [("se", f"a standard error cannot be negative ({cells['se']})")]
        if se == 0:
            return se, [("se", "a standard error of 0 says the lift is known exactly; give its se")]
        return se, []
    if has_ci and (cells["lo"] or cells["hi"]):
        return _se_of_interval(cells, lift)
    what = "empty: every lift needs its standard error (se) or 95% interval (lo, hi)"
    return "empty", [("se" if has_se else "lo", what)]


def _read_shipped(text: str) -> tuple[bool | None, list[Problem]]:
    """Whether the change shipped (None when the cell is empty)."""
    if not text:
        return None, []
    if text.lower() in _TRUE:
        return True, []
    if text.lower() in _FALSE:
        return False, []
    return None, [("shipped", f"{text!r}: write yes or no (or true/false, 1/0)")]


def _read_end(text: str) -> tuple[dt.date | None, list[Problem]]:
    """The experiment's end date (None when the cell is empty)."""
    if not text:
        return None, []
    try:
        return dt.date.fromisoformat(text), []
    except ValueError:
        return None, [("end", f"{text!r} is not a date (write YYYY-MM-DD)")]


def _archive_row(
    cells: dict[str, str], line: int, seen: dict[tuple[str, str], int], has_se: bool, has_ci: bool
) -> tuple[tuple, list[Problem]]:
    """One row as (experiment, metric, lift, se, shipped, end, category), a number that cannot
    be read as NaN, and the problems of its cells in column order."""
    e, m, bad = _read_names(cells, line, seen)
    lift, p_lift = _read_lift(cells)
    se, p_se = _read_se(cells, lift, has_se, has_ci)
    shipped, p_shipped = _read_shipped(cells["shipped"])
    end, p_end = _read_end(cells["end"])
    row = (
        e,
        m,
        lift if not isinstance(lift, str) else np.nan,
        se if not isinstance(se, str) else np.nan,
        shipped,
        end,
        cells["category"] or None,
    )
    return row, bad + p_lift + p_se + p_shipped + p_end


def _category_problems(path: Path, cats: list[str | None]) -> list[str]:
    """Rows without a category while others have one."""
    named = [c for c in cats if c is not None]
    if not named or len(named) == len(cats):
        return []
    return [
        f"{path}: row {r + 2}, column 'category': empty while other rows have "
        "one; give every row a category (or drop the column)"
        for r, c in enumerate(cats)
        if c is None
    ]


def read_archive(path: str | Path) -> Archive:
    """Read and check an archive CSV (see the module docstring); raises `InputError` with one line
    per problem: ``FILE: row R, column 'C': what is wrong``."""
    path = Path(path)
    rows, _delimiter, digest = read_rows(path, "experiment, metric, lift, se")
    header = [h.strip().lower() for h in rows[0]]
    problems, notes = _archive_header(path, header)
    if problems:
        raise InputError(problems)
    body = rows[1:]
    if not body:
        raise InputError([f"{path}: no data rows below the header"])
    idx = {h: i for i, h in enumerate(header)}
    has_se, has_ci = "se" in header, "lo" in header or "hi" in header
    records: list[tuple] = []
    seen: dict[tuple[str, str], int] = {}
    for r, row in enumerate(body):
        line = r + 2
        if len(row) > len(header) and any(c.strip() for c in row[len(header) :]):
            problems.append(
                f"{path}: row {line}: has {len(row)} cells, the header has {len(header)}"
            )
            continue
        cells = dict.fromkeys((*REQUIRED, *OPTIONAL), "") | {
            h: row[i].strip() if i < len(row) else "" for h, i in idx.items()
        }
        record, bad = _archive_row(cells, line, seen, has_se, has_ci)
        problems += [f"{path}: row {line}, column {c!r}: {what}" for c, what in bad]
        records.append(record)
    if "category" in idx:
        problems += _category_problems(path, [rec[6] for rec in records])
    if problems:
        raise InputError(problems)
    exps, mets, lifts, ses, shipped, ends, cats = (list(col) for col in zip(*records, strict=True))
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
