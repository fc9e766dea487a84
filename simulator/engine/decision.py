"""KR values, probabilities, grades, the recommendation: docs/design.md §5, vectorised over draws."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..io.data import CountTable
from ..io.scenario import KeyResult, Scenario
from .baselines import Baseline, resolve
from .forecast import Forecast
from .summary import (
    BaselineSummary,
    Guardrails,
    KeyResultSummary,
    OptionSummary,
    Recommendation,
    TradeOff,
)


def mc_se(x: np.ndarray, chains: int) -> float:
    """Monte Carlo standard error of the mean of per-draw values ``x`` (chain-major order).

    Batch means within chains (batches of about sqrt(draws per chain)), which accounts for the
    autocorrelation of MCMC draws; never below the independent-draws error, and for a proportion
    of 0 or 1 the error of (k + 1/2) / (n + 1), so a printed 0.000 is never claimed exact.
    Written with numpy because importing ArviZ would cost seconds on a cache-hit run; a test checks
    it against ``arviz.mcse``.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    per = n // chains
    b = max(int(np.sqrt(per)), 1)
    nb = per // b
    if nb >= 2:
        batches = (
            x[: chains * per].reshape(chains, per)[:, : nb * b].reshape(chains * nb, b).mean(axis=1)
        )
        se_batch = batches.std(ddof=1) / np.sqrt(batches.size)
    else:
        se_batch = 0.0
    if np.all((x == 0) | (x == 1)):
        k = x.sum()
        pt = (k + 0.5) / (n + 1)
        se_iid = np.sqrt(pt * (1 - pt) / n)
    else:
        se_iid = x.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
    return float(max(se_batch, se_iid))


@dataclass(frozen=True)
class KRTarget:
    baseline: float
    target: float
    op: str
    share: float = (
        1.0  # the share of the way to the target at which it counts as met (0.7: aspirational)
    )
    guard: float | None = None  # a guardrail's limit: broken below it (">="), above it ("<=")
    source: Baseline | None = field(default=None, compare=False)  # where the baseline comes from

    @property
    def ambitious(self) -> bool:
        """The target lies beyond the baseline in the operator's direction (grades are partial)."""
        return self.target > self.baseline if self.op == ">=" else self.target < self.baseline

    @property
    def met_at(self) -> float:
        """The value at which the KR counts as met (DESIGN section 5): the target under committed
        grading; under aspirational 70% of the way from the baseline when the target lies beyond it."""
        if self.ambitious and self.share < 1.0:
            return self.baseline + self.share * (self.target - self.baseline)
        return self.target

    def met(self, value: np.ndarray) -> np.ndarray:
        return value >= self.met_at if self.op == ">=" else value <= self.met_at

    def broken(self, value: np.ndarray) -> np.ndarray:
        """Per draw: the guardrail is broken (always False for a key result that is not one)."""
        if self.guard is None:
            return np.zeros(np.shape(value), dtype=bool)
        return value < self.guard if self.op == ">=" else value > self.guard


def kr_value(kr: KeyResult, totals: dict[str, np.ndarray]) -> np.ndarray:
    if kr.is_ratio:
        a, b = (totals[s] for s in kr.stages)
        return np.divide(a, b, out=np.zeros(np.shape(a), dtype=float), where=np.asarray(b) > 0)
    return np.asarray(totals[kr.stages[0]], dtype=float)


def baselines(scenario: Scenario, history: CountTable) -> dict[str, float]:
    """Baseline of each KR as the scenario's `baseline:` sets it (a number, or its value over a
    window of the history: the last `horizon` periods by default), `baselines.resolve`."""
    return {kr: b.value for kr, b in resolve(scenario, history).items()}


def targets(scenario: Scenario, history: CountTable) -> dict[str, KRTarget]:
    """Each KR's baseline (`baselines.resolve`), target, the value at which it counts as met, and
    a guardrail's limit."""
    windows = resolve(scenario, history)
    base = {k: b.value for k, b in windows.items()}
    share = 0.7 if scenario.decision.grading == "aspirational" else 1.0
    out = {}
    for kr in scenario.key_results:
        t = kr.parsed_target
        value = base[kr.id] * (1 + t.value / 100) if t.relative else t.value
        drop = kr.guardrail_drop
        guard = None
        if drop is not None:
            guard = base[kr.id] * (1 - drop) if t.op == ">=" else base[kr.id] * (1 + drop)
        out[kr.id] = KRTarget(base[kr.id], value, t.op, share, guard, windows[kr.id])
    return out


