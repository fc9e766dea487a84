"""The Bayesian funnel model: built by a pure function from scenario and data, fitted with a cache.

Traffic (the root stage): ``n[t] ~ NegativeBinomial(exp(level [+ trend * t] [+ u[t]]), alpha)``.
Every other stage and every segment ("rate node") with parent p:
``n[t] ~ Binomial(n_p[t], invlogit(eta[t]))``, ``eta[t] = mu [+ slope * t] + e[t]`` where the
period effects ``e`` (and, with AR(1), ``u``) are iid ``Normal(0, sigma)`` or a stationary AR(1)
with marginal sd ``sigma`` and coefficient ``rho`` in (0, 1). Each node's period rates are centred
(sampled directly) when its data pin down each period's rate and non-centred otherwise
(`centred_nodes`); the posterior is the same either way, only the sampler's geometry differs.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import cache
from .data import CountTable, require_complete
from .scenario import Scenario

if TYPE_CHECKING:
    from .experiment import ExperimentData

MODEL_VERSION = 3


@dataclass(frozen=True)
class Structure:
    """The funnel as the model sees it: the root, and rate nodes with their parents."""

    root: str
    nodes: tuple[str, ...]  # non-root stages then segments
    parents: tuple[str, ...]

    @classmethod
    def of(cls, scenario: Scenario) -> Structure:
        nodes, parents = [], []
        for s, st in scenario.funnel.items():
            if st.from_ is not None:
                nodes.append(s)
                parents.append(st.from_)
        for g, seg in scenario.segments.items():
            nodes.append(g)
            parents.append(seg.of)
        return cls(scenario.root, tuple(nodes), tuple(parents))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def build_model(
    scenario: Scenario,
    history: CountTable,
    experiment: ExperimentData | None = None,
    *,
    centred: np.ndarray | None = None,
):
    """The PyMC model of the history, and of an experiment's results when given (pure: same
    inputs, same model; the experiment's likelihood lives in `experiment.py`). ``centred`` fixes
    which rate nodes are centred (default: chosen from the history by `centred_nodes`)."""
    import pymc as pm
    import pytensor.tensor as pt

    mb = scenario.model
    st = Structure.of(scenario)
    T = len(history)
    t = period_times(T)
    y = history.counts[st.root]
    n_node = np.stack([history.counts[n] for n in st.nodes]) if st.nodes else np.zeros((0, T))
    n_par = np.stack([history.counts[p] for p in st.parents]) if st.nodes else np.zeros((0, T))
    coords = {"period": list(history.labels), "node": list(st.nodes)}
    ar1 = mb.period_effects == "ar1"
    with pm.Model(coords=coords) as model:
        level = pm.Normal("level", float(np.log(max(y.mean(), 1.0))), mb.level_sd)
        log_mu = level + pt.zeros(T)
        if mb.trend:
            trend = pm.Normal("trend", 0.0, mb.trend_sd)
            log_mu = log_mu + trend * t
        if ar1:
            # The traffic's extra-Poisson variation split into a part that persists (a stationary
            # AR(1), non-centred) and the negative binomial's iid overdispersion. Parameterised by
            # its total (log-scale variance) and the share that persists: a year of weeks pins the
            # total but barely the split, and in (alpha, sigma) that is a curved ridge the sampler
            # diverges on; in (total, share) it is one bounded direction.
            total = pm.HalfNormal("traffic_sd", mb.traffic_sd_scale)
            share = pm.Beta("traffic_share", mb.traffic_share_a, mb.traffic_share_b)
            var = total**2
            alpha = pm.Deterministic("alpha", 1.0 / pt.maximum((1 - share) * var, 1e-8))
            sigma_u = pm.Deterministic("traffic_sigma", pt.sqrt(share * var))
            rho_u = pm.Beta("traffic_rho", mb.traffic_rho_a, mb.traffic_rho_b)
            z_u = pm.Normal("traffic_z", 0.0, 1.0, dims="period")
            u = pm.Deterministic("traffic_e", ar1_filter(z_u, sigma_u, rho_u, pt, T), dims="period")
            log_mu = log_mu + u
        else:
            alpha = pm.Gamma("alpha", alpha=mb.alpha_shape, beta=mb.alpha_rate)
        pm.NegativeBinomial(
            "traffic_obs", mu=pt.exp(log_mu), alpha=alpha, observed=y, dims="period"
        )
        if st.nodes:
            mu = pm.Normal("rate_mu", 0.0, mb.rate_mu_sd, dims="node")
            sigma = pm.HalfNormal("rate_sigma", mb.rate_sigma_scale, dims="node")
            base = mu[:, None] + pt.zeros((len(st.nodes), T))
            if mb.rate_trend:
                slope = pm.Normal("rate_trend", 0.0, mb.rate_trend_sd, dims="node")
                base = base + slope[:, None] * t
            rho = pm.Beta("rate_rho", mb.rho_a, mb.rho_b, dims="node") if ar1 else None
            if centred is None:
                centred = centred_nodes(n_node, n_par)
            eta = _rate_effects(base, sigma, rho, np.asarray(centred, dtype=bool), T)
            pm.Binomial("rate_obs", n=n_par, logit_p=eta, observed=n_node, dims=("node", "period"))
        if experiment is not None:
            from .experiment import add_likelihood

            # the experiment runs after the history: with rate trends, at the next period's mean
            mean = mu + slope * period_times(T, T, 1)[0] if mb.rate_trend else mu
            add_likelihood(scenario, experiment, st.nodes, mean)
    return model


def period_times(T: int, start: int = 0, n: int | None = None) -> np.ndarray:
    """The trends' time covariate: periods counted from the middle of a ``T``-period history, for
    periods ``start`` to ``start + n - 1`` (default: the history itself; ``start = T``: what
    follows it)."""
    return np.arange(start, start + (T if n is None else n)) - (T - 1) / 2


def centred_nodes(n_node: np.ndarray, n_par: np.ndarray) -> np.ndarray:
    """Per rate node: True when the data pin down each period's rate, so the centred form samples
    best; False when binomial noise dominates the week-to-week variation, where the centred form
    has a funnel between ``sigma`` and the period rates and the non-centred form is the right one.

    Compares the binomial sampling variance of a period's empirical logit rate with the
    between-period variance left after removing it (measured in `make bench`: on a 12-stage,
    104-period funnel the mixed form gives 35x the effective draws per second of the all-centred
    one, and 2x on the seed scenario, with no divergences).
    """
    p = (n_node + 0.5) / (n_par + 1.0)
    logit = np.log(p) - np.log1p(-p)
    noise = 1.0 / (n_par * p * (1 - p) + 1e-9)
    between = logit.var(axis=1) - noise.mean(axis=1)
    return between > noise.mean(axis=1)


def ar1_filter(z, sigma, rho, xp, T: int | None = None):
    """A stationary AR(1) with marginal sd ``sigma`` and coefficient ``rho`` from standard normal
    innovations ``z`` (last axis: ``T`` periods), written with ``xp`` (numpy or pytensor.tensor).

    ``e[0] = sigma z[0]``, ``e[t] = rho e[t-1] + sigma sqrt(1 - rho^2) z[t]``, computed as a
    log2(T)-step doubling scan (``e[t] += rho^k e[t-k]`` for k = 1, 2, 4, ...) so that the
    non-centred form costs O(T log T) plain tensor operations and no loop in the graph."""
    sig = sigma[..., None] if getattr(sigma, "ndim", 0) else sigma
    r = rho[..., None] if getattr(rho, "ndim", 0) else rho
    T = z.shape[-1] if T is None else T
    scale = xp.concatenate(
        [xp.ones_like(z[..., :1]), xp.sqrt(1 - r**2) * xp.ones_like(z[..., 1:])], axis=-1
    )
    e = sig * scale * z
    k, rk = 1, r
    while k < T:
        shifted = xp.concatenate([xp.zeros_like(e[..., :k]), e[..., :-k]], axis=-1)
        e = e + rk * shifted
        k, rk = 2 * k, rk * rk
    return e


def _rate_effects(base, sigma, rho, centred: np.ndarray, T: int):
    """Logit rates per node (rows) and period: ``base`` (the mean, with its trend) plus period
    effects, iid ``Normal(0, sigma)`` when ``rho`` is None, else a stationary
    AR(1) with marginal sd ``sigma`` and coefficient ``rho`` (saved as ``rate_e``).

    Nodes whose data pin each period down are centred: their rates are sampled directly
    (``rate_eta_c``; with AR(1), a flat variable carrying the AR(1) log density). The others
    are non-centred, from standard normals (``rate_z``). The posterior is the same either way."""
    import pymc as pm
    import pytensor.tensor as pt

    c, nc = np.flatnonzero(centred), np.flatnonzero(~centred)
    eta = pt.zeros((len(centred), T))
    if len(nc):
        z = pm.Normal("rate_z", 0.0, 1.0, shape=(len(nc), T))
        e = sigma[nc, None] * z if rho is None else ar1_filter(z, sigma[nc], rho[nc], pt, T)
        eta = pt.set_subtensor(eta[nc], base[nc] + e)
    if len(c):
        if rho is None:
            x = pm.Normal("rate_eta_c", base[c], sigma[c, None], shape=(len(c), T))
        else:
            x = pm.Flat("rate_eta_c", shape=(len(c), T))
            e = x - base[c]
            s, r = sigma[c, None], rho[c, None]
            innov = pm.logp(pm.Normal.dist(0.0, s * pt.sqrt(1 - r**2)), e[:, 1:] - r * e[:, :-1])
            first = pm.logp(pm.Normal.dist(0.0, sigma[c]), e[:, 0])
            pm.Potential("rate_ar1", innov.sum() + first.sum())
        eta = pt.set_subtensor(eta[c], x)
    if rho is not None:
        pm.Deterministic("rate_e", eta - base, dims=("node", "period"))
    return eta


def fit_key(
    scenario: Scenario, history: CountTable, experiment: ExperimentData | None = None
) -> str:
    st = Structure.of(scenario)
    mb = scenario.model.model_dump()
    parts = {
        "model_version": MODEL_VERSION,
        "history": history.digest(),
        "structure": [st.root, st.nodes, st.parents],
        "model": mb,
        "seed": scenario.seed,
        "versions": cache.versions("pymc", "pytensor", "nutpie", "numpy"),
    }
    if experiment is not None:  # without one, the key is the history-only key
        from .experiment import key_parts

        parts["experiment"] = key_parts(scenario, experiment)
    return cache.key_of(parts)


@dataclass
class Fit:
    """Posterior draws of the history model, as plain arrays of shape (chains, draws[, ...])."""

    key: str
    arrays: dict[str, np.ndarray]
    diagnostics: dict[str, Any]
    n_periods: int
    nodes: tuple[str, ...]
    from_cache: bool = False
    path: Path | None = None
    seconds: float = 0.0
    _datatree: Any = field(default=None, repr=False)

    @property
    def chains(self) -> int:
        return self.arrays["level"].shape[0]

    @property
    def n_draws(self) -> int:
        return self.arrays["level"].shape[0] * self.arrays["level"].shape[1]

    def flat(self, name: str) -> np.ndarray:
        a = self.arrays[name]
        return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])

    def node(self, name: str, node: str) -> np.ndarray:
        """Flat draws of a per-node quantity (``rate_mu``, ``rate_sigma``, ``rate_rho``, ``rate_elast``)."""
        return self.flat(name)[:, self.nodes.index(node)]

    @property
    def datatree(self):
        """The fit's ArviZ DataTree (loaded lazily from the cache entry)."""
        if self._datatree is None and self.path is not None:
            import xarray as xr

            self._datatree = xr.open_datatree(self.path / "trace.zarr", engine="zarr")
        return self._datatree


