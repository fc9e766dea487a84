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

        from ..io import season

        dates = [dt.date.fromisoformat(d) for d in self.calendar["dates"]]
        return season.weekday(season.future_dates(dates, H))

    def future_season(self, H: int) -> np.ndarray | None:
        """The Fourier terms of the ``H`` periods after the fit's, or None without a season."""
        if not self.calendar.get("seasonal"):
            return None
        import datetime as dt

        from ..io import season

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


def describe(scenario: Any, fit: Fit, history: Any = None) -> dict[str, Any]:
    """The forecast's season, drift and trend choices, as data and in one sentence (in the
    current language; with ``history``, the season's part is written again from its dates rather
    than taken from the fit, which keeps it in English)."""
    from ..i18n import _, fmt_pct, pgettext

    mb = scenario.model
    cal = fit.calendar or {}
    drift = "ar1" if mb.period_effects == "ar1" else mb.drift
    if history is not None and cal:
        from ..io.season import seasonal

        note = seasonal(mb.seasonality, history.dates)[1]
        if cal.get("weekly"):
            note += _("; a day-of-week profile (daily periods)")
    else:
        note = cal.get("note") or _("no seasonal profile")
    parts = [note]
    p_drift = float(fit.flat("drift_weight").mean()) if "drift_weight" in fit.arrays else None
    p_rates = (
        float(fit.flat("rate_drift_weight").mean()) if "rate_drift_weight" in fit.arrays else None
    )
    walk = _(
        "the levels of the traffic and the rates may drift as random walks (step sizes learnt)"
    )
    shares = [
        _("{what} {share}").format(
            what=what,
            share=_("under 1%") if p < 0.005 else _("over 99%") if p > 0.995 else fmt_pct(p, 0),
        )
        for what, p in ((_("traffic"), p_drift), (_("rates"), p_rates))
        if p is not None
    ]
    if shares:
        walk += _(
            "; the history makes a drift this likely (prior {prior}): {shares}, and the forecast "
            "weighs drift and a steady level accordingly"
        ).format(prior=fmt_pct(mb.drift_prob, 0), shares=", ".join(shares))
    parts.append(
        {
            "random_walk": walk,
            "ar1": _("traffic and rates have persistent AR(1) period effects"),
            "none": _("the traffic's level is constant (model.drift: none)"),
        }[drift]
    )
    if mb.trend or mb.rate_trend:
        if mb.trend and mb.rate_trend:
            parts.append(_("linear trends in the traffic and rates"))
        elif mb.trend:
            parts.append(_("linear trends in the traffic"))
        else:
            parts.append(_("linear trends in the rates"))
    if scenario.events:
        names = ", ".join(ev.label for ev in scenario.events)
        parts.append(
            _("one-off events with their own effects, left out of the forecast: {names}").format(
                names=names
            )
        )
    return {
        "seasonality": bool(cal.get("seasonal", False)),
        "drift": drift,
        "drift_probability": {"traffic": p_drift, "rates": p_rates},
        "trend": mb.trend,
        "rate_trend": mb.rate_trend,
        "sentence": pgettext("separator", "; ").join(parts),
    }


def diagnostic_warnings(d: dict[str, Any], n_draws: int) -> list[str]:
    """Sampler problems in plain words. With the judgement of the quantities that decide
    (``d["decision"]``, `engine.soundness`), R-hat and ESS are read there: a parameter that mixes
    slowly while every key result's value and P(met) are sound changes no printed number."""
    from ..i18n import _, fmt_num

    out = []
    if d["divergences"]:
        out.append(
            _(
                "The sampler hit {n} divergent transitions: parts of the posterior may be missed, "
                "so probabilities can be off. More tuning (model.tune) or more history usually "
                "helps."
            ).format(n=d["divergences"])
        )
    if d.get("decision") is not None:
        return out + _unsound_warnings(d["decision"])
    if d["rhat_max"] > 1.01:
        out.append(
            _(
                "The chains disagree (R-hat {rhat} for {worst}, should be below 1.01): the fit has "
                "not converged; treat the numbers as rough."
            ).format(rhat=fmt_num(d["rhat_max"], 3), worst=d.get("rhat_worst") or _("a parameter"))
        )
    if d["ess_bulk_min"] < 400 or d.get("ess_tail_min", 1e9) < 400:
        out.append(
            _(
                "Few effective draws (ESS {ess}, want 400 or more): increase model.draws for "
                "steadier numbers."
            ).format(ess=fmt_num(min(d["ess_bulk_min"], d.get("ess_tail_min", 1e9)), 0))
        )
    return out


