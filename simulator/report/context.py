"""What the report says, computed once from a result and shared by the HTML and Markdown writers:
the answer, the table, the figures, the assumptions, the diagnostics and the provenance.

Strings here are plain text (scenario strings unescaped); each writer escapes for its own format.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any, NamedTuple

from ..engine.pipeline import SimulationResult
from ..engine.render import (
    answer_sentence,
    fmt_p,
    input_notes,
    kr_label,
    localized_summary,
    rule_axis,
    rule_sentence,
    rule_words,
)
from ..engine.summary import Recommendation, RunSummary
from ..i18n import _, fmt_int, fmt_num, fmt_pct
from ..io.scenario import Scenario
from . import words
from .figure import ReportFigure, figure_png


class _Spec(NamedTuple):
    """A figure to draw: its file stem, heading, caption and alt text, and how to draw it."""

    name: str
    title: str
    caption: str
    alt: str
    draw: Callable[[], Any]


def figures(result: SimulationResult) -> list[ReportFigure]:
    """Draw every figure of the report (plots only: the numbers come from ``result``)."""
    s = result.scenario
    summary = localized_summary(result)
    specs = [
        _funnel_spec(result),
        *_kr_specs(result),
        *_joint_specs(result),
        *_product_specs(result, summary),
        *_value_check_specs(result),
        _progress_spec(result),
        *_sensitivity_specs(s, summary),
    ]
    out = []
    for spec in specs:
        fig, _axes = spec.draw()
        png, w, h = figure_png(fig)
        out.append(ReportFigure(spec.name, spec.title, spec.caption, spec.alt, png, w, h))
    return out


def _funnel_spec(result: SimulationResult) -> _Spec:
    from . import plots

    s = result.scenario
    return _Spec(
        "funnel",
        _("The funnel today"),
        _(
            "Left: how many users reach each stage per {period} (last {horizon} of history). "
            "Right: each stage's typical {period}ly conversion from the stage above, as the "
            "model estimates it from the history (dot and 90% interval), and the rate observed "
            "over the whole history (black tick)."
        ).format(period=words.period_word(s), horizon=words.horizon_words(s)),
        _("Funnel stages with their volume and conversion rates"),
        lambda: plots.funnel(s, result.fit, result.history),
    )


def _kr_specs(result: SimulationResult) -> list[_Spec]:
    """One figure per key result: its predictive distribution under each option."""
    from . import plots

    s, ev, tg = result.scenario, result.evaluation, result.targets
    return [
        _Spec(
            f"kr_{kr.id}",
            _("{kr}: what each option would give").format(kr=kr_label(s, kr.id)),
            _(
                "Each row shows the simulated quarters of one option ({unit}); the darker "
                "part meets the target. The dotted line is the baseline, the dashed line the "
                "target."
            ).format(unit=words.kr_unit(s, kr.id)),
            _("Predicted {kr} per option against the target").format(kr=kr_label(s, kr.id)),
            lambda kr_id=kr.id: plots.kr_distribution(s, ev, tg, kr_id, title=False),
        )
        for kr in s.key_results
    ]


def _joint_specs(result: SimulationResult) -> list[_Spec]:
    """The first two key results against each other (none with a single key result)."""
    from . import plots

    s, ev, tg = result.scenario, result.evaluation, result.targets
    if len(s.key_results) < 2:
        return []
    kx, ky = (k.id for k in s.key_results[:2])
    return [
        _Spec(
            "joint",
            _("{first} and {second} together").format(
                first=kr_label(s, kx), second=kr_label(s, ky)
            ),
            _(
                "Each dot is one simulated quarter. In the shaded corner both targets are "
                "met; a change that helps one key result and hurts the other moves the cloud "
                "across it."
            ),
            _("Joint distribution of {first} and {second} per option").format(
                first=kr_label(s, kx), second=kr_label(s, ky)
            ),
            lambda: plots.kr_joint(s, ev, tg),
        )
    ]


def _product_specs(result: SimulationResult, summary: RunSummary) -> list[_Spec]:
    """One figure per total-value key result that is a count KR times a per-unit KR."""
    from ..model.values import decomposition
    from . import plots

    s, ev, tg = result.scenario, result.evaluation, result.targets
    return [
        _Spec(
            f"product_{total}",
            f"{kr_label(s, total)} = {kr_label(s, count)} × {kr_label(s, per_unit)}",
            words.product_caption(s, summary, tg, total, count, per_unit),
            _(
                "Joint draws of {count} and {per_unit} per option, with the {total} target as "
                "a curve"
            ).format(
                count=kr_label(s, count),
                per_unit=kr_label(s, per_unit),
                total=kr_label(s, total),
            ),
            lambda t=total, c=count, u=per_unit: plots.kr_product(s, ev, tg, t, c, u),
        )
        for total, count, per_unit in decomposition(s)
    ]


def _value_check_specs(result: SimulationResult) -> list[_Spec]:
    """The value model's predictive check, when a stage carries values."""
    from . import plots

    s = result.scenario
    if not any(st.value for st in s.funnel.values()):
        return []
    return [
        _Spec(
            "value_check",
            _("Does the value model fit the history?"),
            words.value_check_caption(s, result.fit, result.history),
            _("Observed value per unit per period against the model's predictive bands"),
            lambda: plots.value_check(s, result.fit, result.history),
        )
    ]


