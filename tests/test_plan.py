"""Value of information (`krsim plan`): against exact quadrature on a conjugate case, and its
structural properties on fits with known parameters (no PyMC)."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from known_fits import known_fit as _known_fit
from scipy import integrate, stats

from simulator.analyses.plan import (
    WORTH_NOTHING,
    advice,
    coherent_evsi,
    p_change_text,
    recommendation_sentence,
    text_plan,
)
from simulator.analyses.plan import plan as make_plan
from simulator.io.data import CountTable
from simulator.io.scenario import parse_scenario

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
    assert r.partial_evpi["new.set.rate"].value == pytest.approx(r.evpi, abs=1e-9)


def test_evsi_matches_quadrature_and_rises_with_size(conjugate_plan):
    r = conjugate_plan
    evpi = exact_evpi()
    prev = None
    for d in r.designs:
        exact = exact_evsi(d.per_arm * N_VISITS / r.mean_traffic)
        err = abs(d.evsi - exact)
        assert err < 3 * d.evsi_se + 0.002, (d.per_arm, d.evsi, exact, d.evsi_se)
        assert err < 0.05 * evpi, (d.per_arm, d.evsi, exact)
        assert -2 * d.evsi_se <= d.evsi <= r.evpi + 3 * r.evpi_se
        exact_net = exact_net_value(
            d.per_arm * N_VISITS / r.mean_traffic, d.periods, d.share_of_traffic
        )
        err = abs(d.net_value - exact_net)
        assert err < 3 * d.net_value_se + 0.002, (d.per_arm, d.net_value, exact_net)
        assert err < 0.05 * evpi, (d.per_arm, d.net_value, exact_net)
        if prev is not None:
            assert d.evsi > prev.evsi - 2 * np.hypot(d.evsi_se, prev.evsi_se)
        prev = d
    assert r.designs[-1].evsi > r.designs[0].evsi + 3 * r.designs[-1].evsi_se


@pytest.fixture(scope="module")
def certain_plan():
    """The conjugate case with the new rate known (0.12): no plausible value changes the pick."""
    s, fit, h = conjugate(prior="{fixed: 0.12}")
    return make_plan(s, fit=fit, history=h, per_arm=[200], periods=[1], replicates=1, bootstrap=2)


def test_evpi_is_zero_without_uncertain_changes(certain_plan):
    r = certain_plan
    assert r.evpi == 0.0
    assert r.partial_evpi == {}
    assert r.designs[0].evsi == 0.0
    assert r.designs[0].p_decision_changes == 0.0


def test_evpi_zero_sentence_says_why_and_explains_decision_changes(certain_plan):
    r = certain_plan
    assert r.evpi_is_zero and r.to_dict()["evpi_is_zero"]
    assert r.recommended is None
    assert (
        "the pick is the same for every plausible value of the changes — knowing them exactly "
        "would not change it" in r.sentence
    )
    assert "0.000 ± 0.000" in r.sentence and "P(all KRs met)" in r.sentence
    assert "Recommended" not in r.sentence
    # a pick that still changes after a simulated test is explained as noise, worth nothing
    d = replace(r.designs[0], p_decision_changes=0.37, p_decision_changes_se=0.01)
    noisy = replace(r, designs=[d])
    text = recommendation_sentence(noisy, d)
    assert text == noisy.sentence  # the result's own sentence is written from its fields
    assert "P(decision changes) = 0.37 ± 0.01" in text
    assert "only because of noise in the test's data" in text
    assert "worth nothing" in text
    assert d.decision_changes_worth_nothing
    assert p_change_text(d) == "0.37 ± 0.01 *"
    assert WORTH_NOTHING in text_plan(noisy)


def test_exposure_only_design_is_a_roll_out(certain_plan):
    """Learning value 0 within its errors, exposure value above 0: no test, a roll-out."""
    r = certain_plan
    d = replace(
        r.designs[0],
        exposure_value=0.010,
        exposure_value_se=0.002,
        learning_value=-0.001,
        learning_value_se=0.002,
        net_value=0.009,
        net_value_se=0.002,
        exposure_then="new",
    )
    assert advice(d, r.evpi, r.evpi_se) == "roll_out"
    assert advice(replace(d, exposure_value=0.003), r.evpi, r.evpi_se) == "decide_now"
    assert advice(replace(d, learning_value=0.02), 0.05, 0.002) == "test"
    assert advice(replace(d, learning_value=0.02), r.evpi, r.evpi_se) == "decide_now"  # EVPI 0
    rolled = replace(r, designs=[d], recommended=None, roll_out="new")
    text = recommendation_sentence(rolled, d)
    assert text == rolled.sentence
    assert "No test needed: roll out ‘new’ to a share of traffic." in text
    share = f"{d.share_per_arm:.0%}"
    assert f"Running ‘new’ on {share} of the visitors for the first 1 week(s)" in text
    assert "+0.010 ± 0.002 in P(all KRs met)" in text and "-0.001 ± 0.002" in text
    assert "Recommended" not in text and "for exposure" not in text
    js = rolled.to_dict()
    assert js["recommended"] is None and js["roll_out"] == "new"


def test_evsi_is_clipped_to_evpi_only_within_errors():
    assert coherent_evsi(0.105, 0.003, 0.100, 0.002) == 0.100  # 0.005 < 2 * 0.0036
    assert coherent_evsi(0.110, 0.003, 0.100, 0.002) == 0.110  # 0.010 > 2 * 0.0036: kept
    assert coherent_evsi(-0.001, 0.003, 0.100, 0.002) == 0.0
    assert coherent_evsi(0.090, 0.003, 0.100, 0.002) == 0.090


def test_evsi_does_not_exceed_evpi_on_the_conjugate_case(conjugate_plan):
    """The EVSI of a design is at most the EVPI: each estimate (before clipping) within two
    combined Monte Carlo errors of it, the reported one at most it."""
    r = conjugate_plan
    for d in r.designs:
        assert d.evsi_raw <= r.evpi + 2 * np.hypot(d.evsi_se, r.evpi_se), d
        assert d.evsi <= r.evpi
    assert not r.notes


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
    best = conjugate_plan.best
    assert best.net_value == max(x["net_value"] for x in d["designs"])
    what = advice(best, d["evpi"], d["evpi_se"])
    if what == "test":
        assert rec == {"per_arm": best.per_arm, "periods": best.periods}
    else:
        assert rec is None
    assert (d["roll_out"] is not None) == (what == "roll_out")
    assert d["arms"] == ["keep", "new"] and d["untested"] == []


def test_result_is_frozen_and_its_json_is_written_afresh(conjugate_plan):
    import dataclasses

    r = conjugate_plan
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.evpi = 0.0
    with pytest.raises(TypeError):
        r.partial_evpi["new.set.rate"] = None
    first = r.to_dict()
    first["designs"][0]["evsi"] = -1.0
    first["notes"].append("changed")
    second = r.to_dict()
    assert second["designs"][0]["evsi"] == r.designs[0].evsi
    assert second["notes"] == list(r.notes) and second["recommendation"] == r.sentence
    assert json.loads(json.dumps(second)) == second


def test_to_frame_has_a_row_per_design(conjugate_plan):
    r = conjugate_plan
    frame = r.to_frame()
    assert len(frame) == len(r.designs)
    for d in r.designs:
        row = frame.loc[(d.periods, d.per_arm)]
        assert row["evsi"] == d.evsi and row["net_value"] == d.net_value
        assert row["assurance"] == d.assurance


def test_draws_and_seed_override_the_scenario():
    """``seed=`` and ``draws=`` plan as the scenario with those settings would."""
    s, fit, h = conjugate()
    kw = {"fit": fit, "history": h, "per_arm": [200], "periods": [1], "replicates": 1}
    by_keyword = make_plan(s, seed=8, draws=250, bootstrap=2, **kw)
    assert by_keyword.scenario.seed == 8 and by_keyword.scenario.model.draws == 250
    assert (
        by_keyword.to_dict()
        == make_plan(s.with_overrides(seed=8, draws=250), bootstrap=2, **kw).to_dict()
    )
    assert by_keyword.to_dict() != make_plan(s, bootstrap=2, **kw).to_dict()


def test_designs_that_need_more_than_the_traffic_are_refused():
    from simulator.io.scenario import InputError

    s, fit, h = conjugate()
    with pytest.raises(InputError, match="more than all the traffic"):
        make_plan(s, fit=fit, history=h, per_arm=[10**6], periods=[1], replicates=1)
    with pytest.raises(InputError, match="below the horizon"):
        make_plan(s, fit=fit, history=h, per_arm=[10], periods=[H], replicates=1)


# ---------------------------------------------------------------------- a subset of the options

THREE = f"""
title: three
horizon: {H}
seed: 7
history: three.csv
funnel:
  visits: {{}}
  buy: {{from: visits}}
