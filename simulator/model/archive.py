"""What the team's own record of past experiments says about the effects of its changes.

The archive (`archive_data.read_archive`) holds each experiment's observed relative lift ``y_i``
and its standard error ``se_i``. The true effects ``theta_i`` behind them are modelled as draws
from one distribution, the *effect distribution*, and each observation as
``y_i ~ Normal(theta_i, se_i)``. Three forms of the effect distribution are fitted with PyMC
(NUTS, no MAP shortcut) and compared by PSIS-LOO (`arviz.loo` / `arviz.compare` on the pointwise
log-likelihood of each experiment's observed lift, ``theta_i`` integrated out):

- ``normal``: ``theta ~ Normal(mu_c, tau)``;
- ``spike`` ("most changes do nothing"): ``theta = 0`` with probability ``pi``, else
  ``Normal(mu_c, tau)``; the indicator is summed out of the likelihood, so NUTS samples
  ``pi``, ``mu`` and ``tau`` only;
- ``student_t`` (fat tails): ``theta ~ StudentT(nu, mu_c, tau)``; the likelihood integrates the
  t's normal scale mixture, ``theta | g ~ Normal(mu_c, tau / sqrt(g))``,
  ``g ~ Gamma(nu/2, nu/2)``, by the trapezoid rule on a fixed grid of ``log g`` (exact to
  rounding for ``nu`` up to a few hundred; checked against quadrature in the tests).

With several categories the means are partially pooled: ``mu_c = mu + cat_sd · z_c``, the
``z_c`` standard normal effects summing to zero (so ``mu`` is the categories' average). Priors
(relative lifts): ``mu ~ Normal(0, 0.1)``, ``tau ~ HalfNormal(0.1)``, ``cat_sd ~ HalfNormal(0.05)``,
``pi ~ Beta(1, 1)``, ``nu = 1 + Gamma(2, 0.1)`` (Juárez and Steel's prior, shifted so that the
tails are at most Cauchy's).

Every quantity about the experiments is computed per posterior draw from the exact conditional
posterior of ``theta_i`` given ``y_i`` and the draw's hyperparameters (a normal for ``normal``, a
spike and a normal for ``spike``, a mixture over the grid for ``student_t``), which is
Rao-Blackwellised: the shrunk estimate is the average over draws of the conditional mean.

The fit is cached on disk (`simulator.io.cache`), keyed by the archive's bytes, the settings and the
library versions, so a scenario whose prior comes from the archive does not refit it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.archive_data import Archive, category_problem, read_archive
from ..io.scenario import InputError
from .archive_rules import mcse as _mcse
from .quiet import quiet_warnings

logger = logging.getLogger(__name__)

ARCHIVE_MODEL_VERSION = 1
FORMS = ("normal", "spike", "student_t")  # in order of simplicity: the first adequate one is kept
FORM_WORDS = {
    "normal": "normal (effects spread around a mean)",
    "spike": "spike at zero (a share of changes does nothing, the rest spread around a mean)",
    "student_t": "Student-t (fat tails: mostly small effects, a few large ones)",
}
MU_SD, TAU_SD, CAT_SD = 0.1, 0.1, 0.05
NU_SHAPE, NU_RATE = 2.0, 0.1
THRESHOLD = 0.005  # |effect| below 0.5%: the change does practically nothing
EPSILON = 0.001  # the expected-loss rule's tolerance: 0.1% of the metric
# the grid of log g for the t's scale mixture: the trapezoid rule on a smooth, fast-decaying
# integrand, accurate to ~1e-3 relative at nu = 100 and far better below (the tests check it)
LOG_G = np.arange(-20.0, 3.5 + 1e-9, 0.25)
SMALL_N = 5  # at or below this many experiments LOO cannot separate the forms
ELPD_SMALL = 4.0  # an elpd difference below 4 is small (Sivula, Magnusson and Vehtari 2022)
Z80 = 1.2815515655446004
PRED_REPS = 4  # predictive draws of a new effect per posterior draw
ALL = "__all__"  # the key of the archive-wide prior (no category named)


@dataclass(frozen=True)
class Settings:
    """How the archive is fitted: NUTS draws per chain, tuning steps, chains, seed, and the
    threshold below which |effect| counts as practically nothing."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 2024
    threshold: float = THRESHOLD
    epsilon: float = EPSILON
    sampler: str = "auto"  # nutpie when installed, else PyMC's NUTS


# --------------------------------------------------------------------------------- the models


def _category_index(archive: Archive) -> tuple[np.ndarray, int]:
    cats = archive.categories
    if len(cats) < 2:
        return np.zeros(len(archive), dtype=np.int64), 1
    pos = {c: i for i, c in enumerate(cats)}
    return np.array([pos[c] for c in archive.category], dtype=np.int64), len(cats)


