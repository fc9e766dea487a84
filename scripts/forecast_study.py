"""Which traffic model should krsim forecast with by default? Quarter-ahead backtests on real and
simulated series, with Prophet (default settings) on the same windows as the benchmark.

Every candidate is the model of a funnel's traffic (the root stage; the rates get the same terms on
the logit scale): ``y[t] ~ NegativeBinomial(exp(log_mu[t]), alpha)`` with

- ``iid``: ``log_mu = level`` (krsim's default up to model version 3);
- ``ar1``: plus a stationary AR(1) sharing the extra-Poisson variance with the negative binomial,
  the share learnt (krsim's opt-in ``period_effects: ar1``);
- ``seasonal``: ``level`` plus a yearly profile, ``K`` Fourier terms of the date with a shrinkage
  prior (coefficients ``Normal(0, s / k)``, ``s ~ HalfNormal(season_sd)``), iid otherwise;
- ``seasonal_ar1``: both;
- ``seasonal_rw``: the yearly profile plus a random-walk level (a local-level model) whose step sd
  is learnt (``HalfNormal(0.05)``), iid negative-binomial noise around it, as a full latent path
  (non-centred); ``seasonal_rwc``: the same path centred; ``seasonal_rws``: the step sd and the
  negative binomial's share of one total variance learnt;
- ``seasonal_klM`` (``M`` terms, 16 when omitted): the random walk in its ``M`` slowest
  Karhunen-Loeve terms with the history's mean removed (krsim's `walk_basis`); ``seasonal_kl32``
  was krsim's default in model version 4 (for the traffic);
- ``seasonal_klmix``: the same walk (32 terms, as krsim's `walk_terms` gives for 156 periods)
  weighed against a steady level, the indicator summed out of the likelihood (prior probability
  0.5; each draw's posterior probability ``p_walk`` decides whether its forecast continues the
  walk): krsim's default since model version 5 (for the traffic); ``seasonal_klmix2`` gives the
  steady branch its own ``alpha``.

Windows: every quarter (``H`` periods) of a series that has a full training slice (3 years by
default) before it; each model is fitted on that slice only and forecasts the quarter. Scored on the
quarter total (over the window's observed periods): inside the central 80% interval, the interval
score of that interval and the CRPS, both divided by the actual total so that windows at different
levels weigh the same, and the predictive percentile.

Small fits (2 chains x 300 draws after 300 tuning steps by default), as a study, not as the product's
settings: say so wherever the numbers are quoted. Run with ``nice -n 10``. Prophet needs the optional
``bench`` extra (``pip install -e '.[bench]'``).

    python scripts/forecast_study.py real --models iid,ar1,seasonal_kl32 --prophet
    python scripts/forecast_study.py sim --worlds 25 --models iid,seasonal_kl32 --prophet
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REAL = Path("/work/shared/data/real/wikipedia_pageviews_weekly.csv")
LEVEL = 0.8
ALPHA_IS = 1 - LEVEL


# --- data -------------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    dates: list[dt.date]
    y: np.ndarray  # float, nan where missing


def read_real(path: Path) -> Series:
    dates, ys = [], []
    with path.open() as fh:
        for row in csv.DictReader(fh):
            dates.append(dt.date.fromisoformat(row["period"]))
            ys.append(float(row["visits"]) if row["visits"].strip() else np.nan)
    return Series(path.stem, dates, np.array(ys))


def fourier(dates, K: int) -> np.ndarray:
    """(periods, 2K) sin/cos terms of the date's position in the year."""
    t = np.array([d.toordinal() for d in dates], dtype=float) / 365.25
    k = np.arange(1, K + 1)
    ang = 2 * np.pi * t[:, None] * k[None, :]
    return np.concatenate([np.sin(ang), np.cos(ang)], axis=1)


# --- simulated worlds -------------------------------------------------------------------------


