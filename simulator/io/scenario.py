"""The scenario file (format v1): pydantic models, loading and validation with field-path messages.

Everything a user can get wrong is reported here, before any model work, as one line per problem:
``FILE: field.path: what is wrong``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
TERM_PATTERN = r"^[a-z][a-z0-9_]*(\.value)?$"  # a metric term: a stage's count or its total value


class InputError(Exception):
    """Invalid user input: one message per problem, each already naming the file and the field."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------------------- priors

PRIOR_KINDS = (
    "beta",
    "beta_interval",
    "lognormal_interval",
    "normal",
    "uniform",
    "fixed",
    "from_archive",
)


class ArchiveRef(_Model):
    """A prior learnt from the team's archive of past experiments (`simulator.model.archive`): the
    effect of a new experiment in ``category``, as the archive's fitted effect distribution
    predicts it (factor = 1 + effect)."""

    file: str = Field(description="the archive CSV, relative to the scenario file")
    category: str | None = Field(
        None, description="the archive's category the change belongs to (default: all of them)"
    )
    _base: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path:
        """The archive file, resolved against the scenario's directory."""
        p = Path(self.file)
        return p if p.is_absolute() or self._base is None else self._base / p


def _check_prior_values(kind: str, value: Any) -> None:
    """The parameters of a prior of ``kind`` (other than from_archive) make a distribution."""
    a, b = (value, None) if kind == "fixed" else value
    if kind == "beta" and (a <= 0 or b <= 0):
        raise ValueError(f"beta parameters must be positive, got [{a}, {b}]")
    if kind == "beta_interval":
        if not (0 <= a < b <= 1):
            raise ValueError(
                f"beta_interval must satisfy 0 <= lo < hi <= 1, got [{a:g}, {b:g}]"
                + _share_hint(a, b)
            )
        if a == 0 and b == 1:
            raise ValueError("beta_interval [0, 1] says nothing; use {uniform: [0, 1]}")
    if kind == "lognormal_interval" and not (0 < a < b):
        raise ValueError(f"lognormal_interval must satisfy 0 < lo < hi, got [{a}, {b}]")
    if kind == "normal" and b <= 0:
        raise ValueError(f"normal sigma must be positive, got {b}")
    if kind == "uniform" and not a < b:
        raise ValueError(f"uniform interval is empty: [{a}, {b}]")


class Prior(_Model):
    """An uncertain quantity. Exactly one kind; a bare number means ``{fixed: x}``."""

    beta: tuple[float, float] | None = Field(
        None, description="Beta(a, b) as [a, b], for a share or a rate"
    )
    beta_interval: tuple[float, float] | None = Field(
        None,
        description="[lo, hi]: the maximum-entropy Beta with `mass` (90%) of its probability in the interval; for shares and rates",
    )
    lognormal_interval: tuple[float, float] | None = Field(
        None,
        description="[lo, hi]: the lognormal with `mass` (90%) of its probability in the interval; for factors",
    )
    normal: tuple[float, float] | None = Field(None, description="Normal(mean, sd) as [mean, sd]")
    uniform: tuple[float, float] | None = Field(
        None, description="[lo, hi]: every value in the interval equally likely"
    )
    fixed: float | None = Field(
        None, description="a value known exactly (a bare number means the same)"
    )
    mass: float | None = Field(
        None,
        description="the probability inside a beta_interval or lognormal_interval, in [0.5, 1) (default 0.9)",
    )
    from_archive: ArchiveRef | None = Field(
        None,
        description="{file, category}: a new experiment's effect as the archive of past experiments predicts it; for factors",
    )
    with_: Prior | None = Field(
        None,
        alias="with",
        description="with from_archive: the team's own lognormal_interval, combined with the archive's by multiplying the densities",
    )

    @model_validator(mode="before")
    @classmethod
    def _number_is_fixed(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"fixed": value}
        return value

    @model_validator(mode="after")
    def _check(self) -> Prior:
        given = [k for k in PRIOR_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(PRIOR_KINDS)} (got {', '.join(given) or 'none'})"
            )
        kind = given[0]
        if self.with_ is not None and kind != "from_archive":
            raise ValueError("'with' goes only with from_archive")
        if kind == "from_archive":
            self._check_archive_belief()
        else:
            self._check_mass(kind)
            _check_prior_values(kind, getattr(self, kind))
        return self

    def _check_archive_belief(self) -> None:
        """A from_archive prior: no mass of its own; the team's belief as a lognormal_interval."""
        if self.mass is not None:
            raise ValueError("'mass' goes in the 'with' belief, not beside from_archive")
        if self.with_ is not None and self.with_.kind != "lognormal_interval":
            raise ValueError(
                "'with' takes the team's belief about the factor as a lognormal_interval, "
                f"got {self.with_.kind}"
            )

    def _check_mass(self, kind: str) -> None:
        """``mass`` goes with an interval prior and lies in [0.5, 1)."""
        if self.mass is None:
            return
        if kind not in ("beta_interval", "lognormal_interval"):
            raise ValueError("'mass' goes only with beta_interval or lognormal_interval")
        if not 0.5 <= self.mass < 1:
            raise ValueError(f"mass must be in [0.5, 1), got {self.mass}")

    @property
    def kind(self) -> str:
        return next(k for k in PRIOR_KINDS if getattr(self, k) is not None)

    @property
    def value(self) -> Any:
        return getattr(self, self.kind)

    @property
    def interval_mass(self) -> float:
        return 0.9 if self.mass is None else self.mass

    def support(self) -> tuple[float, float]:
        """The smallest interval that holds all of the prior's mass."""
        kind, v = self.kind, self.value
        if kind in ("beta", "beta_interval"):
            return (0.0, 1.0)
        if kind in ("lognormal_interval", "from_archive"):
            return (0.0, float("inf"))
        if kind == "normal":
            return (float("-inf"), float("inf"))
        if kind == "uniform":
            return (float(v[0]), float(v[1]))
        return (float(v), float(v))

    def describe(self) -> str:
        v = self.value
        if self.kind == "from_archive":
            what = f"a new experiment's effect as the archive {v.file} predicts it" + (
                f" (category {v.category})" if v.category else ""
            )
            if self.with_ is not None:
                what += f", combined with the team's belief ({self.with_.describe()})"
            return what
        if self.kind == "fixed":
            return f"fixed at {v:g}"
        if self.kind in ("beta_interval", "lognormal_interval"):
            return f"{self.interval_mass:.0%} sure it lies in [{v[0]:g}, {v[1]:g}]"
        if self.kind == "beta":
            return f"Beta({v[0]:g}, {v[1]:g})"
        if self.kind == "normal":
            return f"Normal(mean {v[0]:g}, sd {v[1]:g})"
        return f"anywhere in [{v[0]:g}, {v[1]:g}], all values equally likely"


FIXED_ZERO = Prior(fixed=0.0)


# --------------------------------------------------------------------------------------- funnel


class Value(_Model):
    """A stage's value: each unit of the stage carries a positive amount (money, time, ...)."""

    label: str | None = Field(None, description="what the value is, e.g. Revenue")
    unit: str | None = Field(None, description="its unit, e.g. EUR")
    column: str | None = Field(
        None, description="the value's column in the tables, when not `STAGE.value`"
    )


