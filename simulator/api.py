"""The Python API: ``load_scenario`` and ``simulate``, returning a result with ``.to_dict()``."""

from __future__ import annotations

from pathlib import Path

from .engine import soundness
from .engine.pipeline import SimulationResult, decide
from .io.archive_data import check_refs
from .io.data import CountTable, read_history
from .io.scenario import Scenario, read_scenario

__all__ = ["SimulationResult", "load_scenario", "simulate"]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file and its history table (raises ``InputError``)."""
    scenario = read_scenario(path)
    read_history(scenario)  # a bad history table stops here, before anything is fitted
    check_refs(scenario)  # and so does a prior's archive that is missing or lacks its category
    return scenario


def simulate(
    scenario: Scenario,
    *,
    history: CountTable | None = None,
    draws: int | None = None,
    seed: int | None = None,
    created: str | None = None,
) -> SimulationResult:
    """Fit (or load the cached fit), forecast every option, decide. ``history``: the scenario's
    history table (read from the file the scenario names when not given). Progress goes to the
    "simulator" logger; a fresh fit without the cache: ``with simulator.cache_disabled(): ...``."""
    history = history if history is not None else read_history(scenario)
    if draws is not None or seed is not None:
        scenario = scenario.with_overrides(seed=seed, draws=draws)
    fit = soundness.fit(scenario, history)
    return decide(scenario, history, fit, created=created)
