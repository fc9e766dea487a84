"""The comparison section of the decision report (`krsim compare --report`): prior vs posterior
densities of the change parameters, the per-stage lift forest plot, the key results' probabilities
before and after the experiment.

Plot functions take the computed comparison, accept ``ax=``/``axes=`` and return ``(fig, axes)``;
they only draw. `write_comparison_report` writes the updated decision report and adds the section
to its `index.html` and `report.md`.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import tempfile
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

FIGURES = ("compare_beliefs", "compare_lifts", "compare_key_results")
BEFORE, AFTER, PRIOR, POSTERIOR = "#9aa5b1", "#1f5fa8", "#9aa5b1", "#1f5fa8"


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _prior_pdf(prior, x: np.ndarray) -> np.ndarray:
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

    plt = _matplotlib()
    prs = {n: p for n, p in change_priors(result.scenario).items() if p.kind != "fixed"}
    names = sorted(prs, key=lambda n: n not in result.tested)
    if axes is None:
        ncols = min(3, max(len(names), 1))
        nrows = max(1, -(-len(names) // ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.6 * nrows), squeeze=False)
    else:
        fig = np.ravel(axes)[0].figure
    flat = np.ravel(axes)
    fit = result.updated.fit
    for ax, name in zip(flat, names, strict=False):
        prior = prs[name]
        post = fit.flat(name) if name in fit.arrays else None
        q = result.changes[name]["prior"]["interval90"]
        lo, hi = q[0], q[1]
        if post is not None:
            lo, hi = (
                min(lo, float(np.quantile(post, 0.001))),
                max(hi, float(np.quantile(post, 0.999))),
            )
        pad = 0.25 * (hi - lo)
        s_lo, s_hi = prior.support()
        x = np.linspace(max(lo - pad, s_lo), min(hi + pad, s_hi), 400)
        ax.plot(x, _prior_pdf(prior, x), color=PRIOR, lw=2, label=_("before (prior)"))
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
            ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _pos: fmt_g(v, ".3g")))
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
    plt = _matplotlib()
    from matplotlib.ticker import FixedLocator, NullLocator

    s = result.scenario
    arms = list(result.lifts)
    if axes is None:
        heights = [max(len(result.lifts[a]), 1) for a in arms]
        fig, axes = plt.subplots(
            len(arms),
            1,
            figsize=(8.5, 0.38 * sum(heights) + 0.9 * len(arms) + 0.6),
            squeeze=False,
            sharex=True,
            gridspec_kw={"height_ratios": heights},
        )
    else:
        fig = np.ravel(axes)[0].figure
    flat = np.ravel(axes)
    ratios = [1 + v for by in result.lifts.values() for d in by.values() for v in d["interval95"]]
    lo_all, hi_all = min(ratios + [0.9]), max(ratios + [1.1])
    for ax, arm in zip(flat, arms, strict=True):
        rows = list(result.lifts[arm].items())
        y = np.arange(len(rows))[::-1]
        for yi, (_st, d) in zip(y, rows, strict=True):
            lo, hi = d["interval95"]
            color = AFTER if lo > 0 else "#b4432f" if hi < 0 else BEFORE
            ax.plot([1 + lo, 1 + hi], [yi, yi], color=color, lw=2.5, solid_capstyle="butt")
            ax.plot([1 + d["median"]], [yi], "o", color=color, ms=5)
            ax.annotate(
                f"{signed_pct(d['median'])}   {_('P(better)')} {fmt_num(d['p_better'])}",
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
    last.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _pos: signed_pct(v - 1, 0)))
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
    plt = _matplotlib()
    before = result.before.summary if result.before is not None else None
    after = result.updated.summary
    krs = [k.id for k in result.scenario.key_results]
    rows = [
        (o, k) for o in after["options"] for k in [*krs, "all met"]
    ]  # option-major, like the table
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.36 * len(rows) + 1.2))
    else:
        fig = ax.figure
    y = np.arange(len(rows))[::-1]

    def p(summary: dict, o: str, k: str) -> float:
        od = summary["options"][o]
        return od["p_all_met"] if k == "all met" else od["key_results"][k]["p_met"]

    for yi, (o, k) in zip(y, rows, strict=True):
        a = p(after, o, k)
        if before is not None:
            b = p(before, o, k)
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
        [
            f"{after['options'][o]['label']} · {_('all met') if k == 'all met' else k}"
            for o, k in rows
        ],
        fontsize=8,
    )
    ax.set_xlim(-0.02, 1.02)
    if get_language() != "en":  # the locale's decimal sign
        ax.xaxis.set_major_formatter(_matplotlib().FuncFormatter(lambda v, _pos: fmt_g(v, ".1f")))
    ax.set_xlabel(_("probability that the target is met"))
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig, ax


# --------------------------------------------------------------------------------- the section


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=144, metadata={"Software": None})
    _matplotlib().close(fig)
    return buf.getvalue()


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
        ).format(p=fmt_g(srm["p_value"], ".2g"))
        if srm["flag"]
        else _("The traffic split matches the plan (sample-ratio p = {p}).").format(
            p=fmt_g(srm["p_value"], ".3g")
        )
    )
    table = [[_("Change parameter"), _("Before: median [90%]"), _("After: median [90%]")]]
    for name, d in result.changes.items():
        table.append(
            [
                name + ("" if name in result.tested else _(" (not tested)")),
                belief_cell(d["prior"]),
                belief_cell(d["posterior"]),
            ]
        )
    return lead, list(sentences_words(result).values()), table


def _captions() -> dict[str, tuple[str, str]]:
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


def _html_section(result: ComparisonResult, pngs: dict[str, bytes]) -> str:

    e = html.escape
    lead, sentences, table = _section_text(result)
    out = ['<section id="experiment">', f"<h2>{e(_('Experiment vs beliefs'))}</h2>"]
    out.append(f"<p>{e(lead)}</p>")
    out += [f"<p>{e(s)}</p>" for s in sentences]
    out.append("<table>")
    out.append("<tr>" + "".join(f"<th>{e(c)}</th>" for c in table[0]) + "</tr>")
    for row in table[1:]:
        out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    for name, (title, caption) in _captions().items():
        if name not in pngs:
            continue
        out += _figure_html(title, caption, pngs[name])
    out.append("</section>")
    return "\n".join(out) + "\n"


def _figure_html(title: str, caption: str, png: bytes) -> list[str]:
    """An embedded figure of an added report section: heading, image (data: URI), caption."""
    e = html.escape
    b64 = base64.b64encode(png).decode("ascii")
    return [
        "<figure>",
        f"<h3>{e(title)}</h3>",
        f'<img src="data:image/png;base64,{b64}" alt="{e(title)}" style="max-width:100%">',
        f"<figcaption>{e(caption)}</figcaption>",
        "</figure>",
    ]


def _markdown_section(result: ComparisonResult, pngs: dict[str, bytes]) -> str:
    try:
        from .markdown import md
    except ImportError:  # pragma: no cover - the report package without its Markdown writer

        def md(s: str) -> str:
            return re.sub(r"([\\`*_\[\]|~<>#])", r"\\\1", " ".join(s.split()))

    lead, sentences, table = _section_text(result)
    out = ["", f"## {md(_('Experiment vs beliefs'))}", "", md(lead), ""]
    for s in sentences:
        out += [md(s), ""]
    out.append("| " + " | ".join(md(c) for c in table[0]) + " |")
    out.append("|:---|---:|---:|")
    for row in table[1:]:
        out.append("| " + " | ".join(md(c) for c in row) + " |")
    out.append("")
    for name, (title, caption) in _captions().items():
        if name in pngs:
            out += [f"### {md(title)}", "", f"![{md(title)}](figures/{name}.png)", "", md(caption)]
            out.append("")
    return "\n".join(out)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_comparison_report(
    result: ComparisonResult, out_dir: str | Path, lang: str | None = None
) -> Path:
    """Write the updated decision report (when the report writer is available) and add the
    comparison section to it; without the writer, write the section alone as `comparison.md`
    with its figures. ``lang``: the pages' language (default: the scenario's). Returns the report
    directory."""
    with language(lang or getattr(result.scenario, "language", None) or "en"):
        return _write_comparison_report(result, out_dir)


def _write_comparison_report(result: ComparisonResult, out_dir: str | Path) -> Path:
    pngs = {
        "compare_beliefs": _png(beliefs(result)[0]),
        "compare_lifts": _png(lift_forest(result)[0]),
        "compare_key_results": _png(key_results(result)[0]),
    }
    try:
        from . import write_report
    except ImportError:
        write_report = None
    if write_report is not None:
        d = Path(write_report(result.updated, out_dir, lang=get_language()))
    else:
        d = Path(out_dir) / f"{result.scenario.id}-compare"
        d.mkdir(parents=True, exist_ok=True)
    (d / "figures").mkdir(exist_ok=True)
    for name, png in pngs.items():
        (d / "figures" / f"{name}.png").write_bytes(png)
    index = d / "index.html"
    if index.exists():
        page = index.read_text(encoding="utf-8")
        section = _html_section(result, pngs)
        anchor = "</main>" if "</main>" in page else "</body>"
        page = page.replace(anchor, section + anchor, 1)
        _write_atomic(index, page)
    report_md = d / "report.md"
    section_md = _markdown_section(result, pngs)
    if report_md.exists():
        _write_atomic(report_md, report_md.read_text(encoding="utf-8") + section_md)
    else:
        _write_atomic(d / "comparison.md", section_md.lstrip("\n"))
    return d
