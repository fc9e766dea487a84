"""`krsim track`: the quarter in flight. Actuals so far -> the odds of still reaching each target.

The actuals are the first k periods of the quarter, observed under the launched option. They are k
more periods of the same funnel, so the model conditions on them (`model.build_model` with
``launched``): each actual period gets its own period effects from the hierarchical prior,
continuing the history's time index (trend, AR(1)), and the option's changes act on its rates
through the same likelihood an experiment's arm gets (`experiment.py`) — without a control, the
history is the comparison. The remaining periods are forecast from that posterior, continuing the
time index; a key result's quarter value is the actuals plus the forecast, draw by draw, and
everything else (P(met), grades, MC errors) is `decision`'s, as in `krsim run`. With k = 0 there is
nothing to condition on: the fit, the forecast and so the numbers are `run`'s.

Per key result (DESIGN section 6): the value to date (a ratio: of the totals so far); the pace
needed over the remaining periods to just reach ``met_at`` (a count: per period; a ratio: the rate
over the rest, given the forecast's median of the rest's denominator); P(met by the end) with its
MC error; expected grade; median and 80% interval of the quarter's value; a status from P(met)
(`scenario.Tracking`); and the surprise: the mid-rank percentile of the value to date in the
forecast made before the quarter (the prior predictive of the first k periods under the option).

What now (`what_now`): the rest of the quarter is also simulated under every other option, as a
switch made now — from the same posterior and the same shared draws (`forecast.prepare`, common
random numbers), the launched option's change parameters at their posterior, the others' at their
priors — and each quarter (actuals + that rest) is evaluated like the launched one. The pick
maximises P(all met) (every P(all met) below `SWITCH_FLOOR`: the expected grade); options within 2
Monte Carlo errors of the paired per-draw difference go to the higher expected grade, an exact tie
to staying. With k = 0 these are `run`'s forecasts of each option; with k = H nothing is left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import model
from ..engine import decision, forecast, soundness
from ..engine.pipeline import SimulationResult, decide
from ..engine.summary import Diagnostics
from ..i18n import _, fmt_g, fmt_interval, fmt_num, fmt_pct, fmt_signed, language, period_noun
from ..io.cache import versions
from ..io.data import CountTable, read_actuals, read_history
from ..io.scenario import InputError, KeyResult, Scenario, Tracking, did_you_mean
from ..model.changes import ChangePlan
from ..model.posterior import Fit, diagnostic_warnings
from ..version import __version__
from .records import Belief, ChangeBelief, change_beliefs, freeze_fields

SURPRISE_LOW, SURPRISE_HIGH = 0.05, 0.95  # percentiles of the forecast before the quarter


# -------------------------------------------------------------------------------- inputs


def launched_option(scenario: Scenario, option: str | None) -> str:
    """The option the actuals were observed under: given, else the option without changes."""
    if option is None:
        return scenario.control_option
    if option not in scenario.options:
        opts = list(scenario.options)
        raise InputError(
            [
                f"--option: unknown option {option!r}{did_you_mean(option, opts)}; "
                f"options: {', '.join(opts)}"
            ]
        )
    return option


def thresholds(
    scenario: Scenario, at_risk_below: float | None = None, off_track_below: float | None = None
) -> Tracking:
    """The scenario's `tracking:` thresholds, overridden by the command line's."""
    t = scenario.tracking
    a = t.at_risk_below if at_risk_below is None else at_risk_below
    o = t.off_track_below if off_track_below is None else off_track_below
    problems = []
    for flag, v in (("--at-risk-below", a), ("--off-track-below", o)):
        if not 0 < v < 1:
            problems.append(f"{flag}: must be a probability strictly between 0 and 1, got {v:g}")
    if not problems and o > a:
        problems.append(
            f"--off-track-below: {o:g} is above the at-risk threshold {a:g}; off track must be "
            "the lower one"
        )
    if problems:
        raise InputError(problems)
    return Tracking(at_risk_below=a, off_track_below=o)


def read_launched_actuals(scenario: Scenario, history: CountTable, path, option: str) -> CountTable:
    """The actuals table, checked against the history and the launched option's changes."""
    return read_actuals(scenario, history, path, fed=ChangePlan.of(scenario, option).fed)


# ---------------------------------------------------------------------------- computation


def status_of(p_met: float, th: Tracking) -> str:
    if p_met < th.off_track_below:
        return "off_track"
    if p_met < th.at_risk_below:
        return "at_risk"
    return "on_track"


def mid_rank(x: float, sample: np.ndarray) -> float:
    """Where ``x`` falls in ``sample``: the share below it plus half the share equal to it."""
    sample = np.asarray(sample, dtype=float)
    return float((np.sum(sample < x) + 0.5 * np.sum(sample == x)) / sample.size)


def running_value(kr: KeyResult, counts: Mapping[str, np.ndarray]) -> np.ndarray:
    """A key result accumulated over the quarter per draw (shape draws x horizon): a total's
    running sum, a ratio's running ratio of totals (NaN while its denominator is 0)."""
    if kr.is_ratio:
        a, b = (np.cumsum(counts[s], axis=1) for s in kr.stages)
        return np.divide(a, b, out=np.full(a.shape, np.nan), where=b > 0)
    return np.cumsum(counts[kr.stages[0]], axis=1).astype(float)


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


