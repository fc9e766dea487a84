"""Plain words for the report: numbers as people read them, every belief and model assumption as a
sentence in the scenario's own labels, and a verdict on the sampler.

Sentences here contain scenario strings unescaped; the HTML template and the Markdown writer escape
them, each for its own format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..engine.decision import KRTarget
from ..engine.summary import BaselineSummary, Diagnostics, ModelSummary, RunSummary
from ..i18n import _, fmt_g, fmt_int, fmt_num, fmt_pct, pct_sign, periods
from ..io.scenario import Flow, Gate, Lift, Prior, Scenario, SetRate, change_param_names
from ..model import priors
from ..model.posterior import fmt_rhat, sound_note


def pct(x: float) -> str:
    """A share as a percentage with two significant digits: 0.046 -> '4.6%', 0.5 -> '50%'."""
    v = 100 * x
    if v == 0:
        return pct_sign("0")
    if abs(v) >= 10:
        return pct_sign(fmt_g(v, ".0f"))
    return pct_sign(fmt_g(v, ".2g"))


def pct_range(lo: float, hi: float) -> str:
    return f"{pct(lo).removesuffix(pct_sign(''))}–{pct(hi)}"


def count(x: float) -> str:
    return fmt_int(x)


def kr_value(x: float, ratio: bool) -> str:
    """A KR value in its unit: a total count or amount, a rate as a percentage with one decimal,
    or an amount per unit (below 1,000) with two decimals."""
    if ratio:
        return fmt_pct(x, 1)
    return count(x) if abs(x) >= 1000 or float(x).is_integer() else fmt_num(x, 2, group=True)


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
        out = _("{value} ({change} on {baseline})").format(
            value=value,
            change=pct_sign(fmt_g(pt.value, "+g")),
            baseline=kr_value(t.baseline, kr.is_rate),
        )
    else:
        out = _("{value} (now {baseline})").format(
            value=value, baseline=kr_value(t.baseline, kr.is_rate)
        )
    if t.met_at != t.target:
        out += _("; met at {value} (70% of the way)").format(value=met_at_words(scenario, kr_id, t))
    return out


def met_at_words(scenario: Scenario, kr_id: str, t: KRTarget) -> str:
    """The threshold at which the KR counts as met: '≥ 4,996'."""
    return f"{OP_SIGN[t.op]} {kr_value(t.met_at, is_ratio(scenario, kr_id))}"


def horizon_words(scenario: Scenario) -> str:
    return periods(scenario.horizon, scenario.period)


def kr_unit(scenario: Scenario, kr_id: str) -> str:
    """What a KR's number is: a total over the horizon, or a rate over it."""
    kr = next(k for k in scenario.key_results if k.id == kr_id)
    unit = value_unit(scenario, kr_id)
    unit = f", {unit}" if unit else ""
    if kr.is_rate:
        return _("rate over the {horizon}").format(horizon=horizon_words(scenario))
    if kr.is_ratio:
        return _("ratio of totals over the {horizon}{unit}").format(
            horizon=horizon_words(scenario), unit=unit
        )
    return _("total over the {horizon}{unit}").format(horizon=horizon_words(scenario), unit=unit)


def value_unit(scenario: Scenario, kr_id: str) -> str:
    """The unit of a KR on a value (its numerator's), e.g. 'EUR'; '' for counts and rates."""
    kr = next(k for k in scenario.key_results if k.id == kr_id)
    num = kr.stages[0]
    if not num.endswith(".value"):
        return ""
    v = scenario.funnel[num.removesuffix(".value")].value
    if v is None or not v.unit:
        return ""
    if not kr.is_ratio:
        return v.unit
    return _("{unit} per {stage}").format(unit=v.unit, stage=kr.stages[1].removesuffix(".value"))


# ------------------------------------------------------------------------------ beliefs in words


