"""Generate illustrative A/B test results for the seed scenario (scenarios/mandatory_account.yaml).

ILLUSTRATIVE NUMBERS: a four-week test of the three options, traffic split equally, simulated with
krsim's own change semantics (`simulator.model.changes.simulate_counts`) from the same funnel rates as the
illustrative history (scripts/make_example_data.py) and invented true values of the change
parameters (TRUTH below). Rerun to regenerate: `python scripts/make_example_experiment.py`.
"""

from __future__ import annotations

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
OUT = ROOT / "scenarios" / "data" / "mandatory_account_experiment.csv"
WEEKS = 4
FIRST_MONDAY = dt.date(2026, 8, 31)  # the week after the illustrative history ends
ARMS = ("status_quo", "mandatory_account", "account_after_booking")
# invented "true" values: fewer users sign up at the gate than the team's median belief
TRUTH = {
    "mandatory_account.gate.pass": 0.58,
    "mandatory_account.gate.overlap": 0.08,
    "account_after_booking.flow.rate": 0.09,
}


def _history_generator():
    spec = importlib.util.spec_from_file_location(
        "make_example_data", ROOT / "scripts" / "make_example_data.py"
    )
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    gen = _history_generator()
    scenario = read_scenario(SCENARIO)
    rng = np.random.default_rng(20260831)
    # weekly traffic continues the history's trend; each visitor is assigned to an arm at random
    t = np.arange(52, 52 + WEEKS) - (52 - 1) / 2
    mu = gen.TRAFFIC["level"] * np.exp(gen.TRAFFIC["growth_per_week"] * t)
    traffic = rng.poisson(rng.gamma(gen.TRAFFIC["alpha"], mu / gen.TRAFFIC["alpha"]))
    split = np.stack([rng.multinomial(n, [1 / len(ARMS)] * len(ARMS)) for n in traffic], axis=1)
    # the week's rates, shared by every arm (logit-normal week-to-week variation)
    rates = {}
    for node, (_parent, rate, sd) in gen.RATES.items():
        eta = np.log(rate / (1 - rate)) + sd * rng.standard_normal(WEEKS)
        rates[node] = 1 / (1 + np.exp(-eta))
    columns = [*scenario.funnel, *scenario.segments]
    rows = []
    for a, arm in enumerate(ARMS):
        plan = ChangePlan.of(scenario, arm)
        counts = simulate_counts(
            scenario, plan, rates, TRUTH, lambda *_: rng, root=split[a], all_segments=True
        )
        for w in range(WEEKS):
            week = (FIRST_MONDAY + dt.timedelta(weeks=w)).isoformat()
            rows.append((week, arm, [int(counts[c][w]) for c in columns]))
    rows.sort(key=lambda r: (r[0], ARMS.index(r[1])))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["arm", "period", *columns])
        for week, arm, values in rows:
            w.writerow([arm, week, *values])
    print(f"wrote {OUT} ({WEEKS} weeks x {len(ARMS)} arms, illustrative numbers)")


if __name__ == "__main__":
    main()