@dataclass(frozen=True)
class KRTrack:
    """One key result in flight."""

    id: str
    to_date: float | None  # None: a ratio with nothing in its denominator yet
    target: float
    met_at: float
    needed_pace: float | None  # None when no period is left
    median: float
    interval80: tuple[float, float]
    p_met: float
    p_met_se: float
    expected_grade: float
    expected_grade_se: float
    p_progress70: float
    status: str
    surprise_percentile: float | None  # None when no period is done
    p_met_before: float
    p_met_before_se: float

    @property
    def surprising(self) -> bool:
        s = self.surprise_percentile
        return s is not None and (s < SURPRISE_LOW or s > SURPRISE_HIGH)

    def to_dict(self) -> dict[str, Any]:
        return {
            "to_date": self.to_date,
            "target": self.target,
            "met_at": self.met_at,
            "needed_pace": self.needed_pace,
            "median": self.median,
            "interval80": list(self.interval80),
            "p_met": self.p_met,
            "p_met_se": self.p_met_se,
            "expected_grade": self.expected_grade,
            "status": self.status,
            "surprise_percentile": self.surprise_percentile,
            # added fields (DESIGN: fields may be added)
            "expected_grade_se": self.expected_grade_se,
            "p_progress70": self.p_progress70,
            "surprising": self.surprising,
            "p_met_before": self.p_met_before,
            "p_met_before_se": self.p_met_before_se,
        }


@dataclass(frozen=True)
class Paths:
    """Per-draw counts of the quarter under the launched option, shape (draws, horizon): the
    actuals repeated in the first k columns, the forecast in the others."""

    counts: dict[str, np.ndarray] = field(repr=False)
    chains: int


def quarter_paths(
    actuals: dict[str, np.ndarray], rest: dict[str, np.ndarray], draws: int, chains: int
) -> Paths:
    """Actuals (per stage, k periods) followed by the forecast of the rest (draws x (h - k))."""
    out = {}
    for s, rs in rest.items():
        a = np.broadcast_to(np.asarray(actuals[s], dtype=float), (draws, len(actuals[s])))
        out[s] = np.concatenate([a, np.asarray(rs, dtype=float).reshape(draws, -1)], axis=1)
    return Paths(out, chains)


def assess(
    scenario: Scenario,
    tg: dict[str, decision.KRTarget],
    actuals: dict[str, np.ndarray],
    now: Paths,
    before: Paths,
    th: Tracking,
) -> tuple[dict[str, KRTrack], decision.OptionEval, decision.OptionEval]:
    """Every key result's tracking numbers from the quarter's paths now (actuals + forecast) and
    before the quarter (the forecast `run` makes), with the estimators of `krsim run`."""
    k = len(next(iter(actuals.values())))
    H = scenario.horizon
    ev_now = decision.evaluate_option(scenario, now.counts, tg)
    ev_before = decision.evaluate_option(scenario, before.counts, tg)
    done = {s: float(np.sum(v)) for s, v in actuals.items()}
    rest_total = {s: c[:, k:].sum(axis=1) for s, c in now.counts.items()}
    first_k = {s: c[:, :k].sum(axis=1) for s, c in before.counts.items()}
    out = {}
    for kr in scenario.key_results:
        t = tg[kr.id]
        m = t.met_at
        to_date = _to_date(kr, done)
        pace = _needed_pace(kr, m, done, rest_total, H - k)
        v, met, g = ev_now.values[kr.id], ev_now.met[kr.id], ev_now.grades[kr.id]
        lo, med, hi = np.quantile(v, [0.1, 0.5, 0.9])
        p_met = float(met.mean())
        surprise = None
        if k > 0 and to_date is not None:
            surprise = mid_rank(to_date, decision.kr_value(kr, first_k))
        met_b = ev_before.met[kr.id].astype(float)
        out[kr.id] = KRTrack(
            id=kr.id,
            to_date=to_date,
            target=t.target,
            met_at=m,
            needed_pace=pace,
            median=float(med),
            interval80=(float(lo), float(hi)),
            p_met=p_met,
            p_met_se=decision.mc_se(met.astype(float), now.chains),
            expected_grade=float(g.mean()),
            expected_grade_se=decision.mc_se(g, now.chains),
            p_progress70=float((g >= 0.7).mean()),
            status=status_of(p_met, th),
            surprise_percentile=surprise,
            p_met_before=float(met_b.mean()),
            p_met_before_se=decision.mc_se(met_b, before.chains),
        )
    return out, ev_now, ev_before


def _to_date(kr: KeyResult, done: dict[str, float]) -> float | None:
    if kr.is_ratio:
        a, b = kr.stages
        return _ratio(done[a], done[b])
    return done[kr.stages[0]]


def _needed_pace(
    kr: KeyResult, m: float, done: dict[str, float], rest: dict[str, np.ndarray], left: int
) -> float | None:
    """The value per remaining period (a ratio: the rate over the rest) that just reaches ``m``.

    For a ratio a/b the rest's denominator is not known yet; the forecast's median is used, so the
    pace is the rate r with (a_done + r B) / (b_done + B) = m."""
    if left == 0:
        return None
    if not kr.is_ratio:
        return (m - done[kr.stages[0]]) / left
    a, b = kr.stages
    B = float(np.median(rest[b]))
    if B <= 0:
        return None
    return (m * (done[b] + B) - done[a]) / B


# ------------------------------------------------------------------------------- what now