GRADE_FLOOR = -1.0  # a key result that goes backwards costs, down to -1


def grade(value: np.ndarray, t: KRTarget) -> np.ndarray:
    """The OKR grade per draw (docs/design.md §5).

    A target beyond the baseline: the share of the way from the baseline to the target, on one
    linear scale from -1 (as far behind the baseline as the target is ahead of it, or further) to
    1 (the target reached), so going backwards costs as much as going forwards earns. A target at
    or behind the baseline (hold the line): 1 when met; when missed, minus the miss measured in the
    distance between baseline and target (the slack the team allowed), down to -1; a target equal
    to the baseline has no slack to measure with and grades 1 or 0."""
    met = value >= t.target if t.op == ">=" else value <= t.target
    if t.ambitious:
        return np.clip((value - t.baseline) / (t.target - t.baseline), GRADE_FLOOR, 1.0)
    slack = abs(t.target - t.baseline)
    if slack == 0:
        return met.astype(float)
    miss = np.abs(np.asarray(value, dtype=float) - t.target) / slack
    return np.where(met, 1.0, np.maximum(-miss, GRADE_FLOOR))


def weights(scenario: Scenario) -> np.ndarray:
    w = scenario.decision.weights
    ids = [kr.id for kr in scenario.key_results]
    arr = np.array([float(w.get(i, 0.0)) for i in ids]) if w else np.ones(len(ids))
    return arr / arr.sum()


OUT_OF_REACH = 0.01  # a KR with P(met) below this under every option is out of reach
GUARDRAIL_RISK = 0.2  # an option that breaks a guardrail with P above this breaks it
TRADE_OFF = 0.1  # a runner-up this much better on the primary KR or the grade is mentioned
NEAR_TIE = 0.01  # rule values closer than this (or 2 Monte Carlo errors) are a near-tie


@dataclass(frozen=True)
class Rule:
    """The decision rule actually used: ``name`` is all_met, expected_grade or weighted;
    ``krs`` the key results all_met reads (those within reach); ``configured`` the scenario's."""

    name: str
    krs: tuple[str, ...]
    configured: str

    @classmethod
    def of(cls, scenario: Scenario) -> Rule:
        rule = scenario.decision.rule
        return cls(rule, tuple(kr.id for kr in scenario.key_results), rule)


@dataclass(frozen=True)
class OptionEval:
    values: dict[str, np.ndarray]  # kr -> value per draw
    met: dict[str, np.ndarray]
    grades: dict[str, np.ndarray]
    value: np.ndarray  # the rule's value per draw
    grade: np.ndarray
    all_met: np.ndarray
    broken: dict[str, np.ndarray]  # guardrail kr -> broken per draw


def rule_value(scenario: Scenario, rule: Rule, met: dict, grade_: np.ndarray) -> np.ndarray:
    """The rule's value per draw: 1 when every KR it reads is met (all_met), the weighted grade
    (expected_grade), or the weighted share of KRs met (weighted)."""
    if rule.name == "expected_grade":
        return grade_
    if rule.name == "weighted":
        M = np.stack([met[kr.id] for kr in scenario.key_results]).astype(float)
        return weights(scenario) @ M
    return np.stack([met[k] for k in rule.krs]).astype(float).min(axis=0)


def evaluate_option(
    scenario: Scenario,
    counts: dict[str, np.ndarray],
    tg: dict[str, KRTarget],
    rule: Rule | None = None,
) -> OptionEval:
    """KR values, met indicators, grades and guardrails per draw, from one option's simulated
    counts; the rule's value under ``rule`` (default: the scenario's, on every key result)."""
    rule = rule or Rule.of(scenario)
    w = weights(scenario)
    totals = {s: c.sum(axis=1) for s, c in counts.items()}
    values, mets, grades, broken = {}, {}, {}, {}
    for kr in scenario.key_results:
        t = tg[kr.id]
        v = kr_value(kr, totals)
        values[kr.id], grades[kr.id], mets[kr.id] = v, grade(v, t), t.met(v)
        if t.guard is not None:
            broken[kr.id] = t.broken(v)
    G = np.stack(list(grades.values()))
    og = w @ G
    allm = np.stack(list(mets.values())).astype(float).min(axis=0)
    val = rule_value(scenario, rule, mets, og)
    return OptionEval(values, mets, grades, val, og, allm, broken)


