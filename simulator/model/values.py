"""Values on stages (money, time, any positive amount): the likelihood, the forecast, the checks.

A stage with ``value:`` has a history column ``STAGE.value``: the period's total value of that
stage's units. Given the period's count ``n[t]``, the total is a sum of ``n[t]`` positive per-unit
values, each with mean ``m[t]`` and coefficient of variation ``1 / sqrt(k)``:

    V[t] ~ Gamma(shape = n[t] * k, rate = k / m[t])      (mean n[t] m[t], sd m[t] sqrt(n[t] / k))
    log m[t] = value_mu [+ value_trend * t] [+ the calendar's profiles] + e[t]

exactly a sum of ``n[t]`` independent Gamma(k, k / m[t]) unit values. The period effects ``e`` are
those of a rate's logit: iid ``Normal(0, value_sigma)``, or a stationary AR(1) with
``model.period_effects: ar1``, with a linear trend when ``model.rate_trend`` is on. A period with
an empty value cell, or with no units, adds no value observation (its effect is still drawn).

The forecast multiplies ``m`` by the option's value lifts (``lift: {stage, on: value}``) and draws
each future period's total from the same Gamma given the simulated count, so value KRs come from
the same joint draws as the count KRs. This module is numpy only: the likelihood is
`value_terms.add_value_likelihood` (the history) and `experiment.add_value_likelihood` (an
experiment's value columns); the value data enter those models as constants, not as `pm.Data`: a
model built for one history does not take another history's values through `pm.set_data`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.scenario import value_stages

if TYPE_CHECKING:
    from ..io.scenario import Scenario

SUFFIX = ".value"


def column(stage: str) -> str:
    """The history column (and metric term) of a stage's total value."""
    return f"{stage}{SUFFIX}"


def stage_of(term: str) -> str:
    """The stage a metric term reads: ``purchase.value`` -> ``purchase``."""
    return term.removesuffix(SUFFIX)


def is_value(term: str) -> bool:
    return term.endswith(SUFFIX)


def value_lifts(scenario: Scenario, option: str) -> list[tuple[str, str]]:
    """(stage, factor parameter) of an option's lifts on the value per unit."""
    from ..io.scenario import Lift, change_param_names

    opt = scenario.options[option]
    out = []
    for change, names in zip(opt.changes, change_param_names(option, opt), strict=True):
        sp = change.spec
        if isinstance(sp, Lift) and sp.on == "value":
            out.append((sp.stage, dict(names)["factor"]))
    return out


# ------------------------------------------------------------------------------- the model