SWITCH_FLOOR = 0.01  # when every option's P(all met) is below it, options compare on grade


@dataclass(frozen=True)
class OptionNow:
    """One option for the rest of the quarter (the launched one continued, or a switch to it
    now), evaluated on the quarter's paths; the gains are its per-draw values minus the launched
    option's, paired draw by draw (common random numbers), with their Monte Carlo errors."""

    option: str
    launched: bool
    p_all_met: float
    p_all_met_se: float
    expected_grade: float
    expected_grade_se: float
    p_met: Mapping[str, float]
    p_met_se: Mapping[str, float]
    p_all_met_gain: float
    p_all_met_gain_se: float
    expected_grade_gain: float
    expected_grade_gain_se: float

    def __post_init__(self) -> None:
        freeze_fields(self, "p_met", "p_met_se")

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_all_met": self.p_all_met,
            "p_all_met_se": self.p_all_met_se,
            "expected_grade": self.expected_grade,
            "expected_grade_se": self.expected_grade_se,
            "key_results": dict(self.p_met),
            "launched": self.launched,
            # added fields
            "key_results_se": dict(self.p_met_se),
            "p_all_met_gain": self.p_all_met_gain,
            "p_all_met_gain_se": self.p_all_met_gain_se,
            "expected_grade_gain": self.expected_grade_gain,
            "expected_grade_gain_se": self.expected_grade_gain_se,
        }


@dataclass(frozen=True)
class WhatNow:
    """Staying with the launched option against switching now to each other one: the table, the
    option the rule picks, the best alternative to the launched one, what they were compared on
    (``p_all_met``, or ``expected_grade`` when every P(all met) is below `SWITCH_FLOOR`) and the
    sentence that says it."""

    options: Mapping[str, OptionNow]
    launched: str
    pick: str
    best_other: str | None  # None: the scenario has no other option
    compared_on: str
    sentence: str

    def __post_init__(self) -> None:
        freeze_fields(self, "options")

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.pick,
            "best_alternative": self.best_other,
            "compared_on": self.compared_on,
            "sentence": self.sentence,
        }


def option_now(
    scenario: Scenario,
    ev: decision.OptionEval,
    launched_ev: decision.OptionEval,
    option: str,
    launched: str,
    chains: int,
) -> OptionNow:
    """An option's P(each KR met), P(all met) and expected grade with their Monte Carlo errors,
    and its paired gains over the launched option."""
    se = decision.mc_se
    same = option == launched
    gain_all = ev.all_met - launched_ev.all_met
    gain_grade = ev.grade - launched_ev.grade
    return OptionNow(
        option=option,
        launched=same,
        p_all_met=float(ev.all_met.mean()),
        p_all_met_se=se(ev.all_met, chains),
        expected_grade=float(ev.grade.mean()),
        expected_grade_se=se(ev.grade, chains),
        p_met={kr.id: float(ev.met[kr.id].mean()) for kr in scenario.key_results},
        p_met_se={kr.id: se(ev.met[kr.id].astype(float), chains) for kr in scenario.key_results},
        p_all_met_gain=float(gain_all.mean()),
        p_all_met_gain_se=0.0 if same else se(gain_all, chains),
        expected_grade_gain=float(gain_grade.mean()),
        expected_grade_gain_se=0.0 if same else se(gain_grade, chains),
    )


def pick_now(
    evals: dict[str, decision.OptionEval],
    candidates: list[str],
    on: str,
    chains: int,
    prefer: str | None = None,
) -> str:
    """The candidate with the best mean of ``on`` (``all_met`` or ``grade``) per draw; the
    candidates within a near-tie of it (`decision.NEAR_TIE` or 2 Monte Carlo errors of the paired
    difference, as the recommendation counts one) go to the higher expected grade, and an exact
    tie to ``prefer``."""
    per = {o: getattr(evals[o], on) for o in candidates}
    mean = {o: float(v.mean()) for o, v in per.items()}
    top = max(candidates, key=lambda o: mean[o])
    near = [
        o
        for o in candidates
        if mean[top] - mean[o]
        <= max(decision.NEAR_TIE, 2 * decision.mc_se(per[top] - per[o], chains))
    ]
    grade = {o: float(evals[o].grade.mean()) for o in near}
    best = max(grade.values())
    ties = [o for o in near if grade[o] >= best - 1e-12]
    return prefer if prefer in ties else ties[0]


def what_now(
    scenario: Scenario,
    evals: dict[str, decision.OptionEval],
    launched: str,
    chains: int,
    left: int,
) -> WhatNow | None:
    """Stay with the launched option or switch now, for the last ``left`` periods: every option in
    ``evals`` (the quarter's paths with the rest under it) on one table, and the pick. P(all met)
    is compared; when every option's is below `SWITCH_FLOOR`, the expected grade. None when no
    period is left."""
    if left == 0:
        return None
    order = [launched] + [o for o in scenario.options if o in evals and o != launched]
    table = {o: option_now(scenario, evals[o], evals[launched], o, launched, chains) for o in order}
    low = all(t.p_all_met < SWITCH_FLOOR for t in table.values())
    on = "grade" if low else "all_met"
    others = [o for o in order if o != launched]
    pick = pick_now(evals, order, on, chains, prefer=launched)
    best_other = pick_now(evals, others, on, chains) if others else None
    compared_on = "expected_grade" if low else "p_all_met"
    with language("en"):  # the sentence of the JSON object; pages write it again in theirs
        sentence = switch_sentence(scenario, table, launched, pick, best_other, compared_on, left)
    return WhatNow(table, launched, pick, best_other, compared_on, sentence)