def _range(prior: Prior, share: bool) -> tuple[str, str]:
    """The range a belief puts most of its weight on, and how sure it is of it."""
    fmt = (
        (lambda lo, hi: pct_range(lo, hi))
        if share
        else (lambda lo, hi: f"{fmt_g(lo, '.3g')}–{fmt_g(hi, '.3g')}")
    )
    kind, v = prior.kind, prior.value
    if kind == "fixed":
        return (pct(v) if share else fmt_g(v, "g")), _("exactly")
    if kind in ("beta_interval", "lognormal_interval"):
        return fmt(v[0], v[1]), _("{share} sure").format(share=fmt_pct(prior.interval_mass, 0))
    if kind == "uniform":
        return fmt(v[0], v[1]), _("any value in the range equally likely")
    lo, hi = (float(q) for q in priors.quantiles(prior, [0.05, 0.95]))
    return fmt(lo, hi), _("90% sure; {prior}").format(prior=prior.describe())


def _q(label: str) -> str:
    return _("“{label}”").format(label=label)


@dataclass(frozen=True)
class Belief:
    """One change parameter of one option, said in words."""

    option: str
    parameter: str
    short: str  # a chart label: what the number is
    sentence: str  # the full belief, e.g. "We believe 50–85% of ... would sign up"


def beliefs(scenario: Scenario) -> list[Belief]:
    """Every change parameter of every option, in the scenario's words (fixed ones included)."""
    said = {Gate: _gate_beliefs, Flow: _flow_beliefs, Lift: _lift_beliefs, SetRate: _set_beliefs}
    out: list[Belief] = []
    for oid, opt in scenario.options.items():
        for change, names in zip(opt.changes, change_param_names(oid, opt), strict=True):
            words_of = said.get(type(change.spec))
            if words_of is not None:
                out += words_of(scenario, oid, change.spec, dict(names))
    return out


def _gate_beliefs(scenario: Scenario, oid: str, sp: Gate, by_field: dict) -> list[Belief]:
    """A new required step: the share that passes it, and the share of those passing who were
    already counted in the stage it adds to."""
    lab = scenario.stage_label
    parent = scenario.parent(sp.before) or ""
    others = (
        _("those not in {segment}").format(segment=_q(lab(sp.exempt)))
        if sp.exempt
        else _("those reaching it")
    )
    rng, sure = _range(sp.pass_, True)
    free = (
        _("; those in {segment} pass freely").format(segment=_q(lab(sp.exempt)))
        if sp.exempt
        else ""
    )
    out = [
        Belief(
            oid,
            by_field["pass"],
            _("share passing the new step before {stage}").format(stage=_q(lab(sp.before))),
            _(
                "A new required step between {parent} and {stage}{free}. We believe "
                "{range} of {others} would pass it rather than leave ({sure})."
            ).format(
                parent=_q(lab(parent)),
                stage=_q(lab(sp.before)),
                free=free,
                range=rng,
                others=others,
                sure=sure,
            ),
        )
    ]
    if sp.counts_as:
        out.append(_overlap_belief(scenario, oid, sp, by_field))
    return out


def _overlap_belief(scenario: Scenario, oid: str, sp: Gate, by_field: dict) -> Belief:
    """Those who pass a gate and add to ``counts_as``: how many were counted there anyway."""
    lab = scenario.stage_label
    rng, sure = _range(sp.overlap, True)
    tail = (
        _("none of them would have been counted there anyway.")
        if sp.overlap.kind == "fixed" and sp.overlap.value == 0
        else _("we believe {range} of them would have been counted there anyway ({sure}).").format(
            range=rng, sure=sure
        )
    )
    return Belief(
        oid,
        by_field["overlap"],
        _("share of those passing already counted in {stage}").format(stage=_q(lab(sp.counts_as))),
        _("Those who pass it add to {stage}; {tail}").format(
            stage=_q(lab(sp.counts_as)), tail=tail
        ),
    )


def _flow_beliefs(scenario: Scenario, oid: str, sp: Flow, by_field: dict) -> list[Belief]:
    """A share of one stage's users who also add to another."""
    lab = scenario.stage_label
    seg, negated = sp.among_segment
    who = (
        ""
        if seg is None
        else _(" not in {segment}").format(segment=_q(lab(seg)))
        if negated
        else _(" in {segment}").format(segment=_q(lab(seg)))
    )
    rng, sure = _range(sp.rate, True)
    return [
        Belief(
            oid,
            by_field["rate"],
            _("share of {source} who also add to {target}").format(
                source=_q(lab(sp.from_)), target=_q(lab(sp.to))
            ),
            _("We believe {range} of {source}{who} would also add to {target} ({sure}).").format(
                range=rng,
                source=_q(lab(sp.from_)),
                who=who,
                target=_q(lab(sp.to)),
                sure=sure,
            ),
        )
    ]


