"""Histories of different lengths padded to one model (`design.paddings`, used by `backtest`):
the padded model is each history's own model, exactly, and one graph serves every length, so
one compiled model samples them all. Evaluated in PyTensor's Python mode: nothing is compiled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator.model.design import Padding, design_of, paddings, walk_terms

PY = None  # PyTensor's Python mode, made on first use


def _mode():
    global PY
    if PY is None:
        import pytensor

        PY = pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile")
    return PY


def _seed():
    from conftest import SEED_SCENARIO

    from simulator.api import load_scenario
    from simulator.io.data import read_history

    s = load_scenario(SEED_SCENARIO)
    return s, read_history(s)


def _padded_point(point: dict, padded_init: dict, pad: int) -> dict:
    """A point of the unpadded model as a point of the padded one: the period axis (last) padded
    at the front, the walks' terms (last) at the end, with the padded entries from
    ``padded_init``."""
    out = {}
    for k, fill in padded_init.items():
        v, x = np.asarray(point[k], dtype=float), np.array(fill, dtype=float)
        if v.shape == x.shape:
            out[k] = v
        elif k.endswith("drift_z"):
            x[..., : v.shape[-1]] = v
            out[k] = x
        else:
            x[..., pad:] = v
            out[k] = x
    return out


def _real_entries(grad: dict, shapes: dict, pad: int) -> dict:
    """The padded model's gradient at the entries the unpadded model has."""
    out = {}
    for k, g in grad.items():
        shape = shapes[k]
        if np.shape(g) == shape:
            out[k] = g
        elif k.endswith("drift_z"):
            out[k] = g[..., : shape[-1]]
        else:
            out[k] = g[..., pad:]
    return out


def _variant(name: str):
    """The seed scenario and its first 39 weeks, as the variant ``name`` has them."""
    from simulator.io.scenario import Event

    scenario, history = _seed()
    short = history.rows(0, 39)
    root, stage = list(scenario.funnel)[:2]
    if name == "missing":  # empty cells: the traffic's, and a stage's
        gaps = {root: np.arange(39) == 5, stage: np.isin(np.arange(39), [9, 20])}
        short = dataclasses.replace(short, missing={**short.missing, **gaps})
    mb = {"steady": {"drift": "none"}}.get(name)
    events = {
        "events": [
            Event(label="campaign", first=short.labels[10], last=short.labels[12], stages=[root]),
            Event(label="outage", first=short.labels[30], last=short.labels[30]),
        ]
    }
    if mb:
        scenario = scenario.model_copy(update={"model": scenario.model.model_copy(update=mb)})
    if name == "events":
        scenario = scenario.model_copy(update=events)
    return scenario, history, short