def _gain(x: float, se: float) -> str:
    if se >= 0.005:
        return f"{fmt_signed(x)} ±{fmt_num(se)}"
    return f"{fmt_signed(x)} ±<{fmt_num(0.01)}".replace("<0.01", "<.01")


def _quote(scenario: Scenario, option: str) -> str:
    return _("‘{option}’").format(option=scenario.options[option].label or option)


def switch_sentence(
    scenario: Scenario,
    table: Mapping[str, OptionNow],
    launched: str,
    pick: str,
    best_other: str | None,
    compared_on: str,
    left: int,
) -> str:
    """What to do now, in one sentence, with the numbers the rule compared."""
    if best_other is None:
        return _("{option} is the only option: there is nothing to switch to.").format(
            option=_quote(scenario, launched)
        )
    if compared_on == "expected_grade":
        return _on_grade(scenario, table, launched, pick, best_other, left)
    if pick == launched:
        return _stay(scenario, table[launched], table[best_other])
    return _switch(scenario, table[launched], table[pick], left)


def _on_grade(
    scenario: Scenario,
    table: Mapping[str, OptionNow],
    launched: str,
    pick: str,
    best_other: str,
    left: int,
) -> str:
    """The sentence when every option's P(all met) is below `SWITCH_FLOOR`: on expected grade."""
    x = table[launched]
    lead = _("P(all met) is below {floor} whatever is done, so on expected grade: ").format(
        floor=fmt_g(SWITCH_FLOOR, "g")
    )
    if pick == launched:
        y = table[best_other]
        return lead + _(
            "no switch helps: staying with {launched} keeps the best expected grade, "
            "{grade}; the best alternative, {other}, gives {other_grade} ({gain})."
        ).format(
            launched=_quote(scenario, launched),
            grade=fmt_num(x.expected_grade),
            other=_quote(scenario, best_other),
            other_grade=fmt_num(y.expected_grade),
            gain=_gain(y.expected_grade_gain, y.expected_grade_gain_se),
        )
    y = table[pick]
    return lead + _(
        "switching to {option} for {last} would raise it from {grade} to {new_grade} ({gain})."
    ).format(
        option=_quote(scenario, pick),
        last=_last_periods(scenario, left),
        grade=fmt_num(x.expected_grade),
        new_grade=fmt_num(y.expected_grade),
        gain=_gain(y.expected_grade_gain, y.expected_grade_gain_se),
    )


def _stay(scenario: Scenario, x: OptionNow, y: OptionNow) -> str:
    """Staying (``x``, the launched option) against the best alternative ``y``, on P(all met)."""
    launched, other = _quote(scenario, x.option), _quote(scenario, y.option)
    diff = _gain(y.p_all_met_gain, y.p_all_met_gain_se)
    if y.p_all_met <= x.p_all_met:
        return _(
            "No switch helps: staying with {launched} keeps the best P(all met), {p}; the "
            "best alternative, {other}, gives {other_p} ({gain})."
        ).format(
            launched=launched,
            p=fmt_num(x.p_all_met),
            other=other,
            other_p=fmt_num(y.p_all_met),
            gain=diff,
        )
    msg = (
        _(
            "No switch helps: the best alternative, {other}, gives P(all met) {other_p} "
            "against {p} for staying with {launched}, within Monte Carlo error ({gain}), and "
            "a lower expected grade ({other_grade} against {grade})."
        )
        if y.expected_grade < x.expected_grade
        else _(
            "No switch helps: the best alternative, {other}, gives P(all met) {other_p} "
            "against {p} for staying with {launched}, within Monte Carlo error ({gain}), and "
            "the same expected grade ({other_grade} against {grade})."
        )
    )
    return msg.format(
        other=other,
        other_p=fmt_num(y.p_all_met),
        p=fmt_num(x.p_all_met),
        launched=launched,
        gain=diff,
        other_grade=fmt_num(y.expected_grade),
        grade=fmt_num(x.expected_grade),
    )


def _switch(scenario: Scenario, x: OptionNow, y: OptionNow, left: int) -> str:
    """Switching from the launched option ``x`` to the pick ``y`` for the last ``left``
    periods, on P(all met) (and the expected grade when the gain is within Monte Carlo error)."""
    option, last = _quote(scenario, y.option), _last_periods(scenario, left)
    diff = _gain(y.p_all_met_gain, y.p_all_met_gain_se)
    if y.p_all_met_gain > 2 * y.p_all_met_gain_se:
        return _(
            "Switching to {option} for {last} would raise P(all met) from {p} to {new_p} ({gain})."
        ).format(
            option=option, last=last, p=fmt_num(x.p_all_met), new_p=fmt_num(y.p_all_met), gain=diff
        )
    return _(
        "Switching to {option} for {last} would {verb} P(all met) from {p} to {new_p} ({gain}, "
        "within Monte Carlo error) and {grade_verb} the expected grade from {grade} to "
        "{new_grade} ({grade_gain})."
    ).format(
        option=option,
        last=last,
        verb=_verb(y.p_all_met_gain),
        p=fmt_num(x.p_all_met),
        new_p=fmt_num(y.p_all_met),
        gain=diff,
        grade_verb=_verb(y.expected_grade_gain),
        grade=fmt_num(x.expected_grade),
        new_grade=fmt_num(y.expected_grade),
        grade_gain=_gain(y.expected_grade_gain, y.expected_grade_gain_se),
    )


