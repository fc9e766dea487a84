"""The comparison section of the decision report (`krsim compare --report`): prior vs posterior
densities of the change parameters, the per-stage lift forest plot, the key results' probabilities
before and after the experiment.

Plot functions take the computed comparison, accept ``ax=``/``axes=`` and return ``(fig, axes)``;
they only draw, on figures without pyplot (`sections.new_figure`). `write_comparison_report`
writes the updated decision report with the section in it, once.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..analyses.compare import (
    ComparisonResult,
    arms_words,
    belief_cell,
    sentences_words,
    signed_pct,
)
from ..i18n import _, fmt_g, fmt_num, get_language, language, periods
from ..model.priors import elicit
from .figure import ReportFigure
from .markdown import md
from .sections import (
    Section,
    figure_html,
    figure_markdown,
    new_figure,
    section_figure,
    table_html,
    table_markdown,
)
from .writer import page_language, write_report

BEFORE, AFTER, PRIOR, POSTERIOR = "#9aa5b1", "#1f5fa8", "#9aa5b1", "#1f5fa8"


def _formatter(fn):
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(fn)


def prior_pdf(prior, x: np.ndarray) -> np.ndarray:
    from scipy import stats

    family, p = elicit(prior)
    if family == "beta":
        return stats.beta.pdf(x, *p)
    if family == "lognormal":
        return stats.lognorm.pdf(x, s=p[1], scale=np.exp(p[0]))
    if family == "normal":
        return stats.norm.pdf(x, *p)
    if family == "uniform":
        return stats.uniform.pdf(x, p[0], p[1] - p[0])
    if family == "lognormal_mixture":  # an archive prior: a normal mixture on the log factor
        w, m, s = (np.asarray(p[i::3], dtype=float) for i in range(3))
        xs = np.maximum(np.asarray(x, dtype=float), 1e-300)
        dens = stats.norm.pdf(np.log(xs)[:, None], m, s) @ w / xs
        return np.where(np.asarray(x) > 0, dens, 0.0)
    return np.zeros_like(x)


def beliefs(result: ComparisonResult, axes=None):
    """Prior density and posterior histogram of each uncertain change parameter."""
    from ..io.scenario import change_priors

    prs = {n: p for n, p in change_priors(result.scenario).items() if p.kind != "fixed"}
    names = sorted(prs, key=lambda n: n not in result.tested)
    if axes is None:
        ncols = min(3, max(len(names), 1))
        nrows = max(1, -(-len(names) // ncols))
        fig, axes = new_figure((3.6 * ncols, 2.6 * nrows), nrows, ncols)
    else:
        fig = np.ravel(axes)[0].figure
    flat = np.ravel(axes)
    fit = result.updated.fit
    for ax, name in zip(flat, names, strict=False):
        prior = prs[name]
        post = fit.flat(name) if name in fit.arrays else None
        lo, hi = result.changes[name].prior.interval90
        if post is not None:
            lo, hi = (
                min(lo, float(np.quantile(post, 0.001))),
                max(hi, float(np.quantile(post, 0.999))),
            )
        pad = 0.25 * (hi - lo)
        s_lo, s_hi = prior.support()
        x = np.linspace(max(lo - pad, s_lo), min(hi + pad, s_hi), 400)
        ax.plot(x, prior_pdf(prior, x), color=PRIOR, lw=2, label=_("before (prior)"))
        if post is not None:
            ax.hist(
                post,
                bins=int(np.clip(np.sqrt(post.size), 10, 40)),
                density=True,
                color=POSTERIOR,
                alpha=0.6,
                label=_("after"),
            )
        else:
            ax.text(0.98, 0.95, _("not tested"), ha="right", va="top", transform=ax.transAxes)
        ax.set_title(name, fontsize=9)
        ax.set_yticks([])
        if get_language() != "en":  # the locale's decimal sign
            ax.xaxis.set_major_formatter(_formatter(lambda v, _pos: fmt_g(v, ".3g")))
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    if names:
        flat[0].legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig, axes


def lift_forest(result: ComparisonResult, axes=None):
    """Each arm's relative lift of each stage's conversion over control: median and 95% interval,
    one panel per arm, on a log-ratio axis so that -50% and +100% lie equally far from 0."""
    from matplotlib.ticker import FixedLocator, NullLocator

    s = result.scenario
    arms = list(result.lifts)
    if axes is None:
        heights = [max(len(result.lifts[a]), 1) for a in arms]
        fig, axes = new_figure(
            (8.5, 0.38 * sum(heights) + 0.9 * len(arms) + 0.6),
            len(arms),
            1,
            sharex=True,
            gridspec_kw={"height_ratios": heights},
        )
    else:
        fig = np.ravel(axes)[0].figure
    flat = np.ravel(axes)
    ratios = [1 + v for by in result.lifts.values() for d in by.values() for v in d.interval95]
    lo_all, hi_all = min(ratios + [0.9]), max(ratios + [1.1])
    for ax, arm in zip(flat, arms, strict=True):
        rows = list(result.lifts[arm].items())
        y = np.arange(len(rows))[::-1]
        for yi, (_st, d) in zip(y, rows, strict=True):
            lo, hi = d.interval95
            color = AFTER if lo > 0 else "#b4432f" if hi < 0 else BEFORE
            ax.plot([1 + lo, 1 + hi], [yi, yi], color=color, lw=2.5, solid_capstyle="butt")
            ax.plot([1 + d.median], [yi], "o", color=color, ms=5)
            ax.annotate(
                f"{signed_pct(d.median)}   {_('P(better)')} {fmt_num(d.p_better)}",
                (1.02, yi),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                va="center",
            )
        ax.axvline(1, color="#444", lw=1)
        ax.set_xscale("log")
        ax.set_xlim(lo_all / 1.1, hi_all * 1.1)
        ax.set_yticks(y)
        ax.set_yticklabels([s.stage_label(st) for st, _ in rows], fontsize=8)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_title(s.options[arm].label or arm, fontsize=9, loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    last = flat[len(arms) - 1]
    nice = np.array([-0.9, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 1, 2, 4, 9]) + 1
    inside = nice[(nice >= lo_all / 1.1) & (nice <= hi_all * 1.1)]
    for ax in flat[: len(arms)]:
        ax.xaxis.set_major_locator(FixedLocator(inside))
        ax.xaxis.set_minor_locator(NullLocator())
    last.xaxis.set_major_formatter(_formatter(lambda v, _pos: signed_pct(v - 1, 0)))
    last.set_xlabel(
        _(
            "lift of the conversion rate (value rows: of the value per unit) over control (95% "
            "interval, weak priors)"
        )
        if result.experiment.values
        else _("lift of the conversion rate over control (95% interval, weak priors)")
    )
    fig.subplots_adjust(left=0.24, right=0.76, top=0.94, bottom=0.1, hspace=0.35)
    return fig, axes


def key_results(result: ComparisonResult, ax=None):
    """P(met) of every key result and of all of them, per option, before and after."""
    s = result.scenario
    krs = [k.id for k in s.key_results]
    rows = [(o, k) for o in s.options for k in [*krs, None]]  # option-major, like the table
    if ax is None:
        fig, axes = new_figure((7.5, 0.36 * len(rows) + 1.2))
        ax = axes[0, 0]
    else:
        fig = ax.figure
    y = np.arange(len(rows))[::-1]
    for yi, (o, k) in zip(y, rows, strict=True):
        a = result.p_met(o, k)[0]
        if result.before is not None:
            b = result.p_met(o, k, before=True)[0]
            ax.annotate(
                "",
                (a, yi),
                (b, yi),
                arrowprops={"arrowstyle": "->", "color": "#444", "lw": 1},
            )
            ax.plot([b], [yi], "o", color=BEFORE, label=_("before") if yi == y[0] else None)
        ax.plot(
            [a], [yi], "o", color=AFTER, label=_("after the experiment") if yi == y[0] else None
        )
    ax.set_yticks(y)
    ax.set_yticklabels(
        [f"{s.options[o].label or o} · {_('all met') if k is None else k}" for o, k in rows],
        fontsize=8,
    )
    ax.set_xlim(-0.02, 1.02)
    if get_language() != "en":  # the locale's decimal sign
        ax.xaxis.set_major_formatter(_formatter(lambda v, _pos: fmt_g(v, ".1f")))
    ax.set_xlabel(_("probability that the target is met"))
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig, ax


# --------------------------------------------------------------------------------- the section


def _section_text(result: ComparisonResult) -> tuple[str, list[str], list[list[str]]]:
    """The section's lead, its sentences and the prior/posterior table (plain strings)."""
    srm = result.srm
    lead = _(
        "Experiment results ({arms}, {periods}) compared with the beliefs the decision above was "
        "first made with; the decision above already includes them. "
    ).format(
        arms=arms_words(len(result.experiment.arms)),
        periods=periods(len(result.experiment.periods), "period"),
    )
    lead += (
        _(
            "Warning: sample-ratio mismatch (p = {p}): the traffic split differs from the plan, "
            "so the assignment may be broken."
        ).format(p=fmt_g(srm.p_value, ".2g"))
        if srm.flag
        else _("The traffic split matches the plan (sample-ratio p = {p}).").format(
            p=fmt_g(srm.p_value, ".3g")
        )
    )
    table = [[_("Change parameter"), _("Before: median [90%]"), _("After: median [90%]")]]
    for name, d in result.changes.items():
        table.append(
            [
                name + ("" if name in result.tested else _(" (not tested)")),
                belief_cell(d.prior),
                belief_cell(d.posterior),
            ]
        )
    return lead, list(sentences_words(result).values()), table


