"""Value of information (`krsim plan`): against exact quadrature on a conjugate case, and its
structural properties on fits with known parameters (no PyMC)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from known_fits import known_fit as _known_fit
from scipy import integrate, stats

from simulator.data import CountTable
from simulator.plan import plan as make_plan
from simulator.scenario import parse_scenario

CHAINS, PER_CHAIN = 4, 1000
N_VISITS, R0, H = 1000.0, 0.10, 4
TARGET = 405
A, B = 8.0, 72.0  # Beta prior of the new rate: mean 0.10, sd 0.033


known_fit = partial(_known_fit, shape=(CHAINS, PER_CHAIN))


def history(scenario, rates, traffic, periods=20) -> CountTable:
    counts = {scenario.root: np.full(periods, int(traffic))}
    for s, st in scenario.funnel.items():
        if st.from_:
            counts[s] = np.round(counts[st.from_] * rates[s]).astype(int)
    return CountTable(Path("h.csv"), "period", tuple(str(i) for i in range(periods)), counts)


def conjugate(prior: str = f"{{beta: [{A}, {B}]}}"):
    s = parse_scenario(
        f"""
title: conjugate
horizon: {H}
seed: 7
history: unused.csv
funnel:
  visits: {{}}
  buy: {{from: visits}}
options:
  keep: {{}}
  new:
    changes:
      - set: {{stage: buy, rate: {prior}}}
key_results: [{{id: buys, metric: buy, target: ">= {TARGET}"}}]
""".encode(),
        "conjugate.yaml",
    )
    rates = {"buy": R0}
    return s, known_fit(s, rates, N_VISITS), history(s, rates, N_VISITS)


# ------------------------------------------------------------------------------ exact values


def p_met(rate):
    """P(total buys >= TARGET): the quarter's buys are Poisson(N * H * rate) (Poisson thinning)."""
    return stats.poisson.sf(TARGET - 1, N_VISITS * H * np.asarray(rate))


def exact_evpi() -> float:
    p0 = float(p_met(R0))
    beta = stats.beta(A, B)
    e_new = integrate.quad(lambda r: p_met(r) * beta.pdf(r), 0, 1, limit=200)[0]
    e_max = integrate.quad(lambda r: max(p_met(r), p0) * beta.pdf(r), 0, 1, limit=200)[0]
    return e_max - max(e_new, p0)


def exact_evsi(per_arm: float) -> float:
    """Sum over the arm's visitors v ~ Poisson(per_arm) and buyers y | v ~ BetaBinomial(v, A, B);
    the posterior of the rate is Beta(A + y, B + v - y). The prior puts 1e-12 beyond 0.4."""
    p0 = float(p_met(R0))
    r = (np.arange(1200) + 0.5) / 1200 * 0.4  # midpoint rule on [0, 0.4]
    pm = p_met(r)
    e_new = float(integrate.quad(lambda x: p_met(x) * stats.beta.pdf(x, A, B), 0, 1)[0])
    sd = np.sqrt(per_arm)
    vs = np.arange(max(int(per_arm - 6 * sd), 0), int(per_arm + 6 * sd) + 1)
    log_r, log_1r = np.log(r), np.log1p(-r)
    total = 0.0
    for v in vs:
        y = np.arange(int(0.45 * v) + 2)
        logk = (A - 1 + y[:, None]) * log_r + (B - 1 + v - y[:, None]) * log_1r
        k = np.exp(logk - logk.max(axis=1, keepdims=True))
        cond = (k @ pm) / k.sum(axis=1)
        total += stats.poisson.pmf(v, per_arm) * (
            stats.betabinom.pmf(y, v, A, B) @ np.maximum(cond, p0)
        )
    return total - max(e_new, p0)


