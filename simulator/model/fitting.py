"""Fitting the funnel model: NUTS on `funnel.build_model`, the draws a `Fit` keeps, the sampler's
diagnostics, and the on-disk cache keyed by everything that determines a fit (`fit_key`).

Progress goes to this module's logger (``simulator.model.fitting``): the line a user sees while a
fit runs at INFO, details (a fit read from the cache) at DEBUG. A fit's ArviZ DataTree carries
its provenance in its attributes (`provenance`).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..i18n import _, language, ngettext
from ..io import cache, season
from ..io.data import CountTable
from ..io.scenario import Scenario, Structure, value_stages
from .design import Launched, Padding, calendar_dates, walk_terms
from .posterior import Fit
from .quiet import quiet_warnings
from .values import SAVED as VALUE_SAVED

if TYPE_CHECKING:
    from .experiment import ExperimentData

logger = logging.getLogger(__name__)

MODEL_VERSION = 5


def fit_key(
    scenario: Scenario,
    history: CountTable,
    experiment: ExperimentData | None = None,
    launched: Launched | None = None,
    pad: Padding | None = None,
) -> str:
    """The fit's cache key: a hash of what determines the fit (the model's version, the history,
    the funnel's structure, the model block, the seed, the library versions, the events, the
    value stages, and the experiment's, the launched periods' and the padding's parts when
    given)."""
    st = Structure.of(scenario)
    # how long to sample until sound does not change a fit: a longer fit has its own draws
    mb = scenario.model.model_dump(exclude={"until_sound", "sound_seconds"})
    parts = {
        "model_version": MODEL_VERSION,
        "history": history.digest(),
        "structure": [st.root, st.nodes, st.parents],
        "model": mb,
        "seed": scenario.seed,
        "versions": cache.versions("pymc", "pytensor", "nutpie", "numpy"),
    }
    if scenario.events:
        parts["events"] = [ev.model_dump() for ev in scenario.events]
    if value_stages(scenario):  # without values, the key of a counts-only model is unchanged
        parts["values"] = list(value_stages(scenario))
    if experiment is not None:  # without one, the key is the history-only key
        from .experiment import key_parts

        parts["experiment"] = key_parts(scenario, experiment)
    if launched is not None:  # likewise
        from .experiment import launched_key_parts

        parts["launched"] = launched_key_parts(scenario, launched)
    if pad is not None:  # the same posterior, other draws
        parts["padding"] = pad.key()
    return cache.key_of(parts)


_SAVED = (
    "level",
    "season_beta",
    "rate_season_beta",
    "weekday_beta",
    "rate_weekday_beta",
    "drift_sd",
    "drift_weight",
    "rate_drift_sd",
    "rate_drift_weight",
    "event_traffic",
    "event_rate",
    "trend",
    "alpha",
    "rate_trend",
    "rate_mu",
    "rate_sigma",
    "rate_rho",
    "traffic_sigma",
    "traffic_rho",
    *VALUE_SAVED,
)


def posterior_arrays(dt, ar1: bool) -> dict[str, np.ndarray]:
    """The draws a `Fit` keeps, from a sampled DataTree (with AR(1): the last period effects,
    from which the forecast continues)."""
    post = dt["posterior"]
    out = {n: np.asarray(post[n].values) for n in _SAVED if n in post}
    if ar1:
        out["rate_elast"] = np.asarray(post["rate_e"].values)[..., -1]
        out["traffic_elast"] = np.asarray(post["traffic_e"].values)[..., -1]
    for name in ("traffic_walk_last", "rate_walk_last"):  # the drifting levels' last values
        if name in post:
            out[name] = np.asarray(post[name].values)
    return out


def diagnostics(dt, var_names: list[str] | None = None) -> dict[str, Any]:
    """R-hat, ESS and divergences of a sampled DataTree, over ``var_names`` (default: every
    posterior variable except the period effects saved as ``*_e``)."""
    import arviz as az

    post = dt["posterior"]
    names = var_names or [n for n in post.data_vars if not n.endswith("_e")]
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


# the padded form's free variables over the periods, and the walks' terms (`design.Padding`)
_PER_PERIOD = ("rate_z", "rate_eta_c")
_WALK_TERMS = ("drift_z", "rate_drift_z")


def unpadded(dt, pad: Padding | None, T: int):
    """``dt`` without the padded periods' and the extra walk terms' draws (standard normals that
    no data reach), so that the sampler's diagnostics are the model's own; ``T`` the periods
    of the data."""
    if pad is None:
        return dt
    post = dt["posterior"].to_dataset()
    for name in [n for n in (*_PER_PERIOD, *_WALK_TERMS) if n in post]:
        dim = post[name].dims[-1]
        keep = slice(pad.length - T, None) if name in _PER_PERIOD else slice(0, walk_terms(T))
        kept = post[name].isel({dim: keep}).rename({dim: f"{dim}_data"})
        post = post.drop_vars(name).assign({name: kept})
    out = dt.copy()
    out["posterior"] = post
    return out


def fit(
    scenario: Scenario,
    history: CountTable,
    *,
    experiment: ExperimentData | None = None,
    launched: Launched | None = None,
    pad: Padding | None = None,
) -> Fit:
    """Fit the history model (with an experiment's results, or periods observed under a launched
    option, when given), or load the fit from the cache when nothing that determines it changed.
    With ``launched`` the fit's time line is the history's and those periods'; with ``pad`` the
    history is padded at the front (`design.Padding`: one compiled model for histories of
    several lengths). Progress goes to the module's logger."""
    key = fit_key(scenario, history, experiment, launched, pad)
    T = len(history) + (len(launched) if launched is not None else 0)
    cached = _cached(key, T, Structure.of(scenario).nodes)
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    logger.info(_fitting_words(history, experiment, launched))
    dt = sample(scenario, history, experiment=experiment, launched=launched, pad=pad)
    arrays = posterior_arrays(dt, scenario.model.period_effects == "ar1")
    if experiment is not None:
        from .experiment import extract

        arrays.update(extract(dt, scenario, experiment))
    if launched is not None:
        from .experiment import extract_launched

        arrays.update(extract_launched(dt, scenario, launched))
    seconds = time.perf_counter() - t0
    diag = {**diagnostics(unpadded(dt, pad, T)), "seconds": seconds}  # seconds: a refit's cost
    cal = calendar_of(scenario, history, T)
    dt.attrs.update(provenance(scenario, key))

    def write(d: Path) -> None:
        np.savez(d / "posterior.npz", **arrays)
        (d / "diagnostics.json").write_text(json.dumps(diag))
        (d / "calendar.json").write_text(json.dumps(cal))
        with quiet_warnings():
            dt.to_zarr(d / "trace.zarr")

    path = cache.store(key, write)
    nodes = Structure.of(scenario).nodes
    return Fit(key, arrays, diag, T, nodes, path=path, seconds=seconds, calendar=cal, _datatree=dt)