@dataclass(frozen=True)
class Evaluation:
    """Per-draw quantities behind the summary, per option (kept for reports and sensitivity),
    and the rule they were valued under."""

    options: dict[str, OptionEval]
    rule: Rule | None = None


def evaluate(scenario: Scenario, fc: Forecast, tg: dict[str, KRTarget]) -> Evaluation:
    """Every option evaluated, valued under the rule actually used (`choose_rule`)."""
    ev = Evaluation({o: evaluate_option(scenario, fc.counts[o], tg) for o in fc.options})
    return revalue(scenario, ev, choose_rule(scenario, ev))


def revalue(scenario: Scenario, ev: Evaluation, rule: Rule) -> Evaluation:
    """The same draws valued under another rule."""
    return Evaluation(
        {
            o: dataclasses.replace(oe, value=rule_value(scenario, rule, oe.met, oe.grade))
            for o, oe in ev.options.items()
        },
        rule,
    )


def out_of_reach(scenario: Scenario, ev: Evaluation) -> list[str]:
    """Key results whose P(met) is below `OUT_OF_REACH` under every option."""
    return [
        kr.id
        for kr in scenario.key_results
        if max(oe.met[kr.id].mean() for oe in ev.options.values()) < OUT_OF_REACH
    ]


def choose_rule(scenario: Scenario, ev: Evaluation) -> Rule:
    """The rule that decides (docs/design.md §5): all_met on the key results within reach; when
    no option gives even that a chance (every option's value below `OUT_OF_REACH`), the expected
    grade, which still ranks options by how far they get."""
    configured = scenario.decision.rule
    gone = set(out_of_reach(scenario, ev))
    krs = tuple(kr.id for kr in scenario.key_results if kr.id not in gone)
    if configured == "expected_grade":
        return Rule("expected_grade", krs, configured)
    rule = Rule(configured, krs, configured)
    if krs:
        best = max(
            rule_value(scenario, rule, oe.met, oe.grade).mean() for oe in ev.options.values()
        )
        if best >= OUT_OF_REACH:
            return rule
    return Rule("expected_grade", krs, configured)


def guardrail_risks(ev: Evaluation) -> dict[str, dict[str, float]]:
    """P(broken) of each guardrail under each option."""
    return {o: {k: float(b.mean()) for k, b in oe.broken.items()} for o, oe in ev.options.items()}


def primary_kr(scenario: Scenario) -> str | None:
    return next((kr.id for kr in scenario.key_results if kr.primary), None)


def pick_option(opts: list[str], value: np.ndarray, grade_mean: np.ndarray, control: str) -> str:
    """On expected values alone: maximise E[V]; ties go to the higher expected grade, then to the
    option without changes (`plan`'s choice from fitted values, where per-draw values are not
    at hand)."""
    tol = 1e-12
    cands = [i for i in range(len(opts)) if value[i] >= value.max() - tol]
    gbest = max(grade_mean[i] for i in cands)
    cands = [i for i in cands if grade_mean[i] >= gbest - tol]
    return opts[next((i for i in cands if opts[i] == control), cands[0])]


def choose_option(scenario: Scenario, options: dict[str, OptionEval], chains: int = 1) -> str:
    """The recommended option (docs/design.md §5): among the options that keep every guardrail
    (all options when none does), the highest expected rule value; near-ties (within `NEAR_TIE`
    or two Monte Carlo errors of the paired difference) go to the option best on the primary key
    result when there is one; exact ties to the higher expected grade, then to the option without
    changes."""
    opts = list(options)
    keeps = [o for o in opts if all(b.mean() <= GUARDRAIL_RISK for b in options[o].broken.values())]
    cands = keeps or opts
    value = {o: float(options[o].value.mean()) for o in cands}
    top = max(cands, key=lambda o: value[o])
    primary = primary_kr(scenario)
    if primary is not None:
        near = [
            o
            for o in cands
            if value[top] - value[o]
            <= max(NEAR_TIE, 2 * mc_se(options[top].value - options[o].value, chains))
        ]
        p = {o: float(options[o].met[primary].mean()) for o in near}
        cands = [o for o in near if p[o] >= max(p.values()) - 1e-12]
        value = {o: value[o] for o in cands}
    tol = 1e-12
    cands = [o for o in cands if value[o] >= max(value.values()) - tol]
    grade_ = {o: float(options[o].grade.mean()) for o in cands}
    cands = [o for o in cands if grade_[o] >= max(grade_.values()) - tol]
    control = scenario.control_option
    return control if control in cands else cands[0]


