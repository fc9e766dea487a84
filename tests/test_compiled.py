"""Compiled models reused within a process (`simulator.model.compiled`): a second model of the
same structure samples through the first one's compiled model with its own data and draws what a
fresh ``pm.sample`` draws (compiled in one piece, as nutpie compiles it); a different constant or
period count is never reused; the cache is bounded and its entries are never changed by the data
of a reuse. Three NUTS runs in all (two through the cache, one through ``pm.sample``), on the
small test funnel."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytest

from simulator import load_scenario
from simulator.io.data import read_history
from simulator.model import cfuncs, compiled, fitting
from simulator.model.funnel import build_model
from simulator.model.quiet import quiet_warnings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VOLATILE = {"created_at", "sampling_time"}  # attributes that say when, not what
ROUNDING = 64 * np.finfo(float).eps  # a few units in the last place (measured: at most 2)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small test funnel (2 chains x 100 draws), its history, and the same history with
    every count 10% higher (same length and dates: the same structure, other data)."""
    text = (
        (FIXTURES / "base.yaml")
        .read_text()
        .replace("history: history.csv", f"history: {FIXTURES / 'history.csv'}")
    )
    p = tmp_path_factory.mktemp("compiled") / "small.yaml"
    p.write_text(text)
    s = load_scenario(p)
    s = s.model_copy(
        update={
            "seed": 3,
            # constant levels: the reuse does not depend on the drift, whose graph doubles the compile
            "model": s.model.model_copy(
                update={"chains": 2, "draws": 100, "tune": 100, "drift": "none"}
            ),
        }
    )
    h = read_history(s)
    more = {k: (np.asarray(v) * 1.1).astype(np.int64) for k, v in h.counts.items()}
    return s, h, dataclasses.replace(h, counts=more)


@pytest.fixture
def empty_cache(monkeypatch):
    """A cache of this test's own (the process's cache is left as it was)."""
    monkeypatch.setattr(compiled, "_entries", OrderedDict())


def same_tree(a, b) -> None:
    """``a`` and ``b`` hold the same groups, values, coords, dims and attributes (but when they
    were made)."""
    assert set(a.groups) == set(b.groups)
    for g in a.groups:
        da, db = a[g].to_dataset(), b[g].to_dataset()
        assert da.drop_attrs(deep=False).identical(db.drop_attrs(deep=False)), g
        assert {k: v for k, v in da.attrs.items() if k not in VOLATILE} == {
            k: v for k, v in db.attrs.items() if k not in VOLATILE
        }, g


@pytest.fixture(scope="module")
def reuse(small):
    """The small funnel fitted through `fitting.sample` (a compile), then the same funnel on the
    other history with another seed and more draws (a reuse), then that second model by a fresh
    ``pm.sample`` (nutpie); with the cache's counts before and after."""
    s, h, h2 = small
    with pytest.MonkeyPatch.context() as mp:
        # one piece: nutpie's own compile is the whole graph in one function, and where pieces
        # meet LLVM rounds differently (tests/test_pieces.py), so only one piece draws the same
        mp.setenv("KRSIM_COMPILE_JOBS", "1")
        mp.setattr(compiled, "_entries", OrderedDict())  # a compile of this fixture's own
        before = compiled.stats()
        first = fitting.sample(s, h)
        s2 = s.model_copy(
            update={"seed": 11, "model": s.model.model_copy(update={"draws": 120, "tune": 110})}
        )
        second = fitting.sample(s2, h2)
        after = compiled.stats()
    mb = s2.model
    with build_model(s2, h2), quiet_warnings():
        fresh = pm.sample(
            draws=mb.draws,
            tune=mb.tune,
            chains=mb.chains,
            random_seed=s2.seed,
            target_accept=mb.accept,
            nuts_sampler="nutpie",
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
        )
    return {"first": first, "second": second, "fresh": fresh, "before": before, "after": after}


def test_the_same_structure_with_other_data_reuses_and_draws_as_a_fresh_sample(small, reuse):
    before, after = reuse["before"], reuse["after"]
    assert after["compiles"] - before["compiles"] == 1
    assert after["reuses"] - before["reuses"] == 1
    assert after["runs"] - before["runs"] == 2
    second, fresh = reuse["second"], reuse["fresh"]
    same_tree(second, fresh)  # bit for bit: draws, sampler stats, data groups, coords
    assert second["posterior"].sizes["draw"] == 120
    _, h, h2 = small
    seen = np.asarray(second["constant_data"]["traffic_count"].values)
    assert np.array_equal(seen, np.asarray(h2.counts["visits"]))
    assert not np.array_equal(seen, np.asarray(h.counts["visits"]))
    assert reuse["first"]["posterior"].sizes["draw"] == 100