def _lift_beliefs(scenario: Scenario, oid: str, sp: Lift, by_field: dict) -> list[Belief]:
    """A factor on a stage's average value, on the traffic, or on a conversion."""
    lab = scenario.stage_label
    rng, sure = _range(sp.factor, False)
    if sp.on == "value":
        v = scenario.funnel[sp.stage].value
        what = _("the average {value} per {stage}").format(
            value=v.label if v and v.label else _("value"), stage=_q(lab(sp.stage))
        )
        tail = ""
    elif sp.stage == scenario.root:
        what = _("traffic ({stage})").format(stage=_q(lab(sp.stage)))
        tail = ""
    else:
        what = _("the conversion from {parent} to {stage}").format(
            parent=_q(lab(scenario.parent(sp.stage) or "")), stage=_q(lab(sp.stage))
        )
        tail = _(", capped at 100%")
    return [
        Belief(
            oid,
            by_field["factor"],
            _("factor on {stage}").format(stage=_q(lab(sp.stage))),
            _("We believe {what} would be multiplied by {range} ({sure}){tail}.").format(
                what=what, range=rng, sure=sure, tail=tail
            ),
        )
    ]


def _set_beliefs(scenario: Scenario, oid: str, sp: SetRate, by_field: dict) -> list[Belief]:
    """A new typical conversion into a stage."""
    lab = scenario.stage_label
    rng, sure = _range(sp.rate, True)
    parent = lab(scenario.parent(sp.stage) or "")
    return [
        Belief(
            oid,
            by_field["rate"],
            _("new rate into {stage}").format(stage=_q(lab(sp.stage))),
            _(
                "We believe the typical conversion from {parent} to {stage} would "
                "become {range} ({sure}); its {period}-to-{period} variation stays as "
                "observed."
            ).format(
                parent=_q(parent),
                stage=_q(lab(sp.stage)),
                range=rng,
                sure=sure,
                period=period_word(scenario),
            ),
        )
    ]


def period_word(scenario: Scenario) -> str:
    """The scenario's period word, singular: 'week' ('semaine')."""
    from ..i18n import period_noun

    return period_noun(scenario.period, 1)


def parameter_label(scenario: Scenario, name: str) -> str:
    """A change parameter's chart label: the option's label and what the number is."""
    b = next((b for b in beliefs(scenario) if b.parameter == name), None)
    if b is None:
        return name
    opt = scenario.options[b.option]
    return _("{option}: {what}").format(option=opt.label or b.option, what=b.short)


def parameter_value(scenario: Scenario, name: str, x: float) -> str:
    """A parameter value in its unit: shares as percentages, factors as '×1.1'."""
    return f"×{fmt_g(x, '.3g')}" if name.split(".")[-1] == "factor" else pct(x)


def model_assumptions(
    scenario: Scenario,
    described: ModelSummary | None = None,
    baselines: Mapping[str, BaselineSummary] | None = None,
) -> list[str]:
    """What the model takes for granted, in words (docs/design.md §4); ``described`` is the
    summary's `ModelSummary` of the fit (its season and drift choices), ``baselines`` where each
    key result's baseline comes from."""
    per = period_word(scenario)
    out = []
    if described is not None:
        out.append(_("Season, drift and trend: {sentence}.").format(sentence=described.sentence))
    walk = described is not None and described.drift == "random_walk"
    out.append(_traffic_sentence(scenario, walk))
    out.append(_rates_sentence(scenario, walk))
    if scenario.model.rate_trend:
        out.append(
            _(
                "Each conversion rate keeps the linear trend (on the log-odds scale) it had over "
                "the history."
            )
        )
    out += _value_sentences(scenario)
    out += _gate_sentences(scenario)
    out.append(
        _(
            "Each option's changes apply to every user from the first {period} of the {horizon}."
        ).format(period=per, horizon=horizon_words(scenario))
    )
    out.append(_baselines_sentence(scenario, baselines))
    grading = (
        _("A key result counts as met at 70% of the way from baseline to target (aspirational)")
        if scenario.decision.grading == "aspirational"
        else _("A key result counts as met only when it reaches its target (committed)")
    )
    out.append(f"{grading}. {grade_note()}")
    out.append(
        _(
            "Every option is simulated with the same traffic and the same {period}-to-{period} "
            "ups and downs, so the differences between options come from the options alone."
        ).format(period=per)
    )
    out.append(
        _(
            "The uncertainty shown includes traffic noise, the variation of rates between "
            "periods, what the history leaves unknown about the funnel, and the beliefs about "
            "each change above."
        )
    )
    return out