def _captions() -> dict[str, tuple[str, str]]:
    """Each figure's title and caption, by file stem, in the section's order."""
    return {
        "compare_beliefs": (
            _("Beliefs before and after the experiment"),
            _(
                "Each change parameter's prior (line) and its posterior given history and "
                "experiment (bars)."
            ),
        ),
        "compare_lifts": (
            _("What the experiment alone says"),
            _(
                "Relative lift of each stage's conversion rate over control, median and 95% "
                "interval under weak priors, with the probability that the arm converts better."
            ),
        ),
        "compare_key_results": (
            _("The quarter before and after the experiment"),
            _(
                "Probability that each key result's target is met, per option, with the beliefs "
                "before (grey) and after the experiment (blue)."
            ),
        ),
    }


def _html_section(result: ComparisonResult, figs: list[ReportFigure]) -> str:
    e = html.escape
    lead, sentences, table = _section_text(result)
    out = ['<section id="experiment">', f"<h2>{e(_('Experiment vs beliefs'))}</h2>"]
    out.append(f"<p>{e(lead)}</p>")
    out += [f"<p>{e(s)}</p>" for s in sentences]
    out += table_html(table)
    for f in figs:
        out += figure_html(f)
    out.append("</section>")
    return "\n".join(out) + "\n"


