"""Posterior draws -> the simulated horizon of every option, vectorised over draws and periods.

Common random numbers: every option sees the same traffic shocks, the same period effects, the same
change-parameter draws and, stage by stage, the same binomial stream, so differences between options
are differences of the options, not Monte Carlo noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np

from ..io.scenario import Scenario, change_param_names
from ..model import changes as ch
from ..model import priors, values
from ..model.changes import stage_order
from ..model.posterior import Fit, period_times
from ..model.streams import stream


@dataclass(frozen=True)
class Forecast:
    """Simulated counts per option: ``counts[option][stage]`` has shape (draws, horizon)."""

    options: tuple[str, ...]
    counts: dict[str, dict[str, np.ndarray]]
    params: dict[
        str, np.ndarray
    ]  # change parameter draws by name (docs/design.md §4), shape (draws,)
    chains: int

    @property
    def n_draws(self) -> int:
        return next(iter(self.counts[self.options[0]].values())).shape[0]

    def total(self, option: str, stage: str) -> np.ndarray:
        return self.counts[option][stage].sum(axis=1)


def draw_change_params(scenario: Scenario, n: int, overrides: dict[str, float] | None = None):
    """Prior draws of every change parameter (each from its own stream, so adding an option does
    not change another option's draws); ``overrides`` fixes some at a value (for sensitivity)."""
    out = {}
    for oid, opt in scenario.options.items():
        for change, names in zip(opt.changes, change_param_names(oid, opt), strict=True):
            for field, name in names:
                if overrides and name in overrides:
                    out[name] = np.full(n, overrides[name])
                    continue
                prior = getattr(change.spec, "pass_" if field == "pass" else field)
                out[name] = priors.sample(prior, n, stream(scenario.seed, "param", name))
    return out


@dataclass(frozen=True)
class Shared:
    """What every option shares in one simulation: traffic means with shocks, period effects."""

    traffic_mean: np.ndarray  # (draws, horizon)
    base_eta: dict[str, np.ndarray]  # rate node -> logit rate per draw and period
    effect: dict[str, np.ndarray]  # rate node -> period effect
    order: list[str]
    chains: int
    # value stage -> (log m, k) of the horizon's periods: `values.prepare`
    values: dict[str, tuple[np.ndarray, np.ndarray]] = dc_field(default_factory=dict)


def prepare(scenario: Scenario, fit: Fit, horizon: int | None = None) -> Shared:
    H = horizon or scenario.horizon
    D = fit.n_draws
    seed = scenario.seed
    T = fit.n_periods
    t_future = period_times(T, T, H)
    log_mu = fit.flat("level")[:, None] + np.zeros((1, H))
    if "trend" in fit.arrays:
        log_mu = log_mu + fit.flat("trend")[:, None] * t_future
    X = fit.future_season(H)  # the yearly profile over the horizon's dates
    if X is not None:
        log_mu = log_mu + fit.flat("season_beta") @ X.T
    W = fit.future_weekday(H)  # daily periods: the day-of-week profile
    if W is not None:
        log_mu = log_mu + fit.flat("weekday_beta") @ W.T
    if "traffic_walk_last" in fit.arrays:  # the level's walk, continued from where it ended
        rng = stream(seed, "drift", "__traffic__")
        walk = _walk_path(fit.flat("traffic_walk_last"), fit.flat("drift_sd"), H, rng)
        if "drift_weight" in fit.arrays:  # on in each draw with its posterior probability
            walk = walk * (rng.uniform(size=D) < fit.flat("drift_weight"))[:, None]
        log_mu = log_mu + walk
    ar1 = "rate_elast" in fit.arrays
    if ar1:
        log_mu = log_mu + _ar1_path(
            fit.flat("traffic_elast"),
            fit.flat("traffic_rho"),
            fit.flat("traffic_sigma"),
            H,
            stream(seed, "effect", "__traffic__"),
        )
    alpha = fit.flat("alpha")[:, None]
    shock = stream(seed, "traffic").gamma(alpha, 1 / alpha, (D, H))
    effect: dict[str, np.ndarray] = {}
    base_eta: dict[str, np.ndarray] = {}
    rates_drift = None
    if "rate_walk_last" in fit.arrays:  # one draw of "do the rates' levels drift" per draw
        rates_drift = stream(seed, "drift", "__rates__").uniform(size=D) < fit.flat(
            "rate_drift_weight"
        )
    for node in fit.nodes:
        mu, sigma = fit.node("rate_mu", node), fit.node("rate_sigma", node)
        if "rate_trend" in fit.arrays:
            mu = mu[:, None] + fit.node("rate_trend", node)[:, None] * t_future
        else:
            mu = mu[:, None]
        if X is not None:
            mu = mu + fit.node("rate_season_beta", node) @ X.T
        if W is not None:
            mu = mu + fit.node("rate_weekday_beta", node) @ W.T
        if rates_drift is not None:  # the rate's walk, continued from where it ended
            walk = _walk_path(
                fit.node("rate_walk_last", node),
                fit.node("rate_drift_sd", node),
                H,
                stream(seed, "drift", node),
            )
            mu = mu + walk * rates_drift[:, None]
        rng = stream(seed, "effect", node)
        if ar1:  # continued from its last value in the history
            e = _ar1_path(fit.node("rate_elast", node), fit.node("rate_rho", node), sigma, H, rng)
        else:
            e = sigma[:, None] * rng.standard_normal((D, H))
        effect[node] = e
        base_eta[node] = mu + e
    vals = values.prepare(scenario, fit.arrays, t_future, lambda *key: stream(seed, *key), X, W)
    return Shared(np.exp(log_mu) * shock, base_eta, effect, stage_order(scenario), fit.chains, vals)


def simulate_option(
    scenario: Scenario, shared: Shared, option: str, params: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Counts per stage, and total values per value stage (``STAGE.value``), shape (draws,
    horizon), of one option."""
    counts = _simulate_option(
        scenario,
        option,
        shared.order,
        shared.traffic_mean,
        shared.base_eta,
        shared.effect,
        params,
        scenario.seed,
    )
    if shared.values:

        def keyed(*key: str) -> np.random.Generator:
            return stream(scenario.seed, *key)

        counts.update(
            values.simulate_option(scenario, option, counts, shared.values, params, keyed)
        )
    return counts


def simulate(
    scenario: Scenario,
    fit: Fit,
    params: dict[str, np.ndarray] | None = None,
    horizon: int | None = None,
) -> Forecast:
    if params is None:
        params = draw_change_params(scenario, fit.n_draws)
    shared = prepare(scenario, fit, horizon)
    counts = {o: simulate_option(scenario, shared, o, params) for o in scenario.options}
    return Forecast(tuple(scenario.options), counts, params, fit.chains)


def _walk_path(last, step_sd, H, rng) -> np.ndarray:
    """Continue a random walk (per draw: its last value and step sd) over ``H`` periods."""
    steps = step_sd[:, None] * rng.standard_normal((last.shape[0], H))
    return last[:, None] + np.cumsum(steps, axis=1)


def _ar1_path(e_last, rho, sigma, H, rng) -> np.ndarray:
    """Continue a stationary AR(1) (marginal sd sigma) from its last observed value."""
    D = e_last.shape[0]
    innov_sd = sigma * np.sqrt(1 - rho**2)
    eps = rng.standard_normal((D, H))
    out = np.empty((D, H))
    prev = e_last
    for h in range(H):  # H is the horizon (a handful of periods); vectorised over draws
        prev = rho * prev + innov_sd * eps[:, h]
        out[:, h] = prev
    return out


def _simulate_option(scenario, oid, order, traffic_mean, base_eta, effect, params, seed):
    plan = ch.ChangePlan.of(scenario, oid)
    p = {name: params[name][:, None] for name in plan.params}
    rates = ch.apply_rates(plan, {n: ch.expit(e, np) for n, e in base_eta.items()}, effect, p, np)
    traffic = traffic_mean
    for name in plan.traffic_lifts:
        traffic = ch.lift_traffic(traffic, p[name])
    root = stream(seed, "binomial", scenario.root).poisson(traffic)

    def keyed(*key: str) -> np.random.Generator:
        return stream(seed, *key)

    n = ch.simulate_counts(scenario, plan, rates, p, keyed, root=root, order=order)
    return {s: n[s] for s in scenario.funnel}