def _cached(key: str, T: int, nodes: tuple[str, ...]) -> Fit | None:
    """The fit of ``key`` read from the cache, or None when it is not there (an unreadable entry
    is discarded)."""
    hit = cache.entry(key)
    if hit is None:
        return None
    try:
        with np.load(hit / "posterior.npz") as z:
            arrays = {k: z[k] for k in z.files}
        diag = json.loads((hit / "diagnostics.json").read_text())
        cal = json.loads((hit / "calendar.json").read_text())
    except (OSError, ValueError, KeyError):
        logger.warning("warning: the cached fit is unreadable; fitting again")
        cache.discard(key)
        return None
    logger.debug(_("Fit read from the cache: {path}").format(path=hit))
    return Fit(key, arrays, diag, T, nodes, from_cache=True, path=hit, calendar=cal)


def provenance(scenario: Scenario, key: str) -> dict[str, Any]:
    """What a fit's DataTree says of where it comes from: the krsim version, the fit key, the
    scenario's title, when it was made, and the versions of the libraries that made it."""
    from ..version import __version__

    return {
        "krsim_version": __version__,
        "fit_key": key,
        "scenario": scenario.title,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": cache.versions("pymc", "pytensor", "nutpie", "numpy", "arviz"),
    }


def _fitting_words(history: CountTable, experiment, launched) -> str:
    """The progress line of a fit, in the current language."""
    n = len(history)
    if launched is not None:
        what = (
            ngettext(
                "{n} period of history and the experiment and {k} periods under {option}",
                "{n} periods of history and the experiment and {k} periods under {option}",
                n,
            )
            if experiment is not None
            else ngettext(
                "{n} period of history and {k} periods under {option}",
                "{n} periods of history and {k} periods under {option}",
                n,
            )
        ).format(n=n, k=len(launched), option=launched.option)
    elif experiment is not None:
        what = ngettext(
            "{n} period of history and the experiment",
            "{n} periods of history and the experiment",
            n,
        ).format(n=n)
    else:
        what = ngettext("{n} period of history", "{n} periods of history", n).format(n=n)
    return _("Fitting the funnel model to {what} (later runs reuse this fit)...").format(what=what)


def calendar_of(scenario: Scenario, history: CountTable, T: int | None = None) -> dict[str, Any]:
    """What the model takes from the history's calendar (see `Fit.calendar`); ``T``: the fit's
    periods when they run past the history (launched periods)."""
    with language("en"):  # kept with the fit in the cache: English, as the JSON
        on, note = season.seasonal(scenario.model.seasonality, history.dates)
    cd = calendar_dates(history, len(history) if T is None else T)
    dates = [d.isoformat() for d in cd] if cd is not None else None
    weekly = scenario.model.seasonality != "none" and season.daily(history.dates)
    if weekly:
        note += "; a day-of-week profile (daily periods)"
    return {
        "dates": dates,
        "seasonal": on,
        "weekly": weekly,
        "terms": scenario.model.season_terms,
        "note": note,
    }


def sample(
    scenario: Scenario,
    history: CountTable,
    model=None,
    experiment: ExperimentData | None = None,
    launched: Launched | None = None,
    pad: Padding | None = None,
):
    """Run NUTS on the model (built by `funnel.build_model` unless given); returns the
    DataTree. With nutpie, a model of the same structure as one compiled earlier in the process
    samples through that compiled model with its own data (`compiled`): same draws, no compile."""
    import pymc as pm

    from . import compiled
    from .funnel import build_model

    mb = scenario.model
    if model is None:
        model = build_model(scenario, history, experiment, launched=launched, pad=pad)
    sampler = mb.sampler
    if sampler == "auto":
        sampler = "nutpie" if cache.versions("nutpie")["nutpie"] != "none" else "pymc"
    if sampler == "nutpie":
        with quiet_warnings():
            return compiled.sample(
                model,
                draws=mb.draws,
                tune=mb.tune,
                chains=mb.chains,
                random_seed=scenario.seed,
                target_accept=mb.accept,
            )
    with model, quiet_warnings():
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
            cores=min(mb.chains, 2),
        )
