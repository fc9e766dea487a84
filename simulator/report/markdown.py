"""`report.md`: the report for wikis and pull requests, figures as PNG files beside it."""

from __future__ import annotations

import re
from typing import Any

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


def render_markdown(ctx: dict[str, Any], figure_dir: str = "figures") -> str:
    """The Markdown report from the shared report context."""
    out: list[str] = [f"# {md(ctx['title'])}", ""]
    if ctx["description"]:
        out += [md(ctx["description"]), ""]
    out += [f"**{md(ctx['answer'])}**", ""]
    head = [ctx["p_heading"]]
    head += [f"{md(c['label'])} ({md(c['target'])})" for c in ctx["columns"]]
    head += (
        ["All met"] + (["All within reach met"] if ctx["within_reach"] else []) + ["Expected grade"]
    )
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|")
    for r in ctx["rows"]:
        name = md(r["label"]) + (" **(recommended)**" if r["recommended"] else "")
        reach = [r["within_reach"]["text"]] if ctx["within_reach"] else []
        cells = [c["text"] for c in r["cells"]] + [r["all_met"]["text"], *reach, r["grade"]]
        out.append("| " + " | ".join([name, *cells]) + " |")
    out += [
        "",
        f"{md(ctx['setting'])}. Each probability is followed by its Monte Carlo error. "
        f"{md(ctx['rule_note'])} {md(ctx['grade_note'])}",
        "",
        "## Figures",
        "",
    ]
    for f in ctx["figures"]:
        out += [
            f"### {md(f.title)}",
            "",
            f"![{md(f.alt)}]({figure_dir}/{f.name}.png)",
            "",
            md(f.caption),
            "",
        ]
    out += ["## Predicted values", ""]
    out.append(
        "Median and 80% interval of each key result over the quarter; P(70%) is the chance of "
        "getting at least 70% of the way from the baseline to the target."
    )
    out.append("")
    for d in ctx["details"]:
        out += [
            f"### {md(d['label'])}",
            "",
            f"{md(d['unit'])}; baseline {md(d['baseline'])}"
            + (f" ({md(d['baseline_from'])})" if d["baseline_from"] else "")
            + f", target {md(d['target'])}",
            "",
        ]
        out.append("| Option | Median | 80% interval | P(70% of the way) | Expected grade |")
        out.append("|:---|---:|---:|---:|---:|")
        for o in d["options"]:
            out.append(
                f"| {md(o['label'])} | {md(o['median'])} | {md(o['low'])} – {md(o['high'])} "
                f"| {o['p70']} | {o['grade']} |"
            )
        out.append("")
    out += ["### How sure is the pick?", ""]
    guard = ctx["guarded"]
    out.append(
        "| Option | Best in (share of simulated quarters) | Expected loss of choosing it |"
        + (" P(a guardrail broken) |" if guard else "")
    )
    out.append("|:---|---:|---:|" + ("---:|" if guard else ""))
    for r in ctx["rows"]:
        out.append(
            f"| {md(r['label'])} | {r['p_best']} | {r['loss']} |"
            + (f" {md(r['guard'])} |" if guard else "")
        )
    out += [
        "",
        f"Under {md(ctx['rule_axis'])}: the expected loss is how much of {md(ctx['rule'])} is given up by choosing that option rather than the best one in each simulated quarter.",
    ]
    out += ["", "## Assumptions", "", "### What we believe about each option", ""]
    for b in ctx["beliefs"]:
        desc = f" — {md(b['description'])}" if b["description"] else ""
        out.append(f"- **{md(b['label'])}**{desc}")
        out += [f"  - {md(s)}" for s in b["sentences"]]
    out += ["", "### What the model assumes", ""]
    out += [f"- {md(a)}" for a in ctx["assumptions"]]
    d = ctx["diagnostics"]
    out += ["", "## Sampler diagnostics", "", md(d["verdict"]), ""]
    out += [f"- **warning:** {md(w)}" for w in d["warnings"]]
    if d["warnings"]:
        out.append("")
    out += ["| Check | Value |", "|:---|---:|"]
    out += [f"| {md(n)} | {v} |" for n, v in d["numbers"]]
    out += ["", "## Provenance", ""]
    out += [f"- {md(n)}: {md(v)}" for n, v in ctx["provenance"]]
    if ctx["input_notes"]:
        out += ["", "### Notes on the input", ""]
        out += [f"- {md(n)}" for n in ctx["input_notes"]]
    out += ["", md(ctx["reproducible"]), ""]
    return "\n".join(out)
