"""Histories of different lengths padded to one model (`design.paddings`, used by `backtest`):
the padded model is each history's own model, exactly, and one graph serves every length, so
one compiled model samples them all. Evaluated in PyTensor's Python mode: nothing is compiled."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from simulator.model.design import Padding, design_of, paddings, walk_terms

ROOT = Path(__file__).resolve().parent.parent

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
    """A scenario, its history, and the shorter history padded to the longer's length: the
    seed's first 39 of 52 weeks (with empty cells in the traffic and a stage, and two events; or
    with steady levels), or the booking scenario's 70 of its first 83 weeks (a yearly profile,
    clear for the traffic)."""
    from simulator.io.scenario import Event

    if name == "seasonal":
        from simulator.api import load_scenario
        from simulator.io.data import read_history

        scenario = load_scenario(ROOT / "scenarios" / "booking_q1.yaml")
        history = read_history(scenario).rows(0, 83)
        return scenario, history, history.rows(0, 70)
    scenario, history = _seed()
    short = history.rows(0, 39)
    root, stage = list(scenario.funnel)[:2]
    if name == "steady":
        mb = scenario.model.model_copy(update={"drift": "none"})
        return scenario.model_copy(update={"model": mb}), history, short
    # empty cells: the traffic's, and a stage's; two events
    gaps = {root: np.arange(39) == 5, stage: np.isin(np.arange(39), [9, 20])}
    short = dataclasses.replace(short, missing={**short.missing, **gaps})
    events = [
        Event(label="campaign", first=short.labels[10], last=short.labels[12], stages=[root]),
        Event(label="outage", first=short.labels[30], last=short.labels[30]),
    ]
    return scenario.model_copy(update={"events": events}), history, short


TRACED = (
    "traffic_walk_last",
    "rate_walk_last",
    "drift_weight",
    "rate_drift_weight",
    "season_beta",
    "rate_season_beta",
    "event_traffic",
    "event_rate",
)


@pytest.mark.parametrize("variant", ["seed", "steady", "seasonal"])
def test_the_padded_model_is_the_history_model(variant):
    """The shorter history padded to the longer's length: the log density changes with the
    history's parameters exactly as the unpadded model's does, with the same gradient, and what
    the forecast reads (where the walks end, the drift's weights, the profiles, the events'
    effects) is the same; the padded periods' parameters and the walks' extra terms are standard
    normals of their own."""
    from simulator.model.funnel import build_model

    scenario, history, short = _variant(variant)
    pad = paddings(scenario, [short, history])[0]
    P = pad.length - len(short)
    own = build_model(scenario, short, centred=np.array(pad.centred))
    # the unpadded model, given the padding's centred nodes, makes its choices of profiles
    # itself: the same ones (so the two have the same variables)
    d = design_of(scenario, short)
    assert d.calendar.traffic_clear == pad.traffic_clear
    rc = d.calendar.rate_clear
    assert (None if rc is None else tuple(rc)) == pad.rate_clear
    big = build_model(scenario, short, pad=pad)
    _same_changes(own, big, P, seed=3)


def _traced(model, names: list[str]):
    """The named variables as a function of a point (the value variables by name)."""
    outs = model.replace_rvs_by_values([model[n] for n in names])
    return model.compile_fn(outs, inputs=model.value_vars, mode=_mode(), on_unused_input="ignore")


def _actuals(history, weeks: int, option: str):
    """The history's first ``weeks`` weeks, as if observed after it under ``option``."""
    from simulator.io.data import CountTable
    from simulator.model import Launched

    counts = {c: np.asarray(v[:weeks]) for c, v in history.counts.items()}
    labels = tuple(f"after {i + 1}" for i in range(weeks))
    return Launched(option, CountTable(history.path, history.key, labels, counts))


def test_the_padded_model_with_launched_periods_is_the_model():
    """`track`'s model: the seed's 52 weeks and 4 weeks under its gate (an account required,
    whose stages have a Gaussian likelihood), padded to the history and the quarter (65 weeks):
    the log density changes with the parameters as the unpadded model's does, with the same
    gradient, and what the forecast reads is the same."""
    from simulator.model import launched_padding
    from simulator.model.funnel import build_model

    scenario, history = _seed()
    launched = _actuals(history, 4, "mandatory_account")
    pad = launched_padding(scenario, history, 4, scenario.horizon)
    assert pad.length == 52 + 13
    P = pad.length - 56
    own = build_model(scenario, history, launched=launched, centred=np.array(pad.centred))
    big = build_model(scenario, history, launched=launched, pad=pad)
    _same_changes(own, big, P, seed=7)


def test_weeks_of_actuals_padded_alike_make_one_graph():
    """Three and five weeks of actuals, padded to the history and the quarter: one computation,
    so next week's `track` loads this week's compiled model."""
    from simulator.model import compiled, launched_padding
    from simulator.model.funnel import build_model

    scenario, history = _seed()
    models = []
    for weeks in (3, 5):
        pad = launched_padding(scenario, history, weeks, scenario.horizon)
        launched = _actuals(history, weeks, "mandatory_account")
        models.append(build_model(scenario, history, launched=launched, pad=pad))
    assert compiled.same_computation(*(compiled.graphs_of(m) for m in models))


