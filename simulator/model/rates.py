"""The rate nodes' terms (every stage but the root, and every segment): their mean logit rates,
the history's binomial likelihood, and what a drifting level changes in the log density. Each
adds its random variables to the PyMC model in context and returns the tensors it makes;
`funnel.build_model` composes them with the shared terms of `terms.py`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .terms import shifted_normal_logp


def level(mu_sd: float, sigma_scale: float, rows: int, T: int) -> tuple[Any, Any, Any]:
    """Each node's mean logit rate ``rate_mu ~ Normal(0, mu_sd)`` and the sd of its period
    effects ``rate_sigma ~ HalfNormal(sigma_scale)``, and the mean over the ``T`` periods
    (nodes x periods), to which the trend, the profiles and the events add."""
    import pymc as pm
    import pytensor.tensor as pt

    mu = pm.Normal("rate_mu", 0.0, mu_sd, dims="node")
    sigma = pm.HalfNormal("rate_sigma", sigma_scale, dims="node")
    return mu, sigma, mu[:, None] + pt.zeros((rows, T))


def likelihood(
    eta: Any,
    n_par: Any,
    n_node: Any,
    data: dict[str, np.ndarray],
    seen: np.ndarray,
    *,
    whole: bool,
) -> None:
    """``rate_obs``: ``Binomial(parent count, invlogit(eta))`` of the history's cells where the
    stage and its parent were both observed (``seen``, nodes x history periods; ``data``: the
    counts' values). ``whole``: the time line is the history and every cell was observed, so
    the likelihood takes the data containers ``n_par`` and ``n_node`` whole."""
    import pymc as pm

    if whole and seen.all():
        pm.Binomial("rate_obs", n=n_par, logit_p=eta, observed=n_node, dims=("node", "period"))
        return
    i, j = np.nonzero(seen)
    pm.Binomial(
        "rate_obs",
        n=data["parent_count"][i, j],
        logit_p=eta[i, j],
        observed=data["node_count"][i, j],
    )


def walk_delta(
    eta: Any,
    base: Any,
    walk: Any,
    sigma: Any,
    centred: np.ndarray,
    counts: tuple[Any, Any],
    seen: np.ndarray,
) -> tuple[Any, Any]:
    """What adding each node's ``walk`` to its level changes in the history's log density (the
    model without it is the steady one), and the logit rates with the walk: the binomials of the
    non-centred nodes (``counts``: parent and node counts; ``seen``: the observed cells, nodes x
    history periods) and the prior of the centred ones' period rates, which scatter around the
    walk."""
    import pymc as pm

    n_par, n_node = counts
    nc = ~centred
    i, j = np.nonzero(seen & nc[:, None])
    eta_w = eta + walk * nc[:, None].astype(float)

    def binomials(e):
        return pm.logp(pm.Binomial.dist(n=n_par[i, j], logit_p=e[i, j]), n_node[i, j]).sum()

    delta = binomials(eta_w) - binomials(eta) if len(i) else 0.0
    c = np.flatnonzero(centred)
    if len(c):
        delta = delta + shifted_normal_logp(eta[c] - base[c], walk[c], sigma[c, None])
    return delta, eta_w