def trade_offs(scenario: Scenario, ev: Evaluation, pick: str) -> tuple[TradeOff, ...]:
    """Options that beat the pick by at least `TRADE_OFF`: on the primary key result's P(met),
    or on the expected grade; the largest gain first."""
    primary = primary_kr(scenario)
    po = ev.options[pick]
    out = []
    for o, oe in ev.options.items():
        if o == pick:
            continue
        if primary is not None:
            a, b = float(po.met[primary].mean()), float(oe.met[primary].mean())
            if b - a >= TRADE_OFF:
                out.append(TradeOff(o, primary, "p_met", a, b))
        a, b = float(po.grade.mean()), float(oe.grade.mean())
        if b - a >= TRADE_OFF:
            out.append(TradeOff(o, None, "expected_grade", a, b))
    out.sort(key=lambda t: -(t.other - t.pick))
    return tuple(out)


def recommend(scenario: Scenario, ev: Evaluation, chains: int = 1) -> Recommendation:
    """The pick and the figures behind it, all under the rule actually used."""
    rule = ev.rule or Rule.of(scenario)
    opts = list(ev.options)
    V = np.stack([ev.options[o].value for o in opts])  # options x draws
    best = V.max(axis=0)
    is_best = V == best
    p_best = (is_best / is_best.sum(axis=0)).mean(axis=1)
    loss = (best - V).mean(axis=1)
    ev_mean = V.mean(axis=1)
    pick = choose_option(scenario, ev.options, chains)
    risks = guardrail_risks(ev)
    breaks = {o: [k for k, p in r.items() if p > GUARDRAIL_RISK] for o, r in risks.items()}
    return Recommendation(
        option=pick,
        rule=scenario.decision.rule,
        rule_used=rule.name,
        key_results_used=rule.krs if rule.name == "all_met" else None,
        out_of_reach=tuple(out_of_reach(scenario, ev)),
        primary=primary_kr(scenario),
        value={o: float(ev_mean[i]) for i, o in enumerate(opts)},
        value_se={o: mc_se(V[i], chains) for i, o in enumerate(opts)},
        p_best={o: float(p_best[i]) for i, o in enumerate(opts)},
        expected_loss={o: float(loss[i]) for i, o in enumerate(opts)},
        guardrails=Guardrails(p_broken=risks, breaks={o: b for o, b in breaks.items() if b}),
        trade_offs=trade_offs(scenario, ev, pick),
    )


def baseline_sources(tg: dict[str, KRTarget]) -> dict[str, BaselineSummary]:
    """Where each KR's baseline comes from, for the summary: its value, how it was set, the
    window's first and last periods, and the words the output uses."""
    return {
        k: BaselineSummary(b.value, b.kind, b.first, b.last, b.periods, b.describe(), b.note)
        for k, t in tg.items()
        if (b := t.source) is not None
    }


def _kr_summary(
    v: np.ndarray, met: np.ndarray, g: np.ndarray, t: KRTarget, chains: int
) -> KeyResultSummary:
    """One key result under one option, from its per-draw values, met indicators and grades."""
    lo, med, hi = np.quantile(v, [0.1, 0.5, 0.9])
    prog = (g >= 0.7).astype(float)
    return KeyResultSummary(
        baseline=t.baseline,
        target=t.target,
        met_at=t.met_at,
        median=float(med),
        interval80=(float(lo), float(hi)),
        p_met=float(met.mean()),
        p_met_se=mc_se(met.astype(float), chains),
        p_progress70=float(prog.mean()),
        p_progress70_se=mc_se(prog, chains),
        expected_grade=float(g.mean()),
        expected_grade_se=mc_se(g, chains),
    )


def summarize_options(
    scenario: Scenario, ev: Evaluation, tg: dict[str, KRTarget], chains: int
) -> dict[str, OptionSummary]:
    """Each option's P(all met), expected grade and key results, with Monte Carlo errors."""
    out = {}
    for o, oe in ev.options.items():
        krs = {
            kr.id: _kr_summary(oe.values[kr.id], oe.met[kr.id], oe.grades[kr.id], tg[kr.id], chains)
            for kr in scenario.key_results
        }
        out[o] = OptionSummary(
            label=scenario.options[o].label or o,
            p_all_met=float(oe.all_met.mean()),
            p_all_met_se=mc_se(oe.all_met, chains),
            expected_grade=float(oe.grade.mean()),
            expected_grade_se=mc_se(oe.grade, chains),
            key_results=krs,
        )
    return out
