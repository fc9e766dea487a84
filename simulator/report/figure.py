"""A report figure and its PNG: one helper for every page (the decision, tracking, plan, compare
and archive pages), so each figure is encoded the same way."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the report: its file stem, heading, how to read it, and the PNG itself."""

    name: str
    title: str
    caption: str
    alt: str
    png: bytes
    width_px: int
    height_px: int


DPI = 144  # pixels per inch of the PNGs; shown at 96 px per inch, so sharp on high-density screens
CSS_DPI = 96


def figure_png(fig: Any) -> tuple[bytes, int, int]:
    """The figure as a 256-colour PNG: a third of the size of matplotlib's RGBA output with no
    visible difference for flat-coloured charts, which keeps the one-file HTML page light."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    fig.set_dpi(DPI)
    _decimal_commas(fig)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    pal = rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    # The octree averages its buckets, turning the white background into (254, 254, 254): a faint
    # box on a white page. Snap near-white entries back to white.
    colors = np.array(pal.getpalette(), dtype=np.uint8).reshape(-1, 3)
    colors[(colors >= 252).all(axis=1)] = 255
    pal.putpalette(colors.ravel().tolist())
    out = io.BytesIO()
    # No metadata: the same figure gives the same bytes, so regenerated reports diff cleanly.
    pal.save(out, format="PNG", optimize=True)
    return out.getvalue(), rgb.width, rgb.height


def _decimal_commas(fig: Any) -> None:
    """Axes left to matplotlib's default number formatter get the language's decimal sign
    (the report's own formatters already write it)."""
    from ..i18n import get_language

    if get_language() == "en":
        return
    from matplotlib.ticker import ScalarFormatter

    from ..i18n import fmt_g

    comma = fmt_g(0.5, "g")[1]

    class Localized(ScalarFormatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return super().__call__(x, pos).replace(".", comma)

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if type(axis.get_major_formatter()) is ScalarFormatter:
                axis.set_major_formatter(Localized())