_SAVED = (
    "level",
    "trend",
    "alpha",
    "rate_trend",
    "rate_mu",
    "rate_sigma",
    "rate_rho",
    "traffic_sigma",
    "traffic_rho",
)


def _extract(dt, T: int, ar1: bool) -> dict[str, np.ndarray]:
    post = dt["posterior"]
    out = {n: np.asarray(post[n].values) for n in _SAVED if n in post}
    if ar1:
        out["rate_elast"] = np.asarray(post["rate_e"].values)[..., -1]
        out["traffic_elast"] = np.asarray(post["traffic_e"].values)[..., -1]
    return out


def _diagnostics(dt) -> dict[str, Any]:
    import arviz as az

    post = dt["posterior"]
    names = [n for n in post.data_vars if not n.endswith("_e")]
    summ = az.summary(dt, var_names=names, kind="diagnostics", round_to="none")
    rhat = float(np.nanmax(summ["r_hat"].values))
    ess_bulk = float(np.nanmin(summ["ess_bulk"].values))
    ess_tail = float(np.nanmin(summ["ess_tail"].values))
    div = 0
    if "sample_stats" in dt and "diverging" in dt["sample_stats"]:
        div = int(np.asarray(dt["sample_stats"]["diverging"].values).sum())
    worst = str(summ["r_hat"].idxmax()) if np.isfinite(rhat) else ""
    return {
        "rhat_max": rhat,
        "rhat_worst": worst,
        "ess_bulk_min": ess_bulk,
        "ess_tail_min": ess_tail,
        "divergences": div,
    }


