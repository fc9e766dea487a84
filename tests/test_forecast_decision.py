"""Change semantics, exact P(met), and the decision rules, on fits with known parameters (no PyMC)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from known_fits import known_fit as _known_fit
from scipy import stats

from simulator.engine import decision, forecast
from simulator.io.data import CountTable
from simulator.io.scenario import Structure, parse_scenario
from simulator.model.posterior import Fit

CHAINS, PER_CHAIN = 4, 5000


known_fit = partial(_known_fit, shape=(CHAINS, PER_CHAIN))


def scenario_from(text: str):
    return parse_scenario(text.encode(), "test.yaml")


FUNNEL = """
title: t
horizon: 5
history: unused.csv
funnel:
  visits: {}
  form: {from: visits}
  booking: {from: form}
  signup: {from: visits}
segments:
  member: {of: form}
"""
RATES = {"form": 0.3, "booking": 0.6, "signup": 0.05, "member": 0.25}
TRAFFIC = 2000.0


def within(sim: np.ndarray, expected: float, z: float = 4.5) -> None:
    se = sim.std(ddof=1) / np.sqrt(sim.size)
    assert abs(sim.mean() - expected) < z * se + 1e-9, (sim.mean(), expected, se)


def test_gate_semantics_match_hand_computation():
    s = scenario_from(
        FUNNEL
        + """
options:
  keep: {}
  gate:
    changes:
      - gate: {before: booking, exempt: member, pass: 0.5, counts_as: signup, overlap: 0.2}
key_results: [{id: a, metric: signup, target: +1%}]
"""
    )
    fc = forecast.simulate(s, known_fit(s, RATES, TRAFFIC))
    H = s.horizon
    form = TRAFFIC * RATES["form"] * H
    member = form * RATES["member"]
    # keep: bookings = form * 0.6; gate: (members + others * pass) * 0.6
    within(fc.total("keep", "booking"), form * RATES["booking"])
    within(fc.total("gate", "booking"), (member + (form - member) * 0.5) * RATES["booking"])
    # sign-ups: base + non-members who passed * (1 - overlap)
    base_signup = TRAFFIC * RATES["signup"] * H
    within(fc.total("keep", "signup"), base_signup)
    within(fc.total("gate", "signup"), base_signup + (form - member) * 0.5 * 0.8)
    # common random numbers: stages upstream of the gate are identical across options
    assert np.array_equal(fc.counts["keep"]["form"], fc.counts["gate"]["form"])
    assert np.array_equal(fc.counts["keep"]["visits"], fc.counts["gate"]["visits"])


def test_flow_lift_set_semantics():
    s = scenario_from(
        FUNNEL
        + """
options:
  keep: {}
  flow:
    changes:
      - flow: {from: booking, to: signup, among: not member, rate: 0.25}
  lift:
    changes:
      - lift: {stage: form, factor: 1.5}
      - lift: {stage: visits, factor: 0.5}
  set:
    changes:
      - set: {stage: booking, rate: 0.9}
key_results: [{id: a, metric: signup, target: +1%}]
"""
    )
    fc = forecast.simulate(s, known_fit(s, RATES, TRAFFIC))
    H = s.horizon
    form = TRAFFIC * RATES["form"] * H
    booking = form * RATES["booking"]
    non_member_bookers = booking * (1 - RATES["member"])
    within(fc.total("flow", "signup"), TRAFFIC * RATES["signup"] * H + 0.25 * non_member_bookers)
    within(fc.total("lift", "visits"), TRAFFIC * 0.5 * H)
    within(fc.total("lift", "form"), TRAFFIC * 0.5 * H * RATES["form"] * 1.5)
    within(fc.total("set", "booking"), form * 0.9)
    within(fc.total("set", "form"), form)


def test_lift_is_capped_at_one():
    s = scenario_from(
        FUNNEL
        + """
options:
  keep: {}
  big:
    changes: [{lift: {stage: booking, factor: 3.0}}]
key_results: [{id: a, metric: booking / form, target: ">= 0.99"}]
"""
    )
    fc = forecast.simulate(s, known_fit(s, RATES, TRAFFIC))
    assert np.array_equal(fc.counts["big"]["booking"], fc.counts["big"]["form"])


SINGLE = """
title: t
horizon: 4
history: unused.csv
funnel:
  visits: {}
  buy: {from: visits}
options:
  keep: {}
key_results:
  - {id: sales, metric: buy, target: ">= %s"}
"""


@pytest.mark.parametrize("target", [780, 800, 830])
def test_p_met_matches_closed_form(target):
    """Fixed traffic mean (Poisson) and a fixed rate: the quarter's total is Poisson(H*lambda*r)."""
    s = scenario_from(SINGLE % target)
    lam, r, H = 1000.0, 0.2, 4
    fit = known_fit(s, {"buy": r}, lam)
    fc = forecast.simulate(s, fit)
    history = CountTable(
        Path("x"), "period", ("a",) * 4, {"visits": np.full(4, 1000), "buy": np.full(4, 200)}
    )
    tg = decision.targets(s, history)
    ev = decision.evaluate(s, fc, tg)
    summary = decision.summarize_options(s, ev, tg, fc.chains)["keep"].key_results["sales"]
    exact = stats.poisson.sf(target - 1, H * lam * r)
    assert abs(summary.p_met - exact) < 4 * summary.p_met_se, (
        summary.p_met,
        exact,
        summary.p_met_se,
    )
    assert summary.baseline == 800 and summary.target == target


