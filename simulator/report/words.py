"""Plain words for the report: numbers as people read them, every belief and model assumption as a
sentence in the scenario's own labels, and a verdict on the sampler.

Sentences here contain scenario strings unescaped; the HTML template and the Markdown writer escape
them, each for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import priors
from ..decision import KRTarget
from ..scenario import Flow, Gate, Lift, Prior, Scenario, SetRate, change_param_names


def pct(x: float) -> str:
    """A share as a percentage with two significant digits: 0.046 -> '4.6%', 0.5 -> '50%'."""
    v = 100 * x
    if v == 0:
        return "0%"
    if abs(v) >= 10:
        return f"{v:.0f}%"
    return f"{v:.2g}%"


def pct_range(lo: float, hi: float) -> str:
    return f"{pct(lo).rstrip('%')}–{pct(hi)}"


def count(x: float) -> str:
    return f"{x:,.0f}"


def kr_value(x: float, ratio: bool) -> str:
    """A KR value in its unit: a total count or amount, a rate as a percentage with one decimal,
    or an amount per unit (below 1,000) with two decimals."""
    if ratio:
        return f"{100 * x:.1f}%"
    return count(x) if abs(x) >= 1000 or float(x).is_integer() else f"{x:,.2f}"


OP_SIGN = {">=": "≥", "<=": "≤"}


def is_ratio(scenario: Scenario, kr_id: str) -> bool:
    """The KR is a rate (a ratio of two counts), shown as a percentage; a ratio with a value
    (revenue per purchase) is an amount."""
    return next(k for k in scenario.key_results if k.id == kr_id).is_rate


def target_words(scenario: Scenario, kr_id: str, t: KRTarget) -> str:
    """'≥ 5,262 (+20% on 4,385)' or '≥ 75.0% (now 79.7%)'."""
    kr = next(k for k in scenario.key_results if k.id == kr_id)
    pt = kr.parsed_target
    value = f"{OP_SIGN[t.op]} {kr_value(t.target, kr.is_rate)}"
    if pt.relative:
        out = f"{value} ({pt.value:+g}% on {kr_value(t.baseline, kr.is_rate)})"
    else:
        out = f"{value} (now {kr_value(t.baseline, kr.is_rate)})"
    if t.met_at != t.target:
        out += f"; met at {met_at_words(scenario, kr_id, t)} (70% of the way)"
    return out


def met_at_words(scenario: Scenario, kr_id: str, t: KRTarget) -> str:
    """The threshold at which the KR counts as met: '≥ 4,996'."""
    return f"{OP_SIGN[t.op]} {kr_value(t.met_at, is_ratio(scenario, kr_id))}"


def horizon_words(scenario: Scenario) -> str:
    unit = scenario.period if scenario.horizon == 1 else f"{scenario.period}s"
    return f"{scenario.horizon} {unit}"


def kr_unit(scenario: Scenario, kr_id: str) -> str:
    """What a KR's number is: a total over the horizon, or a rate over it."""
    kr = next(k for k in scenario.key_results if k.id == kr_id)
    unit = value_unit(scenario, kr_id)
    unit = f", {unit}" if unit else ""
    if kr.is_rate:
        return f"rate over the {horizon_words(scenario)}"
    if kr.is_ratio:
        return f"ratio of totals over the {horizon_words(scenario)}{unit}"
    return f"total over the {horizon_words(scenario)}{unit}"


def value_unit(scenario: Scenario, kr_id: str) -> str:
    """The unit of a KR on a value (its numerator's), e.g. 'EUR'; '' for counts and rates."""
    kr = next(k for k in scenario.key_results if k.id == kr_id)
    num = kr.stages[0]
    if not num.endswith(".value"):
        return ""
    v = scenario.funnel[num.removesuffix(".value")].value
    if v is None or not v.unit:
        return ""
    return v.unit if not kr.is_ratio else f"{v.unit} per {kr.stages[1].removesuffix('.value')}"


# ------------------------------------------------------------------------------ beliefs in words


