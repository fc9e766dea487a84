"""Scenario validation: every broken fixture gives its one-line message with file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import InputError, load_scenario
from simulator.io.data import read_history
from simulator.io.scenario import parse_target

FIXTURES = Path(__file__).resolve().parent / "fixtures"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return first.removeprefix("# expect: ")


def test_base_fixture_is_valid():
    s = load_scenario(FIXTURES / "base.yaml")
    assert s.root == "visits"
    assert [kr.id for kr in s.key_results] == ["signups", "bookings", "conv"]
    assert s.decision.rule == "all_met" and s.decision.grading == "committed"
    assert s.seed == 2024 and s.model.draws == 1000 and s.model.period_effects == "iid"
    gate = s.options["gate"].changes[0].gate
    assert gate.overlap.kind == "fixed" and gate.overlap.value == 0  # the documented default


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_message(path: Path):
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    problems = exc.value.problems
    want = expected(path)
    assert any(want in p for p in problems), f"expected {want!r} in:\n" + "\n".join(problems)
    for p in problems:
        assert "\n" not in p
        assert "Traceback" not in p
        # every line names the file it is about (the scenario or its CSV)
        assert p.startswith(str(path)) or p.startswith(str(path.with_suffix(".csv"))), p


def test_several_problems_reported_together(tmp_path):
    text = (FIXTURES / "base.yaml").read_text()
    text = text.replace("before: booking", "before: bookng").replace("target: +10%", "target: lots")
    text = text.replace("history: history.csv", f"history: {FIXTURES / 'history.csv'}")
    f = tmp_path / "two.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    joined = "\n".join(exc.value.problems)
    assert "target" in joined  # field errors come first; reference errors need a valid file


@pytest.mark.parametrize(
    ("text", "op", "value", "relative"),
    [
        ("+20%", ">=", 20.0, True),
        ("-5%", ">=", -5.0, True),
        ("<= -10%", "<=", -10.0, True),
        (">= 0.55", ">=", 0.55, False),
        (">= 1500", ">=", 1500.0, False),
        ("<= 3", "<=", 3.0, False),
        (0.55, ">=", 0.55, False),
    ],
)
def test_parse_target(text, op, value, relative):
    t = parse_target(text)
    assert (t.op, t.value, t.relative) == (op, value, relative)


def test_seed_scenario_is_valid():
    s = load_scenario(
        Path(__file__).resolve().parent.parent / "scenarios" / "mandatory_account.yaml"
    )
    assert set(s.options) == {"status_quo", "mandatory_account", "account_after_booking"}
    assert {kr.id for kr in s.key_results} >= {"accounts", "bookings"}
    assert len(read_history(s)) >= 26


def test_cross_references_reported_in_the_scenarios_order(tmp_path):
    """One line per broken reference, part by part: segments, options, key results, decision,
    baseline, events, experiment."""
    text = (FIXTURES / "base.yaml").read_text()
    text = text.replace("history: history.csv", f"history: {FIXTURES / 'history.csv'}")
    text = text.replace("member: {of: form,", "member: {of: frm,")
    text = text.replace("- lift: {stage: form,", "- lift: {stage: fomr,")
    text = text.replace("metric: booking / form", "metric: booking / forms")
    text += (
        "decision: {rule: weighted, weights: {signups: 1, bookings: 1, conv: 1, convs: 1}}\n"
        "baseline: {signup: 3}\n"
        "events:\n  - {label: launch, first: '2025-01-02', last: '2025-01-03', stages: [visit]}\n"
        "experiment: {data: e.csv, control: status_qo}\n"
    )
    f = tmp_path / "refs.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    assert [p.removeprefix(f"{f}: ") for p in exc.value.problems] == [
        "segments.member.of: unknown stage 'frm' (did you mean 'form'?)",
        "options.gate.changes[0].gate.exempt: segment 'member' is observed at 'frm', which is not "
        "the gate's parent stage 'form' or above it",
        "options.nudge.changes[0].flow.among: segment 'member' is observed at 'frm', which is not "
        "the flow's 'from' stage 'booking' or above it",
        "options.nudge.changes[1].lift.stage: unknown stage 'fomr' (did you mean 'form'?)",
        "key_results[2].metric: unknown stage 'forms' (did you mean 'form'?)",
        "decision.weights.convs: unknown key result 'convs' (did you mean 'conv'?)",
        "baseline.signup: unknown key result 'signup' (did you mean 'signups'?)",
        "events[0].stages[0]: unknown stage or segment 'visit' (did you mean 'visits'?)",
        "experiment.control: unknown option 'status_qo' (did you mean 'status_quo'?)",
    ]


def test_a_broken_funnel_stops_the_checks_that_need_its_order(tmp_path):
    """A cycle is reported once, and the checks that walk up the funnel (a gate adding users
    above their stage) wait for a sound funnel."""
    text = (FIXTURES / "base.yaml").read_text()
    text = text.replace("history: history.csv", f"history: {FIXTURES / 'history.csv'}")
    text = text.replace("visits: {label: Visits}", "visits: {from: signup, label: Visits}")
    text += "  - {id: rate, metric: booking / form, target: '>= 40'}\n"
    f = tmp_path / "cycle.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as exc:
        load_scenario(f)
    problems = [p.removeprefix(f"{f}: ") for p in exc.value.problems]
    assert problems[0].startswith("funnel: exactly one stage must have no 'from'")
    assert not any("cycle" in p or "conversion rate target" in p for p in problems), problems
