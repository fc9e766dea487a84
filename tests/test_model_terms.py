"""Each term of the funnel model on its own, in a tiny PyMC model and without sampling: the
variables it adds, their shapes, and the values of what it returns against the same quantities
written out with numpy; then what `build_model` composes from them, and `fit` around a stand-in
sampler (prior draws)."""

from __future__ import annotations

import datetime as dt
import logging
import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import special, stats

from simulator import load_scenario, model
from simulator.io import season
from simulator.io.data import read_history
from simulator.io.scenario import ModelBlock, Structure
from simulator.model import design, experiment, rates, terms, traffic
from simulator.model.quiet import quiet_warnings
from simulator.model.value_terms import add_value_likelihood

FAST = "FAST_COMPILE"
DATES = [dt.date(2023, 1, 2) + dt.timedelta(weeks=i) for i in range(30)]


def draw(variables, seed: int = 1):
    return pm.draw(variables, random_seed=seed, mode=FAST)


def names(variables) -> list[str]:
    return [v.name for v in variables]


def at_point(m: pm.Model, outputs, point: dict):
    """``outputs`` evaluated with the model's free variables at ``point`` (value space)."""
    fn = m.compile_fn(
        m.replace_rvs_by_values(outputs), inputs=m.value_vars, on_unused_input="ignore", mode=FAST
    )
    return fn(point)


# ---------------------------------------------------------------------------- profiles


def test_profile_of_one_series_is_shrunk_by_harmonic_centred_or_not():
    X, kk = season.fourier(DATES, 2), season.harmonics(2)
    with pm.Model() as m:
        effect = terms.profile("season", X, 0.5, harmonics=kk)
    assert names(m.free_RVs) == ["season_sd", "season_z"]
    assert names(m.deterministics) == ["season_beta"]
    sd, z, beta, e = draw([m["season_sd"], m["season_z"], m["season_beta"], effect])
    assert np.allclose(beta, sd * z / kk)
    assert e.shape == (len(DATES),) and np.allclose(e, X @ beta)

    with pm.Model() as m:  # a clear profile: the coefficients themselves
        terms.profile("season", X, 0.5, clear=True, harmonics=kk)
    assert names(m.free_RVs) == ["season_sd", "season_beta"] and not m.deterministics
    assert m["season_beta"].type.shape == (X.shape[1],)


def test_profile_of_rows_centres_the_clear_rows_only():
    X, kk = season.fourier(DATES, 2), season.harmonics(2)
    with pm.Model(coords={"node": ["a", "b", "c"]}) as m:
        effect = terms.profile(
            "rate_season",
            X,
            0.5,
            rows=3,
            dims="node",
            clear=np.array([True, False, True]),
            harmonics=kk,
        )
    assert names(m.free_RVs) == ["rate_season_sd", "rate_season_bc", "rate_season_z"]
    sd, bc, z, beta, e = draw(
        [
            m["rate_season_sd"],
            m["rate_season_bc"],
            m["rate_season_z"],
            m["rate_season_beta"],
            effect,
        ]
    )
    assert bc.shape == (2, 4) and z.shape == (1, 4)
    assert np.allclose(beta[[0, 2]], bc)
    assert np.allclose(beta[1], sd[1] * z[0] / kk)
    assert e.shape == (3, len(DATES)) and np.allclose(e, beta @ X.T)


def test_day_of_week_profile_of_rows_is_not_divided():
    days = [dt.date(2025, 1, 6) + dt.timedelta(days=i) for i in range(10)]
    W = season.weekday(days)
    with pm.Model(coords={"value": ["x", "y"]}) as m:
        effect = terms.profile("value_weekday", W, 0.5, rows=2, dims="value")
    assert names(m.free_RVs) == ["value_weekday_sd", "value_weekday_z"]
    sd, z, beta, e = draw(
        [m["value_weekday_sd"], m["value_weekday_z"], m["value_weekday_beta"], effect]
    )
    assert z.shape == (2, 6)
    assert np.allclose(beta, sd[:, None] * z) and np.allclose(e, beta @ W.T)