def _range(prior: Prior, share: bool) -> tuple[str, str]:
    """The range a belief puts most of its weight on, and how sure it is of it."""
    fmt = (lambda lo, hi: pct_range(lo, hi)) if share else (lambda lo, hi: f"{lo:.3g}–{hi:.3g}")
    kind, v = prior.kind, prior.value
    if kind == "fixed":
        return (pct(v) if share else f"{v:g}"), "exactly"
    if kind in ("beta_interval", "lognormal_interval"):
        return fmt(v[0], v[1]), f"{prior.interval_mass:.0%} sure"
    if kind == "uniform":
        return fmt(v[0], v[1]), "any value in the range equally likely"
    lo, hi = (float(q) for q in priors.quantiles(prior, [0.05, 0.95]))
    return fmt(lo, hi), f"90% sure; {prior.describe()}"


def _q(label: str) -> str:
    return f"“{label}”"


@dataclass(frozen=True)
class Belief:
    """One change parameter of one option, said in words."""

    option: str
    parameter: str
    short: str  # a chart label: what the number is
    sentence: str  # the full belief, e.g. "We believe 50–85% of ... would sign up"


def beliefs(scenario: Scenario) -> list[Belief]:
    """Every change parameter of every option, in the scenario's words (fixed ones included)."""
    out: list[Belief] = []
    lab = scenario.stage_label
    for oid, opt in scenario.options.items():
        for change, names in zip(opt.changes, change_param_names(oid, opt), strict=True):
            sp = change.spec
            by_field = dict(names)
            if isinstance(sp, Gate):
                parent = scenario.parent(sp.before) or ""
                others = f"those not in {_q(lab(sp.exempt))}" if sp.exempt else "those reaching it"
                rng, sure = _range(sp.pass_, True)
                free = f"; those in {_q(lab(sp.exempt))} pass freely" if sp.exempt else ""
                out.append(
                    Belief(
                        oid,
                        by_field["pass"],
                        f"share passing the new step before {_q(lab(sp.before))}",
                        f"A new required step between {_q(lab(parent))} and {_q(lab(sp.before))}"
                        f"{free}. We believe {rng} of {others} would pass it rather than leave "
                        f"({sure}).",
                    )
                )
                if sp.counts_as:
                    rng, sure = _range(sp.overlap, True)
                    tail = (
                        "none of them would have been counted there anyway."
                        if sp.overlap.kind == "fixed" and sp.overlap.value == 0
                        else f"we believe {rng} of them would have been counted there anyway ({sure})."
                    )
                    out.append(
                        Belief(
                            oid,
                            by_field["overlap"],
                            f"share of those passing already counted in {_q(lab(sp.counts_as))}",
                            f"Those who pass it add to {_q(lab(sp.counts_as))}; {tail}",
                        )
                    )
            elif isinstance(sp, Flow):
                seg, negated = sp.among_segment
                who = (
                    ""
                    if seg is None
                    else f" not in {_q(lab(seg))}"
                    if negated
                    else f" in {_q(lab(seg))}"
                )
                rng, sure = _range(sp.rate, True)
                out.append(
                    Belief(
                        oid,
                        by_field["rate"],
                        f"share of {_q(lab(sp.from_))} who also add to {_q(lab(sp.to))}",
                        f"We believe {rng} of {_q(lab(sp.from_))}{who} would also add to "
                        f"{_q(lab(sp.to))} ({sure}).",
                    )
                )
            elif isinstance(sp, Lift):
                rng, sure = _range(sp.factor, False)
                if sp.on == "value":
                    v = scenario.funnel[sp.stage].value
                    what = (
                        f"the average {(v.label if v and v.label else 'value')} per "
                        f"{_q(lab(sp.stage))}"
                    )
                    tail = ""
                elif sp.stage == scenario.root:
                    what = f"traffic ({_q(lab(sp.stage))})"
                    tail = ""
                else:
                    what = (
                        f"the conversion from {_q(lab(scenario.parent(sp.stage) or ''))} to "
                        f"{_q(lab(sp.stage))}"
                    )
                    tail = ", capped at 100%"
                out.append(
                    Belief(
                        oid,
                        by_field["factor"],
                        f"factor on {_q(lab(sp.stage))}",
                        f"We believe {what} would be multiplied by {rng} ({sure}){tail}.",
                    )
                )
            elif isinstance(sp, SetRate):
                rng, sure = _range(sp.rate, True)
                parent = lab(scenario.parent(sp.stage) or "")
                out.append(
                    Belief(
                        oid,
                        by_field["rate"],
                        f"new rate into {_q(lab(sp.stage))}",
                        f"We believe the typical conversion from {_q(parent)} to {_q(lab(sp.stage))} "
                        f"would become {rng} ({sure}); its {scenario.period}-to-{scenario.period} "
                        "variation stays as observed.",
                    )
                )
    return out