def _traffic_sentence(scenario: Scenario, walk: bool) -> str:
    """How traffic continues: from where it ended, wandering as it did (``walk``: the fit keeps
    the random walk), along its trend, or at its level."""
    root, per = _q(scenario.stage_label(scenario.root)), period_word(scenario)
    if walk:
        msg = (
            _(
                "Traffic ({root}) continues from the level it had reached at the end of the "
                "history around its trend, which may keep wandering as it did (a random walk) if "
                "the history shows it wandering, and otherwise stays steady, with the same "
                "{period}-to-{period} ups and downs."
            )
            if scenario.model.trend
            else _(
                "Traffic ({root}) continues from the level it had reached at the end of the "
                "history, which may keep wandering as it did (a random walk) if the history "
                "shows it wandering, and otherwise stays steady, with the same "
                "{period}-to-{period} ups and downs."
            )
        )
    elif scenario.model.trend:
        msg = _(
            "Traffic ({root}) keeps the trend it had over the history, with the same "
            "{period}-to-{period} ups and downs."
        )
    else:
        msg = _(
            "Traffic ({root}) stays at its historical level, with the same "
            "{period}-to-{period} ups and downs."
        )
    return msg.format(root=root, period=per)


def _rates_sentence(scenario: Scenario, walk: bool) -> str:
    """How the conversion rates vary from period to period: AR(1), independently around a
    level that may wander (``walk``), or independently around their average or trend."""
    mb, per = scenario.model, period_word(scenario)
    if mb.period_effects == "ar1":
        return _(
            "Traffic and each conversion rate vary from {period} to {period} as in the "
            "history, a good {period} tending to be followed by another (AR(1)); the forecast "
            "starts from where the last {periods} of history left them."
        ).format(period=per, periods=_plural_word(scenario))
    if walk:
        msg = (
            _(
                "Each conversion rate varies from {period} to {period} around its trend as in the "
                "history, each {period} independently of the others; if the history shows the "
                "rates' levels wandering, they may keep wandering (a random walk each), continued "
                "from where the history left them."
            )
            if mb.rate_trend
            else _(
                "Each conversion rate varies from {period} to {period} around its average as in "
                "the history, each {period} independently of the others; if the history shows "
                "the rates' levels wandering, they may keep wandering (a random walk each), "
                "continued from where the history left them."
            )
        )
    else:
        msg = (
            _(
                "Each conversion rate varies from {period} to {period} around its trend as in the "
                "history, each {period} independently of the others."
            )
            if mb.rate_trend
            else _(
                "Each conversion rate varies from {period} to {period} around its average as in "
                "the history, each {period} independently of the others."
            )
        )
    return msg.format(period=per)


def _value_sentences(scenario: Scenario) -> list[str]:
    """Per stage that carries a value: how its total is made."""
    out = []
    for st, stage in scenario.funnel.items():
        if stage.value is None:
            continue
        v = stage.value.label or _("value")
        unit = f" ({stage.value.unit})" if stage.value.unit else ""
        msg = (
            _(
                "{stage}: each unit carries a positive {value}{unit}; the {period}'s total is the "
                "sum of its units' values, whose average varies from {period} to {period} around "
                "its trend as in the history, independently of the conversion rates, and which a "
                "value lift multiplies."
            )
            if scenario.model.rate_trend
            else _(
                "{stage}: each unit carries a positive {value}{unit}; the {period}'s total is the "
                "sum of its units' values, whose average varies from {period} to {period} as in "
                "the history, independently of the conversion rates, and which a value lift "
                "multiplies."
            )
        )
        out.append(
            msg.format(
                stage=_q(scenario.stage_label(st)), value=v, unit=unit, period=period_word(scenario)
            )
        )
    return out


