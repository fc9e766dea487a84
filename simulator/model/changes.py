"""What each change kind does, once: its effect on rates and on counts.

The rate functions are written against an array namespace ``xp`` (``numpy`` or
``pytensor.tensor``; elementwise, broadcasting), so that the numpy forecast and the PyTensor
experiment likelihood share them. `ChangePlan` is the one parsed form of an option's changes;
`simulate_counts` is the one count simulator (gates, flows, segment members carried down), used by
the forecast, by the prior-predictive conflict check and by the example-experiment generator; the
likelihood's moments (`experiment.mixed_moments`) are tested against it. See docs/design.md §4.

Segment membership, the rule every user of this module follows: the users at a stage are
exchangeable, however they arrived there. Members of a segment recorded at the stage are counted
there; below it, the members at a stage are a random subset (hypergeometric) of the members at the
parent, of the stage's size; past a gate that exempts the segment every user at the stage holds it.
So users that a flow or a gate's ``counts_as`` adds to a stage hold a segment in the same share as
the stage's other users (the likelihood's rule; the forecast counted them as non-members before).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..io.scenario import Flow, Gate, Lift, Prior, Scenario, SetRate, change_param_names

# ------------------------------------------------------------------------------ rates (xp)


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


# ------------------------------------------------------------------------- the parsed form


@dataclass(frozen=True)
class GatePlan:
    stage: str  # S: the gate stands between S's parent and S
    parent: str  # P
    exempt: str | None
    counts_as: str | None
    pass_: str  # parameter names
    overlap: str
    tag: str  # the change's name stem (its random stream in the forecast)


@dataclass(frozen=True)
class FlowPlan:
    source: str
    target: str
    segment: str | None
    negated: bool
    rate: str
    tag: str


@dataclass(frozen=True)
class ChangePlan:
    """What an option's changes do, by stage, with the names of their parameters."""

    option: str
    rate_changes: tuple[
        tuple[str, str, str], ...
    ]  # (kind "lift"/"set", stage, parameter), in order
    traffic_lifts: tuple[str, ...]  # factor parameters of lifts on the root
    gates: tuple[GatePlan, ...]
    flows: tuple[FlowPlan, ...]
    params: dict[str, Prior]

    @property
    def arm(self) -> str:
        return self.option

    @property
    def lifts(self) -> tuple[tuple[str, str], ...]:
        """(stage, factor parameter) of the lifts on non-root stages."""
        return tuple((s, p) for k, s, p in self.rate_changes if k == "lift")

    @property
    def sets(self) -> tuple[tuple[str, str], ...]:
        return tuple((s, p) for k, s, p in self.rate_changes if k == "set")

    @property
    def gate_stages(self) -> set[str]:
        return {g.stage for g in self.gates}

    @property
    def fed(self) -> set[str]:
        """Stages that receive users from elsewhere (a gate's counts_as, a flow's target)."""
        out = {g.counts_as for g in self.gates if g.counts_as}
        return out | {f.target for f in self.flows}

    @property
    def mixed(self) -> list[str]:
        """Stages whose count is not one binomial draw given the observed counts."""
        return sorted(self.gate_stages | self.fed)

    @classmethod
    def of(cls, scenario: Scenario, option: str) -> ChangePlan:
        opt = scenario.options[option]
        rate_changes, traffic, gates, flows, params = [], [], [], [], {}
        for change, names in zip(opt.changes, change_param_names(option, opt), strict=True):
            n = dict(names)
            tag = names[0][1].rsplit(".", 1)[0]
            sp = change.spec
            if isinstance(sp, Lift) and sp.on == "value":
                continue  # the value per unit, not a rate: `values.value_lifts`
            for f, name in names:
                params[name] = getattr(sp, "pass_" if f == "pass" else f)
            if isinstance(sp, Lift):
                if sp.stage == scenario.root:
                    traffic.append(n["factor"])
                else:
                    rate_changes.append(("lift", sp.stage, n["factor"]))
            elif isinstance(sp, SetRate):
                rate_changes.append(("set", sp.stage, n["rate"]))
            elif isinstance(sp, Gate):
                parent = scenario.funnel[sp.before].from_
                assert parent is not None
                gates.append(
                    GatePlan(
                        sp.before, parent, sp.exempt, sp.counts_as, n["pass"], n["overlap"], tag
                    )
                )
            elif isinstance(sp, Flow):
                seg, neg = sp.among_segment
                flows.append(FlowPlan(sp.from_, sp.to, seg, neg, n["rate"], tag))
        return cls(option, tuple(rate_changes), tuple(traffic), tuple(gates), tuple(flows), params)

    def acts_on(self, scenario: Scenario) -> list[str]:
        """Stages the changes act on directly (rates or counts), then those downstream of them, in
        funnel order: the stages whose conversion an experiment can show a change in."""
        direct = {s for _, s, _ in self.rate_changes} | self.gate_stages | self.fed
        out = set(direct)
        for s in scenario.funnel:
            if any(a in direct for a in scenario.ancestors(s)):
                out.add(s)
        return [s for s in scenario.funnel if s in out and scenario.funnel[s].from_ is not None]

    def params_behind(self, scenario: Scenario, stage: str) -> list[str]:
        """The parameters whose changes act on ``stage`` or on a stage above it."""
        above = set(scenario.ancestors(stage))
        out: list[str] = []
        for _, s, p in self.rate_changes:
            if s in above:
                out.append(p)
        for g in self.gates:
            if g.stage in above or g.counts_as in above:
                out += [g.pass_] + ([g.overlap] if g.counts_as in above else [])
        for f in self.flows:
            if f.target in above:
                out.append(f.rate)
        return list(dict.fromkeys(out))

    def holds_all(self, scenario: Scenario, segment: str, stage: str) -> bool:
        """Past a gate that exempts ``segment``, every user holds it."""
        return any(g.exempt == segment and g.stage in scenario.ancestors(stage) for g in self.gates)


