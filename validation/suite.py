"""Checks that krsim's probabilities mean what they say, run on simulated worlds with known truth.

1. Calibration: worlds from the model's own family (random traffic level and overdispersion, stage
   rates, period-to-period variation, history lengths, option effects). krsim fits each history and
   gives P(met) for targets placed across the range; the world then draws its true future. Scored
   against an oracle that knows the world's parameters (its P(met) by simulation from them).
2. Simulation-based calibration (Talts et al. 2018) of the history model's parameters.
3. Parameter recovery: the truth inside the 94% intervals at the nominal rate.
4. Exact agreement with closed forms (no period effects: a negative binomial thinned by a rate).
5. Monte Carlo error: the reported SE of P(met) against the spread of P(met) over seeds.
6. Drift: the same calibration on worlds whose period effects drift (AR(1), slow trends), for the
   iid and the AR(1) period-effect models.

Everything runs the project's own code through its public interface: ``model.build_model`` for
the model, nutpie for sampling (as ``model.fit`` does), ``forecast`` and ``decision`` for the
probabilities. :class:`Fitter` compiles the model once per data shape and refits it by giving it
new data (the model's ``pm.Data``), because compiling takes ten times as long as sampling a small
funnel.

Computation only: plots and the write-up are in ``scripts/run_validation.py``. Randomness flows
from one seed through ``np.random.Generator`` objects.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from simulator import model
from simulator.engine import decision, forecast
from simulator.io.data import CountTable
from simulator.io.scenario import ModelBlock, Scenario, Structure, parse_scenario
from simulator.model import priors
from simulator.model.changes import expit, lift_rate
from simulator.model.posterior import Fit, period_times

# ------------------------------------------------------------------------------- the test funnel

BOOST_PRIOR = (0.9, 1.2)  # the `boost` option: the `done` rate times a factor, 90% in this range


def check_scenario(
    *,
    period_effects: str = "iid",
    horizon: int = 13,
    draws: int = 400,
    chains: int = 2,
    tune: int = 400,
    seed: int = 0,
    extra_model: dict[str, Any] | None = None,
) -> Scenario:
    """The small funnel of the checks: visits -> start -> done, two options, three key results.

    Its model is the one these checks' closed forms, SBC priors and worlds are written for: a
    constant traffic level (``drift: none``); the default's drifting level is checked on real and
    simulated series by scripts/forecast_study.py (docs/forecast_study.md)."""
    mb = {
        "period_effects": period_effects,
        "drift": "none",
        "draws": draws,
        "chains": chains,
        "tune": tune,
        **(extra_model or {}),
    }
    mb_text = ", ".join(f"{k}: {v}" for k, v in mb.items())
    text = f"""
title: Validation funnel
horizon: {horizon}
seed: {seed}
funnel:
  visits: {{}}
  start: {{from: visits}}
  done: {{from: start}}
history: history.csv
options:
  status_quo: {{}}
  boost:
    changes:
      - lift: {{stage: done, factor: {{lognormal_interval: [{BOOST_PRIOR[0]}, {BOOST_PRIOR[1]}]}}}}
key_results:
  - {{id: done, metric: done, target: "+5%"}}
  - {{id: start, metric: start, target: "+5%"}}
  - {{id: conversion, metric: done / start, target: "+2%"}}
model: {{{mb_text}}}
"""
    return parse_scenario(text.encode(), "validation")


def table(counts: dict[str, np.ndarray]) -> CountTable:
    """A history table from count arrays (one row per period)."""
    T = len(next(iter(counts.values())))
    return CountTable(
        path=Path("history.csv"),
        key="period",
        labels=tuple(f"p{t:03d}" for t in range(T)),
        counts={k: np.asarray(v, dtype=np.int64) for k, v in counts.items()},
    )


# ----------------------------------------------------------------------- fitting many data sets


class Fitter:
    """The project's history model for one funnel and one history length, compiled once per
    parameterisation and refitted by giving it new data.

    ``fit(history, seed)`` returns the same `Fit` as ``model.fit`` (posterior arrays and
    diagnostics), sampled by nutpie with the scenario's draws, tune and chains. The model is
    ``model.build_model``'s, whose history enters as ``pm.Data`` (``model.model_data``); the rate
    nodes are centred or not as ``build_model`` would choose for each history
    (``model.centred_nodes``), and each choice is compiled once and shared by every data set that
    makes it (compiling takes ten times as long as sampling a small funnel); the compiled
    callbacks are kept on disk (`simulator.model.compiled`), so a later process loads them.
    """

    def __init__(self, scenario: Scenario, n_periods: int):
        self.scenario = scenario
        self.n_periods = n_periods
        self.nodes = Structure.of(scenario).nodes
        self._models: dict[tuple[bool, ...], Any] = {}
        self._compiled: dict[tuple[bool, ...], Any] = {}
        self.compile_seconds = 0.0

    def parameterisation(self, history: CountTable) -> tuple[bool, ...]:
        """Which rate nodes ``build_model`` centres for this history (empty: not applicable)."""
        if not self.nodes:
            return ()
        return tuple(bool(c) for c in model.default_centred(self.scenario, history))

    def pm_model(self, history: CountTable):
        """The built model of this history's parameterisation (built on first use)."""
        centred = self.parameterisation(history)
        if centred not in self._models:
            self._models[centred] = model.build_model(
                self.scenario, history, centred=np.array(centred, dtype=bool) if centred else None
            )
        return self._models[centred]

    def set_data(self, history: CountTable):
        """The built model that fits this history, pointed at it (for its log density)."""
        import pymc as pm

        m = self.pm_model(history)
        with m:
            pm.set_data(model.model_data(self.scenario, history))
        return m

    def compiled(self, history: CountTable):
        centred = self.parameterisation(history)
        if centred not in self._compiled:
            from simulator.model import compiled

            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # krsim's compile: its callbacks are kept on disk, so a later process (the
                # full suite after the reduced one, a rerun) loads them instead of compiling
                self._compiled[centred] = compiled.compile_model(self.pm_model(history))
            self.compile_seconds += time.perf_counter() - t0
        return self._compiled[centred]

    def fit(
        self,
        history: CountTable,
        seed: int,
        *,
        draws: int | None = None,
        chains: int | None = None,
        tune: int | None = None,
    ) -> Fit:
        """Sample the posterior for one data set (settings default to the scenario's model block)."""
        import nutpie

        if len(history) != self.n_periods:
            raise ValueError(f"this fitter takes {self.n_periods} periods, got {len(history)}")
        mb = self.scenario.model
        data = model.model_data(self.scenario, history)
        if not self.nodes:
            data = {k: v for k, v in data.items() if k not in ("node_count", "parent_count")}
        compiled = self.compiled(history).with_data(**data)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dt = nutpie.sample(
                compiled,
                draws=draws or mb.draws,
                tune=tune or mb.tune,
                chains=chains or mb.chains,
                seed=int(seed),
                target_accept=mb.accept,
                progress_bar=False,
            )
        arrays = model.posterior_arrays(dt, mb.period_effects == "ar1")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diag = model.diagnostics(dt, [n for n in arrays if n in dt["posterior"]])
        return Fit(
            key=f"validation-{seed}",
            arrays=arrays,
            diagnostics=diag,
            n_periods=self.n_periods,
            nodes=self.nodes,
            seconds=time.perf_counter() - t0,
        )


