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

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import CountTable, plural
from .scenario import InputError, Option, Scenario

LEVEL = 0.8  # the central interval whose coverage is checked
MAX_DEFAULT_WINDOWS = 6
ALARM = 0.05  # a verdict other than "consistent" needs a tail probability below this


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
    actual: float
    median: float
    interval80: tuple[float, float]
    percentile: float
    inside80: bool
    p_outside: float  # the forecast's own chance of falling outside its interval (about 0.2)


@dataclass(frozen=True, kw_only=True)
class WindowCheck:
    start: str  # first period label of the window
    end: str  # last period label of the window
    train_periods: int
    key_results: dict[str, KRCheck]
    diagnostics: dict[str, Any]
    # the forecast's own chance that k = 0..K of the key results fall outside their intervals
    miss_distribution: np.ndarray = field(repr=False)


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
    verdict: str

    @property
    def coverage80(self) -> float:
        return 1 - self.outside80 / self.checks if self.checks else float("nan")


@dataclass(frozen=True, kw_only=True)
class BacktestResult:
    scenario: str
    title: str
    option: str
    period: str
    horizon: int
    seed: int
    draws: int
    windows: list[WindowCheck]
    key_results: dict[str, Tally]
    overall: Tally
    advice: str | None
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        def tally(t: Tally) -> dict[str, Any]:
            return {
                "checks": t.checks,
                "outside80": t.outside80,
                "expected_outside80": t.expected_outside80,
                "coverage80": t.coverage80,
                "above_median": t.above_median,
                "p_too_many_outside": t.p_too_many,
                "p_too_few_outside": t.p_too_few,
                "calibration": t.calibration,
                "verdict": t.verdict,
            }

        return {
            "scenario": self.scenario,
            "title": self.title,
            "option": self.option,
            "period": self.period,
            "horizon": self.horizon,
            "seed": self.seed,
            "draws": self.draws,
            "level": LEVEL,
            "windows": [
                {
                    "start": w.start,
                    "end": w.end,
                    "train_periods": w.train_periods,
                    "key_results": {
                        k: {
                            "actual": c.actual,
                            "median": c.median,
                            "interval80": list(c.interval80),
                            "percentile": c.percentile,
                            "inside80": c.inside80,
                        }
                        for k, c in w.key_results.items()
                    },
                    "diagnostics": w.diagnostics,
                }
                for w in self.windows
            ],
            "key_results": {k: tally(t) for k, t in self.key_results.items()},
            "overall": tally(self.overall),
            "verdict": self.overall.verdict,
            "advice": self.advice,
            "warnings": self.warnings,
        }


def _no_change_option(scenario: Scenario) -> tuple[Scenario, str]:
    """The option that describes the product as it ran: the first without changes (one is added
    when every option changes something)."""
    for oid, opt in scenario.options.items():
        if not opt.changes:
            return scenario, oid
    new = scenario.model_copy(update={"options": {"status_quo": Option(label="No change")}})
    new._source, new._text, new._history = scenario._source, scenario._text, scenario._history
    return new, "status_quo"