def _progress_spec(result: SimulationResult) -> _Spec:
    from . import plots

    s = result.scenario
    return _Spec(
        "progress",
        _("Progress over the {horizon}").format(horizon=words.horizon_words(s)),
        _(
            "How each key result builds up: median line with 50% and 80% bands. For totals "
            "the dashed line is the pace that reaches the target at the end; for rates it is "
            "the target itself. Useful to check progress mid-quarter."
        ),
        _("Cumulative progress of each key result per option"),
        lambda: plots.kr_progress(s, result.forecast, result.targets),
    )


def _sensitivity_specs(s: Scenario, summary: RunSummary) -> list[_Spec]:
    """The tornado chart of the beliefs, when some belief is uncertain."""
    from . import plots

    if not summary.sensitivity:
        return []
    return [
        _Spec(
            "sensitivity",
            _("What drives the decision"),
            _(
                "Each bar shows {axis} for the belief's option when that belief is at its "
                "pessimistic or optimistic end (10th and 90th percentile), the other beliefs "
                "unchanged. Where a bar crosses the grey diamond the pick can flip."
            ).format(axis=rule_axis(summary.recommendation)),
            _("Sensitivity of the decision to each belief"),
            lambda: plots.sensitivity(s, summary),
        )
    ]


def _guard_text(s: Scenario, rec: Recommendation, option: str) -> str:
    """Each guardrail's P(broken) under the option, e.g. ‘Appointments booked’ 0.93."""
    risks = rec.guardrails.p_broken.get(option, {})
    return ", ".join(
        _("‘{kr}’ {p}").format(kr=kr_label(s, k), p=fmt_num(p)) for k, p in risks.items()
    )


def context(result: SimulationResult, figs: list[ReportFigure]) -> dict[str, Any]:
    """Everything the templates show, as plain data."""
    s, tg = result.scenario, result.targets
    summary = localized_summary(result)
    rec = summary.recommendation
    within_reach = rec.rule_used == "all_met" and bool(rec.out_of_reach)
    return {
        "title": summary.title,
        "description": (s.description or "").strip(),
        "answer": answer_sentence(s, summary),
        "setting": _(
            "{horizon} ahead · {draws} simulated quarters per option · seed {seed}"
        ).format(horizon=words.horizon_words(s), draws=fmt_int(summary.draws), seed=summary.seed),
        "rule": rule_words(rec.rule_used, bool(rec.out_of_reach)),
        "rule_axis": rule_axis(rec),
        # the rule's value beside P(all met) when key results out of reach are left out of it
        "within_reach": within_reach,
        "rule_note": rule_sentence(rec),
        "grade_note": words.grade_note(),
        "guarded": any(rec.guardrails.p_broken.values()),
        "columns": _columns(s, tg),
        "p_heading": _p_heading(s),
        "rows": _rows(s, summary),
        "details": _details(s, summary, tg),
        "figures": figs,
        "beliefs": _beliefs(s),
        "optimism": _optimism(result),
        "assumptions": words.model_assumptions(s, summary.model, summary.baselines),
        "diagnostics": _diagnostics(summary),
        "provenance": _provenance(s, summary, result.fit.chains),
        "input_notes": input_notes(s, result.history, tg),
        "reproducible": _(
            "Rerunning krsim report on this installation (the same krsim, PyMC and compiled "
            "model) with the same scenario, data, seed and draws gives identical numbers; on "
            "another machine or installation the numbers agree within the Monte Carlo errors shown."
        ),
    }


def _columns(s: Scenario, tg: dict) -> list[dict[str, str]]:
    """The table's key-result columns: label, objective and target in words."""
    return [
        {
            "id": kr.id,
            "label": kr_label(s, kr.id),
            "objective": kr.objective or "",
            "target": words.target_words(s, kr.id, tg[kr.id]),
        }
        for kr in s.key_results
    ]


