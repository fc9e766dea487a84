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
- A design tests every option at once for ``periods`` periods at the start of the quarter. It
  diverts the share s = A * per_arm / (periods * mean traffic) of the visitors (each visitor
  independently, so arms are independent Poisson thinnings of the traffic), split equally among
  the A arms; ``per_arm`` is the expected number of visitors per arm. The rest of the traffic keeps
  the current product (the control option). The arms share the quarter's period effects. After the
  test the option that looks best runs for the remaining periods.
- The test's data are summarised per non-control arm and stage its changes act on directly: the
  log of the arm's conversion rate at that stage (given its parent) minus the log of the control's
  rate, where the control's rate is shrunk towards the forecast's mean by the share of its
  variance that is period-to-period variation rather than count noise (the best linear predictor
  of the rate both arms share). E[V | data] is the regression of V on these summaries (a tensor
  product within an arm, arms added), as in Strong et al. (2015); for the choice made after the
  test, the KRs' values over the test periods (what the team sees of the quarter so far) are
  added, one smooth term each.
- EVSI = E[max_a E[V_a | data]] - max_a E[V_a]: what the data are worth if the whole quarter were
  still ahead. Net value: E[max_a E[W_a | data]] - max_a E[V_a], where W_a is the rule's value of
  the quarter made of the test periods (arms and the untested traffic) and then option a; it pays
  for the test's periods, so it can be negative. P(decision changes): the share of simulated tests
  after which the pick differs from today's pick; assurance: the share after which an option other
  than the control is adopted.
- Monte Carlo errors: bootstrap over the simulated quarters, refitting the regressions with their
  smoothing kept.
