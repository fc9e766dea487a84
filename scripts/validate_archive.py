"""Validation of `krsim archive` on simulated archives with a known effect distribution.

For each truth (normal, Student-t, spike-and-slab) and archive size (5, 20, 100 experiments),
REPS archives are simulated (standard errors uniform on [0.005, 0.02], observed lift = true effect
+ Normal(0, se)) and fitted exactly as `krsim archive` fits them (three forms, LOO selection;
2 chains x 500 draws). Per archive:

- coverage: the truth's probability mass inside the fit's 80% interval of a new experiment's true
  effect (exact from the truth's CDF, so each archive contributes its expected coverage rather
  than one 0/1 draw), averaged over the archives — want 0.75-0.85;
- MSE: the mean squared error of the shrunk estimates against the true effects, and of the raw
  lifts; want shrunk < raw (pooled over the archives);
- rules: the rule with the highest estimated impact against the rule with the highest *true*
  impact (sum of the true effects of what it ships); a match when the estimated best's true
  impact equals the true best's; want a match in most archives (> 50%).

Run: `python scripts/validate_archive.py [REPS]` prints the table of docs/validation.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.io import cache  # noqa: E402
from simulator.io.archive_data import archive_frame  # noqa: E402
from simulator.model import archive as A  # noqa: E402
from simulator.model.archive_rules import RULES, decisions  # noqa: E402

SIZES = (5, 20, 100)
TRUTHS = {
    "normal": "Normal(0.005, 0.02)",
    "student_t": "0.005 + 0.01 · t(3)",
    "spike": "0 w.p. 0.65, else Normal(0.02, 0.03)",
}
SETTINGS = A.Settings(draws=500, tune=500, chains=2)


def draw_truth(truth: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if truth == "normal":
        return rng.normal(0.005, 0.02, n)
    if truth == "student_t":
        return 0.005 + 0.01 * rng.standard_t(3, n)
    return np.where(rng.uniform(size=n) < 0.65, 0.0, rng.normal(0.02, 0.03, n))


def truth_mass(truth: str, lo: float, hi: float) -> float:
    """P(lo <= theta <= hi) under the truth."""
    from scipy import stats

    if truth == "normal":
        return float(stats.norm.cdf(hi, 0.005, 0.02) - stats.norm.cdf(lo, 0.005, 0.02))
    if truth == "student_t":
        return float(stats.t.cdf(hi, 3, 0.005, 0.01) - stats.t.cdf(lo, 3, 0.005, 0.01))
    slab = stats.norm.cdf(hi, 0.02, 0.03) - stats.norm.cdf(lo, 0.02, 0.03)
    return float(0.65 * (lo <= 0 <= hi) + 0.35 * slab)


def one_archive(truth: str, n: int, rng: np.random.Generator) -> dict:
    theta = draw_truth(truth, n, rng)
    se = rng.uniform(0.005, 0.02, n)
    y = theta + se * rng.standard_normal(n)
    arc = archive_frame([f"e{i}" for i in range(n)], y, se)
    res = A.analyse(arc, SETTINGS)
    s = res.summary
    lo, hi = s["new_effect"]["interval80"]
    post = res.fits[s["form"]].posterior
    dec = decisions(arc, post, SETTINGS.epsilon)
    true_impact = {r: float(theta[dec[r]].sum()) for r in RULES}
    est_best = s["rules"]["best"]
    return {
        "form": s["form"],
        "coverage": truth_mass(truth, lo, hi),
        "mse_shrunk": float(np.mean((post.mean - theta) ** 2)),
        "mse_raw": float(np.mean((y - theta) ** 2)),
        "rule_match": true_impact[est_best] >= max(true_impact.values()) - 1e-12,
    }


def run(reps: int, seed: int = 7, log=print) -> dict[tuple[str, int], dict]:
    """The validation table: per (truth, size), the mean coverage and its standard error, the
    pooled MSE of the shrunk and raw estimates, the share of archives where the shrunk MSE is the
    smaller, the rule-match rate, and the forms LOO kept."""
    cache.disable()
    out = {}
    for truth in TRUTHS:
        for n in SIZES:
            rng = np.random.default_rng([seed, n, list(TRUTHS).index(truth)])
            t0 = time.perf_counter()
            rows = [one_archive(truth, n, rng) for _ in range(reps)]
            cov = np.array([r["coverage"] for r in rows])
            ms = np.array([r["mse_shrunk"] for r in rows])
            mr = np.array([r["mse_raw"] for r in rows])
            out[(truth, n)] = {
                "archives": reps,
                "coverage": float(cov.mean()),
                "coverage_se": float(cov.std(ddof=1) / np.sqrt(reps)),
                "mse_shrunk": float(ms.mean()),
                "mse_raw": float(mr.mean()),
                "shrunk_better_share": float((ms < mr).mean()),
                "rule_match": float(np.mean([r["rule_match"] for r in rows])),
                "forms": {f: sum(r["form"] == f for r in rows) for f in A.FORMS},
                "seconds": time.perf_counter() - t0,
            }
            log(f"{truth:>9} n={n:<3} " + table_row(truth, n, out[(truth, n)]))
    return out


def table_row(truth: str, n: int, r: dict) -> str:
    forms = ", ".join(f"{f.replace('_', '-')} {k}" for f, k in r["forms"].items() if k)
    return (
        f"| {TRUTHS[truth]} | {n} | {r['archives']} | {r['coverage']:.3f} ± {r['coverage_se']:.3f} "
        f"| {r['mse_shrunk'] * 1e4:.2f} | {r['mse_raw'] * 1e4:.2f} | {r['shrunk_better_share']:.0%} "
        f"| {r['rule_match']:.0%} | {forms} |"
    )


HEADER = (
    "| truth | experiments | archives | 80% coverage of a new effect ± se | MSE shrunk (×10⁻⁴) "
    "| MSE raw (×10⁻⁴) | archives where shrunk wins | best rule matches the truth's "
    "| forms kept by LOO |\n|:---|---:|---:|---:|---:|---:|---:|---:|:---|"
)


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    table = run(reps)
    print(HEADER)
    for (truth, n), r in table.items():
        print(table_row(truth, n, r))
