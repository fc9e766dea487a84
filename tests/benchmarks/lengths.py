"""`make bench`: histories of different lengths, padded to one compiled model (`design.Padding`)
against a model compiled per length (krsim before the padding), side by side.

Cold, as a new user meets them: each configuration starts from empty compile caches and an
empty fit cache, and each step runs in a new process.

- `backtest` of the seed scenario: its 3 windows (13, 26 and 39 weeks), one process.
- `track` of the seed's `account_after_booking` with its first 4 weeks of actuals, then with 5
  in a new process on the caches the first filled (a team's next week on the same machine).

    .venv/bin/python tests/benchmarks/lengths.py [--skip-track]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, cold_env  # noqa: E402
from bench import SEED_SCENARIO as SEED  # noqa: E402

ACTUALS = ROOT / "scenarios" / "data" / "mandatory_account_actuals.csv"

# run in a new process: the command, with the padding turned off for "per length"
BACKTEST = """
import sys
from simulator import backtest, load_scenario
import simulator.model.design as design
if sys.argv[1] == "per length":
    design.paddings = lambda scenario, histories: [None] * len(histories)
backtest(load_scenario(sys.argv[2]))
"""
TRACK = """
import sys
from simulator import load_scenario, model, track
if sys.argv[1] == "per length":
    model.launched_padding = lambda *args: None
track(load_scenario(sys.argv[2]), sys.argv[3], option="account_after_booking")
"""


def _run(code: str, how: str, args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, how, *args], env=env, check=True, cwd=ROOT)
    return time.perf_counter() - t0


def measure(how: str, track: bool) -> dict[str, float]:
    """Seconds of each step, from empty caches."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        out["backtest, 3 windows"] = _run(BACKTEST, how, [str(SEED)], cold_env(Path(d)))
    if track:
        with tempfile.TemporaryDirectory() as d:
            week4 = Path(d) / "week4.csv"
            week4.write_text("".join(ACTUALS.read_text().splitlines(True)[:5]))
            env = cold_env(Path(d))
            out["track, week 4 (first run)"] = _run(TRACK, how, [str(SEED), str(week4)], env)
            out["track, week 5 (new process)"] = _run(TRACK, how, [str(SEED), str(ACTUALS)], env)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-track", action="store_true", help="only the backtest")
    args = ap.parse_args()
    one = measure("one model", not args.skip_track)
    per = measure("per length", not args.skip_track)
    print("\nHistories of different lengths, cold (seconds)")
    print(f"{'':32}{'one model':>11}{'per length':>12}{'ratio':>8}")
    for what, t in one.items():
        print(f"{what:32}{t:11.1f}{per[what]:12.1f}{t / per[what]:8.2f}")


if __name__ == "__main__":
    main()