class Fitters:
    """One :class:`Fitter` per (model spec, history length), built on first use."""

    def __init__(self, **scenario_kwargs: Any):
        self.kwargs = scenario_kwargs
        self._by: dict[tuple[str, int], Fitter] = {}

    def scenario(self, spec: str, seed: int = 0) -> Scenario:
        """The check scenario of a model ``spec``: ``iid`` or ``ar1``, ``+trend`` for trends,
        ``+walk`` for the default's drifting traffic level (``drift: random_walk``)."""
        period_effects, _, extra = spec.partition("+")
        extras = {
            "": None,
            "trend": {"trend": True, "rate_trend": True},
            "walk": {"drift": "random_walk"},
        }
        if extra not in extras:
            raise ValueError(f"unknown model spec {spec!r}")
        return check_scenario(
            period_effects=period_effects, seed=seed, extra_model=extras[extra], **self.kwargs
        )

    def get(self, spec: str, n_periods: int) -> Fitter:
        key = (spec, n_periods)
        if key not in self._by:
            self._by[key] = Fitter(self.scenario(spec), n_periods)
        return self._by[key]

    @property
    def compile_seconds(self) -> float:
        return sum(f.compile_seconds for f in self._by.values())


# ------------------------------------------------------------------------------------ the worlds


@dataclass(frozen=True, kw_only=True)
class World:
    """True parameters of a funnel's weekly counts (the model's family and its drifting kin).

    Traffic: ``NegBin(exp(level + traffic_slope * t + u[t]), alpha)``; node k:
    ``Binomial(parent, invlogit(mu[k] + slope[k] * t + e[k, t]))``, with ``t`` centred on the
    history and ``u``, ``e`` stationary AR(1) (marginal sd ``*_sigma``, coefficient ``*_rho``;
    ``rho = 0`` is iid). ``lift`` is the true factor of the `boost` option.
    """

    n_periods: int
    level: float
    alpha: float
    mu: np.ndarray
    sigma: np.ndarray
    rho: np.ndarray
    slope: np.ndarray
    traffic_sigma: float = 0.0
    traffic_rho: float = 0.0
    traffic_slope: float = 0.0
    lift: float = 1.0
    kind: str = "iid"

    def params(self) -> dict[str, np.ndarray]:
        """The values of the history model's parameters, named as in the fit."""
        out = {
            "level": np.asarray(self.level),
            "alpha": np.asarray(self.alpha),
            "rate_mu": self.mu,
            "rate_sigma": self.sigma,
        }
        if self.kind == "ar1":
            out |= {
                "rate_rho": self.rho,
                "traffic_sigma": np.asarray(self.traffic_sigma),
                "traffic_rho": np.asarray(self.traffic_rho),
            }
        return out


@dataclass(frozen=True)
class State:
    """The latent state at the end of the history: the last period effects."""

    traffic: float
    nodes: np.ndarray


def _ar1(first: np.ndarray, rho: np.ndarray, sigma: np.ndarray, n: int, eps: np.ndarray):
    """Continue AR(1) series (leading axes broadcast) for n steps from ``first``."""
    out = np.empty((*np.broadcast_shapes(first.shape, rho.shape), n))
    prev = first
    innov = sigma * np.sqrt(1 - rho**2)
    for h in range(n):
        prev = rho * prev + innov * eps[..., h]
        out[..., h] = prev
    return out


def _stationary_path(rho, sigma, n, rng) -> np.ndarray:
    rho, sigma = np.asarray(rho, float), np.asarray(sigma, float)
    first = sigma * rng.standard_normal(rho.shape)
    if n == 1:
        return first[..., None]
    rest = _ar1(first, rho, sigma, n - 1, rng.standard_normal((*rho.shape, n - 1)))
    return np.concatenate([first[..., None], rest], axis=-1)


def _counts(world, structure, traffic_log_mu, eta, rng, factor=None, lift_node=None):
    """Counts per stage from log traffic means and logit rates (last axis: periods)."""
    shape = traffic_log_mu.shape
    shock = rng.gamma(world.alpha, 1 / world.alpha, shape)
    n = {structure.root: rng.poisson(np.exp(traffic_log_mu) * shock)}
    for k, (node, parent) in enumerate(zip(structure.nodes, structure.parents, strict=True)):
        rate = expit(eta[..., k, :], np)
        if node == lift_node and factor is not None:
            rate = lift_rate(rate, np.asarray(factor)[..., None], np)
        n[node] = rng.binomial(n[parent], rate)
    return n


def simulate_history(
    world: World, scenario: Scenario, rng: np.random.Generator
) -> tuple[CountTable, State]:
    st = Structure.of(scenario)
    T = world.n_periods
    tc = period_times(T)
    u = (
        _stationary_path(world.traffic_rho, world.traffic_sigma, T, rng)
        if world.traffic_sigma > 0
        else np.zeros(T)
    )
    e = _stationary_path(world.rho, world.sigma, T, rng)  # (nodes, T)
    eta = world.mu[:, None] + world.slope[:, None] * tc + e
    n = _counts(world, st, world.level + world.traffic_slope * tc + u, eta, rng)
    return table(n), State(float(u[-1]), e[:, -1].copy())


def simulate_future(
    world: World,
    scenario: Scenario,
    state: State,
    horizon: int,
    n: int,
    rng: np.random.Generator,
    factor: np.ndarray | None = None,
    lift_node: str | None = None,
) -> dict[str, np.ndarray]:
    """``n`` futures of ``horizon`` periods continuing from the history's last state, shape (n, H)."""
    st = Structure.of(scenario)
    T = world.n_periods
    tc = period_times(T, T, horizon)
    K = len(st.nodes)
    u = _ar1(
        np.full(n, state.traffic),
        np.full(n, world.traffic_rho),
        np.full(n, world.traffic_sigma),
        horizon,
        rng.standard_normal((n, horizon)),
    )
    e = _ar1(
        np.broadcast_to(state.nodes, (n, K)),
        np.broadcast_to(world.rho, (n, K)),
        np.broadcast_to(world.sigma, (n, K)),
        horizon,
        rng.standard_normal((n, K, horizon)),
    )
    eta = world.mu[:, None] + world.slope[:, None] * tc + e
    log_mu = world.level + world.traffic_slope * tc + u
    return _counts(world, st, log_mu, eta, rng, factor, lift_node)


