"""Sampling until sound on real traffic: two-year windows of a real weekly series (the Wikipedia
page views in ../shared/data/real/, missing weeks included) as a funnel's visits, with sign-ups and
bookings simulated on top (ILLUSTRATIVE: binomial draws at fixed rates, seeded), fitted by
``krsim run --json`` at default settings in a new process each. Prints, per window, whether the
answer came out sound, the draws it took, the deciding quantities' R-hat and ESS, the model
parameters' R-hat, the divergences, any warning and the wall time; the compile of the windows after
the first comes from the on-disk cache (same funnel shape and length).

    .venv/bin/python tests/benchmarks/real_sound.py [--windows 0,104,208] [--series PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SERIES = ROOT.parent / "shared" / "data" / "real" / "wikipedia_pageviews_weekly.csv"
WEEKS = 104

SCENARIO = """\
# ILLUSTRATIVE: real weekly page views as visits; sign-ups and bookings simulated
# by tests/benchmarks/real_sound.py.
version: 1
title: Real traffic, simulated conversions
period: week
horizon: 13
seed: 11
funnel:
  visits:  {label: Visits}
  signup:  {from: visits, label: Accounts created}
  booking: {from: signup, label: Appointments booked}
history: history.csv
options:
  status_quo: {label: Keep it as it is}
  prompt:
    label: Prompt for an account
    changes:
      - lift: {stage: signup, factor: {lognormal_interval: [1.00, 1.15]}}
key_results:
  - {id: accounts, metric: signup, target: +10%}
  - {id: bookings, metric: booking, target: +3%}
"""


def read_series(path: Path) -> list[tuple[str, int | None]]:
    with path.open() as f:
        return [(r["period"], int(r["visits"]) if r["visits"] else None) for r in csv.DictReader(f)]


def write_window(d: Path, rows: list[tuple[str, int | None]], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with (d / "history.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["period", "visits", "signup", "booking"])
        for period, visits in rows:
            if visits is None:
                w.writerow([period, "", "", ""])
                continue
            signup = int(rng.binomial(visits, 0.012))
            w.writerow([period, visits, signup, int(rng.binomial(signup, 0.35))])
    (d / "scenario.yaml").write_text(SCENARIO)
    return d / "scenario.yaml"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--windows", default="0,104,208", help="first week of each 104-week window")
    p.add_argument("--series", type=Path, default=SERIES)
    args = p.parse_args()
    rows = read_series(args.series)
    krsim = str(Path(sys.executable).parent / "krsim")
    for start in (int(s) for s in args.windows.split(",")):
        window = rows[start : start + WEEKS]
        with tempfile.TemporaryDirectory() as tmp:
            sc = write_window(Path(tmp), window, seed=start)
            env = dict(os.environ, KRSIM_CACHE_DIR=str(Path(tmp) / "cache"))
            t0 = time.perf_counter()
            r = subprocess.run(
                [krsim, "run", str(sc), "--json"], capture_output=True, text=True, env=env
            )
            secs = time.perf_counter() - t0
        if r.returncode != 0:
            print(
                f"weeks {window[0][0]}..{window[-1][0]}: exit {r.returncode}: {r.stderr.strip()[-300:]}"
            )
            continue
        diag = json.loads(r.stdout)["diagnostics"]
        dec = diag.get("decision", {})
        missing = sum(v is None for _, v in window)
        print(
            f"weeks {window[0][0]}..{window[-1][0]} ({missing} missing): sound {dec.get('sound')}, "
            f"{dec.get('draws')} draws x 4 chains (tune {dec.get('tune')}), deciding R-hat "
            f"{dec.get('rhat', float('nan')):.3f}, ESS bulk/tail {dec.get('ess_bulk', 0):.0f}/"
            f"{dec.get('ess_tail', 0):.0f}; parameters R-hat {diag['rhat_max']:.3f}, ESS "
            f"{diag['ess_bulk_min']:.0f}; divergences {diag['divergences']}; warnings "
            f"{len(diag['warnings'])}{': ' + diag['warnings'][0] if diag['warnings'] else ''}; "
            f"{secs:.1f} s"
        )


if __name__ == "__main__":
    main()
