"""Plain-text rendering of a summary (the terminal table) and the sentences shared with reports."""

from __future__ import annotations

from .scenario import Scenario


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
                f"; did you mean the rate {meant:.2f}? write '{pt.op} {meant:.2f}'"
                if 0 < meant <= 1
                else ""
            )
            out.append(
                f"{where}: {said} on a rate is relative to the baseline rate {t.baseline:.3f}, "
                f"so the target is the rate {t.target:.3f}"
                + (" (outside [0, 1], so it can never be met)" if not 0 <= t.target <= 1 else "")
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
                f"; did you mean '{rel}' (relative to the baseline)?" if 0 < pt.value <= 100 else ""
            )
            out.append(
                f"{where}: {said} is an absolute total of {fmt_value(t.target, False)} over the "
                f"horizon, against a baseline of {fmt_value(t.baseline, False)}, so it is met "
                f"almost surely{hint}"
            )
        elif t.target == t.baseline:
            out.append(
                f"{where}: {said} equals the baseline ({fmt_value(t.baseline, kr.is_rate)}): the "
                "key result is met by standing still"
            )
    return out


def input_notes(scenario: Scenario, history, targets: dict) -> list[str]:
    """What was done to the input or looks unintended, for stderr and the report: the history's
    notes (a sort, ignored columns), its empty cells, and target warnings."""
    from .baselines import window_notes

    notes = list(getattr(history, "notes", ()))
    notes += window_notes(scenario, history)
    notes += [
        f"baseline of {k}: {t.source.note}"
        for k, t in targets.items()
        if t.source is not None and t.source.note
    ]
    n = getattr(history, "n_missing", 0)
    if n:
        notes.append(
            f"{history.path}: {n} empty count {'cell' if n == 1 else 'cells'} (missing data)"
        )
    return notes + target_warnings(scenario, targets)


def fmt_p(p: float, se: float | None = None) -> str:
    s = f"{p:.2f}"
    return s if se is None else f"{s} ±{max(se, 0.005):.2f}" if se >= 0.005 else f"{s} ±<.01"


def fmt_value(x: float | None, ratio: bool) -> str:
    """A rate with three decimals; a total, or an amount per unit (below 1,000, two decimals);
    a dash for a value that does not exist yet (None)."""
    if x is None:
        return "—"
    if ratio:
        return f"{x:.3f}"
    return f"{x:,.0f}" if abs(x) >= 1000 or float(x).is_integer() else f"{x:,.2f}"


def target_text(scenario: Scenario, kr_id: str) -> str:
    kr = next(k for k in scenario.key_results if k.id == kr_id)
    return kr.parsed_target.text()


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
        return v.label if v and v.label else f"{scenario.stage_label(stage)} value"
    return scenario.stage_label(term)


def rule_words(rule: str, within_reach: bool = False) -> str:
    """What a rule maximises, in words."""
    return {
        "all_met": "the chance of meeting every key result"
        + (" within reach" if within_reach else ""),
        "expected_grade": "the expected OKR grade",
        "weighted": "the weighted share of key results met",
    }[rule]


def rule_of(rec: dict) -> str:
    """The rule actually used by a recommendation (summaries before it was recorded: the rule)."""
    return rec.get("rule_used", rec["rule"])


def rule_axis(rec: dict) -> str:
    """The rule's value as an axis or column label."""
    rule = rule_of(rec)
    if rule == "all_met":
        return "P(every key result within reach met)" if rec.get("out_of_reach") else "P(all met)"
    return {"expected_grade": "expected OKR grade", "weighted": "weighted share met"}[rule]


def rule_sentence(rec: dict) -> str:
    """How the recommendation was made, for the report's notes: the rule used and why."""
    rule = rule_of(rec)
    gone = rec.get("out_of_reach") or []
    lead = f"The recommendation maximises {rule_words(rule, bool(gone) and rule == 'all_met')}"
    if rule != rec["rule"]:
        lead += (
            f" (the scenario asks for {rule_words(rec['rule'])}, but no option gives that a "
            "chance, so the options are ranked by how far they get)"
        )
    if rec.get("primary"):
        lead += "; near-ties go to the option best on the primary key result"
    if (rec.get("guardrails") or {}).get("p_broken") and any(
        rec["guardrails"]["p_broken"].values()
    ):
        lead += (
            "; an option that breaks a guardrail with probability above 0.2 is not recommended "
            "while another keeps every guardrail"
        )
    return lead + "."


