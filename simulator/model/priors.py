"""Prior specs -> distributions: interval elicitation and direct sampling with numpy.

Interval priors (`beta_interval`, `lognormal_interval`) are the maximum-entropy distribution of
their family with the stated mass inside the interval (as PreliZ's ``maxent`` does), solved with
scipy's constrained optimiser. The solutions are memoised on disk beside the fit cache, so a
cache-hit run imports neither scipy.optimize nor PyMC.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ..io.scenario import Prior


def _cache_file() -> Path | None:
    from ..io.cache import cache_dir

    d = cache_dir()
    return None if d is None else d / "elicited_priors.json"


_memo: dict[str, tuple[float, float]] = {}


def _load_memo() -> None:
    f = _cache_file()
    if f is None or _memo:
        return
    try:
        _memo.update({k: tuple(v) for k, v in json.loads(f.read_text()).items()})
    except (OSError, ValueError, TypeError):
        pass


def _save_memo() -> None:
    f = _cache_file()
    if f is None:
        return
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(_memo, fh)
        os.replace(tmp, f)
    except OSError:
        pass


def _maxent_beta(lo: float, hi: float, mass: float) -> tuple[float, float]:
    from scipy import optimize, special

    def entropy(x: np.ndarray) -> float:
        a, b = np.exp(x)
        return float(
            special.betaln(a, b)
            - (a - 1) * special.digamma(a)
            - (b - 1) * special.digamma(b)
            + (a + b - 2) * special.digamma(a + b)
        )

    def inside(x: np.ndarray) -> float:
        a, b = np.exp(x)
        return float(special.betainc(a, b, hi) - special.betainc(a, b, lo))

    # Start from the Beta whose mean is the interval's midpoint and whose sd is a quarter of its width.
    m, sd = (lo + hi) / 2, max((hi - lo) / 4, 1e-3)
    k = max(m * (1 - m) / sd**2 - 1, 0.5)
    x0 = np.log([max(m * k, 0.05), max((1 - m) * k, 0.05)])
    res = optimize.minimize(
        lambda x: -entropy(x),
        x0,
        method="SLSQP",
        constraints=[{"type": "eq", "fun": lambda x: inside(x) - mass}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    a, b = np.exp(res.x)
    if not res.success or abs(inside(res.x) - mass) > 1e-4:
        raise ValueError(f"could not fit a Beta with {mass:.0%} of its mass in [{lo}, {hi}]")
    return float(a), float(b)


def _maxent_lognormal(lo: float, hi: float, mass: float) -> tuple[float, float]:
    """Maximise the entropy (mu + log sigma + const) subject to the mass: for each mu the constraint
    fixes sigma (the mass inside falls as sigma grows), leaving a one-dimensional maximisation."""
    from scipy import optimize, special

    la, lb = math.log(lo), math.log(hi)

    def inside(mu: float, s: float) -> float:
        return float(special.ndtr((lb - mu) / s) - special.ndtr((la - mu) / s))

    def sigma_at(mu: float) -> float:
        if inside(mu, 1e-12) < mass:  # mu outside the interval's reach
            return 1e-12
        return optimize.brentq(lambda s: inside(mu, s) - mass, 1e-12, 1e3 * (lb - la), xtol=1e-14)

    res = optimize.minimize_scalar(
        lambda mu: -(mu + math.log(sigma_at(mu))),
        bounds=(la, lb),
        method="bounded",
        options={"xatol": 1e-10},
    )
    mu = float(res.x)
    sigma = sigma_at(mu)
    if abs(inside(mu, sigma) - mass) > 1e-6:
        raise ValueError(f"could not fit a LogNormal with {mass:.0%} of its mass in [{lo}, {hi}]")
    return mu, sigma


def elicit(prior: Prior) -> tuple[str, tuple[float, ...]]:
    """The distribution family and parameters a prior spec stands for.

    beta/beta_interval -> ("beta", (a, b)); lognormal_interval -> ("lognormal", (mu, sigma));
    normal -> ("normal", (mu, sigma)); uniform -> ("uniform", (lo, hi)); fixed -> ("fixed", (x,));
    from_archive -> ("lognormal_mixture", (w1, m1, s1, w2, m2, s2, ...)): the log factor is a
    normal mixture, fitted to the archive's predictive draws of a new effect
    (`simulator.model.archive.archive_prior`), times the team's `with` lognormal when given (the
    normalised product of the densities, again a normal mixture: `simulator.model.archive.combine`).
    """
    kind, v = prior.kind, prior.value
    if kind == "from_archive":  # the archive's mixture, times the team's lognormal (`with`)
        from .archive import archive_prior, combine

        ref = prior.from_archive
        comp = archive_prior(ref.path, ref.category)["components"]
        if prior.with_ is not None:
            _, (m, s) = elicit(prior.with_)
            comp = combine(comp, m, s)
        return "lognormal_mixture", tuple(float(x) for c in comp for x in c)
    if kind == "fixed":
        return "fixed", (float(v),)
    if kind in ("beta", "normal", "uniform"):
        return kind, (float(v[0]), float(v[1]))
    lo, hi, mass = float(v[0]), float(v[1]), prior.interval_mass
    key = f"{kind}:{lo!r}:{hi!r}:{mass!r}"
    _load_memo()
    if key not in _memo:
        fit = _maxent_beta if kind == "beta_interval" else _maxent_lognormal
        _memo[key] = fit(lo, hi, mass)
        _save_memo()
    family = "beta" if kind == "beta_interval" else "lognormal"
    return family, _memo[key]


def sample(prior: Prior, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draws from the prior (numpy only)."""
    family, p = elicit(prior)
    if family == "fixed":
        return np.full(size, p[0])
    if family == "beta":
        return rng.beta(p[0], p[1], size)
    if family == "lognormal":
        return rng.lognormal(p[0], p[1], size)
    if family == "lognormal_mixture":
        w, m, s = np.asarray(p).reshape(-1, 3).T
        k = np.minimum(
            (np.cumsum(w / w.sum())[None, :] < rng.uniform(size=(size, 1))).sum(1), len(w) - 1
        )
        return np.exp(m[k] + s[k] * rng.standard_normal(size))
    if family == "normal":
        return rng.normal(p[0], p[1], size)
    return rng.uniform(p[0], p[1], size)


