"""The tracking page (`krsim track --report`): the quarter in flight, in the decision report's house
style — one self-contained `index.html`, `report.md` with PNG figures, `track.json` (the `--json`
object) — written atomically like the decision report.

A burn-up chart per key result (the actuals so far, the predictive band for the rest, the forecast
made before the quarter, the value at which the target counts as met, the pace needed from here),
the table of P(met) before the quarter and now, and "what now?": staying with the launched option
against switching now to each other one for the rest of the quarter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..analyses.track import (
    SWITCH_FLOOR,
    TrackResult,
    change_words,
    period_count,
    period_word,
    running_value,
    seventy_sentence,
    status_words,
    surprise_sentence,
    warnings_words,
    what_now_rows,
    what_now_sentence,
)
from ..engine.decision import NEAR_TIE
from ..engine.render import fmt_p, fmt_value, kr_label, sep
from ..i18n import _, fmt_g, fmt_num, fmt_pct, language, period_noun
from . import words
from .figure import ReportFigure, figure_png
from .html import render_page
from .markdown import md
from .plots import (
    BASELINE,
    PALETTE,
    TARGET,
    _new,
    _styled,
    _value_formatter,
    into_the_quarter,
    text,
)
from .writer import page_language, report_stem, write_dir, write_page_files

NOW, BEFORE, ACTUAL = PALETTE[0], "#9aa5b1", "#1f2328"


@_styled
def burn_up(result: TrackResult, *, axes=None):
    """Per key result: the actuals accumulated so far (black), the predictive median and 50%/80%
    bands for the rest of the quarter given them (blue), the 80% band forecast before the quarter
    (grey), the value at which the target counts as met (red) and the pace needed from today to
    reach it (red, dashed)."""
    s = result.scenario
    krs = s.key_results
    H, k = s.horizon, result.periods_done
    if axes is None:
        fig, axs = _new(len(krs), 1, (9, 2.9 * len(krs) + 0.9), sharex=True)
        axs = axs[:, 0]
    else:
        axs = np.asarray(axes)
        fig = axs[0].figure
    x = np.arange(1, H + 1)
    for ax, kr in zip(axs, krs, strict=True):
        kt = result.key_results[kr.id]
        now = running_value(kr, result.now.counts)
        before = running_value(kr, result.before.counts)
        b10, b90 = np.nanquantile(before, [0.1, 0.9], axis=0)
        xs, pad = (x, lambda q: q) if kr.is_ratio else (np.r_[0, x], lambda q: np.r_[0, q])
        ax.fill_between(xs, pad(b10), pad(b90), color=BEFORE, alpha=0.25, lw=0)
        if k < H:
            q10, q25, q50, q75, q90 = np.nanquantile(now, [0.1, 0.25, 0.5, 0.75, 0.9], axis=0)
            lo = max(k - 1, 0) if kr.is_ratio else k  # the band starts at today's value
            xr = xs[lo:] if kr.is_ratio else xs[k:]
            sl = slice(lo, None) if kr.is_ratio else slice(k, None)
            qs = [pad(q)[sl] for q in (q10, q25, q50, q75, q90)]
            ax.fill_between(xr, qs[0], qs[4], color=NOW, alpha=0.15, lw=0)
            ax.fill_between(xr, qs[1], qs[3], color=NOW, alpha=0.3, lw=0)
            ax.plot(xr, qs[2], color=NOW, lw=2)
        if k:
            done = now[0, :k]
            xa = x[:k] if kr.is_ratio else np.r_[0, x[:k]]
            ya = done if kr.is_ratio else np.r_[0, done]
            ax.plot(xa, ya, color=ACTUAL, lw=2.2, marker="o", ms=3.5, zorder=6)
        ax.axhline(kt.met_at, color=TARGET, lw=1.3)
        if kt.needed_pace is not None:
            if kr.is_ratio:
                ax.plot([k, H], [kt.needed_pace] * 2, color=TARGET, ls="--", lw=1.5)
            else:
                start = kt.to_date or 0.0
                ax.plot([k, H], [start, kt.met_at], color=TARGET, ls="--", lw=1.5)
        if k:
            ax.axvline(k, color=BASELINE, lw=0.8, ls=":")
        what = _("running rate") if kr.is_ratio else _("cumulative total")
        ax.set_title(
            text(
                _("{kr} — {what}; P(met) {before} before the quarter, {now} now ({status})").format(
                    kr=kr_label(s, kr.id),
                    what=what,
                    before=fmt_num(kt.p_met_before),
                    now=fmt_num(kt.p_met),
                    status=status_words(kt.status),
                ),
                82,
            ),
            loc="left",
        )
        ax.yaxis.set_major_formatter(_value_formatter(kr.is_rate))
        ax.set_xlim(0, H)
    axs[-1].set_xlabel(into_the_quarter(s))
    axs[-1].xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    handles = [
        Line2D([], [], color=ACTUAL, lw=2.2, marker="o", ms=3.5, label=_("actuals so far")),
        Line2D([], [], color=NOW, lw=2, label=_("forecast from here (median)")),
        Patch(color=NOW, alpha=0.45, label=_("50% / 80% band from here")),
        Patch(color=BEFORE, alpha=0.35, label=_("80% band before the quarter")),
        Line2D([], [], color=TARGET, lw=1.3, label=_("met at (quarter value)")),
        Line2D([], [], color=TARGET, ls="--", lw=1.5, label=_("needed pace from here")),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    return fig, axs


# ------------------------------------------------------------------------------ the context


def _answer(result: TrackResult) -> str:
    s = result.scenario
    k, H = result.periods_done, s.horizon
    opt = s.options[result.option].label or result.option
    off = [kr.id for kr in s.key_results if result.key_results[kr.id].status == "off_track"]
    risk = [kr.id for kr in s.key_results if result.key_results[kr.id].status == "at_risk"]
    state = (
        _("every key result is on track")
        if not off and not risk
        else sep().join(
            x
            for x in (
                _("off track: {krs}").format(krs=", ".join(off)) if off else "",
                _("at risk: {krs}").format(krs=", ".join(risk)) if risk else "",
            )
            if x
        )
    )
    return _(
        "{done} of {periods} into the quarter under “{option}”, the chance of meeting every key "
        "result is {p} (it was {p_before} before the quarter); {state}."
    ).format(
        done=k,
        periods=period_count(H, period_word(s)),
        option=opt,
        p=fmt_p(result.p_all_met, result.p_all_met_se),
        p_before=fmt_p(result.p_all_met_before, result.p_all_met_before_se),
        state=state,
    )


def _kr_rows(result: TrackResult) -> list[dict[str, Any]]:
    """The key results' table: per key result its label, target and numbers as text."""
    s = result.scenario
    rows = []
    for kr in s.key_results:
        kt, r = result.key_results[kr.id], kr.is_ratio
        low, high = (fmt_value(x, r) for x in kt.interval80)
        surprise = "—"
        if kt.surprise_percentile is not None:
            surprise = fmt_pct(kt.surprise_percentile, 1) + (" (!)" if kt.surprising else "")
        rows.append(
            {
                "label": kr_label(s, kr.id),
                "id": kr.id,
                "target": words.target_words(s, kr.id, result.targets[kr.id]),
                "to_date": fmt_value(kt.to_date, r),
                "met_at": fmt_value(kt.met_at, r),
                "pace": fmt_value(kt.needed_pace, r),
                "quarter": f"{fmt_value(kt.median, r)} [{low}, {high}]",
                "before": fmt_p(kt.p_met_before, kt.p_met_before_se),
                "now": fmt_p(kt.p_met, kt.p_met_se),
                "p": kt.p_met,
                "grade": fmt_num(kt.expected_grade),
                "status": status_words(kt.status),
                "surprise": surprise,
            }
        )
    return rows


