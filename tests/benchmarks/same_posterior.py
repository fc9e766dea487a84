"""Is the answer the same as an earlier version's? P(met) of this checkout against a git ref's,
within their Monte Carlo errors: the check to run after work on speed (compiling, padding,
sampling), which must not change the posterior.

Each version runs in new processes, from a `git worktree` of the ref and from this checkout, each
with its own empty fit and compile caches, on the same machine's environment (``.venv``):

- the seed scenario, ``krsim run --json --no-cache`` with ``--seeds`` seeds per version, the two
  versions on different seeds, so their draws are independent: per option and key result, the
  mean P(met) over the seeds, the error of that mean (from each run's reported error) and the
  difference in those errors (z), and Welch's t from the runs' spread alone (which does not
  trust the reported errors);
- the validation's simulated worlds (``validation.suite``: a realistic funnel, iid, AR(1) and
  trending, 26 or 52 periods), fitted with the constant-level model and with the drifting
  default (``iid+walk``) at the product's draws (4 chains x 1,000 after 1,000 tuning steps);
  P(met) of targets placed at the true world's quartiles, so both versions answer the same
  questions. The two versions' fits take different seeds.

    .venv/bin/python tests/benchmarks/same_posterior.py --ref 1000c30 [--seeds 5] [--worlds 9]

P at 0 or 1 (both versions within 0.001 of it) are shown but not counted: their error is
mostly its floor. About 1 in 20 comparisons is beyond 2 errors by chance (comparisons that share
a fit are not independent, which widens the spread of that share, not its expectation).

What it covers: `krsim run` (with its sampling until sound, the compiled-model reuse, the
cached callbacks and the pieces) and the validation's fitter. The padded forms of `backtest`
and `track` are not run here (`tests/test_padding.py` checks their density exactly).

About 6 minutes a version on 2 cores. Prints the tables; exit status 0 whatever they say.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, cold_env  # noqa: E402

PY = ROOT / ".venv" / "bin" / "python"

# run in the version's folder (PYTHONPATH): argv is the output file, the world count, a salt
WORLDS = """
import hashlib, json, sys
import numpy as np
from validation import suite
from simulator.engine import decision, forecast

out, n, salt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fitters = suite.Fitters(draws=1000, tune=1000, chains=4)
scen = fitters.scenario("iid")
rows = []
for i, seq in enumerate(np.random.SeedSequence(20261205).spawn(n)):
    wrng, orng = [np.random.default_rng(s) for s in seq.spawn(2)]
    kind = ("iid", "ar1", "trend")[i % 3]
    T = (26, 52)[int(wrng.integers(2))]
    world = suite.realistic_world(wrng, T, kind)
    history, state = suite.simulate_history(world, scen, wrng)
    data = hashlib.sha256(b"".join(history.counts[c].tobytes() for c in sorted(history.counts)))
    fseed = int(wrng.integers(2**31)) + salt
    oracle = suite.simulate_future(world, scen, state, scen.horizon, 4000, orng)
    o_tot = {s: c.sum(axis=1) for s, c in oracle.items()}
    for m in ("iid", "iid+walk"):
        f = fitters.get(m, T).fit(history, fseed)
        fc = forecast.simulate(scen.model_copy(update={"seed": fseed + 1}), f)
        k_tot = {s: c.sum(axis=1) for s, c in fc.counts["status_quo"].items()}
        for kr in scen.key_results:
            ov = decision.kr_value(kr, o_tot)
            kv = decision.kr_value(kr, k_tot)
            for q in (0.25, 0.5, 0.75):
                target = float(np.quantile(ov, q))
                met = (kv >= target).astype(float)
                rows.append({"world": i, "kind": kind, "T": T, "model": m, "kr": kr.id, "q": q,
                             "history": data.hexdigest()[:16], "target": target,
                             "p": float(met.mean()), "se": decision.mc_se(met, fc.chains)})
    print(f"  world {i + 1}/{n} ({kind}, {T} periods)", file=sys.stderr, flush=True)
json.dump(rows, open(out, "w"))
"""


def run_version(tree: Path, caches: Path, seeds: list[int], worlds: int, salt: int) -> dict:
    """One version's seed runs and world P(met), each in a new process."""
    caches.mkdir(parents=True)
    env = cold_env(caches) | {"PYTHONPATH": str(tree)}  # the version's own code
    scenario = ROOT / "scenarios" / "mandatory_account.yaml"  # this checkout's, for both
    runs = []
    for s in seeds:
        print(f"  seed scenario, seed {s}", file=sys.stderr, flush=True)
        cmd = [str(PY), "-m", "simulator.cli", "run", "--json", "--no-cache", "--seed", str(s)]
        p = subprocess.run([*cmd, str(scenario)], env=env, cwd=tree, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"{tree}: krsim run --seed {s} failed (exit {p.returncode}):\n{p.stderr}")
        runs.append(json.loads(p.stdout))
    out = caches / "worlds.json"
    subprocess.run(
        [str(PY), "-c", WORLDS, str(out), str(worlds), str(salt)], env=env, cwd=tree, check=True
    )
    return {"seed": runs, "worlds": json.loads(out.read_text())}


