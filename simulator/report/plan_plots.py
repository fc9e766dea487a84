"""The planning section of the decision report (`krsim plan --report`): EVSI and net value of each
test design against its size (one curve per duration), the partial EVPI of each change parameter,
and the recommendation sentence.

Plot functions take the computed plan, accept ``axes=`` and return ``(fig, axes)``; they only draw.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..plan import UNITS, PlanResult
from .compare_plots import _figure_html, _matplotlib, _png, _write_atomic

COLORS = ("#1f5fa8", "#d9822b", "#2a9d6f", "#8e44ad", "#c0392b")


def value_curves(result: PlanResult, axes=None):
    """EVSI (left) and net value against deciding now (middle) by visitors per arm, one curve per
    test duration, with Monte Carlo error bars; partial EVPI bars (right)."""
    plt = _matplotlib()
    if axes is None:
        fig = plt.figure(figsize=(11, 7.2))
        grid = fig.add_gridspec(2, 2, height_ratios=[1.5, 1])
        axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
        axes.append(fig.add_subplot(grid[1, :]))
    else:
        fig = axes[0].figure
    unit = UNITS[result.rule]
    period = result.scenario.period
    ks = sorted({d["periods"] for d in result.designs})
    for i, k in enumerate(ks):
        ds = sorted((d for d in result.designs if d["periods"] == k), key=lambda d: d["per_arm"])
        n = [d["per_arm"] for d in ds]
        c = COLORS[i % len(COLORS)]
        lab = f"{k} {period}{'s' if k > 1 else ''}"
        axes[0].errorbar(
            n, [d["evsi"] for d in ds], yerr=[2 * d["evsi_se"] for d in ds], color=c, marker="o",
            ms=4, capsize=2, label=lab,
        )  # fmt: skip
        axes[1].errorbar(
            n, [d["net_value"] for d in ds], yerr=[2 * d["net_value_se"] for d in ds], color=c,
            marker="o", ms=4, capsize=2, label=lab,
        )  # fmt: skip
    axes[0].axhline(result.evpi, color="#555", ls="--", lw=1)
    axes[0].annotate(
        f"EVPI {result.evpi:.3f}",
        (0.02, result.evpi),
        xycoords=("axes fraction", "data"),
        va="bottom",
        fontsize=8,
        color="#555",
    )
    axes[0].set_title("Value of the test's data (EVSI)", fontsize=10)
    lo, hi = axes[0].get_ylim()  # values near 0 must not look large on an automatic scale
    axes[0].set_ylim(min(lo, -0.002), max(hi, 0.02, 1.1 * result.evpi))
    axes[1].axhline(0, color="#555", lw=1)
    axes[1].set_title("Net value: test, then decide − decide now", fontsize=10)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("visitors per arm")
        ax.set_ylabel(unit)
        ax.legend(title="test length", fontsize=8, title_fontsize=8, frameon=False)
    names = sorted(result.partial_evpi, key=lambda n: result.partial_evpi[n]["value"])
    vals = np.array([result.partial_evpi[n]["value"] for n in names])
    ses = np.array([result.partial_evpi[n]["se"] for n in names])
    ax = axes[2]
    if names:
        ax.barh(range(len(names)), vals, xerr=2 * ses, color=COLORS[0], capsize=2, height=0.5)
        ax.set_ylim(-0.75, len(names) - 0.25)
        for i, (v, se) in enumerate(zip(vals, ses, strict=True)):
            ax.annotate(
                f"{v:.3f} ± {se:.3f}",
                (v + 2 * se, i),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_yticks(range(len(names)), names, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no uncertain change parameter", ha="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.axvline(result.evpi, color="#555", ls="--", lw=1)
    ax.set_xlim(0, max(0.02, 1.15 * float(np.max(vals + 2 * ses, initial=0)), 1.1 * result.evpi))
    ax.set_title("Partial EVPI: worth learning exactly", fontsize=10)
    ax.set_xlabel(unit)
    for a in axes:
        for side in ("top", "right"):
            a.spines[side].set_visible(False)
    fig.tight_layout()
    return fig, axes


def _section_text(result: PlanResult) -> tuple[str, list[list[str]]]:
    s = result.scenario
    lead = (
        f"Should the team test before deciding? Every test below runs all options as arms "
        f"({', '.join(result.arms)}) on a share of the visitors for its first periods, the rest "
        "keeping the current product; the option that then looks best runs for the rest of the "
        f"quarter. Values are in {UNITS[result.rule]}, ± two Monte Carlo errors in the figure. "
        + result.sentence
    )
    table = [
        [
            f"Test length ({s.period}s)",
            "Visitors per arm",
            "Share of traffic",
            "EVSI",
            "Net value",
            "P(decision changes)",
            "Assurance",
        ]
    ]
    for d in result.designs:
        table.append(
            [
                str(d["periods"]),
                f"{d['per_arm']:,}",
                f"{d['share_of_traffic']:.0%}",
                f"{d['evsi']:.3f} ± {d['evsi_se']:.3f}",
                f"{d['net_value']:+.3f} ± {d['net_value_se']:.3f}",
                f"{d['p_decision_changes']:.2f} ± {d['p_decision_changes_se']:.2f}",
                f"{d['assurance']:.2f} ± {d['assurance_se']:.2f}",
            ]
        )
    return lead, table


CAPTION = (
    "Value of information",
    "Top left: what the test's data are worth if the whole quarter were still ahead (EVSI), against "
    "the most any test could be worth (EVPI, dashed). Top right: the quarter with the test in it, "
    "then the better option, against deciding now — the test's periods are part of the "
    "quarter, so this can be negative. Bottom: the value of learning one change parameter "
    "exactly (partial EVPI).",
)


def _html_section(result: PlanResult, png: bytes) -> str:

    e = html.escape
    lead, table = _section_text(result)
    out = ['<section id="plan">', "<h2>Is a test worth it?</h2>", f"<p>{e(lead)}</p>", "<table>"]
    out.append("<tr>" + "".join(f"<th>{e(c)}</th>" for c in table[0]) + "</tr>")
    for row in table[1:]:
        out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    out += [*_figure_html(*CAPTION, png), "</section>"]
    return "\n".join(out) + "\n"


def _markdown_section(result: PlanResult) -> str:
    from .markdown import md

    lead, table = _section_text(result)
    out = ["", "## Is a test worth it?", "", md(lead), ""]
    out.append("| " + " | ".join(md(c) for c in table[0]) + " |")
    out.append("|" + "---:|" * len(table[0]))
    for row in table[1:]:
        out.append("| " + " | ".join(md(c) for c in row) + " |")
    title, caption = CAPTION
    out += ["", f"### {md(title)}", "", "![Value of information](figures/plan_value.png)", ""]
    out += [md(caption), ""]
    return "\n".join(out)


def write_plan_report(result: PlanResult, out_dir: str | Path) -> Path:
    """Write the decision report and add the planning section to its `index.html` and
    `report.md` (each file replaced atomically). Returns the report directory."""
    from ..pipeline import decide
    from . import write_report

    png = _png(value_curves(result)[0])
    d = Path(write_report(decide(result.scenario, result.history, result.fit), out_dir))
    (d / "figures").mkdir(exist_ok=True)
    (d / "figures" / "plan_value.png").write_bytes(png)
    index = d / "index.html"
    page = index.read_text(encoding="utf-8")
    anchor = "</main>" if "</main>" in page else "</body>"
    _write_atomic(index, page.replace(anchor, _html_section(result, png) + anchor, 1))
    report_md = d / "report.md"
    _write_atomic(report_md, report_md.read_text(encoding="utf-8") + _markdown_section(result))
    return d