def _last_periods(scenario: Scenario, left: int) -> str:
    """'the last week', 'the last 4 weeks' (day, week, month; anything else: period)."""
    from ..i18n import last_periods

    return last_periods(left, period_word(scenario))


def _verb(gain: float) -> str:
    return _("raise") if gain > 0 else _("lower") if gain < 0 else _("change")


# ------------------------------------------------------------------------------- the whole


@dataclass(frozen=True)
class TrackProvenance:
    """Where a tracking result comes from: the scenario's and the actuals' digests, the
    versions, when it was made."""

    scenario_sha256: str
    actuals_sha256: str | None  # None: no actuals yet
    krsim: str
    pymc: str
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario_sha256": self.scenario_sha256,
            "actuals_sha256": self.actuals_sha256,
            "krsim": self.krsim,
            "pymc": self.pymc,
            "created": self.created,
        }


@dataclass(frozen=True)
class TrackResult:
    """What `krsim track` computes; ``to_dict()`` is the `--json` object of DESIGN section 6,
    ``to_frame()`` the burn-up per period and key result."""

    scenario: Scenario
    option: str
    actuals: CountTable | None
    periods_done: int
    key_results: Mapping[str, KRTrack]
    p_all_met: float
    p_all_met_se: float
    expected_grade: float
    expected_grade_se: float
    p_all_met_before: float
    p_all_met_before_se: float
    expected_grade_before: float
    thresholds: Tracking
    diagnostics: Diagnostics
    provenance: TrackProvenance
    now: Paths = field(repr=False)
    before: Paths = field(repr=False)
    targets: Mapping[str, decision.KRTarget] = field(repr=False)
    changes: Mapping[str, ChangeBelief] = field(default_factory=dict)
    fit: Fit | None = field(default=None, repr=False)
    what_now: WhatNow | None = None  # None: no period left

    def __post_init__(self) -> None:
        freeze_fields(self, "key_results", "targets", "changes")

    @property
    def periods_left(self) -> int:
        return self.scenario.horizon - self.periods_done

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "periods_done": self.periods_done,
            "periods_left": self.periods_left,
            "p_all_met": self.p_all_met,
            "p_all_met_se": self.p_all_met_se,
            "expected_grade": self.expected_grade,
            "key_results": {k: v.to_dict() for k, v in self.key_results.items()},
            "diagnostics": self.diagnostics.to_dict(),
            "provenance": self.provenance.to_dict(),
            # added fields
            "expected_grade_se": self.expected_grade_se,
            "before": {
                "p_all_met": self.p_all_met_before,
                "p_all_met_se": self.p_all_met_before_se,
                "expected_grade": self.expected_grade_before,
            },
            "thresholds": {
                "at_risk_below": self.thresholds.at_risk_below,
                "off_track_below": self.thresholds.off_track_below,
            },
            "changes": {name: d.to_dict() for name, d in self.changes.items()},
            "reconsider": {}
            if self.what_now is None
            else {o: v.to_dict() for o, v in self.what_now.options.items()},
            "what_now": None if self.what_now is None else self.what_now.to_dict(),
        }

    def to_frame(self):
        """One row per period of the quarter and key result: whether the period is done, the
        value to date at its end (the actuals; NaN for a period to come), the median and 80%
        interval of the running value now (given the actuals) and before the quarter."""
        import pandas as pd

        rows = []
        for kr in self.scenario.key_results:
            now = running_value(kr, self.now.counts)
            q_now = np.nanquantile(now, [0.1, 0.5, 0.9], axis=0)
            q_before = np.nanquantile(
                running_value(kr, self.before.counts), [0.1, 0.5, 0.9], axis=0
            )
            for t in range(self.scenario.horizon):
                done = t < self.periods_done
                rows.append(
                    {
                        "period": t + 1,
                        "key_result": kr.id,
                        "done": done,
                        "actual": float(now[0, t]) if done else float("nan"),
                        "median": float(q_now[1, t]),
                        "low80": float(q_now[0, t]),
                        "high80": float(q_now[2, t]),
                        "median_before": float(q_before[1, t]),
                        "low80_before": float(q_before[0, t]),
                        "high80_before": float(q_before[2, t]),
                    }
                )
        return pd.DataFrame(rows).set_index(["period", "key_result"])

    @property
    def datatree(self):
        return self.fit.datatree if self.fit is not None else None


@dataclass(frozen=True)
class _Quarter:
    """The quarter under the launched option: the fit the rest is forecast from, the actuals,
    the paths now and before the quarter, each other option switched to now, and the launched
    change's parameters before and after the actuals."""

    fit: Fit
    done: dict[str, np.ndarray]
    now: Paths
    before: Paths
    switch: dict[str, Paths]
    changes: dict[str, ChangeBelief]


