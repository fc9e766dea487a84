"""Values on stages: reading, totals and ratios of totals, value lifts in the forecast, the value
likelihood's recovery of a known truth, and refused value columns."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from simulator import InputError, load_scenario
from simulator.engine import decision, forecast
from simulator.io.data import read_history
from simulator.model import values
from simulator.model.posterior import Fit

ROOT = Path(__file__).resolve().parent.parent
ECOMMERCE = ROOT / "scenarios" / "ecommerce_revenue.yaml"
HISTORY = ROOT / "scenarios" / "data" / "ecommerce_revenue_history.csv"


def _rows() -> list[dict[str, str]]:
    with HISTORY.open() as fh:
        return list(csv.DictReader(fh))


def test_history_values_and_baselines_by_hand():
    s = load_scenario(ECOMMERCE)
    h = read_history(s)
    rows = _rows()
    # the empty cell is missing data, the others are read with their decimals
    assert np.isnan(h.values["purchase"][9]) and rows[9]["purchase.value"] == ""
    assert h.values["purchase"][0] == pytest.approx(float(rows[0]["purchase.value"]))
    last = rows[-s.horizon :]
    revenue = sum(float(r["purchase.value"]) for r in last)
    purchases = sum(int(r["purchase"]) for r in last)
    tg = decision.targets(s, h)
    assert tg["revenue"].baseline == pytest.approx(revenue, rel=1e-12)
    assert tg["purchases"].baseline == purchases
    assert tg["basket"].baseline == pytest.approx(revenue / purchases, rel=1e-12)
    assert tg["revenue"].target == pytest.approx(1.10 * revenue, rel=1e-12)
    assert tg["basket"].target == pytest.approx(1.08 * revenue / purchases, rel=1e-12)


def test_kr_values_are_totals_and_ratios_of_totals():
    s = load_scenario(ECOMMERCE)
    tg = decision.targets(s, read_history(s))
    n = np.array([[10, 20, 0], [5, 5, 5]])
    v = np.array([[100.0, 300.0, 0.0], [50.0, 40.0, 60.0]])
    counts = {st: np.ones_like(n) for st in s.funnel} | {"purchase": n, "purchase.value": v}
    oe = decision.evaluate_option(s, counts, tg)
    np.testing.assert_allclose(oe.values["revenue"], [400.0, 150.0])
    np.testing.assert_allclose(oe.values["purchases"], [30, 15])
    np.testing.assert_allclose(oe.values["basket"], [400 / 30, 150 / 15])


def _fake_fit(s, D: int = 4000, rng=None) -> Fit:
    """Posterior draws of the e-commerce model's parameters, invented (one chain): the forecast
    reads only these arrays."""
    rng = rng or np.random.default_rng(7)
    nodes = tuple(st for st, x in s.funnel.items() if x.from_)
    rates = {"product_view": 0.55, "cart": 0.12, "checkout": 0.55, "purchase": 0.70}
    mu = np.log([rates[n] / (1 - rates[n]) for n in nodes])
    arrays = {
        "level": np.log(40_000) + 0.01 * rng.standard_normal((1, D)),
        "alpha": np.full((1, D), 200.0),
        "rate_mu": (mu[None, :] + 0.01 * rng.standard_normal((D, len(nodes))))[None],
        "rate_sigma": np.full((1, D, len(nodes)), 0.05),
        "value_mu": np.log(62.0) + 0.005 * rng.standard_normal((1, D, 1)),
        "value_sigma": np.full((1, D, 1), 0.04),
        "value_k": np.full((1, D, 1), 1 / 0.9**2),
    }
    return Fit("fake", arrays, {}, 52, nodes)


def test_value_lift_of_fixed_factor_moves_the_median_basket_by_that_factor():
    s = load_scenario(ECOMMERCE)
    text = ECOMMERCE.read_text().replace(
        "factor: {lognormal_interval: [1.01, 1.07]}}\n  fast_checkout",
        "factor: {fixed: 1.1}}\n  fast_checkout",
    )
    assert text != ECOMMERCE.read_text()
    from simulator.io.scenario import parse_scenario

    s = parse_scenario(text.encode(), str(ECOMMERCE))
    s._source = ECOMMERCE
    fit = _fake_fit(s)
    fc = forecast.simulate(s, fit)
    basket = {o: fc.total(o, "purchase.value") / fc.total(o, "purchase") for o in fc.options}
    # recommendations changes only the value per unit: same counts, and with common random
    # numbers each draw's total is the status quo's times the factor
    np.testing.assert_array_equal(
        fc.total("recommendations", "purchase"), fc.total("status_quo", "purchase")
    )
    assert np.median(basket["recommendations"]) / np.median(basket["status_quo"]) == pytest.approx(
        1.1, rel=1e-9
    )
    # revenue is drawn given the purchases of the same draw: the two move together, and P(both
    # met) is counted per draw
    rev, pur = fc.total("status_quo", "purchase.value"), fc.total("status_quo", "purchase")
    assert np.corrcoef(rev, pur)[0, 1] > 0.5
    # and the status quo's median basket is the mean per unit the draws say (62), within the
    # spread of 13 weeks' average of period effects (sd 0.04 / sqrt(13)) and per-unit noise
    assert np.median(basket["status_quo"]) == pytest.approx(62.0, rel=0.01)


def test_value_totals_given_counts_have_the_gamma_sum_moments(rng):
    """Sum of n unit values with mean m and cv 1/sqrt(k): mean n m, sd m sqrt(n / k)."""
    n = np.full(200_000, 40)
    m, k = 25.0, 1.5
    tot = values.draw_totals(n, m, k, rng)
    se = m * np.sqrt(40 / k) / np.sqrt(len(n))
    assert abs(tot.mean() - 40 * m) < 4 * se
    assert tot.std() == pytest.approx(m * np.sqrt(40 / k), rel=0.01)
    assert values.draw_totals(np.array([0]), m, k, rng)[0] == 0.0


# ----------------------------------------------------------------------------- bad input


def _write(tmp_path: Path, yaml_edit=None, csv_edit=None) -> Path:
    text = ECOMMERCE.read_text().replace("history: data/", "history: ")
    if yaml_edit:
        text = yaml_edit(text)
    (tmp_path / "s.yaml").write_text(text)
    rows = HISTORY.read_text().splitlines()
    if csv_edit:
        rows = csv_edit(rows)
    (tmp_path / "ecommerce_revenue_history.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "s.yaml"


def _cell(rows: list[str], r: int, text: str) -> list[str]:
    cells = rows[r].split(",")
    cells[-1] = text
    return [*rows[:r], ",".join(cells), *rows[r + 1 :]]


@pytest.mark.parametrize(
    ("yaml_edit", "csv_edit", "want"),
    [
        (
            None,
            lambda r: _cell(r, 3, "-12.5"),
            "row 4, column 'purchase.value': a total value cannot be negative (-12.5)",
        ),
        (
            None,
            lambda r: _cell(r, 3, "lots"),
            "row 4, column 'purchase.value': not a number ('lots')",
        ),
        (
            None,
            lambda r: _cell(r, 50, ""),
            "column 'purchase.value': empty in 2026-08-10, inside the last 13 periods",
        ),
        (
            lambda t: t.replace(", value: {label: Revenue, unit: EUR}", ""),
            None,
            "key_results[0].metric: 'purchase.value': stage 'purchase' has no value",
        ),
        (
            lambda t: t.replace(", value: {label: Revenue, unit: EUR}", ""),
            None,
            "options.free_shipping.changes[0].lift.on: stage 'purchase' has no value to lift",
        ),
        (
            None,
            lambda r: [x.rsplit(",", 1)[0] for x in r],
            "column 'purchase.value': missing (stage 'purchase' has a value",
        ),
        (
            lambda t: t.replace("metric: purchase.value  ", "metric: purchase.valeu  "),
            None,
            "metric must be a total",
        ),
    ],
)
def test_bad_values_exit_2_with_field_paths(tmp_path, capsys, yaml_edit, csv_edit, want):
    from simulator.cli import main

    path = _write(tmp_path, yaml_edit, csv_edit)
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    joined = "\n".join(exc.value.problems)
    assert want in joined, joined
    capsys.readouterr()
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line in err.strip().splitlines():
        assert line.startswith(f"error: {tmp_path}"), line


def test_value_column_in_the_history_of_a_stage_without_value(tmp_path):
    path = _write(
        tmp_path,
        yaml_edit=lambda t: (
            t.replace(", value: {label: Revenue, unit: EUR}", "")
            .replace("on: value, ", "")
            .replace("metric: purchase.value / purchase", "metric: purchase / checkout")
            .replace("metric: purchase.value  ", "metric: purchase  ")
            .replace("target: +8%", "target: +1%")
        ),
    )
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert exc.value.problems == [
        f"{tmp_path}/ecommerce_revenue_history.csv: column 'purchase.value': stage 'purchase' has "
        "no value; give it one in the scenario (funnel.purchase.value: {label: ..., unit: ...})"
    ]


# ----------------------------------------------------------------------------- recovery


@pytest.fixture(scope="module")
def recovery_fit():
    """Simulated periods of few units (so the per-unit spread k shows), fitted with the value
    likelihood alone."""
    import pymc as pm

    from simulator.io.scenario import ModelBlock
    from simulator.model import add_value_likelihood
    from simulator.model.quiet import quiet_warnings

    rng = np.random.default_rng(2026)
    T, m0, sigma, cv = 80, 40.0, 0.15, 0.8
    k = 1 / cv**2
    n = rng.integers(20, 60, T)
    m = m0 * np.exp(sigma * rng.standard_normal(T))
    v = rng.gamma(n * k, m / k)
    v[[5, 17]] = np.nan  # empty cells are skipped
    with (
        pm.Model(coords={"value": ["purchase"], "value_period": list(range(T))}),
        quiet_warnings(),  # as krsim samples: a diverging step's overflow is a divergence
    ):
        add_value_likelihood(n[None], v[None], ModelBlock(), np.arange(T) - (T - 1) / 2)
        dt = pm.sample(
            1000,
            tune=1000,
            chains=2,
            random_seed=1,
            target_accept=0.95,
            progressbar=False,
            nuts_sampler="pymc",
            cores=1,
        )
    return dt, {"mean per unit": m0, "period sd": sigma, "cv": cv}


@pytest.mark.slow
def test_value_likelihood_recovers_the_mean_per_unit_its_variation_and_k(recovery_fit):
    """The 90% posterior intervals hold the truth."""
    dt, truth = recovery_fit
    post = dt["posterior"]
    got = {
        "mean per unit": np.exp(post["value_mu"].values[..., 0]),
        "period sd": post["value_sigma"].values[..., 0],
        "cv": post["value_cv"].values[..., 0],
    }
    for name, draws in got.items():
        lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
        print(
            f"{name}: truth {truth[name]:g}, posterior median {med:.4g}, 90% [{lo:.4g}, {hi:.4g}]"
        )
        assert lo <= truth[name] <= hi, name


@pytest.mark.slow
def test_value_likelihood_recovers_the_mean_and_its_variation_with_many_units():
    """The example's regime (about 1,000 units a week): the per-unit mean and the week-to-week sd
    are recovered (90% intervals hold the truth); the per-unit spread is barely identified there
    (the posterior of cv is reported, not checked)."""
    import pymc as pm

    from simulator.io.scenario import ModelBlock
    from simulator.model import add_value_likelihood
    from simulator.model.quiet import quiet_warnings

    rng = np.random.default_rng(2027)
    T, m0, sigma, cv = 52, 62.0, 0.04, 0.9
    k = 1 / cv**2
    n = rng.integers(850, 1300, T)
    v = rng.gamma(n * k, m0 * np.exp(sigma * rng.standard_normal(T)) / k)
    with (
        pm.Model(coords={"value": ["purchase"], "value_period": list(range(T))}),
        quiet_warnings(),  # as krsim samples: a diverging step's overflow is a divergence
    ):
        add_value_likelihood(n[None], v[None], ModelBlock(), np.arange(T) - (T - 1) / 2)
        dt = pm.sample(
            1000,
            tune=1000,
            chains=2,
            random_seed=3,
            progressbar=False,
            nuts_sampler="pymc",
            cores=1,
        )
    post = dt["posterior"]
    for name, draws, truth in (
        ("mean per unit", np.exp(post["value_mu"].values[..., 0]), m0),
        ("period sd", post["value_sigma"].values[..., 0], sigma),
        ("cv", post["value_cv"].values[..., 0], cv),
    ):
        lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
        print(f"{name}: truth {truth:g}, posterior median {med:.4g}, 90% [{lo:.4g}, {hi:.4g}]")
        if name != "cv":
            assert lo <= truth <= hi, name


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="with few units a period (20-60) the (total, share) split mixes slowly: one "
    "divergence and ESS 130-170 for the period sd and cv in 2 x 1000 draws",
)
def test_value_likelihood_samples_cleanly_with_few_units(recovery_fit):
    import arviz as az

    dt, _ = recovery_fit
    ess = az.ess(dt, var_names=["value_mu", "value_sigma", "value_cv"])
    assert int(dt["sample_stats"]["diverging"].values.sum()) == 0
    assert min(float(v.values.min()) for v in ess.values()) >= 400


# ----------------------------------------------------------------------------- experiments


def test_experiment_value_columns_and_the_lift_of_the_value_per_unit():
    from simulator.model import experiment as ex

    s = load_scenario(ECOMMERCE)
    exp = ex.read_results(s, ex.results_path(s, None))
    assert set(exp.values) == {"purchase"}
    with (ROOT / "scenarios" / "data" / "ecommerce_revenue_experiment.csv").open() as fh:
        rows = list(csv.DictReader(fh))

    def per_unit(arm: str) -> float:
        mine = [r for r in rows if r["arm"] == arm]
        return sum(float(r["purchase.value"]) for r in mine) / sum(int(r["purchase"]) for r in mine)

    # the value lift is tested: its parameter is informed by the experiment's value column
    assert "recommendations.lift.factor" in ex.tested_priors(s, exp)
    fit = _fake_fit(s)
    got = values.experiment_lifts(s, exp, fit, np.random.default_rng(3))
    d = got["recommendations"]["purchase.value"]
    observed = per_unit("recommendations") / per_unit("status_quo") - 1
    # flat prior on log m: the posterior median of the ratio is the observed ratio up to a
    # relative bias of order 1 / (n k) ~ 0.002 and a Monte Carlo error ~ 1e-4
    assert d["median"] == pytest.approx(observed, abs=0.003)
    lo, hi = d["interval95"]
    # 95% interval of a log ratio with sd sqrt(2 / (n k)), n ~ 630 a arm, k = 1 / 0.9^2
    half = 1.96 * np.sqrt(2 / (630 / 0.81))
    assert np.log1p(hi) - np.log1p(lo) == pytest.approx(2 * half, rel=0.05)
    assert 0 < d["p_better"] < 1


def test_experiment_value_conflict_flags_a_value_far_outside_the_beliefs():
    from simulator.model import experiment as ex

    s = load_scenario(ECOMMERCE)
    exp = ex.read_results(s, ex.results_path(s, None))
    fit = _fake_fit(s)
    calm = values.experiment_conflicts(s, exp, fit, np.random.default_rng(4))
    assert calm["recommendations"][0]["p_value"] > 0.05
    # the same table with the recommendations arm's baskets doubled: far beyond 1.01-1.07
    rows = exp.rows("recommendations")
    doubled = dict(exp.values)
    doubled["purchase"] = exp.values["purchase"].copy()
    doubled["purchase"][rows] *= 2
    import dataclasses

    far = values.experiment_conflicts(
        s, dataclasses.replace(exp, values=doubled), fit, np.random.default_rng(4)
    )
    r = far["recommendations"][0]
    assert r["p_value"] < 0.001 and r["observed_ratio"] > r["predicted95"][1]


def test_future_value_effects_continue_an_ar1_and_a_trend():
    """With AR(1) effects the horizon starts from the last history period's effect and decays as
    rho^h; with a trend the mean moves by the slope per period."""
    D, T, H = 100_000, 20, 4
    rho, sigma, mu, slope, e_last = 0.8, 0.1, np.log(50.0), 0.01, 0.2
    t_hist = np.arange(T) - (T - 1) / 2
    eta = mu + slope * t_hist + np.zeros((D, T))
    eta[:, -1] += e_last
    arrays = {
        "value_mu": np.full((1, D, 1), mu),
        "value_sigma": np.full((1, D, 1), sigma),
        "value_rho": np.full((1, D, 1), rho),
        "value_trend": np.full((1, D, 1), slope),
        "value_eta": eta[None, :, None, :],
    }
    t_future = np.arange(T, T + H) - (T - 1) / 2
    got = values.future_log_mean(arrays, 0, t_future, np.random.default_rng(5))
    for h in range(H):
        want = mu + slope * t_future[h] + rho ** (h + 1) * e_last
        sd = sigma * np.sqrt(1 - rho ** (2 * (h + 1)))  # AR(1) spread after h + 1 steps
        assert abs(got[:, h].mean() - want) < 4 * sd / np.sqrt(D)
        assert got[:, h].std() == pytest.approx(sd, rel=0.02)


@pytest.mark.parametrize("variant", ["ar1", "rate_trend"])
def test_value_model_builds_with_each_period_effect_variant(variant):
    from simulator.model import build_model

    s = load_scenario(ECOMMERCE)
    mb = s.model.model_copy(
        update={"period_effects": "ar1"} if variant == "ar1" else {"rate_trend": True}
    )
    s2 = s.model_copy(update={"model": mb})
    m = build_model(s2, read_history(s))
    names = set(m.named_vars)
    assert {"value_mu", "value_sigma", "value_k", "value_eta", "value_obs"} <= names
    assert ("value_rho" in names) == (variant == "ar1")
    assert ("value_trend" in names) == (variant == "rate_trend")
    # 51 observed weeks (one empty cell) in the value likelihood, and a finite log density
    assert np.asarray(m.rvs_to_values[m["value_obs"]].data).shape == (51,)
    point = m.initial_point()
    assert np.isfinite(m.compile_logp(mode="FAST_COMPILE")(point))  # finiteness, not speed


def test_yaml_reads_the_bare_key_on_as_the_word():
    """YAML 1.1 takes `on` for the boolean true; as a key it stays the word `on`."""
    s = load_scenario(ECOMMERCE)
    lift = s.options["recommendations"].changes[0].lift
    assert lift is not None and lift.on == "value"
    assert s.options["fast_checkout"].changes[0].lift.on == "rate"


def test_tracking_a_value_key_result_is_refused_with_its_field(tmp_path):
    from simulator.analyses.track import track

    s = load_scenario(ECOMMERCE)
    with pytest.raises(InputError) as exc:
        track(s, None)
    assert [p.split(": ")[1] for p in exc.value.problems] == [
        "key_results[0].metric",
        "key_results[1].metric",
    ]