def fmt_rhat(x: float | None) -> str:
    """An R-hat as printed: three decimals, or "—" when it cannot be measured (a half-chain that
    never varies)."""
    from ..i18n import fmt_num

    return "—" if x is None or not np.isfinite(x) else fmt_num(x, 3)


def quantity_words(worst: dict[str, str]) -> str:
    """A quantity that decides, in words: "accounts under require_account", "P(accounts met)
    under require_account", "P(all met) under require_account"."""
    from ..i18n import _

    if not worst:
        return _("a quantity that decides")
    kr, option = worst.get("key_result", ""), worst.get("option", "")
    if worst.get("quantity") == "parameter":
        return _("the model parameter {name}").format(name=kr or "?")
    if worst.get("quantity") == "rule":
        return _("the rule's value under {option}").format(option=option)
    if worst.get("quantity") == "broken":
        return _("P({kr} broken) under {option}").format(kr=kr, option=option)
    if worst.get("quantity") == "p_all":
        return _("P(all met) under {option}").format(option=option)
    if worst.get("quantity") == "p_met":
        return _("P({kr} met) under {option}").format(kr=kr, option=option)
    return _("{kr} under {option}").format(kr=kr, option=option)


def worst_fields(worst: dict[str, Any]) -> dict[str, str]:
    """The worst judged quantity's R-hat, ESS and name as the messages print them (``rhat``,
    ``ess``, ``worst``)."""
    from ..i18n import fmt_num

    return {
        "rhat": fmt_rhat(worst.get("rhat")),
        "ess": fmt_num(worst.get("ess", 0), 0),
        "worst": quantity_words(worst),
    }


def _unsound_warnings(rec: dict[str, Any]) -> list[str]:
    """The one warning when what the answer is made of is not sound, with what to do."""
    from ..i18n import _, fmt_num

    if rec["sound"]:
        return []
    w = rec["worst"]
    what = _(
        "The answer is not yet sound: R-hat {rhat} and ESS {ess} for {worst} (want at most 1.01 "
        "and at least 400), with {draws} draws per chain."
    ).format(**worst_fields(w), draws=fmt_num(rec["draws"], 0))
    if not rec["until_sound"]:
        todo = _(
            "Sample more: raise model.draws, or let krsim extend the sampling itself "
            "(model.until_sound: true, and no --draws)."
        )
    elif rec.get("capped"):
        todo = _(
            "krsim stopped extending at its time cap ({seconds} s): raise model.sound_seconds "
            "to let it sample longer, or add history."
        ).format(seconds=fmt_num(rec["seconds_cap"], 0))
    else:
        todo = _(
            "krsim sampled up to four times the draws and twice the tuning without reaching it: "
            "add history, simplify the model (model.drift, model.seasonality), or raise "
            "model.draws and model.tune."
        )
    return [f"{what} {todo}"]


def sound_note(d: dict[str, Any]) -> str | None:
    """What sampling until sound did, when it sampled more than asked: "Sampling was extended to
    2,000 draws per chain: R-hat 1.004, ESS 812 for the quantities that decide." (None when the
    first fit was sound, or there is no judgement.)"""
    from ..i18n import _, fmt_num

    rec = d.get("decision")
    if not rec or len(rec.get("steps", ())) < 2:
        return None
    first = rec["steps"][0]
    more_tune = rec["tune"] > first["tune"]
    return (
        _(
            "Sampling was extended to {draws} draws per chain and {tune} tuning steps: R-hat "
            "{rhat}, ESS {ess} for the quantities that decide."
        )
        if more_tune
        else _(
            "Sampling was extended to {draws} draws per chain: R-hat {rhat}, ESS {ess} for the "
            "quantities that decide."
        )
    ).format(
        draws=fmt_num(rec["draws"], 0),
        tune=fmt_num(rec["tune"], 0),
        rhat=fmt_rhat(rec["rhat"]),
        ess=fmt_num(min(rec["ess_bulk"], rec["ess_tail"]), 0),
    )
