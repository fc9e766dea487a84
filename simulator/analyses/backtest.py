"""`krsim backtest`: would past quarters have been predicted well?

For each of the last few quarter-long windows (``horizon`` periods) of the history, fit the model on
the periods before the window, forecast the option without changes (the product as it ran), and
see where each key result's actual value fell in the forecast: its predictive percentile, and
whether it lay inside the 80% interval. If the model's uncertainty is right, about one window in
five falls outside the 80% interval and the percentiles spread evenly over 0-100%.

Windows do not overlap and end at the last period of history. Each fit goes through the fit cache,
so a second backtest of the same history is fast.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..i18n import (
    _,
    fmt_int,
    fmt_interval,
    fmt_label,
    fmt_num,
    fmt_pct,
    get_language,
    language,
    ngettext,
    period_noun,
    pgettext,
)
from ..i18n import periods as periods_words
from ..io.data import CountTable, read_history
from ..io.scenario import InputError, Option, Scenario
from .records import freeze_fields

if TYPE_CHECKING:
    from ..model.design import Padding

LEVEL = 0.8  # the central interval whose coverage is checked
MAX_DEFAULT_WINDOWS = 6
ALARM = 0.05  # a verdict other than "consistent" needs a tail probability below this
EXTREME = 0.02  # a value below this predictive percentile (or above 1 - it) is far in a tail

logger = logging.getLogger(__name__)


def min_train_periods(horizon: int) -> int:
    """Periods a window's fit needs before it: a full quarter, and never fewer than 8."""
    return max(horizon, 8)


