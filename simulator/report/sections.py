"""Sections an analysis adds to the decision page (`krsim compare --report`, `krsim plan
--report`): the `Section` record the writer composes the page with, and the pieces every such
section is made of — its figures (a matplotlib `Figure` on the Agg canvas, no pyplot, encoded by
`figure.figure_png` like every figure of the reports), tables and embedded figures in HTML and
in Markdown.

A section's HTML and Markdown are written in the page's language before the page is written;
`writer.write_report` puts them in place and writes the page once.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any

from .figure import ReportFigure, figure_png
from .markdown import md

PLACES = ("decision", "end")


@dataclass(frozen=True)
class Section:
    """A section of the decision page: its HTML (a ``<section>`` element and a final newline),
    its Markdown (from its ``##`` heading to a final newline), the figures they show (written
    beside the page, in figures/) and where it goes: ``"decision"``, with the decision, before
    the sampler diagnostics; ``"end"``, after the page's last section."""

    html: str
    markdown: str
    figures: tuple[ReportFigure, ...] = ()
    place: str = "end"

    def __post_init__(self) -> None:
        if self.place not in PLACES:
            raise ValueError(f"place: {self.place!r} is not one of {', '.join(PLACES)}")
        object.__setattr__(self, "figures", tuple(self.figures))


def blank_figure(figsize: tuple[float, float]):
    """An empty figure on the Agg canvas, without pyplot and without touching matplotlib's
    backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kw: Any):
    """A figure on the Agg canvas and its axes (an array, ``squeeze=False``)."""
    fig = blank_figure(figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def section_figure(name: str, fig: Any, title: str, caption: str) -> ReportFigure:
    """A section's figure as the reports encode every figure (`figure.figure_png`); its title is
    its alternative text."""
    png, width, height = figure_png(fig)
    return ReportFigure(name, title, caption, title, png, width, height)


def figure_html(f: ReportFigure) -> list[str]:
    """An embedded figure of a section: heading, image (data: URI), caption."""
    e = html.escape
    b64 = base64.b64encode(f.png).decode("ascii")
    return [
        "<figure>",
        f"<h3>{e(f.title)}</h3>",
        f'<img src="data:image/png;base64,{b64}" alt="{e(f.alt)}" style="max-width:100%">',
        f"<figcaption>{e(f.caption)}</figcaption>",
        "</figure>",
    ]


def figure_markdown(f: ReportFigure) -> list[str]:
    """A section's figure in Markdown: heading, image (figures/NAME.png), caption, blank line."""
    return [
        f"### {md(f.title)}",
        "",
        f"![{md(f.alt)}](figures/{f.name}.png)",
        "",
        md(f.caption),
        "",
    ]


def table_html(rows: list[list[str]]) -> list[str]:
    """A table: the first row the header, every cell escaped."""
    e = html.escape
    out = ["<table>", "<tr>" + "".join(f"<th>{e(c)}</th>" for c in rows[0]) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows[1:]]
    return [*out, "</table>"]


def table_markdown(rows: list[list[str]], align: str) -> list[str]:
    """A Markdown table: the first row the header, followed by the ``align`` row as given."""
    lines = ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return [lines[0], align, *lines[1:]]
