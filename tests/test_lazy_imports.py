"""`krsim check`, `--help` and a cache-hit `krsim run` must not import PyMC, PyTensor or ArviZ.

Their import alone takes seconds; a what-if that reuses the cached fit should start about as fast as
numpy and scipy. Each command runs in a fresh interpreter, which then lists the heavy packages it has
loaded. The cache is prefilled by one small real fit of a tiny scenario.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("pymc", "pytensor", "arviz")
# a what-if on a cached fit judges its own P(met) (R-hat and ESS are ArviZ's): not the modelling
# stack, but ArviZ (docs/performance.md: 0.8 s -> 5.4 s for a new what-if, 0.8 s for a repeat)
MODELLING = ("pymc", "pytensor")

PROBE = textwrap.dedent(
    """
    import json, sys
    from simulator.cli import main
    try:
        code = main(sys.argv[2:])
    except SystemExit as exc:
        code = exc.code
    loaded = sorted({m.split(".")[0] for m in sys.modules})
    with open(sys.argv[1], "w") as fh:
        json.dump({"code": code, "loaded": loaded}, fh)
    """
)

SCENARIO = textwrap.dedent(
    """
    version: 1
    title: Tiny shop (test)
    period: week
    horizon: 4
    seed: 11
    funnel:
      visits: {label: Visits}
      view: {from: visits, label: Product views}
      buy: {from: view, label: Purchases}
    history: history.csv
    options:
      status_quo: {label: As is}
      better_page:
        label: A better product page
        changes:
          - lift: {stage: buy, factor: {lognormal_interval: [1.0, 1.1]}}
    key_results:
      - {id: purchases, metric: buy, target: +5%}
    model: {draws: 100, tune: 150, chains: 2}
    """
)


def _history(rows: int = 16) -> str:
    lines = ["period,visits,view,buy"]
    for i in range(rows):
        visits = 1000 + 37 * (i % 5)
        view = visits * 4 // 10 + (i % 3)
        lines.append(f"p{i:02d},{visits},{view},{view // 5 + (i % 2)}")
    return "\n".join(lines) + "\n"


def _probe(tmp: Path, env: dict[str, str], *args: str) -> dict:
    out = tmp / "probe.json"
    p = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), p.stderr
    result = json.loads(out.read_text())
    result["stderr"] = p.stderr
    return result


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny scenario and a private fit cache filled by one small fit of it."""
    d = tmp_path_factory.mktemp("lazy")
    (d / "tiny.yaml").write_text(SCENARIO)
    (d / "history.csv").write_text(_history())
    env = dict(os.environ, KRSIM_CACHE_DIR=str(d / "cache"))
    env.pop("KRSIM_NO_CACHE", None)
    fill = _probe(d, env, "run", "--json", str(d / "tiny.yaml"))
    assert fill["code"] == 0, fill["stderr"]
    assert "Fitting" in fill["stderr"]
    return d, env


def test_check_does_not_import_heavy_libraries(tiny):
    d, env = tiny
    r = _probe(d, env, "check", str(d / "tiny.yaml"))
    assert r["code"] == 0, r["stderr"]
    assert not set(HEAVY) & set(r["loaded"]), (
        f"krsim check imported {set(HEAVY) & set(r['loaded'])}"
    )


def test_help_does_not_import_heavy_libraries(tiny):
    d, env = tiny
    r = _probe(d, env, "--help")
    assert r["code"] == 0, r["stderr"]
    assert not set(HEAVY) & set(r["loaded"]), (
        f"krsim --help imported {set(HEAVY) & set(r['loaded'])}"
    )


def test_cache_hit_run_does_not_import_heavy_libraries(tiny):
    d, env = tiny
    # a what-if: another target, same data and model, so the cached fit must be reused
    (d / "what_if.yaml").write_text(SCENARIO.replace("target: +5%", "target: +8%"))
    r = _probe(d, env, "run", "--json", str(d / "what_if.yaml"))
    assert r["code"] == 0, r["stderr"]
    assert "Fitting" not in r["stderr"], "the what-if refitted instead of reusing the cached fit"
    heavy = set(MODELLING) & set(r["loaded"])
    assert not heavy, f"a cache-hit krsim run imported {sorted(heavy)}"
    # the same run again reads its judgement from the cache: nothing heavy at all
    again = _probe(d, env, "run", "--json", str(d / "what_if.yaml"))
    assert again["code"] == 0, again["stderr"]
    heavy = set(HEAVY) & set(again["loaded"])
    assert not heavy, f"a repeated cache-hit krsim run imported {sorted(heavy)}"