def realistic_world(
    rng: np.random.Generator, n_periods: int, kind: str = "iid", n_nodes: int = 2
) -> World:
    """A world like a product funnel: traffic 300 to 20,000 a period, overdispersion from mild to
    strong, first-step rates 5-60%, later steps 20-90%, period-to-period sd 0.02-0.35 (logit).

    ``kind``: ``iid`` (the model's family), ``ar1`` (effects that persist: rho 0.6-0.97), or
    ``trend`` (iid effects around rates and traffic that drift slowly over the year).
    """
    lo = np.array([0.05] + [0.2] * (n_nodes - 1))
    hi = np.array([0.6] + [0.9] * (n_nodes - 1))
    rate = rng.uniform(lo, hi)
    w = World(
        n_periods=n_periods,
        level=float(rng.uniform(np.log(300), np.log(20_000))),
        alpha=float(np.exp(rng.uniform(np.log(8), np.log(400)))),
        mu=np.log(rate) - np.log1p(-rate),
        sigma=rng.uniform(0.02, 0.35, n_nodes),
        rho=np.zeros(n_nodes),
        slope=np.zeros(n_nodes),
        lift=float(priors.sample(_boost_prior(), 1, rng)[0]),
        kind=kind,
    )
    if kind == "ar1":
        w = replace(
            w,
            rho=rng.uniform(0.6, 0.97, n_nodes),
            sigma=rng.uniform(0.05, 0.35, n_nodes),
            traffic_rho=float(rng.uniform(0.6, 0.95)),
            traffic_sigma=float(rng.uniform(0.03, 0.2)),
        )
    elif kind == "trend":
        w = replace(
            w,
            slope=rng.uniform(-0.012, 0.012, n_nodes),
            traffic_slope=float(rng.uniform(-0.01, 0.01)),
        )
    return w


def prior_world(
    mb: ModelBlock, rng: np.random.Generator, n_periods: int, centre: float, n_nodes: int = 2
) -> World:
    """Parameters drawn from the history model's documented priors (for SBC).

    The model centres the prior of ``level`` on the log mean traffic of the data it is given; here
    it is centred on ``centre``. With weeks of traffic the data pin the level down a hundred times
    more tightly than that prior, so the difference does not show in the ranks."""
    ar1 = mb.period_effects == "ar1"

    def half_normal(size=None, scale=mb.rate_sigma_scale):
        return np.abs(rng.normal(0.0, scale, size))

    w = World(
        n_periods=n_periods,
        level=float(rng.normal(centre, mb.level_sd)),
        alpha=float(rng.gamma(mb.alpha_shape, 1 / mb.alpha_rate)),
        mu=rng.normal(0.0, mb.rate_mu_sd, n_nodes),
        sigma=half_normal(n_nodes),
        rho=rng.beta(mb.rho_a, mb.rho_b, n_nodes) if ar1 else np.zeros(n_nodes),
        slope=np.zeros(n_nodes),
        kind="ar1" if ar1 else "iid",
    )
    if ar1:  # the traffic's extra-Poisson variance and the share of it that persists
        var = float(half_normal(scale=mb.traffic_sd_scale)) ** 2
        share = float(rng.beta(mb.traffic_share_a, mb.traffic_share_b))
        w = replace(
            w,
            alpha=1.0 / max((1 - share) * var, 1e-8),
            traffic_sigma=float(np.sqrt(share * var)),
            traffic_rho=float(rng.beta(mb.traffic_rho_a, mb.traffic_rho_b)),
        )
    return w


def _boost_prior():
    from simulator.io.scenario import Prior

    return Prior(lognormal_interval=BOOST_PRIOR)


# ---------------------------------------------------------------------------------- calibration

OPTIONS = ("status_quo", "boost")


def _pit(draws: np.ndarray, x: float) -> float:
    d = np.asarray(draws, dtype=float)
    return float(np.mean(d < x) + 0.5 * np.mean(d == x))


def score_world(
    world: World,
    fits: dict[str, Fit],
    scenario: Scenario,
    history: CountTable,
    state: State,
    rng: np.random.Generator,
    *,
    world_id: int,
    n_oracle: int = 4000,
    targets_per_kr: int = 2,
) -> list[dict[str, Any]]:
    """P(met) of krsim (one per fitted model) and of the oracle for targets across the range, and
    whether the world's true future met them; one row per (model, option, key result, target).
    Also the predictive percentile of the true value (PIT) and whether it fell in the 80% interval."""
    H = scenario.horizon
    base = decision.baselines(scenario, history)
    krs = scenario.key_results
    rows = []
    fseed = int(rng.integers(2**31))
    forecasts = {
        name: forecast.simulate(scenario.model_copy(update={"seed": fseed}), f)
        for name, f in fits.items()
    }
    for option in OPTIONS:
        boost = option == "boost"
        oracle_factor = priors.sample(_boost_prior(), n_oracle, rng) if boost else None
        oracle = simulate_future(
            world, scenario, state, H, n_oracle, rng, oracle_factor, "done" if boost else None
        )
        truth = simulate_future(
            world,
            scenario,
            state,
            H,
            1,
            rng,
            np.array([world.lift]) if boost else None,
            "done" if boost else None,
        )
        o_tot = {s: c.sum(axis=1) for s, c in oracle.items()}
        t_tot = {s: c.sum(axis=1) for s, c in truth.items()}
        us = rng.uniform(0.05, 0.95, (len(krs), targets_per_kr))
        # Targets come from the data alone, as a user's do: quantiles of the first model's forecast
        # (so predictions spread over the range). Placing them by the true parameters instead would
        # fix the true P(met) and make any posterior look too extreme, calibrated or not.
        ref = forecasts[next(iter(forecasts))].counts[option]
        r_tot = {s: c.sum(axis=1) for s, c in ref.items()}
        targets = [
            {
                kr.id: decision.KRTarget(
                    base[kr.id], float(np.quantile(decision.kr_value(kr, r_tot), us[i, j])), ">="
                )
                for i, kr in enumerate(krs)
            }
            for j in range(targets_per_kr)
        ]
        for name, fc in forecasts.items():
            counts = fc.counts[option]
            k_tot = {s: c.sum(axis=1) for s, c in counts.items()}
            for j in range(targets_per_kr):
                tg = targets[j]
                ev = decision.evaluate_option(scenario, counts, tg)
                for i, kr in enumerate(krs):
                    ov = decision.kr_value(kr, o_tot)
                    kv = decision.kr_value(kr, k_tot)
                    x = float(decision.kr_value(kr, t_tot)[0])
                    klo, khi = np.quantile(kv, [0.1, 0.9])
                    olo, ohi = np.quantile(ov, [0.1, 0.9])
                    rows.append(
                        {
                            "world": world_id,
                            "kind": world.kind,
                            "T": world.n_periods,
                            "model": name,
                            "option": option,
                            "kr": kr.id,
                            "target_quantile": float(us[i, j]),
                            "target": tg[kr.id].target,
                            "p_krsim": float(ev.met[kr.id].mean()),
                            "p_oracle": float(np.mean(ov >= tg[kr.id].target)),
                            "met": bool(x >= tg[kr.id].target),
                            "pit_krsim": _pit(kv, x) if j == 0 else None,
                            "pit_oracle": _pit(ov, x) if j == 0 else None,
                            "in80_krsim": bool(klo <= x <= khi) if j == 0 else None,
                            "in80_oracle": bool(olo <= x <= ohi) if j == 0 else None,
                        }
                    )
    return rows