def test_a_reuse_leaves_the_cached_model_unchanged(small):
    """nutpie's ``with_data`` returns a copy: the entry keeps the first history's data, and its
    record of data pointers still points at its own arrays."""
    s, h, h2 = small
    m1, m2 = build_model(s, h), build_model(s, h2)
    entry = compiled.lookup(compiled.graphs_of(m1))
    if entry is None:  # this test alone: compile the first model (no NUTS run)
        compiled.compiled_model(m1)
        entry = compiled.lookup(compiled.graphs_of(m1))
    cm = entry.compiled
    names = {var.name: key for var, key in cm.shared_var_keys.items()}
    kept = {n: cm.shared_data[k].copy() for n, k in names.items()}
    user_data = cm.user_data.copy()
    reused, was_reused = compiled.compiled_model(m2)
    assert was_reused and reused is not cm
    for n, k in names.items():
        assert np.array_equal(cm.shared_data[k], kept[n])
        assert np.array_equal(reused.shared_data[k], m2[n].get_value())
        assert np.array_equal(cm.shared_data[k], m1[n].get_value())
    # the callbacks' flat record still holds the addresses and shapes of the entry's own arrays
    assert np.array_equal(cm.user_data, cfuncs.flat_user_data(list(cm.shared_data.values())))
    assert cm.user_data.tobytes() == user_data.tobytes()
    assert not np.array_equal(
        cm.shared_data[names["traffic_count"]], m2["traffic_count"].get_value()
    )


def test_no_reuse_when_a_constant_or_the_period_count_differs(small, empty_cache):
    s, h, h2 = small
    compiled.insert(compiled.Entry(compiled.graphs_of(build_model(s, h)), compiled=None))
    assert compiled.lookup(compiled.graphs_of(build_model(s, h2))) is not None  # data only
    wider = s.model_copy(update={"model": s.model.model_copy(update={"level_sd": 1.5})})
    g = compiled.graphs_of(build_model(wider, h))
    assert g.key == compiled.graphs_of(build_model(s, h)).key  # the key alone cannot tell
    assert compiled.lookup(g) is None  # a prior's scale is a constant of the graph
    assert compiled.lookup(compiled.graphs_of(build_model(s, h.rows(0, 7)))) is None
    missing = {k: v.copy() for k, v in h.missing.items()}
    missing["signup"][2] = True  # an empty cell: the path's observed values are constants
    counts = {k: np.asarray(v).copy() for k, v in h.counts.items()}
    counts["signup"][2] = 0
    gap = dataclasses.replace(h, missing=missing, counts=counts)
    assert compiled.lookup(compiled.graphs_of(build_model(s, gap))) is None


def _tiny(sigma: float) -> pm.Model:
    with pm.Model() as m:
        pm.Normal("x", 0.0, sigma)
    return m


def test_the_cache_keeps_the_most_recently_used(monkeypatch, empty_cache):
    monkeypatch.setattr(compiled, "MAX_ENTRIES", 2)
    g1, g2, g3, g4 = (compiled.graphs_of(_tiny(s)) for s in (1.0, 2.0, 3.0, 4.0))
    for g in (g1, g2, g3):
        compiled.insert(compiled.Entry(g, compiled=None))
    assert compiled.lookup(compiled.graphs_of(_tiny(1.0))) is None  # the oldest went
    assert compiled.lookup(compiled.graphs_of(_tiny(2.0))).graphs is g2  # now the most recent
    compiled.insert(compiled.Entry(g4, compiled=None))
    assert compiled.lookup(compiled.graphs_of(_tiny(3.0))) is None
    assert compiled.lookup(g2) is not None and compiled.lookup(g4) is not None
    assert compiled.stats()["entries"] == 2


def test_the_cache_stays_bounded_under_threads(monkeypatch, empty_cache):
    monkeypatch.setattr(compiled, "MAX_ENTRIES", 3)
    graphs = [compiled.graphs_of(_tiny(1.0 + i)) for i in range(8)]

    def work(k: int) -> None:
        for i in range(40):
            g = graphs[(i + k) % len(graphs)]
            if compiled.lookup(g) is None:
                compiled.insert(compiled.Entry(g, compiled=None))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert compiled.stats()["entries"] == 3


