"""Count tables (history, experiment results, actuals): read and validate against the funnel.

Tables are small (one row per period or arm), so the standard library's csv reader is used: it keeps
`krsim check` free of heavy imports.

A history whose period labels are all ISO dates (``2025-09-01``) is a calendar (DESIGN section 3):
rows are put in time order (with a note), every step of the scenario's ``period`` must be present,
and empty count cells are missing data. Other labels (``1``, ``2025-W36``) are taken in file order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import re
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from ..i18n import _, fmt_date, fmt_int, fmt_label, fmt_pct, ngettext
from .scenario import InputError, Scenario, did_you_mean, value_stages
from .season import add_months, is_month_end
from .tables import read_rows

PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class CountTable:
    """Rows of counts: one label column (period or arm) and one integer column per stage/segment.

    ``dates`` holds the period labels as dates when every label is an ISO date (else None);
    ``missing`` marks, per column, the cells that were empty (their count is 0 in ``counts``);
    ``notes`` are things done to the file that the user should hear about (a sort, ignored columns).
    """

    path: Path
    key: str  # name of the label column
    labels: tuple[str, ...]
    counts: dict[str, np.ndarray] = field(repr=False)
    periods: tuple[str, ...] | None = None  # for experiment tables with a `period` column
    dates: tuple[dt.date, ...] | None = None
    missing: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()
    # total value per row of each stage with a value (``STAGE.value`` columns); NaN = empty cell
    values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.labels)
        full = {
            c: np.asarray(self.missing.get(c, np.zeros(n, dtype=bool)), dtype=bool)
            for c in self.counts
        }
        object.__setattr__(self, "missing", full)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_missing(self) -> int:
        """Number of empty count cells."""
        return int(sum(m.sum() for m in self.missing.values()))

    def missing_cells(self) -> list[tuple[str, str]]:
        """(label, column) of every empty cell, in row order."""
        return [
            (self.labels[r], c) for r in range(len(self)) for c in self.counts if self.missing[c][r]
        ]

    def rows(self, start: int, end: int) -> CountTable:
        """Rows ``start:end`` (dates and missing cells follow)."""
        return CountTable(
            path=self.path,
            key=self.key,
            labels=self.labels[start:end],
            counts={k: np.asarray(v[start:end]) for k, v in self.counts.items()},
            periods=self.periods[start:end] if self.periods is not None else None,
            dates=self.dates[start:end] if self.dates is not None else None,
            missing={k: np.asarray(v[start:end]) for k, v in self.missing.items()},
            notes=self.notes,
            values={k: np.asarray(v[start:end]) for k, v in self.values.items()},
        )

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(repr((self.key, self.labels, self.periods, self.dates)).encode())
        for name in sorted(self.counts):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.counts[name], dtype=np.int64).tobytes())
        for name in sorted(self.missing):
            if self.missing[name].any():
                h.update(b"missing:" + name.encode())
                h.update(np.packbits(np.asarray(self.missing[name], dtype=bool)).tobytes())
        for name in sorted(self.values):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.values[name], dtype=np.float64).tobytes())
        return h.hexdigest()

    def value_matrix(self, stages: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Counts and total values of the value stages, shape (stages, rows); a value is NaN
        (missing) where its cell is empty or where the stage's count is missing."""
        n = np.stack([self.counts[s] for s in stages]) if stages else np.zeros((0, len(self)))
        v = (
            np.stack([np.where(self.missing[s], np.nan, self.values[s]) for s in stages])
            if stages
            else np.zeros((0, len(self)), dtype=float)
        )
        return n.astype(np.int64), v.astype(float)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 change``, ``2 changes``."""
    return f"{n} {word if n == 1 else many or word + 's'}"


# ---------------------------------------------------------------------------------- cells

_DAY_MONTH = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_THOUSANDS = re.compile(r"^\d{1,3}(?:([,\u00a0\u202f ])\d{3})(?:\1\d{3})*$")


MAX_COUNT = 2**31 - 1  # the model's data containers hold counts as 32-bit integers (PyMC's)


def parse_count(text: str, delimiter: str = ",") -> int | str | None:
    """An integer count, None for an empty cell, or the reason it is not a count."""
    v = _count(text, delimiter)
    if isinstance(v, int) and v > MAX_COUNT:
        return f"{text.strip()}: more than {MAX_COUNT:,} in one period, the most the model holds"
    return v


def _count(text: str, delimiter: str) -> int | str | None:
    t = text.strip()
    if t == "":
        return None
    m = _THOUSANDS.match(t)
    if m and (m.group(1) != "," or delimiter != ";"):
        return int(re.sub(r"\D", "", t))  # 12,345 or 12 345: a thousands separator
    if t.endswith("%"):
        return f"a count, not a percentage ({t!r}); write the number of users"
    if delimiter == ";" and re.fullmatch(r"\d+,\d+", t):
        t = t.replace(",", ".")  # a decimal comma, as in `;`-separated exports
    try:
        v = float(t)
    except ValueError:
        if re.fullmatch(r"\d+,\d+", t):
            return f"a count must be a whole number ({t!r})"
        return f"not a number ({t!r})"
    if not np.isfinite(v):
        return f"not a finite number ({t!r})"
    if v < 0:
        return f"a count cannot be negative ({t})"
    if v != int(v):
        if delimiter == ";" and re.fullmatch(r"\d{1,3}\.\d{3}", t):
            return f"{t!r}: a thousands separator or a decimal point? write the count without it"
        return f"a count must be a whole number ({text.strip()})"
    return int(v)


# ------------------------------------------------------------------------------- columns


def _what(scenario: Scenario, c: str) -> str:
    """A table column in words: ``stage 'booking'``, ``segment 'logged_in'``, ..."""
    if c.endswith(".value"):
        return f"the value of stage {c.removesuffix('.value')!r}"
    if c in scenario.funnel:
        return f"stage {c!r}"
    if c in scenario.segments:
        return f"segment {c!r}"
    return "the period column" if c == "period" else f"column {c!r}"


def _what_words(scenario: Scenario, c: str) -> str:
    """`_what` in the current language, for the notes (errors keep `_what`'s English)."""
    if c.endswith(".value"):
        return _("the value of stage {stage}").format(stage=repr(c.removesuffix(".value")))
    if c in scenario.funnel:
        return _("stage {stage}").format(stage=repr(c))
    if c in scenario.segments:
        return _("segment {segment}").format(segment=repr(c))
    return _("the period column") if c == "period" else _("column {column}").format(column=repr(c))


def _label_of(scenario: Scenario, c: str) -> str | None:
    if c.endswith(".value"):
        v = scenario.funnel[c.removesuffix(".value")].value
        return v.label if v is not None else None
    node = scenario.funnel.get(c) or scenario.segments.get(c)
    return node.label if node is not None else None


def _column_names(scenario: Scenario, known: list[str]) -> dict[str, str]:
    """Every name a header may give a known column (its id, its `column:`, its label) -> the id."""
    out = {}
    for c in known:
        for name in (_label_of(scenario, c), scenario.column_of(c), c):
            if name:
                out[name] = c
    return out


def _looks_like_dates(cells: list[str]) -> bool:
    return bool(cells) and all(
        _iso_date(x) is not None or _DAY_MONTH.fullmatch(x) for x in cells if x
    )


def _column_map(
    scenario: Scenario, header: list[str], key: str, sample: list[list[str]], path: Path
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """How the file's headers map to the scenario's columns: a stage's (segment's, value's)
    `column:`, else its id, else a header equal to its label (with a note); the period column
    from `history: {period_column: ...}`, else `period`, else a first column of dates (with a
    note). Returns (header -> column, column -> the header it has in this file, notes)."""
    rename: dict[str, str] = {}
    shown: dict[str, str] = {}
    by_label = []
    names = [*scenario.funnel, *scenario.segments]
    names += [f"{s}.value" for s, st in scenario.funnel.items() if st.value is not None]
    for c in names:
        col = scenario.column_of(c)
        if col != c:
            shown[c] = col
            if col in header:
                rename[col] = c
            continue
        label = _label_of(scenario, c)
        if c not in header and label and label in header and label not in rename:
            rename[label], shown[c] = c, label
            by_label.append(
                _("{label} as {what}").format(label=repr(label), what=_what_words(scenario, c))
            )
    notes = []
    if by_label:
        notes.append(
            ngettext(
                "{path}: read {n} column by its label: {columns} (`column:` on the stage makes "
                "it explicit)",
                "{path}: read {n} columns by their label: {columns} (`column:` on the stage makes "
                "it explicit)",
                len(by_label),
            ).format(path=path, n=len(by_label), columns=", ".join(by_label))
        )
    if key == "period":
        pc = scenario.history_source.period_column
        if pc:
            shown["period"] = pc
            if pc in header:
                rename[pc] = "period"
        elif "period" not in header and header and header[0] not in rename:
            first = [r[0].strip() for r in sample if r]
            if _looks_like_dates(first):
                rename[header[0]] = "period"
                shown["period"] = header[0]
                notes.append(
                    _(
                        "{path}: took the first column, {column}, as the period (it holds dates; "
                        "`history: {{file: ..., period_column: ...}}` names it)"
                    ).format(path=path, column=repr(header[0]))
                )
    return rename, shown, notes


# ------------------------------------------------------------------------------- reading


_CURRENCIES = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "CHF": "CHF"}
_CODE = re.compile(r"^([A-Za-z]{3}|[€$£¥])\s*|\s*([A-Za-z]{3}|[€$£¥])$")
_SPACES = "\u00a0\u202f "


def _split_currency(t: str) -> tuple[str, str | None]:
    """The number and the currency written before or after it (``64 424,08 €`` -> EUR)."""
    cur = None
    for _attempt in range(2):
        m = _CODE.search(t)
        if not m:
            break
        sign = m.group(1) or m.group(2)
        code = _CURRENCIES.get(sign, sign.upper())
        rest = (t[: m.start()] + t[m.end() :]).strip()
        if (cur is not None and code != cur) or not re.search(r"\d", rest):
            break
        cur, t = code, rest
    return t, cur


def _grouped(t: str, sep: str) -> bool:
    """Digits in groups of three after ``sep`` (``64 424`` with a space, ``1.234.567``)."""
    parts = t.split(sep)
    return len(parts) > 1 and 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:])


