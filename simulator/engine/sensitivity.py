"""Which uncertain input drives the decision: the value of the rule actually used at each change parameter's 10th and
90th percentile, and the break-even value where the recommended option flips.

Fixing a parameter only changes its own option's simulation; the other options keep their values,
and common random numbers keep the comparison free of fresh Monte Carlo noise. Percentiles are
those of the parameter's current draws (the prior before an experiment, the posterior after).
The pick is evaluated at the 2nd, 10th, 90th and 98th percentiles; where it differs between two
neighbours the break-even is found by bisection (the rule's value is taken to be monotone in one
parameter between those points).
"""

from __future__ import annotations

import numpy as np

from ..io.scenario import change_priors
from . import decision
from .forecast import prepare, simulate_option

GRID = (0.02, 0.1, 0.9, 0.98)
BISECT_STEPS = 6


def sensitivity(scenario, fit, fc, ev, tg) -> list[dict]:
    """Per uncertain change parameter, the rule's value (the rule actually used, ``ev.rule``) of
    its option at the belief's 10th and 90th percentile, the pick there, and the break-even."""
    opts = list(ev.options)
    if len(opts) < 2:
        return []
    shared = prepare(scenario, fit)
    chains = fc.chains
    out = []
    for name, prior in change_priors(scenario).items():
        if prior.kind == "fixed":
            continue
        option = name.split(".", 1)[0]

        def at(x: float, option=option, name=name, shared=shared) -> decision.OptionEval:
            params = dict(fc.params)
            params[name] = np.full(fc.n_draws, x)
            counts = simulate_option(scenario, shared, option, params)
            return decision.evaluate_option(scenario, counts, tg, ev.rule)

        def pick(oe: decision.OptionEval, option=option) -> str:
            return decision.choose_option(scenario, {**ev.options, option: oe}, chains)

        grid = [float(q) for q in np.quantile(fc.params[name], GRID)]
        evals = [at(x) for x in grid]
        picks = [pick(v) for v in evals]
        lo, hi, v_lo, v_hi = grid[1], grid[2], evals[1], evals[2]
        break_even = None
        for i in range(len(grid) - 1):
            if picks[i] != picks[i + 1]:
                a, b = grid[i], grid[i + 1]
                pa = picks[i]
                for _ in range(BISECT_STEPS):
                    m = (a + b) / 2
                    if pick(at(m)) == pa:
                        a = m
                    else:
                        b = m
                break_even = {"value": (a + b) / 2, "below": picks[i], "above": picks[i + 1]}
                break
        value_low, value_high = float(v_lo.value.mean()), float(v_hi.value.mean())
        out.append(
            {
                "parameter": name,
                "option": option,
                "prior": prior.describe(),
                "low": lo,
                "high": hi,
                "value_low": value_low,
                "value_high": value_high,
                "pick_low": picks[1],
                "pick_high": picks[2],
                "swing": abs(value_high - value_low),
                "break_even": break_even,
            }
        )
    out.sort(key=lambda d: -d["swing"])
    return out
