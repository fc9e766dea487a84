"""A reduced run of every validation check (`make test`); the full suite is `make validate`.

Sizes are small, so each criterion is the full suite's, with the tolerance its own Monte Carlo error
gives at this size (see validation/suite.py and docs/validation.md). Two criteria fail in the full
run (docs/validation.md): the Brier score's closeness to the oracle's and calibration on drifting
worlds. At this size neither can be told apart from a pass (a handful of worlds), so here they are
only run and reported; `make validate` asserts them, marked as known failures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import validation.suite as V
from simulator import model
from simulator.engine import decision


@pytest.fixture(scope="module")
def suite():
    return V.run_suite(V.REDUCED, seed=20260101)


def _show(x) -> str:
    return json.dumps(x, indent=1, default=str)[:4000]


def test_fitter_has_the_log_density_of_build_model(rng):
    """The compile-once fitter samples exactly the project's model: a model built on one history
    and given another (its ``pm.Data``) has the parameterisation and the log density of
    ``build_model`` on that other history."""
    for spec in ("iid", "ar1", "ar1+trend", "iid+walk"):
        scenario = V.Fitters().scenario(spec)
        fitter = V.Fitter(scenario, 20)
        first, _ = V.simulate_history(V.realistic_world(rng, 20), scenario, rng)
        while True:  # another history that the same compiled model serves
            history, _ = V.simulate_history(V.realistic_world(rng, 20), scenario, rng)
            if fitter.parameterisation(history) == fitter.parameterisation(first):
                break
        fitter.set_data(first)
        shared = fitter.set_data(history)
        ref = model.build_model(scenario, history)
        assert {v.name for v in shared.free_RVs} == {v.name for v in ref.free_RVs}
        lp_ref = ref.compile_logp(mode="FAST_COMPILE")
        lp = shared.compile_logp(mode="FAST_COMPILE")
        lp_first = model.build_model(scenario, first).compile_logp(mode="FAST_COMPILE")
        start = ref.initial_point()
        for _ in range(3):
            point = {k: v + 0.1 * rng.standard_normal(np.shape(v)) for k, v in start.items()}
            np.testing.assert_allclose(lp(point), lp_ref(point), rtol=1e-10)
            assert abs(lp(point) - lp_first(point)) > 1.0  # the data did change


def test_the_oracle_and_the_true_future_agree(rng):
    """The worlds' oracle is calibrated by construction: its PIT of the true future is uniform.

    No fitting: this checks the world simulator itself (AR state carried over, lifts, ratios).
    80% coverage over n PITs has sd sqrt(0.16 / n); the three key results of one future are
    correlated, so the tolerance uses n = the number of futures, not of PITs."""
    scenario = V.check_scenario()
    for kind in ("iid", "ar1", "trend"):
        inside, futures = [], 0
        for _ in range(100):
            world = V.realistic_world(rng, 26, kind)
            _, state = V.simulate_history(world, scenario, rng)
            for boost in (False, True):
                factor = V.priors.sample(V._boost_prior(), 1000, rng) if boost else None
                lift = "done" if boost else None
                oracle = V.simulate_future(world, scenario, state, 13, 1000, rng, factor, lift)
                truth = V.simulate_future(
                    world,
                    scenario,
                    state,
                    13,
                    1,
                    rng,
                    np.array([world.lift]) if boost else None,
                    lift,
                )
                futures += 1
                o = {s: c.sum(axis=1) for s, c in oracle.items()}
                t = {s: c.sum(axis=1) for s, c in truth.items()}
                for kr in scenario.key_results:
                    pit = V._pit(decision.kr_value(kr, o), decision.kr_value(kr, t)[0])
                    inside.append(0.1 < pit < 0.9)
        cov = float(np.mean(inside))
        assert abs(cov - 0.8) < V._z(V.Z_FAMILY, 3) * np.sqrt(0.16 / futures), (kind, cov)


def test_calibration(suite):
    """Calibrated and covering like the oracle (the Brier gap: see the module docstring)."""
    g = suite["calibration"][f"iid/{suite['default_period_effects']}"]
    v = g["verdict"]
    assert v["calibrated"] and v["coverage_like_oracle"], _show(
        {k: x for k, x in g.items() if not isinstance(x, list)}
    )


def test_sbc(suite):
    assert suite["checks"]["sbc"], _show({pe: s["tests"] for pe, s in suite["sbc"].items()})


def test_recovery(suite):
    assert suite["checks"]["recovery"], _show(suite["recovery"])


def test_exact_agreement(suite):
    ex = suite["exact"]
    assert suite["checks"]["exact"], _show(ex)
    assert all(c["grid_edge_mass"] < 1e-8 for c in ex["fitted_cases"]), _show(ex["fitted_cases"])


def test_reported_mc_error_matches_seed_spread(suite):
    assert suite["checks"]["mc_error"], _show(suite["mc_error"])


def test_drift_runs_both_models(suite):
    """Drift is judged in the full suite (see the module docstring); here both models fit every
    drifting world and report finite scores."""
    cal = suite["calibration"]
    for m in V.REDUCED.drift_models:
        g = cal[f"drift/{m}"]
        assert g["n_worlds"] == V.REDUCED.drift_worlds
        assert np.isfinite(g["brier_krsim"]) and np.isfinite(g["spiegelhalter_z"]), _show(g)