# ------------------------------------------------------------- trends, walks, events, mixture


def test_linear_trend_of_one_series_and_of_rows():
    t = model.period_times(7)
    with pm.Model(coords={"node": ["a", "b"]}) as m:
        slope, effect = terms.linear_trend("trend", 0.05, t)
        slopes, effects = terms.linear_trend("rate_trend", 0.05, t, dims="node")
    s, e, ss, es = draw([slope, effect, slopes, effects])
    assert np.allclose(e, s * t) and np.allclose(es, ss[:, None] * t)
    assert names(m.free_RVs) == ["trend", "rate_trend"]


def test_walk_is_its_basis_times_standard_normals_and_keeps_its_end():
    B = design.walk_basis(20)
    with pm.Model(coords={"node": ["a", "b", "c"]}) as m:
        path = terms.walk("", "traffic_walk_last", B, 0.05)
        paths = terms.walk("rate_", "rate_walk_last", B, 0.05, rows=3, dims="node")
    assert names(m.free_RVs) == ["drift_sd", "drift_z", "rate_drift_sd", "rate_drift_z"]
    sd, z, p, last = draw([m["drift_sd"], m["drift_z"], path, m["traffic_walk_last"]])
    assert np.allclose(p, sd * B @ z) and last == pytest.approx(p[-1])
    sd, z, p, last = draw([m["rate_drift_sd"], m["rate_drift_z"], paths, m["rate_walk_last"]])
    assert z.shape == (3, B.shape[1])
    assert np.allclose(p, sd[:, None] * z @ B.T) and np.allclose(last, p[:, -1])


def test_drift_mixture_sums_the_indicator_out():
    with pm.Model() as m:
        on, off = pm.Normal("on", -3.0, 2.0), pm.Normal("off", -2.0, 2.0)
        terms.drift_mixture("mix", "weight", 0.3, on, off)
        terms.drift_mixture("mix0", "weight0", 0.3, on)  # the steady branch's density is 0
    a, b, pot, w, pot0, w0 = draw([on, off, m["mix"], m["weight"], m["mix0"], m["weight0"]])
    assert pot == pytest.approx(np.logaddexp(np.log(0.3) + a, np.log(0.7) + b), rel=1e-12)
    assert w == pytest.approx(special.expit(np.log(0.3) + a - np.log(0.7) - b), rel=1e-12)
    assert pot0 == pytest.approx(np.logaddexp(np.log(0.3) + a, np.log(0.7)), rel=1e-12)
    assert w0 == pytest.approx(special.expit(np.log(0.3 / 0.7) + a), rel=1e-12)


def test_one_off_effects_map_each_effect_to_its_periods():
    E = np.zeros((6, 2))
    E[[1, 4], [0, 1]] = 1.0
    M = np.zeros((2, 6, 3))
    M[[0, 0, 1], [1, 2, 2], [0, 1, 2]] = 1.0
    with pm.Model() as m:
        traffic_effect = terms.one_off_effects("event_traffic", E)
        rate_effect = terms.one_off_effects("event_rate", M)
    e, te, r, re = draw([m["event_traffic"], traffic_effect, m["event_rate"], rate_effect])
    assert np.allclose(te, E @ e) and te[[0, 2, 3, 5]].tolist() == [0, 0, 0, 0]
    assert re.shape == (2, 6) and np.allclose(re, M @ r)


# ---------------------------------------------------------------------------- period effects


def test_iid_period_effects_centred_and_not():
    T = 5
    base = np.array([[0.1] * T, [-1.0] * T])
    with pm.Model() as m:
        sigma = pm.HalfNormal("sigma", 1.0, shape=2)
        eta = terms.period_effects(
            "rate", pt.as_tensor(base), sigma, None, np.array([True, False]), T
        )
    assert names(m.free_RVs) == ["sigma", "rate_z", "rate_eta_c"]
    s, z, x, e = draw([sigma, m["rate_z"], m["rate_eta_c"], eta])
    assert z.shape == x.shape == (1, T)
    assert np.allclose(e[0], x[0]) and np.allclose(e[1], base[1] + s[1] * z[0])


