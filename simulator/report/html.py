"""The self-contained HTML page: one file, figures embedded as base64 PNG, inline CSS, no network.

Autoescaping is on for the whole template, so every string from the scenario is escaped; a Content
Security Policy forbids the page from loading anything but its own embedded images.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..i18n import _, get_language
from .figure import CSS_DPI, DPI, ReportFigure

TEMPLATES = Path(__file__).parent / "templates"


def environment() -> jinja2.Environment:
    """The templates' environment, in the current language."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # the templates' own words, `{{ _("...") }}`, through the message catalogue (its plain
    # strings are escaped like any other); `lang` is the page's <html lang>
    env.globals["_"] = _
    env.globals["lang"] = get_language()
    return env


def figure_data(f: ReportFigure) -> dict[str, Any]:
    """What a template shows of a figure: its texts, the PNG as base64 and its CSS size."""
    return {
        "name": f.name,
        "title": f.title,
        "caption": f.caption,
        "alt": f.alt,
        "b64": base64.b64encode(f.png).decode("ascii"),
        "css_width": round(f.width_px * CSS_DPI / DPI),
        "css_height": round(f.height_px * CSS_DPI / DPI),
    }


def render_page(template: str, ctx: dict[str, Any]) -> str:
    """A page of ``template`` from its context (``ctx["figures"]``: its `ReportFigure`s)."""
    page = dict(ctx, figures=[figure_data(f) for f in ctx["figures"]])
    return environment().get_template(template).render(**page)


def render_html(ctx: dict[str, Any], decision: Sequence[str] = (), end: Sequence[str] = ()) -> str:
    """The decision page from the shared report context, with the HTML of the sections an
    analysis adds: ``decision``, before the sampler diagnostics; ``end``, after the last
    section."""
    sections = {"decision": [Markup(x) for x in decision], "end": [Markup(x) for x in end]}
    return render_page("report.html.j2", dict(ctx, sections=sections))
