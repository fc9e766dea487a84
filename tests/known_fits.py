"""Fits with known parameters, for tests of the layers after the model (no PyMC)."""

from __future__ import annotations

import numpy as np

from simulator.io.scenario import Structure
from simulator.model.posterior import Fit


def known_fit(
    scenario, rates: dict[str, float], traffic: float, *, shape: tuple[int, int], periods: int = 20
) -> Fit:
    """A 'posterior' that is a point mass: fixed traffic mean, fixed rates, no period variation,
    and (nearly) Poisson traffic; ``shape`` is (chains, draws per chain)."""
    st = Structure.of(scenario)
    mu = np.array([np.log(rates[n] / (1 - rates[n])) for n in st.nodes])
    return Fit(
        key="known",
        arrays={
            "level": np.full(shape, np.log(traffic)),
            "alpha": np.full(shape, 1e12),
            "rate_mu": np.broadcast_to(mu, (*shape, len(mu))).copy(),
            "rate_sigma": np.zeros((*shape, len(mu))),
        },
        diagnostics={"rhat_max": 1.0, "ess_bulk_min": 4000.0, "divergences": 0},
        n_periods=periods,
        nodes=st.nodes,
    )
