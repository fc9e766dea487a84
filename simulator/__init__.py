"""krsim: the probability that each key-result target is met, under each option."""

import logging

from .analyses.backtest import BacktestResult, backtest
from .analyses.compare import ComparisonResult, compare
from .analyses.plan import PlanResult, plan
from .analyses.track import TrackResult, track
from .api import SimulationResult, load_scenario, simulate
from .io.cache import disabled as cache_disabled
from .io.scenario import InputError, Scenario
from .version import __version__

__all__ = [
    "__version__",
    "BacktestResult",
    "ComparisonResult",
    "InputError",
    "PlanResult",
    "Scenario",
    "SimulationResult",
    "TrackResult",
    "backtest",
    "cache_disabled",
    "compare",
    "load_scenario",
    "plan",
    "simulate",
    "track",
]

# Progress and details go to the "simulator" logger; the command line prints them on stderr, a
# program that imports the package decides for itself (nothing is printed unless it configures
# logging).
logging.getLogger(__name__).addHandler(logging.NullHandler())