def simulate_world(family: str, rng: np.random.Generator, T: int, start: dt.date) -> Series:
    """Weekly traffic of one world: ``iid`` (krsim's old family), ``drift`` (AR(1) persistent
    effects), ``trend`` (a steady growth or decline), ``seasonal`` (a yearly profile of random shape,
    from smooth to a sharp season of a few months)."""
    dates = [start + dt.timedelta(weeks=i) for i in range(T)]
    level = np.log(rng.uniform(300, 20000))
    alpha = np.exp(rng.uniform(np.log(8), np.log(400)))
    log_mu = np.full(T, level)
    if family == "drift":
        rho = rng.uniform(0.6, 0.95)
        sd = rng.uniform(0.03, 0.2)
        e = np.empty(T)
        e[0] = sd * rng.standard_normal()
        for t in range(1, T):
            e[t] = rho * e[t - 1] + sd * np.sqrt(1 - rho**2) * rng.standard_normal()
        log_mu += e
    elif family == "trend":
        log_mu += rng.choice([-1, 1]) * rng.uniform(0.001, 0.006) * np.arange(T)
    elif family == "seasonal":
        # a von Mises bump of random width and height at a random time of year, or two terms
        phase = rng.uniform(0, 2 * np.pi)
        ty = 2 * np.pi * np.array([d.toordinal() for d in dates]) / 365.25
        if rng.uniform() < 0.5:
            kappa = np.exp(rng.uniform(np.log(0.5), np.log(6)))
            bump = np.exp(kappa * (np.cos(ty - phase) - 1))
            log_mu += rng.uniform(0.2, 1.2) * (bump - bump.mean())
        else:
            a1, a2 = rng.uniform(0.1, 0.5), rng.uniform(0.0, 0.2)
            log_mu += a1 * np.cos(ty - phase) + a2 * np.cos(2 * ty - rng.uniform(0, 2 * np.pi))
    y = rng.negative_binomial(alpha, alpha / (alpha + np.exp(log_mu))).astype(float)
    return Series(family, dates, y)


# --- candidate models -------------------------------------------------------------------------

K_DEFAULT = 4


DECAY = 1.0  # the harmonics' prior sd falls as 1 / k**DECAY
# the profile's coefficients: "auto" (krsim's: centred when `season.profile_is_clear`, else
# non-centred), "shrink" (always non-centred, krsim's before model version 5), "centred", "fixed"
SEASON_PRIOR = "auto"
ACCEPT = None  # NUTS's target acceptance; None: krsim's (0.95 with a walk, 0.9 AR(1), else 0.8)


