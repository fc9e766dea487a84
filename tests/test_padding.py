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

        PY = pytensor.compile.mode.Mode(linker="py", optimizer=None)
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


LIFTED = """  lifted:
    label: Lifts and a flow (illustrative)
    changes:
      - lift: {stage: visits, factor: {lognormal_interval: [1.0, 1.2]}}
      - lift: {stage: accompany, factor: {lognormal_interval: [0.9, 1.1]}}
      - flow: {from: booking, to: signup, among: not logged_in, rate: {beta_interval: [0.03, 0.15]}}
"""


def _with_lifts(tmp_path: Path):
    """The seed scenario with an option that lifts the traffic and a rate and moves users of a
    segment's complement (its moments through the segment's)."""
    from conftest import SEED_SCENARIO

    from simulator.api import load_scenario

    text = SEED_SCENARIO.read_text().replace("options:\n", "options:\n" + LIFTED, 1)
    text = text.replace("history: data/", f"history: {SEED_SCENARIO.parent}/data/", 1)
    path = tmp_path / "lifted.yaml"
    path.write_text(text)
    return load_scenario(path)


@pytest.mark.parametrize(
    ("option", "weeks", "actuals"),
    [("mandatory_account", 52, 4), ("lifted", 6, 2)],
)
def test_the_padded_model_with_launched_periods_is_the_model(tmp_path, option, weeks, actuals):
    """`track`'s model, padded to the history and the quarter: the seed's 52 weeks and 4 weeks
    under its gate (an account required, whose stages have a Gaussian likelihood); its first 6
    weeks and 2 under lifts of the traffic and a rate and a flow (the quarter's 13 weeks then
    begin with padded periods). The log density changes with the parameters as the unpadded
    model's does, with the same gradient, and what the forecast reads is the same."""
    from simulator.model import launched_padding
    from simulator.model.funnel import build_model

    scenario, history = _seed()
    if option == "lifted":
        scenario = _with_lifts(tmp_path)
    history = history.rows(0, weeks)
    launched = _actuals(history, actuals, option)
    pad = launched_padding(scenario, history, actuals, scenario.horizon)
    assert (pad.length, pad.launched) == (weeks + 13, 13)
    P = pad.length - weeks - actuals
    own = build_model(scenario, history, launched=launched, centred=np.array(pad.centred))
    big = build_model(scenario, history, launched=launched, pad=pad)
    # the launched periods' log density is the unpadded one's, not a constant apart from it
    point = _padded_point(own.initial_point(), big.initial_point(), P)
    obs0, obs1 = (_traced(m, ["launched_obs"]) for m in (own, big))
    assert obs1(point)[0] == pytest.approx(obs0(own.initial_point())[0], rel=1e-12)
    _same_changes(own, big, P, seed=7, traced_tol=1e-9)


def test_weeks_of_actuals_padded_alike_make_one_graph(tmp_path):
    """One, five and thirteen weeks of actuals under lifts of the traffic and a rate, padded to
    the history and the quarter: one computation, so next week's `track` loads this week's
    compiled model."""
    from simulator.model import compiled, launched_padding
    from simulator.model.funnel import build_model

    scenario = _with_lifts(tmp_path)
    _, history = _seed()
    graphs = []
    for weeks in (1, 5, 13):
        pad = launched_padding(scenario, history, weeks, scenario.horizon)
        launched = _actuals(history, weeks, "lifted")
        graphs.append(
            compiled.graphs_of(build_model(scenario, history, launched=launched, pad=pad))
        )
    assert all(compiled.same_computation(graphs[0], g) for g in graphs[1:])


def test_track_pads_each_week_alike(monkeypatch):
    """`track` fits each week's actuals padded to the history and the quarter (the fit stopped
    where it is asked for)."""
    from types import SimpleNamespace

    from simulator.analyses import track

    scenario, history = _seed()
    run = SimpleNamespace(
        forecast=SimpleNamespace(counts=dict.fromkeys(scenario.options)),
        fit=SimpleNamespace(chains=4),
    )
    pads = []

    class Asked(Exception):
        pass

    def fit(scenario, history, *, launched=None, evaluate=None, pad=None):
        pads.append((len(launched), pad))
        raise Asked

    monkeypatch.setattr(track.soundness, "fit", fit)
    for weeks in (3, 5):
        table = _actuals(history, weeks, "mandatory_account").table
        with pytest.raises(Asked):
            track._quarter(scenario, history, "mandatory_account", table, run)
    (a, pa), (b, pb) = pads
    assert (a, b) == (3, 5) and pa == pb and (pa.length, pa.launched) == (65, 13)


