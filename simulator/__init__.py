"""krsim: the probability that each key-result target is met, under each option."""

__version__ = "0.1.0"

from .api import SimulationResult, load_scenario, simulate  # noqa: E402
from .scenario import InputError, Scenario  # noqa: E402

__all__ = ["InputError", "Scenario", "SimulationResult", "load_scenario", "simulate"]
