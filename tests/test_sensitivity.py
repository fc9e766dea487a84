"""Sensitivity and break-even values against answers computed by hand, on a fit with known
parameters (no PyMC): fixed traffic mean and rates, so a quarter's total is Poisson."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from known_fits import known_fit as _known_fit
from scipy import stats

from simulator.engine import decision, forecast
from simulator.engine.sensitivity import sensitivity
from simulator.io.data import CountTable
from simulator.io.scenario import parse_scenario

CHAINS, PER_CHAIN = 4, 5000
known_fit = partial(_known_fit, shape=(CHAINS, PER_CHAIN))

TRAFFIC, RATE, H, TARGET, CUT = 1000.0, 0.2, 4, 800, 0.8
SCENARIO = f"""
title: t
horizon: {H}
history: unused.csv
funnel:
  visits: {{}}
  buy: {{from: visits}}
  signup: {{from: visits}}
options:
  keep: {{}}
  change:
    changes:
      - lift: {{stage: visits, factor: {{uniform: [1.2, 1.3]}}}}
      - lift: {{stage: buy, factor: {CUT}}}
      - lift: {{stage: signup, factor: {{uniform: [0.5, 1.5]}}}}
key_results:
  - {{id: sales, metric: buy, target: ">= {TARGET}"}}
"""
TRAFFIC_LIFT, BUY_CUT, SIGNUP_LIFT = (f"change.lift[{i}].factor" for i in range(3))


def history() -> CountTable:
    n = np.full(4, TRAFFIC)
    return CountTable(
        Path("x"),
        "period",
        ("a",) * 4,
        {"visits": n, "buy": RATE * n, "signup": 0.05 * n},
    )


def run(text: str):
    """The scenario's sensitivity rows on the known fit, and the forecast behind them."""
    s = parse_scenario(text.encode(), "test.yaml")
    fit = known_fit(s, {"buy": RATE, "signup": 0.05}, TRAFFIC)
    fc = forecast.simulate(s, fit)
    tg = decision.targets(s, history())
    ev = decision.evaluate(s, fc, tg)
    return {r.parameter: r for r in sensitivity(s, fit, fc, ev, tg)}, fc


def p_met(traffic_factor: float) -> float:
    """P(total purchases >= TARGET) for the changed option: Poisson(H * traffic * rate * cut)."""
    return float(stats.poisson.sf(TARGET - 1, H * TRAFFIC * traffic_factor * RATE * CUT))


def test_break_even_is_where_the_change_makes_up_for_its_cut():
    """The change cuts the purchase rate by 20% and brings a traffic factor f: its purchases are
    Poisson(H * 1000 * f * 0.2 * 0.8), those of 'keep' Poisson(H * 1000 * 0.2). The two chances
    of meeting the target are equal at f = 1 / 0.8 = 1.25: below it the pick is 'keep', above it
    'change'."""
    rows, _fc = run(SCENARIO)
    r = rows[TRAFFIC_LIFT]
    assert r.break_even is not None
    assert r.break_even.value == pytest.approx(1 / CUT, abs=0.003)
    assert (r.break_even.below, r.break_even.above) == ("keep", "change")
    assert (r.pick_low, r.pick_high) == ("keep", "change")


def test_values_at_the_belief_s_ends_are_the_closed_form():
    """The rule's value (P(met), one key result) at the factor's 10th and 90th percentile is the
    Poisson tail there, within its Monte Carlo error; the percentiles are those of the uniform."""
    rows, fc = run(SCENARIO)
    r = rows[TRAFFIC_LIFT]
    assert (r.low, r.high) == pytest.approx((1.21, 1.29), abs=0.002)
    n = fc.n_draws
    for x, value in ((r.low, r.value_low), (r.high, r.value_high)):
        exact = p_met(x)
        assert abs(value - exact) < 4 * np.sqrt(exact * (1 - exact) / n) + 1e-3, (x, value, exact)
    assert r.swing == pytest.approx(abs(r.value_high - r.value_low))


def test_a_belief_that_cannot_change_the_decision_has_no_effect():
    """The sign-up lift moves no stage the key result reads (purchases draw their own random
    numbers): the same value at both ends, no swing, no flip, ranked last. The fixed cut is not
    varied at all."""
    rows, _fc = run(SCENARIO)
    r = rows[SIGNUP_LIFT]
    assert r.value_low == r.value_high and r.swing == 0.0
    assert r.pick_low == r.pick_high and r.break_even is None
    assert BUY_CUT not in rows
    assert list(rows) == [TRAFFIC_LIFT, SIGNUP_LIFT]  # the largest swing first


def test_one_option_has_nothing_to_flip():
    one = SCENARIO.split("options:")[0] + (
        "options:\n  keep: {}\nkey_results:\n"
        f'  - {{id: sales, metric: buy, target: ">= {TARGET}"}}\n'
    )
    rows, _fc = run(one)
    assert rows == {}
