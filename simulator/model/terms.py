"""The building blocks of the funnel model, each a function of explicit tensors and designs that
adds its random variables to the PyMC model in context and returns the tensors it makes.

The traffic (one series), the rate nodes and the value stages (``rows`` series each) share them:

- `profile`: a periodic profile (the yearly Fourier terms, the day of week), coefficients
  ``{name}_beta`` shrunk toward a flat profile by a scale ``{name}_sd``;
- `linear_trend`: a slope per series times the trend covariate;
- `walk`: a random walk in its slowest Karhunen-Loeve terms, step sd ``{prefix}drift_sd``;
- `drift_mixture`: "the level drifts" against "it is steady", the indicator summed out;
- `one_off_effects`: the events' own effects, one per period (and series) an event covers;
- `period_effects`: the period effects of rows of series, iid or a stationary AR(1), each row
  centred or not;
- `ar1_filter`: a stationary AR(1) from standard normal innovations (numpy or PyTensor).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def profile(
    name: str,
    design: np.ndarray,
    scale: float,
    *,
    rows: int | None = None,
    dims: str | None = None,
    clear: Any = None,
    harmonics: np.ndarray | None = None,
) -> Any:
    """A periodic profile's effect: ``design`` (periods x terms) times coefficients ``beta``,
    ``beta = sd * z`` with ``sd ~ HalfNormal(scale)`` (``{name}_sd``) and standard normal ``z``
    (``{name}_z``), saved as ``{name}_beta``; with ``harmonics`` (the Fourier terms' harmonic
    numbers) divided by them, which shrinks the faster waves more.

    One series (``rows`` None): returns (periods,); with ``clear`` true the coefficients are
    sampled directly (centred, ``{name}_beta ~ Normal(0, sd / harmonics)``). ``rows`` series:
    one ``sd`` per row (``dims``), returns (rows, periods); with ``clear`` (a bool per row) the
    clear rows' coefficients are centred (``{name}_bc``) and the others not."""
    import pymc as pm
    import pytensor.tensor as pt

    K = columns(design)
    if rows is None:
        sd = pm.HalfNormal(f"{name}_sd", scale)
        if clear:
            beta = pm.Normal(f"{name}_beta", 0.0, sd / harmonics, shape=K)
        else:
            beta = sd * pm.Normal(f"{name}_z", 0.0, 1.0, shape=K)
            beta = pm.Deterministic(f"{name}_beta", _shrunk(beta, harmonics))
        return pt.dot(design, beta)
    sd = pm.HalfNormal(f"{name}_sd", scale, dims=dims)
    if clear is None:
        beta = sd[:, None] * pm.Normal(f"{name}_z", 0.0, 1.0, shape=(rows, K))
        beta = _shrunk(beta, harmonics)
    else:
        c, nc = np.flatnonzero(clear), np.flatnonzero(~np.asarray(clear, dtype=bool))
        beta = pt.zeros((rows, K))
        if len(c):
            bc = pm.Normal(f"{name}_bc", 0.0, sd[c, None] / harmonics, shape=(len(c), K))
            beta = pt.set_subtensor(beta[c], bc)
        if len(nc):
            z = pm.Normal(f"{name}_z", 0.0, 1.0, shape=(len(nc), K))
            beta = pt.set_subtensor(beta[nc], _shrunk(sd[nc, None] * z, harmonics))
    return pt.dot(pm.Deterministic(f"{name}_beta", beta), design.T)


def columns(x: Any) -> int:
    """The last axis's length of a numpy array or of a data container of fixed shape."""
    return int(x.type.shape[-1]) if hasattr(x, "type") else int(x.shape[-1])


def _shrunk(beta: Any, harmonics: np.ndarray | None) -> Any:
    return beta if harmonics is None else beta / harmonics


def linear_trend(name: str, sd: float, times: np.ndarray, dims: str | None = None):
    """A slope ``Normal(0, sd)`` (one, or one per ``dims`` entry) and its effect: slope times
    ``times`` (periods, or rows x periods)."""
    import pymc as pm

    if dims is None:
        slope = pm.Normal(name, 0.0, sd)
        return slope, slope * times
    slope = pm.Normal(name, 0.0, sd, dims=dims)
    return slope, slope[:, None] * times


