"""Sampling until the answer is sound (`engine.soundness`): the judgement of the quantities that
decide against ArviZ's own R-hat and ESS, and the extension loop on real posterior draws.

The loop's fits are the session's seed fit (2 chains x 300 draws) cut to the draws each attempt
asks for: a longer attempt is the shorter one's chains continued, as a longer NUTS run with the
same seed is, so no test here runs NUTS.
"""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pytest

from simulator.engine import soundness
from simulator.model.posterior import diagnostic_warnings, sound_note

HEALTHY = {"rhat_max": 1.001, "rhat_worst": "level", "ess_bulk_min": 5000.0, "ess_tail_min": 5000.0}


def _cut(fit, draws: int):
    """The fit with only its first ``draws`` draws per chain; its parameters declared healthy
    (so that what decides is judged alone) and its making recorded as 1 s."""
    arrays = {k: v[:, :draws] for k, v in fit.arrays.items()}
    diag = {**fit.diagnostics, **HEALTHY, "seconds": 1.0}
    # a key of its own: judgements are cached under the fit's key
    key = f"{fit.key}-first-{draws}"
    return dataclasses.replace(fit, key=key, arrays=arrays, diagnostics=diag, seconds=1.0)


def _judge(s, h, fit):
    return soundness.judge(*soundness.forecast_evaluation(s, h)(fit), fit.diagnostics)


@pytest.fixture
def fake_fits(seed_result, monkeypatch):
    """`model.fit` answered from the seed fit, cut to the scenario's draws; records the calls."""
    calls = []

    def fit(scenario, history, **kw):
        calls.append((scenario.model.draws, scenario.model.tune))
        return _cut(seed_result.fit, scenario.model.draws)

    monkeypatch.setattr(soundness.model, "fit", fit)
    return calls


def _scenario(seed_result, **model):
    s = seed_result.scenario
    return s.model_copy(update={"model": s.model.model_copy(update={"until_sound": True, **model})})


def test_judgement_is_arviz_on_the_key_results_and_p_met(seed_result):
    """The worst R-hat and ESS over every key result's value and P(met) under every option, each
    ArviZ's rank-normalised split R-hat and bulk/tail ESS of that quantity's draws."""
    s, fit = seed_result.scenario, seed_result.fit
    j = _judge(s, seed_result.history, _cut(fit, fit.n_draws))
    ev = seed_result.evaluation
    C = fit.chains
    rhats, ess = [], []
    for oe in ev.options.values():
        for v in oe.values.values():
            a = np.asarray(v, float).reshape(C, -1)
            rhats.append(float(az.rhat(a)))
            ess += [float(az.ess(a, method="bulk"))]
            ess += [float(az.ess(a, method="tail", prob=(0.05, 0.95)))]
        for m in [*oe.met.values(), oe.all_met, oe.value, *oe.broken.values()]:
            if 0.02 <= m.mean() <= 0.98:
                a = np.asarray(m, float).reshape(C, -1)
                rhats.append(float(az.rhat(a)))
                ess.append(float(az.ess(a, method="bulk")))
    assert j.rhat == pytest.approx(max(rhats))
    assert min(j.ess_bulk, j.ess_tail) == pytest.approx(min(ess))
    assert j.worst["option"] in s.options


def test_short_sampling_is_extended_until_sound(seed_result, fake_fits):
    """75 draws per chain (2 chains) are too few for an ESS of 400: the loop asks for twice,
    then four times the draws, and stops as soon as the answer is sound."""
    s = _scenario(seed_result, draws=75, tune=400)
    fit = soundness.fit(s, seed_result.history)
    rec = fit.diagnostics["decision"]
    first = _judge(s, seed_result.history, _cut(seed_result.fit, 75))
    assert not first.sound
    assert fake_fits[0] == (75, 400)
    assert fake_fits[1:] == [(d, t) for d, t in soundness.schedule(75, 400)][: len(fake_fits) - 1]
    assert rec["draws"] == fake_fits[-1][0] == fit.n_draws // fit.chains
    assert [st["draws"] for st in rec["steps"]] == [c[0] for c in fake_fits]
    # it stopped at the first sound attempt, or after the last one
    sound = [_judge(s, seed_result.history, _cut(seed_result.fit, d)).sound for d, _ in fake_fits]
    assert rec["sound"] == sound[-1]
    assert not any(sound[:-1])
    if rec["sound"]:
        assert diagnostic_warnings(fit.diagnostics, fit.n_draws) == []
        note = sound_note(fit.diagnostics)
        assert note and f"{rec['draws']:,}" in note


