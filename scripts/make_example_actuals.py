"""Generate illustrative actuals for the seed scenario (scenarios/mandatory_account.yaml): the
first weeks of the quarter after the recommended option was launched.

ILLUSTRATIVE NUMBERS: simulated with krsim's own change semantics
(`simulator.model.changes.simulate_counts`) from the funnel rates and traffic of the illustrative history
(scripts/make_example_data.py, continuing its time line) and an invented true value of the change
parameter (TRUTH below: fewer bookers take up the account offer than the team's median belief).
The whole quarter is simulated from one seed; the first ``--weeks`` (default 5) are written, so the
file for 5 weeks is the first 5 rows of the file for 13. Rerun to regenerate:
`python scripts/make_example_actuals.py` (or `--weeks 13 --out PATH`).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.io.scenario import read_scenario  # noqa: E402
from simulator.model.changes import ChangePlan, simulate_counts  # noqa: E402

SCENARIO = ROOT / "scenarios" / "mandatory_account.yaml"
OUT = ROOT / "scenarios" / "data" / "mandatory_account_actuals.csv"
OPTION = "account_after_booking"  # the option `krsim run` recommends for the seed scenario
FIRST_MONDAY = dt.date(2026, 8, 31)  # the week after the illustrative history ends
HISTORY_WEEKS = 52
# invented "true" value: the team believed 0.03 to 0.15 (90%), median about 0.08
TRUTH = {"account_after_booking.flow.rate": 0.05}


def _history_generator():
    spec = importlib.util.spec_from_file_location(
        "make_example_data", ROOT / "scripts" / "make_example_data.py"
    )
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def simulate_quarter(seed: int = 20260831) -> dict[str, np.ndarray]:
    """Every stage's weekly counts over the quarter under the launched option."""
    gen = _history_generator()
    scenario = read_scenario(SCENARIO)
    rng = np.random.default_rng(seed)
    H = scenario.horizon
    t = np.arange(HISTORY_WEEKS, HISTORY_WEEKS + H) - (HISTORY_WEEKS - 1) / 2
    mu = gen.TRAFFIC["level"] * np.exp(gen.TRAFFIC["growth_per_week"] * t)
    traffic = rng.poisson(rng.gamma(gen.TRAFFIC["alpha"], mu / gen.TRAFFIC["alpha"]))
    rates = {}
    for node, (_parent, rate, sd) in gen.RATES.items():
        eta = np.log(rate / (1 - rate)) + sd * rng.standard_normal(H)
        rates[node] = 1 / (1 + np.exp(-eta))
    plan = ChangePlan.of(scenario, OPTION)
    return simulate_counts(
        scenario, plan, rates, TRUTH, lambda *_: rng, root=traffic, all_segments=True
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weeks", type=int, default=5, help="weeks of the quarter to write")
    p.add_argument("--out", type=Path, default=OUT, help=f"output CSV (default {OUT})")
    args = p.parse_args(argv)
    scenario = read_scenario(SCENARIO)
    counts = simulate_quarter()
    columns = [*scenario.funnel, *scenario.segments]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["period", *columns])
        for i in range(args.weeks):
            week = (FIRST_MONDAY + dt.timedelta(weeks=i)).isoformat()
            w.writerow([week, *(int(counts[c][i]) for c in columns)])
    print(f"wrote {args.out} ({args.weeks} weeks under {OPTION}, illustrative numbers)")


if __name__ == "__main__":
    main()