def _p_heading(s: Scenario) -> str:
    if s.decision.grading == "aspirational":
        return _(
            "Probability that the key result counts as met (aspirational grading: 70% of the way "
            "from baseline to target)"
        )
    return _("Probability that the target is met")


def _rows(s: Scenario, summary: RunSummary) -> list[dict[str, Any]]:
    """One table row per option: P(met) of each key result, P(all met), the grade, the rule's
    value, P(best), the expected loss and the guardrails' risks."""
    rec = summary.recommendation
    return [
        {
            "id": o,
            "label": od.label,
            "recommended": o == rec.option,
            "cells": [
                {"text": fmt_p(d.p_met, d.p_met_se), "p": d.p_met}
                for d in (od.key_results[kr.id] for kr in s.key_results)
            ],
            "all_met": {"text": fmt_p(od.p_all_met, od.p_all_met_se), "p": od.p_all_met},
            "grade": fmt_num(od.expected_grade),
            "within_reach": {
                "text": fmt_p(rec.value[o], rec.value_se.get(o)),
                "p": rec.value[o],
            },
            "p_best": fmt_pct(rec.p_best[o], 0),
            "loss": fmt_num(rec.expected_loss[o], 3),
            "guard": _guard_text(s, rec, o),
        }
        for o, od in summary.options.items()
    ]


def _details(s: Scenario, summary: RunSummary, tg: dict) -> list[dict[str, Any]]:
    """Per key result: its unit, baseline and target, and each option's median, 80% interval,
    P(70% of the way) and expected grade."""
    out = []
    for kr in s.key_results:
        k, ratio = kr.id, words.is_ratio(s, kr.id)
        source = summary.baselines.get(k)
        out.append(
            {
                "label": kr_label(s, k),
                "unit": words.kr_unit(s, k),
                "baseline": words.kr_value(tg[k].baseline, ratio),
                "baseline_from": source.describe if source is not None else "",
                "target": words.target_words(s, k, tg[k]),
                "options": [
                    {
                        "label": od.label,
                        "median": words.kr_value(od.key_results[k].median, ratio),
                        "low": words.kr_value(od.key_results[k].interval80[0], ratio),
                        "high": words.kr_value(od.key_results[k].interval80[1], ratio),
                        "p70": fmt_num(od.key_results[k].p_progress70),
                        "grade": fmt_num(od.key_results[k].expected_grade),
                    }
                    for od in summary.options.values()
                ],
            }
        )
    return out


def _beliefs(s: Scenario) -> list[dict[str, Any]]:
    """Each option with its description and its beliefs in words."""
    bel = words.beliefs(s)
    return [
        {
            "label": opt.label or o,
            "description": opt.description or "",
            "sentences": [b.sentence for b in bel if b.option == o]
            or [_("No change: the product as it is today.")],
        }
        for o, opt in s.options.items()
    ]


def _diagnostics(summary: RunSummary) -> dict[str, Any]:
    d = summary.diagnostics
    return {
        "verdict": words.diagnostics_verdict(d),
        "ok": not d.warnings,
        "numbers": [
            *words.parameter_numbers(d),
            (_("Divergent transitions (want 0)"), str(d.divergences)),
            *words.decision_numbers(d),
        ],
        "warnings": list(d.warnings),
    }


def _provenance(s: Scenario, summary: RunSummary, n_chains: int) -> list[tuple[str, str]]:
    prov = summary.provenance
    return [
        (_("Scenario file"), s.source.name if s.source else s.id),
        (_("Scenario SHA-256"), prov.scenario_sha256),
        ("krsim", prov.krsim),
        ("PyMC", prov.pymc),
        ("Python", platform.python_version()),
        (_("Seed"), str(summary.seed)),
        (
            _("Draws"),
            _("{draws} ({chains} chains × {per_chain})").format(
                draws=fmt_int(summary.draws),
                chains=n_chains,
                per_chain=fmt_int(summary.draws // max(n_chains, 1)),
            ),
        ),
        (_("Created"), prov.created),
    ]


def _optimism(result: SimulationResult) -> dict[str, Any] | None:
    """How much does our optimism matter? The team's belief against the archive's for each
    change whose prior comes from the archive (`archive_optimism.optimism_rows`); None otherwise."""
    from ..io.scenario import change_priors

    if not any(p.kind == "from_archive" for p in change_priors(result.scenario).values()):
        return None
    from .archive_optimism import optimism_rows

    return optimism_rows(result)
