"""Generate the illustrative history of the e-commerce scenario (scenarios/ecommerce_revenue.yaml).

The numbers are invented, drawn from a known truth of the family krsim fits: negative-binomial weekly
visits, logit-normal week-to-week variation of each conversion rate, and for purchases a weekly
revenue that is the sum of one positive basket value per purchase: each week's average basket
``m[t] = BASKET_MEAN * exp(sd * z[t])`` and the week's revenue ``Gamma(shape = n[t] * k,
rate = k / m[t])`` (per-basket coefficient of variation ``1 / sqrt(k)``). One week's revenue is
left empty (a lost payment export) to show how missing values are read. Rerun to regenerate:
`python scripts/make_ecommerce_data.py`; `--truth` prints the truth as JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "scenarios" / "data"
OUT = DATA / "ecommerce_revenue_history.csv"
EXPERIMENT = DATA / "ecommerce_revenue_experiment.csv"
# an A/B/C test over two weeks, 1/3 of the traffic each; the truth of the tested options:
# recommendations lift the basket by 5%, the one-page checkout the purchase rate by 6%
EXPERIMENT_TRUTH = {"recommendations": {"basket": 1.05}, "fast_checkout": {"purchase": 1.06}}
WEEKS = 52
FIRST_MONDAY = dt.date(2025, 9, 1)
SEED = 20251201

# stage: (parent, average rate, week-to-week sd on the logit scale); illustrative values
RATES = {
    "product_view": ("visits", 0.55, 0.05),
    "cart": ("product_view", 0.12, 0.08),
    "checkout": ("cart", 0.55, 0.06),
    "purchase": ("checkout", 0.70, 0.05),
}
TRAFFIC = {"level": 40_000.0, "alpha": 200.0}
# the basket: mean value per purchase (EUR), its week-to-week sd on the log scale, and the
# per-basket shape k (coefficient of variation of single baskets 1/sqrt(k) = 0.9)
BASKET = {"mean": 62.0, "sd": 0.04, "k": 1 / 0.9**2}
MISSING_VALUE_WEEKS = (9,)  # zero-based week whose revenue export was lost


def simulate(rng: np.random.Generator, weeks: int = WEEKS) -> dict[str, np.ndarray]:
    mu = np.full(weeks, TRAFFIC["level"])
    lam = rng.gamma(TRAFFIC["alpha"], mu / TRAFFIC["alpha"])
    counts: dict[str, np.ndarray] = {"visits": rng.poisson(lam)}
    for node, (parent, rate, sd) in RATES.items():
        eta = np.log(rate / (1 - rate)) + sd * rng.standard_normal(weeks)
        counts[node] = rng.binomial(counts[parent], 1 / (1 + np.exp(-eta)))
    m = BASKET["mean"] * np.exp(BASKET["sd"] * rng.standard_normal(weeks))
    k = BASKET["k"]
    n = counts["purchase"]
    value = np.where(n > 0, rng.gamma(np.maximum(n * k, 1e-12), m / k), 0.0)
    counts["purchase.value"] = value
    return counts


def simulate_experiment(rng: np.random.Generator, weeks: int = 2) -> list[list[str]]:
    """Rows (arm, period, counts..., purchase.value) of the illustrative experiment."""
    rows = []
    arms = ["status_quo", *EXPERIMENT_TRUTH]
    for w in range(weeks):
        period = (FIRST_MONDAY + dt.timedelta(weeks=WEEKS + w)).isoformat()
        effects = {node: sd * rng.standard_normal() for node, (_, _, sd) in RATES.items()}
        m = BASKET["mean"] * np.exp(BASKET["sd"] * rng.standard_normal())
        for arm in arms:
            truth = EXPERIMENT_TRUTH.get(arm, {})
            counts = {"visits": rng.poisson(TRAFFIC["level"] / len(arms))}
            for node, (parent, rate, _) in RATES.items():
                p = 1 / (1 + np.exp(-(np.log(rate / (1 - rate)) + effects[node])))
                p = min(p * truth.get(node, 1.0), 1.0)
                counts[node] = rng.binomial(counts[parent], p)
            n, k = counts["purchase"], BASKET["k"]
            mm = m * truth.get("basket", 1.0)
            value = rng.gamma(n * k, mm / k) if n > 0 else 0.0
            rows.append([arm, period, *(str(int(counts[c])) for c in counts), f"{value:.2f}"])
    return rows


def main() -> None:
    if "--truth" in sys.argv:
        print(json.dumps({"rates": RATES, "traffic": TRAFFIC, "basket": BASKET}))
        return
    counts = simulate(np.random.default_rng(SEED))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    columns = ["visits", "product_view", "cart", "checkout", "purchase"]
    with OUT.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["period", *columns, "purchase.value"])
        for i in range(WEEKS):
            week = FIRST_MONDAY + dt.timedelta(weeks=i)
            value = "" if i in MISSING_VALUE_WEEKS else f"{counts['purchase.value'][i]:.2f}"
            w.writerow([week.isoformat(), *(int(counts[c][i]) for c in columns), value])
    print(f"wrote {OUT} ({WEEKS} weeks, illustrative numbers)")
    with EXPERIMENT.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["arm", "period", *columns, "purchase.value"])
        w.writerows(simulate_experiment(np.random.default_rng(SEED + 1)))
    print(f"wrote {EXPERIMENT} (an illustrative A/B/C test)")


if __name__ == "__main__":
    main()