def p_words(p: float) -> str:
    """How likely, in words."""
    if p >= 0.95:
        return "near certain"
    if p >= 0.75:
        return "likely"
    if p > 0.25:
        return "uncertain"
    if p > 0.05:
        return "unlikely"
    return "almost impossible"


def _tradeoff(scenario: Scenario, summary: dict, best: str) -> str:
    """The clearest trade-off of another option: one target likely, another unlikely."""
    opts = summary["options"]
    gone = summary["recommendation"].get("out_of_reach") or []
    krs = [k.id for k in scenario.key_results if k.id not in gone]
    if len(krs) < 2:
        return ""
    cands = []
    for o, od in opts.items():
        if o == best:
            continue
        p = {k: od["key_results"][k]["p_met"] for k in krs}
        # as printed (two decimals); ties go to the key result listed first
        hi = max(krs, key=lambda k: (round(p[k], 2), -krs.index(k)))
        lo = min(krs, key=lambda k: (round(p[k], 2), krs.index(k)))
        if p[hi] >= 0.6 and p[lo] <= 0.4:
            cands.append((p[hi] - p[lo], o, hi, lo, p))
    if not cands:
        return ""
    _, o, hi, lo, p = max(cands, key=lambda c: c[0])
    return (
        f"; “{opts[o]['label']}” makes the “{kr_label(scenario, hi)}” target {p_words(p[hi])} "
        f"(P = {p[hi]:.2f}) but the “{kr_label(scenario, lo)}” target {p_words(p[lo])} "
        f"(P = {p[lo]:.2f})"
    )


def _kr_phrase(scenario: Scenario, kr_id: str) -> str:
    """‘label target’, e.g. ‘Appointments booked / Booking form completed >= 0.70’."""
    return f"‘{kr_label(scenario, kr_id)} {target_text(scenario, kr_id)}’"


def _out_of_reach_lead(scenario: Scenario, rec: dict) -> str:
    gone = rec.get("out_of_reach") or []
    if not gone:
        return ""
    names = ", ".join(_kr_phrase(scenario, k) for k in gone)
    each = "each option" if len(gone) == 1 else "each option, for each"
    return f"No option can reach {names} (P < 0.01 under {each}). "


def _guardrail_words(scenario: Scenario, summary: dict) -> str:
    rec, opts = summary["recommendation"], summary["options"]
    g = rec.get("guardrails") or {}
    breaks = g.get("breaks") or {}
    if not breaks:
        return ""
    parts = []
    for o, krs in breaks.items():
        ps = ", ".join(f"‘{kr_label(scenario, k)}’ (P = {g['p_broken'][o][k]:.2f})" for k in krs)
        parts.append(
            f"“{opts[o]['label']}” ({rule_axis(rec)} {rec['value'][o]:.2f}) breaks the "
            f"guardrail {ps}"
        )
    if len(breaks) == len(opts):
        return (
            " Every option risks breaking a guardrail: "
            + "; ".join(parts)
            + "; the pick is made among all of them."
        )
    return " " + "; ".join(parts) + ", so it is not recommended."


def _trade_off_words(scenario: Scenario, summary: dict) -> str:
    rec, opts = summary["recommendation"], summary["options"]
    out = []
    for t in rec.get("trade_offs") or []:
        other = opts[t["option"]]["label"]
        if t["measure"] == "p_met":
            out.append(
                f"“{other}” is more likely to meet the primary key result "
                f"‘{kr_label(scenario, t['kr'])}’ (P = {t['other']:.2f} against {t['pick']:.2f})"
            )
        else:
            out.append(
                f"“{other}” has a higher expected OKR grade ({t['other']:.2f} against "
                f"{t['pick']:.2f})"
            )
    if not out:
        return ""
    return " Trade-off: " + "; ".join(out[:2]) + "."


