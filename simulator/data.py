"""Count tables (history, experiment results, actuals): read and validate against the funnel.

Tables are small (one row per period or arm), so the standard library's csv reader is used: it keeps
`krsim check` free of heavy imports.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
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

    def __len__(self) -> int:
        return len(self.labels)

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(repr((self.key, self.labels, self.periods)).encode())
        for name in sorted(self.counts):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.counts[name], dtype=np.int64).tobytes())
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
) -> CountTable:
    """Read a CSV with a `key` column and one count column per stage and segment (or `columns`)."""
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
    if not body:
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
    problems = check_funnel_counts(table, scenario)
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