class Stage(_Model):
    from_: Id | None = Field(
        default=None,
        alias="from",
        description="the stage its users come from; left out for exactly one stage, the traffic entering the funnel",
    )
    label: str | None = Field(None, description="the stage's name in the output (default: its id)")
    value: Value | None = Field(
        None,
        description="an amount each unit of the stage carries (money, time); the history then has a `STAGE.value` column",
    )
    column: str | None = Field(
        None, description="the stage's column in the tables, when its header is not the stage id"
    )


class Segment(_Model):
    of: Id = Field(
        description="the stage at which the segment is observed; later stages inherit it"
    )
    label: str | None = Field(
        None, description="the segment's name in the output (default: its id)"
    )
    column: str | None = Field(
        None, description="the segment's column in the tables, when its header is not the id"
    )


# -------------------------------------------------------------------------------------- changes


class Lift(_Model):
    stage: Id = Field(
        description="the stage whose conversion rate (or traffic, for the root stage) is multiplied"
    )
    factor: Prior = Field(
        description="the multiplier; the rate is capped at 1 (usually a lognormal_interval)"
    )
    on: Literal["rate", "value"] = Field(
        "rate",
        description="`rate`: the conversion rate; `value`: the stage's average value per unit",
    )


class SetRate(_Model):
    stage: Id = Field(
        description="the stage whose average conversion rate is replaced (not the traffic stage)"
    )
    rate: Prior = Field(
        description="the new average rate; the period-to-period variation still applies around it"
    )


class Gate(_Model):
    before: Id = Field(
        description="the stage the new required step is placed in front of (between it and its parent)"
    )
    exempt: Id | None = Field(None, description="a segment whose users pass the gate freely")
    pass_: Prior = Field(
        alias="pass", description="the share of the other users who pass rather than leave"
    )
    counts_as: Id | None = Field(
        None,
        description="a stage to which the passers who were not exempt are added (e.g. sign-ups)",
    )
    overlap: Prior = Field(
        FIXED_ZERO,
        description="the share of those passers who would have been counted in `counts_as` anyway",
    )


class Flow(_Model):
    from_: Id = Field(alias="from", description="the stage whose users move")
    to: Id = Field(description="the stage they are added to (not one before `from` in the funnel)")
    among: str = Field(
        "all", description="which users of `from`: `all`, a segment id, or `not SEGMENT`"
    )
    rate: Prior = Field(description="the share of them added to `to`")

    @field_validator("among")
    @classmethod
    def _among(cls, v: str) -> str:
        v = " ".join(v.split())
        name = v[4:] if v.startswith("not ") else v
        if not re.match(ID_PATTERN, name):
            raise ValueError(f"among must be 'all', a segment id or 'not SEGMENT', got {v!r}")
        return v

    @property
    def among_segment(self) -> tuple[str | None, bool]:
        """(segment, negated); (None, False) for all users."""
        if self.among == "all":
            return None, False
        if self.among.startswith("not "):
            return self.among[4:], True
        return self.among, False


CHANGE_KINDS = ("lift", "set", "gate", "flow")


class Change(_Model):
    lift: Lift | None = Field(
        None, description="multiply a stage's conversion rate, its traffic or its value per unit"
    )
    set: SetRate | None = Field(None, description="replace a stage's average conversion rate")
    gate: Gate | None = Field(None, description="add a required step before a stage")
    flow: Flow | None = Field(
        None, description="move a share of one stage's users into another stage"
    )

    @model_validator(mode="after")
    def _one(self) -> Change:
        given = [k for k in CHANGE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a change is exactly one of {', '.join(CHANGE_KINDS)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in CHANGE_KINDS if getattr(self, k) is not None)

    @property
    def spec(self) -> Lift | SetRate | Gate | Flow:
        return getattr(self, self.kind)


class Option(_Model):
    label: str | None = Field(None, description="the option's name in the output (default: its id)")
    description: str | None = Field(
        None, description="a longer description, shown with the option's beliefs in the report"
    )
    changes: list[Change] = Field(
        [], description="what the option changes; none for the current product (the control)"
    )


# ------------------------------------------------------------------------------- key results

_TARGET_RE = re.compile(r"^\s*(>=|<=)?\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(%)?\s*$")


@dataclass(frozen=True)
class Target:
    op: Literal[">=", "<="]
    value: float
    relative: bool

    def text(self) -> str:
        if self.relative:
            return f"{self.op} {self.value:+g}%"
        return f"{self.op} {self.value:g}"


def parse_target(text: str | float) -> Target:
    if isinstance(text, bool):
        raise ValueError("target must be a number or a string like '+20%' or '>= 0.55'")
    if isinstance(text, int | float):
        return Target(">=", float(text), False)
    text = text.replace("≥", ">=").replace("≤", "<=")
    m = _TARGET_RE.match(text)
    if not m and re.match(r"^\s*(=>|=<|>|<|=)\s*[\d.+-]", text):
        raise ValueError(
            f"cannot read target {text!r}: the operators are '>=' and '<=' (a target is met at "
            "the value itself)"
        )
    if not m:
        raise ValueError(
            f"cannot read target {text!r}: write '+20%', '-5%', '>= 0.55' or '<= 1500'"
        )
    op, num, pct = m.groups()
    return Target(op or ">=", float(num), pct is not None)  # type: ignore[arg-type]


_GUARD_RE = re.compile(r"^\s*-?\s*(\d+\.?\d*|\.\d+)\s*%\s*$")


def parse_guardrail(v: bool | str | float | None) -> float | None:
    """The drop a guardrail tolerates, as a fraction of the baseline (``true``: none, ``'-2%'``:
    0.02); None for a key result that is not a guardrail."""
    if v is None or v is False:
        return None
    if v is True:
        return 0.0
    if isinstance(v, str):
        m = _GUARD_RE.match(v)
        if m:
            return float(m.group(1)) / 100
    raise ValueError(f"guardrail must be true, false or a tolerated drop such as '-2%', got {v!r}")


class KeyResult(_Model):
    id: Id = Field(
        description="the key result's id, used by `decision.weights`, `baseline:` and the output"
    )
    objective: str | None = Field(None, description="the objective it serves, shown in the report")
    label: str | None = Field(None, description="its name in the output")
    metric: str = Field(
        description="a stage's total (`booking`), a stage's total value (`purchase.value`), or a ratio of two totals (`booking / form_done`)"
    )
    target: str | float = Field(
        description='`+20%` or `-5%` relative to the baseline, `">= 0.75"` or `"<= 1500"` absolute; a bare number means `>=` it'
    )
    # the outcome key result: ties and near-ties go to the option best on it
    priority: Literal["primary"] | None = Field(
        None,
        description="`primary`: the outcome key result; near-ties go to the option best on it (one at most)",
    )
    # must not go backwards: true (no drop) or the drop tolerated, e.g. '-2%'
    guardrail: bool | str = Field(
        False,
        description="`true` (must not fall below its baseline) or the drop tolerated, e.g. `'-2%'`; an option likely to break it is not recommended",
    )

    @field_validator("guardrail")
    @classmethod
    def _guardrail(cls, v: bool | str) -> bool | str:
        parse_guardrail(v)
        return v

    @property
    def guardrail_drop(self) -> float | None:
        return parse_guardrail(self.guardrail)

    @property
    def primary(self) -> bool:
        return self.priority == "primary"

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        parts = [p.strip() for p in v.split("/")]
        if len(parts) > 2 or not all(re.match(TERM_PATTERN, p) for p in parts):
            raise ValueError(
                "metric must be a total ('stage' or 'stage.value') or a ratio of two totals "
                f"('stage_a / stage_b', 'stage.value / stage'), got {v!r}"
            )
        return " / ".join(parts)

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | float) -> str | float:
        parse_target(v)
        return v

    @property
    def parsed_target(self) -> Target:
        return parse_target(self.target)

    @property
    def stages(self) -> tuple[str, ...]:
        """The metric's terms: stage ids, or ``stage.value`` for a stage's total value."""
        return tuple(self.metric.split(" / "))

    @property
    def is_ratio(self) -> bool:
        return len(self.stages) == 2

    @property
    def on_value(self) -> bool:
        """The metric reads a total value (revenue, or a value per unit such as the basket)."""
        return any(t.endswith(".value") for t in self.stages)

    @property
    def is_rate(self) -> bool:
        """A ratio of two counts (a conversion rate or a share), printed as a percentage."""
        return self.is_ratio and not self.on_value