def plan_windows(n_periods: int, horizon: int, windows: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` row ranges of the windows, oldest first; raises InputError when the
    history is too short for the windows asked for."""
    need = min_train_periods(horizon)
    fit_at_most = (n_periods - need) // horizon
    if fit_at_most < 1:
        raise InputError(
            [
                f"history: {n_periods} periods is too short to backtest: each window is the horizon "
                f"({horizon} periods) and needs at least {need} periods before it to fit on, so at "
                f"least {need + horizon} periods of history"
            ]
        )
    if windows is not None and windows > fit_at_most:
        raise InputError(
            [
                f"--windows: {windows} windows of {horizon} periods do not fit in {n_periods} periods "
                f"of history (each needs {need} periods before it to fit on); at most {fit_at_most}"
            ]
        )
    n = windows if windows is not None else min(fit_at_most, MAX_DEFAULT_WINDOWS)
    return [(n_periods - k * horizon, n_periods - (k - 1) * horizon) for k in range(n, 0, -1)]


def truncate(table: CountTable, start: int, end: int) -> CountTable:
    """Rows ``start:end`` of a count table."""
    return table.rows(start, end)


def percentile(draws: np.ndarray, actual: float) -> float:
    """Share of the forecast below the actual value (ties count half): the predictive percentile."""
    d = np.asarray(draws, dtype=float)
    return float(np.mean(d < actual) + 0.5 * np.mean(d == actual))


@dataclass(frozen=True, kw_only=True)
class KRCheck:
    """A key result in one window: its actual value, the forecast's median and 80% interval,
    where the actual value fell in the forecast, and its CRPS."""

    actual: float
    median: float
    interval80: tuple[float, float]
    percentile: float
    inside80: bool
    p_outside: float  # the forecast's own chance of falling outside its interval (about 0.2)
    crps: float = float("nan")  # continuous ranked probability score, in the key result's unit

    def to_dict(self) -> dict[str, Any]:
        return {
            "actual": self.actual,
            "median": self.median,
            "interval80": list(self.interval80),
            "percentile": self.percentile,
            "inside80": self.inside80,
            "crps": self.crps,
        }


@dataclass(frozen=True, kw_only=True)
class WindowCheck:
    """One window: its first and last period labels, the periods fitted before it, each scored
    key result, the forecast's own chance that k = 0..K of the key results fall outside their
    intervals, the fit's diagnostics and its number of draws."""

    start: str
    end: str
    train_periods: int
    key_results: Mapping[str, KRCheck]
    miss_distribution: np.ndarray = field(repr=False)
    diagnostics: Mapping[str, Any] = field(repr=False)
    draws: int

    def __post_init__(self) -> None:
        freeze_fields(self, "key_results", "diagnostics")

    def to_dict(self) -> dict[str, Any]:
        d = self.diagnostics
        return {
            "start": self.start,
            "end": self.end,
            "train_periods": self.train_periods,
            "key_results": {k: c.to_dict() for k, c in self.key_results.items()},
            "diagnostics": {
                "rhat_max": d["rhat_max"],
                "ess_bulk_min": d["ess_bulk_min"],
                "divergences": d["divergences"],
            },
        }


@dataclass(frozen=True, kw_only=True)
class Tally:
    """Misses of the 80% interval over windows, and what the model itself expected."""

    checks: int
    outside80: int
    expected_outside80: float
    above_median: int
    p_too_many: float  # P(at least this many outside | the model is right)
    p_too_few: float  # P(at most this many outside | the model is right)
    calibration: str  # "overconfident" | "cautious" | "consistent"
    verdict: str = ""  # in English (the JSON's); `verdict_words` writes it in the output's
    extreme: int = 0  # actual values beyond the forecast's 2nd-98th percentiles
    p_extreme: float = 1.0  # P(at least this many | the model is right)
    crps: float = float("nan")  # mean CRPS over the checks, in the key result's unit
    crps_relative: float = float("nan")  # mean CRPS / |actual|
    # what the verdict counts, to write it again in another language (`verdict_words`)
    one_kr: bool = True
    windows: int = 0  # the groups the tail count counts (windows, or checks)
    per_window: int = 1

    @property
    def coverage80(self) -> float:
        return 1 - self.outside80 / self.checks if self.checks else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "outside80": self.outside80,
            "expected_outside80": self.expected_outside80,
            "coverage80": self.coverage80,
            "above_median": self.above_median,
            "p_too_many_outside": self.p_too_many,
            "p_too_few_outside": self.p_too_few,
            "calibration": self.calibration,
            "verdict": self.verdict,
            "beyond_2_98_percentiles": self.extreme,
            "p_that_many_beyond": self.p_extreme,
            "crps": self.crps,
            "crps_relative": self.crps_relative,
        }


@dataclass(frozen=True, kw_only=True)
class BacktestResult:
    """What `krsim backtest` computes; ``to_dict()`` is the `--json` object, ``to_frame()`` one
    row per window and key result. ``scenario``: the scenario backtested (with an option
    without changes added when it had none: ``option``)."""

    scenario: Scenario
    option: str
    draws: int
    windows: tuple[WindowCheck, ...]
    key_results: Mapping[str, Tally]
    overall: Tally
    advice: str | None
    warnings: tuple[str, ...]

    def __post_init__(self) -> None:
        freeze_fields(self, "windows", "key_results", "warnings")

    @property
    def title(self) -> str:
        return self.scenario.title

    @property
    def period(self) -> str:
        return self.scenario.period

    @property
    def horizon(self) -> int:
        return self.scenario.horizon

    @property
    def seed(self) -> int:
        return self.scenario.seed

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.id,
            "title": self.title,
            "option": self.option,
            "period": self.period,
            "horizon": self.horizon,
            "seed": self.seed,
            "draws": self.draws,
            "level": LEVEL,
            "windows": [w.to_dict() for w in self.windows],
            "key_results": {k: t.to_dict() for k, t in self.key_results.items()},
            "overall": self.overall.to_dict(),
            "verdict": self.overall.verdict,
            "advice": self.advice,
            "warnings": list(self.warnings),
        }

    def to_frame(self):
        """One row per window and scored key result: the actual value, the forecast's median
        and 80% interval, the actual value's percentile, whether it lay inside, and the CRPS."""
        import pandas as pd

        rows = [
            {
                "start": w.start,
                "end": w.end,
                "key_result": k,
                "train_periods": w.train_periods,
                "actual": c.actual,
                "median": c.median,
                "low80": c.interval80[0],
                "high80": c.interval80[1],
                "percentile": c.percentile,
                "inside80": c.inside80,
                "crps": c.crps,
            }
            for w in self.windows
            for k, c in w.key_results.items()
        ]
        return pd.DataFrame(rows).set_index(["start", "key_result"])


def _no_change_option(scenario: Scenario) -> tuple[Scenario, str]:
    """The option that describes the product as it ran: the first without changes (one is added
    when every option changes something)."""
    for oid, opt in scenario.options.items():
        if not opt.changes:
            return scenario, oid
    new = scenario.model_copy(update={"options": {"status_quo": Option(label="No change")}})
    new._source, new._text = scenario._source, scenario._text
    return new, "status_quo"


def _kr_check(pred: np.ndarray, actual: float) -> tuple[KRCheck, np.ndarray]:
    """A key result's forecast (its draws) against its actual value, and per draw whether the
    forecast itself falls outside its 80% interval."""
    lo, med, hi = np.quantile(pred, [(1 - LEVEL) / 2, 0.5, (1 + LEVEL) / 2])
    outside = (pred < lo) | (pred > hi)
    check = KRCheck(
        actual=actual,
        median=float(med),
        interval80=(float(lo), float(hi)),
        percentile=percentile(pred, actual),
        inside80=bool(lo <= actual <= hi),
        p_outside=float(np.mean(outside)),
        crps=crps(pred, actual),
    )
    return check, outside


def _actual_totals(scenario: Scenario, history: CountTable, start: int, end: int) -> dict:
    """The window's totals of each stage and each value (a total value with an empty cell in
    the window is unknown: NaN, and its key result is not scored)."""
    out = {s: np.asarray(history.counts[s][start:end].sum()) for s in scenario.funnel}
    return out | {f"{s}.value": np.asarray(v[start:end].sum()) for s, v in history.values.items()}


def _window(
    scenario: Scenario,
    history: CountTable,
    option: str,
    window: tuple[int, int],
    pad: Padding | None,
) -> WindowCheck:
    """Fit the periods before the window (padded as ``pad`` says), forecast it under ``option``,
    and score each key result's forecast against what happened."""
    from .. import model
    from ..engine import decision, forecast

    krs = scenario.key_results
    start, end = window
    fit = model.fit(scenario, truncate(history, 0, start), pad=pad)
    shared = forecast.prepare(scenario, fit, scenario.horizon)
    counts = forecast.simulate_option(scenario, shared, option, {})
    totals = {s: c.sum(axis=1) for s, c in counts.items()}
    actual = _actual_totals(scenario, history, start, end)
    per_kr: dict[str, KRCheck] = {}
    outside = []
    for kr in krs:
        if any(np.isnan(actual[t]) for t in kr.stages):
            continue
        value = float(decision.kr_value(kr, actual))
        per_kr[kr.id], out = _kr_check(decision.kr_value(kr, totals), value)
        outside.append(out)
    # The model's own view of how often its forecast leaves the interval, jointly over the key
    # results (they move together: one traffic, shared stages).
    n_out = np.array(outside, dtype=bool).reshape(len(outside), fit.n_draws).sum(axis=0)
    return WindowCheck(
        start=history.labels[start],
        end=history.labels[end - 1],
        train_periods=start,
        key_results=per_kr,
        miss_distribution=np.bincount(n_out, minlength=len(krs) + 1) / n_out.size,
        diagnostics=dict(fit.diagnostics),
        draws=fit.n_draws,
    )


def _kr_tally(checks: list[WindowCheck], kr: str, period: str) -> Tally:
    """One key result's tally over the windows that scored it."""
    scored = [w.key_results[kr] for w in checks if kr in w.key_results]
    dists = [np.array([1 - c.p_outside, c.p_outside]) for c in scored]
    return tally(scored, dists, period, one_kr=True)


def backtest(
    scenario: Scenario,
    history: CountTable | None = None,
    *,
    windows: int | None = None,
    draws: int | None = None,
    seed: int | None = None,
) -> BacktestResult:
    """Fit before each of the last windows, forecast it, and score the forecast against what
    happened. ``draws``, ``seed``: the scenario's model settings overridden
    (`Scenario.with_overrides`)."""
    history = history if history is not None else read_history(scenario)
    if draws is not None or seed is not None:
        scenario = scenario.with_overrides(seed=seed, draws=draws)
    plan = plan_windows(len(history), scenario.horizon, windows)
    scenario, option = _no_change_option(scenario)
    krs = scenario.key_results
    from ..model.design import paddings

    # the windows' fits padded to the longest of those that make the same choices: one compiled
    # model for them (`design.paddings`)
    pads = paddings(scenario, [truncate(history, 0, start) for start, _end in plan])
    checks = [_window(scenario, history, option, w, p) for w, p in zip(plan, pads, strict=True)]
    overall = tally(
        [c for w in checks for c in w.key_results.values()],
        [w.miss_distribution for w in checks],
        scenario.period,
        one_kr=len(krs) == 1,
    )
    with language("en"):  # the result's own words, as its JSON
        warnings = [
            x for w in checks for x in _window_warnings(w.start, w.end, w.diagnostics, w.draws)
        ]
        return BacktestResult(
            scenario=scenario,
            option=option,
            draws=checks[-1].draws,
            windows=checks,
            key_results={kr.id: _kr_tally(checks, kr.id, scenario.period) for kr in krs},
            overall=overall,
            advice=advice(scenario, overall),
            warnings=warnings,
        )


def _english(fn, *args):
    with language("en"):
        return fn(*args)


def _window_warnings(first: str, last: str, diag: dict, n_draws: int) -> list[str]:
    """The sampler's warnings of a window's fit, in the current language."""
    from ..model.posterior import diagnostic_warnings

    return [
        _("window {first}..{last}: {warning}").format(
            first=fmt_label(first), last=fmt_label(last), warning=w
        )
        for w in diagnostic_warnings(diag, n_draws)
    ]


def crps(draws: np.ndarray, actual: float) -> float:
    """The continuous ranked probability score of a forecast given by its draws (lower is
    better; in the unit of the value): ``E|X - y| - E|X - X'| / 2``, computed from sorted draws."""
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    n = x.size
    spread = np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / n**2
    return float(np.mean(np.abs(x - actual)) - spread)


def _convolve(dists: list[np.ndarray]) -> np.ndarray:
    out = np.array([1.0])
    for d in dists:
        out = np.convolve(out, d)
    return out


def advice(scenario: Scenario, overall: Tally) -> str | None:
    """What to change in the model when the backtest finds it overconfident (see
    docs/validation.md: iid period effects average away over a quarter; persistent ones do not)."""
    if overall.calibration != "overconfident":
        return None
    mb = scenario.model
    if mb.period_effects == "iid" and mb.drift == "none":
        return _(
            "if the traffic's level wanders, remove `drift: none` from `model:` (the default lets "
            "the level drift as a random walk) and backtest again"
        )
    if mb.period_effects == "iid":
        return _(
            "if good and bad periods come in runs, set `model: {period_effects: ar1}` (period "
            "effects that persist) and backtest again"
        )
    if not (mb.trend and mb.rate_trend):
        return _(
            "if the funnel has been moving steadily, add `trend: true` and `rate_trend: true` to "
            "`model:` and backtest again"
        )
    return None


def tally(checks: list[KRCheck], dists: list[np.ndarray], period: str, *, one_kr: bool) -> Tally:
    """Count misses of the 80% interval and judge them against the model's own expectation."""
    n = len(checks)
    k = sum(not c.inside80 for c in checks)
    null = _convolve(dists)  # distribution of the number of misses if the model were right
    expected = float(np.dot(np.arange(null.size), null))
    p_many = float(null[k:].sum())
    p_few = float(null[: k + 1].sum())
    above = sum(c.percentile > 0.5 for c in checks)
    # Where each value fell, not only inside or out: values far in the tails are rare when the
    # model is right (a share 2 * EXTREME of checks). Several key results in a window move
    # together, so windows are counted (a window is extreme when any of its values is), against
    # the Bonferroni bound K * 2 * EXTREME per window.
    per_window = max(1, n // max(len(dists), 1))
    flags = [c.percentile < EXTREME or c.percentile > 1 - EXTREME for c in checks]
    windows = [any(flags[i : i + per_window]) for i in range(0, n, per_window)]
    n_ext = sum(windows)
    q = min(1.0, per_window * 2 * EXTREME)
    p_ext = float(_binom_sf(n_ext, len(windows), q))
    values = np.array([c.actual for c in checks], dtype=float)
    scores = np.array([c.crps for c in checks], dtype=float)
    crps_mean = float(np.mean(scores)) if n else float("nan")
    rel = float(np.mean(scores / np.maximum(np.abs(values), 1e-12))) if n else float("nan")
    if p_many < ALARM or p_ext < ALARM:
        kind = "overconfident"
    elif p_few < ALARM:
        kind = "cautious"
    else:
        kind = "consistent"
    counted = Tally(
        checks=n,
        outside80=k,
        expected_outside80=expected,
        above_median=above,
        p_too_many=p_many,
        p_too_few=p_few,
        calibration=kind,
        extreme=n_ext,
        p_extreme=p_ext,
        crps=crps_mean,
        crps_relative=rel,
        one_kr=one_kr,
        windows=len(windows),
        per_window=per_window,
    )
    return dataclasses.replace(counted, verdict=_english(verdict_words, counted))


def verdict_words(t: Tally) -> str:
    """The verdict of a tally in the current language (``t.verdict`` is its English form)."""
    k, n = t.outside80, t.checks
    expected = fmt_num(t.expected_outside80, 1)
    if t.one_kr:
        count = ngettext(
            "{k} of {n} actual quarters fell outside the 80% interval (about {expected} expected)",
            "{k} of {n} actual quarters fell outside the 80% interval (about {expected} expected)",
            k,
        )
    else:
        count = ngettext(
            "{k} of {n} actual quarter totals fell outside the 80% interval (about {expected} "
            "expected)",
            "{k} of {n} actual quarter totals fell outside the 80% interval (about {expected} "
            "expected)",
            k,
        )
    count = count.format(k=k, n=n, expected=expected)
    if t.calibration == "overconfident":
        if t.p_too_many < ALARM:
            why = count
        else:
            q = min(1.0, t.per_window * 2 * EXTREME)
            if t.per_window > 1:
                tails = ngettext(
                    "{k} of {n} windows had a value beyond the forecast's {low}-{high} "
                    "percentiles (about {expected} expected)",
                    "{k} of {n} windows had a value beyond the forecast's {low}-{high} "
                    "percentiles (about {expected} expected)",
                    t.extreme,
                )
            elif t.one_kr:
                tails = ngettext(
                    "{k} of {n} actual quarters beyond the forecast's {low}-{high} percentiles "
                    "(about {expected} expected)",
                    "{k} of {n} actual quarters beyond the forecast's {low}-{high} percentiles "
                    "(about {expected} expected)",
                    t.extreme,
                )
            else:
                tails = ngettext(
                    "{k} of {n} actual quarter totals beyond the forecast's {low}-{high} "
                    "percentiles (about {expected} expected)",
                    "{k} of {n} actual quarter totals beyond the forecast's {low}-{high} "
                    "percentiles (about {expected} expected)",
                    t.extreme,
                )
            why = tails.format(
                k=t.extreme,
                n=t.windows,
                low=fmt_pct(EXTREME, 0),
                high=fmt_pct(1 - EXTREME, 0),
                expected=fmt_num(t.windows * q, 1),
            )
        return _(
            "the model was overconfident: {why}; its probabilities are too sure for this funnel"
        ).format(why=why)
    if t.calibration == "cautious":
        return _(
            "the model was cautious: {count}; its intervals are wider than this funnel needed"
        ).format(count=count)
    text = _("consistent with the model's stated uncertainty: {count}").format(count=count)
    if n < 10:
        text += ngettext(
            "; with {n} checks only large errors would show",
            "; with {n} checks only large errors would show",
            n,
        ).format(n=n)
    return text


def _binom_sf(k: int, n: int, q: float) -> float:
    """P(at least k of n) for independent events of probability q."""
    from math import comb

    return sum(comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(k, n + 1))


CALIBRATION = {
    "overconfident": lambda: _("overconfident"),
    "cautious": lambda: _("cautious"),
    "consistent": lambda: _("consistent"),
}


def calibration_words(kind: str) -> str:
    return CALIBRATION[kind]() if kind in CALIBRATION else kind


def render_text(result: BacktestResult) -> str:
    """The terminal table and the verdicts, in the current language."""
    from ..engine.render import fmt_value, kr_label

    scenario = result.scenario
    unit = result.period
    en = get_language() == "en"
    lines = [
        _("Backtest: {title}").format(title=result.title),
        _(
            "{quarters} of {length}, each forecast from the {periods} before it (option: "
            "{option}, {draws} draws)"
        ).format(
            quarters=ngettext("{n} past quarter", "{n} past quarters", len(result.windows)).format(
                n=len(result.windows)
            ),
            length=periods_words(result.horizon, unit),
            periods=period_noun(unit, 2),
            option=result.option,
            draws=result.draws if en else fmt_int(result.draws),
        ),
        "",
    ]
    ratio = {kr.id: kr.is_rate for kr in scenario.key_results}
    head = (
        f"{_('quarter'):<27}{_('key result'):<28}{_('actual'):>12}  "
        f"{pgettext('column', '80% interval'):<27}{_('percentile'):>10}"
    )
    lines += [head, "-" * len(head)]
    outside = _("  outside")
    for w in result.windows:
        span = f"{fmt_label(w.start)}..{fmt_label(w.end)}"
        for kid, c in w.key_results.items():
            r = ratio[kid]
            interval = fmt_interval(fmt_value(c.interval80[0], r), fmt_value(c.interval80[1], r))
            flag = "" if c.inside80 else outside
            lines.append(
                f"{span:<27}{kid[:22]:<24}{fmt_value(c.actual, r):>12}  "
                f"{interval:<27}{fmt_pct(c.percentile, 0):>9}{flag}"
            )
            span = ""
    lines.append("")
    for kid, t in result.key_results.items():
        lines.append(
            _(
                "{kr}: {verdict}. Mean CRPS {crps} ({share} of the actual value; lower is better)."
            ).format(
                kr=kr_label(scenario, kid),
                verdict=t.verdict if en else verdict_words(t),
                crps=fmt_value(t.crps, ratio[kid]),
                share=fmt_pct(t.crps_relative, 1),
            )
        )
    verdict = result.overall.verdict if en else verdict_words(result.overall)
    lines += ["", _("Verdict: {verdict}.").format(verdict=verdict)]
    if result.advice:
        tip = result.advice if en else advice(scenario, result.overall)
        lines.append(_("Next: {advice}.").format(advice=tip))
    for w in warnings_words(result):
        lines.append(_("warning: {warning}").format(warning=w))
    return "\n".join(lines)


def warnings_words(result: BacktestResult) -> list[str]:
    """The sampler's warnings of the windows' fits in the current language (the result's own are
    English)."""
    if get_language() == "en":
        return list(result.warnings)
    out = []
    for w in result.windows:
        out += _window_warnings(w.start, w.end, w.diagnostics, w.draws)
    return out


# Candidate `model:` settings that `krsim backtest --models` compares on the user's history.
CANDIDATES: dict[str, dict[str, Any]] = {
    "scenario": {},  # the scenario's own model block
    "default": {
        "seasonality": "auto",
        "drift": "random_walk",
        "period_effects": "iid",
        "trend": False,
        "rate_trend": False,
    },
    "steady": {"seasonality": "none", "drift": "none", "period_effects": "iid"},
    "trend": {"drift": "random_walk", "period_effects": "iid", "trend": True, "rate_trend": True},
    "ar1": {"period_effects": "ar1"},
}


@dataclass(frozen=True, kw_only=True)
class ModelRank:
    """A candidate `model:` setting and its backtest."""

    name: str
    settings: Mapping[str, Any]  # the `model:` keys that differ from the scenario's
    result: BacktestResult

    def __post_init__(self) -> None:
        freeze_fields(self, "settings")

    @property
    def score(self) -> float:
        return self.result.overall.crps_relative

    @property
    def divergent_windows(self) -> int:
        return sum(w.diagnostics["divergences"] > 0 for w in self.result.windows)


def parse_models(text: str) -> list[str]:
    """The candidate names of ``--models`` (comma-separated; ``all`` for every candidate)."""
    names = list(CANDIDATES) if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in CANDIDATES]
    if bad or not names:
        raise InputError(
            [
                f"--models: unknown candidate {', '.join(map(repr, bad)) or '(none)'}; choose from "
                f"{', '.join(CANDIDATES)} or all"
            ]
        )
    return names


def rank_models(
    scenario: Scenario,
    history: CountTable,
    names: list[str],
    *,
    windows: int | None = None,
    draws: int | None = None,
    seed: int | None = None,
) -> list[ModelRank]:
    """Backtest each candidate `model:` setting on the same windows; best (lowest mean relative
    CRPS, a proper score: sharp and calibrated forecasts both lower it) first. ``draws``,
    ``seed``: the scenario's model settings overridden (`Scenario.with_overrides`)."""
    if draws is not None or seed is not None:
        scenario = scenario.with_overrides(seed=seed, draws=draws)
    out = []
    for name in names:
        upd = {k: v for k, v in CANDIDATES[name].items() if getattr(scenario.model, k) != v}
        s = scenario.model_copy(update={"model": scenario.model.model_copy(update=upd)})
        s._source, s._text = scenario._source, scenario._text
        logger.info(_("Backtesting the model {name}...").format(name=repr(name)))
        out.append(ModelRank(name=name, settings=upd, result=backtest(s, history, windows=windows)))
    return sorted(out, key=lambda r: (np.nan_to_num(r.score, nan=np.inf), r.name))


def model_block(settings: Mapping[str, Any]) -> str:
    """The `model:` block to paste for a candidate's settings."""
    if not settings:
        return _("(keep the scenario's `model:` block as it is)")
    lines = ["model:"]
    for k, v in settings.items():
        lines.append(f"  {k}: {str(v).lower() if isinstance(v, bool) else v}")
    return "\n".join(lines)


def render_ranking(ranks: list[ModelRank]) -> str:
    """The candidates' ranking as a terminal table, in the current language."""
    r0 = ranks[0].result
    heads = (_("model"), _("mean CRPS"), _("80% coverage"), _("calibration"))
    divergent = _("windows with divergences")
    lines = [
        _("Model comparison: {title}").format(title=r0.title),
        _(
            "{n} past quarters of {length}, each candidate fitted before each quarter; ranked by "
            "the mean CRPS of the key results (relative to the actual value; lower is better)"
        ).format(
            n=len(r0.windows),
            length=f"{r0.horizon} {r0.period}s"
            if get_language() == "en"
            else periods_words(r0.horizon, r0.period),
        ),
        "",
        f"{heads[0]:<10}{heads[1]:>10}  {heads[2]:>12}  {heads[3]:<14}{divergent:>25}",
    ]
    for r in ranks:
        t = r.result.overall
        lines.append(
            f"{r.name:<10}{fmt_pct(r.score, 1):>10}  {fmt_pct(t.coverage80, 0):>12}  "
            f"{calibration_words(t.calibration):<14}{r.divergent_windows:>25}"
        )
    best = ranks[0]
    lines += [
        "",
        _("Best on this history: {name}. To use it:").format(name=best.name),
        model_block(best.settings),
    ]
    if best.result.overall.calibration != "consistent":
        lines.append(
            _(
                "(even the best candidate was {calibration} here: treat its probabilities with "
                "care)"
            ).format(calibration=calibration_words(best.result.overall.calibration))
        )
    if len(r0.windows) < 6:
        lines.append(
            _("With {n} windows, differences of a few points are within chance.").format(
                n=len(r0.windows)
            )
        )
    return "\n".join(lines)


def ranking_dict(ranks: list[ModelRank]) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": r.name,
                "settings": dict(r.settings),
                "crps_relative": r.score,
                "coverage80": r.result.overall.coverage80,
                "calibration": r.result.overall.calibration,
                "divergent_windows": r.divergent_windows,
                "backtest": r.result.to_dict(),
            }
            for r in ranks
        ],
        "best": ranks[0].name,
        "block": _english(model_block, ranks[0].settings),
    }