def test_sound_sampling_is_not_extended(seed_result, fake_fits):
    s = _scenario(seed_result)  # the fixture's own 300 draws
    fit = soundness.fit(s, seed_result.history)
    rec = fit.diagnostics["decision"]
    assert rec["sound"] is _judge(s, seed_result.history, _cut(seed_result.fit, 300)).sound
    if rec["sound"]:
        assert len(fake_fits) == 1 and sound_note(fit.diagnostics) is None


def test_the_time_cap_stops_extending_and_says_what_to_do(seed_result, fake_fits):
    s = _scenario(seed_result, draws=60, sound_seconds=0.5)  # each fake fit "takes" 1 s
    fit = soundness.fit(s, seed_result.history)
    rec = fit.diagnostics["decision"]
    assert len(fake_fits) == 1 and rec["capped"] and not rec["sound"]
    (w,) = diagnostic_warnings(fit.diagnostics, fit.n_draws)
    assert "not yet sound" in w and "model.sound_seconds" in w and "60 draws per chain" in w


def test_draws_asked_for_are_exactly_those(seed_result, fake_fits):
    """`--draws` (or ``draws=``) turns the extension off: one fit, and a warning that says how
    to get more draws."""
    s = seed_result.scenario.with_overrides(draws=60)
    fit = soundness.fit(s, seed_result.history)
    assert fake_fits == [(60, s.model.tune)]
    (w,) = diagnostic_warnings(fit.diagnostics, fit.n_draws)
    assert "--draws" in w


def test_parameter_warnings_give_way_to_the_judgement():
    """A slowly mixing parameter while every quantity that decides is sound: no warning (it
    changes no printed number); divergences are always reported."""
    d = {"rhat_max": 1.02, "rhat_worst": "drift_sd", "ess_bulk_min": 300, "ess_tail_min": 350}
    rec = {"rhat": 1.003, "ess_bulk": 900.0, "ess_tail": 800.0, "sound": True, "draws": 1000}
    assert len(diagnostic_warnings({**d, "divergences": 0}, 4000)) == 2
    assert diagnostic_warnings({**d, "divergences": 0, "decision": rec}, 4000) == []
    assert len(diagnostic_warnings({**d, "divergences": 3, "decision": rec}, 4000)) == 1


def test_the_run_summary_carries_the_judgement(seed_result):
    d = seed_result.run.diagnostics
    assert d.decision is not None
    out = seed_result.to_dict()["diagnostics"]["decision"]
    assert out["draws"] == seed_result.fit.n_draws // seed_result.fit.chains
    assert set(out["worst"]) == {"quantity", "key_result", "option", "rhat", "ess"}


def test_a_parameter_that_mixes_badly_is_unsound_too(seed_result):
    """A forecast quantity's own noise can hide chains that disagree: the model's parameters
    must reach the same bounds, and the worst is then named."""
    s, h = seed_result.scenario, seed_result.history
    fit = _cut(seed_result.fit, 300)
    bad = dataclasses.replace(
        fit, diagnostics={**fit.diagnostics, "rhat_max": 1.03, "rhat_worst": "drift_sd"}
    )
    good, j = _judge(s, h, fit), _judge(s, h, bad)
    assert not j.sound and not j.parameters_sound
    assert (j.rhat, j.ess_bulk, j.ess_tail) == (good.rhat, good.ess_bulk, good.ess_tail)
    if good.sound:
        assert j.worst["quantity"] == "parameter" and j.worst["key_result"] == "drift_sd"


def test_a_schedule_run_out_says_so_not_the_time_cap(seed_result, monkeypatch):
    """Every attempt made and still unsound: the warning says what else to do (not "raise the
    time cap", which would change nothing)."""
    calls = []

    def fit(scenario, history, **kw):
        calls.append(scenario.model.draws)
        f = _cut(seed_result.fit, 300)
        diag = {**f.diagnostics, "rhat_max": 1.05}
        return dataclasses.replace(f, key=f.key + "-stuck", diagnostics=diag)

    monkeypatch.setattr(soundness.model, "fit", fit)
    out = soundness.fit(_scenario(seed_result, draws=100), seed_result.history)
    rec = out.diagnostics["decision"]
    assert calls == [100, 200, 400, 400]
    assert rec["exhausted"] and not rec["capped"] and not rec["sound"]
    (w,) = diagnostic_warnings(out.diagnostics, out.n_draws)
    assert "four times the draws" in w and "sound_seconds" not in w
