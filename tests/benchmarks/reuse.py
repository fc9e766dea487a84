"""`make bench`, last part: fits of one funnel shape in one process, the later ones through the
compiled model the first left (`simulator.model.compiled`), side by side.

Four fits of the seed scenario, one after another, without the fit cache: the first (compiles),
another seed, every week's counts times 0.95-1.05 (another history of the same shape), and
twice the draws (what sampling until sound asks for). Each row: the fit's seconds and its ratio
to the first; the compile and reuse counts. The compile caches are the machine's (run it twice
to see a warm process).

    .venv/bin/python tests/benchmarks/reuse.py [--scenario scenarios/mandatory_account.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def fits(path: Path) -> list[tuple[str, float]]:
    """The four fits' labels and seconds."""
    import simulator
    from simulator import model
    from simulator.api import load_scenario
    from simulator.io.data import read_history

    s = load_scenario(path)
    h = read_history(s)
    f = np.random.default_rng(1).uniform(0.95, 1.05, len(h))  # floors keep child <= parent
    scaled = dataclasses.replace(
        h, counts={k: np.floor(v * f).astype(v.dtype) for k, v in h.counts.items()}
    )
    runs = [
        ("first fit (compiles)", s, h),
        ("another seed", s.with_overrides(seed=s.seed + 1), h),
        ("another history, same shape", s, scaled),
        ("twice the draws", s.with_overrides(draws=2 * s.model.draws), h),
    ]
    out = []
    with simulator.cache_disabled():
        for label, sc, hist in runs:
            t0 = time.perf_counter()
            model.fit(sc, hist)
            out.append((label, time.perf_counter() - t0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "mandatory_account.yaml")
    args = ap.parse_args()
    from simulator.model import compiled

    rows = fits(args.scenario)
    first = rows[0][1]
    print(
        f"\nFits of one funnel shape in one process ({args.scenario.name}; load {os.getloadavg()[0]:.1f})"
    )
    print(f"{'fit':<32}{'seconds':>9}{'ratio':>8}")
    for label, sec in rows:
        print(f"{label:<32}{sec:>9.1f}{sec / first:>8.2f}")
    st = compiled.stats()
    print(f"compiled models: {st['compiles']} compiled, {st['reuses']} reused")


if __name__ == "__main__":
    main()
