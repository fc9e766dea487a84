"""Interval elicitation: the maximum-entropy member of the family with the stated mass inside."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simulator.io.scenario import Prior
from simulator.model import priors


@pytest.mark.parametrize(
    ("lo", "hi", "mass", "reference"),
    [
        # reference values: PreliZ 0.28 `maxent(Beta(), lo, hi, mass)`
        (0.5, 0.85, 0.9, (12.1825, 5.9287)),
        (0.0, 0.2, 0.9, (1.5658, 14.1967)),
    ],
)
def test_beta_interval_is_maxent(lo, hi, mass, reference):
    family, (a, b) = priors.elicit(Prior(beta_interval=(lo, hi), mass=mass))
    assert family == "beta"
    d = stats.beta(a, b)
    assert d.cdf(hi) - d.cdf(lo) == pytest.approx(mass, abs=1e-6)
    assert (a, b) == pytest.approx(reference, rel=2e-3)
    # neighbouring Betas with the same mass inside have lower entropy
    from scipy.optimize import brentq

    others = []
    for a2 in (a * 0.9, a * 0.97, a * 1.03, a * 1.1):

        def gap(bb, a2=a2):
            return stats.beta(a2, bb).cdf(hi) - stats.beta(a2, bb).cdf(lo) - mass

        grid = np.linspace(b * 0.5, b * 2, 80)
        others += [
            (a2, brentq(gap, x, y))
            for x, y in zip(grid[:-1], grid[1:], strict=True)
            if gap(x) * gap(y) < 0
        ]
    assert others  # some neighbours are feasible (where less concentrated ones are not)
    for a2, b2 in others:
        assert stats.beta(a2, b2).entropy() < d.entropy()


def test_lognormal_interval_is_maxent():
    family, (mu, sigma) = priors.elicit(Prior(lognormal_interval=(0.8, 1.2)))
    assert family == "lognormal"
    d = stats.lognorm(s=sigma, scale=np.exp(mu))
    assert d.cdf(1.2) - d.cdf(0.8) == pytest.approx(0.9, abs=1e-6)
    assert (mu, sigma) == pytest.approx((-0.00546, 0.12234), abs=2e-4)  # PreliZ 0.28 maxent


def test_sampling_matches_the_distribution(rng):
    p = Prior(beta_interval=(0.5, 0.85))
    x = priors.sample(p, 20000, rng)
    inside = np.mean((x > 0.5) & (x < 0.85))
    assert abs(inside - 0.9) < 4 * np.sqrt(0.9 * 0.1 / 20000)
    assert np.all(priors.sample(Prior(fixed=0.3), 5, rng) == 0.3)
    assert Prior.model_validate(0.25).kind == "fixed"


@pytest.mark.parametrize(("lo", "hi"), [(0.85, 1.25), (0.9, 1.2), (1.0, 1.01)])
def test_lognormal_interval_holds_its_mass(lo, hi):
    _, (mu, sigma) = priors.elicit(Prior(lognormal_interval=(lo, hi)))
    d = stats.lognorm(s=sigma, scale=np.exp(mu))
    assert d.cdf(hi) - d.cdf(lo) == pytest.approx(0.9, abs=1e-6)


def test_uninformative_beta_interval_is_refused():
    with pytest.raises(ValueError, match="says nothing"):
        Prior(beta_interval=(0.0, 1.0))