def build(name: str, T: int, K: int, prior: str | None = None):
    """The PyMC model of ``T`` periods of traffic with its data as ``pm.Data`` (so one compiled
    model serves every window): ``y`` (zeros where missing), ``obs`` (1 observed, 0 missing),
    ``X`` (the Fourier terms) and ``centre`` (log mean traffic)."""
    import pymc as pm
    import pytensor.tensor as pt

    seasonal = name.startswith("seasonal")
    with pm.Model() as m:
        y = pm.Data("y", np.zeros(T))
        obs = pm.Data("obs", np.ones(T))
        centre = pm.Data("centre", 0.0)
        level = pm.Normal("level", centre, 1.0)
        log_mu = level + pt.zeros(T)
        if seasonal:
            X = pm.Data("X", np.zeros((T, 2 * K)))
            kk = np.tile(np.arange(1, K + 1), 2) ** DECAY
            prior = prior or SEASON_PRIOR
            if prior == "fixed":  # no learnt scale: Normal(0, 0.5 / k)
                beta = pm.Normal("season_beta", 0.0, 0.5 / kk)
            elif prior == "centred":
                s = pm.HalfNormal("season_sd", 0.5)
                beta = pm.Normal("season_beta", 0.0, s / kk)
            else:
                s = pm.HalfNormal("season_sd", 0.5)
                z = pm.Normal("season_z", 0.0, 1.0, shape=2 * K)
                beta = pm.Deterministic("season_beta", s * z / kk)
            log_mu = log_mu + pt.dot(X, beta)
        if name in ("ar1", "seasonal_ar1"):
            from simulator.model import ar1_filter

            total = pm.HalfNormal("traffic_sd", 0.3)
            share = pm.Beta("traffic_share", 2.0, 2.0)
            var = total**2
            alpha = pm.Deterministic("alpha", 1.0 / pt.maximum((1 - share) * var, 1e-8))
            sigma_u = pm.Deterministic("traffic_sigma", pt.sqrt(share * var))
            rho = pm.Beta("traffic_rho", 6.0, 2.0)
            zu = pm.Normal("traffic_z", 0.0, 1.0, shape=T)
            u = pm.Deterministic("u", ar1_filter(zu, sigma_u, rho, pt, T))
            log_mu = log_mu + u
        elif name == "seasonal_rw":
            alpha = pm.Gamma("alpha", 2.0, 0.02)
            step = pm.HalfNormal("rw_sd", 0.05)
            zu = pm.Normal("traffic_z", 0.0, 1.0, shape=T)
            u = pm.Deterministic("u", step * pt.cumsum(zu))
            log_mu = log_mu + u
        elif name == "seasonal_rwc":  # centred random walk
            alpha = pm.Gamma("alpha", 2.0, 0.02)
            step = pm.HalfNormal("rw_sd", 0.05)
            u = pm.GaussianRandomWalk(
                "u", sigma=step, init_dist=pm.Normal.dist(0.0, 0.01), steps=T - 1
            )
            log_mu = log_mu + u
        elif "klmix" in name:  # the walk or no walk, the indicator marginalised (model averaging)
            from simulator.model import walk_basis

            M = 32
            alpha = pm.Gamma("alpha", 2.0, 0.02)
            alpha0 = pm.Gamma("alpha_flat", 2.0, 0.02) if name.endswith("2") else alpha
            step = pm.HalfNormal("rw_sd", 0.05)
            if name.endswith("c"):  # centred coefficients
                cu = pm.Normal("traffic_c", 0.0, step, shape=M)
                u = pm.Deterministic("u", pt.dot(walk_basis(T, M), cu))
            else:
                zu = pm.Normal("traffic_z", 0.0, 1.0, shape=M)
                u = pm.Deterministic("u", step * pt.dot(walk_basis(T, M), zu))
            lp1 = (
                pm.logp(pm.NegativeBinomial.dist(mu=pt.exp(log_mu + u), alpha=alpha), y) * obs
            ).sum()
            lp0 = (
                pm.logp(pm.NegativeBinomial.dist(mu=pt.exp(log_mu), alpha=alpha0), y) * obs
            ).sum()
            a, b = np.log(0.5) + lp1, np.log(0.5) + lp0
            pm.Potential("lik", pt.logaddexp(a, b))
            pm.Deterministic("p_walk", pt.sigmoid(a - b))
            pm.Deterministic("log_mu_last", log_mu[-1])
            return m
        elif name.startswith(("seasonal_kl", "kl")):  # krsim's random walk (`walk_basis`)
            from simulator.model import walk_basis

            M = int(name.rsplit("kl", 1)[1] or 16)
            alpha = pm.Gamma("alpha", 2.0, 0.02)
            step = pm.HalfNormal("rw_sd", 0.05)
            zu = pm.Normal("traffic_z", 0.0, 1.0, shape=M)
            u = pm.Deterministic("u", step * pt.dot(walk_basis(T, M), zu))
            log_mu = log_mu + u
        elif name in ("seasonal_rws", "rws"):  # random walk, variance split (total, share)
            total = pm.HalfNormal("traffic_sd", 0.3)
            share = pm.Beta("traffic_share", 1.0, 4.0)
            var = total**2
            alpha = pm.Deterministic("alpha", 1.0 / pt.maximum((1 - share) * var, 1e-8))
            step = pm.Deterministic("rw_sd", pt.sqrt(share * var))
            zu = pm.Normal("traffic_z", 0.0, 1.0, shape=T)
            u = pm.Deterministic("u", step * pt.cumsum(zu))
            log_mu = log_mu + u
        else:
            alpha = pm.Gamma("alpha", 2.0, 0.02)
        pm.Deterministic("log_mu_last", log_mu[-1])
        lp = pm.logp(pm.NegativeBinomial.dist(mu=pt.exp(log_mu), alpha=alpha), y)
        pm.Potential("lik", (lp * obs).sum())
    return m


