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

from ..render import fmt_p, fmt_value, kr_label
from ..track import (
    SWITCH_FLOOR,
    TrackResult,
    seventy_sentence,
    surprise_sentence,
    what_now_rows,
)
from . import words
from .context import ReportFigure, _png
from .html import _embed, _env
from .markdown import md
from .plots import BASELINE, PALETTE, TARGET, _new, _styled, _value_formatter, text
from .writer import report_stem, write_dir, write_page_files

NOW, BEFORE, ACTUAL = PALETTE[0], "#9aa5b1", "#1f2328"


def _running(kr, counts: dict[str, np.ndarray]) -> np.ndarray:
    """The key result accumulated over the quarter per draw: a total's running sum, a ratio's
    running ratio of totals (shape draws x horizon)."""
    if kr.is_ratio:
        a, b = (np.cumsum(counts[s], axis=1) for s in kr.stages)
        return np.divide(a, b, out=np.full(a.shape, np.nan), where=b > 0)
    return np.cumsum(counts[kr.stages[0]], axis=1).astype(float)


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
        now = _running(kr, result.now.counts)
        before = _running(kr, result.before.counts)
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
        what = "running rate" if kr.is_ratio else "cumulative total"
        ax.set_title(
            text(
                f"{kr_label(s, kr.id)} — {what}; P(met) {kt.p_met_before:.2f} before the quarter, "
                f"{kt.p_met:.2f} now ({kt.status.replace('_', ' ')})",
                82,
            ),
            loc="left",
        )
        ax.yaxis.set_major_formatter(_value_formatter(kr.is_rate))
        ax.set_xlim(0, H)
    axs[-1].set_xlabel(f"{s.period}s into the quarter")
    axs[-1].xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    handles = [
        Line2D([], [], color=ACTUAL, lw=2.2, marker="o", ms=3.5, label="actuals so far"),
        Line2D([], [], color=NOW, lw=2, label="forecast from here (median)"),
        Patch(color=NOW, alpha=0.45, label="50% / 80% band from here"),
        Patch(color=BEFORE, alpha=0.35, label="80% band before the quarter"),
        Line2D([], [], color=TARGET, lw=1.3, label="met at (quarter value)"),
        Line2D([], [], color=TARGET, ls="--", lw=1.5, label="needed pace from here"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    return fig, axs


# ------------------------------------------------------------------------------ the context


def _answer(result: TrackResult) -> str:
    s = result.scenario
    k, H = result.periods_done, s.horizon
    unit = s.period if s.period in ("day", "week", "month") else "period"
    opt = s.options[result.option].label or result.option
    off = [kr.id for kr in s.key_results if result.key_results[kr.id].status == "off_track"]
    risk = [kr.id for kr in s.key_results if result.key_results[kr.id].status == "at_risk"]
    state = (
        "every key result is on track"
        if not off and not risk
        else "; ".join(
            x
            for x in (
                f"off track: {', '.join(off)}" if off else "",
                f"at risk: {', '.join(risk)}" if risk else "",
            )
            if x
        )
    )
    return (
        f"{k} of {H} {unit}s into the quarter under “{opt}”, the chance of meeting every key "
        f"result is {fmt_p(result.p_all_met, result.p_all_met_se)} (it was "
        f"{fmt_p(result.p_all_met_before, result.p_all_met_before_se)} before the quarter); "
        f"{state}."
    )


def context(result: TrackResult, figs: list[ReportFigure]) -> dict[str, Any]:
    """What the page says, as plain strings (each writer escapes for its own format)."""
    s = result.scenario
    unit = s.period if s.period in ("day", "week", "month") else "period"
    rows = []
    for kr in s.key_results:
        kt = result.key_results[kr.id]
        r = kr.is_ratio

        rows.append(
            {
                "label": kr_label(s, kr.id),
                "id": kr.id,
                "target": words.target_words(s, kr.id, result.targets[kr.id]),
                "to_date": fmt_value(kt.to_date, r),
                "met_at": fmt_value(kt.met_at, r),
                "pace": fmt_value(kt.needed_pace, r),
                "quarter": f"{fmt_value(kt.median, r)} [{fmt_value(kt.interval80[0], r)}, {fmt_value(kt.interval80[1], r)}]",
                "before": fmt_p(kt.p_met_before, kt.p_met_before_se),
                "now": fmt_p(kt.p_met, kt.p_met_se),
                "p": kt.p_met,
                "grade": f"{kt.expected_grade:.2f}",
                "status": kt.status.replace("_", " "),
                "surprise": "—"
                if kt.surprise_percentile is None
                else f"{kt.surprise_percentile:.1%}" + (" (!)" if kt.surprising else ""),
            }
        )
    th = result.thresholds
    notes = [
        f"Status from P(met): on track at {th.at_risk_below:g} or more, at risk below it, off "
        f"track below {th.off_track_below:g} (tracking thresholds). “Needed per {unit}” is the "
        f"value per {unit} over the rest of the quarter (for a ratio: the rate over the rest) that "
        "would just reach the value at which the target counts as met.",
        "“Surprise” is where the value to date fell in the forecast made before the quarter under "
        "this option (its percentile); (!) marks below the 5th or above the 95th.",
    ]
    sentences = [x for kr in s.key_results if (x := surprise_sentence(result, kr.id))]
    changes = [
        f"{name}: believed {d['prior']['median']:.3g} [{d['prior']['interval90'][0]:.3g}, "
        f"{d['prior']['interval90'][1]:.3g}], now {d['posterior']['median']:.3g} "
        f"[{d['posterior']['interval90'][0]:.3g}, {d['posterior']['interval90'][1]:.3g}] "
        "(median [90% interval])"
        for name, d in result.changes.items()
    ]
    diag = result.diagnostics
    prov = result.provenance
    return {
        "what_now": _what_now(result),
        "title": s.title,
        "description": s.description or "",
        "answer": _answer(result),
        "unit": unit,
        "rows": rows,
        "all": {
            "before": fmt_p(result.p_all_met_before, result.p_all_met_before_se),
            "now": fmt_p(result.p_all_met, result.p_all_met_se),
            "grade_before": f"{result.expected_grade_before:.2f}",
            "grade_now": f"{result.expected_grade:.2f}",
        },
        "notes": notes,
        "surprises": sentences,
        "changes": changes,
        "seventy": [seventy_sentence(result, kr.id) for kr in s.key_results],
        "figures": figs,
        "diagnostics": {
            "ok": not diag["warnings"],
            "warnings": diag["warnings"],
            "numbers": [
                ("largest R-hat", f"{diag['rhat_max']:.3f}"),
                ("smallest bulk ESS", f"{diag['ess_bulk_min']:.0f}"),
                ("divergent transitions", str(diag["divergences"])),
            ],
        },
        "provenance": [
            ("option", result.option),
            ("actuals", str(result.actuals.path) if result.actuals is not None else "none"),
            ("periods", f"{result.periods_done} done, {result.periods_left} left"),
            *[(k, str(v)) for k, v in prov.items() if v is not None],
        ],
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
        "sentence": wn.sentence,
        "head": head,
        "rows": [{"cells": r, "launched": x} for r, x in zip(rows, launched, strict=True)],
        "note": "Each option for the rest of the quarter from the same posterior draws (the "
        "actuals so far, then the forecast of the rest under it), with Monte Carlo errors. "
        "An option wins on P(all met) by more than 2 Monte Carlo errors of the draw-by-draw "
        "difference; closer than that, the higher expected grade wins. When every option's "
        f"P(all met) is below {SWITCH_FLOOR:g}, they are compared on expected grade.",
    }


def figures(result: TrackResult) -> list[ReportFigure]:
    fig, _ = burn_up(result)
    png, w, h = _png(fig)
    return [
        ReportFigure(
            "burn_up",
            "Burn-up: the quarter so far and from here",
            "Each key result accumulated over the quarter: the actuals so far (black), the "
            "forecast of the rest given them (blue: median, 50% and 80% bands), the 80% band "
            "forecast before the quarter (grey), the value at which the target counts as met "
            "(red line) and the pace needed from today to reach it (red, dashed).",
            "Burn-up chart per key result with actuals, forecast bands and target",
            png,
            w,
            h,
        )
    ]


def render_markdown(ctx: dict[str, Any]) -> str:
    out = [f"# {md(ctx['title'])} — the quarter in flight", ""]
    if ctx["description"]:
        out += [md(ctx["description"]), ""]
    out += [f"**{md(ctx['answer'])}**", ""]
    head = [
        "Key result",
        "To date",
        "Met at",
        f"Needed per {ctx['unit']}",
        "Quarter: median [80%]",
        "P(met) before",
        "P(met) now",
        "Status",
        "Surprise",
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
    out.append(f"| All met | | | | | {a['before']} | {a['now']} | | |")
    out += [
        "",
        f"Expected OKR grade: {a['grade_before']} before the quarter, {a['grade_now']} now.",
        "",
    ]
    out += [md(n) + "\n" for n in ctx["notes"]]
    wn = ctx["what_now"]
    if wn:
        out += ["## What now?", "", f"**{md(wn['sentence'])}**", ""]
        out.append("| " + " | ".join(md(h) for h in wn["head"]) + " |")
        out.append("|" + "|".join([":---"] + ["---:"] * (len(wn["head"]) - 1)) + "|")
        for r in wn["rows"]:
            name, *cells = r["cells"]
            out.append("| " + " | ".join([md(name), *cells]) + " |")
        out += ["", md(wn["note"]), ""]
    if ctx["surprises"]:
        out += ["## Surprises", ""] + [f"- {md(x)}" for x in ctx["surprises"]] + [""]
    if ctx["changes"]:
        out += ["## What the actuals say of the change", ""]
        out += [f"- {md(x)}" for x in ctx["changes"]] + [""]
    out += ["## The 70% rule, read both ways", ""] + [f"- {md(x)}" for x in ctx["seventy"]]
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
    out += ["## Sampler diagnostics", ""]
    out += [f"- **warning:** {md(w)}" for w in ctx["diagnostics"]["warnings"]] or ["- no warnings"]
    out += [f"- {name}: {value}" for name, value in ctx["diagnostics"]["numbers"]]
    out += ["", "## Provenance", ""] + [f"- {name}: `{value}`" for name, value in ctx["provenance"]]
    return "\n".join(out) + "\n"


def render_html(ctx: dict[str, Any]) -> str:
    page = dict(ctx, figures=[_embed(f) for f in ctx["figures"]])
    return _env().get_template("track.html.j2").render(**page)


def write_track_report(result: TrackResult, out_dir: str | Path) -> Path:
    """Write ``out_dir/<scenario stem>_track/`` (index.html, report.md, figures/, track.json)
    atomically and return it."""

    def fill(d: Path) -> None:
        figs = figures(result)
        ctx = context(result, figs)
        html, md = render_html(ctx), render_markdown(ctx)
        write_page_files(d, figs, html, md, "track.json", result.to_dict())

    return write_dir(out_dir, f"{report_stem(result)}_track", fill)