def build_model(form: str, archive: Archive, tau: float | None = None):
    """The PyMC model of ``form`` for the archive (marginal likelihood: no latent effects). The
    lifts, standard errors and category indices are ``pm.Data`` (``y``, ``se``, ``cat``), so a
    compiled model takes another archive with the same categories count. ``tau``: the spread
    fixed at a value (for checks against the closed form) instead of learnt."""
    import pymc as pm
    import pytensor.tensor as pt

    ci, K = _category_index(archive)
    LOG2PI = float(np.log(2 * np.pi))

    def norm_lp(x, m, var):
        return -0.5 * (LOG2PI + pt.log(var) + (x - m) ** 2 / var)

    with pm.Model() as model:
        y = pm.Data("y", archive.lift)
        se = pm.Data("se", archive.se)
        cat = pm.Data("cat", ci)
        mu = pm.Normal("mu", 0.0, MU_SD)
        if tau is None:
            tau = pm.HalfNormal("tau", TAU_SD)
        else:
            tau = pm.Deterministic("tau", pt.as_tensor_variable(float(tau)))
        if K > 1:
            cat_sd = pm.HalfNormal("cat_sd", CAT_SD)
            # sum-to-zero category effects: mu is the categories' average, which the data pin
            # down (with free effects, mu and their mean trade off along a ridge)
            z = pm.ZeroSumNormal("cat_z", sigma=1.0, shape=K)
            mu_c = pm.Deterministic("mu_c", mu + cat_sd * z)
            m = mu_c[cat]
        else:
            m = mu + 0.0 * y
        if form == "normal":
            ll = norm_lp(y, m, tau**2 + se**2)
        elif form == "spike":
            pi = pm.Beta("pi", 1.0, 1.0)
            ll = pt.logaddexp(
                pt.log(pi) + norm_lp(y, 0.0, se**2),
                pt.log1p(-pi) + norm_lp(y, m, tau**2 + se**2),
            )
        elif form == "student_t":
            nu_m1 = pm.Gamma("nu_minus_1", NU_SHAPE, NU_RATE)
            nu = pm.Deterministic("nu", 1.0 + nu_m1)
            s = pt.as_tensor_variable(LOG_G)
            a = nu / 2
            lw = a * s - a * pt.exp(s)  # log density of log g, up to terms constant in s
            lw = lw - pt.logsumexp(lw)
            var = tau**2 * pt.exp(-s)[None, :] + (se**2)[:, None]
            ll = pt.logsumexp(lw[None, :] + norm_lp(y[:, None], m[:, None], var), axis=1)
        else:
            raise ValueError(f"unknown form {form!r}")
        pm.Potential("loglik", ll.sum())
    return model


_compiled: dict[tuple, Any] = {}


def _sampler(settings: Settings) -> str:
    if settings.sampler != "auto":
        return settings.sampler
    from ..io.cache import versions

    return "nutpie" if versions("nutpie")["nutpie"] != "none" else "pymc"


def _sample(form: str, archive: Archive, settings: Settings, salt: int, tau: float | None = None):
    """NUTS draws of ``form``'s hyperparameters given the archive (a DataTree). With nutpie, the
    model is compiled once per process for its form and number of categories and takes each
    archive's data through ``with_data``."""
    import pymc as pm

    seed = int(settings.seed + 1000 * salt)
    with quiet_warnings():
        if _sampler(settings) == "nutpie":
            import nutpie

            ci, K = _category_index(archive)
            key = (form, K, tau)
            if key not in _compiled:
                _compiled[key] = nutpie.compile_pymc_model(build_model(form, archive, tau))
            data = {"y": archive.lift, "se": archive.se} | ({"cat": ci} if K > 1 else {})
            compiled = _compiled[key].with_data(**data)
            return nutpie.sample(
                compiled,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                seed=seed,
                target_accept=0.95,
                progress_bar=False,
            )
        with build_model(form, archive, tau):
            return pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=1,
                random_seed=[seed + c for c in range(settings.chains)],
                target_accept=0.95,
                nuts_sampler="pymc",
                progressbar=False,
                quiet=True,
                compute_convergence_checks=False,
            )


@dataclass(frozen=True)
class Hyper:
    """Posterior draws of one form's hyperparameters, flattened over chains: ``mu_c`` (D, K)."""

    form: str
    mu: np.ndarray
    tau: np.ndarray
    mu_c: np.ndarray
    cat_sd: np.ndarray | None
    pi: np.ndarray | None
    nu: np.ndarray | None
    chains: int

    @property
    def n(self) -> int:
        return self.mu.shape[0]


def _hyper(dtree, form: str, K: int) -> Hyper:
    post = dtree["posterior"]

    def flat(name: str) -> np.ndarray:
        a = np.asarray(post[name].values, dtype=float)
        return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])

    chains = int(np.asarray(post["mu"].values).shape[0])
    mu = flat("mu")
    mu_c = flat("mu_c") if K > 1 else mu[:, None]
    return Hyper(
        form,
        mu,
        flat("tau"),
        mu_c,
        flat("cat_sd") if K > 1 else None,
        flat("pi") if form == "spike" else None,
        flat("nu") if form == "student_t" else None,
        chains,
    )


def _t_log_weights(nu: np.ndarray) -> np.ndarray:
    """Log of the normalised quadrature weights over `LOG_G` of ``log g``,
    g ~ Gamma(nu/2, nu/2), shape (D, G)."""
    a = (nu / 2)[:, None]
    lw = a * LOG_G[None, :] - a * np.exp(LOG_G)[None, :]
    return lw - np.logaddexp.reduce(lw, axis=1, keepdims=True)