class Decision(_Model):
    rule: Literal["all_met", "expected_grade", "weighted"] = Field(
        "all_met",
        description="`all_met`: maximise P(every key result met); `expected_grade`: the expected OKR grade; `weighted`: the weighted share of key results met",
    )
    grading: Literal["committed", "aspirational"] = Field(
        "committed",
        description="`committed`: a key result counts as met at its target; `aspirational`: at 70% of the way from the baseline to it",
    )
    weights: dict[Id, float] | None = Field(
        None,
        description="a weight per key result id (0 leaves one out): weights the grade, and the share met under `weighted`",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None:
            if any(w < 0 for w in v.values()):
                raise ValueError("weights must not be negative")
            if sum(v.values()) <= 0:
                raise ValueError("weights must not all be zero")
        return v


class ModelBlock(_Model):
    """Model settings and the default priors of the history model (all documented in the README)."""

    @property
    def accept(self) -> float:
        """NUTS's target acceptance: higher (smaller steps) for AR(1) effects, whose posterior has
        narrow regions where rho approaches 1, and higher still for drifting levels (on drifting
        traffic, 22% of fits at the default draws had divergences at 0.9, 6% at 0.95, for 1.1x
        the time: docs/forecast_study.md)."""
        if self.target_accept is not None:
            return self.target_accept
        if self.period_effects == "ar1":
            return 0.9
        return 0.95 if self.walks else 0.8

    @property
    def walks(self) -> bool:
        """Whether the traffic's and the rates' levels may drift as random walks in the model
        (``drift: random_walk``, unless AR(1) period effects replace them)."""
        return self.drift == "random_walk" and self.period_effects != "ar1"

    trend: bool = Field(
        False,
        description="learn a linear trend in the log traffic (for steadily growing or shrinking traffic)",
    )
    rate_trend: bool = Field(
        False,
        description="learn a linear trend in every rate's logit, extrapolated through the quarter",
    )
    period_effects: Literal["iid", "ar1"] = Field(
        "iid",
        description="`iid`: independent period effects; `ar1`: persistent ones (a good week is followed by more), replacing the drift",
    )
    # a yearly profile for the traffic and every rate: auto = when the dates span two years
    seasonality: Literal["auto", "yearly", "none"] = Field(
        "auto",
        description="yearly profile of the traffic and every rate: `auto` when dated periods span two years, `yearly` always, `none` never",
    )
    season_terms: int = Field(
        4, ge=1, le=12, description="pairs of Fourier terms in the yearly profile"
    )
    season_sd: float = Field(
        0.5, gt=0, description="scale of the shrinkage prior on the seasonal terms (HalfNormal)"
    )
    # the traffic's level wanders as a random walk (with iid period effects; AR(1) replaces it)
    drift: Literal["random_walk", "none"] = Field(
        "random_walk",
        description="`random_walk`: the levels of the traffic and the rates may wander; `none`: constant levels",
    )
    drift_sd: float = Field(
        0.05, gt=0, description="scale of the prior on a walk's step sd per period (HalfNormal)"
    )
    drift_prob: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="prior probability that the traffic's level (and, separately, the rates' levels) drift",
    )
    draws: int = Field(
        1000, ge=50, le=100_000, description="posterior draws per chain (`--draws` overrides it)"
    )
    chains: int = Field(4, ge=1, le=16, description="number of sampler chains")
    tune: int = Field(1000, ge=50, le=100_000, description="tuning steps per chain")
    until_sound: bool = Field(
        True,
        description="sample more (twice, then four times the draws, then twice the tuning) until every key result's value and every option's P(met) reach R-hat ≤ 1.01 and an ESS of 400; `--draws` turns it off (exactly that many draws)",
    )
    sound_seconds: float = Field(
        300,
        gt=0,
        le=86_400,
        description="the most seconds spent fitting one model when sampling until sound (extensions included); past it krsim stops and says so",
    )
    sampler: Literal["auto", "nutpie", "pymc"] = Field(
        "auto",
        description="`auto`: nutpie when installed, else PyMC's NUTS; or force `nutpie` or `pymc`",
    )
    target_accept: float | None = Field(
        None,
        gt=0.5,
        lt=1.0,
        description="NUTS target acceptance (default: 0.95 with drifting levels, 0.9 with AR(1) effects, else 0.8)",
    )
    level_sd: float = Field(
        1.0,
        gt=0,
        description="sd of the Normal prior on the log mean traffic, around the history's log mean",
    )
    trend_sd: float = Field(
        0.05,
        gt=0,
        description="sd of the Normal(0, sd) prior on the traffic's trend per period (log scale)",
    )
    rate_trend_sd: float = Field(
        0.05,
        gt=0,
        description="sd of the Normal(0, sd) prior on a rate's trend per period (logit scale)",
    )
    alpha_shape: float = Field(
        2.0, gt=0, description="shape of the Gamma prior on the traffic's overdispersion `alpha`"
    )
    alpha_rate: float = Field(
        0.02, gt=0, description="rate of the Gamma prior on the traffic's overdispersion `alpha`"
    )
    rate_mu_sd: float = Field(
        2.5, gt=0, description="sd of the Normal(0, sd) prior on a rate's average (logit scale)"
    )
    rate_sigma_scale: float = Field(
        0.5,
        gt=0,
        description="scale of the HalfNormal prior on a rate's period-to-period sd (logit scale)",
    )
    rho_a: float = Field(
        2.0, gt=0, description="first parameter of the Beta prior on the rates' AR(1) coefficient"
    )
    rho_b: float = Field(
        2.0, gt=0, description="second parameter of the Beta prior on the rates' AR(1) coefficient"
    )
    traffic_sd_scale: float = Field(
        0.3,
        gt=0,
        description="AR(1) only: scale of the HalfNormal prior on the traffic's extra-Poisson sd",
    )
    traffic_share_a: float = Field(
        2.0,
        gt=0,
        description="AR(1) only: first parameter of the Beta prior on the share of the traffic's variance that persists",
    )
    traffic_share_b: float = Field(
        2.0,
        gt=0,
        description="AR(1) only: second parameter of the Beta prior on the share of the traffic's variance that persists",
    )
    traffic_rho_a: float = Field(
        6.0,
        gt=0,
        description="AR(1) only: first parameter of the Beta prior on the persistent traffic part's coefficient",
    )
    traffic_rho_b: float = Field(
        2.0,
        gt=0,
        description="AR(1) only: second parameter of the Beta prior on the persistent traffic part's coefficient",
    )
    value_mu_sd: float = Field(
        1.0,
        gt=0,
        description="sd of the Normal prior on the log mean value per unit, around the history's",
    )
    value_sigma_scale: float = Field(
        0.2,
        gt=0,
        description="scale of the HalfNormal prior on the sd of the log value per unit across periods",
    )
    value_share_a: float = Field(
        2.0,
        gt=0,
        description="first parameter of the Beta prior on the share of that variance from period effects",
    )
    value_share_b: float = Field(
        2.0,
        gt=0,
        description="second parameter of the Beta prior on the share of that variance from period effects",
    )