def _read_amount(t: str) -> tuple[float | None, str | None, str]:
    """(value, the decimal mark it settles: ',' '.' or None, why not) for one amount. A single
    ',' or '.' followed by exactly three digits is ambiguous (thousands or decimals): value None
    and why == 'ambiguous'."""
    for sp in _SPACES:
        if sp in t:
            head, _, tail = t.partition(next((d for d in ",." if d in t), "\0"))
            if not _grouped(head.replace("\u00a0", " ").replace("\u202f", " "), " ") and not (
                _grouped(head, sp)
            ):
                return None, None, "bad"
            t = t.replace(sp, "")
    if "," in t and "." in t:
        dec = "," if t.rfind(",") > t.rfind(".") else "."
        grp = "." if dec == "," else ","
        whole, _, frac = t.rpartition(dec)
        if not _grouped(whole, grp) or not frac.isdigit():
            return None, None, "bad"
        return float(whole.replace(grp, "") + "." + frac), dec, ""
    for mark in ",.":
        if mark in t:
            if t.count(mark) > 1:
                if not _grouped(t, mark):
                    return None, None, "bad"
                return float(t.replace(mark, "")), "." if mark == "," else ",", ""
            whole, _, frac = t.partition(mark)
            if not (whole.isdigit() or whole == "") or not frac.isdigit():
                return None, None, "bad"
            if len(frac) == 3 and 1 <= len(whole) <= 3:
                return None, None, "ambiguous"
            return float(whole + "." + frac), mark, ""
    try:
        return float(t), None, ""
    except ValueError:
        return None, None, "bad"


def parse_amounts(
    cells: list[str], delimiter: str = ",", unit: str | None = None
) -> list[float | str]:
    """A column of total values as spreadsheets write them: thousands with spaces (no-break and
    narrow no-break too), dots or commas; a decimal comma or point; a currency sign or code
    before or after (checked against the value's ``unit``). Each cell becomes a float (NaN when
    empty) or the reason it cannot be read. The decimal mark of a cell such as ``64.424`` is
    taken from the column's other cells; when none settles it the cell is refused with both
    readings."""
    parsed = []
    marks = set()
    for text in cells:
        t = text.strip()
        if t == "":
            parsed.append(("empty", None, None, t))
            continue
        num, cur = _split_currency(t)
        neg = num.startswith("-")
        v, mark, why = _read_amount(num.lstrip("-").strip())
        if mark:
            marks.add(mark)
        parsed.append((why, v, cur, t) if not neg or v is None else ("negative", v, cur, t))
    settled = next(iter(marks)) if len(marks) == 1 else None
    out: list[float | str] = []
    want = unit.upper() if unit else None
    for why, v, cur, t in parsed:
        if why == "empty":
            out.append(float("nan"))
        elif cur is not None and want is not None and len(want) == 3 and cur != want:
            out.append(f"{t!r} is in {cur}, the value's unit is {unit}")
        elif why == "negative":
            out.append(f"a total value cannot be negative ({t})")
        elif why == "ambiguous":
            num = _split_currency(t)[0]
            mark = "," if "," in num else "."
            as_dec = float(num.replace(",", "."))
            as_grp = float(num.replace(mark, ""))
            if settled is not None:
                out.append(as_dec if settled == mark else as_grp)
            else:
                out.append(
                    f"{t!r} may be {as_grp:g} ({mark!r} separates thousands) or {as_dec:g} "
                    f"({mark!r} is the decimal mark); write the decimals (e.g. "
                    f"{num}{',00' if mark == '.' else '.00'}) or no thousands separator"
                )
        elif why == "bad" or v is None:
            out.append(f"not a number ({t!r})")
        elif not np.isfinite(v):
            out.append(f"not a finite number ({t!r})")
        else:
            out.append(v)
    if settled is None and len(marks) > 1:
        out = [
            f"{cells[i].strip()!r}: this column mixes decimal commas and decimal points"
            if isinstance(x, float)
            and not np.isnan(x)
            and _read_amount(_split_currency(cells[i].strip())[0].lstrip("-"))[1]
            else x
            for i, x in enumerate(out)
        ]
    return out


