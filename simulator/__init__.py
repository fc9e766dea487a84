"""krsim: the probability that each key-result target is met, under each option."""

from .api import SimulationResult, load_scenario, simulate
from .plan import PlanResult, plan
from .scenario import InputError, Scenario
from .track import TrackResult, track
from .version import __version__

__all__ = [
    "__version__",
    "InputError",
    "PlanResult",
    "Scenario",
    "SimulationResult",
    "TrackResult",
    "load_scenario",
    "plan",
    "simulate",
    "track",
]
