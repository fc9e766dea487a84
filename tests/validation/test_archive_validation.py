"""`krsim archive` on simulated archives with a known effect distribution (`make validate`).

The table is `scripts/validate_archive.py`'s (20 archives per truth and size; docs/validation.md
§8). Criteria: the 80% interval of a new experiment's true effect covers 75-85% of the truth;
the shrunk estimates have a lower mean squared error than the raw lifts; the rule the archive
ranks first is the truth's best in most archives (> 50%). Where a criterion fails in the measured
run it is marked as a known failure (strict), never loosened.
"""

from __future__ import annotations

import pytest
from conftest import load_script

pytestmark = pytest.mark.slow

REPS = 20


V = load_script("validate_archive")


@pytest.fixture(scope="module")
def table():
    return V.run(REPS, log=lambda m: None)


WIDE = (
    "with 5 experiments the hyperprior (tau ~ HalfNormal(0.1)) dominates and the predictive "
    "interval of a new effect is wider than the truth's: it over-covers (0.89 measured)"
)
COVERAGE_FAILS = {
    ("normal", 5): WIDE,
    ("spike", 5): WIDE,
    ("spike", 20): "a spike-and-slab truth fitted by the normal form LOO keeps at 20 experiments: "
    "the normal's central interval holds the spike and over-covers (0.857 measured)",
}


def _cases(fails: dict[tuple[str, int], str]):
    out = []
    for truth in V.TRUTHS:
        for n in V.SIZES:
            marks = (
                [pytest.mark.xfail(strict=True, reason=fails[(truth, n)])]
                if (truth, n) in fails
                else []
            )
            out.append(pytest.param(truth, n, marks=marks, id=f"{truth}-{n}"))
    return out


@pytest.mark.parametrize("truth, n", _cases(COVERAGE_FAILS))
def test_new_effect_interval_covers_80_percent(table, truth, n):
    assert 0.75 <= table[(truth, n)]["coverage"] <= 0.85, table[(truth, n)]


@pytest.mark.parametrize("truth, n", _cases({}))
def test_shrunk_estimates_beat_the_raw_lifts(table, truth, n):
    r = table[(truth, n)]
    assert r["mse_shrunk"] < r["mse_raw"], r


@pytest.mark.parametrize("truth, n", _cases({}))
def test_the_archive_ranks_the_truths_best_rule_first(table, truth, n):
    assert table[(truth, n)]["rule_match"] > 0.5, table[(truth, n)]
