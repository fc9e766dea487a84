"""The decision rules on small cases with known answers (docs/design.md §5): grades below the
baseline, guardrails, key results out of reach, a primary key result with a near-tie, and the
sentences that say which rule decided.

Each case builds per-draw quarter totals by hand (no model fit), so every probability is a share
of known draws and the right pick is known.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from simulator.engine import decision
from simulator.engine.render import answer_sentence, rule_sentence
from simulator.engine.summary import RunSummary
from simulator.io.data import CountTable
from simulator.io.scenario import InputError, parse_scenario

N = 2000  # draws, one chain

BOOKING = """
title: booking
horizon: 1
history: unused.csv
funnel:
  visits: {label: Visits}
  form: {from: visits, label: Booking form completed}
  booking: {from: form, label: Appointments booked}
  signup: {from: visits, label: Accounts created}
options:
  open: {label: Keep booking open}
  gate: {label: Account required, changes: [{lift: {stage: signup, factor: 1.3}}]}
  nudge: {label: Offer an account after booking, changes: [{lift: {stage: signup, factor: 1.1}}]}
key_results:
  - {id: accounts, metric: signup, target: +20%%}
  - {id: bookings, metric: booking, target: +5%%%s}
  - {id: conversion, metric: booking / form, target: ">= 0.70"%s}
baseline: {accounts: 1000, bookings: 1000, conversion: 0.5}
"""


def scenario(bookings_extra: str = "", conversion_extra: str = "", tail: str = ""):
    return parse_scenario((BOOKING % (bookings_extra, conversion_extra) + tail).encode(), "t.yaml")


HISTORY = CountTable(
    Path("h.csv"),
    "period",
    ("1",),
    {s: np.ones(1) for s in ("visits", "form", "booking", "signup")},
)


def counts(signup, booking, form=2000.0):
    """One period's counts per draw (the quarter is one period here)."""
    f = np.broadcast_to(np.asarray(form, dtype=float), (N,))
    return {
        "visits": np.full((N, 1), 10_000.0),
        "form": f[:, None].copy(),
        "booking": np.asarray(booking, dtype=float)[:, None],
        "signup": np.asarray(signup, dtype=float)[:, None],
    }


def evaluation(s, per_option: dict[str, dict]):
    tg = decision.targets(s, HISTORY)
    ev = decision.Evaluation({o: decision.evaluate_option(s, c, tg) for o, c in per_option.items()})
    return decision.revalue(s, ev, decision.choose_rule(s, ev)), tg


def summary_of(s, ev, tg):
    """What the answer reads of a summary: the options and the recommendation."""
    return SimpleNamespace(
        options=decision.summarize_options(s, ev, tg, 1),
        recommendation=decision.recommend(s, ev, 1),
    )


def share(rng, p, hi, lo):
    """Per draw: ``hi`` with probability p, else ``lo`` (a met-or-missed KR with P(met) ~ p)."""
    return np.where(rng.random(N) < p, hi, lo)


# ------------------------------------------------------------------------ grades below baseline


def test_going_backwards_costs_in_the_expected_grade(rng):
    """Two options reach accounts equally; one halves bookings. With grades clipped at 0 they
    tied; now the one that goes backwards (-1 on bookings) loses under expected grade."""
    s = scenario(tail="decision: {rule: expected_grade}\n")
    ev, tg = evaluation(
        s,
        {
            "open": counts(share(rng, 0.5, 1200, 1100), np.full(N, 1000.0)),
            "gate": counts(share(rng, 0.5, 1200, 1100), np.full(N, 500.0)),
            "nudge": counts(np.full(N, 1000.0), np.full(N, 1000.0)),
        },
    )
    g_book = ev.options["gate"].grades["bookings"]
    assert np.all(g_book == -1.0)  # 500 is 10 times the 50 needed, clipped at -1
    assert ev.options["open"].grades["bookings"].mean() == 0.0  # standing still: 0
    rec = decision.recommend(s, ev, 1)
    assert rec.option == "open"
    # expected grades by hand: (accounts + bookings + conversion) / 3; conversion 0.5 -> 0.70
    # from 0.5: open 1000/2000 = 0.5 -> 0; gate 500/2000 = 0.25 -> (0.25-0.5)/0.2 = -1.25 -> -1
    acc = ev.options["gate"].grades["accounts"].mean()
    assert rec.value["gate"] == pytest.approx((acc - 1 - 1) / 3)


# ------------------------------------------------------------------------------- guardrails


