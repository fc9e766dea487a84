"""Is a test worth running before deciding, and how big? Value of information (`krsim plan`).

Everything is estimated from one set of simulated quarters, the same the decision is made from:
posterior draws of the funnel (the cached fit), prior draws of every change parameter, and the
forecast's fresh period effects and count noise, replicated ``replicates`` times with fresh
randomness (each replicate reuses the fit's draws; replicate 0 is exactly `krsim run`'s forecast).
V_a is the decision rule's value of option a in one simulated quarter (all_met: 1 if every KR is
met; expected_grade: the grade; weighted: the weighted share of KRs met).

- EVPI (of the change parameters) = E[max_a E[V_a | theta]] - max_a E[V_a]. E[V_a | theta] is a
  nonparametric regression (`smooth`, a GAM) of the per-draw V_a on option a's own parameters (V_a
  depends on no other option's parameters); the other randomness of the quarter is averaged out by
  the regression, not ignored. Partial EVPI of one parameter: the same with that parameter alone.
- A design tests the A arms (every option, or the subset ``arms``, always with the control
  option first) at once for ``periods`` periods at the start of the quarter. It diverts the share
  s = A * per_arm / (periods * mean traffic) of the visitors (each visitor independently, so arms
  are independent Poisson thinnings of the traffic), split equally among the A arms; ``per_arm`` is
  the expected number of visitors per arm. The rest of the traffic keeps the current product (the
  control option); an option left out of the test gets no visitors during it. The arms share the
  quarter's period effects. After the test the option that looks best runs for the remaining
  periods; an option left out of the test can still be chosen, on what is known of it today.
- The test's data are summarised per non-control arm and stage its changes act on directly: the
  log of the arm's conversion rate at that stage (given its parent) minus the log of the control's
  rate, where the control's rate is shrunk towards the forecast's mean by the share of its
  variance that is period-to-period variation rather than count noise (the best linear predictor
  of the rate both arms share). E[V | data] is the regression of V on these summaries (a tensor
  product within an arm, arms added), as in Strong et al. (2015); for the choice made after the
  test, the KRs' values over the test periods (what the team sees of the quarter so far) are
  added, one smooth term each.
- EVSI = E[max_a E[V_a | data]] - max_a E[V_a]: what the data are worth if the whole quarter were
  still ahead. It cannot exceed the EVPI (data about the changes are worth at most knowing them);
  an estimate above the EVPI by less than two combined Monte Carlo errors is reported as the EVPI
  (``evsi_raw`` keeps the estimate), one above by more is kept and flagged in ``notes``. Net
  value: E[max_a E[W_a | data]] - max_a E[V_a], where W_a is the rule's value of
  the quarter made of the test periods (arms and the untested traffic) and then option a; it pays
  for the test's periods, so it can be negative. It is split into the exposure value (the test's
  periods, then today's pick whatever the data say: what running the arms side by side is worth)
  and the learning value (net value minus exposure value: what acting on the data adds).
  P(decision changes): the share of simulated tests after which the pick differs from today's
  pick; assurance: the share after which an option other than the control is adopted. When the
  EVPI is 0 within two Monte Carlo errors the pick is the same for every plausible value of the
  changes, so a pick that changes after a simulated test changes only because of noise in the
  test's data; such changes (and those of a design whose learning value is not above 0 within two
  errors) are flagged as worth nothing (``decision_changes_worth_nothing``).
- The recommendation: the design with the highest net value, when that is above 0 and its
  learning value is above 0 by two Monte Carlo errors (and the EVPI is not 0 within two). When
  what it teaches is worth nothing (learning value not above 0 within two errors) but running the
  arms is (exposure value above 0 by two errors), no test is needed: the advice is to roll the
  best tested option other than the control out to a share of the traffic (``roll_out``).
  Otherwise: decide now.
- Monte Carlo errors: bootstrap over the simulated quarters, refitting the regressions with their
  smoothing kept.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

import numpy as np

from ..engine import decision, forecast
from ..i18n import (
    N_,
    _,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_signed,
    get_language,
    language,
    ngettext,
    periods,
)
from ..io.data import CountTable
from ..io.scenario import (
    Flow,
    Gate,
    InputError,
    Lift,
    Scenario,
    SetRate,
    change_param_names,
    did_you_mean,
)
from ..model.posterior import Fit
from ..model.streams import seed_of
from ..model.values import column, value_stages
from . import smooth
from .records import freeze_fields

UNITS = {
    "all_met": N_("P(all KRs met)"),
    "expected_grade": N_("expected OKR grade"),
    "weighted": N_("weighted share of KRs met"),
}
WITHIN_REACH = N_("P(all KRs within reach met)")


def units_of(scenario: Scenario, rule) -> str:
    """The rule actually used (`decision.Rule`), as the unit every figure of the plan is in."""
    if rule.name == "all_met" and len(rule.krs) < len(scenario.key_results):
        return WITHIN_REACH
    return UNITS[rule.name]


def unit_words(result: PlanResult) -> str:
    """The unit of the plan's figures in the current language (the result's own is English)."""
    return _(result.units)


def _the_unit(result: PlanResult) -> str:
    """The unit as the subject of a sentence: 'P(all KRs met)', 'the expected OKR grade'."""
    unit = result.units
    if unit.startswith("P("):
        return _(unit)
    if unit == UNITS["expected_grade"]:
        return _("the expected OKR grade")
    return _("the weighted share of KRs met")


PER_ARM_FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)
PERIOD_FRACTIONS = (1 / 6, 1 / 3, 1 / 2)


@dataclass(frozen=True)
class Design:
    """A test design: visitors per arm, and its length in periods."""

    per_arm: int
    periods: int

    def to_dict(self) -> dict[str, Any]:
        return {"per_arm": self.per_arm, "periods": self.periods}


@dataclass(frozen=True)
class PartialEVPI:
    """The value of knowing one change parameter exactly, with its Monte Carlo error."""

    value: float
    se: float

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "se": self.se}


@dataclass(frozen=True)
class DesignValue:
    """What one test design is worth (see the module docstring), each estimate with its Monte
    Carlo error; ``exposure_then``: the option run after the test when nothing is learnt from it,
    ``users_reaching_per_arm``: per tested option and stage it acts on, the mean number of the
    arm's users reaching the stage's parent during the test."""

    per_arm: int
    periods: int
    share_of_traffic: float
    share_per_arm: float
    evsi: float
    evsi_se: float
    evsi_raw: float
    net_value: float
    net_value_se: float
    exposure_value: float
    exposure_value_se: float
    exposure_then: str
    learning_value: float
    learning_value_se: float
    p_decision_changes: float
    p_decision_changes_se: float
    decision_changes_worth_nothing: bool
    assurance: float
    assurance_se: float
    users_reaching_per_arm: Mapping[str, Mapping[str, float]]

    def __post_init__(self) -> None:
        freeze_fields(self, "users_reaching_per_arm")

    @property
    def design(self) -> Design:
        return Design(self.per_arm, self.periods)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["users_reaching_per_arm"] = {
            a: dict(by_stage) for a, by_stage in self.users_reaching_per_arm.items()
        }
        return out


@dataclass(frozen=True)
class PlanResult:
    """What `krsim plan` computes; ``to_dict()`` is the `--json` object, ``to_frame()`` one row
    per test design. ``sentence``, the recommendation in English (the JSON's), is written from
    the other fields when the result is made."""

    scenario: Scenario
    rule: str
    units: str  # the rule's value in words, e.g. "P(all KRs met)"
    option_now: str
    value_now: float
    evpi: float
    evpi_se: float
    partial_evpi: Mapping[str, PartialEVPI]
    designs: tuple[DesignValue, ...]
    recommended: Design | None
    samples: int
    arms: tuple[str, ...]
    mean_traffic: float
    roll_out: str | None = None  # the option to roll out to a share of traffic, without a test
    notes: tuple[str, ...] = ()  # what the user should know (also on stderr)
    history: CountTable | None = field(default=None, repr=False)  # the plan's history table
    fit: Fit | None = field(default=None, repr=False)  # the posterior draws it was made from
    sentence: str = field(init=False)

    def __post_init__(self) -> None:
        freeze_fields(self, "partial_evpi", "designs", "arms", "notes")
        with language("en"):
            object.__setattr__(self, "sentence", recommendation_sentence(self, self.best))

    @property
    def best(self) -> DesignValue | None:
        """The design with the highest net value (None without designs)."""
        return max(self.designs, key=lambda d: d.net_value, default=None)

    @property
    def evpi_is_zero(self) -> bool:
        """EVPI 0 within two Monte Carlo errors: no plausible value of the changes alters the
        pick."""
        return evpi_is_zero(self.evpi, self.evpi_se)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.id,
            "rule": self.rule,
            "units": self.units,
            "decide_now": {"option": self.option_now, "value": self.value_now},
            "evpi": self.evpi,
            "evpi_se": self.evpi_se,
            "evpi_is_zero": self.evpi_is_zero,
            "partial_evpi": {name: p.to_dict() for name, p in self.partial_evpi.items()},
            "arms": list(self.arms),
            "untested": [o for o in self.scenario.options if o not in self.arms],
            "mean_traffic": self.mean_traffic,
            "designs": [d.to_dict() for d in self.designs],
            "recommended": None if self.recommended is None else self.recommended.to_dict(),
            "roll_out": self.roll_out,
            "recommendation": self.sentence,
            "notes": list(self.notes),
            "samples": self.samples,
        }

    def to_frame(self):
        """One row per test design (indexed by its length and visitors per arm): its share of
        the traffic and every value of it with its Monte Carlo error."""
        import pandas as pd

        rows = [
            {k: v for k, v in d.to_dict().items() if k != "users_reaching_per_arm"}
            for d in self.designs
        ]
        return pd.DataFrame(rows).set_index(["periods", "per_arm"])


def evpi_is_zero(evpi: float, se: float) -> bool:
    """An EVPI of 0 within two Monte Carlo errors (exactly 0 when its error is unknown)."""
    return evpi <= (2 * se if math.isfinite(se) else 0.0)


# ------------------------------------------------------------------------------- the designs


def _nice(x: float) -> int:
    """Round down to two significant digits."""
    if x < 10:
        return max(int(math.floor(x)), 1)
    e = 10 ** (int(math.floor(math.log10(x))) - 1)
    return int(math.floor(x / e) * e)


def default_periods(horizon: int) -> list[int]:
    ks = sorted({max(1, int(round(horizon * f))) for f in PERIOD_FRACTIONS})
    return [k for k in ks if k < horizon] or [max(horizon - 1, 1)]


def check_designs(
    scenario: Scenario, per_arm: list[int] | None, periods: list[int] | None
) -> list[str]:
    problems = []
    H = scenario.horizon
    for k in periods or []:
        if not 1 <= k < H:
            problems.append(
                f"--periods: {k} must be at least 1 and below the horizon ({H} periods): a test "
                "must leave part of the quarter to act on its result"
            )
    for n in per_arm or []:
        if n < 1:
            problems.append(f"--per-arm: {n} must be at least 1")
    if sum(1 for o in scenario.options.values() if o.changes) == 0 or len(scenario.options) < 2:
        problems.append(
            f"{scenario.source or '<scenario>'}: options: planning a test needs the current "
            "product and at least one option with changes"
        )
    return problems


def check_arms(
    scenario: Scenario, arms: list[str] | None
) -> tuple[tuple[str, ...], list[str], list[str]]:
    """The arms of every test design, the notes to show, and the problems with ``arms``.

    Without ``arms`` every option is an arm. With it, the chosen options in the scenario's order,
    the control option (``scenario.control_option``) always first: it is added when left out, with
    a note, rather than refused. Every summary of a test's data is an arm's conversion rate against
    the control's rate in the same periods, so a test cannot be read without the control arm, and
    someone naming the options to try means "against the current product". Unknown ids, and a
    test with no option besides the control, are problems (one line each, naming ``--arms``).
    """
    control = scenario.control_option
    if arms is None:
        return (control, *[o for o in scenario.options if o != control]), [], []
    problems = [
        f"--arms: unknown option {a!r}{did_you_mean(a, scenario.options)}; the options are "
        + ", ".join(scenario.options)
        for a in dict.fromkeys(arms)
        if a not in scenario.options
    ]
    if problems:
        return (), [], problems
    notes = []
    if control not in arms:
        label = scenario.options[control].label
        named = repr(control) + (
            " " + _("(“{label}”)").format(label=label) if label and label != control else ""
        )
        notes.append(
            _(
                "--arms: added the control option {option} as the first arm: every arm is "
                "compared with it"
            ).format(option=named)
        )
    chosen = (control, *[o for o in scenario.options if o in arms and o != control])
    if len(chosen) < 2:
        problems.append(
            f"--arms: a test needs at least one option besides the control {control!r}; the "
            "options are " + ", ".join(scenario.options)
        )
    return chosen, notes, problems


def design_grid(
    scenario: Scenario, traffic: float, n_arms: int, per_arm=None, periods=None
) -> list[Design]:
    """Designs: each duration with each size. By default sizes are 1/8, 1/4, 1/2 and all of the
    traffic over the duration, split among the arms; durations are about 1/6, 1/3, 1/2 of the
    horizon."""
    ks = list(periods) if periods else default_periods(scenario.horizon)
    out, problems = [], []
    for k in ks:
        cap = k * traffic / n_arms
        sizes = list(per_arm) if per_arm else [_nice(f * cap) for f in PER_ARM_FRACTIONS]
        for n in sizes:
            if n > cap * (1 + 1e-9):
                problems.append(
                    f"--per-arm: {n:,} per arm over {k} period(s) needs more than all the traffic "
                    f"({n_arms} arms x {n:,} > {k} x {traffic:,.0f} expected visitors per period)"
                )
                continue
            out.append(Design(int(n), int(k)))
    if problems:
        raise InputError(problems)
    return out


# --------------------------------------------------------------------------- simulation pieces


def _sliced(shared: forecast.Shared, k: int, share: float) -> forecast.Shared:
    """The first ``k`` periods of a simulation, with the traffic thinned to ``share``."""
    return forecast.Shared(
        shared.traffic_mean[:, :k] * share,
        {n: e[:, :k] for n, e in shared.base_eta.items()},
        {n: e[:, :k] for n, e in shared.effect.items()},
        shared.order,
        shared.chains,
        {st: (lm[:, :k], kk) for st, (lm, kk) in shared.values.items()},
    )


def _totals_keys(scenario: Scenario) -> list[str]:
    """What a quarter's totals hold: each stage's count, and each value stage's total value."""
    return [*scenario.funnel, *(column(v) for v in value_stages(scenario))]


def tested_stages(scenario: Scenario, option: str) -> list[str]:
    """Stages whose conversion an option's changes act on directly (a root lift is not testable by
    splitting visitors, so it has none)."""
    out: list[str] = []
    for c in scenario.options[option].changes:
        sp = c.spec
        if isinstance(sp, Lift) and sp.on == "value":
            stages = []  # the test's summaries are conversion rates; a value lift is not read
        elif isinstance(sp, (Lift, SetRate)):
            stages = [] if sp.stage == scenario.root else [sp.stage]
        elif isinstance(sp, Gate):
            stages = [sp.before] + ([sp.counts_as] if sp.counts_as else [])
        elif isinstance(sp, Flow):
            stages = [sp.to]
        else:  # pragma: no cover - every change kind is listed above
            stages = []
        out += [s for s in stages if s not in out]
    return out


def _rate(counts: dict[str, np.ndarray], scenario: Scenario, stage: str) -> np.ndarray:
    parent = scenario.funnel[stage].from_
    x, n = counts[stage], counts[parent]
    return np.log((x + 0.5) / (n + 1.0))


@dataclass(frozen=True)
class _Replicate:
    """One replicate of the simulated quarters: per option the rule's value and the grade per
    draw, the change parameters' draws, the shared draws, the replicate's scenario (its seed) and
    the totals of the periods after each test length."""

    values: dict[str, np.ndarray]  # option -> rule value per draw (full quarter)
    grades: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    shared: forecast.Shared
    scenario: Scenario
    tail_totals: dict[str, dict[int, dict[str, np.ndarray]]]  # option -> k -> stage -> total


def _replicate(scenario: Scenario, fit, tg, r: int, periods: list[int], rule) -> _Replicate:
    s = scenario if r == 0 else scenario.with_overrides(seed=seed_of(scenario.seed, "replicate", r))
    params = forecast.draw_change_params(s, fit.n_draws)
    shared = forecast.prepare(s, fit)
    values, grades, tails = {}, {}, {}
    for o in s.options:
        counts = forecast.simulate_option(s, shared, o, params)
        oe = decision.evaluate_option(s, counts, tg, rule)
        values[o], grades[o] = oe.value, oe.grade
        tails[o] = {k: {st: c[:, k:].sum(axis=1) for st, c in counts.items()} for k in periods}
    return _Replicate(values, grades, params, shared, s, tails)


def _test_periods(scenario: Scenario, rep: _Replicate, design: Design, share: float, arms):
    """Per-arm totals over the test, and the totals of everything the funnel saw in those periods
    (the arms plus the untested traffic on the control)."""
    A = len(arms)
    control = arms[0]
    sub = _sliced(rep.shared, design.periods, share / A)
    arm_totals = {}
    for a in arms:
        sa = scenario.with_overrides(seed=seed_of(rep.scenario.seed, "arm", a))
        c = forecast.simulate_option(sa, sub, a, rep.params)
        arm_totals[a] = {st: v.sum(axis=1) for st, v in c.items()}
    rest_share = 1.0 - share
    all_totals = {st: sum(arm_totals[a][st] for a in arms) for st in _totals_keys(scenario)}
    if rest_share > 1e-12:
        sr = scenario.with_overrides(seed=seed_of(rep.scenario.seed, "untested"))
        rest = forecast.simulate_option(
            sr, _sliced(rep.shared, design.periods, rest_share), control, rep.params
        )
        for st in _totals_keys(scenario):
            all_totals[st] = all_totals[st] + rest[st].sum(axis=1)
    return arm_totals, all_totals


def _summaries(scenario: Scenario, arm_totals, arms, stages) -> dict[str, np.ndarray]:
    """Per non-control arm, an (N, d) array: log rate ratio of each tested stage against the
    control's rate shrunk towards the forecast mean (see the module docstring)."""
    control = arms[0]
    out = {}
    for a in arms[1:]:
        cols = []
        for st in stages[a]:
            lc = _rate(arm_totals[control], scenario, st)
            parent = scenario.funnel[st].from_
            n, x = arm_totals[control][parent], arm_totals[control][st]
            p = (x + 0.5) / (n + 1.0)
            v_count = np.mean((1 - p) / ((n + 1.0) * p))  # delta-method variance of a log rate
            v_total = lc.var()
            w = max(v_total - v_count, 0.0) / v_total if v_total > 0 else 0.0
            shrunk = w * lc + (1 - w) * lc.mean()
            cols.append(_rate(arm_totals[a], scenario, st) - shrunk)
        N = arm_totals[control][scenario.root].shape[0]
        out[a] = np.column_stack(cols) if cols else np.zeros((N, 0))
    return out


# ------------------------------------------------------------------------------- estimation


def _pick(opts, means, grade_means, control) -> int:
    return opts.index(decision.pick_option(opts, means, grade_means, control))


def _voi(fitted: np.ndarray, w: np.ndarray) -> float:
    """E[max_a f_a] - max_a E[f_a] under case weights ``w``; ``fitted`` is (N, A)."""
    n = w.sum()
    return float((w @ fitted.max(axis=1)) / n - ((w @ fitted) / n).max())


class _Bases:
    """Design matrices built once per set of inputs (options with the same inputs share one fit
    with several responses), so that bootstrap refits reuse them."""

    def __init__(self, blocks_per_option, N):
        groups: dict[tuple[int, ...], list[int]] = {}
        first: dict[tuple[int, ...], list] = {}
        for j, b in enumerate(blocks_per_option):
            key = tuple(id(x) for x in b)
            groups.setdefault(key, []).append(j)
            first.setdefault(key, b)
        from scipy import sparse

        self.groups = []
        for key, cols in groups.items():
            if first[key]:
                B, P = smooth.basis(first[key])
                self.groups.append((cols, (sparse.csr_array(B), P)))
            else:
                self.groups.append((cols, (np.zeros((N, 0)), np.zeros((0, 0)))))

    def fit(self, V, w=None, lams=None):
        out = np.empty_like(V)
        lam_out = []
        for g, (cols, (B, P)) in enumerate(self.groups):
            f, lam = smooth.fit(B, P, V[:, cols], w, None if lams is None else lams[g], loo=True)
            out[:, cols] = np.clip(f, -1.0, 1.0)  # differences of values in [0, 1]
            lam_out.append(lam)
        return out, lam_out


def _difference_blocks(opts, now, inputs: dict[str, np.ndarray]) -> list[list[np.ndarray]]:
    """Regression inputs of each column V_a - V_now: what a's value and today's pick's value
    depend on (nothing for today's pick itself, whose column is 0)."""
    i_now = opts.index(now) if isinstance(now, str) else now
    out = []
    for j, o in enumerate(opts):
        if j == i_now:
            out.append([])
            continue
        b = [inputs[o]] if o in inputs else []
        if opts[i_now] in inputs:
            b.append(inputs[opts[i_now]])
        out.append(b)
    return out


def _se(reps) -> float:
    return float(np.std(reps, ddof=1)) if len(reps) > 1 else float("nan")


def _estimate(bases: _Bases, V, boot_w, stat):
    """A statistic of the fitted values, its bootstrap standard error, the fitted values, and
    the bootstrap replicates (one per weight vector of ``boot_w``, for errors of differences)."""
    ones = np.ones(V.shape[0])
    fitted, lams = bases.fit(V)
    est = stat(fitted, ones)
    reps = np.array([stat(bases.fit(V, w, lams)[0], w) for w in boot_w])
    return est, _se(reps), fitted, reps


@dataclass(frozen=True)
class _Quarters:
    """The simulated quarters every estimate of a plan is made from: the options, the rule, the
    replicates, the rule's value per quarter and option ``V`` (N, options) and its difference to
    today's pick ``Vd``, the change parameters' draws (and per option the uncertain ones), the
    mean traffic per period, today's pick (its column) and the bootstrap's case weights."""

    scenario: Scenario
    targets: dict[str, decision.KRTarget]
    rule: decision.Rule
    opts: list[str]
    reps: list[_Replicate]
    V: np.ndarray
    Vd: np.ndarray
    means: np.ndarray
    params: dict[str, np.ndarray]
    uncertain: dict[str, list[str]]
    traffic: float
    now: int
    boot_w: list[np.ndarray]

    @property
    def N(self) -> int:
        return self.V.shape[0]


def _today(scenario: Scenario, ev0: decision.Evaluation, chains: int, V, G) -> int:
    """Today's pick (its column): `krsim run`'s (guardrails and the primary KR included);
    without either, the same as the best mean over every replicate up to Monte Carlo noise."""
    opts = list(scenario.options)
    if decision.primary_kr(scenario) or any(kr.guardrail for kr in scenario.key_results):
        return opts.index(decision.choose_option(scenario, ev0.options, chains))
    return _pick(opts, V.mean(axis=0), G.mean(axis=0), scenario.control_option)


def _uncertain(scenario: Scenario, params: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Per option, its change parameters that vary across the draws."""
    out: dict[str, list[str]] = {o: [] for o in scenario.options}
    for o, opt in scenario.options.items():
        for names in change_param_names(o, opt):
            out[o] += [name for _field, name in names if np.ptp(params[name]) > 0]
    return out


def _simulate_quarters(
    scenario: Scenario,
    fit: Fit,
    history: CountTable,
    ks: list[int],
    replicates: int,
    bootstrap: int,
) -> _Quarters:
    """``replicates`` sets of simulated quarters under every option (the first is `krsim run`'s
    forecast), the rule's value of each, today's pick and ``bootstrap`` resamples' weights."""
    tg = decision.targets(scenario, history)
    opts = list(scenario.options)
    # the rule the decision is made under (`krsim run`'s: out-of-reach KRs left out, expected
    # grade when nothing is within reach), from the same forecast as replicate 0
    ev0 = decision.evaluate(scenario, forecast.simulate(scenario, fit), tg)
    reps = [_replicate(scenario, fit, tg, r, ks, ev0.rule) for r in range(replicates)]
    N = sum(rp.values[opts[0]].shape[0] for rp in reps)
    V = np.column_stack([np.concatenate([rp.values[o] for rp in reps]) for o in opts])
    G = np.column_stack([np.concatenate([rp.grades[o] for rp in reps]) for o in opts])
    params = {n: np.concatenate([rp.params[n] for rp in reps]) for n in reps[0].params}
    traffic = float(np.concatenate([rp.shared.traffic_mean.mean(axis=1) for rp in reps]).mean())
    rng = np.random.default_rng(seed_of(scenario.seed, "bootstrap"))
    boot_w = [rng.multinomial(N, np.full(N, 1.0 / N)).astype(float) for _b in range(bootstrap)]
    now = _today(scenario, ev0, fit.chains, V, G)
    # Regressions are of each option's value minus today's pick's, draw by draw (the incremental
    # net benefit of Strong et al.): the same value of information, with much less noise, since
    # options share the quarter's randomness (common random numbers).
    Vd = V - V[:, [now]]
    return _Quarters(
        scenario=scenario,
        targets=tg,
        rule=ev0.rule,
        opts=opts,
        reps=reps,
        V=V,
        Vd=Vd,
        means=V.mean(axis=0),
        params=params,
        uncertain=_uncertain(scenario, params),
        traffic=traffic,
        now=now,
        boot_w=boot_w,
    )


def _evpi(q: _Quarters) -> tuple[float, float, dict[str, PartialEVPI]]:
    """EVPI and partial EVPI: regressions of V_a on option a's parameters (all of them; each
    alone)."""
    own = {
        o: np.column_stack([q.params[n] for n in q.uncertain[o]]) for o in q.opts if q.uncertain[o]
    }
    if own:
        blocks = _difference_blocks(q.opts, q.now, own)
        evpi, evpi_se = _estimate(_Bases(blocks, q.N), q.Vd, q.boot_w, _voi)[:2]
    else:
        evpi, evpi_se = 0.0, 0.0
    evpi = max(evpi, 0.0)  # E[max] >= max E: below 0 only by Monte Carlo error
    partial = {}
    for o in q.opts:
        for name in q.uncertain[o]:
            bl = _difference_blocks(q.opts, q.now, {o: q.params[name][:, None]})
            val, se = _estimate(_Bases(bl, q.N), q.Vd, q.boot_w, _voi)[:2]
            partial[name] = PartialEVPI(max(val, 0.0), se)
    return evpi, evpi_se, partial


def _test_totals(q: _Quarters, d: Design, share: float, arms: tuple[str, ...]):
    """Over every replicate: per arm the totals of the test periods, and the totals of
    everything the funnel saw in them (the arms and the untested traffic)."""
    keys = _totals_keys(q.scenario)
    per_rep = [_test_periods(rp.scenario, rp, d, share, arms) for rp in q.reps]
    arm_totals = {
        a: {st: np.concatenate([at[a][st] for at, _tt in per_rep]) for st in keys} for a in arms
    }
    test_totals = {st: np.concatenate([tt[st] for _at, tt in per_rep]) for st in keys}
    return arm_totals, test_totals


def _with_test(q: _Quarters, d: Design, test_totals: dict[str, np.ndarray]) -> np.ndarray:
    """W (N, options): the rule's value of the quarter made of the test periods and then each
    option for the rest."""
    keys = _totals_keys(q.scenario)
    W = []
    for o in q.opts:
        tail = {
            st: np.concatenate([rp.tail_totals[o][d.periods][st] for rp in q.reps]) for st in keys
        }
        quarter = {st: (test_totals[st] + tail[st])[:, None] for st in keys}
        W.append(decision.evaluate_option(q.scenario, quarter, q.targets, q.rule).value)
    return np.column_stack(W)


def _net(
    f: np.ndarray, w: np.ndarray, *, W_now: np.ndarray, Wd: np.ndarray, V: np.ndarray
) -> float:
    """The realised value of following the rule "pick the best fitted option", not the fitted
    maximum: an additive regression can misstate E[W | data] where it matters for the pick,
    and this estimate cannot profit from that (it is at most the value of the best rule)."""
    n = w.sum()
    d = f.argmax(axis=1)
    gain = Wd[np.arange(len(d)), d]
    return float((w @ gain + w @ W_now) / n - ((w @ V) / n).max())


def _exposure(w: np.ndarray, W: np.ndarray, V: np.ndarray) -> float:
    """The test periods alone, learning nothing (then today's best guess for the rest)."""
    n = w.sum()
    return float(((w @ W) / n).max() - ((w @ V) / n).max())


def _design_value(
    q: _Quarters,
    d: Design,
    arms: tuple[str, ...],
    stages: dict[str, list[str]],
    evpi: tuple[float, float],
) -> DesignValue:
    """What a design is worth: EVSI, net value, exposure and learning values, P(decision
    changes), assurance."""
    share = len(arms) * d.per_arm / (d.periods * q.traffic)
    arm_totals, test_totals = _test_totals(q, d, share, arms)
    summ = _summaries(q.scenario, arm_totals, arms, stages)
    informative = {a: summ[a] for a in arms[1:] if summ[a].shape[1] and q.uncertain[a]}
    W = _with_test(q, d, test_totals)
    own = _Bases(_difference_blocks(q.opts, q.now, informative), q.N)
    evsi_raw, evsi_se = _estimate(own, q.Vd, q.boot_w, _voi)[:2]
    # After the test the team also knows how far each KR got during it: one term per KR
    so_far = [decision.kr_value(kr, test_totals)[:, None] for kr in q.scenario.key_results]
    every = list(informative.values()) + (so_far if informative else [])
    net = partial(_net, W_now=W[:, q.now], Wd=W - W[:, [q.now]], V=q.V)
    net_value, net_se, fW, net_reps = _estimate(
        _Bases([every for _o in q.opts], q.N), W - W[:, [q.now]], q.boot_w, net
    )
    exposure = _exposure(np.ones(q.N), W, q.V)
    exposure_reps = np.array([_exposure(w, W, q.V) for w in q.boot_w])
    learning_se = _se(net_reps - exposure_reps)  # paired: the same resamples
    after = fW.argmax(axis=1)
    after[fW[:, q.now] >= fW.max(axis=1) - 1e-12] = q.now  # ties keep today's pick
    changes = (after != q.now).astype(float)
    adopt = (np.array(q.opts)[after] != q.scenario.control_option).astype(float)
    learning = net_value - exposure
    return DesignValue(
        per_arm=d.per_arm,
        periods=d.periods,
        share_of_traffic=share,
        share_per_arm=share / len(arms),
        evsi=coherent_evsi(evsi_raw, evsi_se, *evpi),
        evsi_se=evsi_se,
        evsi_raw=evsi_raw,
        net_value=net_value,
        net_value_se=net_se,
        exposure_value=exposure,
        exposure_value_se=_se(exposure_reps),
        exposure_then=q.opts[int(np.argmax(W.mean(axis=0)))],
        learning_value=learning,
        learning_value_se=learning_se,
        p_decision_changes=float(changes.mean()),
        p_decision_changes_se=decision.mc_se(changes, 1),
        decision_changes_worth_nothing=bool(
            evpi_is_zero(*evpi) or not _above_zero(learning, learning_se)
        ),
        assurance=float(adopt.mean()),
        assurance_se=decision.mc_se(adopt, 1),
        users_reaching_per_arm={
            a: {st: float(np.mean(arm_totals[a][q.scenario.funnel[st].from_])) for st in stages[a]}
            for a in arms[1:]
            if stages[a]
        },
    )


def _what_to_do(
    q: _Quarters, arms: tuple[str, ...], best: DesignValue | None, evpi: float, evpi_se: float
) -> tuple[Design | None, str | None]:
    """The design to run (`advice` says test), or the option to roll out (it says roll out)."""
    what = advice(best, evpi, evpi_se)
    if what == "test":
        assert best is not None
        return best.design, None
    if what == "roll_out":
        # the best tested option other than the control (today's pick if it is one), by its
        # value today
        if q.opts[q.now] in arms[1:]:
            return None, q.opts[q.now]
        tested = [q.opts.index(a) for a in arms[1:]]
        return None, q.opts[max(tested, key=q.means.__getitem__)]
    return None, None


def plan(
    scenario: Scenario,
    *,
    per_arm: list[int] | None = None,
    periods: list[int] | None = None,
    replicates: int = 4,
    bootstrap: int = 8,
    fit: Fit | None = None,
    history: CountTable | None = None,
    progress: Callable[[int, int], None] | None = None,
    arms: list[str] | None = None,
    draws: int | None = None,
    seed: int | None = None,
) -> PlanResult:
    """Value of information of the decision and of each candidate test design.

    ``history`` defaults to the scenario's table, ``fit`` to its (cached) fit;
    ``progress(done, total)`` is called as designs are evaluated; ``arms``: the options every
    test design runs (default all; see `check_arms`, whose notes go to ``PlanResult.notes``);
    ``draws``, ``seed``: the scenario's model settings overridden (`Scenario.with_overrides`).
    """
    if draws is not None or seed is not None:
        scenario = scenario.with_overrides(seed=seed, draws=draws)
    with _single_threaded_blas():
        return _plan(
            scenario, per_arm, periods, replicates, bootstrap, fit, history, progress, arms
        )


def _single_threaded_blas():
    """The regressions multiply small matrices: threads only contend (measured: 15x slower on a
    busy two-core machine with OpenBLAS's default threads)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the scientific stack
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _inputs(
    scenario: Scenario,
    arms: list[str] | None,
    per_arm: list[int] | None,
    periods: list[int] | None,
    history: CountTable | None,
    fit: Fit | None,
) -> tuple[tuple[str, ...], list[str], CountTable, Fit]:
    """The arms and the notes on them (the input's problems raised, one line each), the history
    and the fit (the scenario's table and its cached fit unless given)."""
    with language("en"):  # the result's notes and sentence are English, as its JSON
        chosen, notes, arm_problems = check_arms(scenario, arms)
    problems = check_designs(scenario, per_arm, periods) + arm_problems
    if problems:
        raise InputError(problems)
    if history is None:
        from ..io.data import read_history

        history = read_history(scenario)
    if fit is None:
        from ..engine import soundness

        fit = soundness.fit(scenario, history)
    return chosen, notes, history, fit


def _plan(
    scenario: Scenario,
    per_arm: list[int] | None,
    periods: list[int] | None,
    replicates: int,
    bootstrap: int,
    fit: Fit | None,
    history: CountTable | None,
    progress: Callable[[int, int], None] | None,
    asked: list[str] | None,
) -> PlanResult:
    arms, notes, history, fit = _inputs(scenario, asked, per_arm, periods, history, fit)
    ks = list(periods) if periods else default_periods(scenario.horizon)
    q = _simulate_quarters(scenario, fit, history, ks, replicates, bootstrap)
    designs = design_grid(scenario, q.traffic, len(arms), per_arm, ks)
    total = 1 + len(designs)
    tick = progress or (lambda done, total: None)
    tick(0, total)
    evpi, evpi_se, partial_evpi = _evpi(q)
    tick(1, total)
    units = units_of(scenario, q.rule)
    stages = {a: tested_stages(scenario, a) for a in arms}
    values = []
    for i, d in enumerate(designs):
        v = _design_value(q, d, arms, stages, (evpi, evpi_se))
        if _evsi_too_high(v.evsi_raw, v.evsi_se, evpi, evpi_se):
            with language("en"):
                notes.append(_evsi_note(scenario, d, v.evsi_raw, v.evsi_se, evpi, evpi_se, units))
        values.append(v)
        tick(2 + i, total)
    best = max(values, key=lambda x: x.net_value, default=None)
    recommended, roll_out = _what_to_do(q, arms, best, evpi, evpi_se)
    return PlanResult(
        scenario=scenario,
        rule=q.rule.name,
        units=units,
        option_now=q.opts[q.now],
        value_now=float(q.means[q.now]),
        evpi=evpi,
        evpi_se=evpi_se,
        partial_evpi=partial_evpi,
        designs=values,
        recommended=recommended,
        samples=q.N,
        arms=arms,
        mean_traffic=q.traffic,
        roll_out=roll_out,
        notes=notes,
        history=history,
        fit=fit,
    )


def _evsi_too_high(evsi_raw: float, evsi_se: float, evpi: float, evpi_se: float) -> bool:
    """An EVSI estimate above the EVPI by more than two combined Monte Carlo errors."""
    return evsi_raw > evpi + 2 * math.hypot(evsi_se, evpi_se)


def _evsi_note(
    scenario: Scenario,
    d: Design | DesignValue,
    evsi_raw: float,
    evsi_se: float,
    evpi: float,
    evpi_se: float,
    units: str,
) -> str:
    return _(
        "the EVSI of the {length} test with {n} visitors per arm, {evsi} ± {evsi_se} in {unit}, "
        "exceeds the EVPI, {evpi} ± {evpi_se}, by more than two Monte Carlo errors, which data "
        "cannot do: its regression is unreliable; more draws (--draws) narrow the errors"
    ).format(
        length=_length(scenario, d.periods),
        n=fmt_int(d.per_arm),
        evsi=fmt_num(evsi_raw, 3),
        evsi_se=fmt_num(evsi_se, 3),
        unit=_(units),
        evpi=fmt_num(evpi, 3),
        evpi_se=fmt_num(evpi_se, 3),
    )


def planning_notes(result: PlanResult) -> list[str]:
    """The notes found while planning (an EVSI estimate above the EVPI), in the current
    language; ``result.notes`` holds them in English after the notes on ``--arms``."""
    return [
        _evsi_note(
            result.scenario,
            d,
            d.evsi_raw,
            d.evsi_se,
            result.evpi,
            result.evpi_se,
            result.units,
        )
        for d in result.designs
        if _evsi_too_high(d.evsi_raw, d.evsi_se, result.evpi, result.evpi_se)
    ]


def advice(best: DesignValue | None, evpi: float, evpi_se: float) -> str:
    """What to do, given the design with the highest net value: "test" when its net value is
    above 0 and its learning value above 0 by two Monte Carlo errors (and the EVPI is not 0
    within two: then no data can change the pick); "roll_out" when what it teaches is worth
    nothing (learning value not above 0 by two errors) but running its arms is (exposure value
    above 0 by two errors); else "decide_now"."""
    if best is None:
        return "decide_now"
    learns = _above_zero(best.learning_value, best.learning_value_se)
    if learns:
        test = best.net_value > 0 and not evpi_is_zero(evpi, evpi_se)
        return "test" if test else "decide_now"
    if _above_zero(best.exposure_value, best.exposure_value_se):
        return "roll_out"
    return "decide_now"


def _above_zero(x: float, se: float) -> bool:
    """Above 0 by more than two Monte Carlo errors (when the error is unknown: above 0)."""
    return x > (2 * se if math.isfinite(se) else 0.0)


def coherent_evsi(evsi: float, evsi_se: float, evpi: float, evpi_se: float) -> float:
    """The EVSI as reported: at least 0 (E[max] >= max E) and at most the EVPI (data about the
    changes are worth no more than knowing them) when the estimate exceeds the EVPI by less than
    two combined Monte Carlo errors, sqrt(se_EVSI^2 + se_EVPI^2); an estimate above by more is
    kept as it is (and flagged), since clipping would hide an unreliable regression."""
    evsi = max(evsi, 0.0)
    if evsi > evpi and evsi - evpi <= 2 * math.hypot(evsi_se, evpi_se):
        return evpi
    return evsi


def _quote(s: Scenario, option: str) -> str:
    return _("‘{option}’").format(option=s.options[option].label or option)


def _and(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return _("{items} and {last}").format(items=", ".join(words[:-1]), last=words[-1])


def _length(s: Scenario, k: int) -> str:
    """A test's length as an adjective: '2-week' (French 'de 2 semaines')."""
    if get_language() == "en":
        return f"{k}-{s.period}"
    return periods(k, s.period)


def _first_periods(k: int, period: str) -> str:
    """'the first 2 week(s)' (French 'les 2 premières semaines')."""
    if get_language() == "en":
        return f"the first {k} {period}(s)"
    forms = {
        "day": lambda: ngettext("the first day", "the first {n} days", k),
        "week": lambda: ngettext("the first week", "the first {n} weeks", k),
        "month": lambda: ngettext("the first month", "the first {n} months", k),
    }
    if period in forms:
        return forms[period]().format(n=k)
    return _("the first {periods}").format(periods=periods(k, period))


def _pm(x: float, se: float, digits: int = 3, signed: bool = False) -> str:
    """'0.012 ± 0.003' ('+0.012 ± 0.003' when ``signed``), with the locale's decimal sign."""
    value = fmt_signed(x, digits) if signed else fmt_num(x, digits)
    return f"{value} ± {fmt_num(se, digits)}"


def _design_words(result: PlanResult, d: DesignValue) -> str:
    s = result.scenario
    arms = _and([_quote(s, a) for a in result.arms])
    return _("a {length} test of {arms} with {n} visitors per arm ({share} of the traffic)").format(
        length=_length(s, d.periods),
        arms=arms,
        n=fmt_int(d.per_arm),
        share=fmt_pct(d.share_of_traffic, 0),
    )


def _evpi_sentences(result: PlanResult) -> list[str]:
    """Today's pick and what knowing the changes exactly would be worth."""
    s = result.scenario
    out = [
        _("Deciding now picks {option}, with {unit} = {value}.").format(
            option=_quote(s, result.option_now),
            unit=unit_words(result),
            value=fmt_num(result.value_now, 2),
        )
    ]
    evpi = _pm(result.evpi, result.evpi_se)
    if result.evpi_is_zero:
        out.append(
            _(
                "Knowing the changes exactly would raise {the_unit} by {evpi} (EVPI), 0 within its "
                "Monte Carlo error: the pick is the same for every plausible value of the changes "
                "— knowing them exactly would not change it, so no test can improve the decision."
            ).format(the_unit=_the_unit(result), evpi=evpi)
        )
    else:
        out.append(
            _(
                "Knowing the changes exactly would raise {the_unit} by {evpi} (EVPI): the most "
                "any test could be worth."
            ).format(the_unit=_the_unit(result), evpi=evpi)
        )
    return out


def _figures(result: PlanResult, best: DesignValue) -> dict[str, str]:
    """The figures the advice quotes, as text."""
    return {
        "design": _design_words(result, best),
        "unit": unit_words(result),
        "evsi": _pm(best.evsi, best.evsi_se),
        "net": _pm(best.net_value, best.net_value_se, signed=True),
        "exposure": _pm(best.exposure_value, best.exposure_value_se, signed=True),
        "learning": _pm(best.learning_value, best.learning_value_se, signed=True),
        "p_change": _pm(best.p_decision_changes, best.p_decision_changes_se, 2),
        "evpi": fmt_num(result.evpi, 3),
    }


def _worthless_changes(result: PlanResult, best: DesignValue, figures: dict[str, str]) -> list[str]:
    """Why the pick changing after a simulated test is no reason to test, when it does."""
    if result.evpi_is_zero and best.p_decision_changes > 0:
        return [
            _(
                "Simulated tests still change the pick (P(decision changes) = {p_change} for "
                "{design}), but only because of noise in the test's data: such a change is worth "
                "nothing (EVSI {evsi} in {unit}, against the EVPI {evpi})."
            ).format(**figures)
        ]
    if best.decision_changes_worth_nothing and best.p_decision_changes > 0:
        design = figures["design"]
        return [
            _(
                "{Design} changes the pick with probability {p_change}, but acting on its data is "
                "worth {learning} in {unit} (learning value), nothing within two Monte Carlo "
                "errors: those changes gain nothing."
            ).format(Design=design[0].upper() + design[1:], **figures)
        ]
    return []


def _recommended(best: DesignValue, figures: dict[str, str]) -> list[str]:
    """The recommended test: what it changes and what it is worth."""
    out = [
        _(
            "Recommended: {design}. It changes the pick with probability {p_change} and is "
            "worth {net} in {unit} against deciding now, net of its cost; its data alone "
            "would be worth {evsi} (EVSI, at most the EVPI {evpi})."
        ).format(**figures)
    ]
    if 0 < best.learning_value < best.exposure_value:
        out.append(
            _(
                "Of the net value, {exposure} in {unit} comes from running the arms side by "
                "side during the test and {learning} from what it teaches."
            ).format(**figures)
        )
    return out


def _roll_out(result: PlanResult, best: DesignValue, figures: dict[str, str]) -> str:
    """No test needed: the option to roll out, how, and what it is worth."""
    s = result.scenario
    assert result.roll_out is not None
    others = list(result.arms[1:])
    share = fmt_pct(best.share_per_arm, 0)
    if len(others) == 1:
        how = _("{option} on {share} of the visitors").format(
            option=_quote(s, others[0]), share=share
        )
    else:
        how = _(
            "{options} on {share} of the visitors each (`--arms {control},{roll_out}` plans "
            "{option} alone)"
        ).format(
            options=_and([_quote(s, a) for a in others]),
            share=share,
            control=result.arms[0],
            roll_out=result.roll_out,
            option=_quote(s, result.roll_out),
        )
    return _(
        "No test needed: roll out {option} to a share of traffic. Running {how} for "
        "{first}, then {then} for the rest of the quarter, is worth {exposure} in {unit} "
        "against deciding now; acting on what such a test shows would add {learning} "
        "(learning value), nothing within two Monte Carlo errors."
    ).format(
        option=_quote(s, result.roll_out),
        how=how,
        first=_first_periods(best.periods, s.period),
        then=_quote(s, best.exposure_then),
        **figures,
    )


def _decide_now(best: DesignValue, figures: dict[str, str]) -> str:
    """Decide now: why the best design is not worth running."""
    if best.learning_value > 0 and not best.decision_changes_worth_nothing:
        return _(
            "Decide now: no test design gains; the best, {design}, is worth {net} in {unit} "
            "against deciding now, net of its cost (EVSI {evsi})."
        ).format(**figures)
    return _(
        "Decide now: no test design gains; for the best, {design}, what it teaches is "
        "worth {learning} in {unit} and running its arms {exposure}, neither above 0 by "
        "two Monte Carlo errors."
    ).format(**figures)


def recommendation_sentence(result: PlanResult, best: DesignValue | None) -> str:
    """The plan in words: today's pick, the EVPI, and what to do — run the best design, roll an
    option out to a share of the traffic without a test, or decide now. Every sentence names the
    rule's unit and shows the figures it compares, each with its Monte Carlo error. In the
    current language."""
    out = _evpi_sentences(result)
    if best is None:
        return " ".join(out)
    figures = _figures(result, best)
    out += _worthless_changes(result, best, figures)
    if result.recommended:
        out += _recommended(best, figures)
    elif result.roll_out:
        out.append(_roll_out(result, best, figures))
    else:
        out.append(_decide_now(best, figures))
    return " ".join(out)


def sentence_words(result: PlanResult) -> str:
    """The recommendation in the current language (the result's own is English)."""
    if get_language() == "en":
        return result.sentence
    return recommendation_sentence(result, result.best)


def progress_bar(label: str | None = None, after: float = 2.0, stream=None):
    """A text progress bar with the time so far, shown once the work has taken more than ``after``
    seconds; on stderr only when it is a terminal (a redirected stderr gets no bar)."""
    if stream is None:
        if not sys.stderr.isatty():
            return None
        stream = sys.stderr
    start = time.monotonic()
    shown = [False]
    label = label if label is not None else _("planning")
    template = _("{label} {bar} {done}/{total}, {seconds} s so far")  # in the caller's language

    def update(done: int, total: int) -> None:
        if not shown[0] and time.monotonic() - start < after and done < total:
            return
        if not shown[0] and done >= total and time.monotonic() - start < after:
            return
        shown[0] = True
        width = 30
        fill = int(width * done / max(total, 1))
        secs = time.monotonic() - start
        bar = f"[{'#' * fill}{'.' * (width - fill)}]"
        stream.write(
            "\r"
            + template.format(label=label, bar=bar, done=done, total=total, seconds=f"{secs:.0f}")
        )
        if done >= total:
            stream.write("\n")
        stream.flush()

    return update


def p_change_text(d: DesignValue) -> str:
    """P(decision changes) of a design as shown in tables: marked when the changes are worth
    nothing (see the module docstring), so that it does not read as a reason to test."""
    text = _pm(d.p_decision_changes, d.p_decision_changes_se, 2)
    return f"{text} *" if d.decision_changes_worth_nothing and d.p_decision_changes else text


WORTH_NOTHING = N_(
    "* the pick changes after such a test only because of noise in its data, or in ways that "
    "gain nothing: its learning value is not above 0 by two Monte Carlo errors"
)


def text_plan(result: PlanResult) -> str:
    """The plan as a terminal table, in the current language."""
    s = result.scenario
    unit = unit_words(result)
    untested = [o for o in s.options if o not in result.arms]
    lines = [
        _(
            "Value of testing before deciding, in {unit}; ± is the Monte Carlo error ({n} "
            "simulated quarters)."
        ).format(unit=unit, n=fmt_int(result.samples)),
        _("Arms of every test: {arms} (visitors split equally; the rest keep “{option}”).").format(
            arms=", ".join(result.arms), option=s.options[result.arms[0]].label or result.arms[0]
        ),
    ]
    if untested:
        lines.append(
            _(
                "Not tested: {options} (no visitors during the test; still choosable after it, "
                "on what is known today)."
            ).format(options=", ".join(untested))
        )
    lines += [
        "",
        _("EVPI (the change parameters known exactly): {evpi}").format(
            evpi=_pm(result.evpi, result.evpi_se)
        ),
    ]
    for name, d in sorted(result.partial_evpi.items(), key=lambda kv: -kv[1].value):
        lines.append(
            "  " + _("partial EVPI {name}: {value}").format(name=name, value=_pm(d.value, d.se))
        )
    heads = [
        (_("periods"), 7),
        (_("per arm"), 9),
        (_("traffic"), 7),
        ("EVSI", 15),
        (_("net value"), 16),
        (_("exposure"), 16),
        (_("P(change)"), 13),
        (_("assurance"), 11),
    ]
    w = [max(width, len(h)) for h, width in heads]
    lines += ["", " ".join(h.rjust(wi) for (h, _width), wi in zip(heads, w, strict=True))]
    for d in result.designs:
        cells = [
            str(d.periods).rjust(w[0]),
            fmt_int(d.per_arm).rjust(w[1]),
            fmt_pct(d.share_of_traffic, 0).rjust(w[2]),
            fmt_num(d.evsi, 3).rjust(7) + " ± " + fmt_num(d.evsi_se, 3),
            fmt_signed(d.net_value, 3).rjust(8) + " ± " + fmt_num(d.net_value_se, 3),
            fmt_signed(d.exposure_value, 3).rjust(8) + " ± " + fmt_num(d.exposure_value_se, 3),
            p_change_text(d).rjust(w[6]),
            fmt_num(d.assurance, 2).rjust(4) + " ± " + fmt_num(d.assurance_se, 2),
        ]
        lines.append(" ".join(cells))
    if any(p_change_text(d).endswith("*") for d in result.designs):
        lines.append(_(WORTH_NOTHING))
    lines += ["", sentence_words(result)]
    return "\n".join(lines)
