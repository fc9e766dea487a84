"""The Python API: ``load_scenario`` and ``simulate``, returning a result with ``.to_dict()``."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, decision, forecast, model
from .cache import versions
from .data import CountTable, read_history
from .scenario import Scenario, read_scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file and its history table (raises ``InputError``)."""
    scenario = read_scenario(path)
    scenario._history = read_history(scenario)
    return scenario


def history_of(scenario: Scenario) -> CountTable:
    h = getattr(scenario, "_history", None)
    if h is None:
        h = read_history(scenario)
        scenario._history = h
    return h


@dataclass
class SimulationResult:
    """What `krsim run` computes: the summary object plus the arrays behind it."""

    scenario: Scenario
    summary: dict[str, Any]
    fit: model.Fit
    forecast: forecast.Forecast
    evaluation: decision.Evaluation
    targets: dict[str, decision.KRTarget]
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return self.summary

    def to_frame(self):
        """Options x key results: P(met) and its Monte Carlo error, median and interval."""
        import pandas as pd

        rows = []
        for o, od in self.summary["options"].items():
            for k, kd in od["key_results"].items():
                rows.append(
                    {
                        "option": o,
                        "key_result": k,
                        "p_met": kd["p_met"],
                        "p_met_se": kd["p_met_se"],
                        "median": kd["median"],
                        "low80": kd["interval80"][0],
                        "high80": kd["interval80"][1],
                        "baseline": kd["baseline"],
                        "target": kd["target"],
                        "expected_grade": kd["expected_grade"],
                    }
                )
        return pd.DataFrame(rows).set_index(["option", "key_result"])

    @property
    def datatree(self):
        """The ArviZ DataTree of the history fit."""
        return self.fit.datatree


def simulate(
    scenario: Scenario,
    *,
    draws: int | None = None,
    seed: int | None = None,
    log=None,
    created: str | None = None,
) -> SimulationResult:
    """Fit (or load the cached fit), forecast every option, decide."""
    history = history_of(scenario)
    if draws is not None or seed is not None:
        scenario = scenario.with_overrides(seed=seed, draws=draws)
        scenario._history = history
    fit = model.fit(scenario, history, log=log)
    fc = forecast.simulate(scenario, fit)
    tg = decision.targets(scenario, history)
    ev = decision.evaluate(scenario, fc, tg)
    summary = build_summary(scenario, fit, fc, ev, tg, created=created)
    return SimulationResult(scenario, summary, fit, fc, ev, tg)


def build_summary(scenario, fit, fc, ev, tg, *, created: str | None = None) -> dict[str, Any]:
    from .sensitivity import sensitivity

    diag = dict(fit.diagnostics)
    return {
        "scenario": scenario.id,
        "title": scenario.title,
        "seed": scenario.seed,
        "draws": fc.n_draws,
        "options": decision.summarize_options(scenario, ev, tg, fc.chains),
        "recommendation": decision.recommend(scenario, ev),
        "sensitivity": sensitivity(scenario, fit, fc, ev, tg),
        "diagnostics": {
            "rhat_max": diag["rhat_max"],
            "ess_bulk_min": diag["ess_bulk_min"],
            "ess_tail_min": diag.get("ess_tail_min"),
            "divergences": diag["divergences"],
            "warnings": model.diagnostic_warnings(diag, fit.n_draws),
        },
        "provenance": {
            "scenario_sha256": scenario.sha256,
            "krsim": __version__,
            "pymc": versions("pymc")["pymc"],
            "created": created or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    }


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)
