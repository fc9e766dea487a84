"""Shared fixtures: a per-session fit cache, and the seed scenario fitted once with few draws."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    """The module of ``scripts/NAME.py`` (registered under its name: its dataclasses look their
    module up)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


SEED_SCENARIO = ROOT / "scenarios" / "mandatory_account.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Every test session gets its own fit cache, so tests never depend on an earlier run."""
    d = tmp_path_factory.mktemp("krsim-cache")
    old = os.environ.get("KRSIM_CACHE_DIR")
    os.environ["KRSIM_CACHE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("KRSIM_CACHE_DIR", None)
    else:
        os.environ["KRSIM_CACHE_DIR"] = old


@pytest.fixture
def small_funnel(tmp_path):
    """A writer of the small test funnel (fixtures/base.yaml, its history in place) with extra
    scenario text appended; returns the file's path."""

    def write(extra: str = "") -> Path:
        text = (
            (FIXTURES / "base.yaml")
            .read_text()
            .replace("history: history.csv", f"history: {FIXTURES / 'history.csv'}")
        )
        p = tmp_path / "variant.yaml"
        p.write_text(text + extra)
        return p

    return write


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def seed_result():
    """The seed scenario, fitted once per session with exactly 2 chains x 300 draws (not sampled
    until sound: the tests that need more draws ask for them)."""
    from simulator import load_scenario, simulate

    s = load_scenario(SEED_SCENARIO)
    s = s.model_copy(
        update={
            "model": s.model.model_copy(
                update={"chains": 2, "draws": 300, "tune": 400, "until_sound": False}
            )
        }
    )
    s._source = SEED_SCENARIO
    s._text = SEED_SCENARIO.read_bytes()
    return simulate(s)


# ------------------------------------------------------------------ the fast suite's fit budget

# NUTS runs in this process over the whole fast suite: `pymc.sample` calls plus the nutpie runs
# of `simulator.model.compiled` (which reuses a compiled model instead of calling pymc.sample).
# A new fit costs a compile on a fresh machine, so the suite shares fits through session
# fixtures and checks shapes on the graph; a change that adds fits must raise this on purpose.
FIT_BUDGET = 22  # measured: 21 fits in 473 tests in one process, 6 of them through a reused
# compiled model (no compile), and one more for the fits sampled again until sound, whose number
# depends on the compile caches' state, as the draws do (4 here, 8 in the cold runs in workers);
# fits in worker processes are not counted
FIT_BUDGET_WORKERS = 23  # `make test`'s two pytest-xdist workers, summed: each keeps its own fit
# cache and compiled models, so a fit that two files share is made in both when they run in
# different workers (measured: 21 in 3 cold runs, a file's tests and the seed's session fit each
# in one worker)
_FITS = {"n": 0}


class _Extensions:
    """Counts the fits sampled again until sound (`engine.soundness` logs one line each)."""

    n = 0

    def handle(self, record) -> None:
        if record.getMessage().startswith("Not yet sound"):
            _Extensions.n += 1


@pytest.fixture(scope="session", autouse=True)
def _count_fits():
    import logging

    import pymc

    handler = logging.Handler(logging.INFO)
    handler.emit = _Extensions().handle
    log = logging.getLogger("simulator.engine.soundness")
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    sample = pymc.sample

    def counted(*args, **kwargs):
        _FITS["n"] += 1
        return sample(*args, **kwargs)

    pymc.sample = counted
    yield
    pymc.sample = sample
    log.removeHandler(handler)


# The groups that take longest on a fresh machine (`--durations`, cold compile caches), longest
# first. They are handed out first, so that no worker is left with one of them while the other
# has finished: `make test` passes ``--no-loadscope-reorder``, which keeps the collection's order
# of the groups (pytest-xdist's default orders them by their number of tests).
LONGEST_FIRST = (
    "tests/validation/test_validation_reduced.py",
    "seed",
    "tests/test_season.py",
    "tests/test_track.py",
    "tests/test_archive.py",
    "tests/test_compare.py",
    "tests/test_compiled.py",
    "tests/test_backtest.py",
)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`make test`: ``--dist loadgroup``) a file's tests run in one worker,
    and every test of the seed's session fit in the same one, so a module's or the session's
    fixture fit is made once; the longest groups come first (`LONGEST_FIRST`)."""
    xdist = config.pluginmanager.hasplugin("xdist")
    if xdist:
        rank = {g: i for i, g in enumerate(LONGEST_FIRST)}
        groups = {}
        for item in items:
            group = "seed" if "seed_result" in item.fixturenames else item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(group))
            groups[item] = rank.get(group, len(rank))
        if hasattr(config, "workerinput"):  # a worker's collection (in one process, files stay
            items.sort(key=groups.__getitem__)  # whole): stable, each group keeps its order
    result = yield
    if xdist:
        _group_ids(items)
    return result


def _group_ids(items) -> None:
    """pytest-xdist (3.8) tells its scheduler a test's group by appending ``@group`` to the
    test's legacy ``_nodeid``, which pytest 9.2 no longer reads (its node ids are structured):
    the groups were silently ignored and a file's module fixtures fitted in both workers
    (pytest-xdist issue 1386). This carries the suffix into the id pytest reports; once
    pytest-xdist sets the id itself the two agree and nothing changes."""
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # a pytest whose node ids are still strings: xdist's suffix works
        return
    for item in items:
        legacy = item.__dict__.get("_nodeid")
        if isinstance(legacy, str) and legacy != item.nodeid and hasattr(item, "_id"):
            item._id = NodeId.parse(legacy)


_WORKERS: list[dict[str, int]] = []  # with pytest-xdist: each worker's counts, at its end


def _counts() -> dict[str, int]:
    """This process's NUTS fits, compiles (and how many of them loaded from the disk cache),
    reuses and fits sampled again until sound."""
    import sys

    comp = sys.modules.get("simulator.model.compiled")
    st = comp.stats() if comp is not None else {"runs": 0, "compiles": 0, "loads": 0, "reuses": 0}
    return {
        "fits": _FITS["n"] + st["runs"],
        "compiles": st["compiles"],
        "loads": st["loads"],
        "reuses": st["reuses"],
        "extended": _Extensions.n,
    }


_GROUP_WORKERS: dict[str | None, set[str]] = {}  # (pytest-xdist controller) a group's workers


def pytest_runtest_logreport(report):
    """(pytest-xdist, in the controller) which worker ran each group's tests."""
    node = getattr(report, "node", None)
    if node is not None and report.when == "call":
        tail = report.nodeid.rpartition("]")[2] if "]" in report.nodeid else report.nodeid
        group = tail.rpartition("@")[2] if "@" in tail else None
        _GROUP_WORKERS.setdefault(group, set()).add(str(node.gateway.id))


