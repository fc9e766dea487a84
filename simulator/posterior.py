"""The fitted posterior draws as plain numpy arrays: what everything above the model reads.

A `Fit` holds the draws of the history model (and of the tested change parameters when an
experiment was fitted with it), shape (chains, draws[, ...]), and the sampler's diagnostics. This
module imports no PyMC: the forecast, the decision and the analyses work from a cached fit without
loading the modelling stack. See docs/design.md §2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def period_times(T: int, start: int = 0, n: int | None = None) -> np.ndarray:
    """The trends' time covariate: periods counted from the middle of a ``T``-period history, for
    periods ``start`` to ``start + n - 1`` (default: the history itself; ``start = T``: what
    follows it)."""
    return np.arange(start, start + (T if n is None else n)) - (T - 1) / 2


@dataclass(frozen=True)
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
    # the history's calendar as the forecast needs it: {"dates": ISO dates of the fit's periods
    # or None, "seasonal": bool, "terms": K, "note": the sentence that says why (not) seasonal}
    calendar: dict[str, Any] = field(default_factory=dict)
    _datatree: Any = field(default=None, repr=False)

    def future_weekday(self, H: int) -> np.ndarray | None:
        """The day-of-week terms of the ``H`` periods after the fit's (daily periods only)."""
        if not self.calendar.get("weekly"):
            return None
        import datetime as dt

        from . import season

        dates = [dt.date.fromisoformat(d) for d in self.calendar["dates"]]
        return season.weekday(season.future_dates(dates, H))

    def future_season(self, H: int) -> np.ndarray | None:
        """The Fourier terms of the ``H`` periods after the fit's, or None without a season."""
        if not self.calendar.get("seasonal"):
            return None
        import datetime as dt

        from . import season

        dates = [dt.date.fromisoformat(d) for d in self.calendar["dates"]]
        return season.fourier(season.future_dates(dates, H), self.calendar["terms"])

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

            tree = xr.open_datatree(self.path / "trace.zarr", engine="zarr")
            object.__setattr__(self, "_datatree", tree)  # a cache of what the fit already is
        return self._datatree


def describe(scenario: Any, fit: Fit) -> dict[str, Any]:
    """The forecast's season, drift and trend choices, as data and in one sentence."""
    mb = scenario.model
    cal = fit.calendar or {}
    drift = "ar1" if mb.period_effects == "ar1" else mb.drift
    parts = [cal.get("note", "no seasonal profile")]
    p_drift = float(fit.flat("drift_weight").mean()) if "drift_weight" in fit.arrays else None
    p_rates = (
        float(fit.flat("rate_drift_weight").mean()) if "rate_drift_weight" in fit.arrays else None
    )
    walk = "the levels of the traffic and the rates may drift as random walks (step sizes learnt)"
    shares = [
        f"{what} {'under 1%' if p < 0.005 else 'over 99%' if p > 0.995 else f'{p:.0%}'}"
        for what, p in (("traffic", p_drift), ("rates", p_rates))
        if p is not None
    ]
    if shares:
        walk += (
            f"; the history makes a drift this likely (prior {mb.drift_prob:.0%}): "
            f"{', '.join(shares)}, and the forecast weighs drift and a steady level accordingly"
        )
    parts.append(
        {
            "random_walk": walk,
            "ar1": "traffic and rates have persistent AR(1) period effects",
            "none": "the traffic's level is constant (model.drift: none)",
        }[drift]
    )
    if mb.trend or mb.rate_trend:
        which = " and ".join(w for w, on in (("traffic", mb.trend), ("rates", mb.rate_trend)) if on)
        parts.append(f"linear trends in the {which}")
    if scenario.events:
        names = ", ".join(ev.label for ev in scenario.events)
        parts.append(f"one-off events with their own effects, left out of the forecast: {names}")
    return {
        "seasonality": bool(cal.get("seasonal", False)),
        "drift": drift,
        "drift_probability": {"traffic": p_drift, "rates": p_rates},
        "trend": mb.trend,
        "rate_trend": mb.rate_trend,
        "sentence": "; ".join(parts),
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