def answer_sentence(scenario: Scenario, summary: dict) -> str:
    """The answer at the top of reports and the terminal summary: key results out of reach, the
    pick under the rule actually used with its value against the runner-up and how often it comes
    out on top, guardrails broken, and runners-up that beat it on the primary KR or the grade."""
    rec = summary["recommendation"]
    opts = summary["options"]
    best = rec["option"]
    label = opts[best]["label"]
    value = rec["value"][best]
    rule = rule_of(rec)
    gone = rec.get("out_of_reach") or []
    breaks = (rec.get("guardrails") or {}).get("breaks") or {}
    kept = [o for o in opts if o not in breaks] if len(breaks) < len(opts) else list(opts)
    others = sorted((o for o in kept if o != best), key=lambda o: -rec["value"][o])
    lead = _out_of_reach_lead(scenario, rec)
    among = []
    if gone and len(gone) < len(scenario.key_results):
        among.append("the other key results")
    if len(kept) < len(opts):
        among.append("the options that keep every guardrail")
    if among:
        lead += "Among " + " and ".join(among) + ", "
    number = f"P = {value:.2f}" if rule == "all_met" else f"{value:.2f}"
    vs = (
        f", against {rec['value'][others[0]]:.2f} for “{opts[others[0]]['label']}”"
        if others
        else ""
    )
    sure = f"; best in {rec['p_best'][best]:.0%} of simulated quarters" if others else ""
    tail = _guardrail_words(scenario, summary) + _trade_off_words(scenario, summary)
    tied = [o for o in others if abs(rec["value"][o] - value) < 1e-12]
    if tied:
        return _cap(lead + _tie_sentence(scenario, summary, best, tied)) + tail
    if rule != rec["rule"]:
        ranked = f"ranked by expected OKR grade: “{label}” gets {number}{vs}{sure}"
        if len(gone) == len(scenario.key_results):
            return f"{lead}The options are therefore {ranked}{_tradeoff(scenario, summary, best)}.{tail}"
        what = rule_words(rec["rule"], bool(gone)).removeprefix("the ")
        main = f"no option gives any {what} (P below 0.01 under each), so the options are {ranked}"
    else:
        main = (
            f"“{label}” gives the best {rule_words(rule, bool(gone)).removeprefix('the ')} "
            f"({number}{vs}{sure})"
        )
    return _cap(lead + main) + _tradeoff(scenario, summary, best) + "." + tail


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _count_words(n: int) -> str:
    return {2: "both", 3: "all three", 4: "all four", 5: "all five"}.get(n, f"all {n}")


def _tie_sentence(scenario: Scenario, summary: dict, best: str, tied: list[str]) -> str:
    """The rule cannot separate the best options: say so, and how the tie rule picked."""
    rec, opts = summary["recommendation"], summary["options"]
    value = rec["value"][best]
    n = len(scenario.key_results)
    each = "each" if len(tied) + 1 == len(opts) else "each of them"
    rule = rule_of(rec)
    if rule == "all_met" and value <= 0.05:
        krs = "the key result" if n == 1 else f"{_count_words(n)} key results"
        lead = f"No option can meet {krs} (P = {value:.2f} for {each})"
    else:
        lead = f"{len(tied) + 1} options tie under the rule ({rule_words(rule)}: {value:.2f} for {each})"
    g = {o: opts[o]["expected_grade"] for o in [best, *tied]}
    runner = max(tied, key=lambda o: g[o])
    gap = g[best] - g[runner]
    if gap > 1e-12:
        ahead = "far ahead" if gap >= 0.2 else "ahead" if gap >= 0.05 else "slightly ahead"
        return (
            f"{lead}; by expected grade “{opts[best]['label']}” is {ahead}, "
            f"{g[best]:.2f} against {g[runner]:.2f} for “{opts[runner]['label']}”."
        )
    return (
        f"{lead}, and their expected grades are equal ({g[best]:.2f}); the pick is "
        f"“{opts[best]['label']}”, "
        + (
            "the option without changes."
            if best == scenario.control_option
            else "the first listed."
        )
    )


