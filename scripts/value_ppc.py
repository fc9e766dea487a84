"""Posterior predictive check of the value model on a scenario's history.

For every value stage: the share of observed periods whose total value, and whose value per unit,
falls inside the central 50%, 80% and 95% posterior predictive intervals (given each period's
observed count), with each period's fitted effect and with fresh period effects; and the
period-to-period sd of the value per unit in the data against the replicates'. Well-calibrated
intervals hold about 50%, 80% and 95% of the periods.

    python scripts/value_ppc.py scenarios/ecommerce_revenue.yaml
"""

from __future__ import annotations

import json
import sys

import numpy as np

from simulator import load_scenario, model
from simulator.io.data import read_history
from simulator.model import values


def main(path: str) -> None:
    s = load_scenario(path)
    h = read_history(s)
    fit = model.fit(s, h)
    stages = values.value_stages(s)
    n, v = h.value_matrix(stages)
    out = {}
    for i, stage in enumerate(stages):
        rng = np.random.default_rng([s.seed, i])
        out[stage] = values.predictive_check(fit.arrays, n[i], v[i], rng, stage_index=i)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
