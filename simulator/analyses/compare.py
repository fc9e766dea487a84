"""`krsim compare`: an experiment's results against the team's beliefs, and the decision after them.

Four answers (docs/design.md §6):

- sample-ratio mismatch: a chi-square test of the arms' traffic against the planned allocation;
- what the experiment alone says: per arm and stage, the relative lift of the stage's conversion
  rate (from its parent) over control under weak priors — independent Beta(1, 1) posteriors per arm,
  pooled over periods, as the standard Bayesian A/B engines compute it;
- prior vs posterior of every change parameter (the posterior from the one model of history and
  experiment, `experiment.py`), and prior–data conflict: for each arm and each stage its changes act
  on, the two-sided prior-predictive p-value of the observed treatment/control ratio of the stage's
  conversion rate, conditional on the observed parent counts, Bonferroni-corrected over those stages;
- the updated decision: the summary object of `krsim run`, forecast with the posterior draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import forecast, soundness
from ..engine.pipeline import SimulationResult, decide
from ..engine.render import fmt_p
from ..i18n import (
    _,
    fmt_g,
    fmt_int,
    fmt_interval,
    fmt_num,
    fmt_pct,
    get_language,
    language,
    list_sep,
    periods,
)
from ..io.data import CountTable, read_history
from ..io.scenario import Scenario, change_priors
from ..model import priors
from ..model.changes import ChangePlan, apply_rates, simulate_counts
from ..model.experiment import ExperimentData
from ..model.posterior import Fit, period_times
from ..model.streams import stream
from .records import Belief, ChangeBelief, change_beliefs, freeze_fields

SRM_THRESHOLD = 0.001  # the standard engines' threshold for a sample-ratio mismatch
CONFLICT_LEVEL = 0.05  # family-wise, per arm (Bonferroni over the arm's stages)
LIFT_DRAWS = 200_000  # Monte Carlo error of P(better) at most 0.5 / sqrt(LIFT_DRAWS) ~ 0.0011
CONFLICT_SIMS = 20_000  # prior-predictive simulations (resampling the history fit's draws)


# ----------------------------------------------------------------------------------- SRM


@dataclass(frozen=True)
class SampleRatio:
    """The chi-square test of the arms' traffic against the planned allocation: its p-value,
    whether it flags a mismatch, the statistic, and each arm's observed traffic and planned
    share."""

    p_value: float
    flag: bool
    chi2: float
    observed: Mapping[str, int]
    planned: Mapping[str, float]

    def __post_init__(self) -> None:
        freeze_fields(self, "observed", "planned")


def sample_ratio(scenario: Scenario, exp: ExperimentData) -> SampleRatio:
    """Chi-square goodness-of-fit of each arm's total traffic against the planned allocation
    (Pearson's statistic; scipy.special rather than scipy.stats, whose import costs seconds)."""
    from scipy import special

    observed = np.array([exp.total(a, scenario.root) for a in exp.arms], dtype=float)
    shares = np.array([exp.allocation[a] for a in exp.arms])
    expected = observed.sum() * shares
    stat = float(((observed - expected) ** 2 / expected).sum())
    p = float(special.chdtrc(len(observed) - 1, stat))
    return SampleRatio(
        p_value=p,
        flag=bool(p < SRM_THRESHOLD),
        chi2=stat,
        observed={a: int(v) for a, v in zip(exp.arms, observed, strict=True)},
        planned={a: float(s) for a, s in zip(exp.arms, shares, strict=True)},
    )


# ---------------------------------------------------------------------------------- lifts


@dataclass(frozen=True)
class Lift:
    """An arm's relative lift over control under weak priors: median and 95% interval, and
    P(better), with its Monte Carlo error where the lift is reported with it (a value's)."""

    median: float
    interval95: tuple[float, float]
    p_better: float
    p_better_se: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lift:
        lo, hi = d["interval95"]
        return cls(d["median"], (lo, hi), d["p_better"], d.get("p_better_se"))

    def to_dict(self) -> dict[str, Any]:
        out = {
            "median": self.median,
            "interval95": list(self.interval95),
            "p_better": self.p_better,
        }
        if self.p_better_se is not None:
            out["p_better_se"] = self.p_better_se
        return out


def conversion_totals(scenario: Scenario, exp: ExperimentData, arm: str, stage: str):
    """(conversions, users at the parent) of a stage for an arm, pooled over periods."""
    parent = scenario.funnel[stage].from_
    assert parent is not None
    return exp.total(arm, stage), exp.total(arm, parent)


def beta_lift(
    x_t: int, n_t: int, x_c: int, n_c: int, rng: np.random.Generator, draws: int = LIFT_DRAWS
) -> Lift:
    """Relative lift of a treatment's rate over control's under independent Beta(1, 1) priors:
    median and 95% interval of p_t / p_c - 1, and P(p_t > p_c), by Monte Carlo."""
    x_t, x_c = min(x_t, n_t), min(x_c, n_c)  # a stage fed from elsewhere may exceed its parent
    p_c = rng.beta(1 + x_c, 1 + n_c - x_c, draws)
    p_t = rng.beta(1 + x_t, 1 + n_t - x_t, draws)
    lift = p_t / p_c - 1
    lo, med, hi = np.quantile(lift, [0.025, 0.5, 0.975])
    return Lift(float(med), (float(lo), float(hi)), float(np.mean(p_t > p_c)))


def lifts(scenario: Scenario, exp: ExperimentData, seed: int) -> dict[str, dict[str, Lift]]:
    """Per non-control arm and non-root stage: the weak-prior lift over control."""
    out: dict[str, dict[str, Lift]] = {}
    for arm in exp.treatments:
        out[arm] = {}
        for stage, st in scenario.funnel.items():
            if st.from_ is None:
                continue
            x_t, n_t = conversion_totals(scenario, exp, arm, stage)
            x_c, n_c = conversion_totals(scenario, exp, exp.control, stage)
            out[arm][stage] = beta_lift(x_t, n_t, x_c, n_c, stream(seed, "lift", arm, stage))
    return out


# --------------------------------------------------------------------- prior vs posterior


def change_table(scenario: Scenario, fit: Fit) -> dict[str, ChangeBelief]:
    """Prior and posterior median and 90% interval of every change parameter; a parameter of an
    option the experiment did not test keeps its prior."""
    return change_beliefs(change_priors(scenario), fit)


# ----------------------------------------------------------------------- prior-data conflict


@dataclass(frozen=True)
class StageConflict:
    arm: str
    stage: str
    p_value: float
    p_adjusted: float
    flag: bool
    observed_ratio: float
    predicted95: tuple[float, float]  # prior-predictive 95% interval of the ratio
    params: tuple[str, ...]  # the beliefs behind this stage's predicted change


def _log_ratio(x_t, n_t, x_c, n_c):
    """Log of the treatment/control ratio of conversion rates (with half a count added so that
    a zero count gives a finite value)."""
    return np.log((x_t + 0.5) / (n_t + 1.0)) - np.log((x_c + 0.5) / (n_c + 1.0))


def _two_sided(t_sim: np.ndarray, t_obs: float) -> float:
    """The two-sided Monte Carlo p-value of ``t_obs`` among the simulated ``t_sim``."""
    lower = (np.sum(t_sim <= t_obs) + 1) / (t_sim.size + 1)
    upper = (np.sum(t_sim >= t_obs) + 1) / (t_sim.size + 1)
    return float(min(1.0, 2 * min(lower, upper)))


def _predictive_rates(
    exp: ExperimentData, fit: Fit, seed: int, sims: int
) -> tuple[np.ndarray, np.ndarray]:
    """The experiment periods' period effects and logit rates per simulation, node and period
    (shared by the arms), from resampled draws of the history fit."""
    rng = stream(seed, "conflict")
    idx = rng.integers(fit.n_draws, size=sims)
    mu = fit.flat("rate_mu")[idx]  # (sims, node)
    if "rate_trend" in fit.arrays:  # the experiment runs after the history
        mu = mu + fit.flat("rate_trend")[idx] * period_times(fit.n_periods, fit.n_periods, 1)[0]
    if "rate_walk_last" in fit.arrays:  # drifting levels: where they ended, in the draws where
        # the drift is on (each draw's probability of it, as the model weighs the experiment)
        on = (
            stream(seed, "conflict", "drift").uniform(size=sims)
            < fit.flat("rate_drift_weight")[idx]
        )
        mu = mu + on[:, None] * fit.flat("rate_walk_last")[idx]
    sigma = fit.flat("rate_sigma")[idx]
    effect = sigma[:, :, None] * rng.standard_normal((sims, len(fit.nodes), len(exp.periods)))
    return effect, mu[:, :, None] + effect


def _simulate_arm(
    scenario: Scenario,
    exp: ExperimentData,
    nodes: Sequence[str],
    rates: tuple[np.ndarray, np.ndarray],
    params: dict[str, np.ndarray],
    seed: int,
    arm: str,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """An arm's simulated counts given its observed parent counts (`changes.simulate_counts`),
    and its observed counts."""
    effect_all, eta_all = rates
    rows = exp.rows(arm)
    per = exp.period_index[rows]
    eff = {nd: effect_all[:, j, per] for j, nd in enumerate(nodes)}
    base = {nd: 1 / (1 + np.exp(-eta_all[:, j, per])) for j, nd in enumerate(nodes)}
    plan = ChangePlan.of(scenario, arm)
    arm_rates = apply_rates(plan, base, eff, params, np)
    obs = {c: v[rows] for c, v in exp.counts.items()}
    rng = stream(seed, "conflict", arm)
    sim = simulate_counts(scenario, plan, arm_rates, params, lambda *_: rng, given=obs)
    return sim, obs


def _stage_conflict(
    scenario: Scenario,
    arm: str,
    stage: str,
    counts: tuple[dict, dict, dict, dict],
    n_stages: int,
    params: tuple[str, ...],
) -> StageConflict:
    """One stage of a treatment arm: the observed treatment/control ratio of its conversion rate
    against its prior-predictive distribution. ``counts``: the arm's and control's observed and
    simulated counts."""
    obs_t, obs_c, sim_t, sim_c = counts
    parent = scenario.funnel[stage].from_
    n_t, n_c = obs_t[parent].sum(), obs_c[parent].sum()
    t_obs = _log_ratio(obs_t[stage].sum(), n_t, obs_c[stage].sum(), n_c)
    t_sim = _log_ratio(sim_t[stage].sum(axis=1), n_t, sim_c[stage].sum(axis=1), n_c)
    p = _two_sided(t_sim, t_obs)
    adj = min(1.0, p * n_stages)
    lo, hi = np.exp(np.quantile(t_sim, [0.025, 0.975]))
    ratio = float(np.exp(t_obs))
    return StageConflict(
        arm, stage, p, adj, adj < CONFLICT_LEVEL, ratio, (float(lo), float(hi)), params
    )


def conflict(
    scenario: Scenario,
    exp: ExperimentData,
    fit: Fit,
    seed: int,
    sims: int = CONFLICT_SIMS,
) -> dict[str, list[StageConflict]]:
    """Prior-predictive check of each arm's stages (docs/design.md §6).

    ``fit`` is the history-only fit: the beliefs before the experiment are the history's posterior
    for the funnel's rates and the scenario's priors for the changes. Each simulation draws the
    experiment periods' rates (shared by the arms), the change parameters from their priors, and
    every arm's counts given its observed parent counts (`changes.simulate_counts`).
    """
    rates = _predictive_rates(exp, fit, seed, sims)
    params = {
        name: priors.sample(prior, sims, stream(seed, "conflict-param", name))[:, None]
        for name, prior in change_priors(scenario).items()
    }
    sim_c, obs_c = _simulate_arm(scenario, exp, fit.nodes, rates, params, seed, exp.control)
    out: dict[str, list[StageConflict]] = {}
    for arm in exp.treatments:
        plan = ChangePlan.of(scenario, arm)
        stages = plan.acts_on(scenario)
        out[arm] = []
        if not stages:
            continue
        sim_t, obs_t = _simulate_arm(scenario, exp, fit.nodes, rates, params, seed, arm)
        for stage in stages:
            behind = tuple(plan.params_behind(scenario, stage))
            counts = (obs_t, obs_c, sim_t, sim_c)
            out[arm].append(_stage_conflict(scenario, arm, stage, counts, len(stages), behind))
    return out


def _with_value_checks(
    scenario: Scenario,
    exp: ExperimentData,
    fit_before: Fit,
    stage_lifts: dict[str, dict[str, Lift]],
    conflicts: dict[str, list[StageConflict]],
) -> None:
    """Add the value per unit's lifts from the experiment alone and its prior-data checks to an
    experiment with values; each arm's Bonferroni correction then runs over its stages and
    values."""
    from ..model import values

    for arm, d in values.experiment_lifts(
        scenario, exp, fit_before, stream(scenario.seed, "value-lift")
    ).items():
        stage_lifts[arm].update({k: Lift.from_dict(v) for k, v in d.items()})
    extra = values.experiment_conflicts(
        scenario, exp, fit_before, stream(scenario.seed, "value-conflict")
    )
    for arm, rows in extra.items():
        merged = [
            (r.stage, r.p_value, r.observed_ratio, r.predicted95, r.params)
            for r in conflicts.get(arm, [])
        ]
        merged += [
            (r["stage"], r["p_value"], r["observed_ratio"], r["predicted95"], r["params"])
            for r in rows
        ]
        m = len(merged)
        conflicts[arm] = [
            StageConflict(
                arm, st, p, min(1.0, p * m), min(1.0, p * m) < CONFLICT_LEVEL, ratio, band, params
            )
            for st, p, ratio, band, params in merged
        ]


def g3(x: float) -> str:
    """Three significant digits, with the locale's decimal sign: '1.23' ('1,23')."""
    return fmt_g(x, ".3g")


def g2(x: float) -> str:
    return fmt_g(x, ".2g")


def signed_pct(x: float, digits: int = 1) -> str:
    """A relative change as a signed percentage: '+12.3%', '-4.0%' (French '+12,3 %')."""
    if get_language() == "en":
        return f"{x:+.{digits}%}"
    return ("-" if x < 0 else "+") + fmt_pct(abs(x), digits)


def prior_words(prior) -> str:
    """A belief as `Prior.describe` says it, in the current language."""
    if get_language() == "en":
        return prior.describe()
    v = prior.value
    if prior.kind == "from_archive":
        what = _("a new experiment's effect as the archive {file} predicts it").format(file=v.file)
        if v.category:
            what += _(" (category {category})").format(category=v.category)
        if prior.with_ is not None:
            what += _(", combined with the team's belief ({belief})").format(
                belief=prior_words(prior.with_)
            )
        return what
    if prior.kind == "fixed":
        return _("fixed at {value}").format(value=fmt_g(v, "g"))
    if prior.kind in ("beta_interval", "lognormal_interval"):
        return _("{share} sure it lies in [{low}, {high}]").format(
            share=fmt_pct(prior.interval_mass, 0), low=fmt_g(v[0], "g"), high=fmt_g(v[1], "g")
        )
    if prior.kind == "beta":
        return f"Beta({fmt_g(v[0], 'g')}{list_sep()}{fmt_g(v[1], 'g')})"
    if prior.kind == "normal":
        return _("Normal(mean {mean}, sd {sd})").format(mean=fmt_g(v[0], "g"), sd=fmt_g(v[1], "g"))
    return _("anywhere in [{low}, {high}], all values equally likely").format(
        low=fmt_g(v[0], "g"), high=fmt_g(v[1], "g")
    )


def _conflict_part(scenario: Scenario, r: StageConflict) -> str:
    """One contradicted stage: how it moved against what the beliefs allowed."""
    value = r.stage.endswith(".value")
    less = r.observed_ratio < r.predicted95[0]
    if value and less:
        msg = _(
            "{stage} was {ratio}× control's value, less than the beliefs allowed ({low}× to "
            "{high}×, 95% prior-predictive; adjusted p = {p})"
        )
    elif value:
        msg = _(
            "{stage} was {ratio}× control's value, more than the beliefs allowed ({low}× to "
            "{high}×, 95% prior-predictive; adjusted p = {p})"
        )
    elif less:
        msg = _(
            "{stage} converted at {ratio}× control's rate, less than the beliefs allowed ({low}× "
            "to {high}×, 95% prior-predictive; adjusted p = {p})"
        )
    else:
        msg = _(
            "{stage} converted at {ratio}× control's rate, more than the beliefs allowed ({low}× "
            "to {high}×, 95% prior-predictive; adjusted p = {p})"
        )
    return msg.format(
        stage=scenario.stage_label(r.stage),
        ratio=g3(r.observed_ratio),
        low=g3(r.predicted95[0]),
        high=g3(r.predicted95[1]),
        p=g2(r.p_adjusted),
    )


def conflict_sentence(
    scenario: Scenario,
    arm: str,
    rows: Sequence[StageConflict],
    changes: Mapping[str, ChangeBelief],
) -> str:
    """Which belief the data contradict (or that they do not), in one or two sentences, in the
    current language."""
    from ..engine.render import sep

    label = scenario.options[arm].label or arm
    flagged = [r for r in rows if r.flag]
    if not rows:
        return _(
            "“{option}”: its changes act on no stage whose conversion the experiment observes."
        ).format(option=label)
    if not flagged:
        best = min(rows, key=lambda r: r.p_adjusted)
        return _(
            "“{option}”: no conflict — every observed change lies within what the beliefs "
            "allowed (smallest Bonferroni-adjusted p = {p}, {stage})."
        ).format(option=label, p=g2(best.p_adjusted), stage=scenario.stage_label(best.stage))
    prs = change_priors(scenario)
    parts = [_conflict_part(scenario, r) for r in flagged]
    params = list(dict.fromkeys(p for r in flagged for p in r.params if prs[p].kind != "fixed"))
    beliefs = sep().join(
        _("{parameter} ({belief}; the experiment puts it at {median} [{low}, {high}])").format(
            parameter=p,
            belief=prior_words(prs[p]),
            median=g3(changes[p].posterior.median),
            low=g3(changes[p].posterior.interval90[0]),
            high=g3(changes[p].posterior.interval90[1]),
        )
        for p in params
    )
    return _("“{option}”: the data contradict the belief about {beliefs}: {parts}.").format(
        option=label, beliefs=beliefs or _("this option"), parts=sep().join(parts)
    )


# ------------------------------------------------------------------------------ the whole


@dataclass(frozen=True)
class ComparisonResult:
    """What `krsim compare` computes; ``to_dict()`` is the `--json` object of `krsim compare`
    (docs/design.md §6), ``to_frame()`` P(met) per option and key result before and after the
    experiment."""

    scenario: Scenario
    experiment: ExperimentData
    srm: SampleRatio
    lifts: Mapping[str, Mapping[str, Lift]]
    changes: Mapping[str, ChangeBelief]
    conflicts: Mapping[str, tuple[StageConflict, ...]]
    sentences: Mapping[str, str]
    updated: SimulationResult
    before: SimulationResult | None = None
    tested: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        freeze_fields(self, "lifts", "changes", "conflicts", "sentences", "tested")

    def to_dict(self) -> dict[str, Any]:
        return {
            "srm": {"p_value": self.srm.p_value, "flag": self.srm.flag},
            "lifts": {
                arm: {stage: d.to_dict() for stage, d in by_stage.items()}
                for arm, by_stage in self.lifts.items()
            },
            "changes": {name: d.to_dict() for name, d in self.changes.items()},
            "conflict": {
                arm: {r.stage: {"p_value": r.p_value, "flag": r.flag} for r in rows}
                for arm, rows in self.conflicts.items()
            },
            "updated": self.updated.to_dict(),
        }

    def p_met(
        self, option: str, kr: str | None = None, *, before: bool = False
    ) -> tuple[float, float]:
        """P(met) of a key result under an option (``kr`` None: P(all met)) with its Monte Carlo
        error, after the experiment (``before``: before it; NaN when that was not computed)."""
        result = self.before if before else self.updated
        if result is None:
            return float("nan"), float("nan")
        od = result.run.options[option]
        if kr is None:
            return od.p_all_met, od.p_all_met_se
        return od.key_results[kr].p_met, od.key_results[kr].p_met_se

    def to_frame(self):
        """One row per option and key result: P(met) and its Monte Carlo error before the
        experiment (NaN when the decision before was not computed) and after it."""
        import pandas as pd

        rows = []
        for o in self.scenario.options:
            for kr in self.scenario.key_results:
                before = self.p_met(o, kr.id, before=True)
                after = self.p_met(o, kr.id)
                rows.append(
                    {
                        "option": o,
                        "key_result": kr.id,
                        "p_met_before": before[0],
                        "p_met_before_se": before[1],
                        "p_met": after[0],
                        "p_met_se": after[1],
                    }
                )
        return pd.DataFrame(rows).set_index(["option", "key_result"])


def compare(
    scenario: Scenario,
    exp: ExperimentData,
    *,
    draws: int | None = None,
    seed: int | None = None,
    history: CountTable | None = None,
    created: str | None = None,
    before: bool = False,
) -> ComparisonResult:
    """Fit the history alone (the beliefs before) and with the experiment (one model), then
    compare; ``before`` also computes the decision before the experiment (for text and report).
    ``draws``, ``seed``: the scenario's model settings overridden (`Scenario.with_overrides`)."""
    history = history if history is not None else read_history(scenario)
    if draws is not None or seed is not None:
        scenario = scenario.with_overrides(seed=seed, draws=draws)
    fit_before = soundness.fit(scenario, history)
    after = soundness.forecast_evaluation(scenario, history, tested_params(scenario))
    fit_after = soundness.fit(scenario, history, experiment=exp, evaluate=after)
    changes = change_table(scenario, fit_after)
    conflicts = conflict(scenario, exp, fit_before, scenario.seed)
    stage_lifts = lifts(scenario, exp, scenario.seed)
    if exp.values:  # the value per unit: lifts from the experiment alone, and prior-data conflict
        _with_value_checks(scenario, exp, fit_before, stage_lifts, conflicts)
    with language("en"):  # the result's own sentences; text and pages write them again in theirs
        sentences = {
            arm: conflict_sentence(scenario, arm, rows, changes) for arm, rows in conflicts.items()
        }
    params = tested_params(scenario)(fit_after)
    tested = tuple(n for n in params if n in fit_after.arrays)
    updated = decide(scenario, history, fit_after, params=params, created=created)
    prior_result = decide(scenario, history, fit_before, created=created) if before else None
    return ComparisonResult(
        scenario=scenario,
        experiment=exp,
        srm=sample_ratio(scenario, exp),
        lifts=stage_lifts,
        changes=changes,
        conflicts=conflicts,
        sentences=sentences,
        updated=updated,
        before=prior_result,
        tested=tested,
    )


def tested_params(scenario: Scenario):
    """The change parameters' draws a fit with the experiment decides on: the tested ones from
    the fit, the others from their priors."""

    def of(fit: Fit) -> dict[str, np.ndarray]:
        params = forecast.draw_change_params(scenario, fit.n_draws)
        params.update({n: fit.flat(n) for n in params if n in fit.arrays})
        return params

    return of


# ------------------------------------------------------------------------------ text output


def sentences_words(result: ComparisonResult) -> dict[str, str]:
    """The conflict sentence of each arm in the current language (the result's own: English)."""
    if get_language() == "en":
        return dict(result.sentences)
    return {
        arm: conflict_sentence(result.scenario, arm, rows, result.changes)
        for arm, rows in result.conflicts.items()
    }


def belief_cell(d: Belief) -> str:
    """'0.42 [0.31, 0.55]': a median and its 90% interval."""
    return f"{g3(d.median)} {fmt_interval(g3(d.interval90[0]), g3(d.interval90[1]))}"


def _experiment_lines(result: ComparisonResult) -> list[str]:
    """The experiment: its file, arms, planned split and traffic, and the sample-ratio test."""
    s, exp, srm = result.scenario, result.experiment, result.srm
    arms = ", ".join(
        _("{arm} ({share} planned, {n} {stage})").format(
            arm=a, share=fmt_pct(exp.allocation[a], 0), n=fmt_int(srm.observed[a]), stage=s.root
        )
        for a in exp.arms
    )
    lines = [_("Experiment: {path}").format(path=exp.path), ""]
    lines.append(
        _("{arms}, control {control}, {periods}: {each}").format(
            arms=arms_words(len(exp.arms)),
            control=exp.control,
            periods=periods(len(exp.periods), "period"),
            each=arms,
        )
    )
    if srm.flag:
        lines.append(
            _(
                "warning: sample-ratio mismatch (chi-square p = {p} < {threshold}): the traffic "
                "split differs from the plan, so assignment may be broken; treat every result "
                "below with caution."
            ).format(p=g2(srm.p_value), threshold=fmt_g(SRM_THRESHOLD, "g"))
        )
    else:
        lines.append(
            _("Sample ratio: chi-square p = {p} against the planned split; no mismatch.").format(
                p=g3(srm.p_value)
            )
        )
    return lines


def _lift_lines(result: ComparisonResult) -> list[str]:
    """What the experiment alone says: each arm's lift per stage (and value)."""
    s, exp = result.scenario, result.experiment
    lines = [
        "",
        _("What the experiment alone says (weak priors): lift of each stage's conversion"),
        _(
            "rate (of STAGE.value: of the mean value per unit) over control, median [95% "
            "interval], P(better)"
        ),
    ]
    better = _("P(better)")
    width = max(len(st) for st in [*s.funnel, *(f"{v}.value" for v in exp.values)]) + 2
    for arm, by_stage in result.lifts.items():
        lines.append(f"  {s.options[arm].label or arm}")
        for stage, d in by_stage.items():
            lo, hi = d.interval95
            lines.append(
                f"    {stage:<{width}}{signed_pct(d.median):>8} "
                f"{fmt_interval(signed_pct(lo), signed_pct(hi))}   {better} {fmt_num(d.p_better)}"
            )
    return lines


def _belief_lines(result: ComparisonResult) -> list[str]:
    """Each change parameter before → after the experiment."""
    lines = ["", _("Beliefs before → after the experiment: median [90% interval]")]
    name_w = max((len(n) for n in result.changes), default=0) + 2
    for name, d in result.changes.items():
        tag = "" if name in result.tested else _("   (not tested: unchanged)")
        lines.append(f"  {name:<{name_w}}{belief_cell(d.prior)} → {belief_cell(d.posterior)}{tag}")
    return lines


def _conflict_lines(result: ComparisonResult) -> list[str]:
    """Prior–data conflict: each checked stage's ratio against the beliefs, then each arm's
    sentence."""
    lines = [
        "",
        _("Prior–data conflict: two-sided prior-predictive p-value of the treatment/control ratio"),
        _("of each stage's conversion rate (flag: Bonferroni-adjusted p < 0.05)"),
    ]
    sentences = sentences_words(result)
    for arm, rows in result.conflicts.items():
        for r in rows:
            line = _(
                "{arm} · {stage}: observed {ratio}× (beliefs: {low}× to {high}×), p = {p}, "
                "adjusted {adjusted}"
            ).format(
                arm=arm,
                stage=r.stage,
                ratio=g3(r.observed_ratio),
                low=g3(r.predicted95[0]),
                high=g3(r.predicted95[1]),
                p=g2(r.p_value),
                adjusted=g2(r.p_adjusted),
            )
            lines.append("  " + line + (_("  CONFLICT") if r.flag else ""))
        lines.append("  " + sentences[arm])
    return lines


def _before_after_lines(result: ComparisonResult) -> list[str]:
    """P(all met) per option before → after the experiment, and whether the pick changes."""
    if result.before is None:
        return []
    lines = ["", _("The quarter before → after the experiment: P(all key results met)")]
    labels = {o: opt.label or o for o, opt in result.scenario.options.items()}
    width = max(len(x) for x in labels.values()) + 2
    for o, label in labels.items():
        lines.append(
            f"  {label:<{width}}{fmt_p(*result.p_met(o, before=True))} → {fmt_p(*result.p_met(o))}"
        )
    rb = result.before.run.recommendation.option
    ra = result.updated.run.recommendation.option
    same = _("Pick before: {before}; after: {after} (unchanged).")
    changed = _("Pick before: {before}; after: {after} — it changes.")
    lines.append("  " + (same if rb == ra else changed).format(before=rb, after=ra))
    return lines


def text_comparison(result: ComparisonResult, *, from_cache: bool = False) -> str:
    """The terminal rendering: SRM, lifts, beliefs before/after, conflict, then the decision, in
    the current language."""
    from ..engine.render import localized_summary, text_summary

    lines = _experiment_lines(result) + _lift_lines(result) + _belief_lines(result)
    lines += _conflict_lines(result) + _before_after_lines(result)
    title = _("After the experiment")
    lines += ["", title, "-" * len(title)]
    summary = localized_summary(result.updated)
    lines.append(text_summary(result.scenario, summary, from_cache=from_cache))
    return "\n".join(lines)


def arms_words(n: int) -> str:
    """'2 arms' ('2 bras')."""
    from ..i18n import ngettext

    return ngettext("{n} arm", "{n} arms", n).format(n=n)
