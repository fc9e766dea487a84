"""Plain-text rendering of a summary (the terminal table) and the sentences shared with reports.

Every sentence goes through the message catalogue (`i18n`) and every number through its
locale-aware formatters, so the same functions write English or French."""

from __future__ import annotations

from ..i18n import _, fmt_g, fmt_int, fmt_interval, fmt_num, fmt_pct, ngettext, pgettext
from ..i18n import fmt_p as _fmt_p
from ..io.scenario import KeyResult, Scenario
from ..model.posterior import fmt_rhat, sound_note
from .summary import Recommendation, RunSummary


def sep(kind: str = ";") -> str:
    """A list separator in the current language: '; ' or ', ' (French: ' ; ')."""
    return pgettext("separator", "; ") if kind == ";" else ", "


def target_warnings(scenario: Scenario, targets: dict) -> list[str]:
    """Targets that are valid but probably not what was meant: a relative target on a rate that is
    large or leaves [0, 1], an absolute count target far below the baseline, a target equal to the
    baseline. ``targets`` maps KR ids to ``decision.KRTarget``."""
    out = []
    name = scenario.source or "scenario"
    for i, kr in enumerate(scenario.key_results):
        t, pt = targets[kr.id], kr.parsed_target
        where = f"{name}: key_results[{i}].target"
        said = f"{kr.target!r}" if isinstance(kr.target, str) else f"{kr.target:g}"
        if kr.is_rate and pt.relative and (abs(pt.value) >= 50 or not 0 <= t.target <= 1):
            meant = pt.value / 100
            hint = (
                _("; did you mean the rate {rate}? write '{op} {plain}'").format(
                    rate=fmt_num(meant, 2), op=pt.op, plain=f"{meant:.2f}"
                )
                if 0 < meant <= 1
                else ""
            )
            out.append(
                _(
                    "{where}: {said} on a rate is relative to the baseline rate {baseline}, "
                    "so the target is the rate {target}"
                ).format(
                    where=where,
                    said=said,
                    baseline=fmt_num(t.baseline, 3),
                    target=fmt_num(t.target, 3),
                )
                + (_(" (outside [0, 1], so it can never be met)") if not 0 <= t.target <= 1 else "")
                + hint
            )
        elif (
            not kr.is_ratio
            and not pt.relative
            and pt.op == ">="
            and t.baseline > 0
            and t.target < 0.25 * t.baseline
        ):
            rel = f"+{pt.value * 100:g}%" if 0 < pt.value < 1 else f"+{pt.value:g}%"
            hint = (
                _("; did you mean '{relative}' (relative to the baseline)?").format(relative=rel)
                if 0 < pt.value <= 100
                else ""
            )
            out.append(
                _(
                    "{where}: {said} is an absolute total of {target} over the horizon, against "
                    "a baseline of {baseline}, so it is met almost surely"
                ).format(
                    where=where,
                    said=said,
                    target=fmt_value(t.target, False),
                    baseline=fmt_value(t.baseline, False),
                )
                + hint
            )
        elif t.target == t.baseline:
            out.append(
                _(
                    "{where}: {said} equals the baseline ({baseline}): the key result is met by "
                    "standing still"
                ).format(where=where, said=said, baseline=fmt_value(t.baseline, kr.is_rate))
            )
    return out


def input_notes(scenario: Scenario, history, targets: dict) -> list[str]:
    """What was done to the input or looks unintended, for stderr and the report: the history's
    notes (a sort, ignored columns), its empty cells, and target warnings."""
    from .baselines import window_notes

    notes = list(getattr(history, "notes", ()))
    notes += window_notes(scenario, history)
    notes += [
        _("baseline of {kr}: {note}").format(kr=k, note=t.source.note_words(scenario.horizon))
        for k, t in targets.items()
        if t.source is not None and t.source.note
    ]
    n = getattr(history, "n_missing", 0)
    if n:
        notes.append(
            ngettext(
                "{path}: {n} empty count cell (missing data)",
                "{path}: {n} empty count cells (missing data)",
                n,
            ).format(path=history.path, n=n)
        )
    return notes + target_warnings(scenario, targets)