def test_ar1_period_effects_carry_the_ar1_density():
    """Non-centred rows are the AR(1) filter of their standard normals; a centred row is a flat
    variable whose potential is the stationary AR(1) log density around the base."""
    T, sigma, rho = 6, np.array([0.3, 0.5]), np.array([0.6, 0.2])
    base = np.array([[0.2] * T, [-0.5] * T])
    with pm.Model() as m:
        eta = terms.period_effects(
            "rate",
            pt.as_tensor(base),
            pt.as_tensor(sigma),
            pt.as_tensor(rho),
            np.array([True, False]),
            T,
        )
    assert names(m.free_RVs) == ["rate_z", "rate_eta_c"] and names(m.potentials) == ["rate_ar1"]
    rng = np.random.default_rng(3)
    point = {"rate_z": rng.standard_normal((1, T)), "rate_eta_c": rng.standard_normal((1, T))}
    pot, e = at_point(m, [m["rate_ar1"], eta], point)
    dev = point["rate_eta_c"][0] - base[0]
    innov_sd = sigma[0] * np.sqrt(1 - rho[0] ** 2)
    want = (
        stats.norm.logpdf(dev[0], 0, sigma[0])
        + stats.norm.logpdf(dev[1:] - rho[0] * dev[:-1], 0, innov_sd).sum()
    )
    assert pot == pytest.approx(want, rel=1e-10)
    filtered = terms.ar1_filter(point["rate_z"], sigma[1:], rho[1:], np, T)
    assert np.allclose(e[1], base[1] + filtered[0]) and np.allclose(e[0], point["rate_eta_c"][0])


def test_ar1_filter_is_the_recursion():
    """In numpy, and in PyTensor compiled by numba as the sampler's graph is (52 periods: the
    doubling scan's powers of rho reach 32)."""
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    z, sigma, rho = (
        rng.standard_normal((3, 52)),
        np.array([0.2, 1.0, 0.5]),
        np.array([0.9, 0.1, 0.5]),
    )
    want = np.zeros_like(z)
    want[:, 0] = sigma * z[:, 0]
    for t in range(1, z.shape[1]):
        want[:, t] = rho * want[:, t - 1] + sigma * np.sqrt(1 - rho**2) * z[:, t]
    assert np.allclose(terms.ar1_filter(z, sigma, rho, np), want)
    zt, st, rt = pt.matrix("z"), pt.vector("sigma"), pt.vector("rho")
    f = pytensor.function([zt, st, rt], terms.ar1_filter(zt, st, rt, pt, 52), mode="NUMBA")
    assert np.allclose(f(z, sigma, rho), want)


# --------------------------------------------------------------------------------- traffic


def test_traffic_variation_with_and_without_ar1():
    T = 9
    with pm.Model(coords={"period": range(T)}) as m:
        alpha, u = traffic.variation(ModelBlock(), T)
    assert u is None and names(m.free_RVs) == ["alpha"]
    with pm.Model(coords={"period": range(T)}) as m:
        alpha, u = traffic.variation(ModelBlock(period_effects="ar1"), T)
    assert names(m.free_RVs) == ["traffic_sd", "traffic_share", "traffic_rho", "traffic_z"]
    sd, share, a, sig, uu = draw(
        [m["traffic_sd"], m["traffic_share"], alpha, m["traffic_sigma"], u]
    )
    assert a == pytest.approx(1 / max((1 - share) * sd**2, 1e-8))
    assert sig == pytest.approx(np.sqrt(share) * sd) and uu.shape == (T,)


