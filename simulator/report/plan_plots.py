"""The planning section of the decision report (`krsim plan --report`): EVSI and net value of each
test design against its size (one curve per duration), the partial EVPI of each change parameter,
and the recommendation sentence.

Plot functions take the computed plan, accept ``axes=`` and return ``(fig, axes)``; they only
draw, on figures without pyplot (`sections.blank_figure`). `write_plan_report` writes the
decision report with the section in it, once.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..analyses.plan import WORTH_NOTHING, PlanResult, p_change_text, sentence_words, unit_words
from ..i18n import (
    _,
    fmt_g,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_signed,
    get_language,
    language,
    period_noun,
    periods,
)
from .figure import ReportFigure
from .markdown import md
from .sections import (
    Section,
    blank_figure,
    figure_html,
    figure_markdown,
    section_figure,
    table_html,
    table_markdown,
)
from .writer import json_text, page_language, write_report

COLORS = ("#1f5fa8", "#d9822b", "#2a9d6f", "#8e44ad", "#c0392b")


def _curves(result: PlanResult, axes) -> None:
    """EVSI (``axes[0]``) and net value (``axes[1]``) by visitors per arm, one curve per test
    length, with error bars of two Monte Carlo errors; the EVPI as a dashed line."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    period = result.scenario.period
    for i, k in enumerate(sorted({d.periods for d in result.designs})):
        ds = sorted((d for d in result.designs if d.periods == k), key=lambda d: d.per_arm)
        n = [d.per_arm for d in ds]
        c = COLORS[i % len(COLORS)]
        lab = periods(k, period)
        axes[0].errorbar(
            n, [d.evsi for d in ds], yerr=[2 * d.evsi_se for d in ds], color=c, marker="o",
            ms=4, capsize=2, label=lab,
        )  # fmt: skip
        axes[1].errorbar(
            n, [d.net_value for d in ds], yerr=[2 * d.net_value_se for d in ds], color=c,
            marker="o", ms=4, capsize=2, label=lab,
        )  # fmt: skip
    axes[0].axhline(result.evpi, color="#555", ls="--", lw=1)
    axes[0].annotate(
        f"EVPI {fmt_num(result.evpi, 3)}",
        (0.02, result.evpi),
        xycoords=("axes fraction", "data"),
        va="bottom",
        fontsize=8,
        color="#555",
    )
    axes[0].set_title(_("Value of the test's data (EVSI)"), fontsize=10)
    lo, hi = axes[0].get_ylim()  # values near 0 must not look large on an automatic scale
    axes[0].set_ylim(min(lo, -0.002), max(hi, 0.02, 1.1 * result.evpi))
    axes[1].axhline(0, color="#555", lw=1)
    axes[1].set_title(_("Net value: test, then decide − decide now"), fontsize=10)
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fmt_int(x)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        if get_language() != "en":  # the locale's decimal sign
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: fmt_g(y, ".3g")))
        ax.set_xlabel(_("visitors per arm"))
        ax.set_ylabel(unit_words(result))
        ax.legend(title=_("test length"), fontsize=8, title_fontsize=8, frameon=False)


def _partial_bars(result: PlanResult, ax) -> None:
    """The partial EVPI of each change parameter, with two Monte Carlo errors, against the
    EVPI (dashed)."""
    from matplotlib.ticker import FuncFormatter

    names = sorted(result.partial_evpi, key=lambda n: result.partial_evpi[n].value)
    vals = np.array([result.partial_evpi[n].value for n in names])
    ses = np.array([result.partial_evpi[n].se for n in names])
    if names:
        ax.barh(range(len(names)), vals, xerr=2 * ses, color=COLORS[0], capsize=2, height=0.5)
        ax.set_ylim(-0.75, len(names) - 0.25)
        for i, (v, se) in enumerate(zip(vals, ses, strict=True)):
            ax.annotate(
                f"{fmt_num(v, 3)} ± {fmt_num(se, 3)}",
                (v + 2 * se, i),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_yticks(range(len(names)), names, fontsize=8)
    else:
        ax.text(0.5, 0.5, _("no uncertain change parameter"), ha="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.axvline(result.evpi, color="#555", ls="--", lw=1)
    ax.set_xlim(0, max(0.02, 1.15 * float(np.max(vals + 2 * ses, initial=0)), 1.1 * result.evpi))
    ax.set_title(_("Partial EVPI: worth learning exactly"), fontsize=10)
    ax.set_xlabel(unit_words(result))
    if get_language() != "en":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fmt_g(x, ".3g")))


def value_curves(result: PlanResult, axes=None):
    """EVSI (left) and net value against deciding now (middle) by visitors per arm, one curve per
    test duration, with Monte Carlo error bars; partial EVPI bars (right)."""
    if axes is None:
        fig = blank_figure((11, 7.2))
        grid = fig.add_gridspec(2, 2, height_ratios=[1.5, 1])
        axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
        axes.append(fig.add_subplot(grid[1, :]))
    else:
        fig = axes[0].figure
    _curves(result, axes)
    _partial_bars(result, axes[2])
    for a in axes:
        for side in ("top", "right"):
            a.spines[side].set_visible(False)
    fig.tight_layout()
    return fig, axes


