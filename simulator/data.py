"""Count tables (history, experiment results, actuals): read and validate against the funnel.

Tables are small (one row per period or arm), so the standard library's csv reader is used: it keeps
`krsim check` free of heavy imports.
"""

from __future__ import annotations

import calendar
import csv
import datetime
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .scenario import InputError, Scenario, did_you_mean


@dataclass(frozen=True)
class CountTable:
    """Rows of counts: one label column (period or arm) and one integer column per stage/segment."""

    path: Path
    key: str  # name of the label column
    labels: tuple[str, ...]
    counts: dict[str, np.ndarray] = field(repr=False)
    periods: tuple[str, ...] | None = None  # for experiment tables with a `period` column
    # the labels as dates when they are ISO dates (None for ordinal labels)
    dates: tuple[datetime.date, ...] | None = None
    # per column, True where the cell was empty (missing data; its count is 0)
    missing: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(repr((self.key, self.labels, self.periods)).encode())
        for name in sorted(self.counts):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.counts[name], dtype=np.int64).tobytes())
        for name in sorted(self.missing):
            if self.missing[name].any():
                h.update(b"missing:" + name.encode())
                h.update(np.packbits(np.asarray(self.missing[name], dtype=bool)).tobytes())
        return h.hexdigest()


def _parse_count(text: str) -> int | str:
    """An integer count, or the reason it is not one."""
    t = text.strip()
    if t == "":
        return "empty cell (write 0 if nothing happened)"
    try:
        v = float(t)
    except ValueError:
        return f"not a number ({t!r})"
    if not np.isfinite(v):
        return f"not a finite number ({t!r})"
    if v < 0:
        return f"a count cannot be negative ({t})"
    if v != int(v):
        return f"a count must be a whole number ({t})"
    return int(v)


def read_count_table(
    path: Path,
    scenario: Scenario,
    key: str,
    *,
    optional_columns: tuple[str, ...] = (),
    columns: list[str] | None = None,
    allow_empty: bool = False,
) -> CountTable:
    """Read a CSV with a `key` column and one count column per stage and segment (or `columns`);
    ``allow_empty``: a header without rows is a table of no rows."""
    columns = columns if columns is not None else [*scenario.funnel, *scenario.segments]
    problems: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise InputError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([f"{path}: cannot read the file: {exc}"]) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise InputError(
            [f"{path}: the file is empty (expected a header row: {key}, {', '.join(columns)})"]
        )
    header = [h.strip() for h in rows[0]]
    known = [key, *optional_columns, *columns]
    for h in header:
        if h not in known:
            problems.append(f"{path}: column {h!r}: unknown column{did_you_mean(h, known)}")
    for c in [key, *columns]:
        if c not in header:
            problems.append(
                f"{path}: column {c!r}: missing (expected one column per stage and segment)"
            )
    dup = {h for h in header if header.count(h) > 1}
    for h in sorted(dup):
        problems.append(f"{path}: column {h!r}: appears more than once")
    if problems:
        raise InputError(problems)
    idx = {h: i for i, h in enumerate(header)}
    body = rows[1:]
    if not body and not allow_empty:
        raise InputError([f"{path}: no data rows below the header"])
    labels: list[str] = []
    periods: list[str] = []
    values = {c: np.zeros(len(body), dtype=np.int64) for c in columns}
    for r, row in enumerate(body):
        line = r + 2
        if len(row) != len(header):
            problems.append(
                f"{path}: row {line}: has {len(row)} cells, the header has {len(header)}"
            )
            continue
        label = row[idx[key]].strip()
        if not label:
            problems.append(f"{path}: row {line}, column {key!r}: empty")
        labels.append(label)
        if "period" in optional_columns and "period" in idx:
            periods.append(row[idx["period"]].strip())
        for c in columns:
            v = _parse_count(row[idx[c]])
            if isinstance(v, str):
                problems.append(f"{path}: row {line}, column {c!r}: {v}")
            else:
                values[c][r] = v
    if problems:
        raise InputError(problems)
    return CountTable(
        path=path,
        key=key,
        labels=tuple(labels),
        counts=values,
        periods=tuple(periods) if periods else None,
    )