@pytest.mark.parametrize("variant", ["seed", "missing", "steady", "events"])
def test_the_padded_model_is_the_history_model(variant):
    """39 of the seed's 52 weeks (its trend, its drifting levels; with empty cells in the traffic
    and a stage; with steady levels; with two events), padded to 52: the log density changes
    with the history's parameters exactly as the unpadded model's does, and its gradient in them
    is the same; the padded periods' parameters are standard normals of their own."""
    from simulator.model.funnel import build_model

    scenario, history, short = _variant(variant)
    pad = dataclasses.replace(paddings(scenario, [short, history])[0], length=52)
    P = 52 - 39
    own = build_model(scenario, short, centred=np.array(pad.centred))
    big = build_model(scenario, short, pad=pad)
    assert design_of(scenario, short, pad=pad).padded == P
    f0, f1 = own.compile_logp(mode=_mode()), big.compile_logp(mode=_mode())
    g0, g1 = own.compile_dlogp(mode=_mode()), big.compile_dlogp(mode=_mode())
    rng = np.random.default_rng(3)
    init0, init1 = own.initial_point(), big.initial_point()
    fill = {k: rng.normal(size=np.shape(v)) for k, v in init1.items()}
    shapes = {k: np.shape(v) for k, v in init0.items()}
    names1 = [v.name for v in big.value_vars]
    sizes1 = [int(np.prod(np.shape(init1[n]))) for n in names1]
    for _ in range(3):
        a, b = (
            {k: np.asarray(v) + rng.normal(scale=0.3, size=np.shape(v)) for k, v in init0.items()}
            for _ in range(2)
        )
        pa, pb = _padded_point(a, fill, P), _padded_point(b, fill, P)
        own_change, big_change = f0(a) - f0(b), f1(pa) - f1(pb)
        assert np.isfinite(own_change)
        assert big_change == pytest.approx(own_change, rel=1e-11, abs=1e-8)
        # the gradient, split per value variable in the model's order
        flat = np.split(g1(pa), np.cumsum(sizes1)[:-1])
        grad1 = {n: x.reshape(np.shape(init1[n])) for n, x in zip(names1, flat, strict=True)}
        real = _real_entries(grad1, shapes, P)
        flat0 = np.split(
            g0(a), np.cumsum([int(np.prod(shapes[v.name])) for v in own.value_vars])[:-1]
        )
        for v, x in zip(own.value_vars, flat0, strict=True):
            np.testing.assert_allclose(real[v.name].ravel(), x, rtol=1e-9, atol=1e-9)
        # the padded entries: standard normals, their gradient -x
        for n in ("rate_z", "rate_eta_c"):
            if n in grad1:
                np.testing.assert_allclose(grad1[n][..., :P], -pa[n][..., :P], rtol=1e-12)


def test_histories_of_two_lengths_padded_alike_make_one_graph():
    """26 and 39 weeks padded to 52 weeks: the same computation up to the data (what a compiled
    model is reused on, `compiled.same_computation`); unpadded, they are not."""
    from simulator.model import compiled
    from simulator.model.funnel import build_model

    scenario, history = _seed()
    pad = paddings(scenario, [history.rows(0, 26), history])[0]
    a, b = (build_model(scenario, history.rows(0, n), pad=pad) for n in (26, 39))
    assert compiled.same_computation(compiled.graphs_of(a), compiled.graphs_of(b))
    c = build_model(scenario, history.rows(0, 39), centred=np.array(pad.centred))
    assert not compiled.same_computation(compiled.graphs_of(a), compiled.graphs_of(c))


def test_paddings_take_the_longest_histories_choices():
    scenario, history = _seed()
    hs = [history.rows(0, n) for n in (13, 26, 39)]
    pads = paddings(scenario, hs)
    assert len({p for p in pads}) == 1
    (pad,) = set(pads)
    d39 = design_of(scenario, hs[-1])
    assert pad == Padding(39, tuple(d39.centred), False, None, walk_terms(39))
    # the 13 weeks' own choice of centred nodes differs: the padded model takes the longest's
    assert tuple(design_of(scenario, hs[0]).centred) != pad.centred
    # alone, or with parts that padding does not cover: not padded
    assert paddings(scenario, hs[:1]) == [None]
    ar1 = scenario.model_copy(
        update={"model": scenario.model.model_copy(update={"period_effects": "ar1"})}
    )
    assert paddings(ar1, hs) == [None, None, None]
    with pytest.raises(ValueError, match="cannot pad"):
        design_of(scenario, history, pad=pad)


def test_backtest_pads_its_windows_to_the_longest(tmp_path, monkeypatch):
    """`backtest` fits every window padded to the longest (the fit replaced by a point mass)."""
    from known_fits import known_fit
    from test_backtest import write_funnel

    from simulator import backtest, load_scenario, model

    scenario = load_scenario(write_funnel(tmp_path, periods=16))
    asked = []

    def fit(s, history, **kw):
        asked.append((len(history), kw.get("pad")))
        return known_fit(s, {"signup": 0.12, "paid": 0.3}, 3000.0, shape=(2, 50))

    monkeypatch.setattr(model, "fit", fit)
    backtest(scenario, windows=2)
    (n1, p1), (n2, p2) = asked
    assert (n1, n2) == (8, 12) and p1 == p2 and p1.length == 12
    backtest(scenario, windows=1)
    assert asked[-1] == (12, None)