def forecast_draws(name: str, post: dict, Xf: np.ndarray | None, H: int, rng) -> np.ndarray:
    """Predictive draws of the next ``H`` periods' traffic, shape (draws, H)."""
    level = post["level"]
    D = level.size
    log_mu = level[:, None] + np.zeros((D, H))
    if Xf is not None:
        log_mu = log_mu + post["season_beta"] @ Xf.T
    if name in ("ar1", "seasonal_ar1"):
        rho, sig = post["traffic_rho"][:, None], post["traffic_sigma"]
        prev = post["u_last"]
        for h in range(H):
            prev = rho[:, 0] * prev + sig * np.sqrt(1 - rho[:, 0] ** 2) * rng.standard_normal(D)
            log_mu[:, h] += prev
    elif name in ("seasonal_rw", "seasonal_rwc", "seasonal_rws", "rws") or (
        "kl" in name and "klmix" not in name
    ):
        steps = post["rw_sd"][:, None] * rng.standard_normal((D, H))
        log_mu = log_mu + post["u_last"][:, None] + np.cumsum(steps, axis=1)
    if "p_walk" in post:  # model averaging: each draw's walk is on with its posterior probability
        on = rng.uniform(size=D) < post["p_walk"]
        steps = post["rw_sd"][:, None] * rng.standard_normal((D, H))
        log_mu = log_mu + on[:, None] * (post["u_last"][:, None] + np.cumsum(steps, axis=1))
        if "alpha_flat" in post:
            post = dict(post, alpha=np.where(on, post["alpha"], post["alpha_flat"]))
    alpha = post["alpha"][:, None]
    lam = rng.gamma(alpha, np.exp(log_mu) / alpha)
    return rng.poisson(lam).astype(float)


class Candidate:
    """One model compiled once for a training length, refitted per window with new data."""

    def __init__(self, name: str, T: int, K: int, draws: int, tune: int, chains: int):
        import nutpie

        self.name, self.T, self.K = name, T, K
        self.draws, self.tune, self.chains = draws, tune, chains
        t0 = time.perf_counter()
        # with --season-prior auto, krsim's rule picks the centred or the non-centred profile per
        # window (`season.profile_is_clear`): both are compiled
        priors = ["centred", "shrink"] if SEASON_PRIOR == "auto" else [SEASON_PRIOR]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.variants = {p: nutpie.compile_pymc_model(build(name, T, K, p)) for p in priors}
        self.compiled = self.variants[priors[-1]]
        self.compile_seconds = time.perf_counter() - t0

    def run(self, train_dates, train_y, future_dates, seed: int):
        import nutpie

        obs = np.isfinite(train_y)
        y = np.where(obs, train_y, 0.0)
        data = {"y": y, "obs": obs.astype(float), "centre": float(np.log(max(y[obs].mean(), 1)))}
        seasonal = self.name.startswith("seasonal")
        compiled = self.compiled
        if seasonal:
            data["X"] = fourier(train_dates, self.K)
            if "centred" in self.variants and SEASON_PRIOR == "auto":
                from simulator.io.season import profile_is_clear

                kk = np.tile(np.arange(1, self.K + 1), 2) ** DECAY
                logy = np.where(obs & (y > 0), np.log(np.maximum(y, 1)), np.nan)
                if profile_is_clear(logy, data["X"], kk)[0]:
                    compiled = self.variants["centred"]
        c = compiled.with_data(**data)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tr = nutpie.sample(
                c,
                draws=self.draws,
                tune=self.tune,
                chains=self.chains,
                seed=seed,
                progress_bar=False,
                target_accept=ACCEPT
                or (
                    0.9
                    if "ar1" in self.name
                    else 0.95
                    if "klmix" in self.name
                    else 0.9
                    if "rw" in self.name or "kl" in self.name
                    else 0.8
                ),
            )
        secs = time.perf_counter() - t0
        post = {}
        for v in (
            "level",
            "alpha",
            "alpha_flat",
            "p_walk",
            "season_beta",
            "traffic_rho",
            "traffic_sigma",
            "rw_sd",
        ):
            if v in tr.posterior:
                a = np.asarray(tr.posterior[v].values)
                post[v] = a.reshape(-1, *a.shape[2:])
        if "u" in tr.posterior:
            post["u_last"] = np.asarray(tr.posterior["u"].values)[..., -1].reshape(-1)
        div = int(np.asarray(tr.sample_stats["diverging"].values).sum())
        Xf = fourier(future_dates, self.K) if seasonal else None
        rng = np.random.default_rng(seed + 1)
        draws = forecast_draws(self.name, post, Xf, len(future_dates), rng)
        return draws, {"divergences": div, "seconds": secs}


