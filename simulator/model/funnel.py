"""The funnel model, `build_model`: a pure function of the scenario and the data that composes the
terms of `traffic.py`, `rates.py`, `value_terms.py` and `terms.py` and the experiment's and the
launched periods' likelihoods (`experiment.py`). The model it states is in the package's
docstring (`simulator.model`); its numpy inputs are `design.Design`."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import rates, terms, traffic
from .changes import ChangePlan
from .design import Calendar, Design, Launched, Padding, design_of, padding_covers
from .experiment import (
    add_likelihood,
    launched_data,
    launched_logp,
    launched_params,
)
from .posterior import period_times
from .value_terms import ValueTerms, add_value_likelihood

if TYPE_CHECKING:
    import pymc as pm

    from ..io.data import CountTable
    from ..io.scenario import ModelBlock, Scenario
    from .experiment import ExperimentData


def build_model(
    scenario: Scenario,
    history: CountTable,
    experiment: ExperimentData | None = None,
    *,
    centred: np.ndarray | None = None,
    launched: Launched | None = None,
    pad: Padding | None = None,
) -> pm.Model:
    """The PyMC model of the history, and of an experiment's results when given (pure: same
    inputs, same model; the experiment's likelihood lives in `experiment.py`). The history enters
    as ``pm.Data`` (`design.model_data`); ``centred`` fixes which rate nodes are centred (default:
    chosen from the history by `design.default_centred`), the one structural choice the data make.

    ``launched``: periods observed after the history under an option. They extend the time line
    (their period effects continue the history's: iid draws, the AR(1), the trends), their traffic
    enters the traffic likelihood (times a root `lift`'s factor), and their rates enter through
    the option's likelihood (`experiment.launched_logp`), which informs the option's
    change parameters.

    ``pad``: the time line padded at the front (`design.Padding`; not with an experiment):
    every per-period input is then a data container, so histories (and launched periods) of
    other lengths padded alike give the same graph, and a compiled model serves them all."""
    import pymc as pm

    mb = scenario.model
    if pad is not None and (experiment is not None or not padding_covers(scenario)):
        raise ValueError("padding covers no experiment, AR(1) period effects nor values")
    d = design_of(scenario, history, launched, centred, pad)
    with pm.Model(coords=d.coords) as model:
        d = _as_data(d)
        y = pm.Data("traffic_count", d.data["traffic_count"], dims="period")
        centre = pm.Data("level_centre", d.data["level_centre"])
        log_mu = traffic.level(centre, mb.level_sd, d.T)
        params: dict[str, Any] = {}
        if launched is not None:
            params = launched_params(scenario, launched.option)
            lifts = ChangePlan.of(scenario, launched.option).traffic_lifts
            on = d.inputs["launched"] if d.inputs else None
            log_mu = traffic.launched_lifts(log_mu, d.T0, [params[n] for n in lifts], mask=on)
        _traffic(mb, d, y, log_mu)
        rate_terms = _rates(scenario, d, launched, params) if d.nodes else None
        values = _values(mb, d) if d.values is not None else None
        delta = None if rate_terms is None else rate_terms.delta
        if experiment is not None and rate_terms is not None:
            delta = _experiment(scenario, experiment, d, rate_terms, values, delta)
        if delta is not None:
            # "the rates' levels drift" against "they are steady", as for the traffic: the model
            # above is the steady one; `delta` is how much the walks change its log density
            terms.drift_mixture("rate_drift", "rate_drift_weight", mb.drift_prob, delta)
    return model


def _as_data(d: Design) -> Design:
    """In the padded form, the design's per-period arrays as data containers of fixed shape (the
    time covariate, the profiles' and the events' designs, the walks' bases, which periods are
    the data's); else ``d``."""
    if d.padded is None:
        return d
    import pymc as pm

    def data(name: str, x: np.ndarray | None) -> Any:
        if x is None:
            return None
        x = np.asarray(x, dtype=np.float64)
        return pm.Data(name, x, shape=x.shape)

    cal = d.calendar
    inputs = {"real": data("period_real", d.real), "seen": data("traffic_seen", d.traffic_seen)}
    if d.T0 < d.T:  # launched periods after the history
        inputs["launched"] = data("launched_periods", (np.arange(d.T) >= d.T0).astype(float))
    return dataclasses.replace(
        d,
        times=data("period_times", d.times),
        calendar=dataclasses.replace(
            cal,
            season=data("season_design", cal.season),
            weekday=data("weekday_design", cal.weekday),
        ),
        traffic_events=data("traffic_event_design", d.traffic_events),
        rate_events=data("rate_event_design", d.rate_events),
        traffic_walk=data("traffic_walk_basis", d.traffic_walk),
        rate_walk=data("rate_walk_basis", d.rate_walk),
        inputs=inputs,
    )


def _calendar(
    x: Any,
    prefix: str,
    cal: Calendar,
    scale: float,
    *,
    rows: int | None = None,
    dims: str | None = None,
    clear: Any = None,
) -> Any:
    """``x`` plus the yearly profile and the day-of-week profile that the calendar has."""
    if cal.season is not None:
        season = terms.profile(
            f"{prefix}season",
            cal.season,
            scale,
            rows=rows,
            dims=dims,
            clear=clear,
            harmonics=cal.harmonics,
        )
        x = x + season
    if cal.weekday is not None:  # daily periods: a day-of-week profile, shrunk toward flat
        x = x + terms.profile(f"{prefix}weekday", cal.weekday, scale, rows=rows, dims=dims)
    return x


def _traffic(mb: ModelBlock, d: Design, y: Any, log_mu: Any) -> None:
    """The traffic's terms after its level: the calendar's profiles, the trend, the walk of a
    drifting level (weighed against a steady one in the likelihood), the extra-Poisson
    variation, the events' own effects (one per period, so that a campaign or an outage neither
    inflates the regular variation nor bends the level), and the likelihood."""
    log_mu = _calendar(log_mu, "", d.calendar, mb.season_sd, clear=d.calendar.traffic_clear)
    if mb.trend:
        log_mu = log_mu + terms.linear_trend("trend", mb.trend_sd, d.times)[1]
    walk = None
    if d.traffic_walk is not None:
        walk = terms.walk("", "traffic_walk_last", d.traffic_walk, mb.drift_sd)
    alpha, u = traffic.variation(mb, d.T)
    if u is not None:
        log_mu = log_mu + u
    if d.traffic_events is not None:
        log_mu = log_mu + terms.one_off_effects("event_traffic", d.traffic_events)
    mask = d.inputs["seen"] if d.inputs else None
    traffic.likelihood(
        y, d.data["traffic_count"], d.traffic_seen, log_mu, alpha, walk, mb.drift_prob, mask=mask
    )


class RateTerms(NamedTuple):
    """What the rate terms make that others read: the mean logit rate and the period effects'
    sd per node, the trend's slope (None without), the walk (None without), and how much the walk
    changes the log density (None without)."""

    mu: Any
    sigma: Any
    slope: Any
    walk: Any
    delta: Any


def _rates(scenario: Scenario, d: Design, launched: Launched | None, params: dict) -> RateTerms:
    """The rate nodes' terms: the mean, the calendar's profiles, the trend, the walk of a
    drifting level (each rate's, on the logit scale), the events' effects (one per node and
    period an event covers), the period effects, the history's likelihood and that of the
    launched periods (with the walk: also what it changes in them)."""
    import pymc as pm

    mb = scenario.model
    N, T0 = len(d.nodes), d.T0
    n_node = pm.Data("node_count", d.data["node_count"], dims=("node", "period"))
    n_par = pm.Data("parent_count", d.data["parent_count"], dims=("node", "period"))
    mu, sigma, base = rates.level(mb.rate_mu_sd, mb.rate_sigma_scale, N, d.T)
    base = _calendar(
        base, "rate_", d.calendar, mb.season_sd, rows=N, dims="node", clear=d.calendar.rate_clear
    )
    slope = None
    if mb.rate_trend:
        slope, effect = terms.linear_trend("rate_trend", mb.rate_trend_sd, d.times, dims="node")
        base = base + effect
    ar1 = mb.period_effects == "ar1"
    rho = pm.Beta("rate_rho", mb.rho_a, mb.rho_b, dims="node") if ar1 else None
    walk = None
    if d.rate_walk is not None:
        walk = terms.walk("rate_", "rate_walk_last", d.rate_walk, mb.drift_sd, rows=N, dims="node")
    if d.rate_events is not None:
        base = base + terms.one_off_effects("event_rate", d.rate_events)
    real = d.inputs["real"] if d.inputs else None
    eta = terms.period_effects("rate", base, sigma, rho, d.centred, d.T, real=real)
    if rho is not None:
        pm.Deterministic("rate_e", eta - base, dims=("node", "period"))
    # padded: every period, and the cells of the history's likelihood that are not its (not
    # observed, padded, launched) have zero counts: a binomial of none adds nothing; the
    # launched periods' likelihood on the last periods they may lie in (``window``), their
    # counts zero and their mixed stages switched off before them (``weights``)
    seen, tail, length, weights = d.cell_seen[:, :T0], slice(T0, None), None, None
    if d.padded is not None:
        seen = np.ones((N, d.T), dtype=bool)
        if launched is not None:
            length, tail = d.window, slice(d.T - d.window, None)
            weights = d.inputs["launched"][tail]
    whole = launched is None or d.padded is not None
    rates.likelihood(eta, n_par, n_node, d.data, seen, whole=whole)
    counts = lp = None
    if launched is not None:  # the launched periods' rates: the option's likelihood
        counts = launched_data(launched, length)
        lp = launched_logp(
            scenario, launched, d.nodes, eta[:, tail], base[:, tail], params, counts, weights
        )
        pm.Potential("launched_obs", lp)
    delta = None
    if walk is not None:
        delta, eta_w = rates.walk_delta(eta, base, walk, sigma, d.centred, (n_par, n_node), seen)
        if launched is not None:  # and what the walk changes in the launched periods
            on = (eta_w[:, tail], base[:, tail] + walk[:, tail])
            lw = launched_logp(scenario, launched, d.nodes, *on, params, counts, weights)
            delta = delta + lw - lp
    return RateTerms(mu, sigma, slope, walk, delta)


def _values(mb: ModelBlock, d: Design) -> ValueTerms:
    """The value stages' terms, on the history's periods (values of launched periods are not
    read)."""
    import pymc as pm

    v, cal, T0 = d.values, d.calendar, d.T0
    model = pm.modelcontext(None)
    model.add_coord("value", list(v.stages))
    model.add_coord("value_period", list(v.labels))
    return add_value_likelihood(
        v.counts,
        v.totals,
        mb,
        d.times[:T0],
        season=(cal.season[:T0], cal.harmonics) if cal.season is not None else None,
        weekday=cal.weekday[:T0] if cal.weekday is not None else None,
    )


def _experiment(
    scenario: Scenario,
    experiment: ExperimentData,
    d: Design,
    rate_terms: RateTerms,
    values: ValueTerms | None,
    delta: Any,
) -> Any:
    """The experiment's likelihood: its periods come after the history, so with trends the means
    are the next period's. Returns ``delta`` plus what a walk of the rates changes in the
    experiment's log density (its periods' rates scatter around where the walk ended)."""
    after = period_times(d.T, d.T, 1)[0]
    mean = rate_terms.mu
    if rate_terms.slope is not None:
        mean = mean + rate_terms.slope * after
    if values is not None and values.trend is not None:
        values = values._replace(mu=values.mu + values.trend * after)
    eta = add_likelihood(scenario, experiment, d.nodes, mean, rate_terms.sigma, values)
    if rate_terms.walk is None:
        return delta
    shift = terms.shifted_normal_logp(
        eta - mean[:, None], rate_terms.walk[:, -1:], rate_terms.sigma[:, None]
    )
    return delta + shift
