"""`krsim backtest`: window planning, percentiles, verdicts, the result, and the command."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from simulator.analyses.backtest import KRCheck, percentile, plan_windows, tally
from simulator.io.scenario import InputError

SCENARIO = """
title: Backtest funnel
horizon: 4
seed: 3
funnel:
  visits: {{}}
  signup: {{from: visits}}
  paid: {{from: signup}}
history: history.csv
options:
  keep: {{}}
  push:
    changes:
      - lift: {{stage: paid, factor: {{uniform: [1.0, 1.2]}}}}
key_results:
  - {{id: signups, metric: signup, target: +10%}}
  - {{id: paid_share, metric: paid / signup, target: ">= 0.3"}}
model: {{chains: 2, draws: 100, tune: 200, until_sound: false}}
"""


def write_funnel(d: Path, periods: int, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    visits = rng.poisson(rng.gamma(50.0, 3000 / 50.0, periods))
    signup = rng.binomial(visits, 1 / (1 + np.exp(-(-2.0 + 0.1 * rng.standard_normal(periods)))))
    paid = rng.binomial(signup, 1 / (1 + np.exp(-(-0.8 + 0.1 * rng.standard_normal(periods)))))
    rows = ["period,visits,signup,paid"]
    rows += [f"w{t:02d},{visits[t]},{signup[t]},{paid[t]}" for t in range(periods)]
    (d / "history.csv").write_text("\n".join(rows) + "\n")
    p = d / "funnel.yaml"
    p.write_text(SCENARIO.format())
    return p


def krsim(capsys, *args: str) -> tuple[int, str, str]:
    """`krsim ARGS` in this process: its exit code, stdout and stderr."""
    from simulator.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------------ pure functions


def test_windows_end_at_the_last_period_and_do_not_overlap():
    assert plan_windows(52, 13) == [(13, 26), (26, 39), (39, 52)]
    assert plan_windows(52, 13, 2) == [(26, 39), (39, 52)]
    # at most six by default, each with at least a quarter (and 8 periods) before it
    assert len(plan_windows(200, 13)) == 6
    assert plan_windows(12, 4) == [(8, 12)]


def test_short_history_and_too_many_windows_are_refused():
    with pytest.raises(InputError, match="too short to backtest.*at least 26 periods"):
        plan_windows(25, 13)
    with pytest.raises(InputError, match="at least 12 periods"):
        plan_windows(11, 4)
    with pytest.raises(InputError, match="--windows: 4 windows.*at most 3"):
        plan_windows(52, 13, 4)


def test_percentile_counts_ties_half():
    draws = np.array([1, 2, 2, 3])
    assert percentile(draws, 2) == pytest.approx(0.5)
    assert percentile(draws, 0) == 0.0
    assert percentile(draws, 10) == 1.0


def _checks(inside: list[bool]) -> list[KRCheck]:
    return [
        KRCheck(
            actual=1.0,
            median=1.0,
            interval80=(0.0, 2.0),
            percentile=0.5,
            inside80=i,
            p_outside=0.2,
        )
        for i in inside
    ]


def test_verdicts_follow_the_binomial_tails():
    q = [np.array([0.8, 0.2])]
    # 3 of 3 outside: P = 0.2^3 = 0.008 if the model were right
    t = tally(_checks([False] * 3), q * 3, "week", one_kr=True)
    assert t.calibration == "overconfident"
    assert t.p_too_many == pytest.approx(0.008)
    assert t.verdict.startswith("the model was overconfident: 3 of 3 actual quarters fell outside")
    # 1 of 3: about what chance gives
    t = tally(_checks([False, True, True]), q * 3, "week", one_kr=True)
    assert t.calibration == "consistent"
    assert "only large errors would show" in t.verdict
    # 0 of 20: P = 0.8^20 = 0.0115: intervals wider than needed
    t = tally(_checks([True] * 20), q * 20, "week", one_kr=True)
    assert t.calibration == "cautious"
    assert t.p_too_few == pytest.approx(0.8**20)
    assert t.expected_outside80 == pytest.approx(4.0)


def test_an_overconfident_backtest_says_what_to_change():
    from simulator.analyses.backtest import advice
    from simulator.io.scenario import ModelBlock

    q = [np.array([0.8, 0.2])]
    over = tally(_checks([False] * 3), q * 3, "week", one_kr=True)
    fine = tally(_checks([False, True, True]), q * 3, "week", one_kr=True)

    def with_model(**kw):
        return SimpleNamespace(model=ModelBlock(**kw))

    assert "period_effects: ar1" in advice(with_model(), over)
    assert "rate_trend: true" in advice(with_model(period_effects="ar1"), over)
    assert advice(with_model(period_effects="ar1", trend=True, rate_trend=True), over) is None
    assert advice(with_model(), fine) is None


def test_pooled_verdict_uses_the_joint_forecast_of_the_key_results():
    # two key results that always miss together: 2 misses in one window is one event of prob 0.2
    joint = [np.array([0.8, 0.0, 0.2])]
    t = tally(_checks([False, False, True, True]), joint * 2, "week", one_kr=False)
    assert t.p_too_many == pytest.approx(1 - 0.8**2)
    assert t.calibration == "consistent"


# ------------------------------------------------------------------------------- the command


def test_backtest_json_and_text(tmp_path, capsys):
    scenario = write_funnel(tmp_path, periods=16)
    code, out, err = krsim(capsys, "backtest", str(scenario), "--json", "--windows", "1")
    assert code == 0, err
    out = json.loads(out)
    assert set(out) >= {
        "scenario",
        "option",
        "horizon",
        "windows",
        "key_results",
        "overall",
        "verdict",
        "warnings",
    }
    assert out["option"] == "keep"
    (w,) = out["windows"]
    assert (w["start"], w["end"], w["train_periods"]) == ("w12", "w15", 12)
    for kr in ("signups", "paid_share"):
        c = w["key_results"][kr]
        assert set(c) == {"actual", "median", "interval80", "percentile", "inside80", "crps"}
        assert 0 <= c["percentile"] <= 1
        assert c["interval80"][0] <= c["median"] <= c["interval80"][1]
        assert out["key_results"][kr]["checks"] == 1
    assert out["overall"]["checks"] == 2
    assert out["overall"]["calibration"] in {"overconfident", "cautious", "consistent"}

    # the same fit again, from the cache: the terminal table and a verdict in words
    code, text, err = krsim(capsys, "backtest", str(scenario), "--windows", "1")
    assert code == 0, err
    assert "w12..w15" in text
    assert "Verdict:" in text and "80% interval" in text and "Mean CRPS" in text

    # the result in Python: its JSON object is the command's, its table a row per window and
    # key result
    from simulator import backtest, load_scenario

    result = backtest(load_scenario(scenario), windows=1)
    assert result.scenario.id == out["scenario"] and result.title == "Backtest funnel"
    assert result.to_dict() == out
    frame = result.to_frame()
    assert len(frame) == 2 and set(frame.index.get_level_values("key_result")) == {
        "signups",
        "paid_share",
    }
    assert frame.loc[("w12", "signups"), "actual"] == w["key_results"]["signups"]["actual"]

    # candidate model settings ranked on the same window; the scenario's own fit is cached
    code, out, err = krsim(
        capsys, "backtest", str(scenario), "--windows", "1", "--models", "scenario,steady", "--json"
    )
    assert code == 0, err
    assert "Backtesting the model 'steady'..." in err  # progress on stderr, through the logger
    out = json.loads(out)
    assert {m["name"] for m in out["models"]} == {"scenario", "steady"}
    scores = [m["crps_relative"] for m in out["models"]]
    assert scores == sorted(scores) and out["best"] == out["models"][0]["name"]
    steady = next(m for m in out["models"] if m["name"] == "steady")
    assert steady["settings"] == {"seasonality": "none", "drift": "none"}
    code, _out, err = krsim(capsys, "backtest", str(scenario), "--models", "nope")
    assert code == 2 and err.startswith("error: --models: unknown candidate 'nope'")


def test_draws_and_seed_override_the_scenario(tmp_path, monkeypatch):
    """``seed=`` and ``draws=`` fit the scenario with those settings (the fit replaced by a point
    mass: no sampling)."""
    from known_fits import known_fit

    from simulator import backtest, load_scenario, model

    scenario = load_scenario(write_funnel(tmp_path, periods=16))
    asked = []

    def fit(s, history, **kw):
        asked.append((s.seed, s.model.draws, len(history)))
        return known_fit(s, {"signup": 0.12, "paid": 0.3}, 3000.0, shape=(2, 50))

    monkeypatch.setattr(model, "fit", fit)
    result = backtest(scenario, windows=2, seed=11, draws=50)
    assert asked == [(11, 50, 8), (11, 50, 12)]
    assert result.seed == 11 and result.draws == 100
    assert result.to_dict()["seed"] == 11 and len(result.windows) == 2


def test_backtest_refuses_short_history_and_bad_windows(tmp_path, capsys):
    scenario = write_funnel(tmp_path, periods=10)
    code, _out, err = krsim(capsys, "backtest", str(scenario))
    assert code == 2
    assert "too short to backtest" in err and "at least 12 periods" in err
    assert "Traceback" not in err
    scenario = write_funnel(tmp_path, periods=16)
    for bad in ("0", "3"):
        code, _out, err = krsim(capsys, "backtest", str(scenario), "--windows", bad)
        assert code == 2, err
        assert err.startswith("error: --windows:")


def _at(percentiles: list[float], inside: list[bool] | None = None) -> list[KRCheck]:
    inside = inside if inside is not None else [0.1 <= p <= 0.9 for p in percentiles]
    return [
        KRCheck(
            actual=1.0,
            median=1.0,
            interval80=(0.0, 2.0),
            percentile=p,
            inside80=i,
            p_outside=0.2,
        )
        for p, i in zip(percentiles, inside, strict=True)
    ]


def test_values_far_in_the_tails_make_the_verdict_overconfident():
    q = [np.array([0.8, 0.2])]
    # two of three beyond the 98th percentile: the miss count alone (2 of 3, P = 0.104) would
    # pass, but each such value has chance 0.04 under the model: P(>= 2 of 3) = 0.0048
    t = tally(_at([0.985, 0.99, 0.5]), q * 3, "week", one_kr=True)
    assert t.p_too_many == pytest.approx(1 - 0.8**3 - 3 * 0.2 * 0.8**2)
    assert t.extreme == 2
    assert t.p_extreme == pytest.approx(3 * 0.04**2 * 0.96 + 0.04**3)
    assert t.calibration == "overconfident"
    assert "beyond the forecast's 2%-98% percentiles" in t.verdict
    # the same misses just inside the tails are consistent
    t = tally(_at([0.95, 0.93, 0.5]), q * 3, "week", one_kr=True)
    assert t.extreme == 0 and t.calibration == "consistent"
    # one extreme value in three windows is what chance gives now and then (P = 0.115)
    t = tally(_at([0.99, 0.5, 0.5]), q * 3, "week", one_kr=True)
    assert t.calibration == "consistent"


def test_pooled_tail_count_counts_windows_not_key_results():
    # two key results per window that move together: one window with both in the tail is one
    # extreme window, judged against the Bonferroni bound 2 * 0.04 per window
    joint = [np.array([0.8, 0.0, 0.2])]
    t = tally(_at([0.99, 0.995, 0.5, 0.5]), joint * 2, "week", one_kr=False)
    assert t.extreme == 1
    assert t.p_extreme == pytest.approx(1 - (1 - 0.08) ** 2)
    assert t.calibration == "consistent"


def test_crps_matches_the_closed_form_for_a_normal_forecast():
    from scipy import stats

    from simulator.analyses.backtest import crps

    x = stats.norm.ppf((np.arange(20_000) + 0.5) / 20_000)  # a normal forecast, quasi-random
    y = 0.7
    exact = y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / np.sqrt(np.pi)
    assert crps(x, y) == pytest.approx(exact, abs=1e-3)
