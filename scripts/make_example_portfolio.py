"""Generate the illustrative portfolio under scenarios/portfolio/: six teams' scenarios, their
histories, and the first weeks of the quarter for the two teams that already launched a change.

ILLUSTRATIVE NUMBERS: each history is simulated like scripts/make_example_data.py does
(negative-binomial weekly traffic with a slow trend, logit-normal week-to-week variation of each
rate); each team's options and beliefs are examples. Rerun: `python scripts/make_example_portfolio.py`.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "scenarios" / "portfolio"
FIRST_MONDAY = dt.date(2025, 9, 1)
WEEKS = 52

# team: (title, traffic per week, {stage: (parent, rate, label)}, options YAML, key results YAML,
#        launched option and its true effect on a stage's rate, or None)
TEAMS = {
    "acquisition": (
        "Acquisition: a shorter sign-up form?",
        40_000,
        {"signup": ("visits", 0.030, "Sign-ups"), "activated": ("signup", 0.45, "Activated")},
        """  short_form:
    label: Three-field sign-up form
    changes:
      - lift: {stage: signup, factor: {lognormal_interval: [1.02, 1.15]}}
      - lift: {stage: activated, factor: {lognormal_interval: [0.92, 1.00]}}""",
        """  - {id: signups, objective: Grow the user base, metric: signup, target: +8%}
  - {id: activated, objective: Grow the user base, metric: activated, target: +5%}""",
        ("short_form", "signup", 1.12),
    ),
    "checkout": (
        "Checkout: one-page checkout?",
        25_000,
        {"cart": ("visits", 0.08, "Added to cart"), "purchase": ("cart", 0.35, "Purchases")},
        """  one_page:
    label: One-page checkout
    changes:
      - lift: {stage: purchase, factor: {lognormal_interval: [1.01, 1.08]}}""",
        """  - {id: purchases, objective: Sell more, metric: purchase, target: +5%}
  - {id: conversion, objective: Sell more, metric: purchase / cart, target: ">= 0.37"}""",
        ("one_page", "purchase", 0.97),
    ),
    "search": (
        "Search: semantic ranking?",
        60_000,
        {"search": ("visits", 0.25, "Searches"), "click": ("search", 0.40, "Result clicks")},
        """  semantic:
    label: Semantic ranking
    changes:
      - lift: {stage: click, factor: {lognormal_interval: [1.00, 1.10]}}""",
        """  - {id: clicks, objective: Help users find things, metric: click, target: +6%}""",
        None,
    ),
    "onboarding": (
        "Onboarding: a guided tour?",
        8_000,
        {
            "tour": ("visits", 0.50, "Started onboarding"),
            "done": ("tour", 0.30, "Finished onboarding"),
        },
        """  guided:
    label: Guided tour
    changes:
      - lift: {stage: done, factor: {lognormal_interval: [1.05, 1.25]}}""",
        """  - {id: finished, objective: Make new users successful, metric: done, target: +15%}""",
        None,
    ),
    "retention": (
        "Retention: weekly digest e-mail?",
        15_000,
        {"open": ("visits", 0.20, "Digest opened"), "return": ("open", 0.50, "Came back")},
        """  digest:
    label: Weekly digest
    changes:
      - lift: {stage: return, factor: {lognormal_interval: [0.98, 1.10]}}""",
        """  - {id: returns, objective: Keep users coming back, metric: return, target: +4%}""",
        None,
    ),
    "support": (
        "Support: a help-centre chatbot?",
        5_000,
        {
            "help": ("visits", 0.30, "Help pages"),
            "solved": ("help", 0.60, "Solved without a ticket"),
        },
        """  chatbot:
    label: Help-centre chatbot
    changes:
      - lift: {stage: solved, factor: {lognormal_interval: [1.00, 1.15]}}""",
        """  - {id: solved, objective: Serve users faster, metric: solved, target: +10%}""",
        None,
    ),
}
WEEKS_DONE = 5  # weeks of the quarter observed by the teams that launched


def simulate(rng, traffic, stages, weeks, lift=None, start=0):
    t = np.arange(start, start + weeks) - (WEEKS - 1) / 2
    mu = traffic * np.exp(0.003 * t)
    counts = {"visits": rng.poisson(rng.gamma(150.0, mu / 150.0))}
    for node, (parent, rate, _) in stages.items():
        eta = np.log(rate / (1 - rate)) + 0.08 * rng.standard_normal(weeks)
        p = 1 / (1 + np.exp(-eta))
        if lift and lift[0] == node:
            p = np.minimum(p * lift[1], 1.0)
        counts[node] = rng.binomial(counts[parent], p)
    return counts


def write_table(path, counts, first, weeks, columns):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["period", *columns])
        for i in range(weeks):
            day = first + dt.timedelta(weeks=i)
            w.writerow([day.isoformat(), *(int(counts[c][i]) for c in columns)])


def main() -> None:
    (OUT / "data").mkdir(parents=True, exist_ok=True)
    for i, (team, (title, traffic, stages, options, krs, launched)) in enumerate(TEAMS.items()):
        rng = np.random.default_rng(20261200 + i)
        columns = ["visits", *stages]
        write_table(
            OUT / "data" / f"{team}.csv",
            simulate(rng, traffic, stages, WEEKS),
            FIRST_MONDAY,
            WEEKS,
            columns,
        )
        funnel = "\n".join(
            f"  {s}: {{from: {p}, label: {lab}}}" for s, (p, _, lab) in stages.items()
        )
        tracking = ""
        if launched:
            option, stage, factor = launched
            first = FIRST_MONDAY + dt.timedelta(weeks=WEEKS)
            act = simulate(rng, traffic, stages, WEEKS_DONE, (stage, factor), start=WEEKS)
            write_table(OUT / "data" / f"{team}_actuals.csv", act, first, WEEKS_DONE, columns)
            tracking = (
                f"\ntracking:                        # launched: krsim portfolio tracks it\n"
                f"  actuals: data/{team}_actuals.csv\n  option: {option}\n"
            )
        (OUT / f"{team}.yaml").write_text(
            f"""# ILLUSTRATIVE NUMBERS, from scripts/make_example_portfolio.py
version: 1
title: "{title}"
period: week
horizon: 13
seed: {2026 + i}
funnel:
  visits: {{label: Visits}}
{funnel}
history: data/{team}.csv
options:
  status_quo:
    label: Keep as is
{options}
key_results:
{krs}
{tracking}"""
        )
    print(f"wrote {len(TEAMS)} scenarios under {OUT} (illustrative numbers)")


if __name__ == "__main__":
    main()