def _quarter(
    scenario: Scenario,
    history: CountTable,
    option: str,
    actuals: CountTable | None,
    run: SimulationResult,
) -> _Quarter:
    """The quarter's paths. With no period done, `run`'s fit and forecast of every option;
    else the fit conditioned on the actuals, the rest forecast from it under every option from
    the same shared draws (common random numbers)."""
    before = Paths(run.forecast.counts[option], run.fit.chains)
    others = [o for o in scenario.options if o != option]
    if actuals is None or len(actuals) == 0:
        done = {s: np.zeros(0) for s in scenario.funnel}
        switch = {o: Paths(run.forecast.counts[o], run.fit.chains) for o in others}
        return _Quarter(run.fit, done, before, before, switch, {})
    done = {s: actuals.counts[s].astype(float) for s in scenario.funnel}
    launched = ChangePlan.of(scenario, option).params

    def params_of(fit):  # the launched option's parameters as the actuals tell them
        params = forecast.draw_change_params(scenario, fit.n_draws)
        params.update({name: fit.flat(name) for name in launched if name in fit.arrays})
        return params

    left = scenario.horizon - len(actuals)
    tg = decision.targets(scenario, history)

    def quarter(fit):  # the quarter's paths under every option, the launched one first
        return _paths(scenario, fit, done, left, [option, *others], params_of(fit))

    def evaluate(fit):  # what track's answer is made of, judged until sound
        paths = quarter(fit)
        return {o: decision.evaluate_option(scenario, p.counts, tg) for o, p in paths.items()}, (
            fit.chains
        )

    # padded to the history and the quarter: every week of the quarter's actuals gives the
    # same graph, so next week's run loads this week's compiled model from the disk cache
    pad = model.launched_padding(scenario, history, len(actuals), scenario.horizon)
    fit = soundness.fit(
        scenario, history, launched=model.Launched(option, actuals), evaluate=evaluate, pad=pad
    )
    paths = quarter(fit)
    now = paths.pop(option)
    return _Quarter(fit, done, now, before, paths, change_beliefs(launched, fit))


def _paths(scenario, fit, done, left: int, options: list[str], params) -> dict[str, Paths]:
    """The quarter's paths of each option: the periods done, then ``left`` forecast from the
    fit, every option from the same shared draws (common random numbers)."""
    if not left:
        rest = {s: np.zeros((fit.n_draws, 0)) for s in scenario.funnel}
        return {options[0]: quarter_paths(done, rest, fit.n_draws, fit.chains)}
    shared = forecast.prepare(scenario, fit, left)  # shared by every option
    out = {}
    for o in options:
        rest = forecast.simulate_option(scenario, shared, o, params)
        out[o] = quarter_paths(done, rest, fit.n_draws, fit.chains)
    return out


def _refuse_value_krs(scenario: Scenario) -> None:
    """Key results on a value cannot be tracked: the actuals carry counts only."""
    value_krs = [i for i, kr in enumerate(scenario.key_results) if kr.on_value]
    if value_krs:
        where = scenario.source or "<scenario>"
        raise InputError(
            [
                f"{where}: key_results[{i}].metric: tracking a key result on a value "
                f"({scenario.key_results[i].metric!r}) is not supported yet (actuals carry counts "
                "only); `krsim run` and `krsim report` forecast it"
                for i in value_krs
            ]
        )


def track(
    scenario: Scenario,
    actuals: CountTable | str | None,
    *,
    option: str | None = None,
    history: CountTable | None = None,
    at_risk_below: float | None = None,
    off_track_below: float | None = None,
    draws: int | None = None,
    seed: int | None = None,
    created: str | None = None,
) -> TrackResult:
    """Condition the model on the actuals (a table or a CSV path; None: none yet) and forecast the
    rest of the quarter under the launched ``option`` (default: the option without changes).
    ``history``: the scenario's history table (read from the file the scenario names when not
    given); ``draws``, ``seed``: the scenario's model settings overridden
    (`Scenario.with_overrides`)."""
    history = history if history is not None else read_history(scenario)
    _refuse_value_krs(scenario)
    if draws is not None or seed is not None:
        scenario = scenario.with_overrides(seed=seed, draws=draws)
    option = launched_option(scenario, option)
    th = thresholds(scenario, at_risk_below, off_track_below)
    if actuals is not None and not isinstance(actuals, CountTable):
        actuals = read_launched_actuals(scenario, history, actuals, option)
    k = 0 if actuals is None else len(actuals)
    tg = decision.targets(scenario, history)
    # before the quarter: what `krsim run` computes, through the same pipeline
    run = decide(scenario, history, soundness.fit(scenario, history), created=created)
    q = _quarter(scenario, history, option, actuals, run)
    krs, ev_now, ev_before = assess(scenario, tg, q.done, q.now, q.before, th)
    evals = {o: decision.evaluate_option(scenario, p.counts, tg) for o, p in q.switch.items()}
    left = scenario.horizon - k
    now_what = what_now(scenario, {option: ev_now, **evals}, option, q.now.chains, left)
    se = decision.mc_se
    return TrackResult(
        scenario=scenario,
        option=option,
        actuals=actuals,
        periods_done=k,
        key_results=krs,
        p_all_met=float(ev_now.all_met.mean()),
        p_all_met_se=se(ev_now.all_met, q.now.chains),
        expected_grade=float(ev_now.grade.mean()),
        expected_grade_se=se(ev_now.grade, q.now.chains),
        p_all_met_before=float(ev_before.all_met.mean()),
        p_all_met_before_se=se(ev_before.all_met, q.before.chains),
        expected_grade_before=float(ev_before.grade.mean()),
        thresholds=th,
        diagnostics=Diagnostics.of(q.fit.diagnostics, _english_warnings(q.fit)),
        provenance=TrackProvenance(
            scenario_sha256=scenario.sha256,
            actuals_sha256=actuals.digest() if actuals is not None else None,
            krsim=__version__,
            pymc=versions("pymc")["pymc"],
            created=created or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        ),
        now=q.now,
        before=q.before,
        targets=tg,
        changes=q.changes,
        fit=q.fit,
        what_now=now_what,
    )


