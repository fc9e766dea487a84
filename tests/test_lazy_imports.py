"""`krsim check`, `--help` and a cache-hit `krsim run` must not import PyMC, PyTensor or ArviZ.

Their import alone takes seconds; a what-if that reuses the cached fit should start about as fast as
numpy and scipy. Each command runs in a fresh interpreter, which then lists the heavy packages it has
loaded. The fit cache holds the session's fit of the seed scenario (`conftest.seed_result`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

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


def _seed_copy(path: Path, first_target: str | None = None) -> Path:
    """The seed scenario with the session fit's sampling settings (`conftest.seed_result`), its
    history's path made absolute; with ``first_target``, that target for its first key result."""
    from conftest import SEED_SCENARIO

    raw = yaml.safe_load(SEED_SCENARIO.read_text())
    raw["history"] = str((SEED_SCENARIO.parent / raw["history"]).resolve())
    raw.setdefault("model", {}).update(
        {"chains": 2, "draws": 300, "tune": 400, "until_sound": False}
    )
    if first_target is not None:
        raw["key_results"][0]["target"] = first_target
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def seed_copy(tmp_path_factory, seed_result):
    """The seed scenario and the session's fit cache, which holds its fit (`seed_result`): a
    first `krsim run` of it is already a cache hit."""
    d = tmp_path_factory.mktemp("lazy")
    _seed_copy(d / "seed.yaml")
    env = dict(os.environ)
    env.pop("KRSIM_NO_CACHE", None)
    fill = _probe(d, env, "run", "--json", "-v", str(d / "seed.yaml"))
    assert fill["code"] == 0, fill["stderr"]
    assert "Fit read from the cache" in fill["stderr"], fill["stderr"]
    return d, env


def test_check_does_not_import_heavy_libraries(seed_copy):
    d, env = seed_copy
    r = _probe(d, env, "check", str(d / "seed.yaml"))
    assert r["code"] == 0, r["stderr"]
    assert not set(HEAVY) & set(r["loaded"]), (
        f"krsim check imported {set(HEAVY) & set(r['loaded'])}"
    )


def test_help_does_not_import_heavy_libraries(seed_copy):
    d, env = seed_copy
    r = _probe(d, env, "--help")
    assert r["code"] == 0, r["stderr"]
    assert not set(HEAVY) & set(r["loaded"]), (
        f"krsim --help imported {set(HEAVY) & set(r['loaded'])}"
    )


def test_cache_hit_run_does_not_import_heavy_libraries(seed_copy):
    d, env = seed_copy
    # a what-if: another target, same data and model, so the cached fit must be reused
    _seed_copy(d / "what_if.yaml", first_target="+30%")
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