"""

from __future__ import annotations

import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import decision, forecast, smooth
from .scenario import Flow, Gate, InputError, Lift, Scenario, SetRate, change_param_names
from .values import column, value_stages

UNITS = {
    "all_met": "P(all KRs met)",
    "expected_grade": "expected OKR grade",
    "weighted": "weighted share of KRs met",
}
PER_ARM_FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)
PERIOD_FRACTIONS = (1 / 6, 1 / 3, 1 / 2)


@dataclass(frozen=True)
class Design:
    per_arm: int
    periods: int


@dataclass
class PlanResult:
    """What `krsim plan` computes; ``to_dict()`` is the `--json` object."""

    scenario: Scenario
    rule: str
    option_now: str
    value_now: float
    evpi: float
    evpi_se: float
    partial_evpi: dict[str, dict[str, float]]
    designs: list[dict[str, Any]]
    recommended: dict[str, int] | None
    sentence: str
    samples: int
    arms: tuple[str, ...]
    mean_traffic: float
    history: Any = field(default=None, repr=False)  # the history table the plan was made from
    fit: Any = field(default=None, repr=False)  # the posterior draws it was made from

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.id,
            "rule": self.rule,
            "units": UNITS[self.rule],
            "decide_now": {"option": self.option_now, "value": self.value_now},
            "evpi": self.evpi,
            "evpi_se": self.evpi_se,
            "partial_evpi": self.partial_evpi,
            "arms": list(self.arms),
            "mean_traffic": self.mean_traffic,
            "designs": self.designs,
            "recommended": self.recommended,
            "recommendation": self.sentence,
            "samples": self.samples,
        }


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


def _seed(seed: int, *key: int | str) -> int:
    ints = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in key]
    return int(np.random.SeedSequence([seed, *ints]).generate_state(1)[0])


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


@dataclass
class _Replicate:
    values: dict[str, np.ndarray]  # option -> rule value per draw (full quarter)
    grades: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    shared: forecast.Shared
    scenario: Scenario
    tail_totals: dict[str, dict[int, dict[str, np.ndarray]]]  # option -> k -> stage -> total


def _replicate(scenario: Scenario, fit, tg, r: int, periods: list[int]) -> _Replicate:
    s = scenario if r == 0 else scenario.with_overrides(seed=_seed(scenario.seed, "replicate", r))
    params = forecast.draw_change_params(s, fit.n_draws)
    shared = forecast.prepare(s, fit)
    values, grades, tails = {}, {}, {}
    for o in s.options:
        counts = forecast.simulate_option(s, shared, o, params)
        oe = decision.evaluate_option(s, counts, tg)
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
        sa = scenario.with_overrides(seed=_seed(rep.scenario.seed, "arm", a))
        c = forecast.simulate_option(sa, sub, a, rep.params)
        arm_totals[a] = {st: v.sum(axis=1) for st, v in c.items()}
    rest_share = 1.0 - share
    all_totals = {st: sum(arm_totals[a][st] for a in arms) for st in _totals_keys(scenario)}
    if rest_share > 1e-12:
        sr = scenario.with_overrides(seed=_seed(rep.scenario.seed, "untested"))
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


def _estimate(bases: _Bases, V, boot_w, stat):
    """A statistic of the fitted values, and its bootstrap standard error."""
    ones = np.ones(V.shape[0])
    fitted, lams = bases.fit(V)
    est = stat(fitted, ones)
    reps = [stat(bases.fit(V, w, lams)[0], w) for w in boot_w]
    return est, (float(np.std(reps, ddof=1)) if len(reps) > 1 else float("nan")), fitted


def plan(
    scenario: Scenario,
    *,
    per_arm: list[int] | None = None,
    periods: list[int] | None = None,
    replicates: int = 4,
    bootstrap: int = 8,
    fit=None,
    history=None,
    progress=None,
) -> PlanResult:
    """Value of information of the decision and of each candidate test design.

    ``history`` defaults to the scenario's table, ``fit`` to its (cached) fit;
    ``progress(done, total)`` is called as designs are evaluated.
    """
    with _single_threaded_blas():
        return _plan(scenario, per_arm, periods, replicates, bootstrap, fit, history, progress)


def _single_threaded_blas():
    """The regressions multiply small matrices: threads only contend (measured: 15x slower on a
    busy two-core machine with OpenBLAS's default threads)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the scientific stack
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _plan(scenario, per_arm, periods, replicates, bootstrap, fit, history, progress):
    problems = check_designs(scenario, per_arm, periods)
    if problems:
        raise InputError(problems)
    if history is None:
        from .data import read_history

        history = read_history(scenario)
    if fit is None:
        from . import model

        fit = model.fit(scenario, history)
    tg = decision.targets(scenario, history)
    opts = list(scenario.options)
    control = scenario.control_option
    arms = (control, *[o for o in opts if o != control])
    ks = list(periods) if periods else default_periods(scenario.horizon)

    reps = [_replicate(scenario, fit, tg, r, ks) for r in range(replicates)]
    N = sum(rp.values[opts[0]].shape[0] for rp in reps)
    V = np.column_stack([np.concatenate([rp.values[o] for rp in reps]) for o in opts])
    G = np.column_stack([np.concatenate([rp.grades[o] for rp in reps]) for o in opts])
    params = {n: np.concatenate([rp.params[n] for rp in reps]) for n in reps[0].params}
    traffic = float(np.concatenate([rp.shared.traffic_mean.mean(axis=1) for rp in reps]).mean())
    designs = design_grid(scenario, traffic, len(arms), per_arm, ks)

    rng = np.random.default_rng(_seed(scenario.seed, "bootstrap"))
    boot_w = [rng.multinomial(N, np.full(N, 1.0 / N)).astype(float) for _ in range(bootstrap)]
    means = V.mean(axis=0)
    now = _pick(opts, means, G.mean(axis=0), control)
    value_now = float(means[now])
    # Regressions are of each option's value minus today's pick's, draw by draw (the incremental
    # net benefit of Strong et al.): the same value of information, with much less noise, since
    # options share the quarter's randomness (common random numbers).
    Vd = V - V[:, [now]]

    uncertain: dict[str, list[str]] = {o: [] for o in opts}
    for o in opts:
        for names in change_param_names(o, scenario.options[o]):
            for _, name in names:
                if np.ptp(params[name]) > 0:
                    uncertain[o].append(name)

    total_steps = 1 + len(designs)
    if progress:
        progress(0, total_steps)
    # EVPI and partial EVPI: regressions of V_a on option a's parameters
    own_params = {
        o: np.column_stack([params[n] for n in uncertain[o]]) for o in opts if uncertain[o]
    }
    if own_params:
        blocks = _difference_blocks(opts, now, own_params)
        evpi, evpi_se, _ = _estimate(_Bases(blocks, N), Vd, boot_w, _voi)
    else:
        evpi, evpi_se = 0.0, 0.0
    partial = {}
    for o in opts:
        for name in uncertain[o]:
            bl = _difference_blocks(opts, now, {o: params[name][:, None]})
            val, se, _ = _estimate(_Bases(bl, N), Vd, boot_w, _voi)
            partial[name] = {"value": max(val, 0.0), "se": se}
    if progress:
        progress(1, total_steps)

    stages = {a: tested_stages(scenario, a) for a in arms}
    out_designs = []
    for i, d in enumerate(designs):
        share = len(arms) * d.per_arm / (d.periods * traffic)
        arm_tot_r, all_tot_r = [], []
        for rp in reps:
            at, tt = _test_periods(rp.scenario, rp, d, share, arms)
            arm_tot_r.append(at)
            all_tot_r.append(tt)
        arm_totals = {
            a: {
                st: np.concatenate([at[a][st] for at in arm_tot_r]) for st in _totals_keys(scenario)
            }
            for a in arms
        }
        test_totals = {
            st: np.concatenate([tt[st] for tt in all_tot_r]) for st in _totals_keys(scenario)
        }
        summ = _summaries(scenario, arm_totals, arms, stages)
        informative = {a: summ[a] for a in arms[1:] if summ[a].shape[1] and uncertain[a]}
        # the quarter with the test in it, then option a
        W = []
        for o in opts:
            tail = {
                st: np.concatenate([rp.tail_totals[o][d.periods][st] for rp in reps])
                for st in _totals_keys(scenario)
            }
            quarter = {st: (test_totals[st] + tail[st])[:, None] for st in _totals_keys(scenario)}
            oe = decision.evaluate_option(scenario, quarter, tg)
            W.append(oe.value)
        W = np.column_stack(W)
        own = _Bases(_difference_blocks(opts, now, informative), N)
        evsi, evsi_se, _ = _estimate(own, Vd, boot_w, _voi)
        evsi = max(evsi, 0.0)  # E[max] >= max E: below 0 only by rounding
        # After the test the team also knows how far each KR got during it: one term per KR
        progress_so_far = [
            decision.kr_value(kr, test_totals)[:, None] for kr in scenario.key_results
        ]
        every = list(informative.values()) + (progress_so_far if informative else [])
        allb = _Bases([every for _ in opts], N)

        Wd = W - W[:, [now]]

        def net(f, w, w_now=W[:, now], Wd=Wd):
            # the realised value of following the rule "pick the best fitted option", not the
            # fitted maximum: an additive regression can misstate E[W | data] where it matters
            # for the pick, and this estimate cannot profit from that (it is at most the value
            # of the best rule)
            n = w.sum()
            d = f.argmax(axis=1)
            gain = Wd[np.arange(len(d)), d]
            return float((w @ gain + w @ w_now) / n - ((w @ V) / n).max())

        net_value, net_se, fW = _estimate(allb, Wd, boot_w, net)
        # the test periods alone, learning nothing (then today's best guess for the rest)
        exposure = float(W.mean(axis=0).max() - V.mean(axis=0).max())
        after = fW.argmax(axis=1)
        after[fW[:, now] >= fW.max(axis=1) - 1e-12] = now  # ties keep today's pick
        changes = (after != now).astype(float)
        adopt = (np.array(opts)[after] != control).astype(float)
        reaching = {
            st: float(np.mean(arm_totals[a][scenario.funnel[st].from_]))
            for a in arms[1:]
            for st in stages[a]
        }
        out_designs.append(
            {
                "per_arm": d.per_arm,
                "periods": d.periods,
                "share_of_traffic": share,
                "evsi": evsi,
                "evsi_se": evsi_se,
                "net_value": net_value,
                "net_value_se": net_se,
                "exposure_value": exposure,
                "learning_value": net_value - exposure,
                "p_decision_changes": float(changes.mean()),
                "p_decision_changes_se": decision.mc_se(changes, 1),
                "assurance": float(adopt.mean()),
                "assurance_se": decision.mc_se(adopt, 1),
                "users_reaching_per_arm": reaching,
            }
        )
        if progress:
            progress(2 + i, total_steps)

    best = max(out_designs, key=lambda x: x["net_value"], default=None)
    recommended = (
        {"per_arm": best["per_arm"], "periods": best["periods"]}
        if best is not None and best["net_value"] > 0
        else None
    )
    result = PlanResult(
        scenario=scenario,
        rule=scenario.decision.rule,
        option_now=opts[now],
        value_now=value_now,
        evpi=max(evpi, 0.0),
        evpi_se=evpi_se,
        partial_evpi=partial,
        designs=out_designs,
        recommended=recommended,
        sentence="",
        samples=N,
        arms=arms,
        mean_traffic=traffic,
        history=history,
        fit=fit,
    )
    result.sentence = recommendation_sentence(result, best)
    return result


def recommendation_sentence(result: PlanResult, best: dict | None) -> str:
    s = result.scenario
    unit = UNITS[result.rule]
    period = s.period
    label = s.options[result.option_now].label or result.option_now
    head = (
        f"Deciding now picks “{label}” ({unit} = {result.value_now:.2f}); perfect knowledge of "
        f"the changes would be worth {result.evpi:.3f} ± {result.evpi_se:.3f} more (EVPI)."
    )
    if best is None:
        return head
    desc = (
        f"a {best['periods']}-{period} test with {best['per_arm']:,} visitors per arm changes the "
        f"decision with probability {best['p_decision_changes']:.2f} and is worth "
        f"{best['net_value']:+.3f} ± {best['net_value_se']:.3f} in {unit} net of its cost "
        f"(EVSI {best['evsi']:.3f})"
    )
    if best["exposure_value"] > 0 and best["learning_value"] < best["exposure_value"]:
        desc += (
            f"; most of that comes from running the options side by side during the test "
            f"({best['exposure_value']:+.3f}), not from what the test teaches "
            f"({best['learning_value']:+.3f}): a partial roll-out would do as well"
        )
    if result.recommended:
        return f"{head} Recommended: {desc}."
    return f"{head} Decide now: no test design gains; the best, {desc}."


def progress_bar(label: str = "planning", after: float = 2.0, stream=None):
    """A text progress bar with the time so far, shown once the work has taken more than ``after``
    seconds; on stderr only when it is a terminal (a redirected stderr gets no bar)."""
    if stream is None:
        if not sys.stderr.isatty():
            return None
        stream = sys.stderr
    start = time.monotonic()
    shown = [False]

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
        stream.write(f"\r{label} {bar} {done}/{total}, {secs:.0f} s so far")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return update


def text_plan(result: PlanResult) -> str:
    """The plan as a terminal table."""
    s = result.scenario
    unit = UNITS[result.rule]
    lines = [
        f"Value of testing before deciding, in {unit}; ± is the Monte Carlo error "
        f"({result.samples:,} simulated quarters).",
        f"Arms of every test: {', '.join(result.arms)} (visitors split equally; the rest keep "
        f"“{s.options[result.arms[0]].label or result.arms[0]}”).",
        "",
        f"EVPI (the change parameters known exactly): {result.evpi:.3f} ± {result.evpi_se:.3f}",
    ]
    for name, d in sorted(result.partial_evpi.items(), key=lambda kv: -kv[1]["value"]):
        lines.append(f"  partial EVPI {name}: {d['value']:.3f} ± {d['se']:.3f}")
    lines += [
        "",
        f"{'periods':>7} {'per arm':>9} {'traffic':>7} {'EVSI':>15} {'net value':>16} "
        f"{'P(change)':>11} {'assurance':>11}",
    ]
    for d in result.designs:
        lines.append(
            f"{d['periods']:>7} {d['per_arm']:>9,} {d['share_of_traffic']:>7.0%} "
            f"{d['evsi']:>7.3f} ± {d['evsi_se']:.3f} {d['net_value']:>+8.3f} ± {d['net_value_se']:.3f}"
            f" {d['p_decision_changes']:>4.2f} ± {d['p_decision_changes_se']:.2f}"
            f" {d['assurance']:>4.2f} ± {d['assurance_se']:.2f}"
        )
    lines += ["", result.sentence]
    return "\n".join(lines)
