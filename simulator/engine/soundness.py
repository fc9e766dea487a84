"""Sampling until the answer is sound.

The probabilities krsim prints are functions of the posterior draws: each key result's value
under each option, and each option's P(met). `fit` fits the model, forecasts the quarter from
the draws, and judges those quantities (`judge`): rank-normalised split R-hat at most 1.01, bulk
and tail ESS at least 400 (ArviZ's). While they fall short, and while the time spent stays
within ``model.sound_seconds``, it samples again with more draws (twice, then four times the
scenario's), then with twice the tuning too. Each attempt is a fit of its own (the cache keeps
each one under its draws), and with nutpie a longer fit with the same seed continues the
shorter one's chains (its first draws are the shorter fit's, bit for bit). The returned fit's diagnostics carry the judgement (``diagnostics["decision"]``), from
which the warnings and the report's sentences are written (`model.posterior.diagnostic_warnings`).

With ``model.until_sound: false`` (or ``--draws``, which asks for exactly that many draws) the fit
is judged but not extended.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import model
from ..i18n import _, fmt_num
from ..io import cache
from ..io.data import CountTable
from ..io.scenario import Scenario
from ..model.posterior import Fit, fmt_rhat, quantity_words
from . import decision, forecast

logger = logging.getLogger(__name__)

RHAT = 1.01  # at most
ESS = 400  # at least, bulk and tail
P_JUDGED = 0.02  # a P(met) is judged when between 2% and 98%: nearer 0 or 1 its ESS is noise

Params = Callable[[Fit], dict[str, np.ndarray] | None]


@dataclass(frozen=True)
class Judgement:
    """The worst R-hat and ESS over the quantities that decide, and which quantity is worst."""

    rhat: float
    ess_bulk: float
    ess_tail: float
    # the worst quantity: {"quantity": "value" | "p_met" | "p_all", "key_result", "option"}
    worst: dict[str, str]

    @property
    def sound(self) -> bool:
        return bool(self.rhat <= RHAT and self.ess_bulk >= ESS and self.ess_tail >= ESS)


def judge(
    scenario: Scenario,
    history: CountTable,
    fit: Fit,
    params: dict[str, np.ndarray] | None = None,
) -> Judgement:
    """R-hat and ESS of each key result's value under each option (bulk and tail) and of each
    option's met indicators (each key result's and all of them: bulk ESS and R-hat, when P(met)
    is between 2% and 98%), from the fit's forecast."""
    fc = forecast.simulate(scenario, fit, params=params)
    ev = decision.evaluate(scenario, fc, decision.targets(scenario, history))
    rows = []
    for o, oe in ev.options.items():
        for kr, v in oe.values.items():
            rows.append(_checks(("value", kr, o), v, fc.chains))
            rows.append(_checks(("p_met", kr, o), oe.met[kr], fc.chains, indicator=True))
        rows.append(_checks(("p_all", "", o), oe.all_met, fc.chains, indicator=True))
    rows = [r for r in rows if r is not None]
    if not rows:  # nothing varies: nothing to judge
        return Judgement(1.0, float(fc.n_draws), float(fc.n_draws), {})
    rhat = max(r[1] for r in rows)
    worst = max(rows, key=lambda r: r[1]) if rhat > RHAT else min(rows, key=lambda r: min(r[2:]))
    what, kr, option = worst[0]
    return Judgement(
        rhat=rhat,
        ess_bulk=min(r[2] for r in rows),
        ess_tail=min(r[3] for r in rows),
        worst={"quantity": what, "key_result": kr, "option": option},
    )