class Tracking(_Model):
    """Status thresholds of `krsim track`, on P(met by the end of the quarter): a key result is
    on track at or above ``at_risk_below``, at risk below it, off track below ``off_track_below``.

    Defaults: 0.7 and 0.3. At 0.7 or more the target is met in better than 2 quarters of 3, which is
    the level at which a team would commit to a KR; below 0.3 a miss is more than twice as likely as
    a hit, so recovering needs a change of course, not patience. Between them the outcome is open."""

    at_risk_below: float = Field(
        0.7, gt=0, lt=1, description="P(met) below which `krsim track` calls a key result at risk"
    )
    off_track_below: float = Field(
        0.3,
        gt=0,
        lt=1,
        description="P(met) below which it is off track (not above `at_risk_below`)",
    )
    actuals: str | None = Field(
        None,
        description="the quarter's actuals so far (CSV, relative to the scenario file): "
        "`krsim portfolio` tracks the scenario instead of running it",
    )
    option: Id | None = Field(
        None,
        description="the option the actuals were observed under (default: the current product)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Tracking:
        if self.off_track_below > self.at_risk_below:
            raise ValueError(
                f"off_track_below ({self.off_track_below:g}) must not exceed at_risk_below "
                f"({self.at_risk_below:g})"
            )
        return self


class Event(_Model):
    """A one-off shock in the history: periods ``first``..``last`` (labels, inclusive) get their
    own effect for the named stages and segments (all by default)."""

    label: str = Field(description="what happened (a campaign, an outage), shown in the output")
    first: str = Field(
        description="the first period of the event (a period label or date, inclusive)"
    )
    last: str = Field(description="the last period of the event (inclusive)")
    stages: list[Id] | None = Field(
        None, description="the stages and segments it affected (default: all)"
    )
    closed: bool = Field(
        False,
        description="the periods were real zeros (the business was closed), not a tracking outage",
    )

    @field_validator("first", "last", mode="before")
    @classmethod
    def _date_label(cls, v: Any) -> Any:
        """YAML reads an unquoted 2025-12-22 as a date: take it as its ISO label."""
        return v.isoformat() if isinstance(v, dt.date) else v


class HistorySource(_Model):
    """Where the history is and how to read it: ``history: {file: data/export.csv,
    period_column: Semaine, date_format: "%d/%m/%Y"}`` (the plain ``history: FILE`` form is the
    file alone)."""

    file: str = Field(description="the history table (CSV), relative to the scenario file")
    period_column: str | None = Field(
        None, description="the header of the period column, when it is not `period`"
    )
    date_format: str | None = Field(
        None,
        description="how the period dates are written (strftime codes, e.g. '%d/%m/%Y'), when "
        "the file does not settle it",
    )


class Experiment(_Model):
    data: str = Field(
        description="the results CSV, relative to the scenario file: `arm`, optional `period`, a count column per stage and segment"
    )
    control: Id | None = Field(
        None, description="the control arm (default: the option without changes)"
    )
    allocation: dict[Id, float] | None = Field(
        None,
        description="the planned share of the traffic per arm (default: equal shares), for the sample-ratio check",
    )


BASELINE_KINDS = ("last_periods", "same_period_last_year", "previous_quarter")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _window_end(v: Any, key: str) -> str:
    """A window's ``from`` or ``to``: a period label, a date as YAML reads it, or an ISO date."""
    import datetime as dt

    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str) and v.strip():
        return v.strip()
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise ValueError(f"a window's {key!r} must be a period label or a date, got {v!r}")


def _is_window(v: Any) -> bool:
    """Whether a `baseline:` mapping is one window for every key result (``{from: .., to: ..}``)
    rather than one entry per key result."""
    return isinstance(v, dict) and bool(v) and set(v) <= {"from", "to"}


class BaselineSpec(_Model):
    """One key result's baseline as the scenario gives it: a number (``given``), a named window
    of the history (``last_periods``, the default; ``same_period_last_year``;
    ``previous_quarter``) or an explicit one, ``{from: A, to: B}`` (``window``: period labels or
    dates, inclusive). ``shared``: written once for every key result (``baseline: FORM``)."""

    kind: Literal[
        "given", "last_periods", "same_period_last_year", "previous_quarter", "window"
    ] = Field(
        description="how the baseline is given: a number (`given`), a named window, or an explicit `window`"
    )
    value: float | None = Field(None, description="the baseline itself, for `given`")
    from_: str | None = Field(
        default=None,
        alias="from",
        description="the window's first period (label or date, inclusive)",
    )
    to: str | None = Field(None, description="the window's last period (label or date, inclusive)")
    shared: bool = Field(False, description="written once for every key result (`baseline: FORM`)")

    @model_validator(mode="before")
    @classmethod
    def _read(cls, v: Any) -> Any:
        if isinstance(v, BaselineSpec):
            return v
        forms = f"write a number, {', '.join(BASELINE_KINDS)} or {{from: DATE, to: DATE}}"
        if isinstance(v, bool) or v is None:
            raise ValueError(f"a baseline must be given, got {v!r}; {forms}")
        if isinstance(v, int | float):
            return {"kind": "given", "value": v}
        if isinstance(v, str):
            word = v.strip()
            if word in BASELINE_KINDS:
                return {"kind": word}
            try:
                return {"kind": "given", "value": float(word)}
            except ValueError:
                pass
            raise ValueError(f"unknown baseline {v!r}{did_you_mean(word, BASELINE_KINDS)}; {forms}")
        if isinstance(v, dict):
            extra = [k for k in v if k not in ("from", "to")]
            if extra:
                raise ValueError(
                    f"unknown key {extra[0]!r} in a baseline window"
                    f"{did_you_mean(str(extra[0]), ('from', 'to'))}; write {{from: A, to: B}}"
                )
            missing = [k for k in ("from", "to") if k not in v]
            if missing:
                raise ValueError(f"a baseline window needs both from and to (no {missing[0]!r})")
            a, b = _window_end(v["from"], "from"), _window_end(v["to"], "to")
            if _ISO_DAY.match(a) and _ISO_DAY.match(b) and a > b:
                raise ValueError(f"the window's from ({a}) comes after its to ({b})")
            return {"kind": "window", "from": a, "to": b}
        raise ValueError(f"cannot read a baseline from {v!r}; {forms}")

    def text(self) -> str:
        """The form as the scenario writes it."""
        if self.kind == "given":
            return f"{self.value:g}"
        if self.kind == "window":
            return f"{{from: {self.from_}, to: {self.to}}}"
        return self.kind