def apply_rates(
    plan: ChangePlan,
    rates: dict[str, Any],
    effects: dict[str, Any],
    params: dict[str, Any],
    xp: Any,
) -> dict[str, Any]:
    """The rates under the plan: `lift` and `set` applied to the base rates, in the order the
    changes are written (``effects``: the period effects on the logit scale, which `set` keeps)."""
    out = dict(rates)
    for kind, stage, name in plan.rate_changes:
        if kind == "set":
            out[stage] = set_rate(params[name], effects[stage], xp)
        else:
            out[stage] = lift_rate(out[stage], params[name], xp)
    return out


def stage_order(scenario: Scenario) -> list[str]:
    """Stages in an order where parents, gate sources and flow sources come first."""
    deps: dict[str, set[str]] = {s: set() for s in scenario.funnel}
    for s, st in scenario.funnel.items():
        if st.from_:
            deps[s].add(st.from_)
    for opt in scenario.options.values():
        for c in opt.changes:
            sp = c.spec
            if isinstance(sp, Gate) and sp.counts_as:
                deps[sp.counts_as].add(scenario.funnel[sp.before].from_)  # type: ignore[arg-type]
            if isinstance(sp, Flow):
                deps[sp.to].add(sp.from_)
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(deps):
        ready = [s for s in deps if s not in done and deps[s] <= done]
        if not ready:
            raise ValueError("the options' changes make the funnel cyclic")
        order.append(ready[0])
        done.add(ready[0])
    return order


# --------------------------------------------------------------------- counts (numpy, draws)

Streams = Callable[..., np.random.Generator]