def _notes(result: TrackResult) -> list[str]:
    """How the table's status and surprise are read."""
    th = result.thresholds
    return [
        _(
            "Status from P(met): on track at {at_risk} or more, at risk below it, off track below "
            "{off_track} (tracking thresholds). “Needed per {period}” is the value per {period} "
            "over the rest of the quarter (for a ratio: the rate over the rest) that would just "
            "reach the value at which the target counts as met."
        ).format(
            at_risk=fmt_g(th.at_risk_below, "g"),
            off_track=fmt_g(th.off_track_below, "g"),
            period=period_noun(period_word(result.scenario)),
        ),
        _(
            "“Surprise” is where the value to date fell in the forecast made before the quarter "
            "under this option (its percentile); (!) marks below the 5th or above the 95th."
        ),
    ]


def _provenance(result: TrackResult) -> list[tuple[str, str]]:
    """The option, the actuals, the periods, and the result's provenance."""
    actuals = str(result.actuals.path) if result.actuals is not None else _("none")
    done = _("{done} done, {left} left").format(done=result.periods_done, left=result.periods_left)
    prov = result.provenance.to_dict()
    return [
        (_("option"), result.option),
        (_("actuals"), actuals),
        (_("periods"), done),
        *[(k, str(v)) for k, v in prov.items() if v is not None],
    ]