def _checks(name: tuple[str, str, str], x: np.ndarray, chains: int, indicator: bool = False):
    """(name, R-hat, bulk ESS, tail ESS) of one quantity's draws (chain-major), or None when it
    does not vary (or, for an indicator, when its mean is within 2% of 0 or 1)."""
    import arviz as az

    x = np.asarray(x, float)
    if not np.isfinite(x).all() or x.std() == 0:
        return None
    if indicator and not P_JUDGED <= x.mean() <= 1 - P_JUDGED:
        return None
    a = x[: chains * (len(x) // chains)].reshape(chains, -1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a half-chain that never varies
        rhat = float(az.rhat(a))
        bulk = float(az.ess(a, method="bulk"))
        tail = bulk if indicator else float(az.ess(a, method="tail", prob=(0.05, 0.95)))
    # a half-chain that never varies while the whole does: the chains disagree without measure
    ess = [float(np.nan_to_num(e)) for e in (bulk, tail)]
    return (name, rhat if np.isfinite(rhat) else np.inf, *ess)


def schedule(draws: int, tune: int) -> list[tuple[int, int]]:
    """The attempts after the first: more draws, then more tuning."""
    return [(2 * draws, tune), (4 * draws, tune), (4 * draws, 2 * tune)]


def fit(
    scenario: Scenario,
    history: CountTable,
    *,
    experiment=None,
    launched: model.Launched | None = None,
    params: Params | None = None,
) -> Fit:
    """`model.fit`, then sampled again with more draws while the quantities that decide are not
    sound (see the module's docstring); ``params``: the change-parameter draws the decision uses,
    from the fit (e.g. an experiment's), default their priors."""
    mb = scenario.model
    t0 = time.perf_counter()
    f = model.fit(scenario, history, experiment=experiment, launched=launched)
    j = _judged(scenario, history, f, params)
    steps = [_step(mb.draws, mb.tune, j)]
    capped = False
    if mb.until_sound and not j.sound:
        for draws, tune in schedule(mb.draws, mb.tune):
            spent = time.perf_counter() - t0
            guess = f.seconds * (draws + tune) / (steps[-1]["draws"] + steps[-1]["tune"])
            if spent + guess > mb.sound_seconds:
                capped = True
                break
            longer = _longer(scenario, draws, tune)
            cached = cache.entry(model.fit_key(longer, history, experiment, launched))
            logger.log(logging.DEBUG if cached else logging.INFO, _extending_words(j, draws, spent))
            f = model.fit(longer, history, experiment=experiment, launched=launched)
            j = _judged(longer, history, f, params)
            steps.append(_step(draws, tune, j))
            if j.sound:
                break
        else:
            capped = not j.sound
    record = {
        **steps[-1],
        "worst": j.worst,
        "sound": j.sound,
        "until_sound": mb.until_sound,
        "capped": bool(capped),
        "seconds_cap": mb.sound_seconds,
        "steps": steps,
    }
    return dataclasses.replace(f, diagnostics={**f.diagnostics, "decision": record})


def _judged(scenario: Scenario, history: CountTable, fit: Fit, params: Params | None) -> Judgement:
    """`judge`, kept in the fit cache beside the fit under the fit's key and the whole scenario
    (its key results and options decide what is judged): a rerun of an unchanged scenario reads
    it back without loading ArviZ."""
    key = cache.key_of(
        {
            "judgement": 1,
            "fit": fit.key,
            "scenario": scenario.model_dump(mode="json"),
            "params": params is not None,
        }
    )
    hit = cache.entry(key)
    if hit is not None:
        try:
            return Judgement(**json.loads((hit / "judgement.json").read_text()))
        except (OSError, ValueError, TypeError):
            cache.discard(key)
    j = judge(scenario, history, fit, params(fit) if params else None)
    cache.store(key, lambda d: (d / "judgement.json").write_text(json.dumps(dataclasses.asdict(j))))
    return j


def _step(draws: int, tune: int, j: Judgement) -> dict[str, Any]:
    return {
        "draws": draws,
        "tune": tune,
        "rhat": j.rhat if np.isfinite(j.rhat) else None,  # None: not measurable (JSON null)
        "ess_bulk": j.ess_bulk,
        "ess_tail": j.ess_tail,
    }


def _longer(scenario: Scenario, draws: int, tune: int) -> Scenario:
    """The scenario with more draws and tuning (its file and text kept)."""
    mb = scenario.model.model_copy(update={"draws": draws, "tune": tune})
    new = scenario.model_copy(update={"model": mb})
    new._source, new._text = scenario._source, scenario._text
    return new


def _extending_words(j: Judgement, draws: int, spent: float) -> str:
    return _(
        "Not yet sound (R-hat {rhat}, ESS {ess} for {worst}); sampling again with {draws} draws "
        "per chain ({seconds} s so far)..."
    ).format(
        rhat=fmt_rhat(j.rhat),
        ess=fmt_num(min(j.ess_bulk, j.ess_tail), 0),
        worst=quantity_words(j.worst),
        draws=fmt_num(draws, 0),
        seconds=fmt_num(spent, 0),
    )