def recovery_rows(world: World, fit: Fit, *, world_id: int, mass: float = 0.94) -> list[dict]:
    """Whether each true parameter lies in the central ``mass`` interval of its posterior."""
    rows = []
    q = [(1 - mass) / 2, (1 + mass) / 2]
    for name, truth in world.params().items():
        if name not in fit.arrays:
            continue
        post = fit.flat(name).reshape(fit.n_draws, -1)
        tv = np.atleast_1d(truth)
        for k in range(post.shape[1]):
            lo, hi = np.quantile(post[:, k], q)
            label = name if post.shape[1] == 1 else f"{name}[{fit.nodes[k]}]"
            rows.append(
                {
                    "world": world_id,
                    "param": label,
                    "truth": float(tv[k]),
                    "lo": float(lo),
                    "hi": float(hi),
                    "inside": bool(lo <= tv[k] <= hi),
                    "below": bool(tv[k] < lo),
                    "clean_fit": bool(fit.diagnostics.get("divergences", 0) == 0),
                }
            )
    return rows


@dataclass
class CalibrationRun:
    rows: list[dict[str, Any]] = field(default_factory=list)
    recovery: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def run_calibration(
    fitters: Fitters,
    rng: np.random.Generator,
    *,
    n_worlds: int,
    kinds: tuple[str, ...] = ("iid",),
    models: tuple[str, ...] = ("iid", "ar1"),
    lengths: tuple[int, ...] = (26, 39, 52),
    n_oracle: int = 4000,
    targets_per_kr: int = 2,
    world_offset: int = 0,
    progress=None,
) -> CalibrationRun:
    """Calibration over ``n_worlds`` worlds, their kinds cycling through ``kinds``; every world is
    fitted with each model in ``models``."""
    t0 = time.perf_counter()
    out = CalibrationRun()
    scenario = fitters.scenario("iid")
    for i, seq in enumerate(rng.bit_generator.seed_seq.spawn(n_worlds)):
        wrng = np.random.default_rng(seq)
        kind = kinds[i % len(kinds)]
        T = lengths[int(wrng.integers(len(lengths)))]
        world = realistic_world(wrng, T, kind)
        history, state = simulate_history(world, scenario, wrng)
        fits = {}
        for m in models:
            f = fitters.get(m, T).fit(history, int(wrng.integers(2**31)))
            fits[m] = f
            out.diagnostics.append(
                {"world": world_offset + i, "kind": kind, "model": m, **f.diagnostics}
            )
            if m == kind:  # recovery of each model on worlds of its own family
                out.recovery += recovery_rows(world, f, world_id=world_offset + i)
        out.rows += score_world(
            world,
            fits,
            scenario,
            history,
            state,
            wrng,
            world_id=world_offset + i,
            n_oracle=n_oracle,
            targets_per_kr=targets_per_kr,
        )
        if progress:
            progress(f"calibration world {i + 1}/{n_worlds} ({kind}, T={T})")
    out.seconds = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------- summaries of the rows


