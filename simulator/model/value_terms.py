"""The value stages' terms: the value per unit of each stage with ``value:`` and the likelihood of
its period totals (the model is stated in `values.py`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .terms import linear_trend, period_effects, profile


class ValueTerms(NamedTuple):
    """What the value terms make that others read: ``log m`` (stages x periods), the log mean
    value per unit, the period effects' sd, the per-unit shape ``k``, and the trend's slope
    (None without rate trends)."""

    log_m: Any
    mu: Any
    sigma: Any
    k: Any
    trend: Any


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
) -> ValueTerms:
    """Add the value model to the current PyMC model: ``counts`` and ``values`` have shape
    (value stages, periods), ``values`` NaN where the cell is empty. Parameters: ``value_mu`` (log
    mean value per unit), ``value_total_sd`` and ``value_share`` (see below), giving
    ``value_sigma`` (sd of the period effects) and ``value_cv`` (the per-unit coefficient of
    variation; ``value_k = 1 / value_cv**2``), with AR(1) ``value_rho``, with rate trends
    ``value_trend``, with the calendar the profiles ``value_season_beta`` (``season``: the
    Fourier terms and their harmonic numbers) and ``value_weekday_beta``; ``value_eta`` holds
    ``log m`` per stage and period, its period effects centred where the data pin them down
    (`values.centred_stages`, unless ``centred`` is given)."""
    import pymc as pm
    import pytensor.tensor as pt

    from .values import centred_stages, log_mean_per_unit, observed_cells

    mb = model_block
    V, T = counts.shape
    obs = observed_cells(counts, values)
    mu = pm.Normal("value_mu", log_mean_per_unit(counts, values), mb.value_mu_sd, dims=dims[0])
    # The period-to-period sd of the log value per unit (of a period with the typical count
    # n_bar) splits into the period effects' sd and the per-unit noise cv / sqrt(n_bar). With
    # hundreds of units a period the data pin the sum but barely the split, and in (sigma, cv)
    # that is a curved ridge the sampler mixes badly on; in (total, share) it is one bounded
    # direction (as for the traffic's AR(1) split in `traffic.variation`).
    n_bar = np.array([counts[i][obs[i]].mean() if obs[i].any() else 1.0 for i in range(V)])
    total = pm.HalfNormal("value_total_sd", mb.value_sigma_scale, dims=dims[0])
    share = pm.Beta("value_share", mb.value_share_a, mb.value_share_b, dims=dims[0])
    sigma = pm.Deterministic("value_sigma", total * pt.sqrt(share), dims=dims[0])
    cv = pm.Deterministic("value_cv", total * pt.sqrt((1 - share) * n_bar), dims=dims[0])
    k = pm.Deterministic("value_k", 1.0 / cv**2, dims=dims[0])
    base = mu[:, None] + pt.zeros((V, T))
    if season is not None:  # the yearly profile, as the rates have it
        X, kk = season
        base = base + profile("value_season", X, mb.season_sd, rows=V, dims=dims[0], harmonics=kk)
    if weekday is not None:  # daily periods: a day-of-week profile
        base = base + profile("value_weekday", weekday, mb.season_sd, rows=V, dims=dims[0])
    slope = None
    if mb.rate_trend:
        slope, effect = linear_trend("value_trend", mb.rate_trend_sd, times, dims=dims[0])
        base = base + effect
    ar1 = mb.period_effects == "ar1"
    rho = pm.Beta("value_rho", mb.rho_a, mb.rho_b, dims=dims[0]) if ar1 else None
    centred = centred_stages(counts, values) if centred is None else np.asarray(centred, bool)
    log_m = period_effects("value", base, sigma, rho, centred, T)
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
    return ValueTerms(log_m, mu, sigma, k, slope)
