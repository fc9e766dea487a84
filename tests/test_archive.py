"""The archive of past experiments: reading, the effect-distribution fit against the closed form,
`krsim archive` on the example, and priors from the archive in a scenario."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main
from simulator.io.archive_data import archive_frame, read_archive
from simulator.io.scenario import InputError
from simulator.model import archive as A

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "scenarios" / "data" / "example_archive.csv"
SMALL = A.Settings(draws=250, tune=300, chains=2)


def _write(tmp_path: Path, text: str, name: str = "past.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------- reading


def test_reads_percent_and_intervals(tmp_path):
    p = _write(
        tmp_path,
        "Experiment,Metric,Lift,lo,hi,Shipped,end\n"
        "a,purchase,+3.1%,1.1%,5.1%,yes,2024-01-05\n"
        "b,purchase,-0.004,-0.02,0.012,no,\n",
    )
    arc = read_archive(p)
    assert arc.lift == pytest.approx([0.031, -0.004])
    assert arc.se == pytest.approx([0.04 / (2 * 1.959964), 0.032 / (2 * 1.959964)], rel=1e-5)
    assert arc.shipped == (True, False)


@pytest.mark.parametrize(
    "body, where",
    [
        ("a,m,0.01,\n", "row 2, column 'se': empty"),
        ("a,m,0.01,-0.02\n", "row 2, column 'se': a standard error cannot be negative"),
        (
            "a,m,0.01,0.01\na,m,0.02,0.01\n",
            "row 3, column 'experiment': 'a' with metric 'm' appears twice",
        ),
        ("a,m,abc,0.01\n", "row 2, column 'lift': not a number ('abc')"),
    ],
)
def test_bad_archives_refused_with_row_and_column(tmp_path, capsys, body, where):
    p = _write(tmp_path, "experiment,metric,lift,se\n" + body)
    assert main(["archive", str(p)]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {p}: ") and where in lines[0]
    assert "Traceback" not in err


def test_missing_se_column(tmp_path):
    p = _write(tmp_path, "experiment,metric,lift\na,m,0.01\n")
    with pytest.raises(InputError) as e:
        read_archive(p)
    assert e.value.problems == [
        f"{p}: column 'se': missing (give each lift's standard error, or its 95% interval "
        "as columns lo and hi)"
    ]


# ----------------------------------------------------------------- the closed-form check


def test_normal_normal_against_closed_form():
    """tau known, mu ~ Normal(0, MU_SD): mu | y is normal, each theta_i | y is normal, and a
    new effect is Normal(m, sqrt(tau^2 + v)). The sampled posterior means must match within 4
    Monte Carlo standard errors (sd / sqrt(ESS) of the draws)."""
    rng = np.random.default_rng(3)
    n, tau = 8, 0.02
    se = rng.uniform(0.005, 0.02, n)
    y = rng.normal(0.01, tau, n) + se * rng.standard_normal(n)
    arc = archive_frame([f"e{i}" for i in range(n)], y, se)
    settings = A.Settings(draws=1000, tune=500, chains=2, sampler="pymc")
    fit = A.fit_form("normal", arc, settings, tau=tau)
    # closed form
    w = 1 / (tau**2 + se**2)
    v_mu = 1 / (1 / A.MU_SD**2 + w.sum())
    m_mu = v_mu * (w * y).sum()
    b = tau**2 / (tau**2 + se**2)  # weight of y_i in E[theta_i | mu, y_i]
    theta_mean = b * y + (1 - b) * m_mu
    mu = fit.hyper.mu
    ess = float(A._mcse(mu, 2))  # the MC error of the mean of mu
    assert mu.mean() == pytest.approx(m_mu, abs=4 * ess)
    assert mu.var() == pytest.approx(v_mu, rel=0.15)  # 2000 draws: the variance's MC error ~6%
    # each theta_i's posterior mean is linear in mu: its MC error is (1 - b_i) times mu's
    assert np.all(np.abs(fit.posterior.mean - theta_mean) <= 4 * (1 - b) * ess + 1e-12)
    # a new effect: Normal(m_mu, sqrt(tau^2 + v_mu))
    new = A.population_draws(fit.hyper, 0, 20, np.random.default_rng(1)).ravel()
    sd_new = np.sqrt(tau**2 + v_mu)
    assert new.mean() == pytest.approx(m_mu, abs=4 * (ess + sd_new / np.sqrt(new.size)))
    assert new.std() == pytest.approx(sd_new, rel=0.05)


def test_t_quadrature_matches_numerical_integration():
    """The Student-t marginal likelihood on the log-g grid against scipy's quadrature."""
    from scipy import integrate, stats

    for nu, tau, se, y in [
        (1.5, 0.02, 0.01, 0.08),
        (4.0, 0.01, 0.02, -0.03),
        (60.0, 0.03, 0.005, 0.01),
    ]:
        h = A.Hyper(
            "student_t",
            np.zeros(1),
            np.array([tau]),
            np.zeros((1, 1)),
            None,
            None,
            np.array([nu]),
            1,
        )
        _, _, _, ll = A.conditional(h, np.array([y]), np.array([se]), np.zeros(1, int), slice(0, 1))
        exact = integrate.quad(
            lambda t, nu=nu, tau=tau, y=y, se=se: (
                stats.t.pdf(t, nu, 0, tau) * stats.norm.pdf(y, t, se)
            ),
            -1,
            1,
            points=[0, y],
            limit=200,
        )[0]
        assert np.exp(ll[0, 0]) == pytest.approx(exact, rel=1e-3)


