"""The portfolio's overview page: every team's key results with P(met) now and a week ago, the
week's biggest moves first, a P(met)-over-the-weeks line per key result (inline SVG, from the
database), and links to each team's own page. Self-contained, like the other pages."""

from __future__ import annotations

import os
import tempfile
from html import escape
from pathlib import Path

from .run import PortfolioResult, portfolio_json

CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2430;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px}h1{font-size:1.6em;margin:.2em 0}
table{border-collapse:collapse;width:100%;margin:.6em 0 1.4em}th,td{padding:6px 8px;
border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:middle}th{background:#f5f6f8}
td.num{text-align:right;font-variant-numeric:tabular-nums}.on_track{color:#1a7f37}
.at_risk{color:#9a6700}.off_track{color:#cf222e}.error{color:#cf222e}.note{color:#5b6472}
h2{font-size:1.2em;margin-top:1.6em}a{color:#1f5fbf}
"""


def sparkline(points: list[tuple[str, float]], width: int = 120, height: int = 26) -> str:
    """P(met) over the stored weeks as a small SVG line (0 at the bottom, 1 at the top)."""
    if not points:
        return ""
    n = len(points)
    xs = [width / 2] if n == 1 else [i * (width - 6) / (n - 1) + 3 for i in range(n)]
    ys = [height - 3 - p * (height - 6) for _, p in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    title = ", ".join(f"{w}: {p:.2f}" for w, p in points)
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="P(met) by week: {title}">'
        f"<title>{escape(title)}</title>"
        f'<line x1="0" x2="{width}" y1="{height / 2}" y2="{height / 2}" stroke="#e3e6ea"/>'
        f'<polyline fill="none" stroke="#1f5fbf" stroke-width="1.6" points="{path}"/>'
        f'<circle cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}" r="2.4" fill="#1f5fbf"/></svg>'
    )


def render_overview(result: PortfolioResult) -> str:
    """The overview page's HTML: the week's biggest moves, every team's key results, the
    scenarios that could not be evaluated."""
    moves = [m for m in result.moves() if abs(m[0]) >= 0.05]
    errors = {n: r for n, r in result.results.items() if r["status"] == "error"}
    order = sorted(
        (n for n in result.results if n not in errors),
        key=lambda n: -max((abs(m[0]) for m in moves if m[1] == n), default=0.0),
    )
    out = [
        *_page_head(result),
        *_moves_table(result, moves),
        *_teams_table(result, order),
        *_errors_list(errors),
        "</main></body></html>",
    ]
    return "\n".join(out)


def _page_head(result: PortfolioResult) -> list[str]:
    """The document's head, the title and the note on what the numbers are."""
    e = escape
    return [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Portfolio — week {e(result.week)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>Every team's key results, week {e(result.week)}</h1>",
        f'<p class="note">{len(result.results)} scenarios; P(met) is each key result\'s '
        "probability of being met by the end of the quarter (± its Monte Carlo error), for the "
        "recommended option, or for the launched one when the quarter is being tracked. "
        + (
            f"“A week ago” is week {e(result.previous_week)}."
            if result.previous_week
            else "No earlier week is stored yet."
        )
        + "</p>",
    ]


def _moves_table(result: PortfolioResult, moves: list[tuple[float, str, str]]) -> list[str]:
    """The ten biggest moves of P(met) since a week ago (nothing when none moved)."""
    if not moves:
        return []
    e = escape
    out = [
        "<h2>This week's biggest moves</h2>",
        "<table><thead><tr><th>Team</th>",
        "<th>Key result</th><th>A week ago</th><th>Now</th><th>Change</th></tr></thead><tbody>",
    ]
    for d, name, k in moves[:10]:
        r = result.results[name]
        v = r["key_results"][k]
        out.append(
            f"<tr><td>{e(r['title'])}</td><td>{e(v['label'])}</td>"
            f'<td class="num">{result.week_ago[name][k]:.2f}</td>'
            f'<td class="num">{v["p_met"]:.2f}</td><td class="num">{d:+.2f}</td></tr>'
        )
    out.append("</tbody></table>")
    return out


def _teams_table(result: PortfolioResult, order: list[str]) -> list[str]:
    """One row per key result of every team in ``order``: P(met) now and a week ago, status,
    and its line over the stored weeks."""
    out = [
        "<h2>Teams</h2>",
        "<table><thead><tr><th>Team and objective</th><th>Key result</th>",
        "<th>P(met) now</th><th>A week ago</th><th>Status</th><th>Over the weeks</th></tr>",
        "</thead><tbody>",
    ]
    for name in order:
        out += _team_rows(result, name)
    out.append("</tbody></table>")
    return out


def _team_rows(result: PortfolioResult, name: str) -> list[str]:
    """A team's rows: its title (linked to its page) and what was evaluated beside the first."""
    e = escape
    r = result.results[name]
    link = (
        f'<a href="{e(r["page"])}/index.html">{e(r["title"])}</a>'
        if r.get("page")
        else e(r["title"])
    )
    what = (
        f"tracked: {r['periods_done']} of {r['horizon']} periods done under “{r['option_label']}”"
        if r["kind"] == "track"
        else f"plan: “{r['option_label']}”"
    )
    out = []
    for i, (k, v) in enumerate(r["key_results"].items()):
        before = result.week_ago.get(name, {}).get(k)
        head = (
            f'<td rowspan="{len(r["key_results"])}">{link}<br><span class="note">{e(what)}</span></td>'
            if i == 0
            else ""
        )
        obj = f'<br><span class="note">{e(v["objective"])}</span>' if v["objective"] else ""
        out.append(
            f"<tr>{head}<td>{e(v['label'])}{obj}</td>"
            f'<td class="num">{v["p_met"]:.2f} ±{max(v["p_met_se"], 0.005):.2f}</td>'
            f'<td class="num">{"—" if before is None else f"{before:.2f}"}</td>'
            f'<td class="{v["status"]}">{v["status"].replace("_", " ")}</td>'
            f"<td>{sparkline(result.series.get(name, {}).get(k, []))}</td></tr>"
        )
    return out


def _errors_list(errors: dict[str, dict]) -> list[str]:
    """The scenarios that failed, each with its one-line error (nothing when none failed)."""
    if not errors:
        return []
    items = [
        f'<li class="error"><strong>{escape(n)}</strong>: {escape(r["error"])}</li>'
        for n, r in errors.items()
    ]
    return ["<h2>Scenarios that could not be evaluated</h2>", "<ul>", *items, "</ul>"]


def write_overview(result: PortfolioResult, out_dir: str | Path) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/portfolio.json``, each atomically."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("index.html", render_overview(result)),
        ("portfolio.json", portfolio_json(result)),
    ):
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, d / name)
    return d / "index.html"
