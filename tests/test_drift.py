"""The default model's drifting levels (model version 5): a random walk for the traffic and for
the rates, each weighed against a steady level with the indicator summed out of the likelihood
(docs/design.md, "Calendar, drift and events")."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from simulator import load_scenario, model
from simulator.io.data import read_history
from simulator.io.scenario import Structure


def _point(m, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {k: v + rng.normal(0.0, 0.4, np.shape(v)) for k, v in m.initial_point().items()}


@pytest.mark.parametrize("centred", [False, True])
def test_the_indicator_is_summed_out_exactly(small_funnel, centred):
    """At an arbitrary point, the traffic's and the rates' mixture terms equal
    log(p * L_drift + (1 - p) * L_steady) computed here with scipy, and each draw's weight is
    the posterior probability of the drifting branch."""
    s = load_scenario(small_funnel("model: {seasonality: none, drift_prob: 0.3}\n"))
    h = read_history(s)
    nodes = Structure.of(s).nodes
    m = model.build_model(s, h, centred=np.full(len(nodes), centred))
    pots = {p.name: p for p in m.potentials}
    names = ["level", "alpha", "drift_sd", "drift_z", "rate_mu", "rate_sigma"]
    names += ["rate_drift_sd", "rate_drift_z"]
    names += ["rate_eta_c"] if centred else ["rate_z"]
    outs = [pots["traffic_obs"], pots["rate_drift"], m["drift_weight"], m["rate_drift_weight"]]
    outs = m.replace_rvs_by_values(outs + [m[n] for n in names])
    fn = m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore", mode="FAST_COMPILE")
    got = fn(_point(m, 1))
    tr_pot, rate_pot, w_tr, w_rate = (float(x) for x in got[:4])
    v = dict(zip(names, got[4:], strict=True))
    p = 0.3
    B = model.walk_basis(len(h))  # the walks' paths, from their terms
    v["traffic_walk"] = v["drift_sd"] * B @ v["drift_z"]
    v["rate_walk"] = v["rate_drift_sd"][:, None] * v["rate_drift_z"] @ B.T

    y = h.counts[Structure.of(s).root].astype(float)
    a = float(v["alpha"])

    def nb(log_mu):
        mu = np.exp(log_mu)
        return stats.nbinom.logpmf(y, a, a / (a + mu)).sum()

    on = np.log(p) + nb(v["level"] + v["traffic_walk"])
    off = np.log(1 - p) + nb(v["level"] + 0 * y)
    assert tr_pot == pytest.approx(np.logaddexp(on, off), rel=1e-9)
    assert w_tr == pytest.approx(special.expit(on - off), rel=1e-9)

    data = model.model_data(s, h)
    n, x = data["parent_count"], data["node_count"]
    walk, mu, sd = v["rate_walk"], v["rate_mu"][:, None], v["rate_sigma"][:, None]
    if centred:  # the walk moves the mean the period rates scatter around
        eta = v["rate_eta_c"]
        delta = (stats.norm.logpdf(eta, mu + walk, sd) - stats.norm.logpdf(eta, mu, sd)).sum()
    else:  # the walk moves the rates in the binomials
        eta = mu + sd * v["rate_z"]

        def binom(e):
            return stats.binom.logpmf(x, n, special.expit(e)).sum()

        delta = binom(eta + walk) - binom(eta)
    want = np.logaddexp(np.log(p) + delta, np.log(1 - p))
    assert rate_pot == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert w_rate == pytest.approx(special.expit(np.log(p) + delta - np.log(1 - p)), abs=1e-9)


def test_drift_none_has_no_walk(small_funnel):
    s = load_scenario(small_funnel("model: {drift: none}\n"))
    m = model.build_model(s, read_history(s))
    names = {v.name for v in m.free_RVs} | {p.name for p in m.potentials}
    assert not names & {"drift_sd", "rate_drift_sd", "rate_drift", "drift_z"}


def test_walk_terms_follow_the_history_length():
    assert [model.walk_terms(T) for T in (8, 26, 52, 156, 520)] == [4, 6, 11, 32, 32]
    assert model.walk_basis(52).shape == (52, 11)