def _ev(values: dict[str, list[float]], grades: dict[str, list[float]] | None = None):
    opts = {}
    for o, v in values.items():
        v = np.asarray(v, dtype=float)
        g = np.asarray(grades[o] if grades else v, dtype=float)
        opts[o] = decision.OptionEval({}, {"sales": v > 0}, {}, v, g, v, {})
    return decision.Evaluation(opts)


TWO = """
title: t
horizon: 2
history: unused.csv
funnel: {visits: {}, buy: {from: visits}}
options:
  keep: {}
  change: {changes: [{lift: {stage: buy, factor: 1.1}}]}
key_results: [{id: sales, metric: buy, target: +5%}]
"""


def test_p_best_splits_ties_and_expected_loss():
    s = scenario_from(TWO)
    ev = _ev({"keep": [1, 0, 0, 1], "change": [1, 1, 0, 0]})
    rec = decision.recommend(s, ev)
    # draws: tie(1,1) -> .5/.5; change best; tie(0,0) -> .5/.5; keep best
    assert rec.p_best == {"keep": 0.5, "change": 0.5}
    assert rec.expected_loss == {"keep": 0.25, "change": 0.25}
    # equal expected value and grade: the option without changes wins the tie
    assert rec.option == "keep"


def test_recommendation_tie_goes_to_higher_grade():
    s = scenario_from(TWO)
    ev = _ev({"keep": [0, 0], "change": [0, 0]}, {"keep": [0.2, 0.2], "change": [0.5, 0.4]})
    assert decision.recommend(s, ev).option == "change"


def test_grades():
    t = decision.KRTarget(baseline=100, target=120, op=">=")
    assert np.allclose(
        decision.grade(np.array([60, 80, 90, 100, 110, 114, 120, 150]), t),
        [-1, -1, -0.5, 0, 0.5, 0.7, 1, 1],
    )
    # "-5%": hold the line; a miss is measured in the 5 points of slack, down to -1
    hold = decision.KRTarget(baseline=100, target=95, op=">=")
    assert np.allclose(decision.grade(np.array([80, 90, 94, 95, 99]), hold), [-1, -1, -0.2, 1, 1])
    down = decision.KRTarget(baseline=100, target=90, op="<=")
    assert np.allclose(
        decision.grade(np.array([120, 105, 100, 95, 90, 80]), down), [-1, -0.5, 0, 0.5, 1, 1]
    )
    same = decision.KRTarget(baseline=100, target=100, op=">=")  # no slack: met or not
    assert np.array_equal(decision.grade(np.array([99, 100]), same), [0, 1])


def test_mc_se_matches_arviz_and_iid(rng):
    import arviz as az

    # AR(1) chains: batch means must see the autocorrelation, as ArviZ's mcse does
    chains, n, phi = 4, 2000, 0.8
    x = np.zeros((chains, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + rng.standard_normal(chains)
    ours = decision.mc_se(x.reshape(-1), chains)
    theirs = float(az.mcse(x))
    assert 0.7 < ours / theirs < 1.4, (ours, theirs)
    # independent Bernoulli draws: the binomial standard error
    b = (rng.random(4000) < 0.3).astype(float)
    assert abs(decision.mc_se(b, 4) - np.sqrt(0.3 * 0.7 / 4000)) < 0.0015


def test_rate_trends_and_ar1_states_carry_into_the_forecast():
    """A rate trend is extrapolated from the history's centre; AR(1) effects decay from their
    last value in the history by rho per period (sigma 0 here, so the paths are exact)."""
    s = scenario_from(
        FUNNEL
        + """
options: {keep: {}}
key_results: [{id: a, metric: booking, target: +1%}]
"""
    )
    st = Structure.of(s)
    shape = (CHAINS, PER_CHAIN)
    T, H = 20, s.horizon
    t_future = np.arange(T, T + H) - (T - 1) / 2
    logit = {n: np.log(RATES[n] / (1 - RATES[n])) for n in st.nodes}
    base = known_fit(s, RATES, TRAFFIC, periods=T)
    K = len(st.nodes)

    def per_node(values: dict[str, float]) -> np.ndarray:
        return np.broadcast_to(np.array([values.get(n, 0.0) for n in st.nodes]), (*shape, K)).copy()

    # 1. a linear trend in the form rate (logit +0.04 a period)
    trend = Fit("trend", base.arrays | {"rate_trend": per_node({"form": 0.04})}, {}, T, st.nodes)
    fc = forecast.simulate(s, trend).counts["keep"]
    for h in range(H):
        p = 1 / (1 + np.exp(-(logit["form"] + 0.04 * t_future[h])))
        within(fc["form"][:, h], TRAFFIC * p)

    # 2. AR(1) states: traffic 0.3 above its level with rho 0.5; form -0.4 with rho 0.8
    ar = Fit(
        "ar1",
        base.arrays
        | {
            "traffic_elast": np.full(shape, 0.3),
            "traffic_rho": np.full(shape, 0.5),
            "traffic_sigma": np.zeros(shape),
            "rate_elast": per_node({"form": -0.4}),
            "rate_rho": per_node({n: 0.8 for n in st.nodes}),
        },
        {},
        T,
        st.nodes,
    )
    fc = forecast.simulate(s, ar).counts["keep"]
    for h in range(H):
        traffic = TRAFFIC * np.exp(0.3 * 0.5 ** (h + 1))
        within(fc["visits"][:, h], traffic)
        p = 1 / (1 + np.exp(-(logit["form"] - 0.4 * 0.8 ** (h + 1))))
        within(fc["form"][:, h], traffic * p)
