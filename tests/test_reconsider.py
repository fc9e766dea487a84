"""`krsim track`'s "what now?": staying with the launched option against switching now, from
per-draw evaluations written by hand — the table's numbers, the paired Monte Carlo errors, the
pick (P(all met), near-ties to the higher expected grade, the expected grade when every P(all met)
is below 0.01) and the sentence that says it.

The scenario is the fixture funnel (options ‘Keep’, ‘Gate’ and ‘nudge’; key results signups,
bookings and conv; daily periods).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from simulator.analyses.track import SWITCH_FLOOR, pick_now, what_now
from simulator.engine.decision import OptionEval, mc_se
from simulator.io.scenario import read_scenario

FIXTURES = Path(__file__).resolve().parent / "fixtures"
D, CHAINS = 400, 2
KRS = ("signups", "bookings", "conv")


@pytest.fixture(scope="module")
def scenario():
    return read_scenario(FIXTURES / "base.yaml")


def ev(all_met: np.ndarray, grade: np.ndarray, met: dict[str, np.ndarray] | None = None):
    """An option's per-draw evaluation: every key result met where all are (unless ``met`` says
    otherwise for some), the OKR grade as given."""
    all_met = np.asarray(all_met, dtype=float)
    mets = {kr: all_met.astype(bool) for kr in KRS}
    mets.update(met or {})
    grade = np.asarray(grade, dtype=float)
    kw = {
        "values": {kr: grade for kr in KRS},
        "met": mets,
        "grades": {kr: grade for kr in KRS},
        "value": all_met,
        "grade": grade,
        "all_met": all_met,
    }
    # what the arithmetic here does not read (guardrails broken per draw): empty
    kw.update({f.name: {} for f in dataclasses.fields(OptionEval) if f.name not in kw})
    return OptionEval(**kw)


def first(n: int) -> np.ndarray:
    """Met in the first ``n`` of the draws, in a shuffled but fixed order."""
    x = np.zeros(D)
    x[np.random.default_rng(n).permutation(D)[:n]] = 1.0
    return x


def pm(se: float) -> str:
    return f"±{se:.2f}" if se >= 0.005 else "±<.01"


def test_switch_that_raises_p_all_met(scenario):
    """Gate launched (P(all met) 0.10), Keep 0.50, nudge 0.25: the table holds each option's
    means, errors and paired gains over the launched option, and the pick is Keep."""
    rng = np.random.default_rng(1)
    gate, keep, nudge = first(40), first(200), first(100)
    grades = {o: rng.uniform(0, 1, D) for o in ("gate", "keep", "nudge")}
    signups_keep = first(300)  # one key result met more often than all of them
    evals = {
        "gate": ev(gate, grades["gate"]),
        "status_quo": ev(keep, grades["keep"], {"signups": signups_keep.astype(bool)}),
        "nudge": ev(nudge, grades["nudge"]),
    }
    wn = what_now(scenario, evals, "gate", CHAINS, 2)
    assert list(wn.options) == ["gate", "status_quo", "nudge"]  # the launched option first
    k = wn.options["status_quo"]
    assert not k.launched and wn.options["gate"].launched
    assert k.p_all_met == 0.5 and k.p_all_met_se == mc_se(keep, CHAINS)
    assert k.expected_grade == pytest.approx(grades["keep"].mean())
    assert k.expected_grade_se == mc_se(grades["keep"], CHAINS)
    assert k.p_met == {"signups": 0.75, "bookings": 0.5, "conv": 0.5}
    assert k.p_met_se["signups"] == mc_se(signups_keep, CHAINS)
    assert k.p_all_met_gain == pytest.approx(0.4)
    assert k.p_all_met_gain_se == mc_se(keep - gate, CHAINS)
    g = grades["keep"] - grades["gate"]
    assert k.expected_grade_gain == pytest.approx(g.mean())
    assert k.expected_grade_gain_se == mc_se(g, CHAINS)
    assert wn.pick == "status_quo" and wn.best_other == "status_quo"
    assert wn.compared_on == "p_all_met"
    assert wn.sentence == (
        "Switching to ‘Keep’ for the last 2 days would raise P(all met) from 0.10 to 0.50 "
        f"(+0.40 {pm(k.p_all_met_gain_se)})."
    )
    d = wn.options["gate"].to_dict()
    assert d["launched"] is True and d["p_all_met"] == 0.1
    assert d["key_results"] == {"signups": 0.1, "bookings": 0.1, "conv": 0.1}
    assert set(d) >= {"p_all_met", "p_all_met_se", "expected_grade", "expected_grade_se"}


def test_no_switch_helps(scenario):
    """The launched option keeps the best P(all met): stay, and name the best alternative."""
    grade = np.full(D, 0.5)
    evals = {
        "gate": ev(first(160), grade),
        "status_quo": ev(first(124), grade),
        "nudge": ev(first(80), grade),
    }
    wn = what_now(scenario, evals, "gate", CHAINS, 3)
    assert wn.pick == "gate" and wn.best_other == "status_quo"
    k = wn.options["status_quo"]
    assert wn.sentence == (
        "No switch helps: staying with ‘Gate’ keeps the best P(all met), 0.40; the best "
        f"alternative, ‘Keep’, gives 0.31 (-0.09 {pm(k.p_all_met_gain_se)})."
    )


def test_paired_errors_find_a_small_gain(scenario):
    """Common random numbers: the alternative meets every key result in the draws the launched
    option does, and in 12 more (gain 0.03). The paired error (about sqrt(0.03 x 0.97 / 400) =
    0.009) makes that a win; the error of two independent estimates (about 0.035) would not."""
    rng = np.random.default_rng(3)
    gate = first(160)
    more = gate.copy()
    more[rng.choice(np.flatnonzero(gate == 0), 12, replace=False)] = 1.0  # spread over the draws
    grade = np.full(D, 0.5)
    evals = {"gate": ev(gate, grade), "status_quo": ev(more, grade)}
    wn = what_now(scenario, evals, "gate", CHAINS, 1)
    k = wn.options["status_quo"]
    assert k.p_all_met_gain == pytest.approx(0.03)
    assert k.p_all_met_gain_se < 0.015 < 0.03 < 2 * np.hypot(k.p_all_met_se, 0.0245)
    assert wn.pick == "status_quo"
    assert wn.sentence.startswith("Switching to ‘Keep’ for the last day would raise P(all met)")


def test_near_tie_goes_to_the_higher_grade(scenario):
    """P(all met) 0.40 against 0.41, within 2 paired Monte Carlo errors: the higher expected grade
    decides — the alternative's when it is higher, else staying."""
    rng = np.random.default_rng(5)
    gate = first(160)
    alt = gate.copy()
    alt[rng.choice(np.flatnonzero(gate == 0), 8, replace=False)] = 1.0  # +0.02
    alt[rng.choice(np.flatnonzero(gate == 1), 4, replace=False)] = 0.0  # -0.01: gain 0.01
    base = rng.uniform(0.3, 0.7, D)
    for alt_grade, want in ((base + 0.05, "status_quo"), (base - 0.05, "gate")):
        evals = {"gate": ev(gate, base), "status_quo": ev(alt, alt_grade)}
        wn = what_now(scenario, evals, "gate", CHAINS, 2)
        k = wn.options["status_quo"]
        assert 0 < k.p_all_met_gain <= 2 * k.p_all_met_gain_se
        assert wn.pick == want
        if want == "status_quo":
            assert wn.sentence == (
                "Switching to ‘Keep’ for the last 2 days would raise P(all met) from 0.40 to 0.41 "
                f"(+0.01 {pm(k.p_all_met_gain_se)}, within Monte Carlo error) and raise the "
                f"expected grade from {base.mean():.2f} to {alt_grade.mean():.2f} "
                f"(+0.05 {pm(k.expected_grade_gain_se)})."
            )
        else:
            assert wn.sentence == (
                "No switch helps: the best alternative, ‘Keep’, gives P(all met) 0.41 against "
                f"0.40 for staying with ‘Gate’, within Monte Carlo error (+0.01 "
                f"{pm(k.p_all_met_gain_se)}), and a lower expected grade "
                f"({alt_grade.mean():.2f} against {base.mean():.2f})."
            )
    # an exact tie stays
    assert (
        pick_now(
            {"gate": ev(gate, base), "status_quo": ev(gate, base)},
            ["status_quo", "gate"],
            "all_met",
            CHAINS,
            prefer="gate",
        )
        == "gate"
    )


