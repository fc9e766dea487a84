"""The self-contained HTML page: one file, figures embedded as base64 PNG, inline CSS, no network.

Autoescaping is on for the whole template, so every string from the scenario is escaped; a Content
Security Policy forbids the page from loading anything but its own embedded images.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jinja2

from ..i18n import _, get_language
from .figure import CSS_DPI, DPI, ReportFigure

TEMPLATES = Path(__file__).parent / "templates"


def _env() -> jinja2.Environment:
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


def _embed(f: ReportFigure) -> dict[str, Any]:
    return {
        "name": f.name,
        "title": f.title,
        "caption": f.caption,
        "alt": f.alt,
        "b64": base64.b64encode(f.png).decode("ascii"),
        "css_width": round(f.width_px * CSS_DPI / DPI),
        "css_height": round(f.height_px * CSS_DPI / DPI),
    }


def render_html(ctx: dict[str, Any]) -> str:
    """The report page from the shared report context."""
    page = dict(ctx, figures=[_embed(f) for f in ctx["figures"]])
    return _env().get_template("report.html.j2").render(**page)
