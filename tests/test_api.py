"""The Python API's surface: what the package exports, and the fit cache turned off per call."""

from __future__ import annotations

import inspect
import threading

import simulator
from simulator.analyses import backtest as backtest_module
from simulator.analyses import compare as compare_module
from simulator.io import cache


def test_the_package_exports_every_analysis_and_its_result():
    assert simulator.compare is compare_module.compare
    assert simulator.ComparisonResult is compare_module.ComparisonResult
    assert simulator.backtest is backtest_module.backtest
    assert simulator.BacktestResult is backtest_module.BacktestResult
    for name in simulator.__all__:
        assert hasattr(simulator, name), name
    assert {"compare", "backtest", "ComparisonResult", "BacktestResult"} <= set(simulator.__all__)


def test_simulate_reports_progress_through_logging_not_a_callback():
    assert "log" not in inspect.signature(simulator.simulate).parameters


def test_cache_disabled_turns_the_cache_off_inside_the_block_only():
    on = cache.cache_dir()
    assert on is not None
    elsewhere = []
    with simulator.cache_disabled():
        assert cache.cache_dir() is None
        assert cache.entry("0" * 32) is None and cache.store("0" * 32, print) is None
        with simulator.cache_disabled():  # nested blocks
            assert cache.cache_dir() is None
        assert cache.cache_dir() is None
        other = threading.Thread(target=lambda: elsewhere.append(cache.cache_dir()))
        other.start()
        other.join()
    assert elsewhere == [on]  # another thread keeps its cache
    assert cache.cache_dir() == on


def test_cache_disabled_ends_with_an_error_too():
    try:
        with simulator.cache_disabled():
            raise ValueError("stop")
    except ValueError:
        pass
    assert cache.cache_dir() is not None
