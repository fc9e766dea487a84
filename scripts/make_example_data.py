"""Generate the illustrative history of the seed scenario (scenarios/mandatory_account.yaml).

The numbers are invented: a plausible booking website, simulated from the same family of models krsim
fits (negative-binomial weekly traffic with a slow growth trend, logit-normal week-to-week variation of
each conversion rate). Rerun to regenerate: `python scripts/make_example_data.py`.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

OUT = (
    Path(__file__).resolve().parent.parent / "scenarios" / "data" / "mandatory_account_history.csv"
)
WEEKS = 52
FIRST_MONDAY = dt.date(2025, 9, 1)

# stage: (parent, average rate, week-to-week sd on the logit scale); illustrative values
RATES = {
    "accompany": ("visits", 0.30, 0.08),
    "form_start": ("accompany", 0.45, 0.10),
    "form_done": ("form_start", 0.70, 0.08),
    "booking": ("form_done", 0.80, 0.06),
    "signup": ("visits", 0.025, 0.10),
    "logged_in": ("form_done", 0.30, 0.10),  # segment: already had an account
}
TRAFFIC = {"level": 12_000.0, "growth_per_week": 0.004, "alpha": 150.0}


def simulate(
    rng: np.random.Generator,
    weeks: int = WEEKS,
    rates: dict = RATES,
    traffic: dict = TRAFFIC,
    season: np.ndarray | float = 0.0,
) -> dict[str, np.ndarray]:
    """Weekly counts: ``traffic`` with its growth (times exp(``season``), a log-scale term per
    week), then each stage of ``rates`` binomial from its parent."""
    t = np.arange(weeks) - (weeks - 1) / 2
    mu = traffic["level"] * np.exp(traffic["growth_per_week"] * t + season)
    lam = rng.gamma(traffic["alpha"], mu / traffic["alpha"])
    counts = {"visits": rng.poisson(lam)}
    for node, (parent, rate, sd) in rates.items():
        eta = np.log(rate / (1 - rate)) + sd * rng.standard_normal(weeks)
        counts[node] = rng.binomial(counts[parent], 1 / (1 + np.exp(-eta)))
    return counts


def main() -> None:
    counts = simulate(np.random.default_rng(20240917))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    columns = ["visits", "accompany", "form_start", "form_done", "booking", "signup", "logged_in"]
    with OUT.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["period", *columns])
        for i in range(WEEKS):
            week = FIRST_MONDAY + dt.timedelta(weeks=i)
            w.writerow([week.isoformat(), *(int(counts[c][i]) for c in columns)])
    print(f"wrote {OUT} ({WEEKS} weeks, illustrative numbers)")


if __name__ == "__main__":
    main()
