"""The optional model settings and decision rules run end to end on a small funnel."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import load_scenario, simulate

SMALL = "model: {chains: 2, draws: 200, tune: 300%s}\n"


def test_ar1_period_effects_and_rate_trends(small_funnel):
    extra = ", period_effects: ar1, trend: true, rate_trend: true"
    r = simulate(load_scenario(small_funnel(SMALL % extra)))
    f = r.fit
    assert {"rate_rho", "rate_elast", "traffic_rho", "traffic_elast", "rate_trend"} <= set(f.arrays)
    assert f.arrays["rate_elast"].shape == f.arrays["rate_mu"].shape
    assert f.arrays["traffic_elast"].shape == f.arrays["level"].shape


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