def test_traffic_likelihood_leaves_missing_periods_out_and_weighs_a_walk():
    y = np.array([100, 120, 90, 110, 105])
    seen = np.array([True, True, False, True, True])
    with pm.Model(coords={"period": range(5)}) as m:
        data = pm.Data("traffic_count", y, dims="period")
        log_mu = pm.Normal("level", 4.6, 0.1) + pt.zeros(5)
        traffic.likelihood(data, y, seen, log_mu, 50.0)
    obs = m.rvs_to_values[m["traffic_obs"]]
    assert np.asarray(obs.data).tolist() == [100, 120, 110, 105]
    lp = m.compile_logp(vars=[m["traffic_obs"]], mode=FAST)({"level": np.array(4.7)})
    want = stats.nbinom.logpmf(y[seen], 50.0, 50.0 / (50.0 + np.exp(4.7))).sum()
    assert lp == pytest.approx(want, rel=1e-7)  # scipy's and PyMC's log-gamma sums

    walk = np.linspace(-0.1, 0.1, 5)
    with pm.Model(coords={"period": range(5)}) as m:
        data = pm.Data("traffic_count", y, dims="period")
        log_mu = pm.Normal("level", 4.6, 0.1) + pt.zeros(5)
        traffic.likelihood(data, y, seen, log_mu, 50.0, pt.as_tensor(walk), drift_prob=0.4)
    assert names(m.potentials) == ["traffic_obs"] and names(m.deterministics) == ["drift_weight"]
    (pot,) = at_point(m, [m["traffic_obs"]], {"level": np.array(4.7)})

    def nb(lm):
        return stats.nbinom.logpmf(y[seen], 50.0, 50.0 / (50.0 + np.exp(lm[seen]))).sum()

    want = np.logaddexp(np.log(0.4) + nb(4.7 + walk), np.log(0.6) + nb(np.full(5, 4.7)))
    assert pot == pytest.approx(want, rel=1e-7)


# ----------------------------------------------------------------------------------- rates


def test_rate_likelihood_whole_or_by_observed_cell():
    n_par = np.array([[100, 90, 80], [50, 60, 70]])
    n_node = np.array([[30, 20, 25], [5, 6, 7]])
    data = {"parent_count": n_par, "node_count": n_node}
    eta = np.zeros((2, 3))
    with pm.Model(coords={"node": ["a", "b"], "period": range(3)}) as m:
        rates.likelihood(pt.as_tensor(eta), n_par, n_node, data, np.ones((2, 3), bool), whole=True)
    assert m.named_vars_to_dims["rate_obs"] == ("node", "period")
    seen = np.array([[True, False, True], [True, True, True]])
    with pm.Model() as m:
        rates.likelihood(pt.as_tensor(eta), n_par, n_node, data, seen, whole=True)
    assert np.asarray(m.rvs_to_values[m["rate_obs"]].data).tolist() == [30, 25, 5, 6, 7]


def test_rate_walk_delta_is_what_the_walk_changes():
    """Non-centred rows: the walk moves their binomials' logits; centred rows: it moves the mean
    their period rates scatter around."""
    rng = np.random.default_rng(4)
    N, T = 3, 6
    n_par = rng.integers(200, 400, (N, T))
    n_node = rng.binomial(n_par, 0.3)
    eta, base = rng.normal(-0.8, 0.2, (N, T)), np.full((N, T), -0.85)
    walk, sigma = rng.normal(0, 0.1, (N, T)), np.array([0.2, 0.3, 0.25])
    centred = np.array([False, True, False])
    seen = np.ones((N, T), bool)
    seen[0, 2] = False
    delta, eta_w = rates.walk_delta(
        *(pt.as_tensor(x) for x in (eta, base, walk, sigma)), centred, (n_par, n_node), seen
    )

    def binom(e, rows):
        return sum(
            stats.binom.logpmf(
                n_node[i][seen[i]], n_par[i][seen[i]], special.expit(e[i][seen[i]])
            ).sum()
            for i in rows
        )

    dev = eta[1] - base[1]
    want = binom(eta + walk, [0, 2]) - binom(eta, [0, 2])
    want += (stats.norm.logpdf(dev, walk[1], sigma[1]) - stats.norm.logpdf(dev, 0, sigma[1])).sum()
    assert float(delta.eval()) == pytest.approx(want, rel=1e-9)
    assert np.allclose(eta_w.eval(), eta + walk * ~centred[:, None])


# ---------------------------------------------------------------------------------- values