def _same_changes(own, big, P: int, seed: int, traced_tol: float = 1e-11) -> None:
    """``big`` (padded by ``P`` periods) against ``own`` at random points: the same changes of
    the log density, the same gradient in ``own``'s entries, the same traced quantities, and
    standard normals in the padded entries."""
    traced = [n for n in TRACED if n in own.named_vars]
    f0, f1 = (_evaluator(m, traced) for m in (own, big))
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
        (lp0, grad0, t0), (lp1, grad1, t1) = f0(a), f1(pa)
        own_change, big_change = lp0 - f0(b)[0], lp1 - f1(pb)[0]
        assert np.isfinite(own_change)
        assert big_change == pytest.approx(own_change, rel=1e-11, abs=1e-8)
        real = _real_entries(grad1, shapes, P)
        for k, g in grad0.items():
            np.testing.assert_allclose(real[k], g, rtol=1e-9, atol=1e-9, err_msg=k)
        # (with launched periods, a drift's weight is a logistic of the difference of two log
        # densities of about 1e5, whose sums round differently: ``traced_tol`` 1e-9)
        for x, y, n in zip(t0, t1, traced, strict=True):
            np.testing.assert_allclose(y, x, rtol=traced_tol, atol=traced_tol / 10, err_msg=n)
        # the padded entries and the extra walk terms: standard normals, their gradient -x
        for k, g in grad1.items():
            if k.endswith("drift_z"):
                cols = shapes[k][-1]
                np.testing.assert_allclose(g[..., cols:], -pa[k][..., cols:], rtol=1e-12)
            elif np.shape(g) != shapes[k]:
                np.testing.assert_allclose(g[..., :P], -pa[k][..., :P], rtol=1e-12)


def _evaluator(model, traced: list[str]):
    """One function of a point (the value variables by name): the log density, its gradient by
    value variable, and the ``traced`` variables."""
    import pytensor

    logp = model.logp()
    values = model.value_vars
    outs = [
        logp,
        *pytensor.grad(logp, values),
        *model.replace_rvs_by_values([model[n] for n in traced]),
    ]
    fn = model.compile_fn(outs, inputs=values, mode=_mode(), on_unused_input="ignore")
    names = [v.name for v in values]

    def evaluate(point):
        out = fn(point)
        grads = dict(zip(names, out[1 : 1 + len(names)], strict=True))
        return out[0], grads, out[1 + len(names) :]

    return evaluate


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


def test_the_diagnostics_leave_the_padded_draws_out():
    """A padded fit's R-hat and ESS are the model's own: the padded periods' draws and the extra
    walk terms (standard normals no data reach) are left out, here made to disagree across
    chains."""
    import arviz as az

    from simulator.model.fitting import diagnostics, unpadded

    rng = np.random.default_rng(0)
    post = {
        "rate_z": rng.normal(size=(4, 200, 2, 10)),
        "drift_z": rng.normal(size=(4, 200, 6)),
        "level": rng.normal(size=(4, 200)),
    }
    post["rate_z"][0, :, :, :3] += 3.0  # 3 padded periods: one chain apart
    post["drift_z"][0, :, 4:] += 3.0  # 7 periods keep 4 walk terms
    dt = az.from_dict({"posterior": post})
    pad = Padding(10, (False,), False, None, 6)
    kept = unpadded(dt, pad, 7)["posterior"]
    assert kept["rate_z"].shape == (4, 200, 2, 7) and kept["drift_z"].shape == (4, 200, 4)
    assert diagnostics(dt)["rhat_max"] > 1.2
    assert diagnostics(unpadded(dt, pad, 7))["rhat_max"] < 1.05
    assert unpadded(dt, None, 7) is dt