class Scenario(_Model):
    version: Literal[1] = Field(1, description="the scenario format's version")
    title: str = Field(description="the question the report answers")
    description: str | None = Field(
        None, description="a paragraph of context, shown under the title"
    )
    period: str = Field(
        "week",
        description="the unit of one history row and of the horizon: `day`, `week`, `month` (or another word for undated rows)",
    )
    horizon: int = Field(
        ge=1, le=10_000, description="periods simulated: the quarter (13 for weeks)"
    )
    seed: int = Field(2024, ge=0, description="random seed: same scenario and seed, same numbers")
    funnel: dict[Id, Stage] = Field(
        description="the stages by id; exactly one has no `from`: the traffic entering the funnel"
    )
    segments: dict[Id, Segment] = Field(
        {}, description="observed shares of a stage's users by id (inherited by later stages)"
    )
    history: str | HistorySource = Field(
        description="the history table (CSV), relative to the scenario file: `period`, then a count column per stage and segment"
    )
    options: dict[Id, Option] = Field(
        description="the choices compared, by id; one with no `changes` is the current product"
    )
    key_results: list[KeyResult] = Field(description="the key results and their targets")
    decision: Decision = Field(Decision(), description="how the options are compared")
    model: ModelBlock = Field(
        ModelBlock(), description="model settings and the default priors of the history model"
    )
    # per key result (ids checked in cross_check); `baseline: FORM` is stored as that form for
    # every key result, `baseline: last_periods` (the default) as None
    baseline: dict[str, BaselineSpec] | None = Field(
        None,
        description="`last_periods` (default), `same_period_last_year`, `previous_quarter`, `{from: DATE, to: DATE}`, or per key result one of these or a number",
    )
    experiment: Experiment | None = Field(
        None, description="an experiment's results, for `krsim compare`"
    )
    tracking: Tracking = Field(Tracking(), description="status thresholds of `krsim track`")
    events: list[Event] = Field(
        [],
        description="one-off shocks in the history (campaigns, outages): their periods get their own effects",
    )
    language: Literal["en", "fr"] = Field(
        "en",
        description="the language of the terminal output and the report pages (en or fr; "
        "`--lang` overrides it); the JSON stays English",
    )

    _source: Path | None = PrivateAttr(default=None)
    _text: bytes = PrivateAttr(default=b"")

    @field_validator("funnel", "options")
    @classmethod
    def _non_empty(cls, v: dict) -> dict:
        if not v:
            raise ValueError("must list at least one entry")
        return v

    @field_validator("key_results")
    @classmethod
    def _some_krs(cls, v: list) -> list:
        if not v:
            raise ValueError("must list at least one key result")
        return v

    @field_validator("baseline", mode="before")
    @classmethod
    def _one_baseline_for_all(cls, v: Any, info: Any) -> Any:
        """``baseline: FORM`` (a named window or ``{from, to}``): that form for every key result."""
        if v is None or (isinstance(v, dict) and not _is_window(v)):
            return v
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise ValueError(
                f"a number is a baseline of one key result: write baseline: {{KR_ID: {v:g}}}"
            )
        try:
            spec = BaselineSpec.model_validate(v)
        except ValidationError as err:
            raise ValueError(str(err.errors()[0]["msg"]).removeprefix("Value error, ")) from None
        if spec.kind == "last_periods":
            return None
        shared = spec.model_copy(update={"shared": True})
        return {kr.id: shared for kr in info.data.get("key_results", [])}

    # ---- derived, convenient views
    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def id(self) -> str:
        return self._source.stem if self._source else re.sub(r"\W+", "_", self.title.lower())

    @property
    def base_dir(self) -> Path:
        return self._source.parent if self._source else Path.cwd()

    def resolve(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def history_source(self) -> HistorySource:
        """The history's file and reading options (``history: FILE`` is the file alone)."""
        h = self.history
        return h if isinstance(h, HistorySource) else HistorySource(file=h)

    def column_of(self, name: str) -> str:
        """The header a stage, segment or ``STAGE.value`` column has in the tables."""
        if name.endswith(".value") and name.removesuffix(".value") in self.funnel:
            v = self.funnel[name.removesuffix(".value")].value
            return v.column if v is not None and v.column else name
        node = self.funnel.get(name) or self.segments.get(name)
        return node.column if node is not None and node.column else name

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._text).hexdigest()

    @property
    def root(self) -> str:
        return next(s for s, st in self.funnel.items() if st.from_ is None)

    def parent(self, stage: str) -> str | None:
        return self.funnel[stage].from_

    def ancestors(self, stage: str) -> list[str]:
        """The stage itself, then its parent, up to the root."""
        out = [stage]
        while (p := self.funnel[out[-1]].from_) is not None and p not in out:
            out.append(p)
        return out

    def stage_label(self, stage: str) -> str:
        if stage.endswith(".value") and stage.removesuffix(".value") in self.funnel:
            st = stage.removesuffix(".value")
            v = self.funnel[st].value
            what = v.label if v is not None and v.label else "value"
            return f"{what} per {self.funnel[st].label or st}"
        if stage in self.funnel:
            return self.funnel[stage].label or stage
        return self.segments[stage].label or stage

    @property
    def control_option(self) -> str:
        """The option without changes (the current product): the first such, else the first option."""
        if self.experiment and self.experiment.control:
            return self.experiment.control
        return next(
            (o for o, opt in self.options.items() if not opt.changes), next(iter(self.options))
        )

    def with_overrides(self, *, seed: int | None = None, draws: int | None = None) -> Scenario:
        upd: dict[str, Any] = {}
        if seed is not None:
            upd["seed"] = seed
        if draws is not None:  # exactly that many draws: not extended until sound
            upd["model"] = self.model.model_copy(update={"draws": draws, "until_sound": False})
        new = self.model_copy(update=upd)
        new._source, new._text = self._source, self._text
        return new


def change_param_names(option_id: str, option: Option) -> list[list[tuple[str, str]]]:
    """For each change of an option, its (field, parameter name) pairs, named as docs/design.md §4 says:
    ``<option>.<kind>.<field>``, or ``<option>.<kind>[i].<field>`` when the option has several
    changes of one kind."""
    kinds = [c.kind for c in option.changes]
    seen: dict[str, int] = {}
    out = []
    for c in option.changes:
        i = seen.get(c.kind, 0)
        seen[c.kind] = i + 1
        stem = f"{option_id}.{c.kind}" + (f"[{i}]" if kinds.count(c.kind) > 1 else "")
        fields = {
            "lift": ["factor"],
            "set": ["rate"],
            "gate": ["pass", "overlap"],
            "flow": ["rate"],
        }
        out.append([(f, f"{stem}.{f}") for f in fields[c.kind]])
    return out


def change_priors(scenario: Scenario) -> dict[str, Prior]:
    """Every change parameter of every option, by its name (docs/design.md §4)."""
    out: dict[str, Prior] = {}
    for oid, opt in scenario.options.items():
        for change, names in zip(opt.changes, change_param_names(oid, opt), strict=True):
            for field, name in names:
                spec = change.spec
                out[name] = getattr(spec, "pass_" if field == "pass" else field)
    return out


# ----------------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    mapping = loader.construct_mapping(node, deep)
    # YAML 1.1 reads the bare key `on` (as in `lift: {stage: s, on: value}`) as the boolean true;
    # a key written as a word stays the word.
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:bool" and key_node.value.lower() == "on":
            mapping[key_node.value] = mapping.pop(True)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: bytes | str) -> Any:
    """YAML text read as a scenario file is: safe tags only, a key given twice refused, a bare
    key `on` kept as the word (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _fmt_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(tp) for t in _unwrap(a) if t is not type(None)]
    return [tp]


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """Which model class validates the mapping at ``loc`` (to suggest its field names)."""
    current: list[Any] = [Scenario]
    for part in loc:
        nxt: list[Any] = []
        for tp in current:
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                for name, f in tp.model_fields.items():
                    if part in (name, f.alias):
                        nxt.extend(_unwrap(f.annotation))
            elif origin is dict and isinstance(part, str):
                nxt.extend(_unwrap(typing.get_args(tp)[1]))
            elif origin in (list, tuple) and isinstance(part, int):
                nxt.extend(_unwrap(typing.get_args(tp)[0]))
        current = nxt
    models = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if models else None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _line(text: bytes | str, n: int) -> str:
    """Line ``n`` (0-based) of the scenario text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    lines = text.splitlines()
    return lines[n] if 0 <= n < len(lines) else ""


