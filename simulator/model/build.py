"""The Bayesian funnel model: built by a pure function from scenario and data, fitted with a cache.

Traffic (the root stage): ``n[t] ~ NegativeBinomial(exp(level [+ trend * t] [+ u[t]]), alpha)``.
Every other stage and every segment ("rate node") with parent p:
``n[t] ~ Binomial(n_p[t], invlogit(eta[t]))``, ``eta[t] = mu [+ slope * t] + e[t]`` where the
period effects ``e`` (and, with AR(1), ``u``) are iid ``Normal(0, sigma)`` or a stationary AR(1)
with marginal sd ``sigma`` and coefficient ``rho`` in (0, 1). Each node's period rates are centred
(sampled directly) when its data pin down each period's rate and non-centred otherwise
(`centred_nodes`); the posterior is the same either way, only the sampler's geometry differs.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..i18n import _, language, ngettext
from ..io import cache, season
from ..io.data import CountTable, event_rows
from ..io.scenario import Scenario, Structure
from .changes import ChangePlan
from .posterior import Fit, period_times
from .values import SAVED as VALUE_SAVED
from .values import value_stages

if TYPE_CHECKING:
    import pymc as pm

    from .experiment import ExperimentData

MODEL_VERSION = 5


@dataclass(frozen=True)
class Launched:
    """Periods observed after the history under a launched option (`krsim track`'s actuals):
    they continue the history's time line, with the option's changes acting on their rates."""

    option: str
    table: CountTable

    def __len__(self) -> int:
        return len(self.table)

    def after(self, history: CountTable) -> CountTable:
        """One table of the history's periods followed by these."""
        counts = {c: np.concatenate([v, self.table.counts[c]]) for c, v in history.counts.items()}
        L = len(self.table)
        missing = {
            c: np.concatenate(
                [
                    np.asarray(history.missing.get(c, np.zeros(len(history), dtype=bool))),
                    np.asarray(self.table.missing.get(c, np.zeros(L, dtype=bool))),
                ]
            )
            for c in set(history.missing) | set(self.table.missing)
        }
        dates = calendar_dates(history, len(history) + L)
        return CountTable(
            history.path,
            history.key,
            history.labels + self.table.labels,
            counts,
            dates=tuple(dates) if dates is not None else None,
            missing=missing,
        )


def calendar_dates(history: CountTable, T: int) -> list | None:
    """The dates of the history's periods continued to ``T`` periods at its step (None for
    ordinal labels)."""
    if history.dates is None:
        return None
    return list(history.dates) + season.future_dates(history.dates, T - len(history))


def model_data(scenario: Scenario, history: CountTable) -> dict[str, np.ndarray]:
    """The values of the model's data containers (``pm.Data``) for a history: the traffic, the
    rate nodes' counts and their parents' counts, and the centre of the traffic level's prior.
    A built model takes another history of the same length through these (``pm.set_data``, or
    nutpie's ``with_data`` on a compiled model)."""
    st = Structure.of(scenario)
    T = len(history)
    y = np.asarray(history.counts[st.root], dtype=np.int64)
    if st.nodes:
        n_node = np.stack([history.counts[n] for n in st.nodes]).astype(np.int64)
        n_par = np.stack([history.counts[p] for p in st.parents]).astype(np.int64)
    else:
        n_node = n_par = np.zeros((0, T), dtype=np.int64)
    seen = ~np.asarray(history.missing.get(st.root, np.zeros(T, dtype=bool)), dtype=bool)
    return {
        "traffic_count": y,
        "node_count": n_node,
        "parent_count": n_par,
        "level_centre": np.asarray(np.log(max(y[seen].mean(), 1.0)), dtype=np.float64),
    }


def build_model(
    scenario: Scenario,
    history: CountTable,
    experiment: ExperimentData | None = None,
    *,
    centred: np.ndarray | None = None,
    launched: Launched | None = None,
) -> pm.Model:
    """The PyMC model of the history, and of an experiment's results when given (pure: same
    inputs, same model; the experiment's likelihood lives in `experiment.py`). The history enters
    as ``pm.Data`` (`model_data`); ``centred`` fixes which rate nodes are centred (default: chosen
    from the history by `default_centred`), the one structural choice the data make.

    ``launched``: periods observed after the history under an option. They extend the time line
    (their period effects continue the history's: iid draws, the AR(1), the trends), their traffic
    enters the traffic likelihood (times a root `lift`'s factor), and their rates enter through
    the option's likelihood (`experiment.add_launched_likelihood`), which informs the option's
    change parameters."""
    import pymc as pm
    import pytensor.tensor as pt

    mb = scenario.model
    st = Structure.of(scenario)
    T0 = len(history)
    both = history if launched is None else launched.after(history)
    T = len(both)
    t = period_times(T)
    values = model_data(scenario, both)
    # the traffic level's prior is centred on the history alone
    values["level_centre"] = model_data(scenario, history)["level_centre"]
    coords = {"period": list(both.labels), "node": list(st.nodes)}
    y_seen, cell_seen = observed_cells(both, st)
    dates = calendar_dates(history, T)
    ar1 = mb.period_effects == "ar1"
    drift = mb.walks
    seasonal_on, _ = season.seasonal(mb.seasonality, history.dates)
    with pm.Model(coords=coords) as model:
        y = pm.Data("traffic_count", values["traffic_count"], dims="period")
        centre = pm.Data("level_centre", values["level_centre"])
        level = pm.Normal("level", centre, mb.level_sd)
        log_mu = level + pt.zeros(T)
        if launched is not None:
            from .experiment import launched_params

            params = launched_params(scenario, launched.option)
            for name in ChangePlan.of(scenario, launched.option).traffic_lifts:
                log_mu = pt.set_subtensor(log_mu[T0:], log_mu[T0:] + pt.log(params[name]))
        if seasonal_on:
            X = season.fourier(dates, mb.season_terms)
            kk = season.harmonics(mb.season_terms)
            s_sd = pm.HalfNormal("season_sd", mb.season_sd)
            y0 = values["traffic_count"][:T0].astype(float)
            log_y = np.where(y_seen[:T0] & (y0 > 0), np.log(np.maximum(y0, 1.0)), np.nan)
            if season.profile_is_clear(log_y, X[:T0], kk)[0]:  # centred when the data show it
                s_beta = pm.Normal("season_beta", 0.0, s_sd / kk, shape=X.shape[1])
            else:
                s_z = pm.Normal("season_z", 0.0, 1.0, shape=X.shape[1])
                s_beta = pm.Deterministic("season_beta", s_sd * s_z / kk)
            log_mu = log_mu + pt.dot(X, s_beta)
        weekly_on = mb.seasonality != "none" and season.daily(dates)
        if weekly_on:  # daily periods: a day-of-week profile, shrunk toward flat
            W = season.weekday(dates)
            w_sd = pm.HalfNormal("weekday_sd", mb.season_sd)
            w_z = pm.Normal("weekday_z", 0.0, 1.0, shape=6)
            w_beta = pm.Deterministic("weekday_beta", w_sd * w_z)
            log_mu = log_mu + pt.dot(W, w_beta)
        if mb.trend:
            trend = pm.Normal("trend", 0.0, mb.trend_sd)
            log_mu = log_mu + trend * t
        if drift:
            # The level wanders: a random walk from the level, its step sd learnt (near 0 when
            # the level is steady), written in its slowest Karhunen-Loeve terms (`walk_basis`):
            # the week-to-week wiggles it drops are the negative binomial's, and the low-rank
            # form samples cleanly where a full path diverges (non-centred) or mixes slowly
            # when the walk is small (centred); see docs/validation.md.
            # Whether it wanders at all is a second hypothesis weighed by the data (below), so a
            # steady level is forecast as steady rather than with a walk's widening band.
            d_sd = pm.HalfNormal("drift_sd", mb.drift_sd)
            B = walk_basis(T, trend=mb.trend)
            d_z = pm.Normal("drift_z", 0.0, 1.0, shape=B.shape[1])
            walk = d_sd * pt.dot(B, d_z)
            # only where it ended is kept: the forecast continues from it (the whole path would
            # be computed and stored for every draw)
            pm.Deterministic("traffic_walk_last", walk[-1])
        if ar1:
            # The traffic's extra-Poisson variation split into a part that persists (a stationary
            # AR(1), non-centred) and the negative binomial's iid overdispersion. Parameterised by
            # its total (log-scale variance) and the share that persists: a year of weeks pins the
            # total but barely the split, and in (alpha, sigma) that is a curved ridge the sampler
            # diverges on; in (total, share) it is one bounded direction.
            total = pm.HalfNormal("traffic_sd", mb.traffic_sd_scale)
            share = pm.Beta("traffic_share", mb.traffic_share_a, mb.traffic_share_b)
            var = total**2
            alpha = pm.Deterministic("alpha", 1.0 / pt.maximum((1 - share) * var, 1e-8))
            sigma_u = pm.Deterministic("traffic_sigma", pt.sqrt(share * var))
            rho_u = pm.Beta("traffic_rho", mb.traffic_rho_a, mb.traffic_rho_b)
            z_u = pm.Normal("traffic_z", 0.0, 1.0, dims="period")
            u = pm.Deterministic("traffic_e", ar1_filter(z_u, sigma_u, rho_u, pt, T), dims="period")
            log_mu = log_mu + u
        else:
            alpha = pm.Gamma("alpha", alpha=mb.alpha_shape, beta=mb.alpha_rate)
        # the events' periods, on the whole time line (they lie in the history)
        ev_rows = [np.pad(r, (0, T - T0)) for r in event_rows(scenario, history)]
        ev_root = [
            i for i, ev in enumerate(scenario.events) if ev.stages is None or st.root in ev.stages
        ]
        if ev_root:
            # one-off shocks: each of their periods gets its own effect (log scale), so a
            # campaign or an outage, however it ramps up and fades, neither inflates the regular
            # variation nor bends the level
            hit = np.flatnonzero(np.any([ev_rows[i] for i in ev_root], axis=0))
            E = np.zeros((T, len(hit)))
            E[hit, np.arange(len(hit))] = 1.0
            ev_t = pm.Normal("event_traffic", 0.0, 1.0, shape=len(hit))
            log_mu = log_mu + pt.dot(E, ev_t)
        if drift:
            # Model averaging over "the level drifts" (prior probability `drift_prob`) and "the
            # level is steady", the indicator summed out of the likelihood: one fit weighs both,
            # and `drift_weight` is each draw's posterior probability that the walk is on, with
            # which the forecast continues it (docs/forecast_study.md).
            idx = np.flatnonzero(y_seen)
            seen_y = y if y_seen.all() else values["traffic_count"][idx]

            def traffic_logp(lm):
                lm = lm if y_seen.all() else lm[idx]
                nb = pm.NegativeBinomial.dist(mu=pt.exp(lm), alpha=alpha)
                return pm.logp(nb, seen_y).sum()

            on = np.log(mb.drift_prob) + traffic_logp(log_mu + walk)
            off = np.log1p(-mb.drift_prob) + traffic_logp(log_mu)
            pm.Potential("traffic_obs", pt.logaddexp(on, off))
            pm.Deterministic("drift_weight", pt.sigmoid(on - off))
        elif y_seen.all():
            pm.NegativeBinomial(
                "traffic_obs", mu=pt.exp(log_mu), alpha=alpha, observed=y, dims="period"
            )
        else:  # empty cells are missing data: no likelihood term
            idx = np.flatnonzero(y_seen)
            pm.NegativeBinomial(
                "traffic_obs",
                mu=pt.exp(log_mu[idx]),
                alpha=alpha,
                observed=values["traffic_count"][idx],
            )
        if st.nodes:
            n_node = pm.Data("node_count", values["node_count"], dims=("node", "period"))
            n_par = pm.Data("parent_count", values["parent_count"], dims=("node", "period"))
            mu = pm.Normal("rate_mu", 0.0, mb.rate_mu_sd, dims="node")
            sigma = pm.HalfNormal("rate_sigma", mb.rate_sigma_scale, dims="node")
            base = mu[:, None] + pt.zeros((len(st.nodes), T))
            if seasonal_on:
                r_sd = pm.HalfNormal("rate_season_sd", mb.season_sd, dims="node")
                _, logit_emp = empirical_rates(
                    values["node_count"][:, :T0], values["parent_count"][:, :T0]
                )
                logit_emp = np.where(cell_seen[:, :T0], logit_emp, np.nan)
                clear = season.profile_is_clear(logit_emp, X[:T0], kk)  # per node, as above
                c, nc = np.flatnonzero(clear), np.flatnonzero(~clear)
                r_beta = pt.zeros((len(st.nodes), X.shape[1]))
                if len(c):
                    bc = pm.Normal(
                        "rate_season_bc", 0.0, r_sd[c, None] / kk, shape=(len(c), X.shape[1])
                    )
                    r_beta = pt.set_subtensor(r_beta[c], bc)
                if len(nc):
                    r_z = pm.Normal("rate_season_z", 0.0, 1.0, shape=(len(nc), X.shape[1]))
                    r_beta = pt.set_subtensor(r_beta[nc], r_sd[nc, None] * r_z / kk)
                r_beta = pm.Deterministic("rate_season_beta", r_beta)
                base = base + pt.dot(r_beta, X.T)
            if weekly_on:
                rw_sd = pm.HalfNormal("rate_weekday_sd", mb.season_sd, dims="node")
                rw_z = pm.Normal("rate_weekday_z", 0.0, 1.0, shape=(len(st.nodes), 6))
                rw_beta = pm.Deterministic("rate_weekday_beta", rw_sd[:, None] * rw_z)
                base = base + pt.dot(rw_beta, W.T)
            if mb.rate_trend:
                slope = pm.Normal("rate_trend", 0.0, mb.rate_trend_sd, dims="node")
                base = base + slope[:, None] * t
            rho = pm.Beta("rate_rho", mb.rho_a, mb.rho_b, dims="node") if ar1 else None
            rate_walk = None
            if drift:  # each rate's level may wander too: the traffic's walk, on the logit scale
                r_dsd = pm.HalfNormal("rate_drift_sd", mb.drift_sd, dims="node")
                Br = walk_basis(T, trend=mb.rate_trend)
                r_dz = pm.Normal("rate_drift_z", 0.0, 1.0, shape=(len(st.nodes), Br.shape[1]))
                rate_walk = r_dsd[:, None] * pt.dot(r_dz, Br.T)
                pm.Deterministic("rate_walk_last", rate_walk[:, -1], dims="node")
            hit = np.zeros((len(st.nodes), T), dtype=bool)
            for i, ev in enumerate(scenario.events):
                for k, node in enumerate(st.nodes):
                    if ev.stages is None or node in ev.stages:
                        hit[k] |= ev_rows[i].astype(bool)
            pairs = np.argwhere(hit)
            if len(pairs):  # each event period's own effect on each named rate (logit scale)
                ev_r = pm.Normal("event_rate", 0.0, 1.0, shape=len(pairs))
                M = np.zeros((len(st.nodes), T, len(pairs)))
                M[pairs[:, 0], pairs[:, 1], np.arange(len(pairs))] = 1.0
                base = base + pt.tensordot(M, ev_r, axes=[[2], [0]])
            if centred is None:
                centred = default_centred(scenario, history)
            eta = _rate_effects(base, sigma, rho, np.asarray(centred, dtype=bool), T)
            if launched is None and cell_seen.all():
                pm.Binomial(
                    "rate_obs", n=n_par, logit_p=eta, observed=n_node, dims=("node", "period")
                )
            else:  # the history's cells where the stage and its parent were both observed
                i, j = np.nonzero(cell_seen[:, :T0])
                pm.Binomial(
                    "rate_obs",
                    n=values["parent_count"][i, j],
                    logit_p=eta[i, j],
                    observed=values["node_count"][i, j],
                )
            if launched is not None:
                from .experiment import add_launched_likelihood

                add_launched_likelihood(
                    scenario, launched, st.nodes, eta[:, T0:], base[:, T0:], params
                )
            if rate_walk is not None:
                nc = ~np.asarray(centred, dtype=bool)
                i, j = np.nonzero(cell_seen[:, :T0] & nc[:, None])
                eta_w = eta + rate_walk * nc[:, None].astype(float)
                # what the walk changes: the binomials of the non-centred rates ...
                lp_hist = lambda e: pm.logp(  # noqa: E731
                    pm.Binomial.dist(n=n_par[i, j], logit_p=e[i, j]), n_node[i, j]
                ).sum()
                rate_delta = lp_hist(eta_w) - lp_hist(eta) if len(i) else 0.0
                # ... the centred rates' prior (their period rates scatter around the walk) ...
                c = np.flatnonzero(~nc)
                if len(c):
                    rate_delta = rate_delta + _shifted_normal_logp(
                        eta[c] - base[c], rate_walk[c], sigma[c, None]
                    )
                # ... and the periods under a launched option
                if launched is not None:
                    from .experiment import launched_logp

                    rate_delta = (
                        rate_delta
                        + launched_logp(
                            scenario,
                            launched,
                            st.nodes,
                            eta_w[:, T0:],
                            base[:, T0:] + rate_walk[:, T0:],
                            params,
                        )
                        - launched_logp(
                            scenario, launched, st.nodes, eta[:, T0:], base[:, T0:], params
                        )
                    )
        vstages = value_stages(scenario)
        if vstages:  # the history's periods (values of launched periods are not read)
            vn, vv = history.value_matrix(vstages)
            model.add_coord("value", list(vstages))
            model.add_coord("value_period", list(history.labels))
            add_value_likelihood(
                vn,
                vv,
                mb,
                t[:T0],
                season=(X[:T0], kk) if seasonal_on else None,
                weekday=W[:T0] if weekly_on else None,
            )
        if experiment is not None:
            from .experiment import add_likelihood

            # the experiment runs after the history: with rate trends, at the next period's mean
            mean = mu + slope * period_times(T, T, 1)[0] if mb.rate_trend else mu
            add_likelihood(scenario, experiment, st.nodes, mean)
            if st.nodes and rate_walk is not None:  # with a drifting level: where it ended
                rate_delta = rate_delta + _shifted_normal_logp(
                    model["exp_rate_eta"] - mean[:, None], rate_walk[:, -1:], sigma[:, None]
                )
        if st.nodes and rate_walk is not None:
            # Model averaging, as for the traffic: "the rates' levels drift" against "they are
            # steady". The model above is the steady one; `rate_delta` is how much the walk
            # changes its log density, and the indicator is summed out.
            on = np.log(mb.drift_prob) + rate_delta
            off = np.log1p(-mb.drift_prob)
            pm.Potential("rate_drift", pt.logaddexp(on, off))
            pm.Deterministic("rate_drift_weight", pt.sigmoid(on - off))
    return model


def _shifted_normal_logp(dev, w, sd):
    """log N(x; m + w, sd) - log N(x; m, sd), summed, from ``dev = x - m``: what shifting the
    mean of normal latent values by a walk ``w`` changes in their log density."""
    return (w * (2 * dev - w) / (2 * sd**2)).sum()


WALK_TERMS = 32


def walk_terms(T: int) -> int:
    """How many Karhunen-Loeve terms a walk over ``T`` periods keeps: one per 5 periods (its
    shortest wave about 10 periods), at least 4, at most ``WALK_TERMS``. Faster wiggles are the
    period effects' (the negative binomial's, the rates' iid effects); a walk with nearly as many
    terms as periods competes with them for the same variation, which the sampler pays for."""
    return int(min(WALK_TERMS, max(4, -(-T // 5))))


def walk_basis(T: int, M: int | None = None, *, trend: bool = False) -> np.ndarray:
    """(T, M): a random walk of unit step sd over periods 1..T (Brownian motion on [0, T]
    at the period ends) is ``basis @ z`` with ``z`` standard normal, truncated to its slowest
    Karhunen-Loeve terms (``M``, by default `walk_terms`). The truncation keeps the walk's slow
    part (with 32 terms over 156 periods, over 99% of its variance at the end of the history);
    the rest is period-to-period noise.

    The columns' mean over the history (and with ``trend``, their linear part in
    `period_times`) is removed: the level (and the trend) carry those directions, so the walk does
    not compete with them for the same paths, which the sampler pays for in effective draws."""
    M = walk_terms(T) if M is None else M
    s = np.arange(1, T + 1, dtype=float)
    w = (np.arange(1, M + 1) - 0.5) * np.pi
    B = np.sqrt(2 * T) * np.sin(w[None, :] * s[:, None] / T) / w[None, :]
    Z = np.ones((T, 1)) if not trend else np.stack([np.ones(T), period_times(T)], axis=1)
    return B - Z @ np.linalg.lstsq(Z, B, rcond=None)[0]


def observed_cells(history: CountTable, st: Structure) -> tuple[np.ndarray, np.ndarray]:
    """Which traffic periods were observed, and which (node, period) rate cells: a rate cell needs
    its stage and its parent both observed (empty cells are missing data, not zeros)."""
    T = len(history)

    def seen(col: str) -> np.ndarray:
        m = history.missing.get(col)
        return np.ones(T, dtype=bool) if m is None else ~np.asarray(m, dtype=bool)

    cells = [seen(n) & seen(p) for n, p in zip(st.nodes, st.parents, strict=True)]
    return seen(st.root), np.stack(cells) if cells else np.ones((0, T), dtype=bool)


def empirical_rates(n_node: np.ndarray, n_par: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's observed rate, with half a count added so that 0 and 1 stay finite, and its
    logit."""
    p = (n_node + 0.5) / (n_par + 1.0)
    return p, np.log(p) - np.log1p(-p)


def default_centred(scenario: Scenario, history: CountTable) -> np.ndarray:
    """Which rate nodes `build_model` centres for ``history`` (`centred_nodes` on its observed
    cells, with the drifting levels in mind when the model has them)."""
    v = model_data(scenario, history)
    _, seen = observed_cells(history, Structure.of(scenario))
    return centred_nodes(v["node_count"], v["parent_count"], seen, drift=scenario.model.walks)


def centred_nodes(
    n_node: np.ndarray,
    n_par: np.ndarray,
    seen: np.ndarray | None = None,
    *,
    drift: bool = False,
) -> np.ndarray:
    """Per rate node: True when the data pin down each period's rate, so the centred form samples
    best; False when binomial noise dominates the week-to-week variation, where the centred form
    has a funnel between ``sigma`` and the period rates and the non-centred form is the right one.

    Compares the binomial sampling variance of a period's empirical logit rate with the
    between-period variance left after removing it (measured in `make bench`: on a 12-stage,
    104-period funnel the mixed form gives 35x the effective draws per second of the all-centred
    one, and 2x on the seed scenario, with no divergences).
    """
    p, logit = empirical_rates(n_node, n_par)
    noise = 1.0 / (n_par * p * (1 - p) + 1e-9)
    if seen is not None and not seen.all():
        logit = np.ma.masked_array(logit, ~seen)
        noise = np.ma.masked_array(noise, ~seen)
    if drift and logit.shape[1] > 2:
        # with a drifting level the period effects are what the walk leaves: the period-to-period
        # variation, from half the variance of first differences (a slow walk barely moves
        # them), so a rate whose variation is all drift is non-centred (centred, its period
        # effects' sd shrinks toward 0 under the walk: a funnel the sampler diverges in)
        between = 0.5 * np.ma.diff(logit, axis=1).var(axis=1) - noise.mean(axis=1)
    else:
        between = logit.var(axis=1) - noise.mean(axis=1)
    return np.asarray(between > noise.mean(axis=1))


def ar1_filter(z, sigma, rho, xp, T: int | None = None):
    """A stationary AR(1) with marginal sd ``sigma`` and coefficient ``rho`` from standard normal
    innovations ``z`` (last axis: ``T`` periods), written with ``xp`` (numpy or pytensor.tensor).

    ``e[0] = sigma z[0]``, ``e[t] = rho e[t-1] + sigma sqrt(1 - rho^2) z[t]``, computed as a
    log2(T)-step doubling scan (``e[t] += rho^k e[t-k]`` for k = 1, 2, 4, ...) so that the
    non-centred form costs O(T log T) plain tensor operations and no loop in the graph."""
    sig = sigma[..., None] if getattr(sigma, "ndim", 0) else sigma
    r = rho[..., None] if getattr(rho, "ndim", 0) else rho
    T = z.shape[-1] if T is None else T
    scale = xp.concatenate(
        [xp.ones_like(z[..., :1]), xp.sqrt(1 - r**2) * xp.ones_like(z[..., 1:])], axis=-1
    )
    e = sig * scale * z
    k, rk = 1, r
    while k < T:
        shifted = xp.concatenate([xp.zeros_like(e[..., :k]), e[..., :-k]], axis=-1)
        e = e + rk * shifted
        k, rk = 2 * k, rk * rk
    return e


def _rate_effects(base, sigma, rho, centred: np.ndarray, T: int):
    """Logit rates per node (rows) and period: ``base`` (the mean, with its trend) plus period
    effects, iid ``Normal(0, sigma)`` when ``rho`` is None, else a stationary
    AR(1) with marginal sd ``sigma`` and coefficient ``rho`` (saved as ``rate_e``).

    Nodes whose data pin each period down are centred: their rates are sampled directly
    (``rate_eta_c``; with AR(1), a flat variable carrying the AR(1) log density). The others
    are non-centred, from standard normals (``rate_z``). The posterior is the same either way."""
    import pymc as pm
    import pytensor.tensor as pt

    c, nc = np.flatnonzero(centred), np.flatnonzero(~centred)
    eta = pt.zeros((len(centred), T))
    if len(nc):
        z = pm.Normal("rate_z", 0.0, 1.0, shape=(len(nc), T))
        e = sigma[nc, None] * z if rho is None else ar1_filter(z, sigma[nc], rho[nc], pt, T)
        eta = pt.set_subtensor(eta[nc], base[nc] + e)
    if len(c):
        if rho is None:
            x = pm.Normal("rate_eta_c", base[c], sigma[c, None], shape=(len(c), T))
        else:
            x = pm.Flat("rate_eta_c", shape=(len(c), T))
            e = x - base[c]
            s, r = sigma[c, None], rho[c, None]
            innov = pm.logp(pm.Normal.dist(0.0, s * pt.sqrt(1 - r**2)), e[:, 1:] - r * e[:, :-1])
            first = pm.logp(pm.Normal.dist(0.0, sigma[c]), e[:, 0])
            pm.Potential("rate_ar1", innov.sum() + first.sum())
        eta = pt.set_subtensor(eta[c], x)
    if rho is not None:
        pm.Deterministic("rate_e", eta - base, dims=("node", "period"))
    return eta


# ------------------------------------------------------------------------- values on stages


def add_value_likelihood(
    counts: np.ndarray,
    values: np.ndarray,
    model_block: Any,
    times: np.ndarray,
    *,
    dims: tuple[str, str] = ("value", "value_period"),
    centred: np.ndarray | None = None,
    season: tuple[np.ndarray, np.ndarray] | None = None,
    weekday: np.ndarray | None = None,
) -> Any:
    """Add the value model to the current PyMC model: ``counts`` and ``values`` have shape
    (value stages, periods), ``values`` NaN where the cell is empty. Returns ``log m`` (stages x
    periods) as a tensor. Parameters: ``value_mu`` (log mean value per unit), ``value_total_sd``
    and ``value_share`` (see below), giving ``value_sigma`` (sd of the period effects) and
    ``value_cv`` (the per-unit coefficient of variation; ``value_k = 1 / value_cv**2``), with AR(1)
    ``value_rho``, with rate trends ``value_trend``; ``value_eta`` holds ``log m`` per stage and
    period."""
    import pymc as pm
    import pytensor.tensor as pt

    from .values import centred_stages, log_mean_per_unit, observed_cells

    mb = model_block
    V, T = counts.shape
    obs = observed_cells(counts, values)
    centre = log_mean_per_unit(counts, values)
    mu = pm.Normal("value_mu", centre, mb.value_mu_sd, dims=dims[0])
    # The period-to-period sd of the log value per unit (of a period with the typical count
    # n_bar) splits into the period effects' sd and the per-unit noise cv / sqrt(n_bar). With
    # hundreds of units a period the data pin the sum but barely the split, and in (sigma, cv)
    # that is a curved ridge the sampler mixes badly on; in (total, share) it is one bounded
    # direction (as for the traffic's AR(1) split in `model.build_model`).
    n_bar = np.array([counts[i][obs[i]].mean() if obs[i].any() else 1.0 for i in range(V)])
    total = pm.HalfNormal("value_total_sd", mb.value_sigma_scale, dims=dims[0])
    share = pm.Beta("value_share", mb.value_share_a, mb.value_share_b, dims=dims[0])
    sigma = pm.Deterministic("value_sigma", total * pt.sqrt(share), dims=dims[0])
    cv = pm.Deterministic("value_cv", total * pt.sqrt((1 - share) * n_bar), dims=dims[0])
    k = pm.Deterministic("value_k", 1.0 / cv**2, dims=dims[0])
    base = mu[:, None] + pt.zeros((V, T))
    if season is not None:  # the yearly profile, as the rates have it (``season``: X, harmonics)
        X, kk = season
        s_sd = pm.HalfNormal("value_season_sd", mb.season_sd, dims=dims[0])
        s_z = pm.Normal("value_season_z", 0.0, 1.0, shape=(V, X.shape[1]))
        s_beta = pm.Deterministic("value_season_beta", s_sd[:, None] * s_z / kk)
        base = base + pt.dot(s_beta, X.T)
    if weekday is not None:  # daily periods: a day-of-week profile
        w_sd = pm.HalfNormal("value_weekday_sd", mb.season_sd, dims=dims[0])
        w_z = pm.Normal("value_weekday_z", 0.0, 1.0, shape=(V, 6))
        w_beta = pm.Deterministic("value_weekday_beta", w_sd[:, None] * w_z)
        base = base + pt.dot(w_beta, weekday.T)
    if mb.rate_trend:
        slope = pm.Normal("value_trend", 0.0, mb.rate_trend_sd, dims=dims[0])
        base = base + slope[:, None] * times
    rho = (
        pm.Beta("value_rho", mb.rho_a, mb.rho_b, dims=dims[0])
        if mb.period_effects == "ar1"
        else None
    )
    centred = centred_stages(counts, values) if centred is None else np.asarray(centred, bool)
    log_m = _value_effects(base, sigma, rho, centred, T)
    pm.Deterministic("value_eta", log_m, dims=dims)
    vi, ti = np.nonzero(obs)
    if len(vi):
        n = counts[vi, ti].astype(float)
        pm.Gamma(
            "value_obs",
            alpha=n * k[vi],
            beta=k[vi] * pt.exp(-log_m[vi, ti]),
            observed=values[vi, ti],
        )
    return log_m


def _value_effects(base, sigma, rho, centred: np.ndarray, T: int):
    """``log m`` per value stage (rows) and period: ``base`` plus iid ``Normal(0, sigma)`` or
    stationary AR(1) period effects; centred stages sampled directly (``value_eta_c``), the others
    from standard normals (``value_z``), as the rates are (`_rate_effects`). The likelihood
    uses the standard-normal form for every stage (see `add_likelihood`)."""
    import pymc as pm
    import pytensor.tensor as pt

    c, nc = np.flatnonzero(centred), np.flatnonzero(~centred)
    eta = pt.zeros((len(centred), T))
    if len(nc):
        z = pm.Normal("value_z", 0.0, 1.0, shape=(len(nc), T))
        e = sigma[nc, None] * z if rho is None else ar1_filter(z, sigma[nc], rho[nc], pt, T)
        eta = pt.set_subtensor(eta[nc], base[nc] + e)
    if len(c):
        if rho is None:
            x = pm.Normal("value_eta_c", base[c], sigma[c, None], shape=(len(c), T))
        else:
            x = pm.Flat("value_eta_c", shape=(len(c), T))
            e = x - base[c]
            s, r = sigma[c, None], rho[c, None]
            innov = pm.logp(pm.Normal.dist(0.0, s * pt.sqrt(1 - r**2)), e[:, 1:] - r * e[:, :-1])
            first = pm.logp(pm.Normal.dist(0.0, sigma[c]), e[:, 0])
            pm.Potential("value_ar1", innov.sum() + first.sum())
        eta = pt.set_subtensor(eta[c], x)
    return eta


def fit_key(
    scenario: Scenario,
    history: CountTable,
    experiment: ExperimentData | None = None,
    launched: Launched | None = None,
) -> str:
    st = Structure.of(scenario)
    mb = scenario.model.model_dump()
    parts = {
        "model_version": MODEL_VERSION,
        "history": history.digest(),
        "structure": [st.root, st.nodes, st.parents],
        "model": mb,
        "seed": scenario.seed,
        "versions": cache.versions("pymc", "pytensor", "nutpie", "numpy"),
    }
    if scenario.events:
        parts["events"] = [ev.model_dump() for ev in scenario.events]
    if value_stages(scenario):  # without values, the key of a counts-only model is unchanged
        parts["values"] = list(value_stages(scenario))
    if experiment is not None:  # without one, the key is the history-only key
        from .experiment import key_parts

        parts["experiment"] = key_parts(scenario, experiment)
    if launched is not None:  # likewise
        from .experiment import launched_key_parts

        parts["launched"] = launched_key_parts(scenario, launched)
    return cache.key_of(parts)


_SAVED = (
    "level",
    "season_beta",
    "rate_season_beta",
    "weekday_beta",
    "rate_weekday_beta",
    "drift_sd",
    "drift_weight",
    "rate_drift_sd",
    "rate_drift_weight",
    "event_traffic",
    "event_rate",
    "trend",
    "alpha",
    "rate_trend",
    "rate_mu",
    "rate_sigma",
    "rate_rho",
    "traffic_sigma",
    "traffic_rho",
    *VALUE_SAVED,
)


def posterior_arrays(dt, ar1: bool) -> dict[str, np.ndarray]:
    """The draws a `Fit` keeps, from a sampled DataTree (with AR(1): the last period effects,
    from which the forecast continues)."""
    post = dt["posterior"]
    out = {n: np.asarray(post[n].values) for n in _SAVED if n in post}
    if ar1:
        out["rate_elast"] = np.asarray(post["rate_e"].values)[..., -1]
        out["traffic_elast"] = np.asarray(post["traffic_e"].values)[..., -1]
    for name in ("traffic_walk_last", "rate_walk_last"):  # the drifting levels' last values
        if name in post:
            out[name] = np.asarray(post[name].values)
    return out


def diagnostics(dt, var_names: list[str] | None = None) -> dict[str, Any]:
    """R-hat, ESS and divergences of a sampled DataTree, over ``var_names`` (default: every
    posterior variable except the period effects saved as ``*_e``)."""
    import arviz as az

    post = dt["posterior"]
    names = var_names or [n for n in post.data_vars if not n.endswith("_e")]
    summ = az.summary(dt, var_names=names, kind="diagnostics", round_to="none")
    rhat = float(np.nanmax(summ["r_hat"].values))
    ess_bulk = float(np.nanmin(summ["ess_bulk"].values))
    ess_tail = float(np.nanmin(summ["ess_tail"].values))
    div = 0
    if "sample_stats" in dt and "diverging" in dt["sample_stats"]:
        div = int(np.asarray(dt["sample_stats"]["diverging"].values).sum())
    worst = str(summ["r_hat"].idxmax()) if np.isfinite(rhat) else ""
    return {
        "rhat_max": rhat,
        "rhat_worst": worst,
        "ess_bulk_min": ess_bulk,
        "ess_tail_min": ess_tail,
        "divergences": div,
    }


def fit(
    scenario: Scenario,
    history: CountTable,
    *,
    log=None,
    experiment: ExperimentData | None = None,
    launched: Launched | None = None,
) -> Fit:
    """Fit the history model (with an experiment's results, or periods observed under a launched
    option, when given), or load the fit from the cache when nothing that determines it changed.
    With ``launched`` the fit's time line is the history's and those periods'."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    key = fit_key(scenario, history, experiment, launched)
    T = len(history) + (len(launched) if launched is not None else 0)
    nodes = Structure.of(scenario).nodes
    hit = cache.entry(key)
    if hit is not None:
        try:
            with np.load(hit / "posterior.npz") as z:
                arrays = {k: z[k] for k in z.files}
            diag = json.loads((hit / "diagnostics.json").read_text())
            cal = json.loads((hit / "calendar.json").read_text())
            return Fit(key, arrays, diag, T, nodes, from_cache=True, path=hit, calendar=cal)
        except (OSError, ValueError, KeyError):
            log("warning: the cached fit is unreadable; fitting again")
            cache.discard(key)

    t0 = time.perf_counter()
    log(_fitting_words(history, experiment, launched))
    dt = sample(scenario, history, experiment=experiment, launched=launched)
    arrays = posterior_arrays(dt, scenario.model.period_effects == "ar1")
    if experiment is not None:
        from .experiment import extract

        arrays.update(extract(dt, scenario, experiment))
    if launched is not None:
        from .experiment import extract_launched

        arrays.update(extract_launched(dt, scenario, launched))
    diag = diagnostics(dt)
    seconds = time.perf_counter() - t0
    cal = calendar_of(scenario, history, T)

    def write(d: Path) -> None:
        np.savez(d / "posterior.npz", **arrays)
        (d / "diagnostics.json").write_text(json.dumps(diag))
        (d / "calendar.json").write_text(json.dumps(cal))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr notes its v3 metadata format; not actionable
            dt.to_zarr(d / "trace.zarr")

    path = cache.store(key, write)
    return Fit(key, arrays, diag, T, nodes, path=path, seconds=seconds, calendar=cal, _datatree=dt)


def _fitting_words(history: CountTable, experiment, launched) -> str:
    """The progress line of a fit, in the current language."""
    n = len(history)
    if launched is not None:
        what = (
            ngettext(
                "{n} period of history and the experiment and {k} periods under {option}",
                "{n} periods of history and the experiment and {k} periods under {option}",
                n,
            )
            if experiment is not None
            else ngettext(
                "{n} period of history and {k} periods under {option}",
                "{n} periods of history and {k} periods under {option}",
                n,
            )
        ).format(n=n, k=len(launched), option=launched.option)
    elif experiment is not None:
        what = ngettext(
            "{n} period of history and the experiment",
            "{n} periods of history and the experiment",
            n,
        ).format(n=n)
    else:
        what = ngettext("{n} period of history", "{n} periods of history", n).format(n=n)
    return _("Fitting the funnel model to {what} (later runs reuse this fit)...").format(what=what)


def calendar_of(scenario: Scenario, history: CountTable, T: int | None = None) -> dict[str, Any]:
    """What the model takes from the history's calendar (see `Fit.calendar`); ``T``: the fit's
    periods when they run past the history (launched periods)."""
    with language("en"):  # kept with the fit in the cache: English, as the JSON
        on, note = season.seasonal(scenario.model.seasonality, history.dates)
    cd = calendar_dates(history, len(history) if T is None else T)
    dates = [d.isoformat() for d in cd] if cd is not None else None
    weekly = scenario.model.seasonality != "none" and season.daily(history.dates)
    if weekly:
        note += "; a day-of-week profile (daily periods)"
    return {
        "dates": dates,
        "seasonal": on,
        "weekly": weekly,
        "terms": scenario.model.season_terms,
        "note": note,
    }


def sample(
    scenario: Scenario,
    history: CountTable,
    model=None,
    experiment: ExperimentData | None = None,
    launched: Launched | None = None,
):
    """Run NUTS on the model; returns the DataTree."""
    import warnings

    import pymc as pm

    mb = scenario.model
    if model is None:
        model = build_model(scenario, history, experiment, launched=launched)
    sampler = mb.sampler
    if sampler == "auto":
        sampler = "nutpie" if cache.versions("nutpie")["nutpie"] != "none" else "pymc"
    kwargs: dict[str, Any] = {}
    if sampler == "pymc":
        kwargs["cores"] = min(mb.chains, 2)
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pm.sample(
            draws=mb.draws,
            tune=mb.tune,
            chains=mb.chains,
            random_seed=scenario.seed,
            target_accept=mb.accept,
            nuts_sampler=sampler,
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
            **kwargs,
        )