def fmt_p(p: float, se: float | None = None) -> str:
    """A probability and its Monte Carlo error: '0.49 ±0.01' (French '0,49 ±0,01')."""
    return _fmt_p(p, se)


def fmt_value(x: float | None, ratio: bool) -> str:
    """A rate with three decimals; a total, or an amount per unit (below 1,000, two decimals);
    a dash for a value that does not exist yet (None)."""
    if x is None:
        return "—"
    if ratio:
        return fmt_num(x, 3)
    return fmt_int(x) if abs(x) >= 1000 or float(x).is_integer() else fmt_num(x, 2, group=True)


def target_text(scenario: Scenario, kr_id: str) -> str:
    """The target as the scenario writes it ('>= +20%'), with the locale's numbers."""
    kr = next(k for k in scenario.key_results if k.id == kr_id)
    pt = kr.parsed_target
    if pt.relative:
        from ..i18n import pct_sign

        return f"{pt.op} {pct_sign(fmt_g(pt.value, '+g'))}"
    return f"{pt.op} {fmt_g(pt.value, 'g')}"


def kr_label(scenario: Scenario, kr_id: str) -> str:
    kr = next(k for k in scenario.key_results if k.id == kr_id)
    if kr.label:
        return kr.label
    if kr.is_ratio:
        a, b = kr.stages
        return f"{term_label(scenario, a)} / {term_label(scenario, b)}"
    return term_label(scenario, kr.stages[0])


def term_label(scenario: Scenario, term: str) -> str:
    """A metric term in words: a stage's label, or its value's label (``purchase.value``)."""
    if term.endswith(".value"):
        stage = term.removesuffix(".value")
        v = scenario.funnel[stage].value
        if v and v.label:
            return v.label
        return _("{stage} value").format(stage=scenario.stage_label(stage))
    return scenario.stage_label(term)


def rule_words(rule: str, within_reach: bool = False) -> str:
    """What a rule maximises, in words."""
    if rule == "all_met":
        if within_reach:
            return _("the chance of meeting every key result within reach")
        return _("the chance of meeting every key result")
    return {
        "expected_grade": _("the expected OKR grade"),
        "weighted": _("the weighted share of key results met"),
    }[rule]


def rule_axis(rec: Recommendation) -> str:
    """The rule's value as an axis or column label."""
    rule = rec.rule_used
    if rule == "all_met":
        if rec.out_of_reach:
            return _("P(every key result within reach met)")
        return _("P(all met)")
    return {"expected_grade": _("expected OKR grade"), "weighted": _("weighted share met")}[rule]


def rule_sentence(rec: Recommendation) -> str:
    """How the recommendation was made, for the report's notes: the rule used and why."""
    rule = rec.rule_used
    lead = _("The recommendation maximises {what}").format(
        what=rule_words(rule, bool(rec.out_of_reach) and rule == "all_met")
    )
    if rule != rec.rule:
        lead += _(
            " (the scenario asks for {what}, but no option gives that a chance, so the options "
            "are ranked by how far they get)"
        ).format(what=rule_words(rec.rule))
    if rec.primary:
        lead += _("; near-ties go to the option best on the primary key result")
    if any(rec.guardrails.p_broken.values()):
        lead += _(
            "; an option that breaks a guardrail with probability above 0.2 is not recommended "
            "while another keeps every guardrail"
        )
    return lead + "."


def p_words(p: float) -> str:
    """How likely, in words."""
    if p >= 0.95:
        return _("near certain")
    if p >= 0.75:
        return _("likely")
    if p > 0.25:
        return _("uncertain")
    if p > 0.05:
        return _("unlikely")
    return _("almost impossible")


