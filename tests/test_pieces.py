"""A compiled function graph in pieces (`simulator.model.pieces`): run in turn, the pieces give
what the whole graph gives, for a plain graph and through a model's two callbacks; forked
processes compile them, and a process that fails only costs time; the count of pieces follows
the graph, not the number of processes. On small graphs (a few seconds of numba each)."""

from __future__ import annotations

import os

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from simulator.model import cfuncs, pieces
from simulator.model.compiled import CALLBACKS

ROUNDING = 64 * np.finfo(float).eps  # a few units in the last place (measured: at most 2)

WIDE = 40  # values crossing the last cut: more than a Python call passes without a list


@pytest.fixture(scope="module")
def graph():
    """A compiled PyTensor function (numba mode) whose last piece of 4 takes more than 30
    values: ``x``'s elements taken one by one (``WIDE`` nodes of one function, compiled once),
    stacked in reverse order and times a shared input (the data); the sum of their exponentials
    and the product itself."""
    x = pt.vector("x", shape=(WIDE,))
    data = pytensor.shared(np.linspace(0.5, 1.5, WIDE), name="data")
    y = pt.stack([x[i] for i in reversed(range(WIDE))]) * data
    return pytensor.function([x], [pt.sum(pt.exp(y)), y], mode="NUMBA")


@pytest.fixture
def others_first(monkeypatch):
    """The calling process waits (at most 30 s) until another process has taken a piece before
    it takes any, so that the pieces' loading from another process is tested on any machine."""
    import fcntl
    import struct
    import termios
    import time

    take, caller = pieces._take, os.getpid()

    def waiting_take(tasks, r):
        deadline = time.monotonic() + 30
        while os.getpid() == caller and time.monotonic() < deadline:
            unread = struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0" * 4))[0]
            if unread < 4 * len(tasks):
                break
            time.sleep(0.01)
        take(tasks, r)

    monkeypatch.setattr(pieces, "_take", waiting_take)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """numba's cache of PyTensor's functions in a folder of this test's own (empty), so the
    pieces are compiled here, not loaded from an earlier run."""
    from pytensor.link.numba import cache

    monkeypatch.setattr(cache, "NUMBA_CACHE_PATH", tmp_path)
    return tmp_path


def hits(split) -> int:
    """How many of the pieces this process loaded from the cache (another process compiled
    them); each piece must have been compiled for one signature only (the one predicted)."""
    assert all(len(p.fn.signatures) == 1 for p in split.pieces)
    return sum(sum(p.fn.stats.cache_hits.values()) for p in split.pieces)


def run(split, *args):
    """Call the pieces' chain from Python (the chain itself is for compiled callers only)."""
    chain = pieces.chain(split)
    return numba.njit(lambda *a: chain(*a))(*args)


def test_the_pieces_in_turn_give_what_the_whole_gives(graph, own_cache, others_first, monkeypatch):
    monkeypatch.setenv("KRSIM_COMPILE_JOBS", "2")
    fg = graph.maker.fgraph
    split = pieces.split(fg, 4)
    assert len(split.pieces) == 4
    assert max(len(p.takes) for p in split.pieces) > 30  # the chain passes more than 30 values
    pieces.compile_all([split], pieces.jobs())
    assert hits(split) >= 1  # the other process compiled some
    data = graph.get_shared()[0].get_value()
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.normal(size=WIDE)
        total, y = run(split, x, data)
        want_total, want_y = graph(x)
        np.testing.assert_allclose(total, want_total, rtol=ROUNDING)
        np.testing.assert_allclose(y, want_y, rtol=ROUNDING)