def _norm_lp(x, m, var):
    return -0.5 * (np.log(2 * np.pi) + np.log(var) + (x - m) ** 2 / var)


def conditional(h: Hyper, y: np.ndarray, se: np.ndarray, ci: np.ndarray, rows: slice):
    """The posterior of each ``theta_i`` given ``y_i`` and the draws ``rows`` of the
    hyperparameters, as a mixture of normals: weights, means, sds, each (d, n, J), and the log
    marginal likelihood of each ``y_i`` (d, n). A component with sd 0 is a point mass."""
    mu_c = h.mu_c[rows][:, ci]  # (d, n)
    tau2 = h.tau[rows, None] ** 2
    s2 = se[None, :] ** 2
    if h.form in ("normal", "spike"):
        v = 1 / (1 / tau2 + 1 / s2)
        m = v * (mu_c / tau2 + y[None, :] / s2)
        lp_slab = _norm_lp(y[None, :], mu_c, tau2 + s2)
        if h.form == "normal":
            return np.ones(m.shape + (1,)), m[..., None], np.sqrt(v)[..., None], lp_slab
        pi = h.pi[rows, None]
        a = np.log(pi) + _norm_lp(y[None, :], 0.0, s2)
        b = np.log1p(-pi) + lp_slab
        ll = np.logaddexp(a, b)
        w = np.stack([np.exp(a - ll), np.exp(b - ll)], axis=-1)
        means = np.stack([np.zeros_like(m), m], axis=-1)
        sds = np.stack([np.zeros_like(m), np.sqrt(v)], axis=-1)
        return w, means, sds, ll
    # student_t: a normal per grid point of log g
    lw = _t_log_weights(h.nu[rows])[:, None, :]  # (d, 1, G)
    tg2 = tau2[..., None] * np.exp(-LOG_G)[None, None, :]  # (d, 1, G)
    s2g = s2[..., None]
    lp = lw + _norm_lp(y[None, :, None], mu_c[..., None], tg2 + s2g)  # (d, n, G)
    ll = np.logaddexp.reduce(lp, axis=2)
    w = np.exp(lp - ll[..., None])
    v = 1 / (1 / tg2 + 1 / s2g)
    m = v * (mu_c[..., None] / tg2 + y[None, :, None] / s2g)
    return w, m, np.sqrt(np.broadcast_to(v, m.shape)), ll


