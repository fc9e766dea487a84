"""`make bench`: a small two-stage funnel, cold, krsim against the same data fitted by plain PyMC
with nutpie (an iid model written as a notebook would), side by side.

The funnel is visits -> sign-ups over 52 weeks, simulated here from a fixed seed (illustrative
numbers, a steady funnel: the iid model is the right one for it). Each run is a new process with
its own empty PyTensor/numba compile directory (and, for krsim, an empty fit cache), so each pays
the whole first-run cost a new user meets: imports, compile, sampling. Both sample 4 chains x
1,000 draws after 1,000 tuning steps with nutpie on the machine's cores (the notebook asks for 2;
krsim takes up to 4); krsim also judges its answer and samples again if it is not yet sound
(see its `-v`), forecasts the quarter per option and decides, which the notebook does not. The runs alternate (krsim, plain, krsim, ...)
so that other work on the machine hits both alike; medians of ``--rounds`` and the ratio.

    .venv/bin/python tests/benchmarks/small.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import KRSIM, NOTEBOOK, Bench, notebook_spec, run  # noqa: E402

SCENARIO = """\
title: Small two-stage funnel (illustrative numbers)
period: week
horizon: 13
funnel:
  visits: {label: Visits}
  signup: {from: visits, label: Sign-ups}
history: history.csv
options:
  status_quo: {label: Keep as is}
  banner:
    label: Sign-up banner
    changes:
      - lift: {stage: signup, factor: {lognormal_interval: [1.0, 1.15]}}
key_results:
  - {id: signups, metric: signup, target: +5%}
seed: 11
"""


def write_case(d: Path) -> Path:
    """The scenario and its 52 weeks of history (a steady funnel, from a fixed seed)."""
    rng = np.random.default_rng(20261205)
    visits = rng.negative_binomial(50, 50 / (50 + 4000.0), 52)
    rate = 1 / (1 + np.exp(-rng.normal(-2.9, 0.08, 52)))
    signup = rng.binomial(visits, rate)
    lines = ["period,visits,signup"]
    weeks = np.datetime64("2025-01-06") + 7 * np.arange(52)
    lines += [f"{w},{v},{s}" for w, v, s in zip(weeks, visits, signup, strict=True)]
    (d / "history.csv").write_text("\n".join(lines) + "\n")
    path = d / "small.yaml"
    path.write_text(SCENARIO)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="krsim-small-"))
    b = Bench(work, Path(tempfile.gettempdir()) / "krsim-bench-pycache", log)
    scenario = write_case(work)
    nb = work / "notebook.py"
    nb.write_text(NOTEBOOK)
    spec = json.loads(notebook_spec(scenario))
    spec["sampler"] = "nutpie"
    ours, plain = [], []
    for i in range(args.rounds):
        env = b.env_for(compiledir=b.fresh(f"k{i}-compile"), cache=b.fresh(f"k{i}-cache"))
        log(f"round {i + 1}/{args.rounds}: krsim run, cold...")
        ours.append(run([str(KRSIM), "run", "--json", str(scenario)], env).wall)
        env = b.env_for(compiledir=b.fresh(f"p{i}-compile"), cache=b.fresh(f"p{i}-cache"))
        log(f"round {i + 1}/{args.rounds}: plain PyMC + nutpie, cold...")
        plain.append(run([sys.executable, str(nb), json.dumps(spec)], env).wall)
    k, q = statistics.median(ours), statistics.median(plain)
    print(
        f"small two-stage funnel (52 weeks), cold, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.1f}: krsim run {k:.1f} s (runs {', '.join(f'{x:.1f}' for x in ours)}), "
        f"plain PyMC + nutpie {q:.1f} s ({', '.join(f'{x:.1f}' for x in plain)}); "
        f"ratio {k / q:.2f} (median of {args.rounds})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