def test_guardrail_broken_option_is_not_recommended(rng):
    """The gate meets accounts and bookings most often (all_met would pick it) but breaks the
    bookings guardrail (-2%: below 980) with P 0.6; the pick goes to an option that keeps it."""
    s = scenario(", guardrail: '-2%'", tail="")
    ev, tg = evaluation(
        s,
        {
            "open": counts(share(rng, 0.3, 1300, 1000), share(rng, 0.5, 1060, 1000), 1500),
            "gate": counts(np.full(N, 1300.0), share(rng, 0.4, 1060, 900), 1500),
            "nudge": counts(share(rng, 0.2, 1300, 1000), share(rng, 0.5, 1060, 1000), 1500),
        },
    )
    assert tg["bookings"].guard == pytest.approx(980.0)
    rec = decision.recommend(s, ev, 1)
    p_broken = rec.guardrails.p_broken
    assert p_broken["gate"]["bookings"] == pytest.approx(
        (ev.options["gate"].values["bookings"] < 980).mean()
    )
    assert 0.5 < p_broken["gate"]["bookings"] < 0.7
    assert p_broken["open"]["bookings"] == 0.0
    assert rec.guardrails.breaks == {"gate": ("bookings",)}
    # the gate has the highest rule value, yet it is not the pick
    assert rec.value["gate"] > max(rec.value["open"], rec.value["nudge"])
    assert rec.option == "open"
    text = answer_sentence(s, summary_of(s, ev, tg))
    assert text.startswith("Among the options that keep every guardrail, “Keep booking open” gives")
    assert (
        "“Account required” (P(all met) 0.41) breaks the guardrail ‘Appointments booked’ (P = 0.59"
        in text
    )
    assert "not recommended" in text


def test_every_option_breaking_a_guardrail_is_said(rng):
    s = scenario(", guardrail: true")
    low = counts(np.full(N, 1300.0), share(rng, 0.5, 1060, 900), 1500)
    ev, tg = evaluation(s, {"open": low, "gate": low, "nudge": low})
    text = answer_sentence(s, summary_of(s, ev, tg))
    assert "Every option risks breaking a guardrail" in text


def test_guardrail_syntax_errors_name_the_field():
    with pytest.raises(InputError) as e:
        scenario(", guardrail: 'a lot'")
    assert any("key_results[1].guardrail" in p for p in e.value.problems)


# --------------------------------------------------------------------------- out of reach


def booking_case(rng):
    """The booking case: conversion 0.70 is out of reach for every option; the gate gains
    accounts but loses a fifth of the bookings; keeping booking open meets bookings half the
    time and accounts a third of the time."""
    s = scenario()
    ev, tg = evaluation(
        s,
        {
            "open": counts(share(rng, 0.35, 1250, 1000), share(rng, 0.5, 1060, 1000)),
            "gate": counts(np.full(N, 1400.0), np.full(N, 790.0)),
            "nudge": counts(share(rng, 0.2, 1250, 1000), share(rng, 0.5, 1060, 1000)),
        },
    )
    return s, ev, tg


def test_out_of_reach_kr_is_named_and_all_met_decides_on_the_rest(rng):
    s, ev, tg = booking_case(rng)
    rec = decision.recommend(s, ev, 1)
    assert rec.out_of_reach == ("conversion",)
    assert rec.rule_used == "all_met" and rec.key_results_used == ("accounts", "bookings")
    # P(accounts and bookings met) under "open": the two draws are independent here
    both = ev.options["open"].met["accounts"] & ev.options["open"].met["bookings"]
    assert rec.value["open"] == pytest.approx(both.mean())
    assert rec.option == "open"  # the option that does not lose bookings
    assert ev.options["gate"].values["bookings"].mean() < tg["bookings"].baseline
    # non-degenerate: P(best) and expected loss are of the rule used, not of the zero P(all met)
    assert 0 < rec.p_best["open"] < 1 and rec.expected_loss["gate"] > 0.1
    text = answer_sentence(s, summary_of(s, ev, tg))
    assert text.startswith(
        "No option can reach ‘Appointments booked / Booking form completed >= 0.7’ (P < 0.01 "
        "under each option). Among the other key results, “Keep booking open” gives the best "
        "chance of meeting every key result within reach (P = "
    ), text
    assert "within reach" in rule_sentence(rec)


def test_nothing_within_reach_falls_back_to_expected_grade_and_says_so(rng):
    s = scenario()
    ev, tg = evaluation(
        s,
        {
            "open": counts(np.full(N, 1100.0), np.full(N, 1020.0)),
            "gate": counts(np.full(N, 1150.0), np.full(N, 800.0)),
            "nudge": counts(np.full(N, 1050.0), np.full(N, 1010.0)),
        },
    )
    rec = decision.recommend(s, ev, 1)
    assert rec.rule == "all_met" and rec.rule_used == "expected_grade"
    assert rec.out_of_reach == ("accounts", "bookings", "conversion")
    grades = {o: ev.options[o].grade.mean() for o in ev.options}
    assert rec.value == pytest.approx(grades)
    # by hand, (accounts + bookings + conversion) / 3 with the form at 2,000:
    # open (0.5 + 0.4 + (0.51 - 0.5) / 0.2) / 3; gate (0.75 - 1 + (0.4 - 0.5) / 0.2) / 3
    assert grades["open"] == pytest.approx((0.5 + 0.4 + 0.05) / 3)
    assert grades["gate"] == pytest.approx((0.75 - 1 - 0.5) / 3)
    assert rec.option == "open"
    text = answer_sentence(s, summary_of(s, ev, tg))
    assert "ranked by expected OKR grade: “Keep booking open” gets 0.32" in text
    assert "the scenario asks for the chance of meeting every key result" in rule_sentence(rec)