def _seed_rows(runs: list[dict]) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(option, key result or P(all met)) -> each run's P and its Monte Carlo error."""
    acc: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in runs:
        for o, opt in r["options"].items():
            acc.setdefault((o, "P(all met)"), []).append((opt["p_all_met"], opt["p_all_met_se"]))
            for k, kr in opt["key_results"].items():
                acc.setdefault((o, k), []).append((kr["p_met"], kr["p_met_se"]))
    return acc


def _mean(v: list[tuple[float, float]]) -> tuple[float, float]:
    """The mean P over independent runs and its error from the runs' reported errors."""
    return statistics.fmean(p for p, _ in v), math.sqrt(sum(se**2 for _, se in v)) / len(v)


def _z(a: tuple[float, float], b: tuple[float, float]) -> float:
    se = math.hypot(a[1], b[1])
    return (b[0] - a[0]) / se if se > 0 else 0.0


def _welch(a: list[float], b: list[float]) -> float:
    """Welch's t of the two versions' runs, from their spread alone (not the reported errors)."""
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return (statistics.fmean(b) - statistics.fmean(a)) / se if se > 0 else 0.0


def _at_floor(*ps: float) -> bool:
    """Both P within 0.001 of 0 or of 1 (a few of the 4,000 draws): their error is mostly its
    floor, and z says little."""
    return all(p < 0.001 for p in ps) or all(p > 0.999 for p in ps)


def _share(zs: list[float]) -> str:
    beyond = sum(z > 2 for z in zs)
    return f"{beyond} of {len(zs)} ({100 * beyond / len(zs):.1f}%) beyond 2 errors"


def report(ref: str, old: dict, new: dict) -> None:
    a, b = _seed_rows(old["seed"]), _seed_rows(new["seed"])
    n = len(old["seed"])
    print(f"\nSeed scenario: mean P(met) over {n} runs each ({ref} | this checkout)")
    zs = []
    for key in a:
        (pa, sa), (pb, sb) = _mean(a[key]), _mean(b[key])
        z, t = _z((pa, sa), (pb, sb)), _welch([p for p, _ in a[key]], [p for p, _ in b[key]])
        floor = _at_floor(pa, pb)
        if not floor:
            zs.append(abs(z))
        print(
            f"  {key[0]:24s} {key[1]:20s} {pa:.4f} ± {sa:.4f} | {pb:.4f} ± {sb:.4f}  z {z:+.2f}"
            f"  Welch t {t:+.2f}{'  (at 0 or 1: not counted)' if floor else ''}"
        )
    picks = {r["recommendation"]["option"] for r in old["seed"] + new["seed"]}
    print(f"  away from 0 and 1: {_share(zs)}; picks: {sorted(picks)}")
    zw = []
    for ra, rb in zip(old["worlds"], new["worlds"], strict=True):
        same = ("world", "model", "kr", "q", "history", "target")
        assert all(ra[k] == rb[k] for k in same), (ra, rb)  # the same question in both versions
        if not _at_floor(ra["p"], rb["p"]):
            zw.append(abs(_z((ra["p"], ra["se"]), (rb["p"], rb["se"]))))
    print(
        f"\nValidation worlds ({len({r['world'] for r in old['worlds']})} worlds x 2 models x key"
        f" results x 3 targets; the same histories and targets in both versions): of"
        f" {len(old['worlds'])} P(met), {len(zw)} away from 0 and 1: {_share(zw)};"
        f" median |z| {statistics.median(zw):.2f} (0.67 for a standard normal), largest"
        f" {max(zw):.2f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True, help="the earlier version (a commit or branch)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--worlds", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="krsim-same-") as tmp:
        tmp = Path(tmp)
        tree = tmp / "ref"
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(tree), args.ref], cwd=ROOT, check=True
        )
        try:
            n = args.seeds
            print(f"{args.ref}:", file=sys.stderr)
            old = run_version(tree, tmp / "old", list(range(1, n + 1)), args.worlds, 0)
            print("this checkout:", file=sys.stderr)
            new = run_version(ROOT, tmp / "new", list(range(n + 1, 2 * n + 1)), args.worlds, 1000)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT)
        report(args.ref, old, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