def parameter_label(scenario: Scenario, name: str) -> str:
    """A change parameter's chart label: the option's label and what the number is."""
    b = next((b for b in beliefs(scenario) if b.parameter == name), None)
    if b is None:
        return name
    opt = scenario.options[b.option]
    return f"{opt.label or b.option}: {b.short}"


def parameter_value(scenario: Scenario, name: str, x: float) -> str:
    """A parameter value in its unit: shares as percentages, factors as '×1.1'."""
    return f"×{x:.3g}" if name.split(".")[-1] == "factor" else pct(x)


def model_assumptions(
    scenario: Scenario, described: dict | None = None, baselines: dict | None = None
) -> list[str]:
    """What the model takes for granted, in words (docs/design.md §4); ``described`` is
    `posterior.describe` of the fit (its season and drift choices)."""
    lab = scenario.stage_label
    per = scenario.period
    out = []
    root = _q(lab(scenario.root))
    if described is not None:
        out.append(f"Season, drift and trend: {described['sentence']}.")
    if described is not None and described["drift"] == "random_walk":
        trend = " around its trend" if scenario.model.trend else ""
        out.append(
            f"Traffic ({root}) continues from the level it had reached at the end of the history"
            f"{trend}, which may keep wandering as it did (a random walk) if the history shows it "
            f"wandering, and otherwise stays steady, with the same {per}-to-{per} ups and downs."
        )
    elif scenario.model.trend:
        out.append(
            f"Traffic ({root}) keeps the trend it had over the history, with the same "
            f"{per}-to-{per} ups and downs."
        )
    else:
        out.append(
            f"Traffic ({root}) stays at its historical level, with the same {per}-to-{per} ups and downs."
        )
    mb = scenario.model
    around = "around its trend" if mb.rate_trend else "around its average"
    if mb.period_effects == "ar1":
        out.append(
            f"Traffic and each conversion rate vary from {per} to {per} as in the history, a good "
            f"{per} tending to be followed by another (AR(1)); the forecast starts from where the "
            f"last {per}s of history left them."
        )
    elif described is not None and described["drift"] == "random_walk":
        out.append(
            f"Each conversion rate varies from {per} to {per} {around} as in the history, "
            f"each {per} independently of the others; if the history shows the rates' levels "
            "wandering, they may keep wandering (a random walk each), continued from where the "
            "history left them."
        )
    else:
        out.append(
            f"Each conversion rate varies from {per} to {per} {around} as in the history, "
            f"each {per} independently of the others."
        )
    if mb.rate_trend:
        out.append(
            "Each conversion rate keeps the linear trend (on the log-odds scale) it had over the "
            "history."
        )
    for st, stage in scenario.funnel.items():
        if stage.value is None:
            continue
        v = stage.value.label or "value"
        unit = f" ({stage.value.unit})" if stage.value.unit else ""
        out.append(
            f"{_q(lab(st))}: each unit carries a positive {v}{unit}; the {per}'s total is the sum "
            f"of its units' values, whose average varies from {per} to {per} "
            f"{'around its trend ' if mb.rate_trend else ''}as in the history, independently of "
            "the conversion rates, and which a value lift multiplies."
        )
    for oid, opt in scenario.options.items():
        for c in opt.changes:
            if isinstance(c.spec, Gate):
                g = c.spec
                who = f"those in {_q(lab(g.exempt))}" if g.exempt else "users do today"
                out.append(
                    f"{_q(opt.label or oid)}: users who pass the new step before {_q(lab(g.before))} "
                    f"then convert at the same rate as {who}."
                )
    out.append(
        f"Each option's changes apply to every user from the first {per} of the {horizon_words(scenario)}."
    )
    out.append(
        "Each key result's baseline: "
        + "; ".join(f"{k}, {b['describe']}" for k, b in baselines.items())
        + "."
        if baselines
        else f"Each key result's baseline is its value over the last {horizon_words(scenario)} of history."
    )
    grading = (
        "A key result counts as met at 70% of the way from baseline to target (aspirational)"
        if scenario.decision.grading == "aspirational"
        else "A key result counts as met only when it reaches its target (committed)"
    )
    out.append(f"{grading}. {GRADE_NOTE}")
    out.append(
        f"Every option is simulated with the same traffic and the same {per}-to-{per} ups and downs, "
        "so the differences between options come from the options alone."
    )
    out.append(
        "The uncertainty shown includes traffic noise, the variation of rates between periods, what "
        "the history leaves unknown about the funnel, and the beliefs about each change above."
    )
    return out