def pymc_dist(name: str, prior: Prior):
    """The prior as a PyMC random variable inside the current model context."""
    import pymc as pm

    family, p = elicit(prior)
    if family == "fixed":
        return pm.Deterministic(name, pm.math.constant(p[0]))
    if family == "beta":
        return pm.Beta(name, alpha=p[0], beta=p[1])
    if family == "lognormal":
        return pm.LogNormal(name, mu=p[0], sigma=p[1])
    if family == "lognormal_mixture":  # a normal mixture on the log factor
        w, m, s = np.asarray(p).reshape(-1, 3).T
        log_x = pm.NormalMixture(f"{name}__log", w=w, mu=m, sigma=s)
        return pm.Deterministic(name, pm.math.exp(log_x))
    if family == "normal":
        return pm.Normal(name, mu=p[0], sigma=p[1])
    return pm.Uniform(name, lower=p[0], upper=p[1])


def quantiles(prior: Prior, qs: np.ndarray | list[float]) -> np.ndarray:
    """Exact quantiles of the prior (scipy.special only)."""
    from scipy import special

    qs = np.asarray(qs, dtype=float)
    family, p = elicit(prior)
    if family == "fixed":
        return np.full(qs.shape, p[0])
    if family == "beta":
        return special.betaincinv(p[0], p[1], qs)
    if family == "lognormal":
        return np.exp(p[0] + p[1] * special.ndtri(qs))
    if family == "lognormal_mixture":
        from .archive import mixture_quantiles

        comp = np.asarray(p).reshape(-1, 3).tolist()
        return np.exp(mixture_quantiles(comp, qs.ravel())).reshape(qs.shape)
    if family == "normal":
        return p[0] + p[1] * special.ndtri(qs)
    return p[0] + (p[1] - p[0]) * qs
