"""The decision pipeline, once: posterior draws -> forecast -> KR targets -> evaluation -> summary.

`decide` is what `krsim run` computes from a fit; `compare` calls it with the posterior draws of
the tested change parameters, and every later analysis that ends in a decision goes through it.
See docs/design.md §2.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..i18n import language
from ..io.cache import versions
from ..io.data import CountTable
from ..io.scenario import Scenario
from ..model.posterior import Fit, describe, diagnostic_warnings
from ..version import __version__
from . import decision, forecast
from .sensitivity import sensitivity
from .summary import Diagnostics, ModelSummary, Provenance, RunSummary


@dataclass(frozen=True)
class SimulationResult:
    """What `krsim run` computes: the typed summary (``run``) plus the arrays behind it."""

    scenario: Scenario
    history: CountTable
    run: RunSummary
    fit: Fit
    forecast: forecast.Forecast
    evaluation: decision.Evaluation
    targets: dict[str, decision.KRTarget]

    def to_dict(self) -> dict[str, Any]:
        """The summary object (the JSON of `krsim run`), written afresh from ``run``."""
        return self.run.to_dict()

    @property
    def summary(self) -> Mapping[str, Any]:
        """The summary object as a read-only mapping (`to_dict`'s keys and values)."""
        return MappingProxyType(self.to_dict())

    def to_frame(self):
        """Options x key results: P(met) and its Monte Carlo error, median and interval."""
        import pandas as pd

        rows = [
            {
                "option": o,
                "key_result": k,
                "p_met": kd.p_met,
                "p_met_se": kd.p_met_se,
                "median": kd.median,
                "low80": kd.interval80[0],
                "high80": kd.interval80[1],
                "baseline": kd.baseline,
                "target": kd.target,
                "expected_grade": kd.expected_grade,
            }
            for o, od in self.run.options.items()
            for k, kd in od.key_results.items()
        ]
        return pd.DataFrame(rows).set_index(["option", "key_result"])

    @property
    def datatree(self):
        """The ArviZ DataTree of the history fit."""
        return self.fit.datatree


def decide(
    scenario: Scenario,
    history: CountTable,
    fit: Fit,
    *,
    params: dict[str, np.ndarray] | None = None,
    created: str | None = None,
) -> SimulationResult:
    """Forecast every option from the fit (``params``: change-parameter draws, default from their
    priors), evaluate the key results against their targets, and summarise."""
    fc = forecast.simulate(scenario, fit, params=params)
    tg = decision.targets(scenario, history)
    ev = decision.evaluate(scenario, fc, tg)
    summary = build_summary(scenario, fit, fc, ev, tg, created=created)
    return SimulationResult(scenario, history, summary, fit, fc, ev, tg)


def build_summary(scenario, fit, fc, ev, tg, *, created: str | None = None) -> RunSummary:
    """The summary (its JSON form is that of `krsim run`): English whatever the current language;
    the text renderings write its sentences again in theirs (`render.localized_summary`)."""
    with language("en"):
        return _summary(scenario, fit, fc, ev, tg, created)


def _summary(scenario, fit, fc, ev, tg, created: str | None) -> RunSummary:
    diag = dict(fit.diagnostics)
    return RunSummary(
        scenario=scenario.id,
        title=scenario.title,
        seed=scenario.seed,
        draws=fc.n_draws,
        options=decision.summarize_options(scenario, ev, tg, fc.chains),
        baselines=decision.baseline_sources(tg),
        recommendation=decision.recommend(scenario, ev, fc.chains),
        model=ModelSummary.from_dict(describe(scenario, fit)),
        sensitivity=sensitivity(scenario, fit, fc, ev, tg),
        diagnostics=Diagnostics.of(diag, diagnostic_warnings(diag, fit.n_draws)),
        provenance=Provenance(
            scenario_sha256=scenario.sha256,
            krsim=__version__,
            pymc=versions("pymc")["pymc"],
            created=created or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        ),
    )