def simulate_counts(
    scenario: Scenario,
    plan: ChangePlan,
    rates: dict[str, Any],
    params: dict[str, Any],
    stream: Streams,
    *,
    root: Any = None,
    given: dict[str, Any] | None = None,
    all_segments: bool = False,
    order: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Counts of every stage (and of the segments drawn) under an option's changes.

    Generative (``root``: the root's counts): the funnel drawn from the root down, as the forecast
    and a simulated experiment need. Conditional (``given``: observed counts of every stage and
    segment): each stage drawn given the observed counts of its parent and of what it reads (a
    gate's exempt users, a flow's source), as the prior-predictive check needs. ``rates``: the
    option's rates (after `apply_rates`); ``params``: its change parameters; everything broadcasts
    (draws x periods, draws x rows). ``stream(*key)`` gives the random stream of each part
    (``("binomial", node)``, ``("change", tag)``, ``("segment", g, stage)``): the forecast gives
    each its own stream for common random numbers; one generator for all is fine elsewhere.
    Segments are drawn where a gate or flow reads them (``all_segments``: every one).
    """
    order = stage_order(scenario) if order is None else order
    run = _CountRun(scenario, plan, rates, params, stream, given, all_segments)
    run.n[scenario.root] = np.asarray(root if given is None else given[scenario.root])
    run.segments_at(scenario.root)
    run.flows_from(scenario.root)
    for s in order:
        if s != scenario.root:
            run.draw_stage(s)
    return run.n


@dataclass
class _CountRun:
    """The state of one `simulate_counts`: the counts drawn so far (``n``), the users that gates
    and flows add to later stages (``extra``), and the members of each segment carried down to
    the stages where a gate or a flow reads them (``members``)."""

    scenario: Scenario
    plan: ChangePlan
    rates: dict[str, Any]
    params: dict[str, Any]
    stream: Streams
    given: dict[str, Any] | None
    all_segments: bool
    n: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    members: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seg_of = {g: s.of for g, s in self.scenario.segments.items()}
        self.gates = {g.stage: g for g in self.plan.gates}
        # Members are carried down only along the paths the gates and flows read them on.
        self.track: set[tuple[str, str]] = set()
        wanted = [(g.exempt, g.parent) for g in self.plan.gates if g.exempt]
        wanted += [(f.segment, f.source) for f in self.plan.flows if f.segment]
        for g, at in wanted:
            for a in self.scenario.ancestors(at):
                self.track.add((g, a))
                if a == self.seg_of[g]:
                    break

    def count(self, name: str) -> Any:
        return self.given[name] if self.given is not None else self.n[name]

    def segments_at(self, stage: str) -> None:
        """The members of the tracked segments at ``stage`` (and, with ``all_segments``, every
        segment recorded there)."""
        for g, of in self.seg_of.items():
            if (g, stage) in self.track and (g, stage) not in self.members:
                self.members[(g, stage)] = self._members(g, of, stage)
            elif self.all_segments and of == stage and self.given is None and g not in self.n:
                self.n[g] = self.stream("binomial", g).binomial(self.n[stage], self.rates[g])

    def _members(self, g: str, of: str, stage: str) -> Any:
        if of == stage:
            if self.given is None:
                self.n[g] = self.stream("binomial", g).binomial(self.n[stage], self.rates[g])
            return self.count(g)
        if self.plan.holds_all(self.scenario, g, stage):
            return self.count(stage)
        # the users here are a random subset of the parent's
        parent = self.scenario.funnel[stage].from_
        good, total = self.members[(g, parent)], self.count(parent)
        size = np.minimum(self.count(stage), total)
        return self.stream("segment", g, stage).hypergeometric(good, total - good, size)

    def flows_from(self, stage: str) -> None:
        """The users each flow from ``stage`` adds to its target."""
        for f in self.plan.flows:
            if f.source != stage:
                continue
            if f.segment is None:
                pool = self.count(stage)
            else:
                m = self.members[(f.segment, stage)]
                pool = self.count(stage) - m if f.negated else m
            add = self.stream("change", f.tag).binomial(pool, self.params[f.rate])
            self.extra[f.target] = self.extra.get(f.target, 0) + add

    def draw_stage(self, s: str) -> None:
        """Stage ``s``'s count from its parent's (through a gate when one stands before it),
        plus what gates and flows added to it; then its segments and its flows."""
        parent = self.scenario.funnel[s].from_
        rng = self.stream("binomial", s)
        if s in self.gates:
            g = self.gates[s]
            exempt = self.members[(g.exempt, parent)] if g.exempt else 0
            g_rng = self.stream("change", g.tag)
            passers = g_rng.binomial(np.asarray(self.count(parent)) - exempt, self.params[g.pass_])
            base = rng.binomial(exempt + passers, self.rates[s])
            if g.counts_as:
                add = g_rng.binomial(passers, 1 - np.asarray(self.params[g.overlap]))
                self.extra[g.counts_as] = self.extra.get(g.counts_as, 0) + add
        else:
            base = rng.binomial(self.count(parent), self.rates[s])
        self.n[s] = base + self.extra.get(s, 0)
        self.segments_at(s)
        self.flows_from(s)
