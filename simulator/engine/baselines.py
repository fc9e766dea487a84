"""Key-result baselines: the value a target with ``%`` is relative to, from a window of the history.

The scenario's ``baseline:`` gives, for all key results or per key result, a number or a window:

- ``last_periods`` (the default): the last ``horizon`` periods of the history;
- ``same_period_last_year``: the ``horizon`` periods from the history period whose date is nearest
  to one year before the forecast's first date (the period after the history's last);
- ``previous_quarter``: the ``horizon`` periods that end at the last history period dated before
  the calendar quarter in which the forecast starts (the last periods when it starts a quarter);
- ``{from: A, to: B}``: the history periods from A to B inclusive (dates, or period labels when
  the labels are not dates).

A window's counts and total values are summed, and a key result is read off those totals as
`decision.kr_value` reads it off the forecast's (a ratio is the ratio of the totals). A window of
``n`` periods other than the horizon's ``H`` has its totals scaled by ``H / n`` (its mean per period
times ``H``), which leaves ratios as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..i18n import N_, _, fmt_label, language, last_periods, ngettext
from ..io.data import CountTable, event_rows
from ..io.scenario import BaselineSpec, InputError, KeyResult, Scenario
from ..io.season import add_months, future_dates, is_month_end, seasonal

KIND_WORDS = {
    "same_period_last_year": N_("same period last year"),
    "previous_quarter": N_("the previous quarter"),
}
SEASON_MARGIN = 0.10  # how far a week (month) of the year must stand out to be a season extreme


@dataclass(frozen=True)
class Baseline:
    """A key result's baseline: its ``value``, how it was set (``kind``: ``last_periods``,
    ``same_period_last_year``, ``previous_quarter``, ``window`` or ``given``), the labels of the
    window's first and last periods and their number (None for a given number), and a ``note``
    (the scaling of a window whose length differs from the horizon's)."""

    value: float
    kind: str
    first: str | None
    last: str | None
    periods: int | None
    note: str | None = None
    unit: str = "period"  # the scenario's period word, for `describe`

    def describe(self) -> str:
        """Where the baseline comes from, in words: 'the last 13 weeks (2025-10-06 to
        2025-12-29)', '2025-01-06 to 2025-03-31, same period last year', 'given in the scenario'."""
        if self.kind == "given" or self.first is None:
            return _("given in the scenario")
        span = _span(self.first, self.last)
        if self.kind == "last_periods":
            what = last_periods(self.periods or 0, self.unit)
            return f"{what} ({span})"
        if self.kind in KIND_WORDS:
            return f"{span}, {_(KIND_WORDS[self.kind])}"
        return span

    def note_words(self, horizon: int) -> str | None:
        """The note in the current language (``note`` is its English form)."""
        if not self.note:
            return None
        return ngettext(
            "{n} period, scaled to the horizon's {horizon}",
            "{n} periods, scaled to the horizon's {horizon}",
            self.periods or 0,
        ).format(n=self.periods, horizon=horizon)


def kr_total_value(kr: KeyResult, totals: dict[str, float]) -> float:
    """A key result's value from the totals of its terms: a total, or the ratio of two totals
    (0 when the denominator is 0), as `decision.kr_value` reads it."""
    if kr.is_ratio:
        a, b = (totals[s] for s in kr.stages)
        return float(a / b) if b > 0 else 0.0
    return float(totals[kr.stages[0]])


# ------------------------------------------------------------------------------- calendar


def _step(dates) -> int:
    return int(np.median(np.diff([d.toordinal() for d in dates]))) if len(dates) > 1 else 7


def _grid(dates) -> Callable[[int], dt.date]:
    """The date of period ``p`` on the history's calendar, ``p`` counted from its first period
    (negative before it, ``len(dates)`` and on after it)."""
    d0, step = dates[0], _step(dates)
    if 28 <= step <= 31:
        ends = all(is_month_end(d) for d in dates)
        return lambda p: add_months(d0, p, ends)
    return lambda p: d0 + dt.timedelta(days=step * p)


def _index_near(dates, day: dt.date) -> int:
    """The calendar index of the period whose date is nearest to ``day`` (the earlier on a tie)."""
    at, step = _grid(dates), _step(dates)
    # a first guess (months differ in length), settled by the periods on either side of it
    p = round((day - dates[0]).days / step) if step < 28 else _months(dates[0], day)
    return min((p - 1, p, p + 1), key=lambda q: (abs((at(q) - day).days), q))


def _months(a: dt.date, b: dt.date) -> int:
    return (b.year * 12 + b.month) - (a.year * 12 + a.month)


def _last_before(dates, day: dt.date) -> int:
    """The calendar index of the last period dated before ``day``."""
    at = _grid(dates)
    p = _index_near(dates, day)
    while at(p) >= day:
        p -= 1
    while at(p + 1) < day:
        p += 1
    return p


def _quarter_start(d: dt.date) -> dt.date:
    return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


# --------------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class _Window:
    start: int  # history rows start..end inclusive
    end: int


def _span(a: str, b: str) -> str:
    a, b = fmt_label(a), fmt_label(b)
    return a if a == b else _("{first} to {last}").format(first=a, last=b)


def _window(spec: BaselineSpec, scenario: Scenario, history: CountTable) -> _Window | str:
    """The history rows of a window form, or the reason it cannot be computed."""
    if spec.kind == "last_periods":
        n = len(history)
        return _Window(max(0, n - scenario.horizon), n - 1)
    if spec.kind in ("same_period_last_year", "previous_quarter"):
        return _calendar_window(spec.kind, scenario.horizon, history)
    if history.dates is not None:
        return _dated_window(spec.from_ or "", spec.to or "", history)
    return _labelled_window(spec.from_ or "", spec.to or "", history)


def _calendar_window(kind: str, H: int, history: CountTable) -> _Window | str:
    """The ``H`` periods a year before the horizon's (``same_period_last_year``), or the last
    ``H`` periods of the quarter before it starts (``previous_quarter``)."""
    dates, labels, n = history.dates, history.labels, len(history)
    if dates is None:
        return f"{kind} needs dates in the history's period column"
    at = _grid(dates)
    ahead = future_dates(dates, H)
    if kind == "same_period_last_year":
        start = _index_near(dates, add_months(ahead[0], -12))
        end = start + H - 1
    else:
        end = _last_before(dates, _quarter_start(ahead[0]))
        start = end - H + 1
    span = _span(at(start).isoformat(), at(end).isoformat())
    what = f"the window {span} ({KIND_WORDS[kind]})"
    if start < 0:
        return f"{what} starts before the history (first period {labels[0]})"
    if end > n - 1:
        return f"{what} ends after the history (last period {labels[-1]})"
    return _Window(start, end)


def _dated_window(a: str, b: str, history: CountTable) -> _Window | str:
    """The window ``from: a``, ``to: b`` (ISO dates) on a history with dates."""
    dates, labels = history.dates, history.labels
    what = f"the window {a} to {b}"
    try:
        da, db = dt.date.fromisoformat(a), dt.date.fromisoformat(b)
    except ValueError:
        bad = [x for x in (a, b) if not _is_iso(x)]
        return f"{bad[0]!r} is not a date (YYYY-MM-DD), as the history's periods are"
    if da > db:
        return f"the window's from ({a}) comes after its to ({b})"
    if da < dates[0]:
        return f"{what} starts before the history (first period {labels[0]})"
    if db >= _grid(dates)(len(history)):
        return f"{what} ends after the history (last period {labels[-1]})"
    rows = [i for i, d in enumerate(dates) if da <= d <= db]
    if not rows:
        return f"{what} holds no period of the history"
    return _Window(rows[0], rows[-1])


def _labelled_window(a: str, b: str, history: CountTable) -> _Window | str:
    """The window ``from: a``, ``to: b`` (period labels) on a history without dates."""
    labels = history.labels
    pos = {lab: i for i, lab in enumerate(labels)}
    for x in (a, b):
        if x not in pos:
            return f"{x!r} is not a period of the history ({labels[0]} to {labels[-1]})"
    if pos[a] > pos[b]:
        return f"the window's from ({a}) comes after its to ({b}) in the history"
    return _Window(pos[a], pos[b])


def _is_iso(x: str) -> bool:
    try:
        dt.date.fromisoformat(x)
    except ValueError:
        return False
    return True


def _empty_cells(kr: KeyResult, history: CountTable, w: _Window) -> list[str]:
    """The key result's columns with empty cells inside the window: 'column (labels)'."""
    out = []
    for term in kr.stages:
        stage = term.removesuffix(".value")
        if term.endswith(".value"):
            empty = np.isnan(history.value_matrix((stage,))[1][0][w.start : w.end + 1])
        else:
            empty = history.missing[stage][w.start : w.end + 1]
        if empty.any():
            at = [history.labels[w.start + i] for i in np.flatnonzero(empty)]
            more = f", … ({len(at)} periods)" if len(at) > 3 else ""
            out.append(f"{term!r} in {', '.join(at[:3])}{more}")
    return out


def _totals(scenario: Scenario, history: CountTable, w: _Window) -> dict[str, float]:
    """Counts and total values summed over the window's rows (an empty value cell adds 0)."""
    rows = slice(w.start, w.end + 1)
    out = {s: float(history.counts[s][rows].sum()) for s in scenario.funnel}
    for s, v in history.values.items():
        out[f"{s}.value"] = float(np.nansum(v[rows]))
    return out


def _specs(scenario: Scenario) -> dict[str, BaselineSpec]:
    """Each key result's baseline form (``last_periods`` where the scenario gives none)."""
    given = scenario.baseline or {}
    default = BaselineSpec.model_validate("last_periods")
    return {kr.id: given.get(kr.id, default) for kr in scenario.key_results}


def resolve(scenario: Scenario, history: CountTable) -> dict[str, Baseline]:
    """Every key result's baseline, in the scenario's order. A form that cannot be computed on
    this history (no dates, a window outside it or empty, empty cells of the key result's columns
    inside a window the scenario names) raises InputError, one line per problem:
    ``FILE: baseline.KR: what is wrong`` (``baseline:`` for a form written for all)."""
    name = scenario.source or "<scenario>"
    H, unit = scenario.horizon, scenario.period
    given = scenario.baseline or {}
    problems: list[str] = []
    out: dict[str, Baseline] = {}
    specs = _specs(scenario)
    for kr in scenario.key_results:
        spec = specs[kr.id]
        where = f"{name}: baseline" + ("" if spec.shared else f".{kr.id}")
        if spec.kind == "given":
            out[kr.id] = Baseline(float(spec.value or 0.0), "given", None, None, None, None, unit)
            continue
        w = _window(spec, scenario, history)
        if isinstance(w, str):
            problems.append(f"{where}: {w}")
            continue
        first, last = history.labels[w.start], history.labels[w.end]
        if kr.id in given:  # the default window's cells are checked with the history
            empty = _empty_cells(kr, history, w)
            if empty:
                problems.append(
                    f"{where}: empty cells in {'; '.join(empty)}, inside the baseline window "
                    f"{_span(first, last)}; fill them or choose another window"
                )
                continue
        totals = _totals(scenario, history, w)
        k = w.end - w.start + 1
        note = None
        if k != H:
            totals = {t: v * H / k for t, v in totals.items()}
            if not kr.is_ratio:
                with language("en"):  # the JSON's form; `note_words` writes it in the output's
                    note = ngettext(
                        "{n} period, scaled to the horizon's {horizon}",
                        "{n} periods, scaled to the horizon's {horizon}",
                        k,
                    ).format(n=k, horizon=H)
        out[kr.id] = Baseline(kr_total_value(kr, totals), spec.kind, first, last, k, note, unit)
    if problems:
        raise InputError(list(dict.fromkeys(problems)))
    return out


# ----------------------------------------------------------------------------------- notes


def season_extremes(history: CountTable, root: str) -> tuple[int | None, int | None]:
    """The week (month, with monthly periods) of the year at the top and at the bottom of the
    root stage's yearly profile, as the history shows it: the mean count per period of each ISO
    week (week 53 joins week 52) or month across the history's years, empty cells left out. An
    extreme counts only when it stands ``SEASON_MARGIN`` (10%) or more above (below) the mean of
    all weeks: a week that is highest by a few percent is as likely noise as season, and a note
    must not send a team to last year's window for a flat series. (None, None) without dates."""
    if history.dates is None:
        return None, None
    key = _season_key(history.dates)
    seen = ~history.missing[root]
    by: dict[int, list[float]] = {}
    for d, c, ok in zip(history.dates, history.counts[root], seen, strict=True):
        if ok:
            by.setdefault(key(d), []).append(float(c))
    if len(by) < 2:
        return None, None
    means = {k: float(np.mean(v)) for k, v in by.items()}
    overall = float(np.mean(list(means.values())))
    top = max(means, key=means.__getitem__)
    low = min(means, key=means.__getitem__)
    return (
        top if means[top] >= (1 + SEASON_MARGIN) * overall else None,
        low if means[low] <= (1 - SEASON_MARGIN) * overall else None,
    )


def _season_key(dates) -> Callable[[dt.date], int]:
    if 28 <= _step(dates) <= 31:
        return lambda d: d.month
    return lambda d: min(d.isocalendar().week, 52)


def window_notes(scenario: Scenario, history: CountTable) -> list[str]:
    """A note when the default window (the last ``horizon`` periods) makes some key result's
    baseline and holds an event of the scenario (``events:``), or, with the yearly seasonal
    profile in the model, the peak or the low of the root stage's year (`season_extremes`): a
    target relative to such a window is relative to an unusual stretch."""
    specs = _specs(scenario)
    krs = [k for k, s in specs.items() if s.kind == "last_periods"]
    if not krs or len(history) == 0:
        return []
    n, H = len(history), scenario.horizon
    w = _Window(max(0, n - H), n - 1)
    rows = slice(w.start, w.end + 1)
    held = []
    events = [
        ev.label
        for ev, on in zip(scenario.events, event_rows(scenario, history), strict=True)
        if on[rows].any()
    ]
    if events:
        names = _(" and ").join(_("‘{event}’").format(event=e) for e in events)
        held.append(
            ngettext("the event {names}", "the events {names}", len(events)).format(names=names)
        )
    if seasonal(scenario.model.seasonality, history.dates)[0]:
        top, low = season_extremes(history, scenario.root)
        key = _season_key(history.dates)
        inside = {key(d) for d in history.dates[rows]}
        what = scenario.stage_label(scenario.root)
        if top is not None and top in inside:
            held.append(_("the year's peak of {stage}").format(stage=what))
        if low is not None and low in inside:
            held.append(_("the year's low of {stage}").format(stage=what))
    if not held:
        return []
    first, last = history.labels[w.start], history.labels[w.end]
    if isinstance(
        _window(BaselineSpec.model_validate("same_period_last_year"), scenario, history), _Window
    ):
        advice = _("consider `baseline: same_period_last_year`")
    else:
        advice = _("consider a window without it, `baseline: {from: A, to: B}`")
    holds = (
        held[0]
        if len(held) == 1
        else _("{items} and {last}").format(items=", ".join(held[:-1]), last=held[-1])
    )
    msg = (
        _("The baseline window ({span}) holds {holds}: {advice}.")
        if len(krs) == len(specs)
        else _("The baseline window of {krs} ({span}) holds {holds}: {advice}.")
    )
    return [msg.format(krs=", ".join(krs), span=_span(first, last), holds=holds, advice=advice)]