def _cluster_mean(values: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error, robust to correlation within clusters (worlds)."""
    values = np.asarray(values, dtype=float)
    ids, inv = np.unique(clusters, return_inverse=True)
    m = values.mean()
    resid = np.bincount(inv, weights=values - m)
    n = values.size
    se = np.sqrt(np.sum(resid**2)) / n * np.sqrt(len(ids) / max(len(ids) - 1, 1))
    return float(m), float(se)


def wilson(k: float, n: float, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z**2 / n
    c = (p + z**2 / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / d
    return (float(c - h), float(c + h))


def reliability(p: np.ndarray, met: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Predicted vs observed frequency per bin of predicted probability, with Wilson 95% intervals."""
    p, met = np.asarray(p, float), np.asarray(met, float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        n = int(sel.sum())
        k = float(met[sel].sum())
        lo, hi = wilson(k, n)
        out.append(
            {
                "lo_edge": float(edges[b]),
                "hi_edge": float(edges[b + 1]),
                "n": n,
                "predicted": float(p[sel].mean()) if n else float("nan"),
                "observed": k / n if n else float("nan"),
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    return out


def summarize_calibration(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Brier scores (krsim, oracle, their gap), calibration tests, 80% coverage, reliability bins."""
    if not rows:
        return {}
    w = np.array([r["world"] for r in rows])
    p = np.array([r["p_krsim"] for r in rows])
    po = np.array([r["p_oracle"] for r in rows])
    o = np.array([r["met"] for r in rows], dtype=float)
    lengths = np.array([r["T"] for r in rows])
    bk, bo = (p - o) ** 2, (po - o) ** 2
    gap, gap_se = _cluster_mean(bk - bo, w)
    bias, bias_se = _cluster_mean(o - p, w)
    # Spiegelhalter's test, with the variance taken from the worlds (targets within one world share
    # its future, so they are not independent).
    a = (o - p) * (1 - 2 * p)
    ids, inv = np.unique(w, return_inverse=True)
    per = np.bincount(inv, weights=a)
    z = float(per.sum() / np.sqrt(np.sum(per**2))) if np.any(per) else 0.0
    first = [r for r in rows if r["pit_krsim"] is not None]
    wf = np.array([r["world"] for r in first])
    cov, cov_se = _cluster_mean(np.array([r["in80_krsim"] for r in first], float), wf)
    covo, covo_se = _cluster_mean(np.array([r["in80_oracle"] for r in first], float), wf)
    pit = np.array([r["pit_krsim"] for r in first])
    pito = np.array([r["pit_oracle"] for r in first])
    from scipy import stats

    return {
        "n_predictions": int(p.size),
        "n_worlds": int(len(ids)),
        "brier_krsim": float(bk.mean()),
        "brier_oracle": float(bo.mean()),
        "brier_gap": gap,
        "brier_gap_se": gap_se,
        "mean_met_minus_p": bias,
        "mean_met_minus_p_se": bias_se,
        "spiegelhalter_z": z,
        "spiegelhalter_p": float(2 * stats.norm.sf(abs(z))),
        "coverage80_krsim": cov,
        "coverage80_krsim_se": cov_se,
        "coverage80_oracle": covo,
        "coverage80_oracle_se": covo_se,
        "pit_tails_krsim": float(np.mean((pit < 0.05) | (pit > 0.95))),
        "pit_tails_oracle": float(np.mean((pito < 0.05) | (pito > 0.95))),
        "by_length": {
            str(T): {
                "n_worlds": int(len(np.unique(w[lengths == T]))),
                "brier_krsim": float(bk[lengths == T].mean()),
                "brier_oracle": float(bo[lengths == T].mean()),
            }
            for T in np.unique(lengths)
        },
        "reliability_krsim": reliability(p, o),
        "reliability_oracle": reliability(po, o),
        "pit_krsim": pit.tolist(),
        "pit_oracle": pito.tolist(),
    }


def summarize_recovery(rows: list[dict[str, Any]], mass: float = 0.94) -> dict[str, Any]:
    """Share of true values inside the ``mass`` intervals, per parameter and pooled."""
    out: dict[str, Any] = {"params": {}}
    names = sorted({r["param"] for r in rows})
    for name in names:
        ins = np.array([r["inside"] for r in rows if r["param"] == name], dtype=float)
        below = sum(r["below"] for r in rows if r["param"] == name)
        out["params"][name] = {
            "n": int(ins.size),
            "coverage": float(ins.mean()),
            "truth_below": int(below),
            "truth_above": int(ins.size - ins.sum() - below),
            "se": float(np.sqrt(mass * (1 - mass) / ins.size)),
        }
    allin = np.array([r["inside"] for r in rows], dtype=float)
    out["pooled"] = {"n": int(allin.size), "coverage": float(allin.mean()) if allin.size else None}
    # misses by sampler health: fits without any divergence vs the rest
    for clean in (True, False):
        sel = np.array([r["inside"] for r in rows if r.get("clean_fit", True) == clean], float)
        key = "fits_without_divergences" if clean else "fits_with_divergences"
        out[key] = {"n": int(sel.size), "coverage": float(sel.mean()) if sel.size else None}
    out["mass"] = mass
    return out


# ------------------------------------------------------------------------------------------- SBC


@dataclass
class SBCRun:
    ranks: dict[str, list[int]]
    n_post: int
    recovery: list[dict[str, Any]]
    diagnostics: list[dict[str, Any]]
    seconds: float


def run_sbc(
    fitters: Fitters,
    rng: np.random.Generator,
    *,
    n_reps: int,
    period_effects: str = "iid",
    n_periods: int = 39,
    n_post: int = 99,
    centre: float = float(np.log(3000.0)),
    progress=None,
) -> SBCRun:
    """Simulation-based calibration: parameters from the prior, data from them, the fit's rank of
    the truth among ``n_post`` thinned posterior draws (uniform on 0..n_post if all is right)."""
    t0 = time.perf_counter()
    scenario = fitters.scenario(period_effects)
    fitter = fitters.get(period_effects, n_periods)
    ranks: dict[str, list[int]] = {}
    recovery: list[dict[str, Any]] = []
    diags = []
    for i, seq in enumerate(rng.bit_generator.seed_seq.spawn(n_reps)):
        wrng = np.random.default_rng(seq)
        world = prior_world(scenario.model, wrng, n_periods, centre)
        history, _ = simulate_history(world, scenario, wrng)
        fit = fitter.fit(history, int(wrng.integers(2**31)))
        diags.append({"rep": i, **fit.diagnostics})
        recovery += recovery_rows(world, fit, world_id=i)
        step = max(fit.n_draws // n_post, 1)
        for name, truth in world.params().items():
            post = fit.flat(name).reshape(fit.n_draws, -1)[::step][:n_post]
            tv = np.atleast_1d(truth)
            for k in range(post.shape[1]):
                label = name if post.shape[1] == 1 else f"{name}[{fit.nodes[k]}]"
                ranks.setdefault(label, []).append(int(np.sum(post[:, k] < tv[k])))
        if progress:
            progress(f"SBC {period_effects} {i + 1}/{n_reps}")
    return SBCRun(ranks, n_post, recovery, diags, time.perf_counter() - t0)


def rank_uniformity(ranks: list[int], n_post: int, bins: int = 10) -> dict[str, Any]:
    """Chi-square test that ranks on 0..n_post are uniform, over ``bins`` equal bins."""
    from scipy import stats

    r = np.asarray(ranks)
    counts = np.bincount(np.minimum(r * bins // (n_post + 1), bins - 1), minlength=bins)
    expected = r.size / bins
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    return {
        "n": int(r.size),
        "counts": counts.tolist(),
        "chi2": chi2,
        "p_value": float(stats.chi2.sf(chi2, bins - 1)),
    }


# ---------------------------------------------------------------------------- exact agreement


def point_fit(
    *,
    level: np.ndarray,
    alpha: np.ndarray,
    rate_mu: np.ndarray,
    nodes: tuple[str, ...],
    n_periods: int = 26,
    chains: int = 1,
) -> Fit:
    """A fit whose posterior draws are given (no period effects: sigma = 0), for closed forms."""
    D = np.size(level)
    K = len(nodes)
    arrays = {
        "level": np.asarray(level, float).reshape(chains, D // chains),
        "alpha": np.asarray(alpha, float).reshape(chains, D // chains),
        "rate_mu": np.asarray(rate_mu, float).reshape(chains, D // chains, K),
        "rate_sigma": np.zeros((chains, D // chains, K)),
    }
    return Fit("exact", arrays, {}, n_periods, nodes)


def nb_total_sf(threshold: np.ndarray, horizon: int, mean: np.ndarray, alpha: np.ndarray):
    """P(total >= threshold) for the sum over ``horizon`` periods of NegBin(mean, alpha) thinned
    by a fixed rate already folded into ``mean``: NegBin(horizon * alpha) with mean horizon * mean."""
    from scipy import stats

    r = horizon * np.asarray(alpha, float)
    m = horizon * np.asarray(mean, float)
    return stats.nbinom.sf(np.ceil(threshold) - 1, r, r / (r + m))


def exact_forecast_cases(rng: np.random.Generator, n_draws: int = 40_000) -> list[dict[str, Any]]:
    """krsim's forecast and decision layers against closed forms, within Monte Carlo error.

    With no period effects and a fixed rate p, a stage's horizon total is negative binomial:
    traffic NegBin(H alpha, mean H m) thinned by p. Cases: fixed parameters (count and ratio key
    results, and an option with a fixed lift), and a Beta-distributed rate (a Beta mixture of
    negative binomials, integrated numerically)."""
    from scipy import integrate, stats

    H = 13
    sc = parse_scenario(
        f"""
title: Exact agreement
horizon: {H}
seed: {int(rng.integers(2**31))}
funnel:
  visits: {{}}
  signup: {{from: visits}}
history: history.csv
options:
  status_quo: {{}}
  lifted:
    changes:
      - lift: {{stage: signup, factor: {{fixed: 1.15}}}}
key_results:
  - {{id: signups, metric: signup, target: "+5%"}}
  - {{id: conversion, metric: signup / visits, target: "+2%"}}
""".encode(),
        "exact",
    )
    m, alpha, p = 2000.0, 60.0, 0.12
    cases = []

    def run(fit, tg):
        fc = forecast.simulate(sc, fit)
        ev = decision.evaluate(sc, fc, tg)
        return {o: ev.options[o].met for o in fc.options}

    # 1. fixed parameters: count target, ratio target, lifted option
    D = n_draws
    fit = point_fit(
        level=np.full(D, np.log(m)),
        alpha=np.full(D, alpha),
        rate_mu=np.full((D, 1), np.log(p / (1 - p))),
        nodes=("signup",),
    )
    mean_total = H * m * p
    count_target = float(np.round(mean_total * rng.uniform(0.95, 1.05)))
    ratio_target = p * float(rng.uniform(0.98, 1.02))
    tg = {
        "signups": decision.KRTarget(mean_total, count_target, ">="),
        "conversion": decision.KRTarget(p, ratio_target, ">="),
    }
    met = run(fit, tg)
    exact_count = float(nb_total_sf(count_target, H, m * p, alpha))
    exact_lifted = float(nb_total_sf(count_target, H, m * p * 1.15, alpha))
    # ratio: sum over the traffic total N of P(N) * P(Binomial(N, p) >= ratio_target * N)
    r = H * alpha
    q = r / (r + H * m)
    N = np.arange(int(stats.nbinom.ppf(1e-12, r, q)), int(stats.nbinom.ppf(1 - 1e-12, r, q)) + 1)
    exact_ratio = float(
        np.sum(
            stats.nbinom.pmf(N, r, q) * stats.binom.sf(np.ceil(ratio_target * N - 1e-9) - 1, N, p)
        )
    )
    for name, option, kr, exact in [
        ("count total, fixed rate", "status_quo", "signups", exact_count),
        ("count total, fixed lift 1.15", "lifted", "signups", exact_lifted),
        ("ratio of totals, fixed rate", "status_quo", "conversion", exact_ratio),
    ]:
        x = met[option][kr].astype(float)
        cases.append(_case(name, x, exact))

    # 2. a Beta(a, b) rate: P = integral of the negative binomial tail against the Beta density
    a, b = 120.0, 880.0
    prate = rng.beta(a, b, D)
    fit = point_fit(
        level=np.full(D, np.log(m)),
        alpha=np.full(D, alpha),
        rate_mu=(np.log(prate) - np.log1p(-prate))[:, None],
        nodes=("signup",),
    )
    mean_total = H * m * a / (a + b)
    count_target = float(np.round(mean_total * rng.uniform(0.95, 1.05)))
    tg = {
        "signups": decision.KRTarget(mean_total, count_target, ">="),
        "conversion": decision.KRTarget(p, ratio_target, ">="),
    }
    met = run(fit, tg)
    exact_beta, _ = integrate.quad(
        lambda x: nb_total_sf(count_target, H, m * x, alpha) * stats.beta.pdf(x, a, b),
        0,
        1,
        points=[a / (a + b)],
        limit=200,
        epsabs=1e-10,
    )
    cases.append(
        _case("count total, Beta rate", met["status_quo"]["signups"].astype(float), exact_beta)
    )
    return cases


def _case(name: str, met: np.ndarray, exact: float) -> dict[str, Any]:
    p = float(met.mean())
    se = float(np.sqrt(max(exact * (1 - exact), 1e-12) / met.size))
    return {
        "case": name,
        "krsim": p,
        "exact": float(exact),
        "error": p - exact,
        "se": se,
        "z": (p - exact) / se,
    }


# ----------------------------------------------------- exact agreement through the fitted model


def traffic_exact(
    fitters: Fitters,
    rng: np.random.Generator,
    *,
    n_cases: int,
    n_periods: int = 26,
    draws: int | None = None,
    chains: int | None = None,
) -> list[dict[str, Any]]:
    """End to end (history -> fit -> forecast -> P(met)) against an exact answer.

    The traffic's posterior is two-dimensional (level, alpha), so it can be computed on a grid from
    the model's documented priors; the horizon total of traffic given (level, alpha) is negative
    binomial, so P(total >= target) is a sum over the grid of negative binomial tails. (The stages
    have a rate per period, so no such grid: the forecast-layer cases cover them.)"""
    from scipy import stats

    from simulator.io.scenario import KeyResult

    scenario = fitters.scenario("iid")
    fitter = fitters.get("iid", n_periods)
    H = scenario.horizon
    mb = scenario.model
    kr = KeyResult(id="visits", metric="visits", target="+0%")
    sc = scenario.model_copy(update={"key_results": [kr]})
    out = []
    for i, seq in enumerate(rng.bit_generator.seed_seq.spawn(n_cases)):
        wrng = np.random.default_rng(seq)
        world = realistic_world(wrng, n_periods)
        history, _ = simulate_history(world, scenario, wrng)
        v = history.counts["visits"].astype(float)
        seed = int(wrng.integers(2**31))
        fit = fitter.fit(history, seed, draws=draws, chains=chains)
        fc = forecast.simulate(sc.model_copy(update={"seed": seed}), fit)
        total = fc.total("status_quo", "visits")
        target = float(np.round(np.quantile(total, wrng.uniform(0.1, 0.9))))
        tg = {"visits": decision.KRTarget(float(v[-H:].sum()), target, ">=")}
        met = decision.evaluate_option(sc, fc.counts["status_quo"], tg).met["visits"].astype(float)
        p_krsim = float(met.mean())
        se = decision.mc_se(met, fit.chains)

        # the exact posterior of (level, log alpha) on a grid wide enough to hold all of it
        centre = float(np.log(max(v.mean(), 1.0)))
        L = np.linspace(centre - 0.6, centre + 0.6, 241)
        la = np.linspace(np.log(0.5), np.log(5000.0), 301)
        LL, AA = np.meshgrid(L, la, indexing="ij")
        A, M = np.exp(AA), np.exp(LL)
        ll = np.zeros_like(LL)
        for y in v:
            ll += stats.nbinom.logpmf(y, A, A / (A + M))
        lp = (
            ll
            + stats.norm.logpdf(LL, centre, mb.level_sd)
            + stats.gamma.logpdf(A, mb.alpha_shape, scale=1 / mb.alpha_rate)
            + AA  # d alpha = alpha d log alpha
        )
        w = np.exp(lp - lp.max())
        w /= w.sum()
        keep = w > w.max() * 1e-14
        exact = float(np.sum(w[keep] * nb_total_sf(target, H, M[keep], A[keep])))
        edge = float(max(w[0].sum(), w[-1].sum(), w[:, 0].sum(), w[:, -1].sum()))
        out.append(
            {
                "case": f"traffic total, fitted history {i + 1}",
                "krsim": p_krsim,
                "exact": exact,
                "error": p_krsim - exact,
                "se": se,
                "z": (p_krsim - exact) / se,
                "grid_edge_mass": edge,
                "divergences": fit.diagnostics["divergences"],
            }
        )
    return out


# ------------------------------------------------------------------------------- Monte Carlo error


def mc_error_check(
    fitters: Fitters,
    rng: np.random.Generator,
    *,
    n_seeds: int,
    n_periods: int = 26,
    period_effects: str = "iid",
    draws: int | None = None,
    chains: int | None = None,
    tune: int | None = None,
) -> dict[str, Any]:
    """Refit and re-forecast one history with ``n_seeds`` seeds: the spread of P(met) across seeds
    against the Monte Carlo SE that krsim reports for each run."""
    scenario = fitters.scenario(period_effects)
    fitter = fitters.get(period_effects, n_periods)
    world = realistic_world(rng, n_periods, "iid")
    history, _ = simulate_history(world, scenario, rng)
    base = decision.baselines(scenario, history)
    first = None
    p, se = [], []
    for _ in range(n_seeds):
        seed = int(rng.integers(2**31))
        fit = fitter.fit(history, seed, draws=draws, chains=chains, tune=tune)
        fc = forecast.simulate(scenario.model_copy(update={"seed": seed}), fit)
        if first is None:
            # targets at the forecast's medians: P(met) near 1/2, where the Monte Carlo error is largest
            first = {}
            for kr in scenario.key_results:
                med = float(
                    np.median(
                        decision.kr_value(
                            kr, {s: fc.total("status_quo", s) for s in scenario.funnel}
                        )
                    )
                )
                first[kr.id] = decision.KRTarget(base[kr.id], med, ">=")
        ev = decision.evaluate_option(scenario, fc.counts["status_quo"], first)
        p.append([ev.met[k].mean() for k in first])
        se.append([decision.mc_se(ev.met[k].astype(float), fit.chains) for k in first])
    from scipy import stats

    P, S = np.array(p), np.array(se)
    sd = P.std(axis=0, ddof=1)
    rms = np.sqrt((S**2).mean(axis=0))
    dof = n_seeds - 1
    lo, hi = stats.chi2.ppf([0.005, 0.995], dof) / dof
    return {
        "n_seeds": n_seeds,
        "draws": fit.n_draws,
        "key_results": {
            k: {
                "p_met_mean": float(P[:, i].mean()),
                "sd_across_seeds": float(sd[i]),
                "reported_se_rms": float(rms[i]),
                "ratio": float(sd[i] / rms[i]),
            }
            for i, k in enumerate(first)
        },
        "ratio_interval99": [float(np.sqrt(lo)), float(np.sqrt(hi))],
    }


# ------------------------------------------------------------------------------------ the suite

Z_FAMILY = 0.01  # family-wise false-alarm rate of each check's statistical criteria
CLOSE_TO_ORACLE = 0.10  # krsim's Brier score may exceed the oracle's by at most this fraction


@dataclass(frozen=True, kw_only=True)
class SuiteConfig:
    """Sizes of the checks. ``FULL`` is `make validate`; ``REDUCED`` runs in `make test`."""

    name: str
    draws: int = 400
    tune: int = 400
    chains: int = 2
    lengths: tuple[int, ...] = (26, 39, 52)
    calibration_worlds: int = 150
    calibration_models: tuple[str, ...] = ("iid", "ar1", "ar1+trend")
    drift_worlds: int = 150
    drift_models: tuple[str, ...] = ("iid", "ar1", "ar1+trend")
    sbc_reps: int = 200
    sbc_ar1_reps: int = 100
    sbc_periods: int = 39
    exact_draws: int = 200_000
    traffic_cases: int = 10
    se_seeds: int = 30
    se_draws: int = 1000  # the model block's defaults: what users get
    se_chains: int = 4
    se_tune: int = 1000
    n_oracle: int = 4000


FULL = SuiteConfig(name="full")
_DEFAULT = ModelBlock().period_effects
REDUCED = SuiteConfig(
    name="reduced",
    draws=300,
    tune=300,
    lengths=(26,),
    calibration_worlds=8,
    calibration_models=(_DEFAULT,),
    # a run check (the full suite judges 150 worlds): this seed's first 3 drifting worlds share
    # one parameterisation of the drifting model; a fourth compiles another (about 25 s)
    drift_worlds=3,
    # the constant level and the default's drifting levels (drift: random_walk)
    drift_models=("iid", "iid+walk"),
    # SBC of the default period-effect model only
    sbc_reps=16 if _DEFAULT == "iid" else 0,
    sbc_ar1_reps=16 if _DEFAULT == "ar1" else 0,
    sbc_periods=26,
    exact_draws=40_000,
    traffic_cases=2,
    se_seeds=8,
    se_draws=300,
    se_chains=2,
    se_tune=300,
    n_oracle=2000,
)


def _z(alpha: float, m: int = 1) -> float:
    from scipy import stats

    return float(stats.norm.isf(alpha / (2 * max(m, 1))))


def _binom_p(k: int, n: int, p: float) -> float:
    from scipy import stats

    return float(stats.binomtest(k, n, p).pvalue) if n else 1.0


def _fit_health(diags: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of fits with divergences or R-hat above 1.01, per (family, model)."""
    out: dict[str, Any] = {}
    for d in diags:
        key = f"{d.get('kind', 'prior')}/{d.get('model', '')}".rstrip("/")
        g = out.setdefault(key, {"fits": 0, "with_divergences": 0, "rhat_above_1.01": 0})
        g["fits"] += 1
        g["with_divergences"] += int(d["divergences"] > 0)
        g["rhat_above_1.01"] += int(d["rhat_max"] > 1.01)
    return out


def calibration_verdict(s: dict[str, Any]) -> dict[str, Any]:
    """Pass if P(met) is calibrated (Spiegelhalter), the 80% intervals cover like the oracle's, and
    the Brier score is within CLOSE_TO_ORACLE of the oracle's (judged by its estimate)."""
    z = _z(Z_FAMILY, 2)
    cov_diff = s["coverage80_krsim"] - s["coverage80_oracle"]
    cov_se = float(np.hypot(s["coverage80_krsim_se"], s["coverage80_oracle_se"]))
    rel_gap = s["brier_gap"] / s["brier_oracle"]
    return {
        "calibrated": abs(s["spiegelhalter_z"]) < z,
        "coverage_like_oracle": abs(cov_diff) < z * cov_se if cov_se > 0 else True,
        "close_to_oracle": rel_gap < CLOSE_TO_ORACLE,
        "relative_brier_gap": rel_gap,
        "relative_brier_gap_se": s["brier_gap_se"] / s["brier_oracle"],
        "z_limit": z,
    }


def run_suite(config: SuiteConfig, seed: int = 20260101, progress=None) -> dict[str, Any]:
    """Every check, from one seed; returns plain numbers (JSON-serialisable) and pass flags."""
    t_start = time.perf_counter()
    root = np.random.SeedSequence(seed)
    rngs = {
        name: np.random.default_rng(s)
        for name, s in zip(
            ("calibration", "drift", "sbc", "sbc_ar1", "exact", "traffic", "se"),
            root.spawn(7),
            strict=True,
        )
    }
    fitters = Fitters(draws=config.draws, tune=config.tune, chains=config.chains)
    out: dict[str, Any] = {
        "config": config.__dict__ | {"lengths": list(config.lengths)},
        "seed": seed,
    }
    timings: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        r = fn()
        timings[name] = time.perf_counter() - t0
        return r

    # 1 + 3: calibration and recovery on the model's own family
    cal = timed(
        "calibration",
        lambda: run_calibration(
            fitters,
            rngs["calibration"],
            n_worlds=config.calibration_worlds,
            kinds=("iid",),
            models=config.calibration_models,
            lengths=config.lengths,
            n_oracle=config.n_oracle,
            progress=progress,
        ),
    )
    # 6: drift
    drift = timed(
        "drift",
        lambda: run_calibration(
            fitters,
            rngs["drift"],
            n_worlds=config.drift_worlds,
            kinds=("ar1", "trend"),
            models=config.drift_models,
            lengths=config.lengths,
            n_oracle=config.n_oracle,
            world_offset=100_000,
            progress=progress,
        ),
    )
    groups: dict[str, dict[str, Any]] = {}
    for fam, run in (("iid", cal), ("drift", drift)):
        for m in dict.fromkeys(config.calibration_models + config.drift_models):
            rows = [r for r in run.rows if r["model"] == m]
            if rows:
                s = summarize_calibration(rows)
                s["verdict"] = calibration_verdict(s)
                groups[f"{fam}/{m}"] = s
            for kind in ("ar1", "trend") if fam == "drift" else ():
                rows = [r for r in run.rows if r["model"] == m and r["kind"] == kind]
                if rows:
                    s = summarize_calibration(rows)
                    s["verdict"] = calibration_verdict(s)
                    groups[f"{kind}/{m}"] = s
    out["calibration"] = groups
    out["fit_health"] = _fit_health(cal.diagnostics + drift.diagnostics)
    default = ModelBlock().period_effects
    out["default_period_effects"] = default
    out["checks"] = {}
    v = groups[f"iid/{default}"]["verdict"]
    out["checks"]["calibration"] = bool(
        v["calibrated"] and v["coverage_like_oracle"] and v["close_to_oracle"]
    )
    d = groups[f"drift/{default}"]["verdict"]
    out["checks"]["drift"] = bool(d["calibrated"] and d["coverage_like_oracle"])

    # 2 + 3: SBC (parameters from the prior) and recovery, for each period-effect model; the
    # checks pass or fail on the default one (the other is reported)
    sbc_out = {}
    for pe, reps, key in (("iid", config.sbc_reps, "sbc"), ("ar1", config.sbc_ar1_reps, "sbc_ar1")):
        if reps <= 0:
            continue
        run = timed(
            key,
            lambda pe=pe, reps=reps, key=key: run_sbc(
                fitters,
                rngs[key],
                n_reps=reps,
                period_effects=pe,
                n_periods=config.sbc_periods,
                progress=progress,
            ),
        )
        tests = {name: rank_uniformity(r, run.n_post) for name, r in run.ranks.items()}
        limit = Z_FAMILY / len(tests)
        sbc_out[pe] = {
            "n_post": run.n_post,
            "ranks": run.ranks,
            "tests": tests,
            "p_limit": limit,
            "fit_health": _fit_health(run.diagnostics),
            "recovery": summarize_recovery(run.recovery),
            "passed": all(t["p_value"] > limit for t in tests.values()),
        }
    out["sbc"] = sbc_out
    out["checks"]["sbc"] = bool(sbc_out[default]["passed"])

    def recovery_check(summary):
        params = summary["params"]
        limit = Z_FAMILY / max(len(params), 1)
        for p in params.values():
            k = round(p["coverage"] * p["n"])
            p["p_value"] = _binom_p(k, p["n"], summary["mass"])
        summary["p_limit"] = limit
        summary["passed"] = all(p["p_value"] > limit for p in params.values())
        return summary

    # realistic worlds: each model on the worlds of its own family (iid effects / AR(1) effects)
    realistic = {"iid": cal.recovery, "ar1": drift.recovery}
    rec = {}
    for pe in sbc_out:
        rec[pe] = {
            "prior_worlds": recovery_check(sbc_out[pe]["recovery"]),
            "realistic_worlds": recovery_check(summarize_recovery(realistic[pe])),
        }
    out["recovery"] = rec
    out["checks"]["recovery"] = bool(
        rec[default]["prior_worlds"]["passed"] and rec[default]["realistic_worlds"]["passed"]
    )

    # 4: exact agreement
    cases = timed("exact", lambda: exact_forecast_cases(rngs["exact"], config.exact_draws))
    traffic = timed(
        "traffic_exact",
        lambda: traffic_exact(fitters, rngs["traffic"], n_cases=config.traffic_cases),
    )
    from scipy import stats

    zc = _z(Z_FAMILY, len(cases) + 1)
    chi2 = float(sum(c["z"] ** 2 for c in traffic))
    p_traffic = float(stats.chi2.sf(chi2, len(traffic)))
    out["exact"] = {
        "forecast_cases": cases,
        "fitted_cases": traffic,
        "z_limit": zc,
        "fitted_chi2": chi2,
        "fitted_p_value": p_traffic,
    }
    out["checks"]["exact"] = bool(
        all(abs(c["z"]) < zc for c in cases) and p_traffic > Z_FAMILY / (len(cases) + 1)
    )

    # 5: Monte Carlo error
    se = timed(
        "mc_error",
        lambda: mc_error_check(
            fitters,
            rngs["se"],
            n_seeds=config.se_seeds,
            draws=config.se_draws,
            chains=config.se_chains,
            tune=config.se_tune,
        ),
    )
    from scipy import stats as st

    k = len(se["key_results"])
    dof = config.se_seeds - 1
    lo, hi = np.sqrt(st.chi2.ppf([Z_FAMILY / (2 * k), 1 - Z_FAMILY / (2 * k)], dof) / dof)
    se["ratio_limits"] = [float(lo), float(hi)]
    out["mc_error"] = se
    out["checks"]["mc_error"] = bool(all(lo < v["ratio"] < hi for v in se["key_results"].values()))

    timings["compile"] = fitters.compile_seconds
    timings["total"] = time.perf_counter() - t_start
    out["timings"] = timings
    return out
