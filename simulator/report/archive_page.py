"""The archive's page (`krsim archive --report`): what past experiments say, in the reports' house
style — one self-contained `index.html`, `report.md` with its PNG figure, and `archive.json` (the
`--json` object) — written atomically like the other reports.

The decision report's section "How much does our optimism matter?" is `archive_optimism`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..model.archive import pct
from ..model.archive_rules import rule_labels
from .markdown import md


def _range(d: dict[str, Any], signed: bool = True) -> str:
    lo, hi = d["interval80"]
    f = pct if signed else (lambda v: f"{v:.0%}")
    return f"{f(d['median'])} [{f(lo)}, {f(hi)}]"


def shrinkage_figure(summary: dict[str, Any]):
    """Each experiment's measured lift (grey, with its 95% interval) and its shrunk estimate (blue,
    with its 80% posterior interval), sorted by the measured lift; shipped ones in bold."""
    from .figure import ReportFigure, figure_png
    from .plots import _new

    items = sorted(summary["shrunk"].items(), key=lambda kv: kv[1]["lift"])
    n = len(items)
    fig, axs = _new(1, 1, (9, 0.9 + 0.22 * n))
    ax = axs[0, 0]
    yy = np.arange(n)
    lift = np.array([v["lift"] for _, v in items])
    se = np.array([v["se"] for _, v in items])
    sh = np.array([v["shrunk"] for _, v in items])
    lo = np.array([v["interval80"][0] for _, v in items])
    hi = np.array([v["interval80"][1] for _, v in items])
    ax.errorbar(
        lift,
        yy + 0.15,
        xerr=1.96 * se,
        fmt="o",
        color="#9aa5b1",
        ms=4,
        lw=1,
        label="measured lift, 95% interval",
    )
    ax.errorbar(
        sh,
        yy - 0.15,
        xerr=[sh - lo, hi - sh],
        fmt="o",
        color="#1f5fa8",
        ms=4,
        lw=1.4,
        label="shrunk estimate, 80% interval",
    )
    ax.axvline(0, color="#57606a", lw=0.8)
    ax.set_yticks(yy)
    ax.set_yticklabels([k + (" (shipped)" if v["shipped"] else "") for k, v in items], fontsize=7)
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:+.0%}")
    ax.set_xlabel("relative effect")
    ax.legend(loc="lower right", fontsize=8)
    png, w, h = figure_png(fig)
    return ReportFigure(
        "shrinkage",
        "Measured lifts and what they shrink to",
        "Grey: each experiment's measured lift with its 95% interval. Blue: the posterior mean of "
        "its true effect under the archive's fitted effect distribution, with its 80% interval. "
        "Large measured lifts of noisy experiments shrink most: the winner's curse, corrected.",
        "Dot plot of measured and shrunk lifts per experiment",
        png,
        w,
        h,
    )


def _title_and_answer(summary: dict[str, Any]) -> tuple[str, str]:
    """The page's title, and its answer: how many changes do nothing, and a new effect."""
    name = Path(summary["archive"]).name
    title = f"Past experiments: {name}" + (
        f", category {summary['category']}" if summary.get("category") else ""
    )
    ns = summary["null_share"]
    shares = {f: d["null_share"]["median"] for f, d in summary["forms"].items()}
    if max(shares.values()) - min(shares.values()) > 0.15:
        nothing = (
            f"Between {min(shares.values()):.0%} and {max(shares.values()):.0%} of changes do "
            f"practically nothing, depending on the form of the effect distribution (the kept "
            f"{summary['form'].replace('_', '-')} form: {ns['median']:.0%})"
        )
    else:
        nothing = (
            f"About {ns['median']:.0%} of changes do practically nothing (80% interval "
            f"{ns['interval80'][0]:.0%} to {ns['interval80'][1]:.0%})"
        )
    answer = (
        f"{nothing}; a new experiment's true effect is {_range(summary['new_effect'])} "
        "(median [80% interval])."
    )
    return title, answer