def backtest(
    scenario: Scenario,
    history: CountTable | None = None,
    *,
    windows: int | None = None,
    log=None,
) -> BacktestResult:
    """Fit before each of the last windows, forecast it, and score the forecast against what happened."""
    from . import decision, forecast, model

    log = log or (lambda msg: print(msg, file=sys.stderr))
    history = history if history is not None else scenario._history
    H = scenario.horizon
    plan = plan_windows(len(history), H, windows)
    scenario, option = _no_change_option(scenario)
    krs = scenario.key_results
    checks: list[WindowCheck] = []
    warnings: list[str] = []
    draws = 0
    for start, end in plan:
        train = truncate(history, 0, start)
        fit = model.fit(scenario, train, log=log)
        shared = forecast.prepare(scenario, fit, H)
        counts = forecast.simulate_option(scenario, shared, option, {})
        draws = fit.n_draws
        totals = {s: c.sum(axis=1) for s, c in counts.items()}
        actual_totals = {s: np.asarray(history.counts[s][start:end].sum()) for s in scenario.funnel}
        per_kr: dict[str, KRCheck] = {}
        outside_draws = np.zeros((len(krs), fit.n_draws), dtype=bool)
        for i, kr in enumerate(krs):
            pred = decision.kr_value(kr, totals)
            actual = float(decision.kr_value(kr, actual_totals))
            lo, med, hi = np.quantile(pred, [(1 - LEVEL) / 2, 0.5, (1 + LEVEL) / 2])
            per_kr[kr.id] = KRCheck(
                actual=actual,
                median=float(med),
                interval80=(float(lo), float(hi)),
                percentile=percentile(pred, actual),
                inside80=bool(lo <= actual <= hi),
                p_outside=float(np.mean((pred < lo) | (pred > hi))),
            )
            # The model's own view of how often its forecast leaves the interval, jointly over the
            # key results (they move together: one traffic, shared stages).
            outside_draws[i] = (pred < lo) | (pred > hi)
        n_out = outside_draws.sum(axis=0)
        misses = np.bincount(n_out, minlength=len(krs) + 1) / n_out.size
        diag = dict(fit.diagnostics)
        for w in model.diagnostic_warnings(diag, fit.n_draws):
            warnings.append(f"window {history.labels[start]}..{history.labels[end - 1]}: {w}")
        checks.append(
            WindowCheck(
                start=history.labels[start],
                end=history.labels[end - 1],
                train_periods=start,
                key_results=per_kr,
                diagnostics={
                    "rhat_max": diag["rhat_max"],
                    "ess_bulk_min": diag["ess_bulk_min"],
                    "divergences": diag["divergences"],
                },
                miss_distribution=misses,
            )
        )

    per_kr_tally = {}
    for kr in krs:
        q = [w.key_results[kr.id].p_outside for w in checks]
        dists = [np.array([1 - x, x]) for x in q]
        per_kr_tally[kr.id] = _tally(
            [w.key_results[kr.id] for w in checks], dists, scenario.period, one_kr=True
        )
    overall = _tally(
        [c for w in checks for c in w.key_results.values()],
        [w.miss_distribution for w in checks],
        scenario.period,
        one_kr=len(krs) == 1,
    )
    return BacktestResult(
        scenario=scenario.id,
        title=scenario.title,
        option=option,
        period=scenario.period,
        horizon=H,
        seed=scenario.seed,
        draws=draws,
        windows=checks,
        key_results=per_kr_tally,
        overall=overall,
        advice=advice(scenario, overall),
        warnings=warnings,
    )


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
    if mb.period_effects == "iid":
        return (
            "if good and bad periods come in runs, set `model: {period_effects: ar1}` (period "
            "effects that persist) and backtest again"
        )
    if not (mb.trend and mb.rate_trend):
        return (
            "if the funnel has been moving steadily, add `trend: true` and `rate_trend: true` to "
            "`model:` and backtest again"
        )
    return None


def _tally(checks: list[KRCheck], dists: list[np.ndarray], period: str, *, one_kr: bool) -> Tally:
    """Count misses of the 80% interval and judge them against the model's own expectation."""
    n = len(checks)
    k = sum(not c.inside80 for c in checks)
    null = _convolve(dists)  # distribution of the number of misses if the model were right
    expected = float(np.dot(np.arange(null.size), null))
    p_many = float(null[k:].sum())
    p_few = float(null[: k + 1].sum())
    above = sum(c.percentile > 0.5 for c in checks)
    what = f"actual {'quarters' if one_kr else 'quarter totals'}"
    count = f"{k} of {n} {what} fell outside the 80% interval (about {expected:.1f} expected)"
    if p_many < ALARM:
        kind = "overconfident"
        text = (
            f"the model was overconfident: {count}; its probabilities are too sure for this funnel"
        )
    elif p_few < ALARM:
        kind = "cautious"
        text = f"the model was cautious: {count}; its intervals are wider than this funnel needed"
    else:
        kind = "consistent"
        text = f"consistent with the model's stated uncertainty: {count}"
        if n < 10:
            text += f"; with {n} checks only large errors would show"
    return Tally(
        checks=n,
        outside80=k,
        expected_outside80=expected,
        above_median=above,
        p_too_many=p_many,
        p_too_few=p_few,
        calibration=kind,
        verdict=text,
    )


def render_text(result: BacktestResult, scenario: Scenario) -> str:
    """The terminal table and the verdicts."""
    from .render import fmt_value, kr_label

    unit = result.period
    lines = [
        f"Backtest: {result.title}",
        f"{plural(len(result.windows), 'past quarter')} of {plural(result.horizon, unit)}, "
        "each forecast from the "
        f"{unit}s before it (option: {result.option}, {result.draws} draws)",
        "",
    ]
    ratio = {kr.id: kr.is_ratio for kr in scenario.key_results}
    head = (
        f"{'quarter':<27}{'key result':<28}{'actual':>12}  {'80% interval':<27}{'percentile':>10}"
    )
    lines += [head, "-" * len(head)]
    for w in result.windows:
        span = f"{w.start}..{w.end}"
        for kid, c in w.key_results.items():
            r = ratio[kid]
            interval = f"[{fmt_value(c.interval80[0], r)}, {fmt_value(c.interval80[1], r)}]"
            flag = "" if c.inside80 else "  outside"
            lines.append(
                f"{span:<27}{kid[:22]:<24}{fmt_value(c.actual, r):>12}  "
                f"{interval:<27}{c.percentile:>9.0%}{flag}"
            )
            span = ""
    lines.append("")
    for kid, t in result.key_results.items():
        lines.append(f"{kr_label(scenario, kid)}: {t.verdict}.")
    lines += ["", f"Verdict: {result.overall.verdict}."]
    if result.advice:
        lines.append(f"Next: {result.advice}.")
    for w in result.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