def _gate_sentences(scenario: Scenario) -> list[str]:
    """Per gate: how those who pass the new step convert afterwards."""
    lab = scenario.stage_label
    out = []
    for oid, opt in scenario.options.items():
        for g in (c.spec for c in opt.changes if isinstance(c.spec, Gate)):
            msg = (
                _(
                    "{option}: users who pass the new step before {stage} then convert at the "
                    "same rate as those in {segment}."
                )
                if g.exempt
                else _(
                    "{option}: users who pass the new step before {stage} then convert at the "
                    "same rate as users do today."
                )
            )
            out.append(
                msg.format(
                    option=_q(opt.label or oid),
                    stage=_q(lab(g.before)),
                    segment=_q(lab(g.exempt)) if g.exempt else "",
                )
            )
    return out


def _baselines_sentence(scenario: Scenario, baselines: Mapping[str, BaselineSummary] | None) -> str:
    """Where each key result's baseline comes from."""
    if baselines:
        return _("Each key result's baseline: {baselines}.").format(
            baselines=_sep().join(
                _("{kr}, {source}").format(kr=k, source=b.describe) for k, b in baselines.items()
            )
        )
    return _("Each key result's baseline is its value over the last {horizon} of history.").format(
        horizon=horizon_words(scenario)
    )


def _sep() -> str:
    from ..engine.render import sep

    return sep()


def _plural_word(scenario: Scenario) -> str:
    """The period word in the plural: 'weeks' ('semaines')."""
    from ..i18n import period_noun

    return period_noun(scenario.period, 2)


GRADE_NOTE = (
    "A key result's grade is the share of the way from its baseline to its target, from −1 (as "
    "far behind the baseline as the target is ahead of it) to 1 (target reached): going backwards "
    "costs."
)


def grade_note() -> str:
    """`GRADE_NOTE` in the current language."""
    return _(
        "A key result's grade is the share of the way from its baseline to its target, from −1 "
        "(as far behind the baseline as the target is ahead of it) to 1 (target reached): going "
        "backwards costs."
    )


def diagnostics_verdict(diag: Diagnostics) -> str:
    """One sentence: can the numbers be trusted as far as the sampler goes? (With what sampling
    until sound did, when it sampled more than asked.)"""
    note = sound_note(diag.to_dict())
    if not diag.warnings and diag.decision is not None:
        rec = diag.decision
        sentence = _(
            "The sampler shows no problems: what the answer is made of (each key result's value "
            "and each option's P(met)) agrees across chains (R-hat {rhat}, at most 1.01), has "
            "enough effective draws (at least {ess}) and there are no divergences, so the fit can "
            "be relied on as far as the model goes."
        ).format(rhat=fmt_rhat(rec["rhat"]), ess=fmt_num(min(rec["ess_bulk"], rec["ess_tail"]), 0))
        return f"{sentence} {note}" if note else sentence
    if not diag.warnings:
        return _(
            "The sampler shows no problems: the chains agree (R-hat {rhat}, below 1.01), there "
            "are enough effective draws (at least {ess}) and no divergences, so the fit can be "
            "relied on as far as the model goes."
        ).format(rhat=fmt_num(diag.rhat_max, 3), ess=fmt_num(diag.ess_bulk_min, 0))
    problems = _(
        "The sampler reports problems (below): treat the probabilities as rough until they are "
        "fixed."
    )
    return f"{problems} {note}" if note else problems


def parameter_numbers(diag: Diagnostics) -> list[tuple[str, str]]:
    """The diagnostics table's rows over the model's parameters: what they should be when they
    decide the warnings, shown for information when the quantities that decide are judged."""
    tail = "—" if diag.ess_tail_min is None else fmt_num(diag.ess_tail_min, 0)
    if diag.decision is None:
        return [
            (_("Largest R-hat (want < 1.01)"), fmt_num(diag.rhat_max, 3)),
            (_("Smallest bulk ESS (want ≥ 400)"), fmt_num(diag.ess_bulk_min, 0)),
            (_("Smallest tail ESS (want ≥ 400)"), tail),
        ]
    return [
        (_("Model parameters: largest R-hat"), fmt_num(diag.rhat_max, 3)),
        (_("Model parameters: smallest bulk ESS"), fmt_num(diag.ess_bulk_min, 0)),
        (_("Model parameters: smallest tail ESS"), tail),
    ]


