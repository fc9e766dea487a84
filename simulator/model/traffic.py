"""The traffic's terms (the root stage): its level, the lifts of a launched option, its
extra-Poisson variation and its likelihood. Each adds its random variables to the PyMC model in
context and returns the tensors it makes; `funnel.build_model` composes them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .terms import ar1_filter, drift_mixture


def level(centre: Any, sd: float, T: int) -> Any:
    """The log mean traffic of each of ``T`` periods: one level, ``Normal(centre, sd)``."""
    import pymc as pm
    import pytensor.tensor as pt

    return pm.Normal("level", centre, sd) + pt.zeros(T)


def launched_lifts(log_mu: Any, start: int, factors: list[Any], mask: Any = None) -> Any:
    """``log_mu`` with the periods from ``start`` on (those under a launched option) times each
    of the option's traffic lift ``factors``; ``mask`` (the padded form: 1 for those periods, 0
    for the others) in place of ``start``."""
    import pytensor.tensor as pt

    if mask is not None:
        return log_mu + mask * sum(pt.log(f) for f in factors)
    for factor in factors:
        log_mu = pt.set_subtensor(log_mu[start:], log_mu[start:] + pt.log(factor))
    return log_mu


def variation(model_block: Any, T: int) -> tuple[Any, Any]:
    """The traffic's extra-Poisson variation: the negative binomial's ``alpha``, and with AR(1)
    period effects the persistent part ``u`` (periods; else None).

    With AR(1), the variation splits into a part that persists (a stationary AR(1),
    non-centred: ``traffic_z``, saved as ``traffic_e``) and the negative binomial's iid
    overdispersion, parameterised by its total (log-scale sd ``traffic_sd``) and the share that
    persists (``traffic_share``): a year of weeks pins the total but barely the split, and in
    (alpha, sigma) that is a curved ridge the sampler diverges on; in (total, share) it is one
    bounded direction. Without it, ``alpha ~ Gamma``."""
    import pymc as pm
    import pytensor.tensor as pt

    mb = model_block
    if mb.period_effects != "ar1":
        return pm.Gamma("alpha", alpha=mb.alpha_shape, beta=mb.alpha_rate), None
    total = pm.HalfNormal("traffic_sd", mb.traffic_sd_scale)
    share = pm.Beta("traffic_share", mb.traffic_share_a, mb.traffic_share_b)
    var = total**2
    alpha = pm.Deterministic("alpha", 1.0 / pt.maximum((1 - share) * var, 1e-8))
    sigma_u = pm.Deterministic("traffic_sigma", pt.sqrt(share * var))
    rho_u = pm.Beta("traffic_rho", mb.traffic_rho_a, mb.traffic_rho_b)
    z_u = pm.Normal("traffic_z", 0.0, 1.0, dims="period")
    u = pm.Deterministic("traffic_e", ar1_filter(z_u, sigma_u, rho_u, pt, T), dims="period")
    return alpha, u


def likelihood(
    y: Any,
    counts: np.ndarray,
    seen: np.ndarray,
    log_mu: Any,
    alpha: Any,
    walk: Any = None,
    drift_prob: float = 0.5,
    *,
    mask: Any = None,
) -> None:
    """``traffic_obs``: the observed periods' traffic ``y`` (``counts`` its values, ``seen`` which
    periods were observed; empty cells are missing data, with no likelihood term) given the log
    means and ``alpha``, ``NegativeBinomial(exp(log_mu), alpha)``.

    With a ``walk``, a mixture of the traffic with and without it (prior probability of the
    drift ``drift_prob``, `terms.drift_mixture`; ``drift_weight``: each draw's posterior
    probability that the walk is on, with which the forecast continues it).

    ``mask`` (the padded form: a data container, 1 for the observed periods, 0 for the others):
    every period's term, switched off where the mask is 0, as the potential ``traffic_obs``
    (with or without a walk)."""
    import pymc as pm
    import pytensor.tensor as pt

    idx = np.flatnonzero(seen)
    if walk is not None or mask is not None:
        every = seen.all() or mask is not None  # every period's term (the mask switches them)
        seen_y = y if every else counts[idx]

        def logp(lm):
            lm = lm if every else lm[idx]
            nb = pm.logp(pm.NegativeBinomial.dist(mu=pt.exp(lm), alpha=alpha), seen_y)
            return (nb if mask is None else pt.switch(mask > 0, nb, 0.0)).sum()

        if walk is None:
            pm.Potential("traffic_obs", logp(log_mu))
        else:
            drift_mixture(
                "traffic_obs", "drift_weight", drift_prob, logp(log_mu + walk), logp(log_mu)
            )
    elif seen.all():
        pm.NegativeBinomial(
            "traffic_obs", mu=pt.exp(log_mu), alpha=alpha, observed=y, dims="period"
        )
    else:
        pm.NegativeBinomial(
            "traffic_obs", mu=pt.exp(log_mu[idx]), alpha=alpha, observed=counts[idx]
        )
