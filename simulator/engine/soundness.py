"""Sampling until the answer is sound.

The probabilities krsim prints are functions of the posterior draws: each key result's value
under each option, each option's P(met), the rule's value, each guardrail's P(broken). `fit`
fits the model, evaluates those quantities from the draws as the command does (`decide`'s
forecast by default; `track` passes its quarter), and judges them (`judge`): rank-normalised
split R-hat at most 1.01, bulk and tail ESS at least 400 (ArviZ's); the model's parameters must
reach the same bounds (a forecast quantity's own noise can hide chains that disagree). While
they fall short, and while the fits' seconds stay within ``model.sound_seconds``, it samples
again with more draws (twice, then four times the scenario's), then with twice the tuning too.
Each attempt is a fit of its own (the cache keeps each one under its draws), and with nutpie a
longer fit with the same seed continues the shorter one's chains (its first draws are the
shorter fit's, bit for bit). The returned fit's diagnostics carry the judgement
(``diagnostics["decision"]``), from which the warnings and the report's sentences are written
(`model.posterior.diagnostic_warnings`).

With ``model.until_sound: false`` (or ``--draws``, which asks for exactly that many draws) the fit
is judged but not extended.
"""

from __future__ import annotations

import dataclasses
import json
import logging
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
from ..model.posterior import Fit, worst_fields
from . import decision, forecast

logger = logging.getLogger(__name__)

RHAT = 1.01  # at most
ESS = 400  # at least, bulk and tail
P_JUDGED = 0.02  # a P(met) is judged when between 2% and 98%: nearer 0 or 1 its ESS is noise

# a fit's per-option evaluations (`decision.OptionEval`) and its chains: what the answer is made of
Evaluate = Callable[[Fit], tuple[dict[str, decision.OptionEval], int]]


# a fit's per-option evaluations (`decision.OptionEval`) and its chains: what the answer is made of
Evaluate = Callable[[Fit], tuple[dict[str, decision.OptionEval], int]]


@dataclass(frozen=True)
class Judgement:
    """The worst R-hat and ESS over the quantities that decide, whether the model's parameters
    are sound too (the fit's own diagnostics), and the worst quantity with its numbers."""

    rhat: float
    ess_bulk: float
    ess_tail: float
    # the worst: {"quantity": "value" | "p_met" | "p_all" | "rule" | "broken" | "parameter",
    # "key_result", "option", "rhat", "ess"} ("key_result" names the parameter)
    worst: dict[str, Any]
    parameters_sound: bool = True
    judged: int = 1  # how many quantities vary (none: nothing to judge, sound)

    @property
    def deciding_sound(self) -> bool:
        return bool(self.rhat <= RHAT and self.ess_bulk >= ESS and self.ess_tail >= ESS)

    @property
    def sound(self) -> bool:
        return bool((self.judged == 0 or self.deciding_sound) and self.parameters_sound)


def forecast_evaluation(
    scenario: Scenario,
    history: CountTable,
    params: Callable[[Fit], dict[str, np.ndarray]] | None = None,
) -> Evaluate:
    """What `decide` computes from a fit: every option's forecast evaluated against the targets
    (``params``: the change-parameter draws from the fit, e.g. an experiment's; default their
    priors)."""

    def evaluate(fit: Fit):
        fc = forecast.simulate(scenario, fit, params=params(fit) if params else None)
        ev = decision.evaluate(scenario, fc, decision.targets(scenario, history))
        return ev.options, fc.chains

    return evaluate


def judge(options: dict[str, decision.OptionEval], chains: int, diag: dict[str, Any]) -> Judgement:
    """R-hat and ESS of what the answer is made of, per option: each key result's value (bulk
    and tail ESS), its met indicator, all met, the rule's value (an indicator when it is 0 or 1)
    and each guardrail's broken indicator (indicators: bulk ESS and R-hat, when their mean is
    between 2% and 98%); and whether the model's parameters (``diag``, `model.diagnostics`) reach
    the same bounds."""
    rows = []
    for o, oe in options.items():
        for kr, v in oe.values.items():
            rows.append(_checks(("value", kr, o), v, chains))
            rows.append(_checks(("p_met", kr, o), oe.met[kr], chains, indicator=True))
        rows.append(_checks(("p_all", "", o), oe.all_met, chains, indicator=True))
        binary = bool(np.isin(oe.value, (0.0, 1.0)).all())
        rows.append(_checks(("rule", "", o), oe.value, chains, indicator=binary))
        for kr, b in oe.broken.items():
            rows.append(_checks(("broken", kr, o), b, chains, indicator=True))
    rows = [r for r in rows if r is not None]
    p_rhat, p_ess = diag["rhat_max"], min(diag["ess_bulk_min"], diag.get("ess_tail_min") or 1e9)
    params_ok = bool(p_rhat <= RHAT and p_ess >= ESS)
    param_row = (("parameter", diag.get("rhat_worst") or "", ""), p_rhat, p_ess, p_ess)
    if not rows:  # nothing varies: nothing to judge but the parameters
        worst = param_row
        return Judgement(1.0, ESS, ESS, _worst(worst), params_ok, judged=0)
    rhat = max(r[1] for r in rows)
    deciding_ok = rhat <= RHAT and min(min(r[2:]) for r in rows) >= ESS
    if not deciding_ok or params_ok:
        worst = (
            max(rows, key=lambda r: r[1]) if rhat > RHAT else min(rows, key=lambda r: min(r[2:]))
        )
    else:
        worst = param_row
    return Judgement(
        rhat=rhat,
        ess_bulk=min(r[2] for r in rows),
        ess_tail=min(r[3] for r in rows),
        worst=_worst(worst),
        parameters_sound=params_ok,
        judged=len(rows),
    )