def context(result: TrackResult, figs: list[ReportFigure]) -> dict[str, Any]:
    """What the page says, as plain strings (each writer escapes for its own format)."""
    s = result.scenario
    changes = []
    for name, d in result.changes.items():
        before, now = change_words(d)
        changes.append(
            _("{name}: believed {before}, now {now} (median [90% interval])").format(
                name=name, before=before, now=now
            )
        )
    diag = result.diagnostics
    return {
        "what_now": _what_now(result),
        "title": s.title,
        "description": s.description or "",
        "answer": _answer(result),
        "unit": period_noun(period_word(s)),
        "rows": _kr_rows(result),
        "all": {
            "before": fmt_p(result.p_all_met_before, result.p_all_met_before_se),
            "now": fmt_p(result.p_all_met, result.p_all_met_se),
            "grade_before": fmt_num(result.expected_grade_before),
            "grade_now": fmt_num(result.expected_grade),
        },
        "notes": _notes(result),
        "surprises": [x for kr in s.key_results if (x := surprise_sentence(result, kr.id))],
        "changes": changes,
        "seventy": [seventy_sentence(result, kr.id) for kr in s.key_results],
        "figures": figs,
        "diagnostics": {
            "ok": not diag.warnings,
            "warnings": warnings_words(result),
            "numbers": [
                (_("largest R-hat"), fmt_num(diag.rhat_max, 3)),
                (_("smallest bulk ESS"), fmt_num(diag.ess_bulk_min, 0)),
                (_("divergent transitions"), str(diag.divergences)),
                *words.decision_numbers(diag),
            ],
        },
        "provenance": _provenance(result),
    }


def _what_now(result: TrackResult) -> dict[str, Any] | None:
    """The sentence and the options table (header, rows; the launched option's row first and
    marked); None when no period is left."""
    wn = result.what_now
    if wn is None:
        return None
    head, *rows = what_now_rows(result)
    launched = [v.launched for v in wn.options.values()]
    return {
        "sentence": what_now_sentence(result),
        "head": head,
        "rows": [{"cells": r, "launched": x} for r, x in zip(rows, launched, strict=True)],
        "note": _(
            "Each option for the rest of the quarter from the same posterior draws (the actuals "
            "so far, then the forecast of the rest under it), with Monte Carlo errors. An option "
            "wins on P(all met) by more than {tie} and more than 2 Monte Carlo errors of the "
            "draw-by-draw difference; closer than that, the higher expected grade wins. When every "
            "option's P(all met) is below {floor}, they are compared on expected grade."
        ).format(floor=fmt_g(SWITCH_FLOOR, "g"), tie=fmt_g(NEAR_TIE, "g")),
    }


def figures(result: TrackResult) -> list[ReportFigure]:
    fig, _axes = burn_up(result)
    png, w, h = figure_png(fig)
    return [
        ReportFigure(
            "burn_up",
            _("Burn-up: the quarter so far and from here"),
            _(
                "Each key result accumulated over the quarter: the actuals so far (black), the "
                "forecast of the rest given them (blue: median, 50% and 80% bands), the 80% band "
                "forecast before the quarter (grey), the value at which the target counts as met "
                "(red line) and the pace needed from today to reach it (red, dashed)."
            ),
            _("Burn-up chart per key result with actuals, forecast bands and target"),
            png,
            w,
            h,
        )
    ]


