"""The calendar in the model: the yearly profile, its forecast, and empty cells as missing data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from simulator import load_scenario
from simulator.io import season
from simulator.io.data import CountTable, read_history
from simulator.io.season import fourier, future_dates, seasonal
from simulator.model import fit, walk_basis

FUNNEL = """
title: season
horizon: 13
history: history.csv
funnel: {visits: {}, sale: {from: visits}}
options: {keep: {}}
key_results: [{id: sales, metric: sale, target: +5%}]
"""


def test_fourier_terms_repeat_every_year_and_future_dates_keep_the_step():
    d = [dt.date(2021, 3, 1), dt.date(2022, 3, 1), dt.date(2025, 3, 1)]
    X = fourier(d, 3)
    assert X.shape == (3, 6)
    # a year is 365 or 366 days, the terms' period 365.25: equal within a quarter-day's phase
    assert np.allclose(X[0], X[1], atol=2 * np.pi * 3 * 0.75 / 365.25)
    weeks = [dt.date(2024, 1, 1) + dt.timedelta(weeks=i) for i in range(10)]
    assert future_dates(weeks, 2) == [dt.date(2024, 3, 11), dt.date(2024, 3, 18)]
    months = [dt.date(2024, m, 31) if m in (1, 3) else dt.date(2024, m, 29) for m in (1, 2, 3)]
    assert future_dates(months, 2) == [dt.date(2024, 4, 30), dt.date(2024, 5, 31)]


def test_auto_seasonality_needs_two_years_of_dates():
    weeks = [dt.date(2024, 1, 1) + dt.timedelta(weeks=i) for i in range(104)]
    assert seasonal("auto", weeks)[0]
    on, note = seasonal("auto", weeks[:60])
    assert not on and "too short" in note
    assert not seasonal("auto", None)[0]
    assert not seasonal("none", weeks)[0]
    assert seasonal("yearly", weeks[:60])[0]


def test_yearly_seasonality_needs_dated_labels(tmp_path: Path):
    from simulator.io.scenario import InputError

    (tmp_path / "history.csv").write_text(
        "period,visits,sale\n" + "".join(f"{i},100,10\n" for i in range(20))
    )
    (tmp_path / "s.yaml").write_text(FUNNEL + "model: {seasonality: yearly}\n")
    with pytest.raises(InputError, match="seasonality: `yearly` needs period labels"):
        load_scenario(tmp_path / "s.yaml")


def test_walk_basis_is_a_random_walk_without_the_level():
    T = 100
    # with many terms the expansion is the walk itself (the truncation error in a variance is
    # about 2 T / (pi^2 M) = 0.01 here)
    B = walk_basis(T, M=2000)
    cov = B @ B.T
    # a random walk minus its mean over the periods: Var(W_t - mean W) in closed form
    s = np.arange(1, T + 1)
    full = np.minimum.outer(s, s).astype(float)
    J = np.eye(T) - 1 / T
    assert np.allclose(cov, J @ full @ J, atol=0.03)
    assert np.allclose(B.mean(axis=0), 0)
    Bt = walk_basis(T, trend=True)
    assert np.allclose((s - s.mean()) @ Bt, 0)


def _write(tmp_path: Path, labels, visits, sale, model: str, period: str = "week") -> object:
    rows = ["period,visits,sale"] + [
        f"{a},{b},{c}" for a, b, c in zip(labels, visits, sale, strict=True)
    ]
    (tmp_path / "history.csv").write_text("\n".join(rows) + "\n")
    text = FUNNEL + f"period: {period}\n"
    (tmp_path / "s.yaml").write_text(text + f"model: {model}\n")
    return load_scenario(tmp_path / "s.yaml")


def test_seasonal_profile_is_recovered_and_forecast(tmp_path: Path):
    rng = np.random.default_rng(11)
    T = 156
    dates = [dt.date(2022, 1, 3) + dt.timedelta(weeks=i) for i in range(T)]
    ty = 2 * np.pi * np.array([d.toordinal() for d in dates]) / 365.25
    amp, phase = 0.4, 1.0
    log_mu = np.log(4000) + amp * np.cos(ty - phase)
    visits = rng.poisson(rng.gamma(60.0, np.exp(log_mu) / 60.0))
    sale = rng.binomial(visits, 0.1)
    s = _write(
        tmp_path,
        [d.isoformat() for d in dates],
        visits,
        sale,
        "{chains: 2, draws: 300, until_sound: false}",
    )
    f = fit(s, read_history(s))
    assert f.calendar["seasonal"]
    # the profile at eight points of the year, against the truth (the profile's mean over the
    # history is carried by the level, so both are compared as deviations from that mean)
    grid = [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in np.linspace(0, 320, 8)]
    Xg = fourier(grid, s.model.season_terms)
    Xh = fourier(dates, s.model.season_terms)
    prof = f.flat("season_beta") @ Xg.T - (f.flat("season_beta") @ Xh.T).mean(axis=1)[:, None]
    tg = 2 * np.pi * np.array([d.toordinal() for d in grid]) / 365.25
    truth = amp * np.cos(tg - phase) - (amp * np.cos(ty - phase)).mean()
    lo, hi = np.quantile(prof, [0.03, 0.97], axis=0)
    misses = int(np.sum((truth < lo) | (truth > hi)))
    # neighbouring points of one profile are correlated, so the binomial allowance is generous
    assert misses <= int(stats.binom.ppf(0.99, len(grid), 0.06)), (truth, lo, hi)
    # the forecast follows the season: its median traffic moves with the true profile
    from simulator.engine.forecast import prepare

    H = 13
    med = np.median(np.log(prepare(s, f, H).traffic_mean), axis=0)
    fut = 2 * np.pi * np.array([d.toordinal() for d in future_dates(dates, H)]) / 365.25
    assert np.corrcoef(med, np.cos(fut - phase))[0, 1] > 0.9


@pytest.mark.slow  # two fits compared within Monte Carlo error (`make validate`)
def test_a_blank_row_is_the_row_left_out(tmp_path: Path):
    """Empty cells are missing data: with exchangeable periods (no season, no drift), a history
    with one row blanked has the posterior of the history without that row."""
    rng = np.random.default_rng(5)
    T, k = 40, 17
    visits = rng.poisson(rng.gamma(50.0, 3000 / 50.0, T))
    sale = rng.binomial(visits, 1 / (1 + np.exp(-(-2.0 + 0.15 * rng.standard_normal(T)))))
    model = "{drift: none, seasonality: none, chains: 2, draws: 600, until_sound: false}"
    s = _write(tmp_path, range(T), visits, sale, model)
    h = read_history(s)
    blank = {c: np.arange(T) == k for c in ("visits", "sale")}
    wild = {
        c: np.where(np.arange(T) == k, 10**6 if c == "visits" else 7, v)
        for c, v in h.counts.items()
    }
    blanked = CountTable(h.path, h.key, h.labels, wild, missing=blank)
    keep = np.arange(T) != k
    dropped = CountTable(
        h.path, h.key, tuple(np.array(h.labels)[keep]), {c: v[keep] for c, v in h.counts.items()}
    )
    a, b = fit(s, blanked), fit(s, dropped)
    import arviz as az

    for name in ("level", "alpha", "rate_mu", "rate_sigma"):
        xa, xb = a.arrays[name].reshape(a.chains, -1), b.arrays[name].reshape(b.chains, -1)
        se = np.hypot(float(az.mcse(xa)), float(az.mcse(xb)))
        # within 4 Monte Carlo standard errors (each check fails with chance 6e-5 if equal)
        assert abs(xa.mean() - xb.mean()) < 4 * se, name
    # and the blanked value itself played no part: the fit is far from a 10^6 visit week
    assert np.exp(a.flat("level").mean()) < 2 * visits.mean()


def test_an_event_absorbs_a_one_off_shock(tmp_path: Path):
    """A three-week campaign that tripled traffic: declared as an event, it gets its own effect
    and the regular week-to-week variation is learnt as if it had not happened."""
    rng = np.random.default_rng(3)
    T, alpha = 52, 100.0
    mu = np.full(T, 5000.0)
    mu[20:23] *= 3.0
    visits = rng.poisson(rng.gamma(alpha, mu / alpha))
    sale = rng.binomial(visits, 0.1)
    labels = [f"w{i}" for i in range(T)]
    base = "{drift: none, chains: 2, draws: 400, until_sound: false}"
    plain = _write(tmp_path, labels, visits, sale, base)
    f_plain = fit(plain, read_history(plain))
    (tmp_path / "s.yaml").write_text(
        FUNNEL
        + f"model: {base}\n"
        + "events: [{label: campaign, first: w20, last: w22, stages: [visits]}]\n"
    )
    with_event = load_scenario(tmp_path / "s.yaml")
    f_event = fit(with_event, read_history(with_event))
    lo, hi = np.quantile(f_event.flat("alpha"), [0.005, 0.995])
    assert lo <= alpha <= hi
    # without the event the shock is read as regular variation: far more overdispersion
    assert np.median(f_plain.flat("alpha")) < 0.2 * alpha
    # and each of its three weeks has its own effect, the shock's size, log 3 (sd about
    # sqrt(1/alpha + 1/mu) each)
    eff = f_event.flat("event_traffic")
    assert eff.shape[1] == 3
    for week in range(3):
        e = eff[:, week]
        assert abs(np.median(e) - np.log(3.0)) < 4 * e.std() + 0.02


def test_events_must_name_periods_and_stages_that_exist(tmp_path: Path):
    from simulator.io.scenario import InputError

    labels = [f"w{i}" for i in range(20)]
    _write(tmp_path, labels, [100] * 20, [10] * 20, "{}")

    def problems(events: str) -> str:
        (tmp_path / "s.yaml").write_text(FUNNEL + f"events: {events}\n")
        with pytest.raises(InputError) as e:
            load_scenario(tmp_path / "s.yaml")
        return "\n".join(e.value.problems)

    text = problems("[{label: a, first: w3, last: w9, stages: [visits, sael]}]")
    assert "events[0].stages[1]: unknown stage or segment 'sael'" in text
    text = problems("[{label: a, first: w3, last: w9x}, {label: b, first: w9, last: w3}]")
    assert "events[0].last: 'w9x' is not a period of the history" in text
    assert "events[1]: first (w9) comes after last (w3)" in text


def test_daily_data_get_a_day_of_week_profile(tmp_path: Path):
    from simulator.engine.forecast import prepare

    rng = np.random.default_rng(9)
    T = 91
    dates = [dt.date(2025, 1, 6) + dt.timedelta(days=i) for i in range(T)]
    weekend = np.array([d.weekday() >= 5 for d in dates])
    mu = np.where(weekend, 600.0, 1500.0)  # weekends at 40% of weekdays
    visits = rng.poisson(rng.gamma(80.0, mu / 80.0))
    sale = rng.binomial(visits, 0.1)
    labels = [d.isoformat() for d in dates]
    # constant levels: the day-of-week profile is the point, and the drift doubles the compile
    model = "{chains: 2, draws: 300, until_sound: false, drift: none}"
    s = _write(tmp_path, labels, visits, sale, model, period="day")
    f = fit(s, read_history(s))
    assert f.calendar["weekly"] and not f.calendar["seasonal"]
    H = 14
    med = np.median(prepare(s, f, H).traffic_mean, axis=0)
    fut = future_dates(dates, H)
    wk = np.array([d.weekday() >= 5 for d in fut])
    # the forecast's weekend to weekday ratio is the truth's, 0.4, within the posterior's spread
    # (each mean rests on 26 weekend and 65 weekday days: relative sd about 0.03)
    ratio = med[wk].mean() / med[~wk].mean()
    assert abs(ratio - 0.4) < 0.06


def test_monthly_future_dates_keep_the_series_day():
    ends = [dt.date(2024, 12, 31), dt.date(2025, 1, 31), dt.date(2025, 2, 28)]
    assert future_dates(ends, 2) == [dt.date(2025, 3, 31), dt.date(2025, 4, 30)]
    firsts = [dt.date(2025, 1, 1), dt.date(2025, 2, 1)]
    assert future_dates(firsts, 2) == [dt.date(2025, 3, 1), dt.date(2025, 4, 1)]


def test_a_clear_yearly_profile_is_sampled_centred_and_a_flat_one_not():
    """`season.profile_is_clear` picks the parameterisation of the profile's coefficients: a
    season the data show (here +-0.3 on the log scale) centred, none non-centred."""
    dates = [dt.date(2021, 1, 4) + dt.timedelta(weeks=i) for i in range(156)]
    X, kk = season.fourier(dates, 4), season.harmonics(4)
    rng = np.random.default_rng(0)
    ty = 2 * np.pi * np.array([d.toordinal() for d in dates]) / 365.25
    flat = np.log(rng.poisson(5000 * np.exp(0.1 * rng.standard_normal(156))))
    seasonal = np.log(rng.poisson(5000 * np.exp(0.3 * np.cos(ty) + 0.1 * rng.standard_normal(156))))
    seasonal[[5, 60]] = np.nan  # missing weeks are left out
    assert season.profile_is_clear(np.stack([flat, seasonal]), X, kk).tolist() == [False, True]