def _english_warnings(fit: Fit) -> list[str]:
    """The sampler's warnings for the JSON object: English whatever the current language
    (`warnings_words` writes them in the output's)."""
    with language("en"):
        return diagnostic_warnings(dict(fit.diagnostics), fit.n_draws)


# --------------------------------------------------------------------------------- words


def period_word(scenario: Scenario) -> str:
    """The scenario's period as a word of the output: day, week or month, else 'period'."""
    return scenario.period if scenario.period in ("day", "week", "month") else "period"


def status_words(status: str) -> str:
    """A status in words: 'on track', 'at risk', 'off track'."""
    return {
        "on_track": _("on track"),
        "at_risk": _("at risk"),
        "off_track": _("off track"),
    }.get(status, status.replace("_", " "))


def what_now_sentence(result: TrackResult) -> str | None:
    """The what-now sentence in the current language (the result's own is English)."""
    wn = result.what_now
    if wn is None:
        return None
    return switch_sentence(
        result.scenario,
        wn.options,
        wn.launched,
        wn.pick,
        wn.best_other,
        wn.compared_on,
        result.periods_left,
    )


def warnings_words(result: TrackResult) -> list[str]:
    """The sampler's warnings in the current language."""
    from ..i18n import get_language

    warnings = result.diagnostics.warnings
    if not warnings or get_language() == "en" or result.fit is None:
        return list(warnings)
    return diagnostic_warnings(dict(result.fit.diagnostics), result.fit.n_draws)


def surprise_sentence(result: TrackResult, kr_id: str) -> str | None:
    """Where the value to date fell in the forecast made before the quarter, when extreme."""
    from ..engine.render import kr_label

    kt = result.key_results[kr_id]
    if not kt.surprising:
        return None
    s = result.scenario
    pct = kt.surprise_percentile
    assert pct is not None
    low = pct < SURPRISE_LOW
    if s.options[result.option].changes:
        why = (
            _("the change's effect looks smaller than believed (or the funnel itself has slowed)")
            if low
            else _(
                "the change's effect looks larger than believed (or the funnel itself has "
                "picked up)"
            )
        )
    else:
        why = (
            _("the funnel is running below what its history predicted")
            if low
            else _("the funnel is running above what its history predicted")
        )
    msg = (
        _(
            "{kr} is running below the 5th percentile of what was expected before the quarter "
            "(at the {point} point): {why}."
        )
        if low
        else _(
            "{kr} is running above the 95th percentile of what was expected before the quarter "
            "(at the {point} point): {why}."
        )
    )
    return msg.format(kr=kr_label(s, kr_id), point=fmt_pct(pct, 1), why=why)


def seventy_sentence(result: TrackResult, kr_id: str) -> str:
    """The 70% rule read both ways for one key result."""
    from ..engine.render import fmt_p

    kt = result.key_results[kr_id]
    t = result.targets[kr_id]
    if not t.ambitious:
        return _(
            "{kr}: the target is not beyond the baseline, so there is no partial credit: met or "
            "not (P(met) {p})."
        ).format(kr=kr_id, p=fmt_p(kt.p_met, kt.p_met_se))
    p70 = fmt_num(kt.p_progress70)
    if result.scenario.decision.grading == "committed":
        return _(
            "{kr}: P(at least 70% of the way) {p70}, P(target met) {p}: graded as committed, at "
            "70% of the way a key result is still a miss (grade 0.7, not met); read as "
            "aspirational, 70% of the way would count as met."
        ).format(kr=kr_id, p70=p70, p=fmt_p(kt.p_met, kt.p_met_se))
    return _(
        "{kr}: P(at least 70% of the way) {p70} (met, as aspirational grading counts it): this is "
        "the grade-0.7 mark, not the full target; read as committed, 70% of the way is still a "
        "miss."
    ).format(kr=kr_id, p70=p70)


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned lines: the first column left, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        out.append("  ".join(cells).rstrip())
    return out


def what_now_rows(result: TrackResult) -> list[list[str]]:
    """The options table of "what now": a header, then per option (the launched one marked) its
    P(all met), expected grade and P(met) per key result for the quarter if it runs the rest."""
    from ..engine.render import fmt_p

    s = result.scenario
    wn = result.what_now
    assert wn is not None
    rows = [[_("Rest of the quarter under"), _("P(all met)"), _("Expected grade")]]
    rows[0] += [_("P({kr} met)").format(kr=kr.id) for kr in s.key_results]
    for o, v in wn.options.items():
        label = s.options[o].label or o
        rows.append(
            [
                (_("{option} (launched)") if v.launched else _("{option} (switch now)")).format(
                    option=label
                ),
                fmt_p(v.p_all_met, v.p_all_met_se),
                fmt_p(v.expected_grade, v.expected_grade_se),
                *[fmt_p(v.p_met[kr.id], v.p_met_se[kr.id]) for kr in s.key_results],
            ]
        )
    return rows


