"""Generate the illustrative history of scenarios/booking_q1.yaml: a seasonal booking funnel.

The numbers are invented: 96 weeks of a booking website whose traffic peaks each autumn and dips
each summer (a yearly cycle of about ±25% around a slowly growing level), with logit-normal
week-to-week variation of each conversion rate; the booking page converts about half of the
completed forms. The history ends on the last week of 2025, so the quarter ahead is Q1 2026 and the
default baseline window (the last 13 weeks) is the autumn peak. Rerun to regenerate:
`python scripts/make_booking_q1_data.py`.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_example_data  # noqa: E402  (the seed example's simulation, beside this script)

OUT = Path(__file__).resolve().parent.parent / "scenarios" / "data" / "booking_q1_history.csv"
WEEKS = 96
FIRST_MONDAY = dt.date(2024, 3, 4)  # the 96th week starts on 2025-12-29

# stage: (parent, average rate, week-to-week sd on the logit scale); illustrative values
RATES = {
    "accompany": ("visits", 0.30, 0.08),
    "form_start": ("accompany", 0.45, 0.10),
    "form_done": ("form_start", 0.70, 0.08),
    "booking": ("form_done", 0.49, 0.06),
    "signup": ("visits", 0.025, 0.10),
    "logged_in": ("form_done", 0.30, 0.10),  # segment: already had an account
}
TRAFFIC = {"level": 9_000.0, "growth_per_week": 0.002, "alpha": 150.0}
SEASON = {"amplitude": 0.25, "peak_day_of_year": 320}  # mid-November


def simulate(rng: np.random.Generator, weeks: int = WEEKS) -> dict[str, np.ndarray]:
    """The seed example's simulation with this funnel's rates and a yearly cycle of traffic."""
    days = [FIRST_MONDAY + dt.timedelta(weeks=i) for i in range(weeks)]
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    season = SEASON["amplitude"] * np.cos(2 * np.pi * (doy - SEASON["peak_day_of_year"]) / 365.25)
    return make_example_data.simulate(rng, weeks, RATES, TRAFFIC, season)


def main() -> None:
    counts = simulate(np.random.default_rng(20260105))
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
