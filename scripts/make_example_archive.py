"""Generate an illustrative archive of past experiments (scenarios/data/example_archive.csv).

ILLUSTRATIVE NUMBERS from a stated truth (TRUTH below): 40 experiments, half on checkout and half
on onboarding; each change does nothing with probability 0.65, else its true relative effect is
drawn from Normal(0.02, 0.03); each experiment's standard error is uniform on [0.005, 0.02] and
its observed lift is the true effect plus Normal(0, se) noise. The team shipped what reached
p < 0.05 with a positive lift. Rerun to regenerate: `python scripts/make_example_archive.py`.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "scenarios" / "data" / "example_archive.csv"
TRUTH = {
    "experiments": 40,
    "null_share": 0.65,
    "slab_mean": 0.02,
    "slab_sd": 0.03,
    "se_range": (0.005, 0.02),
    "categories": ("checkout", "onboarding"),
}
SEED = 20240601
FIRST_END = dt.date(2023, 1, 20)


def generate(seed: int = SEED) -> list[dict[str, str]]:
    """The archive's rows (true effects are not written: a team never sees them)."""
    rng = np.random.default_rng(seed)
    n = TRUTH["experiments"]
    null = rng.uniform(size=n) < TRUTH["null_share"]
    theta = np.where(null, 0.0, rng.normal(TRUTH["slab_mean"], TRUTH["slab_sd"], n))
    se = rng.uniform(*TRUTH["se_range"], n)
    lift = theta + se * rng.standard_normal(n)
    cats = TRUTH["categories"]
    rows = []
    for i in range(n):
        cat = cats[i % len(cats)]
        shipped = lift[i] / se[i] > 1.959964  # two-sided p < 0.05 and a positive lift
        rows.append(
            {
                "experiment": f"{cat[:2]}-{i + 1:02d}",
                "metric": "purchase" if cat == "checkout" else "signup",
                "lift": f"{lift[i]:.4f}",
                "se": f"{se[i]:.4f}",
                "shipped": "yes" if shipped else "no",
                "end": (FIRST_END + dt.timedelta(weeks=2 * i)).isoformat(),
                "category": cat,
            }
        )
    return rows


def main() -> None:
    rows = generate()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {OUT} ({len(rows)} experiments)")


if __name__ == "__main__":
    main()