def test_sensitivity_uses_the_rule_used(rng):
    """The rule stored with the evaluation is what `evaluate_option` values under."""
    s, ev, tg = booking_case(rng)
    c = counts(np.full(N, 1250.0), np.full(N, 1060.0))
    oe = decision.evaluate_option(s, c, tg, ev.rule)
    assert oe.value.mean() == 1.0  # accounts and bookings met; conversion not read
    assert decision.evaluate_option(s, c, tg).value.mean() == 0.0  # all three: never


# -------------------------------------------------------------------------------- priority


def test_primary_kr_takes_a_near_tie_and_trade_offs_are_listed(rng):
    """'open' and 'nudge' are a near-tie on P(all met) (0.400 against 0.395, within 0.01);
    'nudge' is better on the primary key result (accounts), so it is the pick. 'gate' is far
    better on accounts but worse overall: it is listed as a trade-off."""
    s = parse_scenario(
        (BOOKING.replace("target: +20%%}", "target: +20%%, priority: primary}") % ("", ""))
        .replace('">= 0.70"', '">= 0.40"')
        .encode(),
        "t.yaml",
    )
    i = np.arange(N) / N  # met patterns by draw index, so every share is exact
    ev, tg = evaluation(
        s,
        {
            # open: accounts met 40%, bookings 75%, together 0.400
            "open": counts(np.where(i < 0.4, 1250, 1000), np.where(i < 0.75, 1060, 1000)),
            # nudge: accounts met 59.5%, bookings 75%, together 0.395: a near-tie
            "nudge": counts(
                np.where((i < 0.395) | (i >= 0.8), 1250, 1000), np.where(i < 0.75, 1060, 1000)
            ),
            # gate: accounts always met, bookings 10%
            "gate": counts(np.full(N, 1400.0), np.where(i < 0.1, 1060, 1000)),
        },
    )
    rec = decision.recommend(s, ev, 1)
    assert rec.primary == "accounts"
    assert rec.value["open"] == 0.4 and rec.value["nudge"] == 0.395
    assert rec.option == "nudge"
    # without a primary key result the higher P(all met) wins, however near
    plain = s.model_copy(
        update={"key_results": [k.model_copy(update={"priority": None}) for k in s.key_results]}
    )
    assert decision.recommend(plain, ev, 1).option == "open"
    offs = {(t.option, t.measure): t for t in rec.trade_offs}
    t = offs[("gate", "p_met")]
    assert t.kr == "accounts" and t.other == 1.0
    assert t.pick == pytest.approx(ev.options["nudge"].met["accounts"].mean())
    text = answer_sentence(s, summary_of(s, ev, tg))
    assert (
        "“Account required” is more likely to meet the primary key result ‘Accounts created’"
        in text
    )


def test_only_one_primary():
    with pytest.raises(InputError) as e:
        parse_scenario(
            (
                BOOKING.replace("+20%%}", "+20%%, priority: primary}") % (", priority: primary", "")
            ).encode(),
            "t.yaml",
        )
    assert any(
        "key_results[1].priority: only one key result can be primary" in p for p in e.value.problems
    )


# ---------------------------------------------------------------- the committed booking example


def test_committed_booking_example_answer():
    """The Q1 booking example (scenarios/booking_q1.yaml, its page built by `make reports` from
    its own seasonal history): conversion 0.70 is out of reach, the pick does not lose bookings,
    the option that does is named as breaking the guardrail, and P(best) and expected loss are
    those of the rule used (not a third each and 0.000)."""
    root = Path(__file__).resolve().parent.parent
    d = json.loads((root / "reports" / "booking_q1" / "summary.json").read_text())
    summary = RunSummary.from_dict(d)
    rec, opts = summary.recommendation, summary.options
    assert rec.out_of_reach == ("booking_conversion",)
    assert rec.rule_used == "all_met"
    assert rec.key_results_used == ("accounts", "bookings")
    pick = rec.option
    b = opts[pick].key_results["bookings"]
    assert b.median >= b.baseline  # the pick does not lose bookings
    assert rec.guardrails.breaks == {"mandatory_account": ("bookings",)}
    assert max(rec.p_best.values()) < 1 and min(rec.p_best.values()) > 0
    assert len({round(v, 2) for v in rec.p_best.values()}) > 1
    others = [v for o, v in rec.expected_loss.items() if o != pick]
    assert rec.expected_loss[pick] < min(others)
    assert summary.baselines["bookings"].kind == "same_period_last_year"
    assert summary.baselines["bookings"].first == "2025-01-06"