def _tradeoff(scenario: Scenario, summary: RunSummary, best: str) -> str:
    """The clearest trade-off of another option: one target likely, another unlikely."""
    opts = summary.options
    gone = summary.recommendation.out_of_reach
    krs = [k.id for k in scenario.key_results if k.id not in gone]
    if len(krs) < 2:
        return ""
    cands = []
    for o, od in opts.items():
        if o == best:
            continue
        p = {k: od.key_results[k].p_met for k in krs}
        # as printed (two decimals); ties go to the key result listed first
        hi = max(krs, key=lambda k: (round(p[k], 2), -krs.index(k)))
        lo = min(krs, key=lambda k: (round(p[k], 2), krs.index(k)))
        if p[hi] >= 0.6 and p[lo] <= 0.4:
            cands.append((p[hi] - p[lo], o, hi, lo, p))
    if not cands:
        return ""
    _d, o, hi, lo, p = max(cands, key=lambda c: c[0])
    return _(
        "; “{option}” makes the “{high}” target {high_words} (P = {high_p}) but the “{low}” "
        "target {low_words} (P = {low_p})"
    ).format(
        option=opts[o].label,
        high=kr_label(scenario, hi),
        high_words=p_words(p[hi]),
        high_p=fmt_num(p[hi]),
        low=kr_label(scenario, lo),
        low_words=p_words(p[lo]),
        low_p=fmt_num(p[lo]),
    )


def _kr_phrase(scenario: Scenario, kr_id: str) -> str:
    """‘label target’, e.g. ‘Appointments booked / Booking form completed >= 0.70’."""
    return _("‘{label} {target}’").format(
        label=kr_label(scenario, kr_id), target=target_text(scenario, kr_id)
    )


def _out_of_reach_lead(scenario: Scenario, rec: Recommendation) -> str:
    gone = rec.out_of_reach
    if not gone:
        return ""
    names = ", ".join(_kr_phrase(scenario, k) for k in gone)
    return ngettext(
        "No option can reach {names} (P < 0.01 under each option). ",
        "No option can reach {names} (P < 0.01 under each option, for each). ",
        len(gone),
    ).format(names=names)


def _guardrail_words(scenario: Scenario, summary: RunSummary) -> str:
    rec, opts = summary.recommendation, summary.options
    g = rec.guardrails
    if not g.breaks:
        return ""
    parts = []
    for o, krs in g.breaks.items():
        ps = ", ".join(
            _("‘{kr}’ (P = {p})").format(kr=kr_label(scenario, k), p=fmt_num(g.p_broken[o][k]))
            for k in krs
        )
        parts.append(
            _("“{option}” ({axis} {value}) breaks the guardrail {guardrails}").format(
                option=opts[o].label,
                axis=rule_axis(rec),
                value=fmt_num(rec.value[o]),
                guardrails=ps,
            )
        )
    if len(g.breaks) == len(opts):
        return _(
            " Every option risks breaking a guardrail: {parts}; the pick is made among all of them."
        ).format(parts=sep().join(parts))
    return _(" {parts}, so it is not recommended.").format(parts=sep().join(parts))


def _trade_off_words(scenario: Scenario, summary: RunSummary) -> str:
    opts = summary.options
    out = []
    for t in summary.recommendation.trade_offs:
        other = opts[t.option].label
        if t.measure == "p_met":
            out.append(
                _(
                    "“{other}” is more likely to meet the primary key result ‘{kr}’ (P = {p} "
                    "against {pick})"
                ).format(
                    other=other,
                    kr=kr_label(scenario, t.kr),
                    p=fmt_num(t.other),
                    pick=fmt_num(t.pick),
                )
            )
        else:
            out.append(
                _("“{other}” has a higher expected OKR grade ({grade} against {pick})").format(
                    other=other, grade=fmt_num(t.other), pick=fmt_num(t.pick)
                )
            )
    if not out:
        return ""
    return _(" Trade-off: {trade_offs}.").format(trade_offs=sep().join(out[:2]))


