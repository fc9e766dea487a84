"""The PyMC model of the funnel and its fit; priors, values and change semantics; the archive's
model. Other layers use the names exported here (``from simulator import model``: `fit`,
`build_model`, `Launched` ...).

The funnel model (`build_model`, composed in `funnel.py`). Periods ``t`` run over the history and
then any launched periods; ``s[t]`` is the trend covariate (periods from the middle of the
history, `period_times`); a term in brackets is there when the model block turns it on.

Traffic (the root stage)::

    n[t] ~ NegativeBinomial(exp(log_mu[t]), alpha)                           traffic_obs
    log_mu[t] = level [+ season[t] + weekday[t]] [+ trend s[t]] [+ u[t]] [+ event_traffic]
    level ~ Normal(log mean traffic of the history, level_sd)

Rates (every other stage and every segment: rate node ``i`` with parent ``p``)::

    n_i[t] ~ Binomial(n_p[t], invlogit(eta_i[t]))                            rate_obs
    eta_i[t] = rate_mu_i [+ rate_season_i[t] + rate_weekday_i[t]] [+ rate_trend_i s[t]]
               [+ event_rate] + e_i[t]

Period effects: ``e_i`` iid ``Normal(0, rate_sigma_i)``, or with ``period_effects: ar1`` a
stationary AR(1) of marginal sd ``rate_sigma_i`` and coefficient ``rate_rho_i`` (saved as
``rate_e``); each node's period rates are centred (``rate_eta_c``) when its data pin each period
down, else non-centred (``rate_z``; `centred_nodes`), the posterior being the same. Without
AR(1), ``alpha ~ Gamma``; with it the traffic's extra-Poisson variation splits into a persistent
AR(1) ``u`` (``traffic_e``, coefficient ``traffic_rho``) and the negative binomial's, by its total
sd ``traffic_sd`` and the persistent share ``traffic_share`` (giving ``alpha`` and
``traffic_sigma``). Empty cells are missing data: no likelihood term.

Drift (``drift: random_walk``, without AR(1)): the traffic's level and each rate's may wander as a
random walk in its slowest Karhunen-Loeve terms (`walk_basis`; step sds ``drift_sd`` and
``rate_drift_sd``; ends ``traffic_walk_last`` and ``rate_walk_last``). Whether they wander is
weighed by the data: prior probability ``drift_prob``, the indicator summed out (the potentials
``traffic_obs`` and ``rate_drift``), ``drift_weight`` and ``rate_drift_weight`` each draw's
posterior probability of the drift.

Calendar: a yearly profile (``seasonality``) is Fourier terms of the dates times ``season_beta``,
``rate_season_beta`` (per node) and ``value_season_beta`` (per value stage), their scales
``*_season_sd ~ HalfNormal(season_sd)``, faster waves shrunk more; daily periods add a
day-of-week profile (``weekday_beta``, ``rate_weekday_beta``, ``value_weekday_beta``). Events:
every period an event covers gets its own effect, ``event_traffic`` (log scale) and
``event_rate`` (logit, per node it names), ``Normal(0, 1)``.

Values (stages with ``value:``; `values.py`)::

    V[t] ~ Gamma(n[t] value_k, value_k / m[t])                               value_obs
    log m[t] = value_mu [+ profiles] [+ value_trend s[t]] + period effects   value_eta

with the period effects' sd ``value_sigma`` and the per-unit ``value_cv`` (``value_k = 1 /
value_cv**2``) from ``value_total_sd`` and ``value_share``, and ``value_rho`` with AR(1).

Experiment (`experiment.py`): each experiment period gets a logit rate per node, ``exp_rate_eta ~
Normal(rate_mu [+ rate_trend at the period after the history], rate_sigma)``, shared by the arms;
each arm's changes act on it through their parameters (random variables named as docs/design.md
§4 names them): ``exp_obs`` for counts that are one binomial draw, the Gaussian potentials
``exp_<arm>_mixed`` where unobserved passers mix in, ``exp_value_obs_<arm>_<stage>`` for value
columns (experiment-period value effects ``exp_value_z``). With drift, the experiment's rates
scatter around where the walks ended.

Launched periods (`Launched`, `krsim track`): the time line continues after the history; their
traffic enters ``traffic_obs`` (times a root lift's factor) and their rates the potential
``launched_obs`` under the option's changes, whose parameters are random variables.

Padding (`Padding`: `paddings` for `krsim backtest`'s windows, `launched_padding` for `krsim
track`'s weeks): the time line padded at the front, with no data there and every per-period input
a data container, so that histories of different lengths give one graph (one compiled model).
The padded periods' parameters are standard normals nothing else depends on, and the walks'
bases are zero there, so the posterior of the others is the unpadded model's.
"""

from ..io.scenario import Structure
from .design import (
    WALK_TERMS,
    Launched,
    Padding,
    calendar_dates,
    centred_nodes,
    default_centred,
    empirical_rates,
    launched_padding,
    model_data,
    observed_cells,
    paddings,
    walk_basis,
    walk_terms,
)
from .fitting import (
    MODEL_VERSION,
    calendar_of,
    diagnostics,
    fit,
    fit_key,
    posterior_arrays,
    sample,
)
from .funnel import build_model
from .posterior import Fit, period_times
from .terms import ar1_filter
from .value_terms import add_value_likelihood

__all__ = [
    "MODEL_VERSION",
    "WALK_TERMS",
    "Fit",
    "Launched",
    "Padding",
    "Structure",
    "add_value_likelihood",
    "ar1_filter",
    "build_model",
    "calendar_dates",
    "calendar_of",
    "centred_nodes",
    "default_centred",
    "diagnostics",
    "empirical_rates",
    "fit",
    "fit_key",
    "launched_padding",
    "model_data",
    "observed_cells",
    "paddings",
    "period_times",
    "posterior_arrays",
    "sample",
    "walk_basis",
    "walk_terms",
]