def _worst(row) -> dict[str, Any]:
    (what, kr, option), rhat, bulk, tail = row
    return {
        "quantity": what,
        "key_result": kr,
        "option": option,
        "rhat": float(rhat) if np.isfinite(rhat) else None,
        "ess": float(min(bulk, tail)),
    }


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
    evaluate: Evaluate | None = None,
    pad: model.Padding | None = None,
) -> Fit:
    """`model.fit`, then sampled again with more draws while what the answer is made of is not
    sound (see the module's docstring); ``evaluate``: what the answer is made of, from a fit
    (default `forecast_evaluation`, as `decide` computes it); ``pad``: the fit's padding
    (`model.fit`).

    The time cap counts each fit's recorded sampling seconds (a fit read from the cache counts
    what it took when it was made), so a rerun on cached fits takes the same decisions."""
    mb = scenario.model
    evaluate = evaluate or forecast_evaluation(scenario, history)
    f = model.fit(scenario, history, experiment=experiment, launched=launched, pad=pad)
    j = _judged(scenario, f, evaluate)
    steps = [_step(mb.draws, mb.tune, j)]
    spent, capped = _cost(f), False
    if mb.until_sound and not j.sound:
        for draws, tune in schedule(mb.draws, mb.tune):
            guess = _cost(f) * (draws + tune) / (steps[-1]["draws"] + steps[-1]["tune"])
            if spent + guess > mb.sound_seconds:
                capped = True
                break
            longer = _longer(scenario, draws, tune)
            cached = cache.entry(model.fit_key(longer, history, experiment, launched, pad))
            logger.log(logging.DEBUG if cached else logging.INFO, _extending_words(j, draws, spent))
            f = model.fit(longer, history, experiment=experiment, launched=launched, pad=pad)
            spent += _cost(f)
            j = _judged(longer, f, evaluate)
            steps.append(_step(draws, tune, j))
            if j.sound:
                break
    record = {
        **steps[-1],
        "worst": j.worst,
        "sound": j.sound,
        "until_sound": mb.until_sound,
        "capped": capped,
        "exhausted": bool(mb.until_sound and not j.sound and not capped),
        "seconds_cap": mb.sound_seconds,
        "steps": steps,
    }
    return dataclasses.replace(f, diagnostics={**f.diagnostics, "decision": record})


def _cost(fit: Fit) -> float:
    """The seconds a fit took when it was made (recorded with it in the cache)."""
    return float(fit.diagnostics.get("seconds", fit.seconds))


def _judged(scenario: Scenario, fit: Fit, evaluate: Evaluate) -> Judgement:
    """`judge`, kept in the fit cache beside the fit under the fit's key, the krsim version and
    the whole scenario (its key results, options and rule decide what is judged): a rerun of an
    unchanged scenario reads it back without loading ArviZ."""
    from ..version import __version__

    key = cache.key_of(
        {
            "judgement": 2,
            "krsim": __version__,
            "fit": fit.key,
            "scenario": scenario.model_dump(
                mode="json", exclude={"model": {"until_sound", "sound_seconds"}}
            ),
        }
    )
    hit = cache.entry(key)
    if hit is not None:
        try:
            return Judgement(**json.loads((hit / "judgement.json").read_text()))
        except (OSError, ValueError, TypeError):
            cache.discard(key)
    j = judge(*evaluate(fit), fit.diagnostics)
    cache.store(key, lambda d: (d / "judgement.json").write_text(json.dumps(dataclasses.asdict(j))))
    return j


def _step(draws: int, tune: int, j: Judgement) -> dict[str, Any]:
    return {
        "draws": draws,
        "tune": tune,
        "rhat": j.rhat if np.isfinite(j.rhat) else None,  # None: not measurable (JSON null)
        "ess_bulk": j.ess_bulk,
        "ess_tail": j.ess_tail,
        "parameters_sound": j.parameters_sound,
    }


def _longer(scenario: Scenario, draws: int, tune: int) -> Scenario:
    """The scenario with more draws and tuning (its file and text kept)."""
    mb = scenario.model.model_copy(update={"draws": draws, "tune": tune})
    new = scenario.model_copy(update={"model": mb})
    new._source, new._text = scenario._source, scenario._text
    return new


def _extending_words(j: Judgement, draws: int, spent: float) -> str:
    w = j.worst
    return _(
        "Not yet sound (R-hat {rhat}, ESS {ess} for {worst}); sampling again with {draws} draws "
        "per chain ({seconds} s so far)..."
    ).format(**worst_fields(w), draws=fmt_num(draws, 0), seconds=fmt_num(spent, 0))
