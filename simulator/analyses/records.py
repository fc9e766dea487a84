"""Records shared by the analyses' results: frozen containers and a belief about a change
parameter before and after data (the sampler's diagnostics are `engine.summary.Diagnostics`).

Every result of an analysis is a frozen dataclass read by attribute; its ``to_dict()`` writes the
`--json` object afresh from the fields on each call, and its ``to_frame()`` is a long-format
pandas table. Containers given to a result are frozen on construction (`freeze`): a mapping
becomes a read-only mapping and a list a tuple, so whoever holds a result cannot change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.summary import freeze
from ..io.scenario import Prior


def freeze_fields(record: Any, *names: str) -> None:
    """Freeze the named fields of a frozen dataclass, in its ``__post_init__``."""
    for name in names:
        object.__setattr__(record, name, freeze(getattr(record, name)))


QUANTILES90 = (0.05, 0.5, 0.95)


@dataclass(frozen=True)
class Belief:
    """A median and its 90% interval."""

    median: float
    interval90: tuple[float, float]

    @classmethod
    def of(cls, q: np.ndarray) -> Belief:
        """From the 5%, 50% and 95% quantiles."""
        return cls(float(q[1]), (float(q[0]), float(q[2])))

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "interval90": list(self.interval90)}


@dataclass(frozen=True)
class ChangeBelief:
    """A change parameter before the data (its prior) and after them (its posterior)."""

    prior: Belief
    posterior: Belief

    def to_dict(self) -> dict[str, Any]:
        return {"prior": self.prior.to_dict(), "posterior": self.posterior.to_dict()}


def change_beliefs(priors: Mapping[str, Prior], fit: Any) -> dict[str, ChangeBelief]:
    """Prior and posterior median and 90% interval of each named change parameter; a parameter
    the fit does not hold (not tested, not launched) keeps its prior."""
    from ..model.priors import quantiles

    out = {}
    for name, prior in priors.items():
        q_prior = quantiles(prior, list(QUANTILES90))
        q_post = np.quantile(fit.flat(name), QUANTILES90) if name in fit.arrays else q_prior
        out[name] = ChangeBelief(Belief.of(q_prior), Belief.of(q_post))
    return out
