"""KR values, probabilities, grades, the recommendation: docs/design.md §5, vectorised over draws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import CountTable
from .forecast import Forecast
from .scenario import KeyResult, Scenario


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


def kr_value(kr: KeyResult, totals: dict[str, np.ndarray]) -> np.ndarray:
    if kr.is_ratio:
        a, b = (totals[s] for s in kr.stages)
        return np.divide(a, b, out=np.zeros(np.shape(a), dtype=float), where=np.asarray(b) > 0)
    return np.asarray(totals[kr.stages[0]], dtype=float)


def baselines(scenario: Scenario, history: CountTable) -> dict[str, float]:
    """Baseline of each KR: the `baseline:` block, else its value over the last `horizon` periods."""
    H = scenario.horizon
    last = {s: float(history.counts[s][-H:].sum()) for s in scenario.funnel}
    gaps = {}
    for s, v in history.values.items():
        window = v[-H:]
        last[f"{s}.value"] = float(np.nansum(window))
        gaps[f"{s}.value"] = [
            history.labels[len(v) - H + i] for i in np.flatnonzero(np.isnan(window))
        ]
    out = {}
    for kr in scenario.key_results:
        if scenario.baseline and kr.id in scenario.baseline:
            out[kr.id] = float(scenario.baseline[kr.id])
        else:
            out[kr.id] = float(kr_value(kr, {k: np.asarray(v) for k, v in last.items()}))
    return out


def targets(scenario: Scenario, history: CountTable) -> dict[str, KRTarget]:
    base = baselines(scenario, history)
    share = 0.7 if scenario.decision.grading == "aspirational" else 1.0
    out = {}
    for kr in scenario.key_results:
        t = kr.parsed_target
        value = base[kr.id] * (1 + t.value / 100) if t.relative else t.value
        out[kr.id] = KRTarget(base[kr.id], value, t.op, share)
    return out


def grade(value: np.ndarray, t: KRTarget) -> np.ndarray:
    met = value >= t.target if t.op == ">=" else value <= t.target
    if t.ambitious:
        return np.clip((value - t.baseline) / (t.target - t.baseline), 0.0, 1.0)
    return met.astype(float)


def weights(scenario: Scenario) -> np.ndarray:
    w = scenario.decision.weights
    ids = [kr.id for kr in scenario.key_results]
    arr = np.array([float(w.get(i, 0.0)) for i in ids]) if w else np.ones(len(ids))
    return arr / arr.sum()


@dataclass(frozen=True)
class OptionEval:
    values: dict[str, np.ndarray]  # kr -> value per draw
    met: dict[str, np.ndarray]
    grades: dict[str, np.ndarray]
    value: np.ndarray  # the rule's value per draw
    grade: np.ndarray
    all_met: np.ndarray


def evaluate_option(
    scenario: Scenario, counts: dict[str, np.ndarray], tg: dict[str, KRTarget]
) -> OptionEval:
    """KR values, met indicators and grades per draw, from one option's simulated counts."""
    w = weights(scenario)
    totals = {s: c.sum(axis=1) for s, c in counts.items()}
    values, mets, grades = {}, {}, {}
    for kr in scenario.key_results:
        t = tg[kr.id]
        v = kr_value(kr, totals)
        g = grade(v, t)
        met = t.met(v)
        values[kr.id], grades[kr.id], mets[kr.id] = v, g, met
    G = np.stack(list(grades.values()))
    M = np.stack(list(mets.values())).astype(float)
    og = w @ G
    allm = M.min(axis=0)
    rule = scenario.decision.rule
    val = allm if rule == "all_met" else og if rule == "expected_grade" else w @ M
    return OptionEval(values, mets, grades, val, og, allm)


@dataclass(frozen=True)
class Evaluation:
    """Per-draw quantities behind the summary, per option (kept for reports and sensitivity)."""

    options: dict[str, OptionEval]


def evaluate(scenario: Scenario, fc: Forecast, tg: dict[str, KRTarget]) -> Evaluation:
    return Evaluation({o: evaluate_option(scenario, fc.counts[o], tg) for o in fc.options})


def recommend(scenario: Scenario, ev: Evaluation) -> dict:
    opts = list(ev.options)
    V = np.stack([ev.options[o].value for o in opts])  # options x draws
    best = V.max(axis=0)
    is_best = V == best
    p_best = (is_best / is_best.sum(axis=0)).mean(axis=1)
    loss = (best - V).mean(axis=1)
    ev_mean = V.mean(axis=1)
    grade_mean = np.array([ev.options[o].grade.mean() for o in opts])
    control = scenario.control_option
    # maximise E[V]; ties to the higher expected grade, then to the option without changes
    pick = opts.index(pick_option(opts, ev_mean, grade_mean, control))
    return {
        "option": opts[pick],
        "rule": scenario.decision.rule,
        "value": {o: float(ev_mean[i]) for i, o in enumerate(opts)},
        "p_best": {o: float(p_best[i]) for i, o in enumerate(opts)},
        "expected_loss": {o: float(loss[i]) for i, o in enumerate(opts)},
    }


def pick_option(opts: list[str], value: np.ndarray, grade_mean: np.ndarray, control: str) -> str:
    """Maximise E[V]; ties go to the higher expected grade, then to the option without changes."""
    tol = 1e-12
    cands = [i for i in range(len(opts)) if value[i] >= value.max() - tol]
    gbest = max(grade_mean[i] for i in cands)
    cands = [i for i in cands if grade_mean[i] >= gbest - tol]
    return opts[next((i for i in cands if opts[i] == control), cands[0])]


def summarize_options(
    scenario: Scenario, ev: Evaluation, tg: dict[str, KRTarget], chains: int
) -> dict:
    out = {}
    for o, oe in ev.options.items():
        krs = {}
        for kr in scenario.key_results:
            v, m, g = oe.values[kr.id], oe.met[kr.id], oe.grades[kr.id]
            lo, med, hi = np.quantile(v, [0.1, 0.5, 0.9])
            prog = (g >= 0.7).astype(float)
            krs[kr.id] = {
                "baseline": tg[kr.id].baseline,
                "target": tg[kr.id].target,
                "met_at": tg[kr.id].met_at,
                "median": float(med),
                "interval80": [float(lo), float(hi)],
                "p_met": float(m.mean()),
                "p_met_se": mc_se(m.astype(float), chains),
                "p_progress70": float(prog.mean()),
                "p_progress70_se": mc_se(prog, chains),
                "expected_grade": float(g.mean()),
                "expected_grade_se": mc_se(g, chains),
            }
        opt = scenario.options[o]
        out[o] = {
            "label": opt.label or o,
            "p_all_met": float(oe.all_met.mean()),
            "p_all_met_se": mc_se(oe.all_met, chains),
            "expected_grade": float(oe.grade.mean()),
            "expected_grade_se": mc_se(oe.grade, chains),
            "key_results": krs,
        }
    return out