def prophet_draws(train_dates, train_y, future_dates, seed: int) -> tuple[np.ndarray, dict]:
    import logging

    import pandas as pd
    from prophet import Prophet

    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    obs = np.isfinite(train_y)
    df = pd.DataFrame({"ds": pd.to_datetime(np.array(train_dates)[obs]), "y": train_y[obs]})
    t0 = time.perf_counter()
    np.random.seed(seed)  # Prophet's predictive samples use numpy's global generator
    m = Prophet()
    m.fit(df)
    s = m.predictive_samples(pd.DataFrame({"ds": pd.to_datetime(future_dates)}))["yhat"]
    return np.asarray(s).T, {"divergences": 0, "seconds": time.perf_counter() - t0}


# --- scoring ----------------------------------------------------------------------------------


def score(total_draws: np.ndarray, actual: float) -> dict:
    lo, hi = np.quantile(total_draws, [ALPHA_IS / 2, 1 - ALPHA_IS / 2])
    iscore = (hi - lo) + (2 / ALPHA_IS) * (max(lo - actual, 0) + max(actual - hi, 0))
    x = np.sort(total_draws)
    n = x.size
    # CRPS of the empirical forecast distribution (the energy form, O(n log n))
    crps = np.mean(np.abs(x - actual)) - np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / n**2
    return {
        "inside80": bool(lo <= actual <= hi),
        "interval_score": float(iscore / actual),
        "crps": float(crps / actual),
        "percentile": float(np.mean(total_draws < actual) + 0.5 * np.mean(total_draws == actual)),
        "width": float((hi - lo) / actual),
    }


def windows(T_all: int, train: int, H: int) -> list[int]:
    """Window start rows: every quarter that has ``train`` periods before it."""
    return list(range(train, T_all - H + 1, H))


def run_series(series: Series, models: list[str], cands: dict, args, seed: int) -> list[dict]:
    rows = []
    starts = windows(len(series.y), args.train, args.horizon)
    for w, s in enumerate(starts):
        tr = slice(s - args.train, s)
        fu = slice(s, s + args.horizon)
        future_obs = np.isfinite(series.y[fu])
        actual = float(np.nansum(series.y[fu]))
        for name in models:
            if name == "prophet":
                draws, info = prophet_draws(
                    series.dates[tr], series.y[tr], series.dates[fu], seed + w
                )
            else:
                draws, info = cands[name].run(
                    series.dates[tr], series.y[tr], series.dates[fu], seed + w
                )
            total = draws[:, future_obs].sum(axis=1)
            r = {"series": series.name, "window": str(series.dates[s]), "model": name}
            r.update(score(total, actual))
            r.update(info)
            rows.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    return rows