@dataclass(frozen=True)
class _Layout:
    """A count table's header read against the scenario: ``names`` the header with each name
    mapped to the column it is (its id), ``shown`` each column's header as the file writes it,
    the key, count and value columns, and the notes and problems of the header."""

    names: list[str]
    shown: dict[str, str]
    key: str
    columns: list[str]
    value_cols: list[str]
    notes: list[str]
    problems: list[str]

    def named(self, c: str) -> str:
        """The column ``c`` as the file's header names it."""
        return self.shown.get(c, c)


@dataclass(frozen=True)
class _Cells:
    """The count cells of a table's rows: labels, periods, counts, missing cells, problems."""

    labels: list[str]
    periods: list[str]
    counts: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]
    problems: list[str]


def _unread_value_columns(
    path: Path,
    scenario: Scenario,
    header: list[str],
    known: list[str],
    shown: dict[str, str],
    with_values: bool,
) -> tuple[set[str], list[str], list[str]]:
    """``STAGE.value`` columns of a stage that this table does not read: (those columns, a note
    for each whose stage has a value (read from the history only), a problem for the others)."""
    unread: set[str] = set()
    notes, problems = [], []
    for h in header:
        stage = h.removesuffix(".value")
        if not h.endswith(".value") or h in known or stage not in scenario.funnel:
            continue
        unread.add(h)
        if scenario.funnel[stage].value is not None:
            notes.append(
                _("{path}: column {column}: values are read from the history only").format(
                    path=path, column=repr(shown.get(h, h))
                )
            )
            continue
        problems.append(
            f"{path}: column {h!r}: stage {stage!r} has no value; give it one in the scenario "
            f"(funnel.{stage}.value: {{label: ..., unit: ...}})"
            + ("" if with_values else " (values are read from the history only)")
        )
    return unread, notes, problems


def _unknown_columns(
    path: Path, scenario: Scenario, header: list[str], known: list[str], skip: set[str]
) -> tuple[list[str], list[str], set[str]]:
    """Header names that are no column of the table (other than ``skip``): (a problem for each
    that looks like a misspelt column or has no name, the note of those ignored, the columns
    they seem to mean)."""
    ignored, meant, problems = [], set(), []
    names = _column_names(scenario, known)  # what a header may say -> the column it is
    for h in header:
        if h in known or h in skip:
            continue
        close = difflib.get_close_matches(h, list(names), n=1, cutoff=0.6)
        if not close:
            close = [n for n in names if n.lower() == h.lower()][:1]
        hint = ""
        if close:
            target = names[close[0]]
            hint = (
                f" (did you mean {close[0]!r}?)"
                if close[0] == target
                else f" (did you mean {close[0]!r}, {_what(scenario, target)}? map it with "
                f"`column: {h!r}` or rename the header)"
            )
        meant.update(names[c] for c in close if names[c] not in header)
        if hint or h == "":
            what = "a column without a name" if h == "" else "unknown column"
            problems.append(f"{path}: column {h!r}: {what}{hint}")
        else:
            ignored.append(h)
    notes = []
    if ignored:
        notes.append(
            ngettext(
                "{path}: ignored {n} column that names no stage or segment: {columns}",
                "{path}: ignored {n} columns that name no stage or segment: {columns}",
                len(ignored),
            ).format(path=path, n=len(ignored), columns=", ".join(ignored))
        )
    return problems, notes, meant


def _missing_columns(path: Path, scenario: Scenario, layout: _Layout, meant: set[str]) -> list[str]:
    """The key and count columns absent from the header (unless a misspelt header was taken for
    one of them), then the columns the header holds twice."""
    problems = []
    for c in [layout.key, *layout.columns]:
        if c not in layout.names and c not in meant:
            named = layout.named(c)
            problems.append(
                f"{path}: column {named!r}"
                + (f" ({_what(scenario, c)})" if named != c else "")
                + ": missing (expected one column per stage and segment"
                + (
                    "; a column of another name is mapped with `column:` on its stage"
                    if c != layout.key
                    else "; another period column is named with "
                    "`history: {file: ..., period_column: ...}`"
                )
                + ")"
            )
    return problems


def _read_header(
    path: Path,
    scenario: Scenario,
    key: str,
    rows: list[list[str]],
    optional_columns: tuple[str, ...],
    with_values: bool,
    values_optional: bool,
) -> _Layout:
    """The header of a count table mapped to the scenario's columns (`_column_map`), with every
    problem of it: value columns of stages without a value or missing, unknown and missing
    columns, columns given twice."""
    header = [h.strip() for h in rows[0]]
    rename, shown, notes = _column_map(scenario, header, key, rows[1:4], path)
    header = [rename.get(h, h) for h in header]
    columns = [*scenario.funnel, *scenario.segments]
    value_cols = [f"{s}.value" for s in value_stages(scenario)] if with_values else []
    if values_optional:  # only those present are read
        value_cols = [c for c in value_cols if c in header]
    known = [key, *optional_columns, *columns, *value_cols]
    unread, value_notes, problems = _unread_value_columns(
        path, scenario, header, known, shown, with_values
    )
    for c in value_cols:
        if c not in header:
            problems.append(
                f"{path}: column {shown.get(c, c)!r}: missing (stage {c.removesuffix('.value')!r} has a value: "
                "one column of the period's total value; leave a cell empty where it is unknown)"
            )
    unknown, ignored_notes, meant = _unknown_columns(path, scenario, header, known, unread)
    layout = _Layout(header, shown, key, columns, value_cols, [], [])
    problems += unknown + _missing_columns(path, scenario, layout, meant)
    dup = {h for h in header if header.count(h) > 1 and h in known}
    problems += [f"{path}: column {h!r}: appears more than once" for h in sorted(dup)]
    notes += value_notes + ignored_notes
    return dataclasses.replace(layout, notes=notes, problems=problems)