def observed_cells(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which (stage, period) cells observe a value: the value cell is not empty and the period has
    units (with no units the total is 0 and says nothing about the value per unit)."""
    return np.isfinite(values) & (counts > 0)


def log_mean_per_unit(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per value stage, the log of the observed total value over the observed units (the centre of
    ``value_mu``'s prior)."""
    obs = observed_cells(counts, values)
    tot_v = np.where(obs, values, 0.0).sum(axis=-1)
    tot_n = np.where(obs, counts, 0).sum(axis=-1)
    return np.log(np.maximum(tot_v, 1e-12) / np.maximum(tot_n, 1))


def centred_stages(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per value stage: True when the data pin down each period's value per unit, so ``log m``
    is sampled directly (centred), False when the per-unit noise dominates its period-to-period
    variation (standard normal effects). Compares the variance of the observed log value per unit
    across periods, less the noise expected with a per-unit coefficient of variation of 1
    (``1 / n``), with that noise. The posterior is the same either way."""
    obs = observed_cells(counts, values)
    out = np.zeros(len(counts), dtype=bool)
    for i in range(len(counts)):
        n, v = counts[i][obs[i]].astype(float), values[i][obs[i]]
        if len(n) >= 3:
            noise = float(np.mean(1.0 / n))
            out[i] = np.var(np.log(v / n)) - noise > noise
    return out


SAVED = (
    "value_mu",
    "value_sigma",
    "value_total_sd",
    "value_share",
    "value_k",
    "value_cv",
    "value_trend",
    "value_rho",
    "value_eta",
)


# ---------------------------------------------------------------------------- the forecast


def future_log_mean(
    arrays: dict[str, np.ndarray],
    stage_index: int,
    t_future: np.ndarray,
    rng: np.random.Generator,
    season: np.ndarray | None = None,
    weekday: np.ndarray | None = None,
) -> np.ndarray:
    """``log m`` of the horizon's periods per draw (draws x horizon): the mean, its trend, the
    yearly and day-of-week profiles (``season``, ``weekday``: the horizon's design rows), and
    fresh period effects (AR(1): continued from the last history period's effect)."""

    def flat(name: str) -> np.ndarray:
        a = arrays[name]
        return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])[:, stage_index]

    mu = flat("value_mu")
    sigma = flat("value_sigma")
    D, H = mu.shape[0], len(t_future)
    base = mu[:, None] + np.zeros((1, H))
    if "value_trend" in arrays:
        base = base + flat("value_trend")[:, None] * t_future
    if season is not None and "value_season_beta" in arrays:
        base = base + flat("value_season_beta") @ season.T
    if weekday is not None and "value_weekday_beta" in arrays:
        base = base + flat("value_weekday_beta") @ weekday.T
    eps = rng.standard_normal((D, H))
    if "value_rho" in arrays:
        rho = flat("value_rho")
        eta = arrays["value_eta"]
        eta = eta.reshape(eta.shape[0] * eta.shape[1], *eta.shape[2:])[:, stage_index]
        T = eta.shape[-1]
        last_t = t_future[0] - 1
        last_base = flat("value_mu") + (
            flat("value_trend") * last_t if "value_trend" in arrays else 0
        )
        prev = eta[:, T - 1] - last_base
        e = np.empty((D, H))
        innov = sigma * np.sqrt(1 - rho**2)
        for h in range(H):  # H is the horizon (a handful of periods); vectorised over draws
            prev = rho * prev + innov * eps[:, h]
            e[:, h] = prev
    else:
        e = sigma[:, None] * eps
    return base + e


def draw_totals(
    counts: np.ndarray, mean_per_unit: np.ndarray, k: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Period totals given the counts: Gamma(n k, rate k / m) per cell, 0 where n is 0."""
    n = np.asarray(counts, dtype=float)
    shape = n * k
    out = rng.gamma(np.where(shape > 0, shape, 1.0), mean_per_unit / k)
    return np.where(n > 0, out, 0.0)


def prepare(
    scenario: Scenario,
    arrays: dict[str, np.ndarray],
    t_future: np.ndarray,
    stream: Any,
    season: np.ndarray | None = None,
    weekday: np.ndarray | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What every option shares for each value stage: ``log m`` of the horizon's periods (draws x
    horizon, fresh period effects) and ``k`` (draws x 1)."""
    out = {}
    for i, stage in enumerate(value_stages(scenario)):
        log_m = future_log_mean(arrays, i, t_future, stream("value_effect", stage), season, weekday)
        k = arrays["value_k"]
        out[stage] = (log_m, k.reshape(k.shape[0] * k.shape[1], -1)[:, i][:, None])
    return out


def simulate_option(
    scenario: Scenario,
    option: str,
    counts: dict[str, np.ndarray],
    shared: dict[str, tuple[np.ndarray, np.ndarray]],
    params: dict[str, np.ndarray],
    stream: Any,
) -> dict[str, np.ndarray]:
    """Each value stage's simulated period totals (``STAGE.value``: draws x horizon) for one
    option, given its simulated counts. The period effects and the per-unit noise stream are
    shared by the options (common random numbers); the option's value lifts multiply ``m``."""
    out = {}
    for stage, (log_m, k) in shared.items():
        m = np.exp(log_m)
        for lifted, name in value_lifts(scenario, option):
            if lifted == stage:
                m = m * params[name][:, None]
        out[column(stage)] = draw_totals(counts[stage], m, k, stream("value", stage))
    return out


# ------------------------------------------------------------------ posterior predictive check


def replicate(
    arrays: dict[str, np.ndarray],
    counts: np.ndarray,
    rng: np.random.Generator,
    stage_index: int = 0,
) -> dict[str, np.ndarray]:
    """Posterior replicates (draws x periods) of each history period's total given its observed
    count: ``fitted`` with the period's own fitted effect, ``fresh`` with a fresh effect drawn for
    every period (the history's trend kept)."""

    def flat(name: str) -> np.ndarray:
        a = arrays[name]
        return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])[:, stage_index]

    n = counts.astype(float)
    eta = flat("value_eta")  # draws x periods
    k = flat("value_k")[:, None]
    base = flat("value_mu")[:, None] + np.zeros_like(eta)
    if "value_trend" in arrays:
        T = eta.shape[1]
        base = base + flat("value_trend")[:, None] * (np.arange(T) - (T - 1) / 2)
    fresh = base + flat("value_sigma")[:, None] * rng.standard_normal(eta.shape)
    return {
        label: draw_totals(np.broadcast_to(n, e.shape), np.exp(e), k, rng)
        for label, e in (("fitted", eta), ("fresh", fresh))
    }


def predictive_check(
    arrays: dict[str, np.ndarray],
    counts: np.ndarray,
    values: np.ndarray,
    rng: np.random.Generator,
    stage_index: int = 0,
) -> dict[str, float]:
    """Posterior predictive check of the history (`replicate`): with the periods' own fitted
    effects (does the Gamma's spread match the data?) and with fresh effects (does the
    period-to-period variation of the value per unit match?). Returns the share of observed
    periods inside the central 50%, 80% and 95% predictive intervals of the total, and of the
    value per unit, with the data's and the replicates' sd of the value per unit across periods."""
    n = counts.astype(float)
    obs = observed_cells(counts, values)
    out: dict[str, float] = {"periods": int(obs.sum())}
    for label, rep in replicate(arrays, counts, rng, stage_index).items():
        per_unit_rep = rep[:, obs] / n[obs]
        per_unit = values[obs] / n[obs]
        for name, r, y in (
            ("total", rep[:, obs], values[obs]),
            ("per_unit", per_unit_rep, per_unit),
        ):
            for mass in (0.5, 0.8, 0.95):
                lo, hi = np.quantile(r, [(1 - mass) / 2, (1 + mass) / 2], axis=0)
                out[f"{label}_{name}_in{int(mass * 100)}"] = float(np.mean((y >= lo) & (y <= hi)))
        out[f"{label}_per_unit_sd_rep"] = float(np.median(per_unit_rep.std(axis=1)))
    out["per_unit_sd_data"] = float((values[obs] / n[obs]).std())
    out["per_unit_mean_data"] = float(values[obs].sum() / n[obs].sum())
    return out


# ----------------------------------------------------------------------- how KRs combine


def decomposition(scenario: Scenario) -> list[tuple[str, str, str]]:
    """(total value KR, count KR, value-per-unit KR) triples of the scenario's key results: a KR on
    ``S.value`` that is the product of a KR on ``S`` and a KR on ``S.value / S`` (revenue =
    purchases x basket)."""
    by_metric = {kr.metric: kr.id for kr in scenario.key_results}
    out = []
    for stage in value_stages(scenario):
        total = by_metric.get(column(stage))
        count = by_metric.get(stage)
        per_unit = by_metric.get(f"{column(stage)} / {stage}")
        if total and count and per_unit:
            out.append((total, count, per_unit))
    return out


# ------------------------------------------------------------------------------ experiments


def _k_draws(fit: Any, i: int, idx: np.ndarray) -> np.ndarray:
    k = fit.arrays["value_k"]
    return k.reshape(k.shape[0] * k.shape[1], -1)[idx, i]


def experiment_lifts(
    scenario: Scenario, exp: Any, fit: Any, rng: np.random.Generator, draws: int = 200_000
) -> dict[str, dict[str, Any]]:
    """What the experiment alone says about the value per unit: per treatment arm and value
    column, the relative lift of the arm's mean value per unit over control's, median, 95%
    interval and P(better). Under a flat prior on ``log m``, a total ``V`` of ``n`` units gives
    ``k / m ~ Gamma(n k, rate V)``; ``k`` (the per-unit spread, which totals alone cannot show)
    is drawn from the history fit. Arms pooled over periods."""
    out: dict[str, dict[str, Any]] = {}
    stages = value_stages(scenario)
    idx = rng.integers(fit.n_draws, size=draws)
    for arm in exp.treatments:
        out[arm] = {}
        for i, stage in enumerate(stages):
            if stage not in exp.values:
                continue
            k = _k_draws(fit, i, idx)

            def mean_draws(a: str, k=k, stage=stage) -> np.ndarray:
                rows = exp.rows(a)
                v, n = exp.values[stage][rows], exp.counts[stage][rows]
                keep = np.isfinite(v) & (n > 0)
                V, N = v[keep].sum(), n[keep].sum()
                return k / rng.gamma(N * k, 1.0 / V)

            lift = mean_draws(arm) / mean_draws(exp.control) - 1
            lo, med, hi = np.quantile(lift, [0.025, 0.5, 0.975])
            p = float(np.mean(lift > 0))
            out[arm][column(stage)] = {
                "median": float(med),
                "interval95": [float(lo), float(hi)],
                "p_better": p,
                "p_better_se": float(np.sqrt(max(p * (1 - p), 0.25 / draws) / draws)),
            }
    return out


def experiment_conflicts(
    scenario: Scenario, exp: Any, fit: Any, seed_rng: np.random.Generator, sims: int = 20_000
) -> dict[str, list[dict[str, Any]]]:
    """Prior-predictive check of each treatment arm's value per unit: the two-sided p-value of the
    observed treatment/control ratio of the mean value per unit, given the observed counts, under
    the history fit (mean, period effects shared by the arms, per-unit spread) and the value
    lifts' priors."""
    from ..io.scenario import change_priors
    from . import priors

    stages = value_stages(scenario)
    idx = seed_rng.integers(fit.n_draws, size=sims)
    pri = change_priors(scenario)
    out: dict[str, list[dict[str, Any]]] = {}

    def flat(name: str, i: int) -> np.ndarray:
        a = fit.arrays[name]
        return a.reshape(a.shape[0] * a.shape[1], -1)[idx, i]

    for i, stage in enumerate(stages):
        if stage not in exp.values:
            continue
        mu, sigma, k = flat("value_mu", i), flat("value_sigma", i), flat("value_k", i)
        e = sigma[:, None] * seed_rng.standard_normal((sims, len(exp.periods)))

        def per_unit(
            arm: str, factor: np.ndarray, stage=stage, mu=mu, e=e, k=k
        ) -> tuple[np.ndarray, float]:
            rows = exp.rows(arm)
            v, n = exp.values[stage][rows], exp.counts[stage][rows]
            keep = np.isfinite(v) & (n > 0)
            m = np.exp(mu[:, None] + e[:, exp.period_index[rows][keep]]) * factor[:, None]
            nn = n[keep].astype(float)
            sim = seed_rng.gamma(nn * k[:, None], m / k[:, None]).sum(axis=1) / nn.sum()
            return sim, float(v[keep].sum() / nn.sum())

        sim_c, obs_c = per_unit(exp.control, np.ones(sims))
        for arm in exp.treatments:
            names = [n for s, n in value_lifts(scenario, arm) if s == stage]
            factor = np.ones(sims)
            for name in names:
                factor = factor * priors.sample(pri[name], sims, seed_rng)
            sim_t, obs_t = per_unit(arm, factor)
            t_sim, t_obs = np.log(sim_t / sim_c), np.log(obs_t / obs_c)
            lower = (np.sum(t_sim <= t_obs) + 1) / (sims + 1)
            upper = (np.sum(t_sim >= t_obs) + 1) / (sims + 1)
            lo, hi = np.exp(np.quantile(t_sim, [0.025, 0.975]))
            out.setdefault(arm, []).append(
                {
                    "stage": column(stage),
                    "p_value": float(min(1.0, 2 * min(lower, upper))),
                    "observed_ratio": float(np.exp(t_obs)),
                    "predicted95": (float(lo), float(hi)),
                    "params": tuple(names),
                }
            )
    return out