def summarise(rows: list[dict], by: str = "series") -> list[dict]:
    out = []
    keys = sorted({(r[by], r["model"]) for r in rows})
    for g, m in keys:
        rr = [r for r in rows if r[by] == g and r["model"] == m]
        n = len(rr)
        cov = np.mean([r["inside80"] for r in rr])
        out.append(
            {
                by: g,
                "model": m,
                "windows": n,
                "coverage80": float(cov),
                "coverage_se": float(np.sqrt(max(cov * (1 - cov), 0.16 * 0.2) / n)),
                "interval_score": float(np.mean([r["interval_score"] for r in rr])),
                "crps": float(np.mean([r["crps"] for r in rr])),
                "fits_with_divergences": int(sum(r["divergences"] > 0 for r in rr)),
                "above_95th_or_below_5th": int(
                    sum(r["percentile"] > 0.95 or r["percentile"] < 0.05 for r in rr)
                ),
                "seconds_mean": float(np.mean([r["seconds"] for r in rr])),
            }
        )
    return out


def table(summary: list[dict], by: str) -> str:
    lines = [
        f"| {by} | model | windows | 80% coverage | interval score | CRPS | fits with divergences "
        "| beyond 5-95th pct | s/fit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s[by]} | {s['model']} | {s['windows']} | {s['coverage80']:.0%} "
            f"| {s['interval_score']:.3f} | {s['crps']:.3f} | {s['fits_with_divergences']} "
            f"| {s['above_95th_or_below_5th']} | {s['seconds_mean']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["real", "sim"])
    p.add_argument("--models", default="iid,ar1,seasonal,seasonal_ar1")
    p.add_argument("--prophet", action="store_true")
    p.add_argument("--train", type=int, default=156, help="periods in each training slice")
    p.add_argument("--horizon", type=int, default=13)
    p.add_argument("--K", type=int, default=K_DEFAULT, help="Fourier terms of the yearly profile")
    p.add_argument("--decay", type=float, default=1.0, help="harmonic k's prior sd ~ 1/k**decay")
    p.add_argument("--season-prior", choices=["shrink", "centred", "fixed", "auto"], default="auto")
    p.add_argument("--accept", type=float, help="NUTS target acceptance (default: krsim's)")
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--tune", type=int, default=300)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--worlds", type=int, default=8, help="simulated worlds per family")
    p.add_argument("--families", default="iid,drift,trend,seasonal")
    p.add_argument("--series", type=Path, default=REAL)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--out", type=Path, help="write rows and summary as JSON here")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    globals()["DECAY"] = args.decay
    globals()["SEASON_PRIOR"] = args.season_prior
    globals()["ACCEPT"] = args.accept
    cands = {
        m: Candidate(m, args.train, args.K, args.draws, args.tune, args.chains) for m in models
    }
    if args.prophet:
        models.append("prophet")
    rows: list[dict] = []
    if args.what == "real":
        rows = run_series(read_real(args.series), models, cands, args, args.seed)
        by = "series"
    else:
        by = "family"
        for fam in args.families.split(","):
            rng = np.random.default_rng([args.seed, zlib.crc32(fam.encode())])
            for i in range(args.worlds):
                s = simulate_world(fam, rng, args.train + args.horizon, dt.date(2021, 1, 4))
                s.name = f"{fam}#{i}"
                for r in run_series(s, models, cands, args, args.seed + 1000 * i):
                    r["family"] = fam
                    rows.append(r)
    summary = summarise(rows, by)
    print(table(summary, by))
    print("compile seconds: " + ", ".join(f"{m} {c.compile_seconds:.0f}" for m, c in cands.items()))
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "rows": rows,
                    "summary": summary,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