def _best_words(rule: str, within: bool) -> str:
    """“{option}” gives the best <what the rule maximises> ({details})."""
    if rule == "all_met":
        if within:
            return _(
                "“{option}” gives the best chance of meeting every key result within reach "
                "({details})"
            )
        return _("“{option}” gives the best chance of meeting every key result ({details})")
    if rule == "expected_grade":
        return _("“{option}” gives the best expected OKR grade ({details})")
    return _("“{option}” gives the best weighted share of key results met ({details})")


def _no_chance_words(rule: str, within: bool) -> str:
    """No option gives any <what the scenario's rule maximises>, so they are {ranked}."""
    if rule == "all_met":
        if within:
            return _(
                "no option gives any chance of meeting every key result within reach (P below "
                "0.01 under each), so the options are {ranked}"
            )
        return _(
            "no option gives any chance of meeting every key result (P below 0.01 under each), "
            "so the options are {ranked}"
        )
    if rule == "expected_grade":
        return _(
            "no option gives any expected OKR grade (P below 0.01 under each), so the options "
            "are {ranked}"
        )
    return _(
        "no option gives any weighted share of key results met (P below 0.01 under each), so "
        "the options are {ranked}"
    )


def answer_sentence(scenario: Scenario, summary: RunSummary) -> str:
    """The answer at the top of reports and the terminal summary: key results out of reach, the
    pick under the rule actually used with its value against the runner-up and how often it comes
    out on top, guardrails broken, and runners-up that beat it on the primary KR or the grade."""
    rec, opts = summary.recommendation, summary.options
    best, rule, gone = rec.option, rec.rule_used, rec.out_of_reach
    breaks = rec.guardrails.breaks
    kept = [o for o in opts if o not in breaks] if len(breaks) < len(opts) else list(opts)
    others = sorted((o for o in kept if o != best), key=lambda o: -rec.value[o])
    lead = _out_of_reach_lead(scenario, rec) + _among(scenario, rec, len(kept) < len(opts))
    tail = _guardrail_words(scenario, summary) + _trade_off_words(scenario, summary)
    tied = [o for o in others if abs(rec.value[o] - rec.value[best]) < 1e-12]
    if tied:
        return _cap(lead + _tie_sentence(scenario, summary, best, tied)) + tail
    details = _pick_details(summary, others)
    if rule != rec.rule:
        ranked = _("ranked by expected OKR grade: “{option}” gets {details}").format(
            option=opts[best].label, details=details
        )
        if len(gone) == len(scenario.key_results):
            return (
                lead
                + _("The options are therefore {ranked}").format(ranked=ranked)
                + _tradeoff(scenario, summary, best)
                + "."
                + tail
            )
        main = _no_chance_words(rec.rule, bool(gone)).format(ranked=ranked)
    else:
        main = _best_words(rule, bool(gone)).format(option=opts[best].label, details=details)
    return _cap(lead + main) + _tradeoff(scenario, summary, best) + "." + tail


def _among(scenario: Scenario, rec: Recommendation, guarded: bool) -> str:
    """What the pick is made among: the key results within reach, the options that keep every
    guardrail (``guarded``: some option breaks one)."""
    gone = rec.out_of_reach
    other_krs = bool(gone) and len(gone) < len(scenario.key_results)
    if other_krs and guarded:
        return _("Among the other key results and the options that keep every guardrail, ")
    if other_krs:
        return _("Among the other key results, ")
    if guarded:
        return _("Among the options that keep every guardrail, ")
    return ""


