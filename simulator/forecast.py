"""Posterior draws -> the simulated horizon of every option, vectorised over draws and periods.

Common random numbers: every option sees the same traffic shocks, the same period effects, the same
change-parameter draws and, stage by stage, the same binomial stream, so differences between options
are differences of the options, not Monte Carlo noise.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from . import changes as ch
from . import priors
from .model import Fit, period_times
from .scenario import Flow, Gate, Lift, Scenario, SetRate, change_param_names


@dataclass(frozen=True)
class Forecast:
    """Simulated counts per option: ``counts[option][stage]`` has shape (draws, horizon)."""

    options: tuple[str, ...]
    counts: dict[str, dict[str, np.ndarray]]
    params: dict[str, np.ndarray]  # change parameter draws by DESIGN name, shape (draws,)
    chains: int

    @property
    def n_draws(self) -> int:
        return next(iter(self.counts[self.options[0]].values())).shape[0]

    def total(self, option: str, stage: str) -> np.ndarray:
        return self.counts[option][stage].sum(axis=1)


def _stream(seed: int, *key: int | str) -> np.random.Generator:
    ints = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in key]
    return np.random.default_rng([seed, *ints])


def stage_order(scenario: Scenario) -> list[str]:
    """Stages in an order where parents, gate sources and flow sources come first."""
    deps: dict[str, set[str]] = {s: set() for s in scenario.funnel}
    for s, st in scenario.funnel.items():
        if st.from_:
            deps[s].add(st.from_)
    for opt in scenario.options.values():
        for c in opt.changes:
            sp = c.spec
            if isinstance(sp, Gate) and sp.counts_as:
                deps[sp.counts_as].add(scenario.funnel[sp.before].from_)  # type: ignore[arg-type]
            if isinstance(sp, Flow):
                deps[sp.to].add(sp.from_)
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(deps):
        ready = [s for s in deps if s not in done and deps[s] <= done]
        if not ready:
            raise ValueError("the options' changes make the funnel cyclic")
        order.append(ready[0])
        done.add(ready[0])
    return order


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
                out[name] = priors.sample(prior, n, _stream(scenario.seed, "param", name))
    return out


@dataclass(frozen=True)
class Shared:
    """What every option shares in one simulation: traffic means with shocks, period effects."""

    traffic_mean: np.ndarray  # (draws, horizon)
    base_eta: dict[str, np.ndarray]  # rate node -> logit rate per draw and period
    effect: dict[str, np.ndarray]  # rate node -> period effect
    order: list[str]
    chains: int


def prepare(scenario: Scenario, fit: Fit, horizon: int | None = None) -> Shared:
    H = horizon or scenario.horizon
    D = fit.n_draws
    seed = scenario.seed
    T = fit.n_periods
    t_future = period_times(T, T, H)
    log_mu = fit.flat("level")[:, None] + np.zeros((1, H))
    if "trend" in fit.arrays:
        log_mu = log_mu + fit.flat("trend")[:, None] * t_future
    ar1 = "rate_elast" in fit.arrays
    if ar1:
        log_mu = log_mu + _ar1_path(
            fit.flat("traffic_elast"),
            fit.flat("traffic_rho"),
            fit.flat("traffic_sigma"),
            H,
            _stream(seed, "effect", "__traffic__"),
        )
    alpha = fit.flat("alpha")[:, None]
    shock = _stream(seed, "traffic").gamma(alpha, 1 / alpha, (D, H))
    effect: dict[str, np.ndarray] = {}
    base_eta: dict[str, np.ndarray] = {}
    for node in fit.nodes:
        mu, sigma = fit.node("rate_mu", node), fit.node("rate_sigma", node)
        if "rate_trend" in fit.arrays:
            mu = mu[:, None] + fit.node("rate_trend", node)[:, None] * t_future
        else:
            mu = mu[:, None]
        rng = _stream(seed, "effect", node)
        if ar1:  # continued from its last value in the history
            e = _ar1_path(fit.node("rate_elast", node), fit.node("rate_rho", node), sigma, H, rng)
        else:
            e = sigma[:, None] * rng.standard_normal((D, H))
        effect[node] = e
        base_eta[node] = mu + e
    return Shared(np.exp(log_mu) * shock, base_eta, effect, stage_order(scenario), fit.chains)


def simulate_option(
    scenario: Scenario, shared: Shared, option: str, params: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Counts per stage, shape (draws, horizon), of one option."""
    return _simulate_option(
        scenario,
        option,
        shared.order,
        shared.traffic_mean,
        shared.base_eta,
        shared.effect,
        params,
        scenario.seed,
    )


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
    opt = scenario.options[oid]
    names = change_param_names(oid, opt)
    rate = {n: ch.expit(e, np) for n, e in base_eta.items()}
    traffic = traffic_mean
    gates: dict[str, tuple[Gate, np.ndarray, np.ndarray, str]] = {}
    flows: dict[str, list[tuple[Flow, np.ndarray, str]]] = {}
    for change, pnames in zip(opt.changes, names, strict=True):
        p = {field: params[name][:, None] for field, name in pnames}
        tag = pnames[0][1].rsplit(".", 1)[0]
        sp = change.spec
        if isinstance(sp, Lift):
            if sp.stage == scenario.root:
                traffic = ch.lift_traffic(traffic, p["factor"])
            else:
                rate[sp.stage] = ch.lift_rate(rate[sp.stage], p["factor"], np)
        elif isinstance(sp, SetRate):
            rate[sp.stage] = ch.set_rate(p["rate"], effect[sp.stage], np)
        elif isinstance(sp, Gate):
            gates[sp.before] = (sp, p["pass"], p["overlap"], tag)
        elif isinstance(sp, Flow):
            flows.setdefault(sp.from_, []).append((sp, p["rate"], tag))

    root = scenario.root
    n: dict[str, np.ndarray] = {root: _stream(seed, "binomial", root).poisson(traffic)}
    extra: dict[str, np.ndarray] = {}
    seg: dict[tuple[str, str], np.ndarray] = {}  # (segment, stage) -> users of the segment there
    seg_of = {g: s.of for g, s in scenario.segments.items()}
    # Segment members are carried down only along the paths the option's gates and flows read
    # them on (each pair has its own random stream, so this changes no other draw).
    track: set[tuple[str, str]] = set()
    wanted = [(g.exempt, scenario.funnel[s].from_) for s, (g, *_) in gates.items() if g.exempt]
    wanted += [(fl.among_segment[0], src) for src, fls in flows.items() for fl, *_ in fls]
    for g, at in wanted:
        if g is None:
            continue
        for a in scenario.ancestors(at):
            track.add((g, a))
            if a == seg_of[g]:
                break

    def observe_segments(stage: str) -> None:
        for g, of in seg_of.items():
            if of == stage and (g, stage) in track:
                seg[(g, stage)] = _stream(seed, "binomial", g).binomial(n[stage], rate[g])

    def flows_from(stage: str) -> None:
        for fl, r, tag in flows.get(stage, []):
            g, negated = fl.among_segment
            if g is None:
                pool = n[stage]
            else:
                pool = n[stage] - seg[(g, stage)] if negated else seg[(g, stage)]
            extra[fl.to] = extra.get(fl.to, 0) + _stream(seed, "change", tag).binomial(pool, r)

    observe_segments(root)
    flows_from(root)
    for s in order:
        if s == root:
            continue
        parent = scenario.funnel[s].from_
        rng = _stream(seed, "binomial", s)
        if s in gates:
            gate, pass_, overlap, tag = gates[s]
            exempt = seg[(gate.exempt, parent)] if gate.exempt else np.zeros_like(n[parent])
            g_rng = _stream(seed, "change", tag)
            passers = g_rng.binomial(n[parent] - exempt, pass_)
            base = rng.binomial(exempt + passers, rate[s])
            if gate.counts_as:
                extra[gate.counts_as] = extra.get(gate.counts_as, 0) + g_rng.binomial(
                    passers, 1 - overlap
                )
        else:
            gate = None
            base = rng.binomial(n[parent], rate[s])
        n[s] = base + extra.get(s, 0)
        # Segment members carried down: the converting users are a random subset of the parent's.
        for g in seg_of:
            if (g, s) in track and (g, parent) in seg and (g, s) not in seg:
                if gate is not None and gate.exempt == g:
                    seg[(g, s)] = base  # past the gate everyone holds the exempt property
                else:
                    good = seg[(g, parent)]
                    seg[(g, s)] = _stream(seed, "segment", g, s).hypergeometric(
                        good, n[parent] - good, base
                    )
        observe_segments(s)
        flows_from(s)
    return {s: n[s] for s in scenario.funnel}