# ------------------------------------------------------------------ the example, end to end


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """`krsim archive --json` on the example archive (small draws): its JSON and what it printed
    on stderr; also fills the fit cache that the scenario tests read through `PRIOR_SETTINGS`."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["archive", str(EXAMPLE), "--json", "--draws", "250", "--rules"]) == 0
    return json.loads(out.getvalue()), err.getvalue()


@pytest.fixture(scope="module")
def example_json(example_run):
    return example_run[0]


def test_progress_lines_and_the_cached_fit_with_verbose(example_run, capsys):
    """Each form's fit is a progress line; run again, the fit comes from the cache, which
    ``-v`` says."""
    lines = [ln for ln in example_run[1].splitlines() if ln.startswith("fitting")]
    assert lines == [
        "fitting the normal form (1/3) ...",
        "fitting the spike form (2/3) ...",
        "fitting the student-t form (3/3) ...",
    ]
    assert main(["archive", str(EXAMPLE), "--json", "--draws", "250", "--rules", "-v"]) == 0
    err = capsys.readouterr().err
    assert "Archive fit read from the cache: " in err and "fitting" not in err


def test_json_fields(example_json):
    s = example_json
    assert s["experiments"] == 40
    assert s["form"] in A.FORMS
    for k in ("null_share", "new_effect"):
        lo, hi = s[k]["interval80"]
        assert lo <= s[k]["median"] <= hi
    assert 0 <= s["null_share"]["median"] <= 1
    assert set(s["shrunk"]) == set(read_archive(EXAMPLE).experiment)
    assert all({"lift", "shrunk"} <= set(v) for v in s["shrunk"].values())
    assert set(s["categories"]) == {"checkout", "onboarding"}
    for b in s["categories"].values():
        assert {"null_share", "new_effect", "experiments"} <= set(b)
    assert {"elpd_diff_t_vs_normal", "se"} == set(s["heavy_tail"])
    imp = s["shipped_impact"]
    assert imp["shrunk"] < imp["raw"]  # shipped winners shrink
    assert set(s["rules"]["rows"]) >= {"p_below_0.05", "p_win_95", "expected_loss", "mean_positive"}


def test_category_view_and_unknown_category(example_json, capsys):
    v = A.category_view(example_json, "checkout")
    assert v["category"] == "checkout"
    assert all(x["category"] == "checkout" for x in v["shrunk"].values())
    assert main(["archive", str(EXAMPLE), "--category", "checkuot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'checkout'" in err[0]


# ------------------------------------------------------------------- priors from the archive

SCENARIO = """
version: 1
title: t
period: week
horizon: 4
funnel:
  visits: {{}}
  buy: {{from: visits}}
history: {history}
options:
  keep: {{}}
  new:
    changes:
      - lift: {{stage: buy, factor: {factor}}}
key_results:
  - id: buys
    metric: buy
    target: +3%
