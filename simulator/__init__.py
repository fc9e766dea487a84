"""krsim: the probability that each key-result target is met, under each option."""

from .api import SimulationResult, load_scenario, simulate
from .plan import PlanResult, plan
from .scenario import InputError, Scenario
from .version import __version__

__all__ = [
    "__version__",
    "InputError",
    "PlanResult",
    "Scenario",
    "SimulationResult",
    "load_scenario",
    "plan",
    "simulate",
]