_TOTALS_ROW = re.compile(r"(grand\s+)?(total|totals|sum|all|overall)", re.IGNORECASE)


def _label_cell(path: Path, line: int, label: str, column: str) -> list[str]:
    """The problem of a row's label: empty, or a spreadsheet's totals row."""
    if not label:
        return [f"{path}: row {line}, column {column!r}: empty"]
    if _TOTALS_ROW.fullmatch(label):
        return [
            f"{path}: row {line}, column {column!r}: {label!r} looks like a totals row; remove it"
        ]
    return []


def _read_cells(
    path: Path,
    layout: _Layout,
    body: list[list[str]],
    delimiter: str,
    allow_missing: bool,
    with_periods: bool,
) -> _Cells:
    """Every row's label (and period) and count cells; an empty cell is missing data when
    ``allow_missing``, else a problem."""
    idx = {h: i for i, h in enumerate(layout.names)}
    n = len(body)
    counts = {c: np.zeros(n, dtype=np.int64) for c in layout.columns}
    missing = {c: np.zeros(n, dtype=bool) for c in layout.columns}
    labels: list[str] = []
    periods: list[str] = []
    problems: list[str] = []
    for r, row in enumerate(body):
        line = r + 2
        if len(row) != len(layout.names):
            problems.append(
                f"{path}: row {line}: has {len(row)} cells, the header has {len(layout.names)}"
            )
            continue
        label = row[idx[layout.key]].strip()
        problems += _label_cell(path, line, label, layout.named(layout.key))
        labels.append(label)
        if with_periods and "period" in idx:
            periods.append(row[idx["period"]].strip())
        for c in layout.columns:
            v = parse_count(row[idx[c]], delimiter)
            if v is None and allow_missing:
                missing[c][r] = True
            elif isinstance(v, int):
                counts[c][r] = v
            else:
                why = v or (
                    "empty cell; this table needs every count (only the history may have empty "
                    "cells, which krsim treats as missing)"
                )
                problems.append(f"{path}: row {line}, column {layout.named(c)!r}: {why}")
    return _Cells(labels, periods, counts, missing, problems)