def render_markdown(ctx: dict[str, Any]) -> str:
    out = ["# " + _("{title} — the quarter in flight").format(title=md(ctx["title"])), ""]
    if ctx["description"]:
        out += [md(ctx["description"]), ""]
    out += [f"**{md(ctx['answer'])}**", ""]
    head = [
        _("Key result"),
        _("To date"),
        _("Met at"),
        _("Needed per {period}").format(period=ctx["unit"]),
        _("Quarter: median [80%]"),
        _("P(met) before"),
        _("P(met) now"),
        _("Status"),
        _("Surprise"),
    ]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|")
    for r in ctx["rows"]:
        cells = [
            f"{md(r['label'])} ({md(r['target'])})",
            r["to_date"],
            r["met_at"],
            r["pace"],
            r["quarter"],
            r["before"],
            r["now"],
            r["status"],
            r["surprise"],
        ]
        out.append("| " + " | ".join(cells) + " |")
    a = ctx["all"]
    out.append("| " + _("All met") + f" | | | | | {a['before']} | {a['now']} | | |")
    out += [
        "",
        _("Expected OKR grade: {before} before the quarter, {now} now.").format(
            before=a["grade_before"], now=a["grade_now"]
        ),
        "",
    ]
    out += [md(n) + "\n" for n in ctx["notes"]]
    wn = ctx["what_now"]
    if wn:
        out += ["## " + _("What now?"), "", f"**{md(wn['sentence'])}**", ""]
        out.append("| " + " | ".join(md(h) for h in wn["head"]) + " |")
        out.append("|" + "|".join([":---"] + ["---:"] * (len(wn["head"]) - 1)) + "|")
        for r in wn["rows"]:
            name, *cells = r["cells"]
            out.append("| " + " | ".join([md(name), *cells]) + " |")
        out += ["", md(wn["note"]), ""]
    if ctx["surprises"]:
        out += ["## " + _("Surprises"), ""] + [f"- {md(x)}" for x in ctx["surprises"]] + [""]
    if ctx["changes"]:
        out += ["## " + _("What the actuals say of the change"), ""]
        out += [f"- {md(x)}" for x in ctx["changes"]] + [""]
    out += ["## " + _("The 70% rule, read both ways"), ""]
    out += [f"- {md(x)}" for x in ctx["seventy"]]
    out.append("")
    for f in ctx["figures"]:
        out += [
            f"## {md(f.title)}",
            "",
            f"![{md(f.alt)}](figures/{f.name}.png)",
            "",
            md(f.caption),
            "",
        ]
    out += ["## " + _("Sampler diagnostics"), ""]
    out += ["- **" + _("warning:") + f"** {md(w)}" for w in ctx["diagnostics"]["warnings"]] or [
        "- " + _("no warnings")
    ]
    out += [f"- {name}: {value}" for name, value in ctx["diagnostics"]["numbers"]]
    out += ["", "## " + _("Provenance"), ""]
    out += [f"- {name}: `{value}`" for name, value in ctx["provenance"]]
    return "\n".join(out) + "\n"


def render_html(ctx: dict[str, Any]) -> str:
    return render_page("track.html.j2", ctx)


def write_track_report(result: TrackResult, out_dir: str | Path, lang: str | None = None) -> Path:
    """Write ``out_dir/<scenario stem>_track/`` (index.html, report.md, figures/, track.json)
    atomically and return it. ``lang``: the page's language (default: the scenario's); the JSON
    is English whatever the language."""
    with language(page_language(result.scenario, lang)):
        return _write_track_report(result, out_dir)


def _write_track_report(result: TrackResult, out_dir: str | Path) -> Path:
    def fill(d: Path) -> None:
        figs = figures(result)
        ctx = context(result, figs)
        html, md = render_html(ctx), render_markdown(ctx)
        write_page_files(d, figs, html, md, "track.json", result.to_dict())

    return write_dir(out_dir, f"{report_stem(result)}_track", fill)