def walk(
    prefix: str,
    last: str,
    basis: np.ndarray,
    scale: float,
    *,
    rows: int | None = None,
    dims: str | None = None,
) -> Any:
    """A random walk over the periods in its slowest Karhunen-Loeve terms (``basis``, periods x
    terms: `design.walk_basis`): ``sd * basis @ z``, step sd ``{prefix}drift_sd ~
    HalfNormal(scale)``, ``{prefix}drift_z`` standard normal. Returns the path (periods, or rows x
    periods with ``rows``); only where it ends is saved (``last``): the forecast continues from
    it."""
    import pymc as pm
    import pytensor.tensor as pt

    if rows is None:
        sd = pm.HalfNormal(f"{prefix}drift_sd", scale)
        z = pm.Normal(f"{prefix}drift_z", 0.0, 1.0, shape=columns(basis))
        path = sd * pt.dot(basis, z)
        pm.Deterministic(last, path[-1])
        return path
    sd = pm.HalfNormal(f"{prefix}drift_sd", scale, dims=dims)
    z = pm.Normal(f"{prefix}drift_z", 0.0, 1.0, shape=(rows, columns(basis)))
    path = sd[:, None] * pt.dot(z, basis.T)
    pm.Deterministic(last, path[:, -1], dims=dims)
    return path


def drift_mixture(name: str, weight: str, prob: float, on: Any, off: Any = 0.0) -> None:
    """Model averaging over "the level drifts" (prior probability ``prob``; ``on``: the log
    density of the data given a drift) and "it is steady" (``off``), the indicator summed out:
    a potential ``name`` and each draw's posterior probability of the drift, ``weight``."""
    import pymc as pm
    import pytensor.tensor as pt

    on = np.log(prob) + on
    off = np.log1p(-prob) + off
    pm.Potential(name, pt.logaddexp(on, off))
    pm.Deterministic(weight, pt.sigmoid(on - off))


def one_off_effects(name: str, design: np.ndarray) -> Any:
    """The events' effects: one standard normal per column of ``design`` (an indicator matrix,
    last axis the effects), mapped onto the periods (and series)."""
    import pymc as pm
    import pytensor.tensor as pt

    effect = pm.Normal(name, 0.0, 1.0, shape=columns(design))
    if design.ndim == 2:
        return pt.dot(design, effect)
    return pt.tensordot(design, effect, axes=[[design.ndim - 1], [0]])


def period_effects(
    prefix: str, base: Any, sigma: Any, rho: Any, centred: np.ndarray, T: int, real: Any = None
):
    """Rows of series (rows x ``T`` periods): ``base`` (the mean, with its trend and profiles)
    plus period effects, iid ``Normal(0, sigma)`` when ``rho`` is None, else a stationary AR(1)
    with marginal sd ``sigma`` and coefficient ``rho`` (one per row).

    Rows whose data pin each period down are centred: their values are sampled directly
    (``{prefix}_eta_c``; with AR(1), a flat variable carrying the AR(1) log density as the
    potential ``{prefix}_ar1``). The others are non-centred, from standard normals
    (``{prefix}_z``). The posterior is the same either way.

    ``real`` (periods, 1 or 0; iid only): a centred row's values in the periods marked 0 (padded,
    with no data) are standard normals, so that nothing else depends on them."""
    import pymc as pm
    import pytensor.tensor as pt

    c, nc = np.flatnonzero(centred), np.flatnonzero(~centred)
    eta = pt.zeros((len(centred), T))
    if len(nc):
        z = pm.Normal(f"{prefix}_z", 0.0, 1.0, shape=(len(nc), T))
        e = sigma[nc, None] * z if rho is None else ar1_filter(z, sigma[nc], rho[nc], pt, T)
        eta = pt.set_subtensor(eta[nc], base[nc] + e)
    if len(c):
        if rho is None:
            mu, sd = base[c], sigma[c, None]
            if real is not None:
                mu, sd = real * mu, real * sd + (1.0 - real)
            x = pm.Normal(f"{prefix}_eta_c", mu, sd, shape=(len(c), T))
        else:
            x = pm.Flat(f"{prefix}_eta_c", shape=(len(c), T))
            e = x - base[c]
            s, r = sigma[c, None], rho[c, None]
            innov = pm.logp(pm.Normal.dist(0.0, s * pt.sqrt(1 - r**2)), e[:, 1:] - r * e[:, :-1])
            first = pm.logp(pm.Normal.dist(0.0, sigma[c]), e[:, 0])
            pm.Potential(f"{prefix}_ar1", innov.sum() + first.sum())
        eta = pt.set_subtensor(eta[c], x)
    return eta


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
    k = 1
    while k < T:
        shifted = xp.concatenate([xp.zeros_like(e[..., :k]), e[..., :-k]], axis=-1)
        # rho^k as one power: PyTensor's rewrites flatten repeated squaring into a product of k
        # copies of rho, which Python-mode evaluation cannot take beyond 32 operands
        e = e + r**k * shifted
        k *= 2
    return e


def shifted_normal_logp(dev: Any, shift: Any, sd: Any) -> Any:
    """log N(x; m + shift, sd) - log N(x; m, sd), summed, from ``dev = x - m``: what shifting the
    mean of normal latent values by a walk changes in their log density."""
    return (shift * (2 * dev - shift) / (2 * sd**2)).sum()