def _markdown_section(result: ComparisonResult, figs: list[ReportFigure]) -> str:
    lead, sentences, table = _section_text(result)
    out = [f"## {md(_('Experiment vs beliefs'))}", "", md(lead), ""]
    for s in sentences:
        out += [md(s), ""]
    out += table_markdown(table, "|:---|---:|---:|")
    out.append("")
    for f in figs:
        out += figure_markdown(f)
    return "\n".join(out)


def comparison_figures(result: ComparisonResult) -> list[ReportFigure]:
    """The section's figures, encoded as every figure of the reports."""
    drawn = {
        "compare_beliefs": beliefs(result)[0],
        "compare_lifts": lift_forest(result)[0],
        "compare_key_results": key_results(result)[0],
    }
    return [
        section_figure(name, drawn[name], title, caption)
        for name, (title, caption) in _captions().items()
    ]


def comparison_section(result: ComparisonResult) -> Section:
    """The section "Experiment vs beliefs", at the end of the decision page, in the current
    language."""
    figs = comparison_figures(result)
    return Section(_html_section(result, figs), _markdown_section(result, figs), tuple(figs))


def write_comparison_report(
    result: ComparisonResult, out_dir: str | Path, lang: str | None = None
) -> Path:
    """Write the updated decision report with the comparison section at its end: the section is
    rendered first and the directory written once, atomically (`writer.write_report`). ``lang``:
    the pages' language (default: the scenario's). Returns the report directory."""
    with language(page_language(result.scenario, lang)):
        section = comparison_section(result)
        return write_report(result.updated, out_dir, lang=get_language(), sections=[section])
