"""Checks 1 and 6 of the validation (calibration of P(met) and 80% coverage on the model's own
iid worlds and on drifting worlds) for the default model since version 5, next to the constant-level
model the rest of docs/validation.md is written for.

    nice -n 10 .venv/bin/python scripts/validate_default.py --worlds 150 --out docs/figures/validation_default.json

The worlds, the oracle, the targets and the scores are validation/suite.py's (`run_calibration`);
only the models differ: ``iid`` (``drift: none``) and ``iid+walk`` (the default: the traffic's level
may drift as a random walk, the data weighing drift against a steady level). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from validation.suite import (  # noqa: E402
    Fitters,
    calibration_verdict,
    run_calibration,
    summarize_calibration,
)

MODELS = ("iid", "iid+walk")
WORDS = {"iid": "constant level (`drift: none`)", "iid+walk": "**default** (level may drift)"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worlds", type=int, default=150, help="worlds per family")
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--draws", type=int, default=400)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    fitters = Fitters(draws=args.draws, tune=args.draws, chains=2)
    root = np.random.SeedSequence(args.seed)
    rng_iid, rng_drift = (np.random.default_rng(s) for s in root.spawn(2))

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    runs = {
        "iid": run_calibration(
            fitters,
            rng_iid,
            n_worlds=args.worlds,
            kinds=("iid",),
            models=MODELS,
            progress=progress,
        ),
        "drift": run_calibration(
            fitters,
            rng_drift,
            n_worlds=args.worlds,
            kinds=("ar1", "trend"),
            models=MODELS,
            world_offset=100_000,
            progress=progress,
        ),
    }
    groups = {}
    for fam, run in runs.items():
        for m in MODELS:
            rows = [r for r in run.rows if r["model"] == m]
            s = summarize_calibration(rows)
            s["verdict"] = calibration_verdict(s)
            by_kr = {}
            for kr in sorted({r["kr"] for r in rows}):
                first = [r for r in rows if r["kr"] == kr and r["pit_krsim"] is not None]
                by_kr[kr] = float(np.mean([r["in80_krsim"] for r in first]))
            s["coverage80_by_kr"] = by_kr
            diags = [d for d in run.diagnostics if d["model"] == m]
            s["health"] = {
                "fits": len(diags),
                "with_divergences": sum(d["divergences"] > 0 for d in diags),
                "rhat_above_1.01": sum(d["rhat_max"] > 1.01 for d in diags),
            }
            for k in ("pit_krsim", "pit_oracle"):
                s.pop(k, None)
            groups[f"{fam}/{m}"] = s
    print(
        "| worlds | model | Brier krsim | Brier oracle | gap | Spiegelhalter z "
        "| 80% coverage | oracle | per key result (done, start, conversion) | fits with divergences |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, s in groups.items():
        fam, m = key.split("/")
        kr = s["coverage80_by_kr"]
        print(
            f"| {fam} ({s['n_worlds']}) | {WORDS[m]} | {s['brier_krsim']:.4f} | {s['brier_oracle']:.4f} "
            f"| {s['brier_gap'] / s['brier_oracle']:.1%} | {s['spiegelhalter_z']:+.2f} "
            f"| {s['coverage80_krsim']:.1%} +- {s['coverage80_krsim_se']:.1%} "
            f"| {s['coverage80_oracle']:.1%} "
            f"| {', '.join(f'{kr[k]:.0%}' for k in ('done', 'start', 'conversion') if k in kr)} "
            f"| {s['health']['with_divergences']} of {s['health']['fits']} |"
        )
    print(f"run time {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "groups": groups}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
