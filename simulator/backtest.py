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

from .data import CountTable, plural, read_history
from .scenario import InputError, Option, Scenario

LEVEL = 0.8  # the central interval whose coverage is checked
MAX_DEFAULT_WINDOWS = 6
ALARM = 0.05  # a verdict other than "consistent" needs a tail probability below this
EXTREME = 0.02  # a value below this predictive percentile (or above 1 - it) is far in a tail


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
    crps: float = float("nan")  # continuous ranked probability score, in the key result's unit


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
    extreme: int = 0  # actual values beyond the forecast's 2nd-98th percentiles
    p_extreme: float = 1.0  # P(at least this many | the model is right)
    crps: float = float("nan")  # mean CRPS over the checks, in the key result's unit
    crps_relative: float = float("nan")  # mean CRPS / |actual|

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
                "beyond_2_98_percentiles": t.extreme,
                "p_that_many_beyond": t.p_extreme,
                "crps": t.crps,
                "crps_relative": t.crps_relative,
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
                            "crps": c.crps,
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
    new._source, new._text = scenario._source, scenario._text
    return new, "status_quo"


def backtest(
    scenario: Scenario,
    history: CountTable | None = None,
    *,
    windows: int | None = None,
    log=None,
) -> BacktestResult:
    """Fit before each of the last windows, forecast it, and score the forecast against what happened."""
    from . import decision, forecast, model, posterior

    log = log or (lambda msg: print(msg, file=sys.stderr))
    history = history if history is not None else read_history(scenario)
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
        # a total value with an empty cell in the window is unknown (NaN): that KR is not scored
        actual_totals |= {
            f"{s}.value": np.asarray(v[start:end].sum()) for s, v in history.values.items()
        }
        per_kr: dict[str, KRCheck] = {}
        outside_draws = np.zeros((len(krs), fit.n_draws), dtype=bool)
        for i, kr in enumerate(krs):
            if any(np.isnan(actual_totals[t]) for t in kr.stages):
                continue
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
                crps=crps(pred, actual),
            )
            # The model's own view of how often its forecast leaves the interval, jointly over the
            # key results (they move together: one traffic, shared stages).
            outside_draws[i] = (pred < lo) | (pred > hi)
        outside_draws = outside_draws[[i for i, kr in enumerate(krs) if kr.id in per_kr]]
        n_out = outside_draws.sum(axis=0)
        misses = np.bincount(n_out, minlength=len(krs) + 1) / n_out.size
        diag = dict(fit.diagnostics)
        for w in posterior.diagnostic_warnings(diag, fit.n_draws):
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
        scored = [w for w in checks if kr.id in w.key_results]
        q = [w.key_results[kr.id].p_outside for w in scored]
        dists = [np.array([1 - x, x]) for x in q]
        per_kr_tally[kr.id] = _tally(
            [w.key_results[kr.id] for w in scored], dists, scenario.period, one_kr=True
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
        return (
            "if the traffic's level wanders, remove `drift: none` from `model:` (the default lets "
            "the level drift as a random walk) and backtest again"
        )
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
    tails = (
        f"{n_ext} of {len(windows)} {'windows had a value' if per_window > 1 else what} beyond "
        f"the forecast's {EXTREME:.0%}-{1 - EXTREME:.0%} percentiles (about "
        f"{len(windows) * q:.1f} expected)"
    )
    values = np.array([c.actual for c in checks], dtype=float)
    scores = np.array([c.crps for c in checks], dtype=float)
    crps_mean = float(np.mean(scores)) if n else float("nan")
    rel = float(np.mean(scores / np.maximum(np.abs(values), 1e-12))) if n else float("nan")
    if p_many < ALARM or p_ext < ALARM:
        kind = "overconfident"
        why = count if p_many < ALARM else tails
        text = f"the model was overconfident: {why}; its probabilities are too sure for this funnel"
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
        extreme=n_ext,
        p_extreme=p_ext,
        crps=crps_mean,
        crps_relative=rel,
    )


def _binom_sf(k: int, n: int, q: float) -> float:
    """P(at least k of n) for independent events of probability q."""
    from math import comb

    return sum(comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(k, n + 1))


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
    ratio = {kr.id: kr.is_rate for kr in scenario.key_results}
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
        lines.append(
            f"{kr_label(scenario, kid)}: {t.verdict}. Mean CRPS {fmt_value(t.crps, ratio[kid])} "
            f"({t.crps_relative:.1%} of the actual value; lower is better)."
        )
    lines += ["", f"Verdict: {result.overall.verdict}."]
    if result.advice:
        lines.append(f"Next: {result.advice}.")
    for w in result.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


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
    name: str
    settings: dict[str, Any]  # the `model:` keys that differ from the scenario's
    result: BacktestResult

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
    log=None,
) -> list[ModelRank]:
    """Backtest each candidate `model:` setting on the same windows; best (lowest mean relative
    CRPS, a proper score: sharp and calibrated forecasts both lower it) first."""
    out = []
    for name in names:
        upd = {k: v for k, v in CANDIDATES[name].items() if getattr(scenario.model, k) != v}
        s = scenario.model_copy(update={"model": scenario.model.model_copy(update=upd)})
        s._source, s._text = scenario._source, scenario._text
        (log or (lambda m: print(m, file=sys.stderr)))(f"Backtesting the model {name!r}...")
        out.append(
            ModelRank(
                name=name, settings=upd, result=backtest(s, history, windows=windows, log=log)
            )
        )
    return sorted(out, key=lambda r: (np.nan_to_num(r.score, nan=np.inf), r.name))


def model_block(settings: dict[str, Any]) -> str:
    """The `model:` block to paste for a candidate's settings."""
    if not settings:
        return "(keep the scenario's `model:` block as it is)"
    lines = ["model:"]
    for k, v in settings.items():
        lines.append(f"  {k}: {str(v).lower() if isinstance(v, bool) else v}")
    return "\n".join(lines)


def render_ranking(ranks: list[ModelRank]) -> str:
    r0 = ranks[0].result
    lines = [
        f"Model comparison: {r0.title}",
        f"{len(r0.windows)} past quarters of {r0.horizon} {r0.period}s, each candidate fitted "
        "before each quarter; ranked by the mean CRPS of the key results (relative to the actual "
        "value; lower is better)",
        "",
        f"{'model':<10}{'mean CRPS':>10}  {'80% coverage':>12}  {'calibration':<14}"
        f"{'windows with divergences':>25}",
    ]
    for r in ranks:
        t = r.result.overall
        lines.append(
            f"{r.name:<10}{r.score:>10.1%}  {t.coverage80:>12.0%}  {t.calibration:<14}"
            f"{r.divergent_windows:>25}"
        )
    best = ranks[0]
    lines += ["", f"Best on this history: {best.name}. To use it:", model_block(best.settings)]
    if best.result.overall.calibration != "consistent":
        lines.append(
            f"(even the best candidate was {best.result.overall.calibration} here: treat its "
            "probabilities with care)"
        )
    if len(r0.windows) < 6:
        lines.append(
            f"With {len(r0.windows)} windows, differences of a few points are within chance."
        )
    return "\n".join(lines)


def ranking_dict(ranks: list[ModelRank]) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": r.name,
                "settings": r.settings,
                "crps_relative": r.score,
                "coverage80": r.result.overall.coverage80,
                "calibration": r.result.overall.calibration,
                "divergent_windows": r.divergent_windows,
                "backtest": r.result.to_dict(),
            }
            for r in ranks
        ],
        "best": ranks[0].name,
        "block": model_block(ranks[0].settings),
    }