"""


def _scenario(tmp_path: Path, factor: str) -> Path:
    hist = tmp_path / "history.csv"
    hist.write_text("period,visits,buy\n" + "".join(f"{i},1000,{100 + i}\n" for i in range(1, 9)))
    p = tmp_path / "s.yaml"
    p.write_text(SCENARIO.format(history=hist.name, factor=factor))
    return p


def test_scenario_prior_from_archive(tmp_path, example_json, monkeypatch):
    from simulator.api import load_scenario
    from simulator.engine import forecast
    from simulator.io.scenario import change_priors
    from simulator.model import priors

    monkeypatch.setattr(A, "PRIOR_SETTINGS", A.Settings(draws=250, tune=250))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "past.csv").write_bytes(EXAMPLE.read_bytes())
    p = _scenario(tmp_path, "{from_archive: {file: data/past.csv, category: checkout}}")
    s = load_scenario(p)
    draws = forecast.draw_change_params(s, 20_000)["new.lift.factor"]
    assert np.all(draws > 0)
    # the mixture reproduces the archive's predictive of a new checkout effect
    q = example_json["categories"]["checkout"]["prior"]["effect_quantiles"]
    med = np.median(draws) - 1
    assert med == pytest.approx(q["median"], abs=0.002)
    # with the team's interval: the product of the densities lies between the two
    p2 = _scenario(
        tmp_path,
        "{from_archive: {file: data/past.csv, category: checkout}, "
        "with: {lognormal_interval: [1.02, 1.09]}}",
    )
    s2 = load_scenario(p2)
    both = np.median(forecast.draw_change_params(s2, 20_000)["new.lift.factor"])
    team = float(priors.quantiles(change_priors(s2)["new.lift.factor"].with_, [0.5])[0])
    assert np.median(draws) < both < team
    assert "combined with the team's belief" in change_priors(s2)["new.lift.factor"].describe()


@pytest.mark.parametrize(
    "factor, message",
    [
        ("{from_archive: {file: data/nope.csv}}", "archive file 'data/nope.csv' not found"),
        (
            "{from_archive: {file: data/past.csv, category: chekout}}",
            "unknown category 'chekout' (did you mean 'checkout'?)",
        ),
        (
            "{from_archive: {file: data/past.csv}, with: {beta_interval: [0.1, 0.2]}}",
            "'with' takes the team's belief about the factor as a lognormal_interval",
        ),
    ],
)
def test_bad_archive_references(tmp_path, capsys, factor, message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "past.csv").write_bytes(EXAMPLE.read_bytes())
    p = _scenario(tmp_path, factor)
    assert main(["check", str(p)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and message in err[0], err


def test_mixture_and_combination():
    """The EM mixture recovers a two-normal mixture; the product with a normal is exact."""
    rng = np.random.default_rng(0)
    x = np.where(
        rng.uniform(size=40_000) < 0.6, rng.normal(0, 0.002, 40_000), rng.normal(0.02, 0.03, 40_000)
    )
    comp = A.fit_mixture(x, k=2, floor=0.001)
    assert [c[0] for c in comp] == pytest.approx([0.6, 0.4], abs=0.02)
    grid = np.linspace(-0.2, 0.2, 40_001)
    from scipy import stats

    dens = sum(w * stats.norm.pdf(grid, m, s) for w, m, s in comp) * stats.norm.pdf(
        grid, 0.05, 0.02
    )
    dens /= np.trapezoid(dens, grid)
    prod = A.combine(comp, 0.05, 0.02)
    want = sum(w * stats.norm.pdf(grid, m, s) for w, m, s in prod)
    assert np.max(np.abs(dens - want)) < 1e-6 * np.max(want)


def test_pymc_side_of_the_archive_prior(tmp_path, example_json, monkeypatch):
    """`krsim compare` builds the prior with `priors.pymc_dist`: its draws (a NormalMixture on
    the log factor) match numpy's (`priors.sample`) within the Monte Carlo error of a median."""
    import pymc as pm

    from simulator.api import load_scenario
    from simulator.io.scenario import change_priors
    from simulator.model import priors

    monkeypatch.setattr(A, "PRIOR_SETTINGS", A.Settings(draws=250, tune=250))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "past.csv").write_bytes(EXAMPLE.read_bytes())
    p = _scenario(
        tmp_path,
        "{from_archive: {file: data/past.csv, category: checkout}, "
        "with: {lognormal_interval: [1.02, 1.09]}}",
    )
    prior = change_priors(load_scenario(p))["new.lift.factor"]
    with pm.Model():
        priors.pymc_dist("f", prior)
        draws = pm.draw(pm.modelcontext(None)["f"], draws=8000, random_seed=1)
    q = priors.quantiles(prior, [0.25, 0.5, 0.75])
    # the sample median's sd is 1 / (2 f(median) sqrt(n)), f ~ 0.5 / IQR for these shapes
    tol = 4 * (q[2] - q[0]) / np.sqrt(len(draws))
    assert np.median(draws) == pytest.approx(q[1], abs=tol)


def test_compare_figure_draws_the_archive_prior_density():
    """The belief figure's prior curve for an archive prior is the density the draws come from:
    it integrates to 1 and its mean matches the draws' mean within 4 Monte Carlo errors."""
    from scipy import integrate

    from simulator.io.scenario import change_priors, read_scenario
    from simulator.model.priors import sample
    from simulator.report.compare_plots import prior_pdf

    root = Path(__file__).resolve().parent.parent
    s = read_scenario(root / "scenarios" / "archive_checkout.yaml")
    prior = next(p for p in change_priors(s).values() if p.kind == "from_archive")
    pdf = lambda x: float(prior_pdf(prior, np.array([x]))[0])  # noqa: E731
    assert integrate.quad(pdf, 1e-6, 5, limit=400, points=[1.0])[0] == pytest.approx(1, abs=1e-6)
    mean = integrate.quad(lambda x: x * pdf(x), 1e-6, 5, limit=400, points=[1.0])[0]
    draws = sample(prior, 40_000, np.random.default_rng(7))
    assert abs(draws.mean() - mean) < 4 * draws.std() / np.sqrt(draws.size)
