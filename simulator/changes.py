"""What each change kind does to rates: one definition, written against an array namespace so that
the numpy forecast and the PyTensor experiment likelihood share it.

``xp`` is ``numpy`` or ``pytensor.tensor``; every function is elementwise and broadcasts.
The forecast draws counts from these probabilities (binomial thinning); the likelihood uses them
as the binomial probabilities of the observed counts.
"""

from __future__ import annotations

from typing import Any


def expit(x: Any, xp: Any) -> Any:
    return 1 / (1 + xp.exp(-x))


def logit(p: Any, xp: Any) -> Any:
    return xp.log(p) - xp.log1p(-p)


def lift_rate(rate: Any, factor: Any, xp: Any) -> Any:
    """`lift` on a stage: its conversion rate times the factor, capped at 1."""
    return xp.minimum(rate * factor, 1.0)


def lift_traffic(mean: Any, factor: Any) -> Any:
    """`lift` on the root: the expected traffic times the factor."""
    return mean * factor


def set_rate(new_rate: Any, effect: Any, xp: Any) -> Any:
    """`set`: the stage's average rate (on the logit scale) replaced; period effects still apply."""
    return expit(logit(new_rate, xp) + effect, xp)


def gate_rates(rate: Any, exempt_share: Any, pass_: Any, overlap: Any) -> tuple[Any, Any, Any]:
    """`gate` before stage S with parent P, per user at P.

    Returns (share reaching S's conversion step, rate from P into S, rate from P into `counts_as`):
    the exempt pass freely, the others pass with probability ``pass``; those who pass convert to S
    at S's rate (the same as the exempt); passers who were not exempt add to `counts_as`, less the
    ``overlap`` who would have signed up anyway.
    """
    through = exempt_share + (1 - exempt_share) * pass_
    return through, through * rate, (1 - exempt_share) * pass_ * (1 - overlap)


def flow_rate(among_share: Any, rate: Any) -> Any:
    """`flow`: of the users at `from`, the share in `among` times the flow rate move into `to`."""
    return among_share * rate