def change_words(d: ChangeBelief) -> tuple[str, str]:
    """A change parameter's belief before the quarter and now: 'median [low, high]' each."""

    def q(x: Belief) -> str:
        lo, hi = x.interval90
        return f"{fmt_g(x.median, '.3g')} {fmt_interval(fmt_g(lo, '.3g'), fmt_g(hi, '.3g'))}"

    return q(d.prior), q(d.posterior)


def _headline(result: TrackResult) -> list[str]:
    """The title, where the quarter stands and P(all met) now and before."""
    from ..engine.render import fmt_p

    s = result.scenario
    k, H = result.periods_done, s.horizon
    opt = s.options[result.option].label or result.option
    return [
        s.title,
        "",
        _(
            "The quarter in flight under “{option}” ({id}): {done} of {periods} done, {left} left."
        ).format(
            option=opt,
            id=result.option,
            done=k,
            periods=period_count(H, period_word(s)),
            left=H - k,
        ),
        _(
            "P(all key results met) {p} (before the quarter {p_before}); expected OKR grade "
            "{grade} (before {grade_before})."
        ).format(
            p=fmt_p(result.p_all_met, result.p_all_met_se),
            p_before=fmt_p(result.p_all_met_before, result.p_all_met_before_se),
            grade=fmt_num(result.expected_grade),
            grade_before=fmt_num(result.expected_grade_before),
        ),
    ]


def _kr_rows(result: TrackResult) -> list[list[str]]:
    """The key results' table: a header, then a row per key result."""
    from ..engine.render import fmt_p, fmt_value

    s = result.scenario
    rows = [
        [
            _("Key result"),
            _("To date"),
            _("Met at"),
            _("Needed /{period}").format(period=period_noun(period_word(s))),
            _("Quarter: median [80%]"),
            _("P(met) now"),
            _("Before"),
            _("Status"),
        ]
    ]
    for kr in s.key_results:
        kt, r = result.key_results[kr.id], kr.is_ratio
        rows.append(
            [
                kr.id,
                fmt_value(kt.to_date, r),
                fmt_value(kt.met_at, r),
                fmt_value(kt.needed_pace, r),
                f"{fmt_value(kt.median, r)} "
                + fmt_interval(fmt_value(kt.interval80[0], r), fmt_value(kt.interval80[1], r)),
                fmt_p(kt.p_met, kt.p_met_se),
                fmt_p(kt.p_met_before, kt.p_met_before_se),
                status_words(kt.status),
            ]
        )
    return rows


def _status_note(result: TrackResult) -> str:
    return _(
        "Status from P(met): on track at {at_risk} or more, at risk below, off track below "
        "{off_track}. Needed: the value per {period} (a ratio: the rate over the rest) that "
        "would just reach `met at`."
    ).format(
        at_risk=fmt_g(result.thresholds.at_risk_below, "g"),
        off_track=fmt_g(result.thresholds.off_track_below, "g"),
        period=period_noun(period_word(result.scenario)),
    )


def _surprise_lines(result: TrackResult) -> list[str]:
    """Where each value to date fell in the forecast before the quarter, and why when extreme."""
    from ..engine.render import kr_label

    s = result.scenario
    if not result.periods_done:
        return []
    lines = [
        "",
        _("Against the forecast made before the quarter (percentile of the value to date):"),
    ]
    for kr in s.key_results:
        kt = result.key_results[kr.id]
        if kt.surprise_percentile is not None:
            flag = "  " + _("SURPRISE") if kt.surprising else ""
            lines.append(f"  {kr_label(s, kr.id)}: {fmt_pct(kt.surprise_percentile, 1)}{flag}")
    sentences = (surprise_sentence(result, kr.id) for kr in s.key_results)
    return lines + ["  " + x for x in sentences if x]


def _change_lines(result: TrackResult) -> list[str]:
    """What the actuals say of the launched option's change parameters."""
    if not result.changes:
        return []
    done = period_count(result.periods_done, period_word(result.scenario))
    lines = [
        "",
        _("What {done} under the option say of its changes: median [90% interval]").format(
            done=done
        ),
    ]
    for name, d in result.changes.items():
        before, now = change_words(d)
        lines.append(
            _("  {name}: believed {before} → now {now}").format(name=name, before=before, now=now)
        )
    return lines


def text_track(result: TrackResult, *, from_cache: bool = False) -> str:
    """The terminal rendering of a tracking result."""
    lines = [*_headline(result), "", *_columns(_kr_rows(result)), "", _status_note(result)]
    if result.what_now is not None:
        lines += ["", _("What now?"), "  " + (what_now_sentence(result) or ""), ""]
        lines += ["  " + x for x in _columns(what_now_rows(result))]
    lines += _surprise_lines(result) + _change_lines(result)
    lines += ["", _("The 70% rule, read both ways:")]
    lines += ["  " + seventy_sentence(result, kr.id) for kr in result.scenario.key_results]
    warnings = warnings_words(result)
    if warnings:
        lines += ["", *[_("warning: {warning}").format(warning=w) for w in warnings]]
    if from_cache:
        lines += ["", _("(fit loaded from the cache)")]
    return "\n".join(lines)


def period_count(n: int, unit: str) -> str:
    """'4 weeks', as the terminal line writes it (the unit plus 's', whatever the number)."""
    from ..i18n import get_language, periods

    if get_language() == "en":
        return f"{n} {unit}s"
    return periods(n, unit)