def _groups_split() -> list[str]:
    """Groups whose tests ran in more than one worker (``None``: tests xdist gave no group)."""
    return sorted(str(g) for g, ws in _GROUP_WORKERS.items() if g is None or len(ws) > 1)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """(pytest-xdist, in the controller) a worker's counts, summed at the end."""
    counts = getattr(node, "workeroutput", {}).get("krsim_counts")
    if counts:
        _WORKERS.append(counts)


def pytest_sessionfinish(session, exitstatus):
    """The whole fast suite (`make test`: no path, the default marker) fails when it ran more
    NUTS fits than FIT_BUDGET (with pytest-xdist: summed over its workers); a run in workers
    fails when a group's tests ran in more than one, or xdist saw no group."""
    cfg = session.config
    if hasattr(cfg, "workeroutput"):  # a worker: hand the counts to the controller
        cfg.workeroutput["krsim_counts"] = _counts()
        return
    split = _groups_split() if cfg.getoption("dist", "no") == "loadgroup" else []
    if split and session.testsfailed == 0:  # module fixtures would fit in both workers
        tr = cfg.pluginmanager.get_plugin("terminalreporter")
        tr.write_line(
            f"\npytest-xdist's groups did not hold (split, or missing: 'None'): {split[:5]}; "
            "if a new pytest-xdist no longer marks the group in the node id, see _group_ids"
        )
        session.exitstatus = 1
    whole = not cfg.args or [Path(a).resolve() for a in cfg.args] == [ROOT / "tests"]
    if whole and cfg.getoption("markexpr") == "not slow":
        total = _counts()
        for counts in _WORKERS:
            total = {k: total[k] + counts.get(k, 0) for k in total}
        n = total["fits"]
        budget = FIT_BUDGET_WORKERS if _WORKERS else FIT_BUDGET
        tr = cfg.pluginmanager.get_plugin("terminalreporter")
        workers = f" in {len(_WORKERS)} workers" if _WORKERS else ""
        tr.write_line(f"\nNUTS fits in this run: {n}{workers} (budget {budget})")
        tr.write_line(
            f"compiled models: {total['compiles']} compiled ({total['loads']} of them loaded "
            f"from the disk cache), {total['reuses']} reused"
        )
        tr.write_line(f"fits sampled again until sound: {total['extended']}")
        if n > budget and session.testsfailed == 0:
            tr.write_line(f"the fast suite ran {n} fits, more than its budget of {budget}")
            session.exitstatus = 1