def _categories(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The table per category (None without categories)."""
    if not summary.get("categories"):
        return None
    return {
        "head": [
            "Category",
            "Experiments",
            "Does nothing",
            "New effect",
            "Shipped: measured",
            "Shipped: shrunk",
        ],
        "rows": [
            [
                c,
                str(b["experiments"]),
                _range(b["null_share"], False),
                _range(b["new_effect"]),
                pct(b["shipped_impact"]["raw"]) if "shipped_impact" in b else "—",
                pct(b["shipped_impact"]["shrunk"]) if "shipped_impact" in b else "—",
            ]
            for c, b in summary["categories"].items()
        ],
        "note": "Median [80% interval]. The category means are partially pooled around a "
        "shared mean, so a category with few experiments borrows from the others.",
    }


def _forms(summary: dict[str, Any]) -> dict[str, Any]:
    """The forms of the effect distribution compared by LOO."""
    return {
        "head": ["Form", "elpd (LOO)", "difference to the best", "Does nothing", "stacking weight"],
        "rows": [
            {
                "kept": f == summary["form"],
                "cells": [
                    f.replace("_", "-"),
                    f"{d['elpd_loo']:.1f} ± {d['se']:.1f}",
                    f"{d['elpd_diff']:+.1f} ± {d['dse']:.1f}",
                    _range(d["null_share"], False),
                    f"{d['stacking_weight']:.2f}",
                ],
            }
            for f, d in summary["forms"].items()
        ],
        "note": summary["selection"] + f" Fat tails (Student-t against normal): elpd difference "
        f"{summary['heavy_tail']['elpd_diff_t_vs_normal']:+.1f} ± {summary['heavy_tail']['se']:.1f}."
        + f" ‘Does nothing’: |true effect| below {summary['threshold']:.1%}.",
    }


def _rules(summary: dict[str, Any]) -> dict[str, Any]:
    """The ship rules compared on the archive."""
    r = summary["rules"]
    labels = rule_labels(r["epsilon"])
    return {
        "sentence": r["sentence"],
        "head": [
            "Rule",
            "Ships",
            "Impact (shrunk) ± sd",
            "80% interval",
            "Against the best",
            "As measured",
        ],
        "rows": [
            {
                "best": k == r["best"],
                "cells": [
                    labels[k],
                    str(v["shipped"]),
                    f"{pct(v['impact'])} ± {v['sd']:.1%}",
                    f"{pct(v['interval80'][0])} to {pct(v['interval80'][1])}",
                    f"{pct(v['vs_best'])} ± {v['vs_best_sd']:.1%}",
                    pct(v["raw"]),
                ],
            }
            for k, v in r["rows"].items()
        ],
        "note": "Impact: the sum of the shipped experiments' shrunk effects, the expected "
        "cumulative true effect given the whole archive; ± its posterior sd. Each decision uses "
        "the effect distribution learnt from the other experiments and the experiment's own "
        "result (leave-one-out; by Bayes' theorem that is the full fit's posterior, so no refit). "
        "‘Posterior mean > 0’ maximises this expectation by construction under the fitted model; "
        "the table shows what the other rules give up. Monte Carlo errors of the impacts are below "
        f"{max(v['mcse'] for v in r['rows'].values()):.2%}.",
    }


def _experiments(summary: dict[str, Any]) -> dict[str, Any]:
    """Each experiment, measured and shrunk."""
    return {
        "head": [
            "Experiment",
            "Category",
            "Measured lift ± se",
            "Shrunk",
            "80% interval",
            "P(effect > 0)",
            "Shipped",
        ],
        "rows": [
            [
                k,
                v["category"] or "—",
                f"{pct(v['lift'])} ± {v['se']:.1%}",
                pct(v["shrunk"]),
                f"{pct(v['interval80'][0])} to {pct(v['interval80'][1])}",
                f"{v['p_positive']:.2f}",
                {True: "yes", False: "no", None: "—"}[v["shipped"]],
            ]
            for k, v in summary["shrunk"].items()
        ],
        "note": "Shrunk: the posterior mean of the true effect. P(effect > 0) is computed exactly "
        "per posterior draw and averaged (Monte Carlo error below 0.01 at the default draws).",
    }


def context(summary: dict[str, Any], figs: list) -> dict[str, Any]:
    """What the page says, as plain strings (each writer escapes for its own format)."""
    title, answer = _title_and_answer(summary)
    d = summary["diagnostics"]
    return {
        "title": title,
        "answer": answer,
        "sentences": summary["sentences"],
        "form": f"Form kept: {summary['form_words']}.",
        "categories": _categories(summary),
        "forms": _forms(summary),
        "rules": _rules(summary),
        "experiments": _experiments(summary),
        "figures": figs,
        "diagnostics": {
            "warnings": d["warnings"],
            "numbers": [
                ("largest R-hat", f"{d['rhat_max']:.3f}"),
                ("smallest bulk ESS", f"{d['ess_bulk_min']:.0f}"),
                ("divergent transitions", str(d["divergences"])),
            ],
        },
        "provenance": [
            ("archive", summary["archive"]),
            ("archive sha256", summary["archive_sha256"]),
            ("settings", ", ".join(f"{k} {v}" for k, v in summary["settings"].items())),
            *[(k, str(v)) for k, v in summary["provenance"].items()],
        ],
    }


def render_markdown(ctx: dict[str, Any]) -> str:
    out = [f"# {md(ctx['title'])} — what past experiments say", "", f"**{md(ctx['answer'])}**", ""]
    out += [f"- {md(x)}" for x in ctx["sentences"]] + ["", md(ctx["form"]), ""]

    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(md(h) for h in head) + " |"]
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|")
        lines += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
        return lines + [""]

    if ctx["categories"]:
        c = ctx["categories"]
        out += ["## Per category", ""] + table(c["head"], c["rows"]) + [md(c["note"]), ""]
    f = ctx["forms"]
    out += ["## Which form of the effect distribution", ""]
    out += table(f["head"], [r["cells"] for r in f["rows"]]) + [md(f["note"]), ""]
    r = ctx["rules"]
    out += ["## Which ship rule would have served best", "", f"**{md(r['sentence'])}**", ""]
    out += table(r["head"], [x["cells"] for x in r["rows"]]) + [md(r["note"]), ""]
    for fig in ctx["figures"]:
        out += [
            f"## {md(fig.title)}",
            "",
            f"![{md(fig.alt)}](figures/{fig.name}.png)",
            "",
            md(fig.caption),
            "",
        ]
    e = ctx["experiments"]
    out += ["## Each experiment, shrunk for the winner's curse", ""]
    out += table(e["head"], e["rows"]) + [md(e["note"]), ""]
    out += ["## Sampler diagnostics", ""]
    out += [f"- **warning:** {md(w)}" for w in ctx["diagnostics"]["warnings"]] or ["- no warnings"]
    out += [f"- {n}: {v}" for n, v in ctx["diagnostics"]["numbers"]]
    out += ["", "## Provenance", ""] + [f"- {n}: `{v}`" for n, v in ctx["provenance"]]
    return "\n".join(out) + "\n"


def render_html(ctx: dict[str, Any]) -> str:
    from .html import render_page

    return render_page("archive.html.j2", ctx)


def write_archive_report(summary: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/<archive stem>_archive/`` (index.html, report.md, figures/, archive.json)
    atomically and return it."""
    from .writer import write_dir, write_page_files

    stem = re.sub(r"[^\w.-]+", "_", Path(summary["archive"]).stem).strip("._") or "archive"
    if summary.get("category"):
        stem += f"_{re.sub(r'[^\w.-]+', '_', summary['category'])}"

    def fill(d: Path) -> None:
        figs = [shrinkage_figure(summary)]
        ctx = context(summary, figs)
        write_page_files(d, figs, render_html(ctx), render_markdown(ctx), "archive.json", summary)

    return write_dir(out_dir, f"{stem}_archive", fill)