def _pick_details(summary: RunSummary, others: list[str]) -> str:
    """The pick's value under the rule, against the best of ``others`` (the options it was
    chosen among, best first), and how often it comes out on top."""
    rec, opts = summary.recommendation, summary.options
    value = rec.value[rec.option]
    number = f"P = {fmt_num(value)}" if rec.rule_used == "all_met" else fmt_num(value)
    if not others:
        return number
    vs = _(", against {value} for “{option}”").format(
        value=fmt_num(rec.value[others[0]]), option=opts[others[0]].label
    )
    sure = _("; best in {share} of simulated quarters").format(
        share=fmt_pct(rec.p_best[rec.option], 0)
    )
    return f"{number}{vs}{sure}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _tie_sentence(scenario: Scenario, summary: RunSummary, best: str, tied: list[str]) -> str:
    """The rule cannot separate the best options: say so, and how the tie rule picked."""
    rec, opts = summary.recommendation, summary.options
    value = rec.value[best]
    n = len(scenario.key_results)
    every = len(tied) + 1 == len(opts)
    rule = rec.rule_used
    if rule == "all_met" and value <= 0.05:
        if n == 1:
            krs = _("the key result")
        else:
            krs = {
                2: _("both key results"),
                3: _("all three key results"),
                4: _("all four key results"),
                5: _("all five key results"),
            }.get(n) or _("all {n} key results").format(n=n)
        lead = (
            _("No option can meet {krs} (P = {p} for each)")
            if every
            else _("No option can meet {krs} (P = {p} for each of them)")
        ).format(krs=krs, p=fmt_num(value))
    else:
        lead = (
            _("{n} options tie under the rule ({rule}: {value} for each)")
            if every
            else _("{n} options tie under the rule ({rule}: {value} for each of them)")
        ).format(n=len(tied) + 1, rule=rule_words(rule), value=fmt_num(value))
    g = {o: opts[o].expected_grade for o in [best, *tied]}
    runner = max(tied, key=lambda o: g[o])
    gap = g[best] - g[runner]
    if gap > 1e-12:
        if gap >= 0.2:
            msg = _(
                "{lead}; by expected grade “{option}” is far ahead, {grade} against {other_grade} "
                "for “{other}”."
            )
        elif gap >= 0.05:
            msg = _(
                "{lead}; by expected grade “{option}” is ahead, {grade} against {other_grade} for "
                "“{other}”."
            )
        else:
            msg = _(
                "{lead}; by expected grade “{option}” is slightly ahead, {grade} against "
                "{other_grade} for “{other}”."
            )
        return msg.format(
            lead=lead,
            option=opts[best].label,
            grade=fmt_num(g[best]),
            other_grade=fmt_num(g[runner]),
            other=opts[runner].label,
        )
    msg = (
        _(
            "{lead}, and their expected grades are equal ({grade}); the pick is “{option}”, the "
            "option without changes."
        )
        if best == scenario.control_option
        else _(
            "{lead}, and their expected grades are equal ({grade}); the pick is “{option}”, the "
            "first listed."
        )
    )
    return msg.format(lead=lead, grade=fmt_num(g[best]), option=opts[best].label)


def localized_summary(result) -> RunSummary:
    """The summary of a ``SimulationResult`` with its sentences (the model's, the baselines',
    the sampler's warnings) written again in the current language; in English, the summary as it
    is (its JSON form is always English)."""
    from ..i18n import get_language

    summary = result.run
    if get_language() == "en":
        return summary
    from dataclasses import replace

    from ..model.posterior import describe, diagnostic_warnings

    sentence = describe(result.scenario, result.fit, result.history)["sentence"]
    baselines = {
        k: b if (src := result.targets[k].source) is None else replace(b, describe=src.describe())
        for k, b in summary.baselines.items()
    }
    warnings = diagnostic_warnings(dict(result.fit.diagnostics), result.fit.n_draws)
    return replace(
        summary,
        model=replace(summary.model, sentence=sentence),
        baselines=baselines,
        diagnostics=replace(summary.diagnostics, warnings=warnings),
    )