def exact_net_value(per_arm: float, k: int, share: float) -> float:
    """Test for k periods (the arm `new` gets v ~ Poisson(per_arm) visitors; everything else in
    those periods is `keep`), then the better option given everything seen (the arm's data and
    the buys so far) for the remaining H - k periods; minus deciding now."""
    p0 = float(p_met(R0))
    e_new = float(integrate.quad(lambda x: p_met(x) * stats.beta.pdf(x, A, B), 0, 1)[0])
    r = (np.arange(400) + 0.5) / 400 * 0.4
    log_r, log_1r = np.log(r), np.log1p(-r)
    lam_c = N_VISITS * k * R0 * (1 - share / 2)
    cs = np.arange(max(int(lam_c - 7 * np.sqrt(lam_c)), 0), int(lam_c + 7 * np.sqrt(lam_c)) + 1)
    pc = stats.poisson.pmf(cs, lam_c)
    rest = N_VISITS * (H - k)
    needs = np.arange(TARGET - 2 * int(per_arm) - cs[-1] - 5, TARGET + 1)  # buys still needed
    sf_new = stats.poisson.sf(needs[:, None] - 1, rest * r[None, :])
    sf_keep = stats.poisson.sf(needs - 1, rest * R0)
    sd = np.sqrt(per_arm)
    total = 0.0
    for v in np.arange(max(int(per_arm - 6 * sd), 0), int(per_arm + 6 * sd) + 1):
        y = np.arange(int(0.45 * v) + 2)
        logk = (A - 1 + y[:, None]) * log_r + (B - 1 + v - y[:, None]) * log_1r
        post = np.exp(logk - logk.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        idx = TARGET - (y[:, None] + cs[None, :]) - needs[0]  # (y, c) -> row of the tables
        p_new = np.einsum("ycr,yr->yc", sf_new[idx], post)
        best = np.maximum(p_new, sf_keep[idx]) @ pc
        total += stats.poisson.pmf(v, per_arm) * (stats.betabinom.pmf(y, v, A, B) @ best)
    return total - max(e_new, p0)


@pytest.fixture(scope="module")
def conjugate_plan():
    s, fit, h = conjugate()
    return make_plan(
        s, fit=fit, history=h, per_arm=[50, 200, 800], periods=[2], replicates=8, bootstrap=20
    )


def test_evpi_matches_quadrature(conjugate_plan):
    r = conjugate_plan
    exact = exact_evpi()
    assert exact > 0.05  # the pick flips inside the prior
    assert r.evpi > 10 * r.evpi_se
    assert abs(r.evpi - exact) < 3 * r.evpi_se + 0.002, (r.evpi, exact, r.evpi_se)
    assert abs(r.evpi - exact) < 0.05 * exact  # within 5% of EVPI
    assert r.partial_evpi["new.set.rate"]["value"] == pytest.approx(r.evpi, abs=1e-9)


def test_evsi_matches_quadrature_and_rises_with_size(conjugate_plan):
    r = conjugate_plan
    evpi = exact_evpi()
    prev = None
    for d in r.designs:
        exact = exact_evsi(d["per_arm"] * N_VISITS / r.mean_traffic)
        err = abs(d["evsi"] - exact)
        assert err < 3 * d["evsi_se"] + 0.002, (d["per_arm"], d["evsi"], exact, d["evsi_se"])
        assert err < 0.05 * evpi, (d["per_arm"], d["evsi"], exact)
        assert -2 * d["evsi_se"] <= d["evsi"] <= r.evpi + 3 * r.evpi_se
        exact_net = exact_net_value(
            d["per_arm"] * N_VISITS / r.mean_traffic, d["periods"], d["share_of_traffic"]
        )
        err = abs(d["net_value"] - exact_net)
        assert err < 3 * d["net_value_se"] + 0.002, (d["per_arm"], d["net_value"], exact_net)
        assert err < 0.05 * evpi, (d["per_arm"], d["net_value"], exact_net)
        if prev is not None:
            assert d["evsi"] > prev["evsi"] - 2 * np.hypot(d["evsi_se"], prev["evsi_se"])
        prev = d
    assert r.designs[-1]["evsi"] > r.designs[0]["evsi"] + 3 * r.designs[-1]["evsi_se"]


def test_evpi_is_zero_without_uncertain_changes():
    s, fit, h = conjugate(prior="{fixed: 0.12}")
    r = make_plan(s, fit=fit, history=h, per_arm=[200], periods=[1], replicates=1, bootstrap=2)
    assert r.evpi == 0.0
    assert r.partial_evpi == {}
    assert r.designs[0]["evsi"] == 0.0
    assert r.designs[0]["p_decision_changes"] == 0.0


def test_json_object_has_the_design_fields(conjugate_plan):
    d = conjugate_plan.to_dict()
    assert {"evpi", "designs", "recommended"} <= set(d)
    for x in d["designs"]:
        assert {
            "per_arm",
            "periods",
            "evsi",
            "net_value",
            "p_decision_changes",
            "assurance",
        } <= set(x)
    rec = d["recommended"]
    best = max(d["designs"], key=lambda x: x["net_value"])
    if best["net_value"] > 0:
        assert rec == {"per_arm": best["per_arm"], "periods": best["periods"]}
    else:
        assert rec is None


def test_designs_that_need_more_than_the_traffic_are_refused():
    from simulator.scenario import InputError

    s, fit, h = conjugate()
    with pytest.raises(InputError, match="more than all the traffic"):
        make_plan(s, fit=fit, history=h, per_arm=[10**6], periods=[1], replicates=1)
    with pytest.raises(InputError, match="below the horizon"):
        make_plan(s, fit=fit, history=h, per_arm=[10], periods=[H], replicates=1)


# ------------------------------------------------------------- nested Monte Carlo (a gate, a flow)

NESTED = """
title: nested
horizon: 6
seed: 11
history: unused.csv
funnel:
  visits: {}
  form: {from: visits}
  booking: {from: form}
  signup: {from: visits}
segments:
  member: {of: form}
options:
  keep: {}
  gate:
    changes:
      - gate:
          before: booking
          exempt: member
          pass: {beta_interval: [0.5, 0.9]}
          counts_as: signup
          overlap: {beta_interval: [0.0, 0.2]}
  follow_up:
    changes:
      - flow: {from: booking, to: signup, among: not member, rate: {beta_interval: [0.02, 0.12]}}
key_results:
  - {id: accounts, metric: signup, target: +15%}
  - {id: bookings, metric: booking, target: -15%}
"""
NESTED_RATES = {"form": 0.3, "booking": 0.6, "signup": 0.05, "member": 0.25}


def _quantile_midpoints(prior, m: int) -> np.ndarray:
    from simulator.priors import elicit

    family, p = elicit(prior)
    assert family == "beta"
    return stats.beta.ppf((np.arange(m) + 0.5) / m, *p)


@pytest.mark.slow
def test_evpi_agrees_with_nested_monte_carlo():
    """Nested MC: the inner expectation E[V_a | theta] is the forecast's mean over every draw of
    the funnel and fresh period effects and noise with theta fixed (on a grid of equal-probability
    cells of each prior), the outer one the mean over the grid. Agreement within 5% of EVPI."""
    from simulator import decision, forecast
    from simulator.scenario import change_priors

    s = parse_scenario(NESTED.encode(), "nested.yaml")
    fit = known_fit(s, NESTED_RATES, 2000.0)
    fit.arrays["rate_sigma"][:] = 0.1  # period-to-period variation of every rate
    h = history(s, NESTED_RATES, 2000.0)
    r = make_plan(s, fit=fit, history=h, per_arm=[500], periods=[2], replicates=4)
    tg = decision.targets(s, h)
    pri = change_priors(s)
    reps = [s.with_overrides(seed=1000 + i) for i in range(4)]
    shared = [forecast.prepare(x, fit) for x in reps]
    base = [forecast.draw_change_params(x, fit.n_draws) for x in reps]

    def inner(option: str, fixed: dict[str, float]) -> float:
        vals = []
        for x, sh, p in zip(reps, shared, base, strict=True):
            q = dict(p) | {k: np.full(fit.n_draws, v) for k, v in fixed.items()}
            counts = forecast.simulate_option(x, sh, option, q)
            vals.append(decision.evaluate_option(x, counts, tg).value)
        return float(np.concatenate(vals).mean())

    keep = inner("keep", {})
    m = 24
    pas = _quantile_midpoints(pri["gate.gate.pass"], m)
    ovl = _quantile_midpoints(pri["gate.gate.overlap"], m)
    flo = _quantile_midpoints(pri["follow_up.flow.rate"], 4 * m)
    g_gate = np.array(
        [[inner("gate", {"gate.gate.pass": a, "gate.gate.overlap": b}) for b in ovl] for a in pas]
    )
    g_flow = np.array([inner("follow_up", {"follow_up.flow.rate": c}) for c in flo])
    now = max(keep, g_gate.mean(), g_flow.mean())
    best = np.maximum(np.maximum(g_gate[:, :, None], g_flow[None, None, :]), keep)
    evpi = best.mean() - now
    partial_flow = np.maximum(g_flow, max(keep, g_gate.mean())).mean() - now
    partial_pass = np.maximum(g_gate.mean(axis=1), max(keep, g_flow.mean())).mean() - now
    print(f"nested EVPI {evpi:.4f}, plan {r.evpi:.4f} ± {r.evpi_se:.4f}")
    print(f"partial flow: nested {partial_flow:.4f}, plan {r.partial_evpi['follow_up.flow.rate']}")
    print(f"partial pass: nested {partial_pass:.4f}, plan {r.partial_evpi['gate.gate.pass']}")
    assert evpi > 0.02
    assert abs(r.evpi - evpi) < 0.05 * evpi
    for got, want in [
        (r.partial_evpi["follow_up.flow.rate"]["value"], partial_flow),
        (r.partial_evpi["gate.gate.pass"]["value"], partial_pass),
    ]:
        assert abs(got - want) < 0.05 * evpi
    for d in r.designs:
        assert -2 * d["evsi_se"] <= d["evsi"] <= r.evpi + 2 * r.evpi_se