def check_funnel_counts(table: CountTable, scenario: Scenario) -> list[str]:
    """Counts that cannot be: a stage larger than its parent, a segment larger than its stage."""
    problems = []
    pairs = [
        (s, st.from_, "stage", "its parent stage") for s, st in scenario.funnel.items() if st.from_
    ]
    pairs += [(g, seg.of, "segment", "its stage") for g, seg in scenario.segments.items()]
    for child, parent, what, role in pairs:
        bad = np.nonzero(table.counts[child] > table.counts[parent])[0]
        for r in bad[:5]:
            problems.append(
                f"{table.path}: row {r + 2} ({table.key} {table.labels[r]}), column {child!r}: "
                f"{what} count {table.counts[child][r]} is larger than {role} {parent!r} ({table.counts[parent][r]})"
            )
        if len(bad) > 5:
            problems.append(
                f"{table.path}: column {child!r}: {len(bad) - 5} more rows larger than {parent!r}"
            )
    return problems


def read_history(scenario: Scenario) -> CountTable:
    """The scenario's history table, validated against its funnel and horizon."""
    path = scenario.resolve(scenario.history)
    table = read_count_table(path, scenario, "period")
    from .season import parse_dates

    dates = parse_dates(table.labels)
    if dates is not None:
        table = replace(table, dates=dates)
    elif scenario.model.seasonality == "yearly":
        raise InputError(
            [
                f"{scenario.source or path}: model.seasonality: `yearly` needs period labels that "
                "are dates (YYYY-MM-DD); use `auto` or `none` with these labels"
            ]
        )
    problems = check_funnel_counts(table, scenario)
    problems += [f"{scenario.source or path}: {m}" for m in event_problems(scenario, table)]
    dup = sorted({p for p in table.labels if table.labels.count(p) > 1})
    if dup:
        problems.append(f"{path}: column 'period': repeated periods: {', '.join(dup[:5])}")
    if len(table) < 3:
        problems.append(
            f"{path}: only {len(table)} rows; the model needs at least 3 periods of history"
        )
    explicit = set(scenario.baseline or {})
    needs_history = [kr.id for kr in scenario.key_results if kr.id not in explicit]
    if needs_history and len(table) < scenario.horizon:
        problems.append(
            f"{path}: {len(table)} rows, fewer than the horizon ({scenario.horizon}); the baselines of "
            f"{', '.join(needs_history)} come from the last {scenario.horizon} periods "
            "(add history or give them in `baseline:`)"
        )
    if problems:
        raise InputError(problems)
    return table


# ------------------------------------------------------------------------------------ actuals

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_TRAILING_INT = re.compile(r"^(.*?)(\d+)$")


def _as_date(label: str) -> dt.date | None:
    if not _ISO_DATE.match(label):
        return None
    try:
        return dt.date.fromisoformat(label)
    except ValueError:
        return None


def _add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    y, m = d.year + y, m + 1
    last = [31, 29 if calendar.isleap(y) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    return dt.date(y, m, min(d.day, last))


def next_labels(history_labels: tuple[str, ...], period: str, n: int) -> list[str] | None:
    """The ``n`` period labels that continue the history's, or None when they cannot be told.

    ISO dates step by the scenario's `period` (``day``, ``week``, ``month``; another word: the
    history's last step); ISO weeks (``2025-W36``) go to the next ISO week; labels ending in a
    number (``1``, ``w07``) count on, keeping the padding."""
    last = history_labels[-1]
    dates = [_as_date(x) for x in history_labels[-2:]]
    if dates[-1] is not None:
        d0 = dates[-1]
        if period == "month":
            return [_add_months(d0, i).isoformat() for i in range(1, n + 1)]
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
    problems: list[str] = []
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