def test_value_terms_share_the_profile_and_return_what_the_experiment_reads():
    rng = np.random.default_rng(5)
    T = len(DATES)
    n = rng.integers(50, 80, (1, T))
    v = rng.gamma(n * 2.0, 30.0 / 2.0)
    X, kk = season.fourier(DATES, 2), season.harmonics(2)
    with pm.Model(coords={"value": ["purchase"], "value_period": range(T)}) as m:
        out = add_value_likelihood(
            n, v, ModelBlock(rate_trend=True), model.period_times(T), season=(X, kk)
        )
    assert {"value_season_sd", "value_season_z", "value_trend"} <= set(names(m.free_RVs))
    assert out.trend is m["value_trend"] and out.k is m["value_k"] and out.mu is m["value_mu"]
    sd, z, beta = draw([m["value_season_sd"], m["value_season_z"], m["value_season_beta"]])
    assert np.allclose(beta, sd[:, None] * z / kk)
    assert np.asarray(m.rvs_to_values[m["value_obs"]].data).shape == (T,)


# ------------------------------------------------------------------------------ experiment


def test_experiment_likelihood_takes_the_means_it_needs(small_funnel, tmp_path):
    """The experiment's term reads the nodes' means and sds it is given, not variables found by
    name: here a model without ``rate_mu`` at all."""
    s = load_scenario(small_funnel())
    nodes = Structure.of(s).nodes
    rows = ["arm,visits,form,booking,signup,member"]
    rows += ["status_quo,1000,300,150,50,90", "gate,1000,300,140,80,90"]
    (tmp_path / "results.csv").write_text("\n".join(rows) + "\n")
    exp = experiment.read_results(s, tmp_path / "results.csv")
    with pm.Model(coords={"node": list(nodes)}) as m:
        mean = pm.Normal("mean", -1.0, 0.5, dims="node")
        sd = pm.HalfNormal("sd", 0.3, dims="node")
        eta = experiment.add_likelihood(s, exp, nodes, mean, sd)
    assert eta is m["exp_rate_eta"] and "rate_mu" not in m.named_vars
    assert "gate.gate.pass" in names(m.free_RVs)
    assert {"exp_obs"} == set(names(m.observed_RVs)) and "exp_gate_mixed" in names(m.potentials)
    assert np.isfinite(m.compile_logp(mode=FAST)(m.initial_point()))


# ---------------------------------------------------------------------------- the design


def test_event_designs_for_the_traffic_and_the_rates(small_funnel):
    s = load_scenario(
        small_funnel(
            "events: [{label: a, first: '2025-01-02', last: '2025-01-03', stages: [visits]},"
            " {label: b, first: '2025-01-05', last: '2025-01-05', stages: [form, member]}]\n"
        )
    )
    h = read_history(s)
    E, M = design.event_designs(s, h, len(h) + 2)
    assert E.shape == (len(h) + 2, 2) and np.flatnonzero(E.sum(axis=1)).tolist() == [1, 2]
    nodes = Structure.of(s).nodes
    assert M.shape == (len(nodes), len(h) + 2, 2)
    hit = np.argwhere(M.sum(axis=2))
    assert [(nodes[i], t) for i, t in hit] == [("form", 4), ("member", 4)]


def test_design_of_a_history_and_launched_periods(small_funnel):
    s = load_scenario(small_funnel())
    h = read_history(s)
    la = model.Launched("gate", h)  # any table of counts after the history
    d = design.design_of(s, h, la)
    assert (d.T0, d.T) == (len(h), 2 * len(h))
    assert d.calendar.weekday.shape == (d.T, 6) and d.calendar.season is None  # daily, short
    assert d.traffic_walk.shape[0] == d.T and d.rate_walk.shape[0] == d.T
    assert d.data["level_centre"] == design.model_data(s, h)["level_centre"]
    assert np.array_equal(d.centred, design.default_centred(s, h))


# ----------------------------------------------------------------------- the composition