def test_a_model_compiled_in_pieces_gives_its_log_density_and_trace(
    own_cache, others_first, monkeypatch, caplog
):
    """The callbacks nutpie samples through, with the log density in pieces compiled by two
    processes, and one callback compiled by the other process: the whole functions' values, at
    points across the space. The model has what the funnel's has: positive parameters, binomial
    and negative binomial likelihoods on data, a deterministic; PyMC's checks make scalars and
    booleans that cross the cuts."""
    import ctypes

    import pymc as pm

    monkeypatch.setenv("KRSIM_COMPILE_JOBS", "2")
    monkeypatch.setattr(pieces, "NODES_PER_PIECE", 8)
    with pm.Model() as model:
        n = pm.Data("n", np.array([120, 95, 130, 101]))
        k = pm.Data("k", np.array([14, 9, 17, 12]))
        mu = pm.Normal("mu", 0.0, 1.5)
        sd = pm.HalfNormal("sd", 0.5)
        eta = pm.Normal("eta", mu, sd, shape=4)
        pm.Binomial("obs", n=n, logit_p=eta, observed=k)
        alpha = pm.Gamma("alpha", 2.0, 0.1)
        pm.NegativeBinomial("traffic", mu=pm.math.exp(5.0 + mu), alpha=alpha, observed=n)
        pm.Deterministic("rate", pm.math.invlogit(eta))
    with caplog.at_level("DEBUG", logger="simulator.model.cfuncs"):
        cm = cfuncs.compile_model(model)
    assert caplog.text.count("callback compiled in another process") >= 1
    assert not any(cfuncs.loaded(getattr(cm, f)) for f in CALLBACKS)  # compiled for this fit
    split = pieces.split(cm.logp_func.maker.fgraph)
    assert len(split.pieces) > 2
    passed = [t for p in split.pieces[1:] for t in p.signature[0].types[len(cm.shared_data) + 1 :]]
    assert {str(t) for t in passed} >= {"bool", "float64"}  # scalars cross, not only arrays
    c = ctypes.c_void_p
    logp_type = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, c, c, c, c)
    expand_type = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, c, c, c)
    rng = np.random.default_rng(7)
    for scale in (0.1, 0.5, 1.0, 2.0):
        x = rng.normal(scale=scale, size=cm.n_dim)
        grad, logp, out = np.zeros(cm.n_dim), np.zeros(()), np.zeros(cm.n_expanded)
        ptrs = (x.ctypes.data, grad.ctypes.data, logp.ctypes.data, cm.user_data.ctypes.data)
        assert logp_type(cm.compiled_logp_func.address)(cm.n_dim, *ptrs) == 0
        ptrs = (x.ctypes.data, out.ctypes.data, cm.user_data.ctypes.data)
        assert expand_type(cm.compiled_expand_func.address)(cm.n_dim, cm.n_expanded, *ptrs) == 0
        want_logp, want_grad = cm.logp_func(x)
        np.testing.assert_allclose(logp, want_logp, rtol=ROUNDING)
        np.testing.assert_allclose(grad, want_grad, rtol=ROUNDING, atol=ROUNDING)
        np.testing.assert_allclose(out, cm.expand_func(x)[0], rtol=ROUNDING, atol=ROUNDING)


def test_a_failed_compiling_process_only_costs_time(graph, own_cache, monkeypatch):
    """Forked processes that die at once leave their pieces to the caller, which compiles them."""
    monkeypatch.setattr(pieces, "_child", lambda *a: os._exit(3))
    split = pieces.split(graph.maker.fgraph, 4)
    pieces.compile_all([split], 3)
    assert hits(split) == 0
    data = graph.get_shared()[0].get_value()
    x = np.linspace(-1, 1, WIDE)
    np.testing.assert_allclose(run(split, x, data)[0], graph(x)[0], rtol=ROUNDING)


def test_the_count_of_pieces_follows_the_graph_not_the_processes(graph, monkeypatch):
    """One process compiles the graph whole, as nutpie does; two or four cut it alike."""
    fg = graph.maker.fgraph
    counts = set()
    for jobs in ("2", "4"):
        monkeypatch.setenv("KRSIM_COMPILE_JOBS", jobs)
        counts.add(len(pieces.split(fg).pieces))
    want = min(pieces.MAX_PIECES, round(len(fg.apply_nodes) / pieces.NODES_PER_PIECE))
    assert counts == {max(1, want)}
    monkeypatch.setenv("KRSIM_COMPILE_JOBS", "1")
    assert len(pieces.split(fg).pieces) == 1
    keys = {pieces.split(fg, 2).key for _ in range(2)}  # the same pieces: the same cache keys
    assert len(keys) == 1 and None not in keys


def test_jobs_come_from_the_environment_or_the_cpus(monkeypatch, caplog):
    monkeypatch.setenv("KRSIM_COMPILE_JOBS", "3")
    assert pieces.jobs() == 3
    monkeypatch.setenv("KRSIM_COMPILE_JOBS", "many")
    assert pieces.jobs() == 1
    assert "KRSIM_COMPILE_JOBS" in caplog.text
    monkeypatch.delenv("KRSIM_COMPILE_JOBS")
    if hasattr(os, "sched_getaffinity"):
        assert pieces.jobs() == min(pieces.MAX_JOBS, len(os.sched_getaffinity(0)))


def test_the_graph_mode_rewrites_as_numba_and_converts_only_when_called():
    """The functions the callbacks are cut from have NUMBA mode's graphs (the same cache keys),
    but are converted to numba only if called from Python, then give the same values."""
    x = pt.vector("x", shape=(3,))
    out = pt.sum(pt.exp(x) * pt.arange(3)) + pt.log1p(pt.sum(x**2))
    deferred = pytensor.function([x], [out, pt.grad(out, x)], mode=cfuncs.graph_mode())
    numba_mode = pytensor.function([x], [out, pt.grad(out, x)], mode="NUMBA")
    key = pieces.split(deferred.maker.fgraph, 1).key
    assert key is not None and key == pieces.split(numba_mode.maker.fgraph, 1).key
    assert deferred.vm.jit_fn.fn is None  # nothing converted yet
    point = np.array([0.3, -1.2, 2.0])
    for got, want in zip(deferred(point), numba_mode(point), strict=True):
        np.testing.assert_allclose(got, want, rtol=ROUNDING)
    assert deferred.vm.jit_fn.fn is not None