def text_summary(scenario: Scenario, summary: dict, *, from_cache: bool = False) -> str:
    krs = [k.id for k in scenario.key_results]
    opts = summary["options"]
    lines = [summary["title"], ""]
    src = "fit from cache" if from_cache else "fitted now"
    lines.append(
        f"{scenario.horizon} {scenario.period}s ahead · {summary['draws']} draws · seed {summary['seed']} · {src}"
    )
    lines.append("")
    name_w = max(len(o["label"]) for o in opts.values()) + 2
    col_w = max(14, *(len(k) + 2 for k in krs))
    head = " " * name_w + "".join(f"{k:<{col_w}}" for k in krs) + f"{'all met':<{col_w}}grade"
    tgt = " " * name_w + "".join(f"{target_text(scenario, k):<{col_w}}" for k in krs)
    if scenario.decision.grading == "aspirational":
        what = "P(counted as met: aspirational grading, 70% of the way to the target)"
    else:
        what = "P(target met)"
    lines += [f"{what} ± Monte Carlo error", head, tgt]
    for o in opts.values():
        cells = "".join(
            f"{fmt_p(o['key_results'][k]['p_met'], o['key_results'][k]['p_met_se']):<{col_w}}"
            for k in krs
        )
        lines.append(
            f"{o['label']:<{name_w}}{cells}{fmt_p(o['p_all_met'], o['p_all_met_se']):<{col_w}}{o['expected_grade']:.2f}"
        )
    lines.append("")
    lines.append("Predicted value over the horizon: median [80% interval]")
    for k in krs:
        kr = next(x for x in scenario.key_results if x.id == k)
        first = next(iter(opts.values()))["key_results"][k]
        num = kr.stages[0]
        val = scenario.funnel[num.removesuffix(".value")].value if num.endswith(".value") else None
        unit = f", {val.unit}" if val is not None and val.unit else ""
        if unit and kr.is_ratio:
            unit += f" per {scenario.stage_label(kr.stages[1].removesuffix('.value'))}"
        lines.append(
            f"  {k} ({kr_label(scenario, k)}{unit}): baseline {fmt_value(first['baseline'], kr.is_rate)}, "
            f"target {fmt_value(first['target'], kr.is_rate)}"
            + (
                f", counted as met at {fmt_value(first['met_at'], kr.is_rate)}"
                if first.get("met_at", first["target"]) != first["target"]
                else ""
            )
        )
        for o in opts.values():
            d = o["key_results"][k]
            lines.append(
                f"    {o['label']:<{name_w}}{fmt_value(d['median'], kr.is_rate)} "
                f"[{fmt_value(d['interval80'][0], kr.is_rate)}, {fmt_value(d['interval80'][1], kr.is_rate)}]"
            )
    lines.append("")
    rec = summary["recommendation"]
    lines.append("Answer: " + answer_sentence(scenario, summary))
    lines.append(
        f"Under {rule_axis(rec)}, each option's chance of being best and expected loss "
        f"({rule_words(rule_of(rec), bool(rec.get('out_of_reach')))} given up): "
        + ", ".join(
            f"{o}: {rec['p_best'][o]:.0%}, {v:.3f}" for o, v in rec["expected_loss"].items()
        )
    )
    lines.append(rule_sentence(rec))
    if summary.get("baselines"):
        lines.append(
            "Baselines: "
            + "; ".join(f"{k} {b['describe']}" for k, b in summary["baselines"].items())
            + "."
        )
    if summary.get("sensitivity"):
        lines.append("")
        lines.append(
            f"What drives it ({rule_axis(rec)} of the belief's option at its 10th → 90th "
            "percentile):"
        )
        for s in summary["sensitivity"][:5]:
            be = s["break_even"]
            flip = (
                f"; the pick flips from {be['below']} to {be['above']} at {be['value']:.3g}"
                if be
                else "; the pick does not flip within the belief's range"
            )
            lines.append(
                f"  {s['parameter']} {s['low']:.3g} → {s['high']:.3g}: "
                f"{s['value_low']:.2f} → {s['value_high']:.2f}{flip}"
            )
    d = summary["diagnostics"]
    lines.append("")
    if "model" in summary:
        lines.append(f"Model: {summary['model']['sentence']}.")
    lines.append(
        f"Sampler: R-hat max {d['rhat_max']:.3f}, ESS min {d['ess_bulk_min']:.0f}, "
        f"{d['divergences']} divergences — "
        + ("no problems found." if not d["warnings"] else "see warnings.")
    )
    for w in d["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