def test_a_model_with_an_unnamed_shared_variable_is_not_matched():
    with pm.Model() as m:
        pm.Normal("x", pytensor.shared(np.array(0.0)), 1.0)
    assert compiled.graphs_of(m) is None


def test_switched_off_it_goes_through_pm_sample(monkeypatch, empty_cache):
    calls = []
    monkeypatch.setattr(compiled, "_pm_sample", lambda *a: calls.append(a) or "pm.sample")
    kw = {"draws": 10, "tune": 10, "chains": 1, "random_seed": 1, "target_accept": 0.8}
    with compiled.disabled():
        assert not compiled.enabled()
        assert compiled.sample(_tiny(1.0), **kw) == "pm.sample"
    assert compiled.enabled()
    monkeypatch.setenv(compiled.ENV_SWITCH, "off")
    assert compiled.sample(_tiny(1.0), **kw) == "pm.sample"
    assert len(calls) == 2 and compiled.stats()["entries"] == 0


def _keys_of(model, monkeypatch) -> list:
    """The keys `cfuncs.compile_model` would cache ``model``'s two callbacks under (nothing is
    compiled by numba)."""
    keys = []
    monkeypatch.setattr(cfuncs, "_callback", lambda name, src, sig, split, key: keys.append(key))
    monkeypatch.setattr(cfuncs, "_load", lambda fn: True)
    monkeypatch.setattr(cfuncs, "_compiled_class", lambda: lambda **kw: None)
    cfuncs.compile_model(model)
    monkeypatch.undo()
    return keys


def test_callbacks_are_cached_by_structure_not_data(small, monkeypatch):
    """The on-disk key of each callback is the same for another history of the same shape; the
    log density's differs when a prior's scale (a constant of the graph) differs, and both differ
    when the period count does."""
    s, h, h2 = small
    k1, k2 = _keys_of(build_model(s, h), monkeypatch), _keys_of(build_model(s, h2), monkeypatch)
    assert len(k1) == 2 and None not in k1 and k1[0] != k1[1]
    assert k1 == k2
    wider = s.model_copy(update={"model": s.model.model_copy(update={"level_sd": 1.5})})
    logp, expand = _keys_of(build_model(wider, h), monkeypatch)
    assert logp != k1[0]  # the trace does not read the prior's scale: its callback may be shared
    assert not set(_keys_of(build_model(s, h.rows(0, 7)), monkeypatch)) & set(k1)


def test_callbacks_loaded_from_disk_compute_with_their_own_data(small):
    """A second compile of the same structure loads both callbacks from the on-disk cache (as a
    new process would), and through them gives the log density, gradient and trace of its own
    data, exactly as its inner PyTensor functions do."""
    import ctypes

    s, h, h2 = small
    first = cfuncs.compile_model(build_model(s, h))
    second = cfuncs.compile_model(build_model(s, h2))
    assert cfuncs.loaded(second.compiled_logp_func) and cfuncs.loaded(second.compiled_expand_func)
    x = np.random.default_rng(5).normal(scale=0.3, size=second.n_dim)
    c = ctypes.c_void_p
    logp_type = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, c, c, c, c)
    expand_type = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, c, c, c)

    def through_callbacks(cm):
        grad, logp = np.zeros(cm.n_dim), np.zeros(())
        ptrs = (x.ctypes.data, grad.ctypes.data, logp.ctypes.data, cm.user_data.ctypes.data)
        assert logp_type(cm.compiled_logp_func.address)(cm.n_dim, *ptrs) == 0
        out = np.zeros(cm.n_expanded)
        ptrs = (x.ctypes.data, out.ctypes.data, cm.user_data.ctypes.data)
        assert expand_type(cm.compiled_expand_func.address)(cm.n_dim, cm.n_expanded, *ptrs) == 0
        return float(logp), grad, out

    for cm in (first, second):
        logp, grad, out = through_callbacks(cm)
        want_logp, want_grad = cm.logp_func(x)
        # compiled in pieces (by several processes: `pieces.split`), LLVM may fuse differently
        # where they meet, so equal to a few units in the last place
        np.testing.assert_allclose(logp, float(want_logp), rtol=ROUNDING)
        np.testing.assert_allclose(grad, want_grad, rtol=ROUNDING, atol=ROUNDING)
        np.testing.assert_allclose(out, cm.expand_func(x)[0], rtol=ROUNDING, atol=ROUNDING)
    assert through_callbacks(first)[0] != through_callbacks(second)[0]  # other data
    swapped = first.with_data(**{v.name: v.get_value() for v in second.shared_var_keys})
    assert through_callbacks(swapped)[0] == through_callbacks(second)[0]
