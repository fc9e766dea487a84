"""The full validation suite (`make validate`, about 35 minutes on 2 cores).

Runs every check of validation/suite.py at full size once and asserts each. With
``KRSIM_VALIDATION_DOCS=docs`` it also rewrites docs/validation.md and its figures, as
``scripts/run_validation.py`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import load_script

import validation.suite as V

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _script():
    return load_script("run_validation")


@pytest.fixture(scope="module")
def suite():
    script = _script()
    results = V.run_suite(V.FULL, progress=lambda m: print(m, file=sys.stderr, flush=True))
    results["date"] = dt.date.today().isoformat()
    results["machine"] = script.machine()
    results["versions"] = script.versions()
    out = os.environ.get("KRSIM_VALIDATION_DOCS")
    if out:
        script.write_report(results, Path(out))
    return results


def _show(x) -> str:
    return json.dumps(x, indent=1, default=str)[:6000]


def _numbers(group: dict) -> dict:
    return {k: v for k, v in group.items() if not isinstance(v, list)}


def test_calibration(suite):
    """P(met) calibrated and the 80% intervals covering like the oracle's."""
    g = suite["calibration"][f"iid/{suite['default_period_effects']}"]
    assert g["verdict"]["calibrated"] and g["verdict"]["coverage_like_oracle"], _show(_numbers(g))


@pytest.mark.xfail(
    strict=True,
    reason="known failure (docs/validation.md, check 1): krsim's Brier score exceeds the "
    "oracle's by more than 10% on the model's own family",
)
def test_calibration_brier_score_close_to_the_oracle(suite):
    g = suite["calibration"][f"iid/{suite['default_period_effects']}"]
    assert g["verdict"]["close_to_oracle"], _show(_numbers(g))


def test_sbc(suite):
    assert suite["checks"]["sbc"], _show(
        {pe: {k: t["p_value"] for k, t in s["tests"].items()} for pe, s in suite["sbc"].items()}
    )


def test_recovery(suite):
    assert suite["checks"]["recovery"], _show(suite["recovery"])


def test_exact_agreement(suite):
    assert suite["checks"]["exact"], _show(suite["exact"])


def test_reported_mc_error_matches_seed_spread(suite):
    assert suite["checks"]["mc_error"], _show(suite["mc_error"])


@pytest.mark.xfail(
    strict=True,
    reason="known failure (docs/validation.md, check 6): with iid period effects, drift makes "
    "krsim overconfident (80% intervals held the truth 49% of the time, the oracle's 85%)",
)
def test_default_period_effects_are_calibrated_under_drift(suite):
    cal = suite["calibration"]
    assert suite["checks"]["drift"], _show(
        {k: _numbers(v) for k, v in cal.items() if k.startswith("drift")}
    )
