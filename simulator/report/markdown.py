"""`report.md`: the report for wikis and pull requests, figures as PNG files beside it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..i18n import _

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^(\s*)([#+\-=])")
_ORDERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")


def md(s: str) -> str:
    """A scenario string as literal Markdown text: punctuation that Markdown would act on is
    backslash-escaped, and '<', '>', '&' become entities so no raw HTML gets through."""
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _SPECIAL.sub(r"\\\1", s)
    s = " ".join(s.split())  # no line breaks: a newline could start a heading or a list
    s = _LINE_START.sub(r"\1\\\2", s)  # nor may the text itself start one
    return _ORDERED.sub(r"\1\\\2", s)


def render_markdown(
    ctx: dict[str, Any],
    figure_dir: str = "figures",
    *,
    decision: Sequence[str] = (),
    end: Sequence[str] = (),
) -> str:
    """The Markdown report from the shared report context; ``decision``: sections an analysis
    adds after the decision's own (before the sampler diagnostics), ``end``: at the end (as the
    HTML page places them)."""
    out: list[str] = [f"# {md(ctx['title'])}", ""]
    if ctx["description"]:
        out += [md(ctx["description"]), ""]
    out += [f"**{md(ctx['answer'])}**", ""]
    out += _table(ctx)
    out += [
        "",
        f"{md(ctx['setting'])}. "
        + _("Each probability is followed by its Monte Carlo error.")
        + f" {md(ctx['rule_note'])} {md(ctx['grade_note'])}",
        "",
    ]
    out += _figures(ctx["figures"], figure_dir)
    out += _details(ctx["details"])
    out += _how_sure(ctx)
    out += _optimism(ctx.get("optimism"))
    out += _assumptions(ctx)
    out += _diagnostics(ctx["diagnostics"], decision)
    out += ["", "## " + _("Provenance"), ""]
    out += [f"- {md(n)}: {md(v)}" for n, v in ctx["provenance"]]
    if ctx["input_notes"]:
        out += ["", "### " + _("Notes on the input"), ""]
        out += [f"- {md(n)}" for n in ctx["input_notes"]]
    out += ["", md(ctx["reproducible"]), "", *end]
    return "\n".join(out)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(ctx: dict[str, Any]) -> list[str]:
    """The answer's table: P(met) of each key result per option, P(all met), the grade."""
    head = [ctx["p_heading"]]
    head += [f"{md(c['label'])} ({md(c['target'])})" for c in ctx["columns"]]
    head += (
        [_("All met")]
        + ([_("All within reach met")] if ctx["within_reach"] else [])
        + [_("Expected grade")]
    )
    out = [_row(head), "|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in ctx["rows"]:
        name = md(r["label"]) + (" **({})**".format(_("recommended")) if r["recommended"] else "")
        reach = [r["within_reach"]["text"]] if ctx["within_reach"] else []
        cells = [c["text"] for c in r["cells"]] + [r["all_met"]["text"], *reach, r["grade"]]
        out.append(_row([name, *cells]))
    return out


def _figures(figures: list, figure_dir: str) -> list[str]:
    out = ["## " + _("Figures"), ""]
    for f in figures:
        out += [
            f"### {md(f.title)}",
            "",
            f"![{md(f.alt)}]({figure_dir}/{f.name}.png)",
            "",
            md(f.caption),
            "",
        ]
    return out


def _details(details: list[dict[str, Any]]) -> list[str]:
    """Per key result: baseline and target, then each option's median, interval, P(70%) and
    grade."""
    out = ["## " + _("Predicted values"), ""]
    out.append(
        _(
            "Median and 80% interval of each key result over the quarter; P(70%) is the chance of "
            "getting at least 70% of the way from the baseline to the target."
        )
    )
    out.append("")
    head = [
        _("Option"),
        _("Median"),
        _("80% interval"),
        _("P(70% of the way)"),
        _("Expected grade"),
    ]
    for d in details:
        out += [
            f"### {md(d['label'])}",
            "",
            _("{unit}; baseline {baseline}{source}, target {target}").format(
                unit=md(d["unit"]),
                baseline=md(d["baseline"]),
                source=f" ({md(d['baseline_from'])})" if d["baseline_from"] else "",
                target=md(d["target"]),
            ),
            "",
        ]
        out += [_row(head), "|:---|---:|---:|---:|---:|"]
        for o in d["options"]:
            out.append(
                f"| {md(o['label'])} | {md(o['median'])} | {md(o['low'])} – {md(o['high'])} "
                f"| {o['p70']} | {o['grade']} |"
            )
        out.append("")
    return out


def _how_sure(ctx: dict[str, Any]) -> list[str]:
    """P(best), the expected loss and (with guardrails) P(a guardrail broken) per option."""
    guard = ctx["guarded"]
    out = ["### " + _("How sure is the pick?"), ""]
    out.append(
        _row(
            [
                _("Option"),
                _("Best in (share of simulated quarters)"),
                _("Expected loss of choosing it"),
            ]
        )
        + (" {} |".format(_("P(a guardrail broken)")) if guard else "")
    )
    out.append("|:---|---:|---:|" + ("---:|" if guard else ""))
    for r in ctx["rows"]:
        out.append(
            f"| {md(r['label'])} | {r['p_best']} | {r['loss']} |"
            + (f" {md(r['guard'])} |" if guard else "")
        )
    out += [
        "",
        _(
            "Under {axis}: the expected loss is how much of {rule} is given up by choosing that "
            "option rather than the best one in each simulated quarter."
        ).format(axis=md(ctx["rule_axis"]), rule=md(ctx["rule"])),
    ]
    return out


def _optimism(opt: dict[str, Any] | None) -> list[str]:
    """The team's beliefs against the archive's, when some prior comes from the archive."""
    if not opt:
        return []
    out = ["", "## How much does our optimism matter?", ""]
    out += [f"**{md(x)}**\n" for x in opt["sentences"]]
    out.append(_row([md(h) for h in opt["head"]]))
    out.append("|:---|:---|" + "---:|" * (len(opt["head"]) - 2))
    out += [_row([md(c) for c in r]) for r in opt["rows"]]
    out += ["", md(opt["note"])]
    return out


def _assumptions(ctx: dict[str, Any]) -> list[str]:
    """Each option's beliefs, then what the model assumes."""
    out = ["", "## " + _("Assumptions"), "", "### " + _("What we believe about each option"), ""]
    for b in ctx["beliefs"]:
        desc = f" — {md(b['description'])}" if b["description"] else ""
        out.append(f"- **{md(b['label'])}**{desc}")
        out += [f"  - {md(s)}" for s in b["sentences"]]
    out += ["", "### " + _("What the model assumes"), ""]
    out += [f"- {md(a)}" for a in ctx["assumptions"]]
    return out


def _diagnostics(d: dict[str, Any], before: Sequence[str] = ()) -> list[str]:
    """The sampler's verdict, its warnings and its numbers (after the sections ``before``)."""
    out = ["", *before, "## " + _("Sampler diagnostics"), "", md(d["verdict"]), ""]
    out += ["- **" + _("warning:") + f"** {md(w)}" for w in d["warnings"]]
    if d["warnings"]:
        out.append("")
    out += ["| " + _("Check") + " | " + _("Value") + " |", "|:---|---:|"]
    out += [f"| {md(n)} | {v} |" for n, v in d["numbers"]]
    return out
