"""The run summary as typed, frozen records: what `krsim run --json` prints, read by attribute.

Each record's fields are the JSON object's keys, in its order; ``to_dict`` writes the object
from them (a fresh dict on every call) and ``from_dict`` reads it back (a `summary.json`).
Containers are frozen on construction: a mapping becomes a read-only mapping, a list a tuple, so
a result cannot be changed by whoever holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from types import MappingProxyType
from typing import Any


def freeze(x: Any) -> Any:
    """Mappings as read-only mappings and lists as tuples, all the way down."""
    if isinstance(x, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in x.items()})
    if isinstance(x, list | tuple):
        return tuple(freeze(v) for v in x)
    return x


def _plain(x: Any) -> Any:
    """The JSON form of a field: records and mappings as dicts, tuples as lists."""
    if is_dataclass(x):
        return x.to_dict()
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return [_plain(v) for v in x]
    return x


class _Record:
    """A frozen record whose fields are the keys of its JSON object, in order."""

    __slots__ = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, freeze(getattr(self, f.name)))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: a new dict, every key in field order."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """The record of a JSON object whose values are plain (no nested record)."""
        return cls(**d)


@dataclass(frozen=True, slots=True)
class KeyResultSummary(_Record):
    """One key result under one option: its baseline, target and threshold, the predicted value
    (median and 80% interval), and P(met), P(70% of the way) and the expected grade, each with its
    Monte Carlo error."""

    baseline: float
    target: float
    met_at: float
    median: float
    interval80: tuple[float, float]
    p_met: float
    p_met_se: float
    p_progress70: float
    p_progress70_se: float
    expected_grade: float
    expected_grade_se: float


@dataclass(frozen=True, slots=True)
class OptionSummary(_Record):
    """One option: its label, P(all met) and the expected grade, and each key result."""

    label: str
    p_all_met: float
    p_all_met_se: float
    expected_grade: float
    expected_grade_se: float
    key_results: Mapping[str, KeyResultSummary]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OptionSummary:
        krs = {k: KeyResultSummary.from_dict(v) for k, v in d["key_results"].items()}
        return cls(**{**d, "key_results": krs})


@dataclass(frozen=True, slots=True)
class BaselineSummary(_Record):
    """Where a key result's baseline comes from: its value, how it was set, the window's first
    and last periods and their number, the words the output uses, and a note (English)."""

    value: float
    kind: str
    first: str | None
    last: str | None
    periods: int | None
    describe: str
    note: str | None


@dataclass(frozen=True, slots=True)
class TradeOff(_Record):
    """An option that beats the pick by `decision.TRADE_OFF` or more: on the primary key result's
    P(met) (``measure`` ``p_met``, ``kr`` that key result) or on the expected grade (``kr`` None)."""

    option: str
    kr: str | None
    measure: str
    pick: float
    other: float


@dataclass(frozen=True, slots=True)
class Guardrails(_Record):
    """P(broken) of each guardrail under each option, and the guardrails each option breaks
    (options that break none are left out)."""

    p_broken: Mapping[str, Mapping[str, float]]
    breaks: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Recommendation(_Record):
    """The pick and the figures behind it, all under the rule used (``rule`` is the scenario's;
    ``key_results_used``: those all_met reads, None under another rule)."""

    option: str
    rule: str
    rule_used: str
    key_results_used: tuple[str, ...] | None
    out_of_reach: tuple[str, ...]
    primary: str | None
    value: Mapping[str, float]
    value_se: Mapping[str, float]
    p_best: Mapping[str, float]
    expected_loss: Mapping[str, float]
    guardrails: Guardrails
    trade_offs: tuple[TradeOff, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recommendation:
        return cls(
            **{
                **d,
                "guardrails": Guardrails.from_dict(d["guardrails"]),
                "trade_offs": tuple(TradeOff.from_dict(t) for t in d["trade_offs"]),
            }
        )


@dataclass(frozen=True, slots=True)
class DriftProbability(_Record):
    """The posterior weight of a drifting level, for the traffic and for the rates (None where
    the model has no such choice)."""

    traffic: float | None
    rates: float | None


@dataclass(frozen=True, slots=True)
class ModelSummary(_Record):
    """The forecast's season, drift and trend choices (`posterior.describe`), and the sentence
    that says them."""

    seasonality: bool
    drift: str
    drift_probability: DriftProbability
    trend: bool
    rate_trend: bool
    sentence: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSummary:
        return cls(**{**d, "drift_probability": DriftProbability.from_dict(d["drift_probability"])})


@dataclass(frozen=True, slots=True)
class BreakEven(_Record):
    """The parameter value at which the pick flips, and the picks below and above it."""

    value: float
    below: str
    above: str


@dataclass(frozen=True, slots=True)
class SensitivityRow(_Record):
    """One uncertain change parameter: the rule's value of its option at the belief's 10th and
    90th percentile, the pick there, the swing between them, and where the pick flips."""

    parameter: str
    option: str
    prior: str
    low: float
    high: float
    value_low: float
    value_high: float
    pick_low: str
    pick_high: str
    swing: float
    break_even: BreakEven | None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SensitivityRow:
        be = d["break_even"]
        return cls(**{**d, "break_even": BreakEven.from_dict(be) if be else None})


@dataclass(frozen=True, slots=True)
class Diagnostics(_Record):
    """The sampler's checks and its warnings in words."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float | None
    divergences: int
    warnings: tuple[str, ...]
    # the quantities that decide, judged and sampled until sound (`engine.soundness`): their
    # worst R-hat and ESS, the draws and tuning used, each attempt; None when not judged
    decision: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, diag: Mapping[str, Any], warnings: list[str]) -> Diagnostics:
        """From a fit's diagnostics (`model.diagnostics`) and its warnings in words."""
        return cls(
            rhat_max=diag["rhat_max"],
            ess_bulk_min=diag["ess_bulk_min"],
            ess_tail_min=diag.get("ess_tail_min"),
            divergences=diag["divergences"],
            warnings=warnings,
            decision=diag.get("decision"),
        )


@dataclass(frozen=True, slots=True)
class Provenance(_Record):
    """What produced the result: the scenario file's hash, the versions, the time."""

    scenario_sha256: str
    krsim: str
    pymc: str
    created: str


@dataclass(frozen=True, slots=True)
class RunSummary(_Record):
    """The summary of `krsim run`: every option, the baselines, the recommendation, the model's
    choices, the sensitivity, the sampler's diagnostics and the provenance."""

    scenario: str
    title: str
    seed: int
    draws: int
    options: Mapping[str, OptionSummary]
    baselines: Mapping[str, BaselineSummary]
    recommendation: Recommendation
    model: ModelSummary
    sensitivity: tuple[SensitivityRow, ...]
    diagnostics: Diagnostics
    provenance: Provenance

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSummary:
        """The summary of a `krsim run --json` object (or a `summary.json` read back)."""
        return cls(
            **{
                **d,
                "options": {o: OptionSummary.from_dict(v) for o, v in d["options"].items()},
                "baselines": {k: BaselineSummary.from_dict(v) for k, v in d["baselines"].items()},
                "recommendation": Recommendation.from_dict(d["recommendation"]),
                "model": ModelSummary.from_dict(d["model"]),
                "sensitivity": tuple(SensitivityRow.from_dict(r) for r in d["sensitivity"]),
                "diagnostics": Diagnostics.from_dict(d["diagnostics"]),
                "provenance": Provenance.from_dict(d["provenance"]),
            }
        )