def _same_changes(own, big, P: int, seed: int) -> None:
    """``big`` (padded by ``P`` periods) against ``own`` at random points: the same changes of
    the log density, the same gradient in ``own``'s entries, the same traced quantities, and
    standard normals in the padded entries."""
    f0, f1 = own.compile_logp(mode=_mode()), big.compile_logp(mode=_mode())
    g0, g1 = own.compile_dlogp(mode=_mode()), big.compile_dlogp(mode=_mode())
    traced = [n for n in TRACED if n in own.named_vars]
    t0, t1 = (_traced(m, traced) for m in (own, big))
    rng = np.random.default_rng(seed)
    init0, init1 = own.initial_point(), big.initial_point()
    fill = {k: rng.normal(size=np.shape(v)) for k, v in init1.items()}
    shapes = {k: np.shape(v) for k, v in init0.items()}
    for _ in range(3):
        a, b = (
            {k: np.asarray(v) + rng.normal(scale=0.3, size=np.shape(v)) for k, v in init0.items()}
            for _ in range(2)
        )
        pa, pb = _padded_point(a, fill, P), _padded_point(b, fill, P)
        own_change, big_change = f0(a) - f0(b), f1(pa) - f1(pb)
        assert np.isfinite(own_change)
        assert big_change == pytest.approx(own_change, rel=1e-11, abs=1e-8)
        grad0, grad1 = _per_variable(own, g0(a)), _per_variable(big, g1(pa))
        real = _real_entries(grad1, shapes, P)
        for k, g in grad0.items():
            np.testing.assert_allclose(real[k], g, rtol=1e-9, atol=1e-9, err_msg=k)
        # (a drift's weight is a logistic of the difference of two log densities of about 1e5:
        # rounding in their sums is about 1e-11)
        for x, y, n in zip(t0(a), t1(pa), traced, strict=True):
            np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-9, err_msg=n)
        # the padded entries and the extra walk terms: standard normals, their gradient -x
        for k, g in grad1.items():
            if k.endswith("drift_z"):
                cols = shapes[k][-1]
                np.testing.assert_allclose(g[..., cols:], -pa[k][..., cols:], rtol=1e-12)
            elif np.shape(g) != shapes[k]:
                np.testing.assert_allclose(g[..., :P], -pa[k][..., :P], rtol=1e-12)


def _per_variable(model, flat: np.ndarray) -> dict[str, np.ndarray]:
    """A model's flat gradient split per value variable, in the model's order."""
    init = model.initial_point()
    names = [v.name for v in model.value_vars]
    sizes = [int(np.prod(np.shape(init[n]))) for n in names]
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return {n: x.reshape(np.shape(init[n])) for n, x in zip(names, parts, strict=True)}


def test_histories_of_two_lengths_padded_alike_make_one_graph():
    """26 and 39 weeks padded to 52 weeks: the same computation up to the data (what a compiled
    model is reused on, `compiled.same_computation`)."""
    from simulator.model import compiled
    from simulator.model.funnel import build_model

    scenario, history = _seed()
    pad = paddings(scenario, [history.rows(0, 26), history])[0]
    a, b = (build_model(scenario, history.rows(0, n), pad=pad) for n in (26, 39))
    assert compiled.same_computation(compiled.graphs_of(a), compiled.graphs_of(b))


def test_paddings_take_the_longest_histories_choices():
    scenario, history = _seed()
    hs = [history.rows(0, n) for n in (13, 26, 39)]
    pads = paddings(scenario, hs)
    assert len(set(pads)) == 1
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
    with pytest.raises(ValueError, match="padding covers"):
        from simulator.model.funnel import build_model

        build_model(ar1, hs[0], pad=pad)


def test_windows_whose_models_have_other_parts_are_padded_apart():
    """An event in the 39 weeks but not in the 13 or 26: its effect is a parameter the shorter
    windows' models lack, so they are padded to 26 together and the 39 weeks not at all."""
    from simulator.io.scenario import Event

    scenario, history = _seed()
    hs = [history.rows(0, n) for n in (13, 26, 39)]
    ev = Event(label="campaign", first=history.labels[30], last=history.labels[31])
    with_event = scenario.model_copy(update={"events": [ev]})
    a, b, c = paddings(with_event, hs)
    assert a == b and a.length == 26 and c is None


def test_a_padded_fit_has_a_key_of_its_own():
    from simulator.model.fitting import fit_key

    scenario, history = _seed()
    short = history.rows(0, 39)
    pad = paddings(scenario, [short, history])[0]
    assert fit_key(scenario, short, pad=pad) != fit_key(scenario, short)
    other = dataclasses.replace(pad, length=60)
    assert fit_key(scenario, short, pad=pad) != fit_key(scenario, short, pad=other)


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