def test_every_p_all_met_below_the_floor_compares_grades(scenario):
    """P(all met) 0.005, 0 and 0.0025 (each below 0.01): the options are compared on expected
    grade, and the sentence says so and shows the grades — a switch when another's is higher,
    staying when the launched option's is."""
    rng = np.random.default_rng(9)
    g = {o: rng.uniform(0, 1, D) * s for o, s in (("gate", 0.6), ("keep", 0.9), ("nudge", 0.4))}
    evals = {
        "gate": ev(first(2), g["gate"]),
        "status_quo": ev(first(0), g["keep"]),
        "nudge": ev(first(1), g["nudge"]),
    }
    assert max(e.all_met.mean() for e in evals.values()) < SWITCH_FLOOR
    wn = what_now(scenario, evals, "gate", CHAINS, 1)
    assert wn.compared_on == "expected_grade" and wn.pick == "status_quo"
    k = wn.options["status_quo"]
    assert k.expected_grade_gain > 2 * k.expected_grade_gain_se
    assert wn.sentence == (
        "P(all met) is below 0.01 whatever is done, so on expected grade: switching to ‘Keep’ "
        f"for the last day would raise it from {g['gate'].mean():.2f} to {g['keep'].mean():.2f} "
        f"({k.expected_grade_gain:+.2f} {pm(k.expected_grade_gain_se)})."
    )
    wn = what_now(scenario, evals, "status_quo", CHAINS, 4)
    assert wn.pick == "status_quo" and wn.best_other == "gate"
    y = wn.options["gate"]
    assert wn.sentence == (
        "P(all met) is below 0.01 whatever is done, so on expected grade: no switch helps: "
        f"staying with ‘Keep’ keeps the best expected grade, {g['keep'].mean():.2f}; the best "
        f"alternative, ‘Gate’, gives {g['gate'].mean():.2f} "
        f"({y.expected_grade_gain:+.2f} {pm(y.expected_grade_gain_se)})."
    )


def test_nothing_left_nothing_to_reconsider(scenario):
    e = ev(first(10), np.full(D, 0.5))
    assert what_now(scenario, {"gate": e, "status_quo": e}, "gate", CHAINS, 0) is None