options:
  keep: {{}}
  new:
    changes:
      - set: {{stage: buy, rate: {{beta: [{A}, {B}]}}}}
  other:
    changes:
      - set: {{stage: buy, rate: {{beta: [{A}, {B}]}}}}
key_results: [{{id: buys, metric: buy, target: ">= {TARGET}"}}]
"""


def test_arms_test_a_subset_of_the_options():
    """With arms [new]: the control is added first (with a note), the untested option `other`
    gets no visitors (the share of traffic is that of two arms, and the arm `new` gets all of
    its half) and no summaries, and it can still be chosen."""
    s = parse_scenario(THREE.encode(), "three.yaml")
    rates = {"buy": R0}
    fit, h = known_fit(s, rates, N_VISITS), history(s, rates, N_VISITS)
    per_arm, k = 200, 2
    r = make_plan(
        s, fit=fit, history=h, arms=["new"], per_arm=[per_arm], periods=[k], replicates=1,
        bootstrap=2,
    )  # fmt: skip
    assert r.arms == ("keep", "new")
    assert any("added the control option 'keep'" in n for n in r.notes)
    js = r.to_dict()
    assert js["arms"] == ["keep", "new"] and js["untested"] == ["other"]
    d = js["designs"][0]
    # by hand: 2 arms x 200 visitors over 2 periods of 1,000 expected visitors = 20%
    assert d["share_of_traffic"] == pytest.approx(2 * per_arm / (k * r.mean_traffic), rel=1e-12)
    assert d["share_of_traffic"] == pytest.approx(0.2, rel=1e-3)
    assert d["share_per_arm"] == pytest.approx(d["share_of_traffic"] / 2, rel=1e-12)
    assert set(d["users_reaching_per_arm"]) == {"new"}
    # the arm's visitors: Poisson(per_arm) per simulated quarter (a third of the share would
    # give 2/3 of that); the error of their mean is sqrt(per_arm / samples)
    visitors = d["users_reaching_per_arm"]["new"]["buy"]
    expected = per_arm * N_VISITS / r.mean_traffic
    assert abs(visitors - expected) < 4 * np.sqrt(per_arm / r.samples), (visitors, expected)
    # `other` is still choosable after the test: it is in the values the pick is made from
    assert "other" in r.scenario.options and js["decide_now"]["option"] in r.scenario.options


def _three_files(tmp_path: Path) -> Path:
    rows = ["period,visits,buy"] + [f"{i},{int(N_VISITS)},{int(N_VISITS * R0)}" for i in range(20)]
    (tmp_path / "three.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "three.yaml"
    path.write_text(THREE)
    return path


def test_unknown_arm_exits_2_with_one_line(tmp_path, capsys):
    from simulator.cli import main

    path = _three_files(tmp_path)
    assert main(["plan", str(path), "--arms", "keep,nwe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: --arms: unknown option 'nwe'")
    assert "did you mean 'new'?" in err[0]
    assert main(["plan", str(path), "--arms", "keep"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at least one option besides the control 'keep'" in err[0], err


def test_plan_section_sits_before_the_diagnostics(certain_plan, tmp_path):
    from simulator.report.plan_plots import write_plan_report

    d = write_plan_report(certain_plan, tmp_path)
    page = (d / "index.html").read_text(encoding="utf-8")
    assert page.count('<section id="plan">') == 1
    i = page.index('<section id="plan">')
    assert page.index('<section id="assumptions">') < i < page.index('<section id="diagnostics">')
    assert i < page.index('<section id="provenance">')
    md = (d / "report.md").read_text(encoding="utf-8")
    assert md.count("## Is a test worth it?") == 1
    j = md.index("\n## Is a test worth it?")
    assert md.index("\n## Assumptions") < j < md.index("\n## Sampler diagnostics")
    assert (d / "figures" / "plan_value.png").stat().st_size > 0
    assert "(figures/plan_value.png)" in md
    assert json.loads((d / "plan.json").read_text())["evpi_is_zero"] is True
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_plan_section_sits_before_the_diagnostics_in_french_too(certain_plan, tmp_path):
    """The Markdown page finds the sampler diagnostics' heading in the page's language."""
    from simulator.i18n import _, language
    from simulator.report.markdown import md
    from simulator.report.plan_plots import write_plan_report

    d = write_plan_report(certain_plan, tmp_path, lang="fr")
    with language("fr"):
        plan, diagnostics = md(_("Is a test worth it?")), _("Sampler diagnostics")
    md = (d / "report.md").read_text(encoding="utf-8")
    assert diagnostics != "Sampler diagnostics"
    assert md.index(f"\n## {plan}\n") < md.index(f"\n## {diagnostics}\n")


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
    from simulator.model.priors import elicit

    family, p = elicit(prior)
    assert family == "beta"
    return stats.beta.ppf((np.arange(m) + 0.5) / m, *p)


@pytest.mark.slow
def test_evpi_agrees_with_nested_monte_carlo():
    """Nested MC: the inner expectation E[V_a | theta] is the forecast's mean over every draw of
    the funnel and fresh period effects and noise with theta fixed (on a grid of equal-probability
    cells of each prior), the outer one the mean over the grid. Agreement within 5% of EVPI."""
    from simulator.engine import decision, forecast
    from simulator.io.scenario import change_priors

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
        (r.partial_evpi["follow_up.flow.rate"].value, partial_flow),
        (r.partial_evpi["gate.gate.pass"].value, partial_pass),
    ]:
        assert abs(got - want) < 0.05 * evpi
    for d in r.designs:
        assert -2 * d.evsi_se <= d.evsi <= r.evpi + 2 * r.evpi_se