def _read_totals(
    path: Path, scenario: Scenario, layout: _Layout, body: list[list[str]], delimiter: str
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The value columns' total values (NaN where empty) of the rows of the header's length,
    and the problems of their cells."""
    idx = {h: i for i, h in enumerate(layout.names)}
    good = [r for r, row in enumerate(body) if len(row) == len(layout.names)]
    totals = {c: np.full(len(body), np.nan) for c in layout.value_cols}
    problems = []
    for c in layout.value_cols:
        stage = scenario.funnel[c.removesuffix(".value")]
        unit = stage.value.unit if stage.value is not None else None
        cells = parse_amounts([body[r][idx[c]] for r in good], delimiter, unit)
        for r, x in zip(good, cells, strict=True):
            if isinstance(x, str):
                problems.append(f"{path}: row {r + 2}, column {layout.named(c)!r}: {x}")
            else:
                totals[c][r] = x
    return totals, problems


def read_count_table(
    path: Path,
    scenario: Scenario,
    key: str,
    *,
    optional_columns: tuple[str, ...] = (),
    allow_empty: bool = False,
    allow_missing: bool = False,
    with_values: bool = False,
    values_optional: bool = False,
) -> CountTable:
    """Read a CSV with a `key` column and one count column per stage and segment.

    The separator may be `,`, `;`, a tab or `|` (found from the header). Columns that name no
    stage, segment or optional column are ignored with a note, unless they look like a misspelt
    one. Empty count cells are refused unless ``allow_missing``; then they are marked missing.
    ``allow_empty``: a header without rows is a table of no rows. ``with_values``: a
    ``STAGE.value`` column per stage with a value (``values_optional``: those present only).
    """
    expected = ", ".join([key, *scenario.funnel, *scenario.segments])
    rows, delimiter, _digest = read_rows(path, expected)
    layout = _read_header(path, scenario, key, rows, optional_columns, with_values, values_optional)
    if layout.problems:
        raise InputError(layout.problems)
    body = rows[1:]
    if not body and not allow_empty:
        raise InputError([f"{path}: no data rows below the header"])
    with_periods = "period" in optional_columns
    cells = _read_cells(path, layout, body, delimiter, allow_missing, with_periods)
    totals, value_problems = _read_totals(path, scenario, layout, body, delimiter)
    if cells.problems or value_problems:
        raise InputError(cells.problems + value_problems)
    return CountTable(
        path=path,
        key=key,
        labels=tuple(cells.labels),
        counts=cells.counts,
        periods=tuple(cells.periods) if cells.periods else None,
        missing=cells.missing,
        notes=tuple(layout.notes),
        values={c.removesuffix(".value"): v for c, v in totals.items()},
    )


def check_values(table: CountTable) -> list[str]:
    """Totals that cannot be: a value without units, no value for units that each carry a positive
    one (periods whose count is missing are not checked)."""
    problems = []
    for stage, v in table.values.items():
        n = table.counts[stage]
        col = f"{stage}.value"
        v = np.where(table.missing[stage], np.nan, v)
        for r in np.nonzero(np.isfinite(v) & (n == 0) & (v > 0))[0][:5]:
            problems.append(
                f"{table.path}: row {r + 2} ({table.key} {table.labels[r]}), column {col!r}: "
                f"a total value of {v[r]:g} with no {stage!r} units"
            )
        for r in np.nonzero(np.isfinite(v) & (n > 0) & (v == 0))[0][:5]:
            problems.append(
                f"{table.path}: row {r + 2} ({table.key} {table.labels[r]}), column {col!r}: "
                f"a total value of 0 for {n[r]} {stage!r} units (each unit's value must be "
                "positive; leave the cell empty if the value is unknown)"
            )
    return problems


def check_funnel_counts(table: CountTable, scenario: Scenario) -> list[str]:
    """Counts that cannot be: a stage larger than its parent, a segment larger than its stage
    (cells that are missing are not compared)."""
    problems = []
    pairs = [
        (s, st.from_, "stage", "its parent stage") for s, st in scenario.funnel.items() if st.from_
    ]
    pairs += [(g, seg.of, "segment", "its stage") for g, seg in scenario.segments.items()]
    for child, parent, what, role in pairs:
        seen = ~(table.missing[child] | table.missing[parent])
        bad = np.nonzero((table.counts[child] > table.counts[parent]) & seen)[0]
        for r in bad[:5]:
            problems.append(
                f"{table.path}: row {r + 2} ({table.key} {table.labels[r]}), column {child!r}: "
                f"{what} count {table.counts[child][r]} is larger than {role} {parent!r} ({table.counts[parent][r]})"
            )
        if len(bad) > 5:
            problems.append(
                f"{table.path}: column {child!r}: {plural(len(bad) - 5, 'more row')} larger than {parent!r}"
            )
    return problems


# ------------------------------------------------------------------------------ calendar

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")


def _iso_date(label: str) -> dt.date | None:
    m = _ISO_DATE.match(label)
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def _label_problems(path: Path, labels: tuple[str, ...]) -> list[str]:
    """Labels that are dates in a form krsim would take as plain names (and so lose their order)."""
    where = f"{path}: column 'period'"
    if all(re.fullmatch(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}", x) for x in labels):
        return [
            f"{where}: dates written like {labels[0]!r} are ambiguous (day/month or month/day?); "
            "write them as YYYY-MM-DD (e.g. 2025-09-03)"
        ]
    if all(re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", x) for x in labels):
        return [
            f"{where}: write dates with two-digit months and days, e.g. {labels[0]!r} as YYYY-MM-DD"
        ]
    if all(re.fullmatch(r"\d{5}(\.0+)?", x) for x in labels):
        serials = [int(float(x)) for x in labels]
        if all(20000 <= v <= 80000 for v in serials):
            first = dt.date(1899, 12, 30) + dt.timedelta(days=serials[0])
            return [
                f"{where}: {labels[0]!r} looks like a spreadsheet date serial number "
                f"({first.isoformat()}); format the column as dates YYYY-MM-DD before exporting"
            ]
    dated = [_iso_date(x) is not None for x in labels]
    if sum(dated) >= len(labels) / 2 and not all(dated):
        r = dated.index(False)
        return [
            f"{path}: row {r + 2}, column 'period': {labels[r]!r} is not a date like the other "
            "periods (write YYYY-MM-DD)"
        ]
    numbers = [int(x) for x in labels if re.fullmatch(r"\d+", x)]
    if len(numbers) == len(labels) > 2 and all(a > b for a, b in pairwise(numbers)):
        return [
            f"{where}: the periods are numbered newest first ({labels[0]}, {labels[1]}, …); "
            "undated rows are taken in file order, so put the oldest first"
        ]
    return []


def _month_index(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def _calendar_problems(path: Path, period: str, dates: list[dt.date]) -> list[str]:
    """Gaps and irregular steps in sorted, distinct dates, each naming the dates involved."""
    where = f"{path}: column 'period'"
    out: list[str] = []
    diffs = [(b - a).days for a, b in pairwise(dates)]
    typical = sorted(diffs)[len(diffs) // 2] if diffs else 0
    if period == "month" and typical in (1, 7):
        unit = "day" if typical == 1 else "week"
        return [
            f"{where}: the dates are mostly {plural(typical, 'day')} apart: set `period: {unit}`"
        ]
    if period == "month":
        month_end = all(is_month_end(d) for d in dates)
        days = {d.day for d in dates}
        if not month_end and len(days) > 1:
            odd = next(d for d in dates if d.day != dates[0].day)
            return [
                f"{where}: {odd.isoformat()} is on day {odd.day} of its month, {dates[0].isoformat()} "
                f"on day {dates[0].day}; monthly periods need one day of the month (e.g. the 1st)"
            ]
        for a, b in pairwise(dates):
            k = _month_index(b) - _month_index(a)
            if k > 1:
                gap = [add_months(a, j, month_end).isoformat() for j in range(1, k)]
                out.append(
                    f"{where}: {_join_dates(gap)} {'is' if len(gap) == 1 else 'are'} missing "
                    f"between {a.isoformat()} and {b.isoformat()} (month steps){_ADD_ROWS}"
                )
        return out
    step = 7 if period == "week" else 1
    if period == "week" and typical == 1:
        return [f"{where}: the dates are mostly 1 day apart, not a week: set `period: day`"]
    if period == "day" and typical == 7:
        return [f"{where}: the dates are mostly 7 days apart, not a day: set `period: week`"]
    if 28 <= typical <= 31:
        return [f"{where}: the dates are mostly a month apart: set `period: month`"]
    for (a, b), d in zip(pairwise(dates), diffs, strict=True):
        if d % step:
            out.append(
                f"{where}: {b.isoformat()} (a {b.strftime('%A')}) is {plural(d, 'day')} after "
                f"{a.isoformat()} (a {a.strftime('%A')}); weekly rows must fall on one weekday, "
                "7 days apart"
            )
        elif d > step:
            gap = [(a + dt.timedelta(days=step * j)).isoformat() for j in range(1, d // step)]
            out.append(
                f"{where}: {_join_dates(gap)} {'is' if len(gap) == 1 else 'are'} missing between "
                f"{a.isoformat()} and {b.isoformat()} ({period} steps){_ADD_ROWS}"
            )
    if len(out) > 5:
        out = out[:5] + [
            f"{where}: {plural(len(out) - 5, 'more gap or irregular step', 'more gaps or irregular steps')}"
        ]
    return out


_ADD_ROWS = "; add the rows with empty cells (krsim treats them as missing)"


def _join_dates(ds: list[str]) -> str:
    return ", ".join(ds) if len(ds) <= 3 else f"{ds[0]}, {ds[1]}, … {ds[-1]} ({len(ds)} periods)"


def _as_calendar(table: CountTable, scenario: Scenario) -> CountTable:
    """The table with ``dates`` set and rows in time order, or an InputError naming each gap."""
    path = table.path
    parsed = [_iso_date(x) for x in table.labels]
    if any(d is None for d in parsed):
        problems = _label_problems(path, table.labels)
        if problems:
            raise InputError(problems)
        return table
    dates: list[dt.date] = parsed  # type: ignore[assignment]
    if scenario.period not in PERIODS:
        raise InputError(
            [
                f"{scenario.source or 'scenario'}: period: {scenario.period!r} with dated history "
                f"rows; use day, week or month{did_you_mean(scenario.period, PERIODS)} "
                "(or label the periods 1, 2, … for another unit)"
            ]
        )
    notes = list(table.notes)
    order = sorted(range(len(dates)), key=lambda i: dates[i])
    if order != list(range(len(dates))):
        if order == list(range(len(dates)))[::-1]:
            how = _("newest first")
        else:
            r = next(i for i in range(1, len(dates)) if dates[i] < dates[i - 1])
            how = _("row {row} ({date}) comes after {previous}").format(
                row=r + 2, date=fmt_date(dates[r]), previous=fmt_date(dates[r - 1])
            )
        notes.append(
            _(
                "{path}: the rows were not in time order ({how}); they are used sorted oldest first"
            ).format(path=path, how=how)
        )
        table = CountTable(
            path=path,
            key=table.key,
            labels=tuple(table.labels[i] for i in order),
            counts={c: v[order] for c, v in table.counts.items()},
            periods=table.periods,
            missing={c: v[order] for c, v in table.missing.items()},
            notes=table.notes,
            values={c: v[order] for c, v in table.values.items()},
        )
        dates = [dates[i] for i in order]
    dup = sorted({d.isoformat() for a, d in pairwise(dates) if a == d})
    if dup:
        raise InputError([f"{path}: column 'period': repeated periods: {', '.join(dup[:5])}"])
    problems = _calendar_problems(path, scenario.period, dates)
    if problems:
        raise InputError(problems)
    return CountTable(
        path=path,
        key=table.key,
        labels=table.labels,
        counts=table.counts,
        periods=table.periods,
        dates=tuple(dates),
        missing=table.missing,
        notes=tuple(notes),
        values=table.values,
    )


def _shape_notes(table: CountTable, scenario: Scenario) -> list[str]:
    """Counts that look like a mistake of the export: a partial last period (exported before it
    ended), or running totals instead of per-period counts."""
    out = []
    root = scenario.root
    v = table.counts[root][~table.missing[root]]
    labels = [x for x, m in zip(table.labels, table.missing[root], strict=True) if not m]
    if len(v) >= 5:
        typical = float(np.median(v[-9:-1]))
        if typical > 0 and v[-1] < 0.6 * typical:
            out.append(
                _(
                    "{path}: the last period ({label}) has {share} of the usual {stage} count; if "
                    "it is {partial} (exported before it ended), remove it: the baselines come "
                    "from the last periods"
                ).format(
                    path=table.path,
                    label=fmt_label(labels[-1]),
                    share=fmt_pct(v[-1] / typical, 0),
                    stage=repr(root),
                    partial=_partial(scenario.period),
                )
            )
    n = len(v)
    if n >= 6 and v[0] > 0 and v[-1] >= n / 2 * v[0]:
        rising = all(np.all(np.diff(table.counts[c][~table.missing[c]]) >= 0) for c in table.counts)
        if rising:
            out.append(
                _(
                    "{path}: every column only grows ({stage} from {first} to {last}); if these "
                    "are running totals, export the count of each period instead"
                ).format(
                    path=table.path, stage=repr(root), first=fmt_int(v[0]), last=fmt_int(v[-1])
                )
            )
    return out


def _partial(period: str) -> str:
    """'a partial week' (French 'une semaine incomplète')."""
    words = {
        "day": _("a partial day"),
        "week": _("a partial week"),
        "month": _("a partial month"),
    }
    return words.get(period) or _("a partial {period}").format(period=period)


def _one_period(period: str) -> str:
    """'one week' (French 'une semaine')."""
    words = {"day": _("one day"), "week": _("one week"), "month": _("one month")}
    return words.get(period) or _("one {period}").format(period=period)


def read_history(scenario: Scenario) -> CountTable:
    """The scenario's history table, validated against its funnel and horizon; dated labels make
    it a calendar (sorted, gap-free)."""
    path = scenario.resolve(scenario.history_source.file)
    table = read_count_table(path, scenario, "period", allow_missing=True, with_values=True)
    table = day_first(table, scenario, path)
    problems = check_funnel_counts(table, scenario) + check_values(table)
    problems += outage_problems(scenario, table, path)
    dup = sorted({p for p in table.labels if table.labels.count(p) > 1})
    if dup:
        problems.append(f"{path}: column 'period': repeated periods: {', '.join(dup[:5])}")
    if problems:
        raise InputError(problems)
    table = _as_calendar(table, scenario)
    problems += [f"{scenario.source or path}: {m}" for m in event_problems(scenario, table)]
    if table.dates is None and scenario.model.seasonality == "yearly":
        problems.append(
            f"{scenario.source or path}: model.seasonality: `yearly` needs period labels that "
            "are dates (YYYY-MM-DD); use `auto` or `none` with these labels"
        )
    if len(table) < 3:
        problems.append(
            f"{path}: only {plural(len(table), 'row')}; the model needs at least 3 periods of history"
        )
    explicit = set(scenario.baseline or {})
    needs_history = [kr.id for kr in scenario.key_results if kr.id not in explicit]
    if needs_history and len(table) < scenario.horizon:
        problems.append(
            f"{path}: {plural(len(table), 'row')}, fewer than the horizon ({scenario.horizon}); the baselines of "
            f"{', '.join(needs_history)} come from the last {scenario.horizon} periods "
            "(add history or give them in `baseline:`)"
        )
    for kr in scenario.key_results:  # a value baseline needs the window's value cells
        if kr.id in explicit:
            continue
        for term in kr.stages:
            if not term.endswith(".value"):
                continue
            v = table.value_matrix((term.removesuffix(".value"),))[1][0]
            window = v[-scenario.horizon :]
            empty = [
                table.labels[len(v) - len(window) + i] for i in np.flatnonzero(np.isnan(window))
            ]
            if empty:
                problems.append(
                    f"{path}: column {term!r}: empty in {', '.join(empty[:5])}, inside the last "
                    f"{scenario.horizon} periods that make the baseline of key result {kr.id!r}; "
                    f"fill it or give the baseline in `baseline: {{{kr.id}: ...}}`"
                )
    if problems:
        raise InputError(problems)
    notes = _shape_notes(table, scenario)
    if notes:
        table = dataclasses.replace(table, notes=(*table.notes, *notes))
    return table


# ------------------------------------------------------------------------ day-first dates

_STEP_DAYS = {"day": 1, "week": 7}


def _readings(labels: tuple[str, ...], order: str) -> list[dt.date] | None:
    """The labels read as d/m/y (``order`` 'dmy') or m/d/y ('mdy'), or None if one cannot be."""
    out = []
    for x in labels:
        m = _DAY_MONTH.fullmatch(x)
        if not m:
            return None
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        d, mo = (a, b) if order == "dmy" else (b, a)
        try:
            out.append(dt.date(y, mo, d))
        except ValueError:
            return None
    return out


def _regular(dates: list[dt.date], period: str) -> bool:
    """Consecutive rows one period apart (weeks: 7 days; months: one month), in either order."""
    ds = sorted(dates)
    if period in _STEP_DAYS:
        return all((b - a).days == _STEP_DAYS[period] for a, b in pairwise(ds))
    if period == "month":
        return all(_month_index(b) - _month_index(a) == 1 for a, b in pairwise(ds))
    return False


def day_first(table: CountTable, scenario: Scenario, path: Path) -> CountTable:
    """Period labels written as spreadsheets write dates (03/03/2025, 17.03.2025) read as ISO
    dates, when the scenario's `history: {date_format: ...}` gives the form, or when the file
    settles the order: some number above 12 can only be a day, or only one order puts the rows
    one period apart. A note says how they were read; a file that settles nothing is refused
    with both readings."""
    labels = table.labels
    if not labels or not all(_DAY_MONTH.fullmatch(x) for x in labels):
        fmt = scenario.history_source.date_format
        if fmt and labels and not all(_iso_date(x) for x in labels):
            return _with_format(table, fmt, path)
        return table
    fmt = scenario.history_source.date_format
    if fmt:
        return _with_format(table, fmt, path)
    dmy, mdy = _readings(labels, "dmy"), _readings(labels, "mdy")
    why = ""
    if dmy and mdy and dmy != mdy:
        rd, rm = _regular(dmy, scenario.period), _regular(mdy, scenario.period)
        if rd != rm:
            why = _("only day/month/year puts the rows {step} apart").format(
                step=_one_period(scenario.period)
            )
            mdy = None if rd else mdy
            dmy = dmy if rd else None
        else:
            where = f"{path}: column {_period_header(scenario)!r}"
            a, b = dmy[0].isoformat(), mdy[0].isoformat()
            raise InputError(
                [
                    f"{where}: {labels[0]!r} may be {a} (day/month) or {b} (month/day), and the "
                    "file does not settle it; write the dates as YYYY-MM-DD or say "
                    "`history: {file: ..., date_format: '%d/%m/%Y'}`"
                ]
            )
    dates = dmy or mdy
    if dates is None:
        where = f"{path}: column {_period_header(scenario)!r}"
        bad = next(
            x for x in labels if _readings((x,), "dmy") is None and _readings((x,), "mdy") is None
        )
        raise InputError([f"{where}: {bad!r} is not a date (write YYYY-MM-DD)"])
    order = _("day/month/year") if dates is dmy else _("month/day/year")
    if not why:
        big = next(
            (x for x in labels if int(_DAY_MONTH.fullmatch(x)[1 if dates is dmy else 2]) > 12),
            None,
        )
        why = (
            _("{label} can only be {order}").format(label=repr(big), order=order)
            if big
            else _("only {order} gives valid dates").format(order=order)
        )
    note = _("{path}: read the dates {first} … as {order} ({why})").format(
        path=path, first=repr(labels[0]), order=order, why=why
    )
    return _relabel(table, [d.isoformat() for d in dates], note)


def _with_format(table: CountTable, fmt: str, path: Path) -> CountTable:
    out, problems = [], []
    for r, x in enumerate(table.labels):
        try:
            out.append(dt.datetime.strptime(x, fmt).date().isoformat())
        except ValueError:
            problems.append(
                f"{path}: row {r + 2}, period {x!r}: does not match date_format {fmt!r}"
            )
    if problems:
        raise InputError(problems[:5])
    return _relabel(
        table,
        out,
        _("{path}: read the dates with date_format {format}").format(path=path, format=repr(fmt)),
    )


def _relabel(table: CountTable, labels: list[str], note: str) -> CountTable:
    return dataclasses.replace(table, labels=tuple(labels), notes=(*table.notes, note))


def _period_header(scenario: Scenario) -> str:
    return scenario.history_source.period_column or "period"


# ---------------------------------------------------------------------------------- outages

OUTAGE_PARENT = 100  # a stage at 0 under a parent at least this large is not a slow week


def outage_problems(scenario: Scenario, table: CountTable, path: Path, first: int = 0) -> list[str]:
    """Periods whose zeros are a broken tracker, not data: every count 0 while the other periods
    are not, or a stage at 0 while its parent counts at least `OUTAGE_PARENT` and the stage is
    never 0 in the other periods. Periods of an `events:` entry with `closed: true` are real
    zeros. The fix is to leave the cells empty (missing data). Only rows from ``first`` on are
    judged (the earlier ones are the history, for actuals), numbered in the file from there."""
    closed = set()
    for ev, rows in zip(scenario.events, event_rows(scenario, table), strict=False):
        if ev.closed:
            closed.update(int(r) for r in np.flatnonzero(rows))
    cols = [*scenario.funnel, *scenario.segments]
    parents = [(s, st.from_) for s, st in scenario.funnel.items() if st.from_]
    parents += [(g, sg.of) for g, sg in scenario.segments.items()]
    counts, missing = table.counts, table.missing
    # per column, over all rows: how many count something, how many recorded cells are 0
    positive = {c: int(np.sum(counts[c] > 0)) for c in cols}
    recorded = {c: int(np.sum(~missing[c])) for c in cols}
    zeros = {c: int(np.sum((counts[c] == 0) & ~missing[c])) for c in cols}
    out = []
    fix = "leave the cells empty: krsim treats them as missing"
    for r in range(first, len(table)):
        row = f"row {r - first + 2} (period {table.labels[r]})"
        if r in closed:
            continue
        seen = [c for c in cols if not missing[c][r]]
        if not seen:
            continue
        if all(counts[c][r] == 0 for c in seen) and any(positive[c] > 0 for c in seen):
            out.append(
                f"{path}: {row}: every count is 0 while the "
                f"other periods are not: a tracking outage? {fix} (or, for a period that really "
                "had no activity, an `events:` entry with `closed: true`)"
            )
            continue
        for child, parent in parents:
            if missing[child][r] or missing[parent][r]:
                continue
            if counts[child][r] != 0 or counts[parent][r] < OUTAGE_PARENT:
                continue
            # the other recorded periods of the child (this one is a recorded 0): none is 0
            if recorded[child] > 1 and zeros[child] == 1:
                out.append(
                    f"{path}: {row}, column "
                    f"{scenario.column_of(child)!r}: 0 while {scenario.column_of(parent)!r} counts "
                    f"{counts[parent][r]:,} and it is never 0 in the other periods: a "
                    f"tracking outage? {fix}"
                )
    return out


# ------------------------------------------------------------------------------------ actuals

_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_TRAILING_INT = re.compile(r"^(.*?)(\d+)$")


def next_labels(history_labels: tuple[str, ...], period: str, n: int) -> list[str] | None:
    """The ``n`` period labels that continue the history's, or None when they cannot be told.

    ISO dates step by the scenario's `period` (``day``, ``week``, ``month``; another word: the
    history's last step); ISO weeks (``2025-W36``) go to the next ISO week; labels ending in a
    number (``1``, ``w07``) count on, keeping the padding."""
    last = history_labels[-1]
    dates = [_iso_date(x) for x in history_labels[-2:]]
    if dates[-1] is not None:
        d0 = dates[-1]
        if period == "month":
            ends = all(d is not None and is_month_end(d) for d in map(_iso_date, history_labels))
            return [add_months(d0, i, ends).isoformat() for i in range(1, n + 1)]
        step = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7)}.get(period)
        if step is None:
            if len(dates) < 2 or dates[0] is None or dates[0] >= d0:
                return None
            step = d0 - dates[0]
        return [(d0 + i * step).isoformat() for i in range(1, n + 1)]
    m = _ISO_WEEK.match(last)
    if m:
        try:
            monday = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
        except ValueError:
            return None
        out = []
        for i in range(1, n + 1):
            y, w, _ = (monday + dt.timedelta(weeks=i)).isocalendar()
            out.append(f"{y}-W{w:02d}")
        return out
    m = _TRAILING_INT.match(last)
    if m:
        stem, digits = m[1], m[2]
        return [f"{stem}{int(digits) + i:0{len(digits)}d}" for i in range(1, n + 1)]
    return None


def read_actuals(
    scenario: Scenario,
    history: CountTable,
    path: str | Path,
    *,
    fed: set[str] | frozenset[str] = frozenset(),
) -> CountTable:
    """The first periods of the quarter, observed: the history's columns, labels continuing the
    history's (no overlap, no gap), at most `horizon` rows, counts that can be. A header without
    rows is the quarter before its first period (k = 0).

    ``fed``: stages that the launched option's changes add users to (a gate's ``counts_as``, a
    flow's target); such a stage may exceed its parent stage, never the traffic. Raises
    InputError with one line per problem."""
    path = Path(path)
    table = read_count_table(path, scenario, "period", allow_empty=True)
    table = day_first(table, scenario, path)
    problems: list[str] = []
    if len(table):  # an outage among the actuals, judged against the history's periods
        joined = CountTable(
            path,
            "period",
            (*history.labels, *table.labels),
            {c: np.concatenate([history.counts[c], table.counts[c]]) for c in table.counts},
            missing={
                c: np.concatenate([history.missing[c], table.missing[c]]) for c in table.counts
            },
        )
        problems += outage_problems(scenario, joined, path, first=len(history))
    H = scenario.horizon
    if len(table) > H:
        problems.append(
            f"{path}: {len(table)} rows, more than the horizon ({H} periods): the actuals are "
            "the first periods of the quarter being tracked"
        )
    seen: set[str] = set()
    in_history = set(history.labels)
    for r, label in enumerate(table.labels):
        if label in in_history:
            problems.append(
                f"{path}: row {r + 2}, column 'period': period {label} is already in the history "
                f"(which ends at {history.labels[-1]}); the actuals are the periods after it"
            )
        elif label in seen:
            problems.append(f"{path}: row {r + 2}, column 'period': period {label} repeated")
        seen.add(label)
    overlap = bool(problems) and any(x in in_history for x in table.labels)
    expected = next_labels(history.labels, scenario.period, min(len(table), H))
    if expected is not None and not overlap:
        for r, (label, want) in enumerate(zip(table.labels, expected, strict=False)):
            if label != want and label not in in_history:
                after = history.labels[-1] if r == 0 else table.labels[r - 1]
                problems.append(
                    f"{path}: row {r + 2}, column 'period': expected period {want} after "
                    f"{after}, found {label} (the actuals continue the history with no gap)"
                )
                break  # every later row would be off by the same shift
    pairs = [
        (s, scenario.root if s in fed else st.from_, "stage")
        for s, st in scenario.funnel.items()
        if st.from_
    ]
    pairs += [(g, seg.of, "segment") for g, seg in scenario.segments.items()]
    for child, parent, what in pairs:
        role = (
            "the traffic"
            if child in fed
            else ("its stage" if what == "segment" else "its parent stage")
        )
        for r in np.nonzero(table.counts[child] > table.counts[parent])[0]:
            problems.append(
                f"{path}: row {r + 2} (period {table.labels[r]}), column {child!r}: {what} count "
                f"{table.counts[child][r]} is larger than {role} {parent!r} "
                f"({table.counts[parent][r]})"
            )
    if problems:
        raise InputError(problems)
    return table


def event_rows(scenario: Scenario, table: CountTable) -> list[np.ndarray]:
    """Per event, which history rows it covers (first..last inclusive: by date when the labels
    are dates, else by the labels' positions)."""
    import datetime as dt

    out = []
    for ev in scenario.events:
        if table.dates is not None:
            try:
                a, b = dt.date.fromisoformat(ev.first), dt.date.fromisoformat(ev.last)
            except ValueError:
                out.append(np.zeros(len(table), dtype=bool))
                continue
            d = np.array([x.toordinal() for x in table.dates])
            out.append((d >= a.toordinal()) & (d <= b.toordinal()))
        else:
            pos = {lab: i for i, lab in enumerate(table.labels)}
            i, j = pos.get(ev.first, -1), pos.get(ev.last, -1)
            rows = np.zeros(len(table), dtype=bool)
            if 0 <= i <= j:
                rows[i : j + 1] = True
            out.append(rows)
    return out


def event_problems(scenario: Scenario, table: CountTable) -> list[str]:
    """Events whose periods are not in the history (one line each)."""
    import datetime as dt

    out = []
    for i, (ev, rows) in enumerate(zip(scenario.events, event_rows(scenario, table), strict=True)):
        where = f"events[{i}]"
        if table.dates is not None:
            bad = []
            for f in ("first", "last"):
                try:
                    dt.date.fromisoformat(getattr(ev, f))
                except ValueError:
                    bad.append(f)
            if bad:
                out += [f"{where}.{f}: {getattr(ev, f)!r} is not a date (YYYY-MM-DD)" for f in bad]
                continue
        else:
            missing = [f for f in ("first", "last") if getattr(ev, f) not in table.labels]
            if missing:
                out += [
                    f"{where}.{f}: {getattr(ev, f)!r} is not a period of the history"
                    for f in missing
                ]
                continue
        if (table.dates is not None and ev.first > ev.last) or (
            table.dates is None and not rows.any()
        ):
            out.append(f"{where}: first ({ev.first}) comes after last ({ev.last})")
        elif not rows.any():
            out.append(f"{where}: no period of the history lies in {ev.first}..{ev.last}")
        elif rows.all():
            out.append(f"{where}: covers the whole history; an event must leave regular periods")
    return out