def text_summary(scenario: Scenario, summary: RunSummary, *, from_cache: bool = False) -> str:
    """The terminal summary of a run: the probability table, the predicted values, the answer and
    how sure it is, what drives it, the model and the sampler (a `summary.json` read back:
    `RunSummary.from_dict`)."""
    name_w = max(len(o.label) for o in summary.options.values()) + 2
    lines = [summary.title, "", _setting_line(scenario, summary, from_cache), ""]
    lines += _probability_table(scenario, summary, name_w)
    lines += ["", _("Predicted value over the horizon: median [80% interval]")]
    for kr in scenario.key_results:
        lines += _predicted_values(scenario, summary, kr, name_w)
    lines += ["", *_answer_lines(scenario, summary)]
    lines += _sensitivity_lines(summary)
    lines += ["", *_sampler_lines(summary)]
    return "\n".join(lines)


def _setting_line(scenario: Scenario, summary: RunSummary, from_cache: bool) -> str:
    """'13 weeks ahead · 4000 draws · seed 2024 · fit from cache'."""
    return _("{horizon} ahead · {draws} draws · seed {seed} · {source}").format(
        horizon=_periods_ahead(scenario),
        draws=summary.draws,
        seed=summary.seed,
        source=_("fit from cache") if from_cache else _("fitted now"),
    )


def _probability_table(scenario: Scenario, summary: RunSummary, name_w: int) -> list[str]:
    """P(met) of each key result, P(all met) and the expected grade, one row per option."""
    krs = [k.id for k in scenario.key_results]
    all_met, grade = _("all met"), _("grade")
    col_w = max(14, *(len(k) + 2 for k in krs), len(all_met) + 2)
    head = " " * name_w + "".join(f"{k:<{col_w}}" for k in krs) + f"{all_met:<{col_w}}{grade}"
    tgt = " " * name_w + "".join(f"{target_text(scenario, k):<{col_w}}" for k in krs)
    if scenario.decision.grading == "aspirational":
        what = _("P(counted as met: aspirational grading, 70% of the way to the target)")
    else:
        what = _("P(target met)")
    lines = [_("{what} ± Monte Carlo error").format(what=what), head, tgt]
    for o in summary.options.values():
        cells = "".join(
            f"{fmt_p(o.key_results[k].p_met, o.key_results[k].p_met_se):<{col_w}}" for k in krs
        )
        lines.append(
            f"{o.label:<{name_w}}{cells}{fmt_p(o.p_all_met, o.p_all_met_se):<{col_w}}"
            f"{fmt_num(o.expected_grade)}"
        )
    return lines


def _predicted_values(
    scenario: Scenario, summary: RunSummary, kr: KeyResult, name_w: int
) -> list[str]:
    """A key result's baseline, target and threshold, then each option's median and 80%
    interval."""
    k = kr.id
    first = next(iter(summary.options.values())).key_results[k]
    num = kr.stages[0]
    val = scenario.funnel[num.removesuffix(".value")].value if num.endswith(".value") else None
    unit = f", {val.unit}" if val is not None and val.unit else ""
    if unit and kr.is_ratio:
        unit += _(" per {stage}").format(
            stage=scenario.stage_label(kr.stages[1].removesuffix(".value"))
        )
    line = _("  {id} ({label}{unit}): baseline {baseline}, target {target}").format(
        id=k,
        label=kr_label(scenario, k),
        unit=unit,
        baseline=fmt_value(first.baseline, kr.is_rate),
        target=fmt_value(first.target, kr.is_rate),
    )
    if first.met_at != first.target:
        line += _(", counted as met at {value}").format(value=fmt_value(first.met_at, kr.is_rate))
    lines = [line]
    for o in summary.options.values():
        d = o.key_results[k]
        lines.append(
            f"    {o.label:<{name_w}}{fmt_value(d.median, kr.is_rate)} "
            + fmt_interval(
                fmt_value(d.interval80[0], kr.is_rate), fmt_value(d.interval80[1], kr.is_rate)
            )
        )
    return lines