def decision_numbers(diag: Diagnostics) -> list[tuple[str, str]]:
    """The diagnostics table's rows for the quantities that decide (none when not judged)."""
    rec = diag.decision
    if rec is None:
        return []
    return [
        (_("What decides: largest R-hat (want ≤ 1.01)"), fmt_rhat(rec["rhat"])),
        (
            _("What decides: smallest ESS, bulk and tail (want ≥ 400)"),
            fmt_num(min(rec["ess_bulk"], rec["ess_tail"]), 0),
        ),
        (
            _("Draws per chain (tuning steps)"),
            f"{fmt_num(rec['draws'], 0)} ({fmt_num(rec['tune'], 0)})",
        ),
    ]


def product_caption(
    scenario: Scenario,
    summary: RunSummary,
    targets: dict[str, KRTarget],
    total: str,
    count: str,
    per_unit: str,
) -> str:
    """How a total-value KR combines its two contributing KRs, with each option's probabilities."""
    from ..engine.render import kr_label, sep

    lt, lc, lu = (kr_label(scenario, k) for k in (total, count, per_unit))
    both = targets[count].target * targets[per_unit].target
    if both >= targets[total].target:
        combined = _(
            "Meeting both contributing targets (dashed lines) gives {both}, so it meets {total}; "
            "{total} can also be met with one of them missed, when the other overshoots."
        ).format(both=kr_value(both, False), total=lt)
    else:
        combined = _(
            "Meeting both contributing targets (dashed lines) gives only {both}, short of the "
            "{total} target: at least one of them must be beaten."
        ).format(both=kr_value(both, False), total=lt)
    parts = []
    for od in summary.options.values():
        k = od.key_results
        parts.append(
            f"{od.label}: P({lc}) {fmt_num(k[count].p_met)}, "
            f"P({lu}) {fmt_num(k[per_unit].p_met)}, P({lt}) {fmt_num(k[total].p_met)}"
        )
    return (
        _(
            "{total} is {count} times {per_unit}, so each dot (one simulated quarter: x its "
            "{count}, y its {per_unit}) meets the {total} target when it lies on the shaded side "
            "of the curve {count} × {per_unit} = {target}. {combined} The panel titles count, in "
            "the same joint draws, the quarters that meet the total and those that meet both "
            "contributing targets (not a product of the columns' probabilities). "
        ).format(
            total=lt,
            count=lc,
            per_unit=lu,
            target=kr_value(targets[total].target, False),
            combined=combined,
        )
        + sep().join(parts)
        + "."
    )


def value_check_caption(scenario: Scenario, fit, history) -> str:
    """The posterior predictive check of the value model, in numbers."""
    import numpy as np

    from ..engine.render import sep
    from ..model.values import predictive_check, value_stages

    stages = value_stages(scenario)
    n, v = history.value_matrix(stages)
    per = period_word(scenario)
    parts = []
    for i, stage in enumerate(stages):
        c = predictive_check(fit.arrays, n[i], v[i], np.random.default_rng([scenario.seed, i]), i)
        parts.append(
            _(
                "{stage}: of {n} {periods}, {in50}, {in80} and {in95} fall inside the 50%, 80% "
                "and 95% bands; the {period}-to-{period} sd is {sd_data} in the data and {sd_rep} "
                "in the model's replicates"
            ).format(
                stage=scenario.stage_label(stage + ".value"),
                n=c["periods"],
                periods=_plural_word(scenario),
                in50=fmt_pct(c["fresh_per_unit_in50"], 0),
                in80=fmt_pct(c["fresh_per_unit_in80"], 0),
                in95=fmt_pct(c["fresh_per_unit_in95"], 0),
                period=per,
                sd_data=fmt_g(c["per_unit_sd_data"], ".3g"),
                sd_rep=fmt_g(c["fresh_per_unit_sd_rep"], ".3g"),
            )
        )
    return (
        _(
            "Each dot is a {period} of history: its total value over its units. The bands are "
            "where the model puts that {period}'s value per unit given its count, with a fresh "
            "{period} effect (posterior predictive check): if the model is right, about 80% and "
            "95% of the dots fall inside them. "
        ).format(period=per)
        + sep().join(parts)
        + "."
    )
