"""The optional model settings on a small funnel (the model's variables and their shapes), and
the decision rules end to end."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from simulator import load_scenario, model, simulate
from simulator.io.data import read_history
from simulator.io.scenario import Structure

# constant levels: what is tested here does not depend on the drift, and the small funnel's
# structure is then the one test_compiled.py and test_portfolio.py compile (once for all three)
SMALL = "model: {chains: 2, draws: 200, tune: 300, until_sound: false, drift: none%s}\n"


def test_ar1_period_effects_and_rate_trends(small_funnel):
    """AR(1) period effects and trends: a persistence per rate node and for the traffic, a trend
    per node, and the period effects (saved whole, nodes x periods and periods) from which the
    forecast continues; the walks are off."""
    extra = "period_effects: ar1, trend: true, rate_trend: true"
    s = load_scenario(small_funnel(f"model: {{{extra}}}\n"))  # the default drift: AR(1) ends it
    h = read_history(s)
    N, T = len(Structure.of(s).nodes), len(h)
    m = model.build_model(s, h, centred=np.zeros(N, dtype=bool))
    shapes = {k: np.shape(v) for k, v in m.initial_point().items()}
    assert shapes["rate_rho_logodds__"] == shapes["rate_trend"] == shapes["rate_mu"] == (N,)
    assert shapes["traffic_rho_logodds__"] == shapes["trend"] == shapes["level"] == ()
    assert shapes["rate_z"] == (N, T) and shapes["traffic_z"] == (T,)
    assert not {"drift_sd", "rate_drift_sd"} & set(m.named_vars)
    rate_e, traffic_e, alpha = pm.draw(
        [m["rate_e"], m["traffic_e"], m["alpha"]], random_seed=1, mode="FAST_COMPILE"
    )
    assert rate_e.shape == (N, T) and traffic_e.shape == (T,) and alpha > 0


@pytest.mark.parametrize(
    ("decision", "rule"),
    [
        ("decision: {rule: expected_grade, grading: aspirational}\n", "expected_grade"),
        ("decision: {rule: weighted, weights: {signups: 2, bookings: 1, conv: 1}}\n", "weighted"),
    ],
)
def test_rules(small_funnel, decision, rule):
    """Each rule's per-draw value, written out from the key results' grades and met indicators;
    the recommendation is the option of the highest mean value."""
    r = simulate(load_scenario(small_funnel(SMALL % "" + decision)))
    rec = r.summary["recommendation"]
    for o, oe in r.evaluation.options.items():
        if rule == "weighted":
            # weighted value = 0.5*met(signups) + 0.25*met(bookings) + 0.25*met(conv)
            want = 0.5 * oe.met["signups"] + 0.25 * oe.met["bookings"] + 0.25 * oe.met["conv"]
        else:  # the key results weigh equally
            want = np.mean([oe.grades[k] for k in ("signups", "bookings", "conv")], axis=0)
        assert np.allclose(oe.value, want), o
    means = {o: oe.value.mean() for o, oe in r.evaluation.options.items()}
    assert means[rec["option"]] == pytest.approx(max(means.values()))


def test_explicit_baseline(small_funnel):
    r = simulate(load_scenario(small_funnel(SMALL % "" + "baseline: {signups: 100}\n")))
    kr = r.summary["options"]["status_quo"]["key_results"]["signups"]
    assert kr["baseline"] == 100 and kr["target"] == pytest.approx(110)