def _answer_lines(scenario: Scenario, summary: RunSummary) -> list[str]:
    """The answer, each option's chance of being best and expected loss, the rule, and where
    the baselines come from."""
    rec = summary.recommendation
    lines = [
        _("Answer: {answer}").format(answer=answer_sentence(scenario, summary)),
        _(
            "Under {axis}, each option's chance of being best and expected loss ({what} given "
            "up): {values}"
        ).format(
            axis=rule_axis(rec),
            what=rule_words(rec.rule_used, bool(rec.out_of_reach)),
            values=", ".join(
                f"{o}: {fmt_pct(rec.p_best[o], 0)}, {fmt_num(v, 3)}"
                for o, v in rec.expected_loss.items()
            ),
        ),
        rule_sentence(rec),
    ]
    if summary.baselines:
        lines.append(
            _("Baselines: {baselines}.").format(
                baselines=sep().join(f"{k} {b.describe}" for k, b in summary.baselines.items())
            )
        )
    return lines


def _sensitivity_lines(summary: RunSummary) -> list[str]:
    """The five beliefs that move the rule's value most, and where the pick flips."""
    if not summary.sensitivity:
        return []
    lines = [
        "",
        _("What drives it ({axis} of the belief's option at its 10th → 90th percentile):").format(
            axis=rule_axis(summary.recommendation)
        ),
    ]
    for s in summary.sensitivity[:5]:
        be = s.break_even
        flip = (
            _("; the pick flips from {below} to {above} at {value}").format(
                below=be.below, above=be.above, value=fmt_g(be.value, ".3g")
            )
            if be
            else _("; the pick does not flip within the belief's range")
        )
        lines.append(
            f"  {s.parameter} {fmt_g(s.low, '.3g')} → {fmt_g(s.high, '.3g')}: "
            f"{fmt_num(s.value_low)} → {fmt_num(s.value_high)}{flip}"
        )
    return lines


def _sampler_lines(summary: RunSummary) -> list[str]:
    """The model's choices in a sentence, the sampler's checks and its warnings."""
    d = summary.diagnostics
    verdict = _("no problems found.") if not d.warnings else _("see warnings.")
    return [
        _("Model: {sentence}.").format(sentence=summary.model.sentence),
        ngettext(
            "Sampler: R-hat max {rhat}, ESS min {ess}, {n} divergences — {verdict}",
            "Sampler: R-hat max {rhat}, ESS min {ess}, {n} divergences — {verdict}",
            d.divergences,
        ).format(
            rhat=fmt_num(d.rhat_max, 3),
            ess=fmt_num(d.ess_bulk_min, 0),
            n=d.divergences,
            verdict=verdict,
        ),
        *_decision_lines(d),
        *(_("warning: {warning}").format(warning=w) for w in d.warnings),
    ]


def _decision_lines(d) -> list[str]:
    """What the answer is made of, judged (`engine.soundness`), and what sampling until sound
    did when it sampled more than asked."""
    if d.decision is None:
        return []
    rec = d.decision
    line = _(
        "What decides (each key result's value, each option's P(met)): R-hat max {rhat}, ESS "
        "min {ess}, {draws} draws per chain."
    ).format(
        rhat=fmt_rhat(rec["rhat"]),
        ess=fmt_num(min(rec["ess_bulk"], rec["ess_tail"]), 0),
        draws=fmt_num(rec["draws"], 0),
    )
    note = sound_note(d.to_dict())
    return [line, note] if note else [line]


def _periods_ahead(scenario: Scenario) -> str:
    """'13 weeks' as the terminal's first line writes it (the period word plus 's')."""
    from ..i18n import get_language, periods

    if get_language() == "en":
        return f"{scenario.horizon} {scenario.period}s"
    return periods(scenario.horizon, scenario.period)
