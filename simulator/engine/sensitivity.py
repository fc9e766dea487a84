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

from collections.abc import Callable

import numpy as np

from ..io.scenario import change_priors
from . import decision
from .forecast import prepare, simulate_option
from .summary import BreakEven, SensitivityRow

GRID = (0.02, 0.1, 0.9, 0.98)
BISECT_STEPS = 6


def sensitivity(scenario, fit, fc, ev, tg) -> tuple[SensitivityRow, ...]:
    """Per uncertain change parameter, the rule's value (the rule actually used, ``ev.rule``) of
    its option at the belief's 10th and 90th percentile, the pick there, and the break-even; the
    largest swing first."""
    if len(ev.options) < 2:
        return ()
    shared = prepare(scenario, fit)
    out = []
    for name, prior in change_priors(scenario).items():
        if prior.kind == "fixed":
            continue
        option = name.split(".", 1)[0]

        def at(x: float, option=option, name=name) -> decision.OptionEval:
            params = dict(fc.params)
            params[name] = np.full(fc.n_draws, x)
            counts = simulate_option(scenario, shared, option, params)
            return decision.evaluate_option(scenario, counts, tg, ev.rule)

        def pick(oe: decision.OptionEval, option=option) -> str:
            return decision.choose_option(scenario, {**ev.options, option: oe}, fc.chains)

        grid = [float(q) for q in np.quantile(fc.params[name], GRID)]
        evals = [at(x) for x in grid]
        picks = [pick(v) for v in evals]
        value_low, value_high = float(evals[1].value.mean()), float(evals[2].value.mean())
        out.append(
            SensitivityRow(
                parameter=name,
                option=option,
                prior=prior.describe(),
                low=grid[1],
                high=grid[2],
                value_low=value_low,
                value_high=value_high,
                pick_low=picks[1],
                pick_high=picks[2],
                swing=abs(value_high - value_low),
                break_even=break_even(grid, picks, lambda x, at=at, pick=pick: pick(at(x))),
            )
        )
    out.sort(key=lambda r: -r.swing)
    return tuple(out)


def break_even(
    grid: list[float], picks: list[str], pick_at: Callable[[float], str]
) -> BreakEven | None:
    """Where the pick first differs between two neighbouring grid points, the value between them
    at which it flips, by `BISECT_STEPS` bisections of ``pick_at`` (the pick with the parameter
    at a value); None when the pick is the same over the whole grid."""
    for i in range(len(grid) - 1):
        if picks[i] != picks[i + 1]:
            a, b = grid[i], grid[i + 1]
            for _ in range(BISECT_STEPS):
                m = (a + b) / 2
                if pick_at(m) == picks[i]:
                    a = m
                else:
                    b = m
            return BreakEven((a + b) / 2, picks[i], picks[i + 1])
    return None