def _chunks(n_draws: int, n_obs: int, J: int) -> list[slice]:
    size = max(1, int(4_000_000 // max(n_obs * J, 1)))
    return [slice(i, min(i + size, n_draws)) for i in range(0, n_draws, size)]


@dataclass(frozen=True)
class Posterior:
    """Per experiment: the shrunk estimate (posterior mean of theta_i), P(theta_i > 0), the
    expected loss of shipping E[max(0, -theta_i)], one draw of theta_i per posterior draw (D, n),
    and the pointwise log-likelihood (D, n) for LOO."""

    mean: np.ndarray
    p_positive: np.ndarray
    loss_ship: np.ndarray
    draws: np.ndarray
    loglik: np.ndarray


def experiment_posterior(h: Hyper, archive: Archive, rng: np.random.Generator) -> Posterior:
    """Rao-Blackwellised summaries of every theta_i (see `Posterior`)."""
    from scipy import special

    y, se = archive.lift, archive.se
    ci, _ = _category_index(archive)
    D, n = h.n, len(y)
    J = len(LOG_G) if h.form == "student_t" else 2
    mean = np.zeros((D, n))
    ppos = np.zeros((D, n))
    loss = np.zeros((D, n))
    draws = np.zeros((D, n))
    ll = np.zeros((D, n))
    for rows in _chunks(D, n, J):
        w, m, s, lli = conditional(h, y, se, ci, rows)
        ll[rows] = lli
        mean[rows] = (w * m).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(s > 0, m / np.where(s > 0, s, 1), np.sign(m) * np.inf)
            ppos[rows] = (w * np.where(s > 0, special.ndtr(z), m > 0)).sum(-1)
            el = np.where(
                s > 0,
                s * np.exp(-0.5 * np.where(s > 0, z, 0) ** 2) / np.sqrt(2 * np.pi)
                - m * special.ndtr(-np.where(s > 0, z, 0)),
                np.maximum(-m, 0),
            )
        loss[rows] = (w * el).sum(-1)
        u = rng.uniform(size=w.shape[:2] + (1,))
        k = (np.cumsum(w, axis=-1) < u).sum(-1)
        k = np.minimum(k, w.shape[-1] - 1)[..., None]
        mk = np.take_along_axis(m, k, -1)[..., 0]
        sk = np.take_along_axis(s, k, -1)[..., 0]
        draws[rows] = mk + sk * rng.standard_normal(mk.shape)
    return Posterior(mean.mean(0), ppos.mean(0), loss.mean(0), draws, ll)


def population_draws(h: Hyper, cat: int | None, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of a new experiment's true effect (D, reps): in category ``cat`` (an index), or, for
    None, in a category drawn as the archive's rows are spread over them (``weights`` given
    by the caller through ``h.mu_c``'s columns with equal probability if none)."""
    D = h.n
    if cat is None:
        mu = h.mu_c[np.arange(D), rng.integers(0, h.mu_c.shape[1], D)][:, None]
    else:
        mu = h.mu_c[:, cat][:, None]
    tau = h.tau[:, None]
    eps = rng.standard_normal((D, reps))
    if h.form == "student_t":
        nu = h.nu[:, None]
        g = rng.gamma(nu / 2, 2 / nu, (D, reps))
        eps = eps / np.sqrt(g)
    theta = mu + tau * eps
    if h.form == "spike":
        theta = np.where(rng.uniform(size=(D, reps)) < h.pi[:, None], 0.0, theta)
    return theta


def null_share_draws(h: Hyper, cat: int | None, thr: float, weights: np.ndarray) -> np.ndarray:
    """P(|theta| < thr) of a new experiment's true effect, per posterior draw (D,); for ``cat``
    None, averaged over the categories with ``weights``."""
    from scipy import special, stats

    cats = range(h.mu_c.shape[1]) if cat is None else [cat]
    wts = weights if cat is None else np.ones(1)
    out = np.zeros(h.n)
    for w, c in zip(wts, cats, strict=True):
        lo = (-thr - h.mu_c[:, c]) / h.tau
        hi = (thr - h.mu_c[:, c]) / h.tau
        if h.form == "student_t":
            p = stats.t.cdf(hi, h.nu) - stats.t.cdf(lo, h.nu)
        else:
            p = special.ndtr(hi) - special.ndtr(lo)
        if h.form == "spike":
            p = h.pi + (1 - h.pi) * p
        out += w * p
    return out


# ------------------------------------------------------------------------- fitting and LOO


def _loglik_tree(dtree, ll: np.ndarray, chains: int):
    import xarray as xr

    D, n = ll.shape
    arr = ll.reshape(chains, D // chains, n)
    ds = xr.Dataset(
        {"y": (("chain", "draw", "experiment"), arr)},
        coords={
            "chain": np.arange(chains),
            "draw": np.arange(D // chains),
            "experiment": np.arange(n),
        },
    )
    out = dtree.copy()
    out["log_likelihood"] = xr.DataTree(ds)
    return out


def _summ(x: np.ndarray, chains: int | None = None) -> dict[str, Any]:
    """Median, 80% interval and mean of draws; with ``chains``, the mean's Monte Carlo error."""
    q = np.quantile(x, [0.1, 0.5, 0.9])
    out = {"median": float(q[1]), "interval80": [float(q[0]), float(q[2])], "mean": float(x.mean())}
    if chains:
        out["mcse"] = _mcse(x, chains)
    return out


@dataclass
class FormFit:
    form: str
    hyper: Hyper
    posterior: Posterior
    loo: Any
    diagnostics: dict[str, Any]
    seconds: float


def fit_form(
    form: str, archive: Archive, settings: Settings, salt: int = 0, tau: float | None = None
) -> FormFit:
    """Sample one form and compute its experiments' posteriors and PSIS-LOO (``tau``: the
    spread fixed instead of learnt)."""
    import time

    import arviz as az

    t0 = time.perf_counter()
    dtree = _sample(form, archive, settings, salt, tau)
    _, K = _category_index(archive)
    h = _hyper(dtree, form, K)
    rng = np.random.default_rng([settings.seed, 7, salt])
    post = experiment_posterior(h, archive, rng)
    names = ["mu"] + (["tau"] if tau is None else []) + (["cat_sd"] if K > 1 else [])
    names += {"spike": ["pi"], "student_t": ["nu"]}.get(form, [])
    diag = _diagnostics(dtree, names)
    with quiet_warnings():
        loo = az.loo(_loglik_tree(dtree, post.loglik, h.chains), pointwise=True)
    return FormFit(form, h, post, loo, diag, time.perf_counter() - t0)


def _diagnostics(dtree, names: list[str]) -> dict[str, Any]:
    """R-hat, ESS and divergences of the sampled hyperparameters (as `model.diagnostics`)."""
    import arviz as az

    summ = az.summary(dtree, var_names=names, kind="diagnostics", round_to="none")
    rhat = float(np.nanmax(summ["r_hat"].values))
    div = 0
    if "sample_stats" in dtree and "diverging" in dtree["sample_stats"]:
        div = int(np.asarray(dtree["sample_stats"]["diverging"].values).sum())
    return {
        "rhat_max": rhat,
        "rhat_worst": str(summ["r_hat"].idxmax()) if np.isfinite(rhat) else "",
        "ess_bulk_min": float(np.nanmin(summ["ess_bulk"].values)),
        "ess_tail_min": float(np.nanmin(summ["ess_tail"].values)),
        "divergences": div,
    }


def _elpd_diff(a: Any, b: Any) -> tuple[float, float]:
    """elpd(a) - elpd(b) and its standard error, from the pointwise values."""
    d = np.asarray(a.elpd_i).ravel() - np.asarray(b.elpd_i).ravel()
    return float(d.sum()), float(np.sqrt(len(d) * d.var(ddof=1))) if len(d) > 1 else float("nan")


def select_form(fits: dict[str, FormFit]) -> tuple[str, str]:
    """The form kept, and the sentence that says why: the simplest form (normal, then spike, then
    t) unless a more complex one beats it by more than 4 in elpd and by more than 2 standard
    errors of the difference; with 5 experiments or fewer, always the normal."""
    n = len(np.asarray(next(iter(fits.values())).loo.elpd_i).ravel())
    if n <= SMALL_N:
        return "normal", (
            f"With {n} experiments LOO cannot separate the forms (each leaves out one of "
            f"{n} points); the simplest, the normal, is kept."
        )
    order = [f for f in FORMS if f in fits]
    best = max(order, key=lambda f: fits[f].loo.elpd)
    for f in order:
        if f == best:
            return f, f"The {f.replace('_', '-')} form predicts left-out experiments best by LOO."
        d, s = _elpd_diff(fits[best].loo, fits[f].loo)
        if not (d > ELPD_SMALL and d > 2 * s):
            return f, (
                f"The {best.replace('_', '-')} form predicts left-out experiments better by "
                f"{d:.1f} ± {s:.1f} in elpd, too little to prefer it (a difference needs to exceed "
                f"{ELPD_SMALL:g} and two standard errors); the simpler {f.replace('_', '-')} "
                "form is kept."
            )
    return best, ""


# ------------------------------------------------------------------------ the mixture prior


def fit_mixture(x: np.ndarray, k: int = 3, floor: float = THRESHOLD / 2, iters: int = 300):
    """A ``k``-component normal mixture fitted to draws ``x`` by EM, each sd at least ``floor``
    (a point mass at 0 becomes Normal(0, threshold/2): 95% of it within the threshold of
    'practically nothing'). Returns [[weight, mean, sd], ...] sorted by mean."""
    x = np.asarray(x, dtype=float)
    qs = np.quantile(x, np.linspace(0.15, 0.85, k))
    m = qs + 1e-6 * np.arange(k)
    s = np.full(k, max(x.std(), floor))
    w = np.full(k, 1 / k)
    prev = -np.inf
    for _ in range(iters):
        lp = np.log(w)[None, :] + _norm_lp(x[:, None], m[None, :], s[None, :] ** 2)
        tot = np.logaddexp.reduce(lp, axis=1)
        r = np.exp(lp - tot[:, None])
        nk = r.sum(0) + 1e-12
        w = nk / nk.sum()
        m = (r * x[:, None]).sum(0) / nk
        s = np.sqrt(np.maximum((r * (x[:, None] - m) ** 2).sum(0) / nk, floor**2))
        ll = tot.mean()
        if ll - prev < 1e-9:
            break
        prev = ll
    keep = w > 1e-4
    w, m, s = w[keep] / w[keep].sum(), m[keep], s[keep]
    order = np.argsort(m)
    return [[float(w[i]), float(m[i]), float(s[i])] for i in order]


def mixture_cdf(comp: list[list[float]], x: np.ndarray) -> np.ndarray:
    from scipy import special

    x = np.asarray(x, dtype=float)
    return sum(w * special.ndtr((x - m) / s) for w, m, s in comp)


def mixture_quantiles(comp: list[list[float]], qs) -> np.ndarray:
    """Quantiles of a normal mixture (bisection on its CDF)."""
    qs = np.atleast_1d(np.asarray(qs, dtype=float))
    lo = np.full(qs.shape, min(m - 12 * s for _, m, s in comp))
    hi = np.full(qs.shape, max(m + 12 * s for _, m, s in comp))
    for _ in range(80):
        mid = (lo + hi) / 2
        below = mixture_cdf(comp, mid) < qs
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def _prior_entry(theta: np.ndarray, threshold: float) -> dict[str, Any]:
    """The mixture on log factor fitted to predictive draws of a new effect, with its fit: the
    largest gap between its CDF and the draws' empirical CDF (Kolmogorov-Smirnov distance)."""
    x = np.log1p(np.maximum(theta.ravel(), -0.99))
    comp = fit_mixture(x, floor=threshold / 2)
    xs = np.sort(x)
    ecdf = np.arange(1, len(xs) + 1) / len(xs)
    ks = float(np.max(np.abs(mixture_cdf(comp, xs) - ecdf)))
    q = np.quantile(theta, [0.05, 0.5, 0.95])
    return {
        "components": comp,
        "ks": ks,
        "effect_quantiles": {"q05": float(q[0]), "median": float(q[1]), "q95": float(q[2])},
    }


# --------------------------------------------------------------------------- the result


@dataclass
class ArchiveResult:
    """`krsim archive`'s result: ``summary`` is the JSON object; the arrays are kept only for a
    fresh fit (a cached result has the summary alone)."""

    summary: dict[str, Any]
    from_cache: bool = False
    fits: dict[str, FormFit] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return self.summary


def analyse(archive: Archive, settings: Settings | None = None) -> ArchiveResult:
    """Fit every form, select one by LOO, and summarise (see the module docstring); the summary
    is cached on disk. Progress goes to the module's logger."""
    from ..i18n import _
    from ..io import cache

    settings = settings or Settings()
    key = archive_key(archive, settings)
    hit = cache.entry(key)
    if hit is not None:
        try:
            summary = json.loads((hit / "archive.json").read_text())
        except (OSError, ValueError):
            cache.discard(key)
        else:
            logger.debug(_("Archive fit read from the cache: {path}").format(path=hit))
            return ArchiveResult(summary, True)
    fits = {}
    for i, form in enumerate(FORMS):
        logger.info("fitting the %s form (%d/%d) ...", form.replace("_", "-"), i + 1, len(FORMS))
        fits[form] = fit_form(form, archive, settings, salt=i)
    summary = summarise(archive, fits, settings)
    text = json.dumps(summary)
    cache.store(key, lambda d: (d / "archive.json").write_text(text))
    return ArchiveResult(summary, False, fits)


def archive_key(archive: Archive, settings: Settings) -> str:
    from ..io import cache

    return cache.key_of(
        {
            "archive_model_version": ARCHIVE_MODEL_VERSION,
            "archive": archive.sha256,
            "settings": settings.__dict__,
            "versions": cache.versions("pymc", "pytensor", "numpy", "arviz"),
        }
    )


def _impact(post: Posterior, archive: Archive, rows: np.ndarray, chains: int) -> dict | None:
    """The summed effect of the shipped experiments among ``rows``: raw lifts and shrunk."""
    shipped = np.array([archive.shipped[i] is True for i in rows], dtype=bool)
    if not any(s is not None for s in archive.shipped):
        return None
    idx = rows[shipped]
    total = post.draws[:, idx].sum(1)
    return {
        "shipped": int(len(idx)),
        "raw": float(archive.lift[idx].sum()),
        "shrunk": float(post.mean[idx].sum()),
        "interval80": [float(x) for x in np.quantile(total, [0.1, 0.9])],
        "mcse": _mcse(total, chains),
    }


def _block(
    fit: FormFit,
    archive: Archive,
    cat: int | None,
    weights: np.ndarray,
    settings: Settings,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """null share, new effect, effect size, shipped impact and the prior of one category (or of
    the whole archive for ``cat`` None)."""
    h = fit.hyper
    thr = settings.threshold
    if cat is None and h.mu_c.shape[1] > 1:
        # a new experiment drawn like the archive's rows: categories in their proportions
        c = rng.choice(h.mu_c.shape[1], size=h.n, p=weights)
        cols = [population_draws(h, k, PRED_REPS, rng) for k in range(h.mu_c.shape[1])]
        theta = np.stack(cols, axis=0)[c, np.arange(h.n)]
    else:
        theta = population_draws(h, 0 if cat is None else cat, PRED_REPS, rng)
    ns = null_share_draws(h, cat, thr, weights)
    real = theta[np.abs(theta) >= thr]
    rows = (
        np.arange(len(archive))
        if cat is None
        else np.flatnonzero(np.array([c == archive.categories[cat] for c in archive.category]))
    )
    out: dict[str, Any] = {
        "experiments": int(len(rows)),
        "null_share": _summ(ns, h.chains),
        "new_effect": _summ(theta.ravel()),
        "effect_size": {
            "median_abs": float(np.median(np.abs(real))) if real.size else 0.0,
            "interval80": [float(x) for x in np.quantile(real, [0.1, 0.9])]
            if real.size
            else [0.0, 0.0],
            "p_positive": float((real > 0).mean()) if real.size else float("nan"),
            "mcse_p_positive": float(
                np.sqrt((real > 0).mean() * (1 - (real > 0).mean()) / max(real.size / PRED_REPS, 1))
            )
            if real.size
            else float("nan"),
        },
        "prior": _prior_entry(theta, thr),
    }
    if h.form == "spike":
        out["spike_pi"] = _summ(h.pi, h.chains)
    imp = _impact(fit.posterior, archive, rows, h.chains)
    if imp is not None:
        out["shipped_impact"] = imp
    return out


def summarise(archive: Archive, fits: dict[str, FormFit], settings: Settings) -> dict[str, Any]:
    """The JSON object of `krsim archive` (documented in docs/guides/archive.md)."""
    from .archive_rules import rules_table
    from .posterior import diagnostic_warnings

    n = len(archive)
    form, why = select_form(fits)
    sel = fits[form]
    cats = archive.categories
    weights = (
        np.array([archive.category.count(c) for c in cats], dtype=float) / n
        if len(cats) > 1
        else np.ones(1)
    )
    d_t, s_t = _elpd_diff(fits["student_t"].loo, fits["normal"].loo)
    d_s, s_s = _elpd_diff(fits["spike"].loo, fits["normal"].loo)
    rng = np.random.default_rng([settings.seed, 11])
    whole = _block(sel, archive, None, weights, settings, rng)
    diag = sel.diagnostics
    out: dict[str, Any] = {
        "archive": str(archive.path),
        "archive_sha256": archive.sha256,
        "experiments": n,
        "threshold": settings.threshold,
        "form": form,
        "form_words": FORM_WORDS[form],
        "selection": why,
        "forms": _forms_table(fits, settings, weights),
        "heavy_tail": {"elpd_diff_t_vs_normal": d_t, "se": s_t},
        "spike_vs_normal": {"elpd_diff": d_s, "se": s_s},
        **{k: v for k, v in whole.items() if k != "experiments"},
        "shrunk": _shrunk_table(archive, sel.posterior),
        "diagnostics": {
            "rhat_max": float(diag["rhat_max"]),
            "ess_bulk_min": float(diag["ess_bulk_min"]),
            "divergences": int(diag["divergences"]),
            "warnings": diagnostic_warnings(diag, sel.hyper.n // sel.hyper.chains),
        },
    }
    if len(cats) > 1:
        out["categories"] = {
            c: _block(sel, archive, j, weights, settings, rng) for j, c in enumerate(cats)
        }
        out["category_sd"] = _summ(sel.hyper.cat_sd, sel.hyper.chains)
    out["rules"] = rules_table(archive, sel.posterior, settings, sel.hyper.chains)
    out["sentences"] = sentences(out)
    out["settings"] = dict(settings.__dict__)
    out["provenance"] = _provenance()
    return out


def _forms_table(
    fits: dict[str, FormFit], settings: Settings, weights: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Per form: its PSIS-LOO (elpd, its difference from the best and stacking weight, by
    `arviz.compare`), the experiments whose Pareto k is above 0.7, its time, its null share and
    its sampler's diagnostics."""
    import arviz as az

    with quiet_warnings():
        table = az.compare({f: fits[f].loo for f in fits}, round_to="none")
    forms = {}
    for f, fit in fits.items():
        k = np.asarray(fit.loo.pareto_k).ravel()
        forms[f] = {
            "elpd_loo": float(fit.loo.elpd),
            "se": float(fit.loo.se),
            "p_loo": float(fit.loo.p),
            "elpd_diff": float(table.loc[f, "elpd_diff"]),
            "dse": float(table.loc[f, "dse"]),
            "stacking_weight": float(table.loc[f, "weight"]),
            "pareto_k_above_0.7": int((k > 0.7).sum()),
            "seconds": round(fit.seconds, 1),
            "null_share": _summ(null_share_draws(fit.hyper, None, settings.threshold, weights)),
            "diagnostics": {
                k2: (float(v) if isinstance(v, float | np.floating) else v)
                for k2, v in fit.diagnostics.items()
            },
        }
    return forms


def _shrunk_table(archive: Archive, post: Posterior) -> dict[str, dict[str, Any]]:
    """Per experiment: its measured lift and standard error, the shrunk estimate with its 80%
    interval and P(effect > 0), and what the archive says of it."""
    shrunk = {}
    for i, key in enumerate(archive.keys):
        lo, hi = np.quantile(post.draws[:, i], [0.1, 0.9])
        shrunk[key] = {
            "lift": float(archive.lift[i]),
            "se": float(archive.se[i]),
            "shrunk": float(post.mean[i]),
            "interval80": [float(lo), float(hi)],
            "p_positive": float(post.p_positive[i]),
            "category": archive.category[i],
            "shipped": archive.shipped[i],
            "metric": archive.metric[i],
        }
    return shrunk


def _provenance() -> dict[str, Any]:
    from ..version import __version__

    return {
        "krsim": __version__,
        "pymc": _versions()["pymc"],
        "arviz": _versions()["arviz"],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _versions() -> dict[str, str]:
    from ..io.cache import versions

    return versions("pymc", "arviz")


def pct(x: float, signed: bool = True) -> str:
    return f"{x:+.1%}" if signed else f"{x:.1%}"


def sentences(s: dict[str, Any]) -> list[str]:
    """What the archive says, in plain words."""
    n = s["experiments"]
    ns, ne, es = s["null_share"], s["new_effect"], s["effect_size"]
    thr = s["threshold"]
    out = [
        f"From {n} past experiments: about {ns['median']:.0%} of changes do practically nothing "
        f"(true effect within ±{thr:.1%}; 80% interval {ns['interval80'][0]:.0%} to "
        f"{ns['interval80'][1]:.0%}).",
        f"Those that do something move the metric by {pct(es['median_abs'], False)} typically "
        f"(in either direction; 80% of them between {pct(es['interval80'][0])} and "
        f"{pct(es['interval80'][1])}, {es['p_positive']:.0%} ± {es['mcse_p_positive']:.0%} of "
        "them upwards).",
        f"A new experiment's true effect: median {pct(ne['median'])}, 80% interval "
        f"{pct(ne['interval80'][0])} to {pct(ne['interval80'][1])}.",
    ]
    if n <= 10:
        out.append(
            f"With only {n} experiments these numbers are very uncertain: the intervals above are "
            "wide because the archive cannot pin the effect distribution down, not because of "
            "the model."
        )
    shares = {f: d["null_share"]["median"] for f, d in s.get("forms", {}).items()}
    if shares and max(shares.values()) - min(shares.values()) > 0.15:
        out.append(
            "The forms disagree on how many changes do nothing ("
            + ", ".join(f"{f.replace('_', '-')} {v:.0%}" for f, v in shares.items())
            + "): the archive's standard errors are too large to tell many exact nulls from many "
            "small effects, so read the share as a range across forms."
        )
    ht = s["heavy_tail"]
    out.append(
        f"Fat tails: the Student-t form predicts left-out experiments "
        f"{'better' if ht['elpd_diff_t_vs_normal'] > 0 else 'no better'} than the normal "
        f"(elpd difference {ht['elpd_diff_t_vs_normal']:+.1f} ± {ht['se']:.1f})."
    )
    imp = s.get("shipped_impact")
    if imp:
        out.append(
            f"The {imp['shipped']} shipped changes add up to {pct(imp['raw'])} as measured, "
            f"{pct(imp['shrunk'])} once each estimate is shrunk for the winner's curse (80% "
            f"interval {pct(imp['interval80'][0])} to {pct(imp['interval80'][1])})."
        )
    return out


# ---------------------------------------------------------------- views and the CLI's text


def category_view(summary: dict[str, Any], category: str) -> dict[str, Any]:
    """The summary seen from one category: its block at the top level, its experiments only."""
    block = summary["categories"][category]
    out = dict(summary)
    out.pop("categories", None)
    out.update({k: v for k, v in block.items()})
    out["category"] = category
    out["shrunk"] = {k: v for k, v in summary["shrunk"].items() if v["category"] == category}
    out["sentences"] = sentences(out)
    return out


def text_summary(summary: dict[str, Any], *, rules: bool = False, from_cache: bool = False) -> str:
    """The terminal output of `krsim archive`."""
    lines = []
    head = f"{summary['archive']}: {summary['experiments']} experiments"
    if summary.get("category"):
        head += f" in category {summary['category']!r} (fitted with the whole archive)"
    lines.append(head + (" (cached fit)" if from_cache else ""))
    lines.append(f"form: {summary['form_words']}. {summary['selection']}")
    lines.append("")
    lines += [f"- {x}" for x in summary["sentences"]]
    if "categories" in summary:
        lines += ["", "per category (partial pooling around a shared mean):"]
        w = max(len(c) for c in summary["categories"])
        for c, b in summary["categories"].items():
            lines.append(
                f"  {c:<{w}}  {b['experiments']:>3} experiments  does nothing "
                f"{b['null_share']['median']:.0%} [{b['null_share']['interval80'][0]:.0%}, "
                f"{b['null_share']['interval80'][1]:.0%}]  new effect "
                f"{pct(b['new_effect']['median'])} [{pct(b['new_effect']['interval80'][0])}, "
                f"{pct(b['new_effect']['interval80'][1])}]"
            )
    lines += ["", "forms compared by PSIS-LOO (elpd, higher predicts left-out experiments better):"]
    for f, d in summary["forms"].items():
        mark = "  <- kept" if f == summary["form"] else ""
        lines.append(
            f"  {f:<10} elpd {d['elpd_loo']:8.1f} ± {d['se']:.1f}   diff {d['elpd_diff']:+6.1f} "
            f"± {d['dse']:.1f}{mark}"
        )
    lines += ["", "each experiment: measured lift -> shrunk estimate (80% interval)"]
    w = max([len(k) for k in summary["shrunk"]] + [4])
    for k, v in summary["shrunk"].items():
        sh = {True: " shipped", False: "", None: ""}[v["shipped"]]
        lines.append(
            f"  {k:<{w}}  {pct(v['lift']):>7} ± {v['se']:.1%}  ->  {pct(v['shrunk']):>7} "
            f"[{pct(v['interval80'][0])}, {pct(v['interval80'][1])}]{sh}"
        )
    if rules:
        from .archive_rules import text_rules

        lines += ["", *text_rules(summary["rules"])]
    for wn in summary["diagnostics"]["warnings"]:
        lines.append(f"warning: {wn}")
    return "\n".join(lines)


# ------------------------------------------------------------------- priors from the archive


_prior_memo: dict[tuple[str, str, str], dict[str, Any]] = {}


def archive_prior(path: str | Path, category: str | None) -> dict[str, Any]:
    """The prior entry (`_prior_entry`) of a new experiment's effect in ``category`` (None: a new
    experiment drawn like the archive's rows), from the cached fit of the archive at ``path``
    (fitted with the default `Settings` on a cache miss)."""
    archive = read_archive(path)
    problem = category_problem(archive, category)
    if problem:
        raise InputError([f"{path}: {problem}"])
    memo_key = (str(Path(path).resolve()), archive.sha256, category or ALL)
    if memo_key not in _prior_memo:
        summary = analyse(archive, PRIOR_SETTINGS).summary
        block = summary["categories"][category] if category and "categories" in summary else summary
        entry = dict(block["prior"])
        entry["form"] = summary["form"]
        entry["experiments"] = block.get("experiments", summary["experiments"])
        _prior_memo[memo_key] = entry
    return _prior_memo[memo_key]


def combine(comp: list[list[float]], mean: float, sd: float) -> list[list[float]]:
    """The normalised product of a normal mixture's density and Normal(mean, sd)'s (both on log
    factor): again a normal mixture, each component's weight scaled by how well it agrees with
    the team's belief."""
    out = []
    logs = []
    for w, m, s in comp:
        v = 1 / (1 / s**2 + 1 / sd**2)
        mm = v * (m / s**2 + mean / sd**2)
        logs.append(np.log(w) + _norm_lp(mean, m, s**2 + sd**2))
        out.append([mm, float(np.sqrt(v))])
    logs = np.array(logs)
    wts = np.exp(logs - np.logaddexp.reduce(logs))
    return [[float(wi), float(mi), float(si)] for wi, (mi, si) in zip(wts, out, strict=True)]


PRIOR_SETTINGS = Settings()  # the fit a scenario's `from_archive` prior reads (default settings)
