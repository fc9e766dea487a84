"""Checks 1 and 6 for the default model since version 5 (`make validate`, about 10 minutes on
2 cores): calibration of P(met) and 80% coverage on the model's own iid worlds and on drifting
worlds, the levels free to drift (``iid+walk``) next to the constant level (``iid``). The same
run as ``scripts/validate_default.py`` (its table is in docs/validation.md, section 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    mod = load_script("validate_default")
    out = tmp_path_factory.mktemp("v") / "default.json"
    assert mod.main(["--worlds", "150", "--out", str(out)]) == 0
    return json.loads(out.read_text())["groups"]


def _show(g: dict) -> str:
    return json.dumps({k: v for k, v in g.items() if not isinstance(v, list)}, default=str)[:4000]


@pytest.mark.parametrize("family", ["iid", "drift"])
def test_default_is_calibrated_and_covers_like_the_oracle(groups, family):
    g = groups[f"{family}/iid+walk"]
    v = g["verdict"]
    assert v["calibrated"] and v["coverage_like_oracle"], _show(g)
    # sampler health: divergences in at most 2% of fits (at the suite's 2 x 400 draws)
    assert g["health"]["with_divergences"] <= 0.02 * g["health"]["fits"], _show(g)


@pytest.mark.xfail(
    strict=True,
    reason="known failure (docs/validation.md, section 7): the Brier score is 16% above the "
    "oracle's on iid worlds and 45% on drifting ones (criterion: within 10%)",
)
def test_default_brier_score_close_to_the_oracle(groups):
    assert all(groups[f"{f}/iid+walk"]["verdict"]["close_to_oracle"] for f in ("iid", "drift"))