GRADE_NOTE = (
    "A key result's grade is the share of the way from its baseline to its target, from −1 (as "
    "far behind the baseline as the target is ahead of it) to 1 (target reached): going backwards "
    "costs."
)


def diagnostics_verdict(diag: dict) -> str:
    """One sentence: can the numbers be trusted as far as the sampler goes?"""
    if not diag["warnings"]:
        return (
            "The sampler shows no problems: the chains agree (R-hat "
            f"{diag['rhat_max']:.3f}, below 1.01), there are enough effective draws (at least "
            f"{diag['ess_bulk_min']:.0f}) and no divergences, so the fit can be relied on as far "
            "as the model goes."
        )
    return "The sampler reports problems (below): treat the probabilities as rough until they are fixed."


def product_caption(
    scenario: Scenario,
    summary: dict,
    targets: dict[str, KRTarget],
    total: str,
    count: str,
    per_unit: str,
) -> str:
    """How a total-value KR combines its two contributing KRs, with each option's probabilities."""
    from ..render import kr_label

    lt, lc, lu = (kr_label(scenario, k) for k in (total, count, per_unit))
    both = targets[count].target * targets[per_unit].target
    if both >= targets[total].target:
        combined = (
            f"Meeting both contributing targets (dashed lines) gives {kr_value(both, False)}, "
            f"so it meets {lt}; {lt} can also be met with one of them missed, when the other "
            "overshoots."
        )
    else:
        combined = (
            f"Meeting both contributing targets (dashed lines) gives only {kr_value(both, False)}, "
            f"short of the {lt} target: at least one of them must be beaten."
        )
    parts = []
    for od in summary["options"].values():
        k = od["key_results"]
        parts.append(
            f"{od['label']}: P({lc}) {k[count]['p_met']:.2f}, P({lu}) {k[per_unit]['p_met']:.2f}, "
            f"P({lt}) {k[total]['p_met']:.2f}"
        )
    return (
        f"{lt} is {lc} times {lu}, so each dot (one simulated quarter: x its {lc}, y its {lu}) "
        f"meets the {lt} target when it lies on the shaded side of the curve {lc} × {lu} = "
        f"{kr_value(targets[total].target, False)}. {combined} The panel titles count, in the "
        "same joint draws, the quarters that meet the total and those that meet both contributing "
        "targets (not a product of the columns' probabilities). " + "; ".join(parts) + "."
    )


def value_check_caption(scenario: Scenario, fit, history) -> str:
    """The posterior predictive check of the value model, in numbers."""
    import numpy as np

    from ..values import predictive_check, value_stages

    stages = value_stages(scenario)
    n, v = history.value_matrix(stages)
    parts = []
    for i, stage in enumerate(stages):
        c = predictive_check(fit.arrays, n[i], v[i], np.random.default_rng([scenario.seed, i]), i)
        parts.append(
            f"{scenario.stage_label(stage + '.value')}: of {c['periods']} {scenario.period}s, "
            f"{c['fresh_per_unit_in50']:.0%}, {c['fresh_per_unit_in80']:.0%} and "
            f"{c['fresh_per_unit_in95']:.0%} fall inside the 50%, 80% and 95% bands; the "
            f"{scenario.period}-to-{scenario.period} sd is {c['per_unit_sd_data']:.3g} in the "
            f"data and {c['fresh_per_unit_sd_rep']:.3g} in the model's replicates"
        )
    return (
        f"Each dot is a {scenario.period} of history: its total value over its units. The bands "
        f"are where the model puts that {scenario.period}'s value per unit given its count, with a "
        f"fresh {scenario.period} effect (posterior predictive check): if the model is right, "
        "about 80% and 95% of the dots fall inside them. " + "; ".join(parts) + "."
    )