def _section_text(result: PlanResult) -> tuple[str, list[list[str]], str | None]:
    """The lead paragraph, the table of designs (header row first) and the table's footnote, in
    the current language."""
    s = result.scenario
    untested = [o for o in s.options if o not in result.arms]
    lead = (
        _(
            "Should the team test before deciding? Every test below runs all options {arms} as "
            "arms on a share of the visitors for its first periods, the rest keeping the current "
            "product; the option that then looks best runs for the rest of the quarter. "
        )
        if not untested
        else _(
            "Should the team test before deciding? Every test below runs the options {arms} as "
            "arms on a share of the visitors for its first periods, the rest keeping the current "
            "product; the option that then looks best runs for the rest of the quarter. "
        )
    ).format(arms=", ".join(result.arms))
    if untested:
        lead += _(
            "Not tested: {options} (no visitors during the test; still choosable after it, on "
            "what is known today). "
        ).format(options=", ".join(untested))
    lead += _(
        "Values are in {unit}, ± one Monte Carlo error in the table and two in the figure. "
    ).format(unit=unit_words(result))
    lead += sentence_words(result)
    table = [
        [
            _("Test length ({periods})").format(periods=period_noun(s.period, 2))
            if get_language() != "en"
            else f"Test length ({s.period}s)",
            _("Visitors per arm"),
            _("Share of traffic"),
            "EVSI",
            _("Net value"),
            _("Exposure value"),
            _("P(decision changes)"),
            _("Assurance"),
        ]
    ]
    for d in result.designs:
        table.append(
            [
                str(d.periods),
                fmt_int(d.per_arm),
                fmt_pct(d.share_of_traffic, 0),
                f"{fmt_num(d.evsi, 3)} ± {fmt_num(d.evsi_se, 3)}",
                f"{fmt_signed(d.net_value, 3)} ± {fmt_num(d.net_value_se, 3)}",
                f"{fmt_signed(d.exposure_value, 3)} ± {fmt_num(d.exposure_value_se, 3)}",
                p_change_text(d),
                f"{fmt_num(d.assurance, 2)} ± {fmt_num(d.assurance_se, 2)}",
            ]
        )
    marked = any(p_change_text(d).endswith("*") for d in result.designs)
    return lead, table, _(WORTH_NOTHING) if marked else None


def _caption() -> tuple[str, str]:
    return (
        _("Value of information"),
        _(
            "Top left: what the test's data are worth if the whole quarter were still ahead "
            "(EVSI), against the most any test could be worth (EVPI, dashed). Top right: the "
            "quarter with the test in it, then the better option, against deciding now — the "
            "test's periods are part of the quarter, so this can be negative. Bottom: the value "
            "of learning one change parameter exactly (partial EVPI)."
        ),
    )


def _html_section(result: PlanResult, fig: ReportFigure) -> str:
    e = html.escape
    lead, table, foot = _section_text(result)
    out = ['<section id="plan">', f"<h2>{e(_('Is a test worth it?'))}</h2>", f"<p>{e(lead)}</p>"]
    out += table_html(table)
    if foot:
        out.append(f'<p class="note">{e(foot)}</p>')
    out += [*figure_html(fig), "</section>"]
    return "\n".join(out) + "\n"


def _markdown_section(result: PlanResult, fig: ReportFigure) -> str:
    lead, table, foot = _section_text(result)
    out = [f"## {md(_('Is a test worth it?'))}", "", md(lead), ""]
    out += table_markdown(table, "|" + "---:|" * len(table[0]))
    if foot:
        out += ["", md(foot)]
    out += ["", *figure_markdown(fig)]
    return "\n".join(out)


def plan_section(result: PlanResult) -> Section:
    """The section "Is a test worth it?", with the decision (after the assumptions the pick rests
    on, before the sampler diagnostics and the provenance), in the current language."""
    title, caption = _caption()
    fig = section_figure("plan_value", value_curves(result)[0], title, caption)
    return Section(_html_section(result, fig), _markdown_section(result, fig), (fig,), "decision")


def write_plan_report(result: PlanResult, out_dir: str | Path, lang: str | None = None) -> Path:
    """Write the decision report with the planning section in it, and the plan as `plan.json`:
    the section is rendered first and the directory written once, atomically
    (`writer.write_report`). ``lang``: the page's language (default: the scenario's); the JSON is
    English whatever the language. Returns the report directory."""
    from ..engine.pipeline import decide

    with language(page_language(result.scenario, lang)):
        section = plan_section(result)
        decision = decide(result.scenario, result.history, result.fit)
        files = {"plan.json": json_text(result.to_dict())}  # as `krsim plan --json` prints it
        return write_report(decision, out_dir, lang=get_language(), sections=[section], files=files)