FREE = {
    "default": [
        "level",
        "weekday_sd",
        "weekday_z",
        "drift_sd",
        "drift_z",
        "alpha",
        "rate_mu",
        "rate_sigma",
        "rate_weekday_sd",
        "rate_weekday_z",
        "rate_drift_sd",
        "rate_drift_z",
        "rate_z",
        "rate_eta_c",
    ],
    "ar1": [
        "level",
        "weekday_sd",
        "weekday_z",
        "trend",
        "traffic_sd",
        "traffic_share",
        "traffic_rho",
        "traffic_z",
        "rate_mu",
        "rate_sigma",
        "rate_weekday_sd",
        "rate_weekday_z",
        "rate_trend",
        "rate_rho",
        "rate_z",
        "rate_eta_c",
    ],
    "plain": ["level", "alpha", "rate_mu", "rate_sigma", "rate_z", "rate_eta_c"],
}
SETTINGS = {
    "default": "",
    "ar1": "model: {period_effects: ar1, trend: true, rate_trend: true}\n",
    "plain": "model: {drift: none, seasonality: none}\n",
}


@pytest.mark.parametrize("variant", list(FREE))
def test_build_model_composes_the_terms_in_order(small_funnel, variant):
    s = load_scenario(small_funnel(SETTINGS[variant]))
    m = model.build_model(s, read_history(s), centred=np.array([True, False, True, False]))
    assert names(m.free_RVs) == FREE[variant]
    assert m["rate_z"].type.shape == (2, 8) and m["rate_eta_c"].type.shape == (2, 8)
    assert ("rate_drift" in names(m.potentials)) == (variant == "default")
    assert np.isfinite(m.compile_logp(mode=FAST)(m.initial_point()))


def prior_datatree(m: pm.Model, draws: int = 20):
    """Prior draws of a model in two chains, as a DataTree whose ``posterior`` group has them
    (what a fit's code reads, without NUTS)."""
    import xarray as xr

    chains = []
    for seed in (1, 2):
        with m, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
            prior = pm.sample_prior_predictive(
                draws, random_seed=seed, compile_kwargs={"mode": FAST}
            )
        chains.append(prior["prior"].to_dataset().assign_coords(chain=[seed - 1]))
    return xr.DataTree.from_dict({"posterior": xr.concat(chains, dim="chain")})


def test_fit_logs_caches_and_records_provenance(small_funnel, monkeypatch, tmp_path, caplog):
    """`fit` around a stand-in sampler: the progress line at INFO, the draws it keeps, the
    provenance in the DataTree, and a second call read from the cache (at DEBUG)."""
    from simulator.model import fitting

    monkeypatch.setenv("KRSIM_CACHE_DIR", str(tmp_path))
    s = load_scenario(small_funnel("model: {period_effects: ar1}\n"))
    h = read_history(s)
    nodes = Structure.of(s).nodes
    m = model.build_model(s, h, centred=np.zeros(len(nodes), bool))  # no flat variable to draw
    monkeypatch.setattr(fitting, "sample", lambda *a, **k: prior_datatree(m))

    with caplog.at_level(logging.DEBUG, logger="simulator"):
        f = model.fit(s, h)
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert caplog.records[0].getMessage().startswith("Fitting the funnel model to 8 periods")
    assert f.arrays["rate_elast"].shape == f.arrays["rate_mu"].shape == (2, 20, len(nodes))
    assert f.arrays["traffic_elast"].shape == f.arrays["level"].shape == (2, 20)
    attrs = f.datatree.attrs
    assert attrs["fit_key"] == f.key == model.fit_key(s, h)
    assert attrs["scenario"] == s.title and set(attrs["versions"]) >= {"pymc", "numpy"}
    assert {"krsim_version", "created"} <= set(attrs)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="simulator"):
        again = model.fit(s, h)
    assert again.from_cache and [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert np.array_equal(again.arrays["rate_mu"], f.arrays["rate_mu"])
    assert again.datatree.attrs["fit_key"] == f.key  # the trace written with its provenance


def test_only_the_named_warnings_are_silenced():
    with pytest.warns(UserWarning, match="something else") as record, quiet_warnings():
        warnings.warn(
            "Using NumPy C-API based implementation for BLAS functions.", UserWarning, stacklevel=1
        )
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in record] == ["something else"]
