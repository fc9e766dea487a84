"""A compiled function graph in pieces (`simulator.model.pieces`): run in turn, the pieces give
what the whole graph gives; forked processes compile them, and a process that fails only costs
time; the count of pieces follows the graph, not the machine. On a small PyTensor graph (a few
seconds of numba); the model's callbacks through pieces are checked in tests/test_compiled.py."""

from __future__ import annotations

import os

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from simulator.model import pieces

WIDE = 40  # values crossing the middle cut: more than a Python call passes without a list


@pytest.fixture(scope="module")
def graph():
    """A compiled PyTensor function (numba mode) whose middle is crossed by ``WIDE`` values:
    each element of ``x`` scaled and exponentiated on its own, then all summed, with a shared
    input as data."""
    x = pt.vector("x", shape=(WIDE,))
    data = pytensor.shared(np.linspace(0.5, 1.5, WIDE), name="data")
    parts = [pt.exp(x[i] * (i + 1) / WIDE) * data[i] for i in range(WIDE)]
    total = pt.sum(pt.stack(parts)) + pt.log1p(pt.sum(x**2))
    return pytensor.function([x], [total, pt.grad(total, x)], mode="NUMBA")


def run(split, *args):
    """Call the pieces' chain from Python (the chain itself is for compiled callers only)."""
    chain = pieces.chain(split)
    return numba.njit(lambda *a: chain(*a))(*args)


def test_the_pieces_in_turn_give_what_the_whole_gives(graph, monkeypatch):
    monkeypatch.setenv("KRSIM_COMPILE_JOBS", "2")
    fg = graph.maker.fgraph
    split = pieces.split(fg, 3)
    assert len(split.pieces) == 3
    assert max(len(p.takes) for p in split.pieces) > 30  # the chain passes more than 30 values
    pieces.compile_all([split], pieces.jobs())
    data = graph.get_shared()[0].get_value()
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.normal(size=WIDE)
        total, grad = run(split, x, data)
        want_total, want_grad = graph(x)
        np.testing.assert_allclose(total, want_total, rtol=64 * np.finfo(float).eps)
        np.testing.assert_allclose(grad, want_grad, rtol=64 * np.finfo(float).eps)


def test_a_failed_compiling_process_only_costs_time(graph, monkeypatch):
    """Forked processes that die at once leave their pieces to the caller, which compiles them."""
    monkeypatch.setattr(pieces, "_child", lambda *a: os._exit(3))
    split = pieces.split(graph.maker.fgraph, 4)
    pieces.compile_all([split], 3)
    assert all(p.fn.signatures for p in split.pieces)
    data = graph.get_shared()[0].get_value()
    x = np.linspace(-1, 1, WIDE)
    np.testing.assert_allclose(run(split, x, data)[0], graph(x)[0], rtol=64 * np.finfo(float).eps)


def test_the_count_of_pieces_follows_the_graph_not_the_processes(graph, monkeypatch):
    """One process compiles the graph whole, as nutpie does; two or four cut it alike."""
    fg = graph.maker.fgraph
    counts = set()
    for jobs in ("2", "4"):
        monkeypatch.setenv("KRSIM_COMPILE_JOBS", jobs)
        counts.add(len(pieces.split(fg).pieces))
    assert counts == {max(1, round(len(fg.apply_nodes) / pieces.NODES_PER_PIECE))}
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