def _share_hint(lo: float, hi: float) -> str:
    """For an interval written in percent where a share is expected: the share it meant."""
    if 0 <= lo <= hi <= 100 and hi > 1:
        if lo == hi:
            return f" (did you mean {lo / 100:g}?)"
        return f" (did you mean [{lo / 100:g}, {hi / 100:g}]?)"
    return ""


def _stem(w: str) -> str:
    w = w.lower().strip()
    for suffix in ("ings", "ing", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def suggest_stage(word: str, scenario: Scenario) -> str:
    """' (did you mean 'booking'? its label is “Appointments booked”)': the stages whose id or
    label, or a word of them, is closest to ``word`` (plurals and -ed/-ing forms alike); several
    when they match equally well."""

    def close(a: str, b: str) -> float:
        return max(
            difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio(),
            difflib.SequenceMatcher(None, _stem(a), _stem(b)).ratio(),
        )

    words = [word, *word.replace("_", " ").split()]
    scores = {}
    for sid, st in scenario.funnel.items():
        forms = [sid, sid.replace("_", " "), *sid.split("_")]
        if st.label:
            forms += [st.label, *re.findall(r"[A-Za-z]+", st.label)]
        scores[sid] = max(close(w, f) for w in words for f in forms if len(f) >= 3 or f == sid)
    ranked = sorted(scores, key=lambda k: -scores[k])
    if not ranked or scores[ranked[0]] < 0.6:
        return ""
    top = [k for k in ranked if scores[k] >= scores[ranked[0]] - 0.02][:3]

    def named(sid: str) -> str:
        label = scenario.funnel[sid].label
        if label and _stem(label) != _stem(sid.replace("_", " ")):
            return f"{sid!r} (“{label}”)"
        return f"{sid!r}"

    if len(top) == 1 and named(top[0]) == repr(top[0]):
        return f" (did you mean {top[0]!r}?)"
    if len(top) == 1:
        label = scenario.funnel[top[0]].label
        return f" (did you mean {top[0]!r}? its label is “{label}”)"
    return f" (did you mean {' or '.join(named(k) for k in top)}?)"


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _pydantic_problems(err: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        # Pydantic reports union branches and model-validator internals in the location; drop them.
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
        if "[key]" in loc:  # invalid dict keys (ids) are reported by _check_keys_are_ids
            continue
        kind = e["type"]
        if kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            key = str(loc[-1])
            hint = did_you_mean(key, _field_names(model)) if model else ""
            allowed = f"; allowed: {', '.join(_field_names(model))}" if model and not hint else ""
            problems.append((_fmt_loc(loc), f"unknown key {key!r}{hint}{allowed}"))
            continue
        msg = str(e["msg"])
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if kind == "string_pattern_mismatch":
            msg = f"{e.get('input')!r} is not a valid id: use lowercase letters, digits and _, starting with a letter"
        elif kind == "missing":
            msg = "required field is missing"
        elif (
            "input" in e
            and kind not in ("value_error",)
            and not isinstance(e["input"], dict | list)
        ):
            msg = f"{msg[0].lower()}{msg[1:]}, got {e['input']!r}"
        else:
            msg = msg[0].lower() + msg[1:]
        problems.append((_fmt_loc(loc), msg))
    # a dict key that is not a valid id shows up as `[key]` location; keep messages unique
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _metric_label_hint(raw: dict, loc: str) -> str:
    """For a metric written with stage labels ('Appointments booked'): the ids to write instead."""
    m = re.fullmatch(r"key_results\[(\d+)\]\.metric", loc)
    krs, funnel = raw.get("key_results"), raw.get("funnel")
    if not m or not isinstance(krs, list) or not isinstance(funnel, dict):
        return ""
    kr = krs[int(m.group(1))] if int(m.group(1)) < len(krs) else None
    if not isinstance(kr, dict) or not isinstance(kr.get("metric"), str):
        return ""
    by_label = {
        str(st.get("label", "")).strip().lower(): sid
        for sid, st in funnel.items()
        if isinstance(st, dict) and st.get("label")
    }
    parts = [p.strip().lower() for p in kr["metric"].split("/")]
    ids = [by_label.get(p, p if p in funnel else None) for p in parts]
    if all(ids) and len(ids) <= 2:
        return f" (did you mean {' / '.join(ids)!r}? metrics use stage ids, not labels)"
    return ""


def _check_keys_are_ids(raw: dict) -> list[tuple[str, str]]:
    out = []
    for block in ("funnel", "segments", "options"):
        v = raw.get(block)
        if isinstance(v, dict):
            for k in v:
                if not isinstance(k, str) or not re.match(ID_PATTERN, k):
                    out.append(
                        (
                            f"{block}.{k}",
                            f"{k!r} is not a valid id: use lowercase letters, digits and _, starting with a letter",
                        )
                    )
    return out


Problems = list[tuple[str, str]]  # (field path, what is wrong), in the order they are reported


def _unknown_stage(s: Scenario, path: str, name: str | None) -> Problems:
    """The problem of a reference to a stage that does not exist (none for no reference)."""
    if name is None or name in s.funnel:
        return []
    return [(path, f"unknown stage {name!r}{suggest_stage(name, s)}")]


def _is_stage(s: Scenario, name: str | None) -> bool:
    return name is not None and name in s.funnel


def _lineage(s: Scenario, stage: str, funnel_ok: bool) -> list[str]:
    """The stage and the stages above it (only the stage itself while the funnel is broken)."""
    return s.ancestors(stage) if funnel_ok else [stage]


def _check_funnel(s: Scenario) -> Problems:
    """One root, parents that exist, and (when those hold) no cycle."""
    out: Problems = []
    stages = s.funnel
    roots = [k for k, st in stages.items() if st.from_ is None]
    if len(roots) != 1:
        out.append(
            (
                "funnel",
                f"exactly one stage must have no 'from' (the traffic entering the funnel); found {len(roots)}: {', '.join(roots) or 'none'}",
            )
        )
    for k, st in stages.items():
        out += _unknown_stage(s, f"funnel.{k}.from", st.from_)
    return out or _funnel_cycle(s)


def _funnel_cycle(s: Scenario) -> Problems:
    """The first stage from which walking up the parents does not reach the root."""
    stages = s.funnel
    for k in stages:
        seen = [k]
        while (p := stages[seen[-1]].from_) is not None:
            if p in seen:
                return [(f"funnel.{k}.from", f"the funnel has a cycle: {' -> '.join([*seen, p])}")]
            seen.append(p)
    return []


def _check_segments(s: Scenario) -> Problems:
    """Segment ids apart from stage ids; each observed at a stage that exists."""
    out: Problems = []
    for g, seg in s.segments.items():
        if g in s.funnel:
            out.append(
                (
                    f"segments.{g}",
                    f"{g!r} is already a stage id; segment and stage ids share the history columns",
                )
            )
        out += _unknown_stage(s, f"segments.{g}.of", seg.of)
    return out


def _segment_ref(
    s: Scenario, path: str, name: str, at_stage: str | None, role: str, funnel_ok: bool
) -> Problems:
    """A segment named by a change: it exists and is observed at ``at_stage`` or above it."""
    segs = s.segments
    if name not in segs:
        return [(path, f"unknown segment {name!r}{did_you_mean(name, segs)}")]
    if (
        at_stage is not None
        and at_stage in s.funnel
        and segs[name].of not in _lineage(s, at_stage, funnel_ok)
    ):
        return [
            (
                path,
                f"segment {name!r} is observed at {segs[name].of!r}, which is not {role} {at_stage!r} or above it",
            )
        ]
    return []


def _probability(path: str, p: Prior) -> Problems:
    """A prior of a probability: its support within [0, 1], not an archive's factor."""
    lo, hi = p.support()
    if p.kind == "from_archive":
        return [
            (
                path,
                "from_archive gives a factor (1 + a relative lift) and goes on a lift's "
                "factor; a probability needs a beta_interval",
            )
        ]
    if p.kind in ("normal", "lognormal_interval") or lo < 0 or hi > 1:
        hint = _share_hint(lo, hi) if p.kind in ("uniform", "fixed") else ""
        return [
            (
                path,
                f"a probability must lie in [0, 1]; this prior ({p.describe()}) allows values "
                f"outside it{hint}",
            )
        ]
    return []


def _factor(path: str, p: Prior) -> Problems:
    """A prior of a factor: never negative."""
    lo, _ = p.support()
    if lo < 0:
        return [
            (
                path,
                f"a factor must not be negative; this prior ({p.describe()}) allows it (use lognormal_interval)",
            )
        ]
    return []


Edges = list[tuple[str, str, str]]  # (from stage, to stage, field path) a change adds users along


def _check_lift(s: Scenario, base: str, sp: Lift, funnel_ok: bool) -> tuple[Problems, Edges]:
    out = _unknown_stage(s, f"{base}.stage", sp.stage) + _factor(f"{base}.factor", sp.factor)
    if _is_stage(s, sp.stage) and sp.on == "value" and s.funnel[sp.stage].value is None:
        out.append(
            (
                f"{base}.on",
                f"stage {sp.stage!r} has no value to lift; give it one in the funnel "
                f"({sp.stage}: {{..., value: {{label: ..., unit: ...}}}})",
            )
        )
    return out, []


def _check_set(s: Scenario, base: str, sp: SetRate, funnel_ok: bool) -> tuple[Problems, Edges]:
    out = _unknown_stage(s, f"{base}.stage", sp.stage)
    if _is_stage(s, sp.stage) and s.funnel[sp.stage].from_ is None:
        out.append(
            (
                f"{base}.stage",
                f"{sp.stage!r} is the traffic stage and has no rate to set (use lift)",
            )
        )
    return out + _probability(f"{base}.rate", sp.rate), []


def _check_gate(s: Scenario, base: str, sp: Gate, funnel_ok: bool) -> tuple[Problems, Edges]:
    out = _unknown_stage(s, f"{base}.before", sp.before)
    ok = _is_stage(s, sp.before)
    parent = s.funnel[sp.before].from_ if ok else None
    if ok and parent is None:
        out.append(
            (
                f"{base}.before",
                f"{sp.before!r} is the traffic stage; a gate needs a stage before it",
            )
        )
    if sp.exempt is not None:
        role = "the gate's parent stage"
        out += _segment_ref(s, f"{base}.exempt", sp.exempt, parent, role, funnel_ok)
    out += _probability(f"{base}.pass", sp.pass_) + _probability(f"{base}.overlap", sp.overlap)
    out += _unknown_stage(s, f"{base}.counts_as", sp.counts_as)
    edges = []
    if _is_stage(s, sp.counts_as) and parent is not None:
        edges.append((parent, sp.counts_as, f"{base}.counts_as"))
    return out, edges


def _check_flow(s: Scenario, base: str, sp: Flow, funnel_ok: bool) -> tuple[Problems, Edges]:
    out = _unknown_stage(s, f"{base}.from", sp.from_) + _unknown_stage(s, f"{base}.to", sp.to)
    ok_from, ok_to = _is_stage(s, sp.from_), _is_stage(s, sp.to)
    seg, _neg = sp.among_segment
    if seg is not None:
        at = sp.from_ if ok_from else None
        out += _segment_ref(s, f"{base}.among", seg, at, "the flow's 'from' stage", funnel_ok)
    out += _probability(f"{base}.rate", sp.rate)
    return out, [(sp.from_, sp.to, f"{base}.to")] if ok_from and ok_to else []


_CHANGE_CHECKS = {Lift: _check_lift, SetRate: _check_set, Gate: _check_gate, Flow: _check_flow}


def _check_options(s: Scenario, funnel_ok: bool) -> Problems:
    """Every change of every option; then the users a gate or a flow adds: never to a stage
    above the one they come from."""
    out: Problems = []
    edges: Edges = []
    for oid, opt in s.options.items():
        for i, ch in enumerate(opt.changes):
            sp = ch.spec
            problems, added = _CHANGE_CHECKS[type(sp)](
                s, f"options.{oid}.changes[{i}].{ch.kind}", sp, funnel_ok
            )
            out += problems
            edges += added
    if funnel_ok:
        for src, dst, path in edges:
            if dst in s.ancestors(src):
                out.append(
                    (
                        path,
                        f"{dst!r} comes before {src!r} in the funnel, so users cannot be added to it from there",
                    )
                )
    return out


def _check_metric(s: Scenario, i: int, kr: KeyResult) -> Problems:
    """The stages of a key result's metric exist; a ``STAGE.value`` term's stage has a value."""
    out: Problems = []
    for term in kr.stages:
        st = term.removesuffix(".value")
        out += _unknown_stage(s, f"key_results[{i}].metric", st)
        if _is_stage(s, st) and term != st and s.funnel[st].value is None:
            out.append(
                (
                    f"key_results[{i}].metric",
                    f"{term!r}: stage {st!r} has no value; give it one in the funnel "
                    f"({st}: {{..., value: {{label: ..., unit: ...}}}}) and a "
                    f"{term!r} column in the history",
                )
            )
    return out


def _check_rate_target(s: Scenario, i: int, kr: KeyResult, funnel_ok: bool) -> Problems:
    """An absolute target of a conversion rate (a stage over one above it) lies in [0, 1]."""
    t = kr.parsed_target
    if (
        not kr.is_rate
        or t.relative
        or 0 <= t.value <= 1
        or not all(x in s.funnel for x in kr.stages)
        or not all(x in _lineage(s, kr.stages[0], funnel_ok) for x in kr.stages[1:])
    ):
        return []
    hint = (
        f" (did you mean {t.value / 100:.2f}? write '{t.op} {t.value / 100:.2f}')"
        if 1 < t.value <= 100
        else ""
    )
    return [
        (
            f"key_results[{i}].target",
            f"a conversion rate target must lie in [0, 1], got {t.value:g}{hint}",
        )
    ]


def _check_key_results(s: Scenario, funnel_ok: bool) -> Problems:
    """Unique ids, metrics on existing stages, rate targets in [0, 1], at most one primary."""
    out: Problems = []
    kr_ids = [kr.id for kr in s.key_results]
    for i, kr in enumerate(s.key_results):
        if kr_ids.count(kr.id) > 1 and kr_ids.index(kr.id) != i:
            out.append((f"key_results[{i}].id", f"duplicate key result id {kr.id!r}"))
        out += _check_metric(s, i, kr) + _check_rate_target(s, i, kr, funnel_ok)
    primary = [i for i, kr in enumerate(s.key_results) if kr.primary]
    for i in primary[1:]:
        out.append(
            (
                f"key_results[{i}].priority",
                f"only one key result can be primary; {s.key_results[primary[0]].id!r} already is",
            )
        )
    return out


def _check_decision(s: Scenario) -> Problems:
    """Weights name the key results, one each; the weighted rule has weights."""
    out: Problems = []
    kr_ids = [kr.id for kr in s.key_results]
    if s.decision.weights is not None:
        for k in s.decision.weights:
            if k not in kr_ids:
                out.append(
                    (f"decision.weights.{k}", f"unknown key result {k!r}{did_you_mean(k, kr_ids)}")
                )
        unweighted = [k for k in kr_ids if k not in s.decision.weights]
        if unweighted:
            out.append(
                (
                    "decision.weights",
                    f"no weight for {', '.join(unweighted)}; give every key result a weight "
                    "(0 to leave one out of the decision)",
                )
            )
    if s.decision.rule == "weighted" and not s.decision.weights:
        out.append(("decision.weights", "rule 'weighted' needs weights for the key results"))
    return out


def _check_baseline(s: Scenario) -> Problems:
    """Baselines given per key result name key results; a given number is not negative."""
    out: Problems = []
    kr_ids = [kr.id for kr in s.key_results]
    for k, v in (s.baseline or {}).items():
        if k not in kr_ids:
            out.append((f"baseline.{k}", f"unknown key result {k!r}{did_you_mean(k, kr_ids)}"))
        elif v.kind == "given" and v.value is not None and v.value < 0:
            out.append((f"baseline.{k}", f"a baseline cannot be negative, got {v.value:g}"))
    return out


def _check_events(s: Scenario) -> Problems:
    """The stages an event touches are stages or segments."""
    out: Problems = []
    known = [*s.funnel, *s.segments]
    for i, ev in enumerate(s.events):
        for j, name in enumerate(ev.stages or []):
            if name not in known:
                out.append(
                    (
                        f"events[{i}].stages[{j}]",
                        f"unknown stage or segment {name!r}{did_you_mean(name, known)}",
                    )
                )
    return out


def _check_experiment(s: Scenario) -> Problems:
    """The experiment's control and allocated arms are options; each share is positive."""
    ex = s.experiment
    if ex is None:
        return []
    out: Problems = []
    if ex.control is not None and ex.control not in s.options:
        out.append(
            (
                "experiment.control",
                f"unknown option {ex.control!r}{did_you_mean(ex.control, s.options)}",
            )
        )
    for k, v in (ex.allocation or {}).items():
        if k not in s.options:
            out.append(
                (
                    f"experiment.allocation.{k}",
                    f"unknown option {k!r}{did_you_mean(k, s.options)}",
                )
            )
        if v <= 0:
            out.append(
                (
                    f"experiment.allocation.{k}",
                    f"an allocation share must be positive, got {v:g}",
                )
            )
    return out


def cross_check(s: Scenario) -> Problems:
    """References between parts of the scenario: stages, segments, options, KRs — one line per
    problem, in the order: funnel, segments, options, key results, decision, baseline, events,
    experiment."""
    funnel = _check_funnel(s)
    funnel_ok = not funnel  # the stages' ancestry is known only for a sound funnel
    return [
        *funnel,
        *_check_segments(s),
        *_check_options(s, funnel_ok),
        *_check_key_results(s, funnel_ok),
        *_check_decision(s),
        *_check_baseline(s),
        *_check_events(s),
        *_check_experiment(s),
    ]


def parse_scenario(text: bytes, name: str = "<scenario>") -> Scenario:
    """Validate scenario text; raise InputError with every problem found."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}" if mark else "(top level)"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line_text = _line(text, mark.line) if mark else ""
        bare = re.search(r"\btarget:\s*(>=?\s*[^,}\s]*)", line_text)
        if bare:
            problem = (
                f"quote the target: write target: \"{bare.group(1)}\" (in YAML a bare '>' "
                "starts a block of text)"
            )
        elif "\t" in line_text and "'\\t'" in str(exc):
            problem = "a tab character; YAML indentation must use spaces, not tabs"
        if "could not determine a constructor" in str(exc):
            m = re.search(r"tag '([^']*)'", str(exc))
            tag = m.group(1).replace("tag:yaml.org,2002:", "!!") if m else "?"
            problem = f"YAML tags are not allowed (found {tag})"
        raise InputError([f"{name}: {where}: invalid YAML: {problem}"]) from None
    if not isinstance(raw, dict):
        raise InputError(
            [
                f"{name}: (top level): a scenario must be a YAML mapping of keys to values, got {type(raw).__name__}"
            ]
        )
    problems = _check_keys_are_ids(raw)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        problems += [(p, m + _metric_label_hint(raw, p)) for p, m in _pydantic_problems(err)]
        raise InputError([f"{name}: {p}: {m}" for p, m in problems]) from None
    problems += cross_check(scenario)
    if problems:
        raise InputError([f"{name}: {p}: {m}" for p, m in problems])
    scenario._text = text
    return scenario


def read_scenario(path: str | Path) -> Scenario:
    """Read and validate the scenario file itself (not its data files)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InputError(
            [f"{path}: cannot read the scenario file: {exc.strerror or exc}"]
        ) from None
    scenario = parse_scenario(text, str(path))
    scenario._source = path
    _bind_archives(scenario, path)
    return scenario


def archive_refs(scenario: Scenario) -> list[tuple[str, ArchiveRef]]:
    """Every `from_archive` reference of the scenario's changes, with its field path."""
    out = []
    for oid, opt in scenario.options.items():
        for i, ch in enumerate(opt.changes):
            for field, value in ch.spec:
                if isinstance(value, Prior) and value.from_archive is not None:
                    key = type(ch.spec).model_fields[field].alias or field
                    out.append(
                        (
                            f"options.{oid}.changes[{i}].{ch.kind}.{key}.from_archive",
                            value.from_archive,
                        )
                    )
    return out


def _bind_archives(scenario: Scenario, path: Path) -> None:
    """Resolve each `from_archive` prior's file against the scenario's directory (the archive
    itself is read and checked by `api.load_scenario`, `archive_data.check_refs`)."""
    for _, ref in archive_refs(scenario):
        ref._base = path.parent


@dataclass(frozen=True)
class Structure:
    """The funnel as the model sees it: the root, and rate nodes with their parents."""

    root: str
    nodes: tuple[str, ...]  # non-root stages then segments
    parents: tuple[str, ...]

    @classmethod
    def of(cls, scenario: Scenario) -> Structure:
        nodes, parents = [], []
        for s, st in scenario.funnel.items():
            if st.from_ is not None:
                nodes.append(s)
                parents.append(st.from_)
        for g, seg in scenario.segments.items():
            nodes.append(g)
            parents.append(seg.of)
        return cls(scenario.root, tuple(nodes), tuple(parents))


def value_stages(scenario: Scenario) -> tuple[str, ...]:
    """Stages that carry a value, in funnel order."""
    return tuple(s for s, st in scenario.funnel.items() if st.value is not None)