def diagnostic_warnings(d: dict[str, Any], n_draws: int) -> list[str]:
    """Sampler problems in plain words."""
    out = []
    if d["divergences"]:
        out.append(
            f"The sampler hit {d['divergences']} divergent transitions: parts of the posterior may be "
            "missed, so probabilities can be off. More tuning (model.tune) or more history usually helps."
        )
    if d["rhat_max"] > 1.01:
        out.append(
            f"The chains disagree (R-hat {d['rhat_max']:.3f} for {d.get('rhat_worst') or 'a parameter'}, "
            "should be below 1.01): the fit has not converged; treat the numbers as rough."
        )
    if d["ess_bulk_min"] < 400 or d.get("ess_tail_min", 1e9) < 400:
        out.append(
            f"Few effective draws (ESS {min(d['ess_bulk_min'], d.get('ess_tail_min', 1e9)):.0f}, "
            "want 400 or more): increase model.draws for steadier numbers."
        )
    return out


def fit(
    scenario: Scenario,
    history: CountTable,
    *,
    log=None,
    experiment: ExperimentData | None = None,
) -> Fit:
    """Fit the history model (with an experiment's results, when given), or load the fit from
    the cache when nothing that determines it changed."""
    require_complete(history)  # empty cells: not modelled yet, refused rather than imputed
    log = log or (lambda msg: print(msg, file=sys.stderr))
    key = fit_key(scenario, history, experiment)
    T = len(history)
    nodes = Structure.of(scenario).nodes
    hit = cache.entry(key)
    if hit is not None:
        try:
            with np.load(hit / "posterior.npz") as z:
                arrays = {k: z[k] for k in z.files}
            diag = json.loads((hit / "diagnostics.json").read_text())
            return Fit(key, arrays, diag, T, nodes, from_cache=True, path=hit)
        except (OSError, ValueError, KeyError):
            log("warning: the cached fit is unreadable; fitting again")
            cache.discard(key)

    t0 = time.perf_counter()
    what = f"{T} periods of history" + (" and the experiment" if experiment is not None else "")
    log(f"Fitting the funnel model to {what} (later runs reuse this fit)...")
    dt = sample(scenario, history, experiment=experiment)
    arrays = _extract(dt, T, scenario.model.period_effects == "ar1")
    if experiment is not None:
        from .experiment import extract

        arrays.update(extract(dt, scenario, experiment))
    diag = _diagnostics(dt)
    seconds = time.perf_counter() - t0

    def write(d: Path) -> None:
        np.savez(d / "posterior.npz", **arrays)
        (d / "diagnostics.json").write_text(json.dumps(diag))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr notes its v3 metadata format; not actionable
            dt.to_zarr(d / "trace.zarr")

    path = cache.store(key, write)
    result = Fit(key, arrays, diag, T, nodes, path=path, seconds=seconds)
    result._datatree = dt
    return result


def sample(
    scenario: Scenario, history: CountTable, model=None, experiment: ExperimentData | None = None
):
    """Run NUTS on the model; returns the DataTree."""
    import warnings

    import pymc as pm

    mb = scenario.model
    model = model if model is not None else build_model(scenario, history, experiment)
    sampler = mb.sampler
    if sampler == "auto":
        sampler = "nutpie" if cache.versions("nutpie")["nutpie"] != "none" else "pymc"
    kwargs: dict[str, Any] = {}
    if sampler == "pymc":
        kwargs["cores"] = min(mb.chains, 2)
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pm.sample(
            draws=mb.draws,
            tune=mb.tune,
            chains=mb.chains,
            random_seed=scenario.seed,
            target_accept=mb.accept,
            nuts_sampler=sampler,
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
            **kwargs,
        )
