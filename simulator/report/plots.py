"""The report's figures. Computed results in, matplotlib figures out: nothing here samples.

Every function takes results (the fit, the forecast, the evaluation, the summary), accepts ``ax=`` or
``axes=`` where it draws into one or a fixed number of axes, and returns ``(fig, axes)``. Figures are
built with ``matplotlib.figure.Figure`` and rendered on the Agg canvas, without pyplot: they need no
display, leave the caller's backend alone and need no closing.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter

from ..engine.decision import Evaluation, KRTarget, OptionEval
from ..engine.forecast import Forecast
from ..engine.render import kr_label, rule_axis
from ..engine.summary import RunSummary
from ..i18n import _, fmt_g, fmt_int, fmt_label, fmt_num, fmt_pct, get_language, pct_sign
from ..io.data import CountTable
from ..io.scenario import Scenario
from ..model.changes import expit
from ..model.posterior import Fit
from . import words

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974"]
TARGET = "#C44E52"
BASELINE = "#555555"
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "figure.dpi": 100,
    "svg.hashsalt": "krsim",
}


def _styled(fn: Callable) -> Callable:
    """Draw with the report's style without touching the caller's global settings."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        with mpl.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def text(s: str, width: int | None = None, max_lines: int = 3) -> str:
    """A scenario string made safe for matplotlib (a '$' would start mathtext), optionally wrapped
    to ``width`` characters and cut to ``max_lines`` lines so it cannot run into its neighbours."""
    s = s.replace("$", r"\$")
    if not width or len(s) <= width:
        return s
    lines = textwrap.wrap(s, width, max_lines=max_lines, placeholder=" …")
    return "\n".join(lines)


def option_colors(scenario: Scenario) -> dict[str, str]:
    return {o: PALETTE[i % len(PALETTE)] for i, o in enumerate(scenario.options)}


def _option_label(scenario: Scenario, o: str) -> str:
    return scenario.options[o].label or o


def _value_formatter(ratio: bool) -> FuncFormatter:
    if ratio:
        return FuncFormatter(lambda x, _pos: fmt_pct(x, 0) if abs(x) >= 0.1 else fmt_pct(x, 1))
    return FuncFormatter(lambda x, _pos: fmt_int(x) if abs(x) >= 100 else fmt_g(x, ",.4g"))


def into_the_quarter(scenario: Scenario) -> str:
    """The x label of charts over the quarter: 'weeks into the quarter'."""
    from ..i18n import period_noun

    return _("{periods} into the quarter").format(periods=period_noun(scenario.period, 2))


def _new(nrows: int, ncols: int, size: tuple[float, float], **kw: Any) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


# ------------------------------------------------------------------------------------- funnel


def _stage_rows(scenario: Scenario) -> list[tuple[str, int, bool]]:
    """(node, depth, is_segment) in funnel order: depth-first from the traffic stage, each stage's
    segments right under it."""
    children: dict[str | None, list[str]] = {}
    for s, st in scenario.funnel.items():
        children.setdefault(st.from_, []).append(s)
    rows: list[tuple[str, int, bool]] = []

    def walk(s: str, depth: int) -> None:
        rows.append((s, depth, False))
        for g, seg in scenario.segments.items():
            if seg.of == s:
                rows.append((g, depth + 1, True))
        for c in children.get(s, []):
            walk(c, depth + 1)

    walk(scenario.root, 0)
    return rows


@_styled
def funnel(
    scenario: Scenario,
    fit: Fit,
    history: CountTable,
    *,
    interval: float = 0.9,
    axes: Sequence[Axes] | None = None,
) -> tuple[Figure, np.ndarray]:
    """Left: each stage's volume per period over the last horizon of history. Right: each stage's
    typical conversion rate from its parent (posterior of ``expit(rate_mu)``) with its interval, and
    the rate observed over the whole history for comparison."""
    rows = _stage_rows(scenario)
    n = len(rows)
    if axes is None:
        fig, ax2 = _new(
            1, 2, (10, 0.55 * n + 1.6), sharey=True, gridspec_kw={"width_ratios": [1, 1.1]}
        )
        ax_vol, ax_rate = ax2[0]
    else:
        ax_vol, ax_rate = axes
        fig = ax_vol.figure
    H = min(scenario.horizon, len(history))
    y = np.arange(n)[::-1]
    q = [(1 - interval) / 2, 0.5, (1 + interval) / 2]
    labels = []
    for (node, _depth, is_seg), yi in zip(rows, y, strict=True):
        lab = scenario.stage_label(node)
        labels.append(text(lab, 30) + (_(" (segment)") if is_seg else ""))
        vol = float(history.counts[node][-H:].mean())
        ax_vol.barh(yi, vol, color="#b9c7de" if is_seg else "#4C72B0", height=0.6)
        ax_vol.text(vol, yi, f" {fmt_int(vol)}", va="center", ha="left", fontsize=9)
        _rate_row(ax_rate, scenario, fit, history, node, is_seg, yi, q)
    vmax = max(float(history.counts[node][-H:].mean()) for node, _, _ in rows)
    _volume_axis(ax_vol, scenario, y, labels, vmax)
    _rate_axis(ax_rate, scenario, interval)
    return fig, np.array([ax_vol, ax_rate])


def _rate_row(
    ax: Axes,
    scenario: Scenario,
    fit: Fit,
    history: CountTable,
    node: str,
    is_seg: bool,
    yi: float,
    q: list[float],
) -> None:
    """One stage's row of the rate panel: the estimated rate from its parent (interval ``q``'s
    ends and median) and the rate observed over the history; the traffic stage gets a note."""
    if node == scenario.root:
        ax.text(
            0.01,
            yi,
            _("traffic entering the funnel"),
            va="center",
            fontsize=9,
            color="#666666",
        )
        return
    parent = scenario.segments[node].of if is_seg else scenario.parent(node)
    r = expit(fit.node("rate_mu", node), np)
    lo, med, hi = np.quantile(r, q)
    obs = history.counts[node].sum() / max(history.counts[parent].sum(), 1)
    color = "#8ea3c9" if is_seg else "#4C72B0"
    ax.plot([lo, hi], [yi, yi], color=color, lw=4, solid_capstyle="butt")
    ax.plot([med], [yi], "o", color=color, ms=6)
    ax.plot([obs], [yi], "|", color="black", ms=12, mew=1.5)
    ax.text(
        1.02,
        yi,
        _("{share} of {stage}").format(
            share=fmt_pct(med, 1), stage=text(scenario.stage_label(parent), 28)
        )
        + f"\n[{fmt_num(100 * lo, 1)}–{pct_sign(fmt_num(100 * hi, 1))}]",
        va="center",
        ha="left",
        fontsize=8.5,
        linespacing=1.3,
        transform=ax.get_yaxis_transform(),
    )


def _volume_axis(
    ax: Axes, scenario: Scenario, y: np.ndarray, labels: list[str], vmax: float
) -> None:
    """The volume panel's stage labels, range and title (no x axis: the bars carry numbers)."""
    ax.set_yticks(y, labels)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(0, vmax * 1.25)
    ax.xaxis.set_visible(False)
    ax.spines["bottom"].set_visible(False)
    ax.grid(visible=False)
    ax.set_title(
        _("Users per {period} (last {horizon})").format(
            period=words.period_word(scenario), horizon=words.horizon_words(scenario)
        ),
        loc="left",
        fontsize=10,
    )


def _rate_axis(ax: Axes, scenario: Scenario, interval: float) -> None:
    """The rate panel's percentage axis, title and legend."""
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fmt_pct(x, 0)))
    ax.set_title(
        _("Conversion from the stage above, typical {period}").format(
            period=words.period_word(scenario)
        ),
        loc="left",
        fontsize=10,
    )
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    ax.legend(
        handles=[
            Line2D(
                [],
                [],
                color="#4C72B0",
                marker="o",
                lw=4,
                label=_("estimate, {share} interval").format(share=fmt_pct(interval, 0)),
            ),
            Line2D(
                [],
                [],
                color="black",
                marker="|",
                ls="",
                ms=10,
                mew=1.5,
                label=_("observed (all history)"),
            ),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncol=2,
    )


# --------------------------------------------------------------------- predictive distributions


def _ref_lines(ax: Axes, t: KRTarget, vertical: bool = True) -> None:
    line = ax.axvline if vertical else ax.axhline
    line(t.baseline, color=BASELINE, ls=":", lw=1.5, zorder=3)
    line(t.target, color=TARGET, ls="--", lw=1.5, zorder=3)
    if t.met_at != t.target:  # aspirational grading: where it counts as met
        line(t.met_at, color=TARGET, ls="-.", lw=1.2, zorder=3)


def _met(values: np.ndarray, t: KRTarget) -> np.ndarray:
    return t.met(values)


@_styled
def kr_distribution(
    scenario: Scenario,
    evaluation: Evaluation,
    targets: dict[str, KRTarget],
    kr_id: str,
    *,
    ax: Axes | None = None,
    bins: int = 90,
    title: bool = True,
) -> tuple[Figure, Axes]:
    """One KR's predictive distribution per option (one row each), the part that meets the target
    filled darker, with the baseline and the target marked and P(met) written beside each row."""
    opts = list(evaluation.options)
    if ax is None:
        fig, a = _new(1, 1, (9, 0.75 * len(opts) + 1.9))
        ax = a[0, 0]
    fig = ax.figure
    t = targets[kr_id]
    ratio = words.is_ratio(scenario, kr_id)
    colors = option_colors(scenario)
    vals = {o: evaluation.options[o].values[kr_id] for o in opts}
    lo, hi, edges = _bin_edges(np.concatenate(list(vals.values())), t, bins)
    for i, o in enumerate(opts):
        _distribution_row(ax, vals[o], t, (lo, hi, edges), len(opts) - 1 - i, colors[o])
    _ref_lines(ax, t)
    ax.set_yticks(
        np.arange(len(opts))[::-1] + 0.3, [text(_option_label(scenario, o), 26) for o in opts]
    )
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-0.15, len(opts) - 0.05)
    ax.set_xlim(lo, hi)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_formatter(_value_formatter(ratio))
    ax.set_xlabel(f"{text(kr_label(scenario, kr_id))} — {words.kr_unit(scenario, kr_id)}")
    if title:
        ax.set_title(
            text(_("{kr}: predicted value per option").format(kr=kr_label(scenario, kr_id)), 80),
            loc="left",
        )
    ax.legend(
        handles=_distribution_handles(scenario, kr_id, t, ratio),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncol=3,
    )
    return fig, ax


def _bin_edges(allv: np.ndarray, t: KRTarget, bins: int) -> tuple[float, float, np.ndarray]:
    """The x range over the options' draws (central 99.8%), the baseline and the target, padded
    by 4%, and the histogram's edges over it, with the met threshold as an edge so the met part
    is filled exactly."""
    lo, hi = np.quantile(allv, [0.001, 0.999])
    lo, hi = min(lo, t.baseline, t.target), max(hi, t.baseline, t.target)
    pad = 0.04 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, bins + 1)
    if lo < t.met_at < hi:
        edges = np.unique(np.append(edges, t.met_at))
    return lo, hi, edges


def _distribution_row(
    ax: Axes,
    values: np.ndarray,
    t: KRTarget,
    bins: tuple[float, float, np.ndarray],
    y0: float,
    color: str,
) -> None:
    """One option's histogram at height ``y0`` over ``bins`` (`_bin_edges`), its met part
    darker, and its P(met) beside it."""
    lo, hi, edges = bins
    h, _edges = np.histogram(np.clip(values, lo, hi), edges)
    dens = h / np.diff(edges)
    dens = 0.85 * dens / dens.max() if dens.max() > 0 else dens
    xs = np.repeat(edges, 2)[1:-1]
    ys = np.repeat(dens, 2)
    ax.fill_between(xs, y0, y0 + ys, color=color, alpha=0.35, lw=0, step=None)
    mids = np.repeat((edges[:-1] + edges[1:]) / 2, 2)
    good = _met(mids, t)
    ax.fill_between(xs, y0, y0 + ys, where=good, color=color, alpha=0.85, lw=0)
    ax.plot(xs, y0 + ys, color=color, lw=1)
    p = float(_met(values, t).mean())
    ax.text(
        1.01,
        y0 + 0.3,
        _("P(met) {p}").format(p=fmt_num(p)),
        transform=ax.get_yaxis_transform(),
        va="center",
        ha="left",
        fontsize=9.5,
        fontweight="bold",
    )


def _distribution_handles(scenario: Scenario, kr_id: str, t: KRTarget, ratio: bool) -> list:
    """The legend: baseline, target, the threshold under aspirational grading, the met part."""
    met_at = (
        [
            Line2D(
                [],
                [],
                color=TARGET,
                ls="-.",
                lw=1.2,
                label=_("counts as met at {value}").format(
                    value=words.met_at_words(scenario, kr_id, t)
                ),
            )
        ]
        if t.met_at != t.target
        else []
    )
    return [
        Line2D(
            [],
            [],
            color=BASELINE,
            ls=":",
            lw=1.5,
            label=_("baseline {value}").format(value=words.kr_value(t.baseline, ratio)),
        ),
        Line2D(
            [],
            [],
            color=TARGET,
            ls="--",
            lw=1.5,
            label=_("target {value}").format(value=words.target_words(scenario, kr_id, t)),
        ),
        *met_at,
        Patch(color="#777777", alpha=0.85, label=_("simulated quarters counted as met")),
    ]


# ------------------------------------------------------------------------ joint distribution


def _limits(evaluation: Evaluation, opts: list[str], k: str, t: KRTarget) -> tuple[float, float]:
    """An axis range for KR ``k`` over the options' draws (central 99.6%), its baseline and target."""
    v = np.concatenate([evaluation.options[o].values[k] for o in opts])
    lo, hi = np.quantile(v, [0.002, 0.998])
    lo, hi = min(lo, t.baseline, t.target), max(hi, t.baseline, t.target)
    pad = 0.06 * (hi - lo or 1.0)
    return lo - pad, hi + pad


@_styled
def kr_joint(
    scenario: Scenario,
    evaluation: Evaluation,
    targets: dict[str, KRTarget],
    kr_ids: tuple[str, str] | None = None,
    *,
    axes: np.ndarray | None = None,
) -> tuple[Figure, np.ndarray]:
    """Two KRs (by default the first two) against each other, one panel per option: each dot a
    simulated quarter, the quadrant where both targets are met shaded."""
    krs = kr_ids or tuple(k.id for k in scenario.key_results[:2])
    if len(krs) != 2:
        raise ValueError("the joint figure needs two key results")
    kx, ky = krs
    opts = list(evaluation.options)
    ncols = 2 if len(opts) == 4 else min(len(opts), 3)
    nrows = -(-len(opts) // ncols)
    if axes is None:
        fig, axs = _new(
            nrows, ncols, (3.4 * ncols + 0.6, 3.4 * nrows + 0.9), sharex=True, sharey=True
        )
        fig.get_layout_engine().set(wspace=0.08)  # room between panels' edge tick labels
    else:
        axs = np.atleast_2d(axes)
        fig = axs.flat[0].figure
    tx, ty = targets[kx], targets[ky]
    rx, ry = words.is_ratio(scenario, kx), words.is_ratio(scenario, ky)
    colors = option_colors(scenario)

    xl, yl = _limits(evaluation, opts, kx, tx), _limits(evaluation, opts, ky, ty)
    for i, o in enumerate(opts):
        ax = axs.flat[i]
        ex = evaluation.options[o]
        x, y = ex.values[kx], ex.values[ky]
        qx0, qx1 = (tx.met_at, xl[1]) if tx.op == ">=" else (xl[0], tx.met_at)
        qy0, qy1 = (ty.met_at, yl[1]) if ty.op == ">=" else (yl[0], ty.met_at)
        ax.add_patch(
            Rectangle((qx0, qy0), qx1 - qx0, qy1 - qy0, color="#55A868", alpha=0.2, lw=0, zorder=0)
        )
        ax.scatter(x, y, s=3, alpha=0.25, color=colors[o], lw=0, rasterized=True)
        ax.axvline(tx.target, color=TARGET, ls="--", lw=1.2)
        ax.axhline(ty.target, color=TARGET, ls="--", lw=1.2)
        ax.axvline(tx.baseline, color=BASELINE, ls=":", lw=1.2)
        ax.axhline(ty.baseline, color=BASELINE, ls=":", lw=1.2)
        both = float((_met(x, tx) & _met(y, ty)).mean())
        ax.set_title(
            text(_option_label(scenario, o), 40)
            + "\n"
            + _("P(both met) {p}").format(p=fmt_num(both)),
            fontsize=10,
        )
        ax.set_xlim(*xl)
        ax.set_ylim(*yl)
        ax.xaxis.set_major_formatter(_value_formatter(rx))
        ax.yaxis.set_major_formatter(_value_formatter(ry))
        ax.tick_params(axis="x", labelrotation=0)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
    hw = words.horizon_words(scenario)
    _label_grid(
        axs,
        len(opts),
        text(f"{kr_label(scenario, kx)} ({hw})", 40),
        text(f"{kr_label(scenario, ky)} ({hw})", 40),
    )
    fig.legend(
        handles=[
            Patch(color="#55A868", alpha=0.3, label=_("both targets met")),
            Line2D([], [], color=TARGET, ls="--", label=_("targets")),
            Line2D([], [], color=BASELINE, ls=":", label=_("baselines")),
        ],
        loc="outside lower center",
        ncol=3,
    )
    return fig, axs


# ------------------------------------------------------------------- a total as count x per unit


def _label_grid(axs: np.ndarray, n: int, xlabel: str, ylabel: str) -> None:
    """A grid of ``n`` option panels: the unused panels hidden, the lowest visible panel of each
    column carrying the x axis and its label, the first column the y label."""
    for ax in axs.flat[n:]:
        ax.set_visible(False)
    for col in range(axs.shape[1]):
        ax = [a for a in axs[:, col] if a.get_visible()][-1]
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel(xlabel)
    for ax in axs[:, 0]:
        ax.set_ylabel(ylabel)


@_styled
def kr_product(
    scenario: Scenario,
    evaluation: Evaluation,
    targets: dict[str, KRTarget],
    total: str,
    count: str,
    per_unit: str,
) -> tuple[Figure, np.ndarray]:
    """Per option, the joint draws of a count KR (x) and a value-per-unit KR (y) whose product is a
    total-value KR: the total's target is the curve count x per unit = target; draws above it meet
    the total. Dashed lines: the two contributing targets."""
    opts = list(evaluation.options)
    ncols = min(len(opts), 3)
    nrows = -(-len(opts) // ncols)
    fig, axs = _new(nrows, ncols, (3.6 * ncols + 0.6, 3.4 * nrows + 1.0), sharex=True, sharey=True)
    colors = option_colors(scenario)
    krs = (total, count, per_unit)
    xl = _limits(evaluation, opts, count, targets[count])
    yl = _limits(evaluation, opts, per_unit, targets[per_unit])
    for i, o in enumerate(opts):
        ax = axs.flat[i]
        _product_panel(ax, evaluation.options[o], targets, krs, (xl, yl), colors[o])
        ax.set_title(
            text(_option_label(scenario, o), 40) + "\n" + _product_title(evaluation, o, krs),
            fontsize=9,
        )
        ax.set_xlim(*xl)
        ax.set_ylim(*yl)
        ax.xaxis.set_major_formatter(_value_formatter(False))
        ax.yaxis.set_major_formatter(_value_formatter(False))
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
    _label_grid(
        axs,
        len(opts),
        text(f"{kr_label(scenario, count)} ({words.horizon_words(scenario)})", 40),
        text(kr_label(scenario, per_unit), 40),
    )
    fig.legend(
        handles=[
            Line2D(
                [],
                [],
                color=TARGET,
                lw=1.8,
                label=_("{kr} target").format(kr=kr_label(scenario, total)),
            ),
            Patch(
                color="#55A868", alpha=0.3, label=_("{kr} met").format(kr=kr_label(scenario, total))
            ),
            Line2D([], [], color=TARGET, ls="--", label=_("contributing targets")),
            Line2D([], [], color=BASELINE, marker="x", ls="", label=_("baseline")),
        ],
        loc="outside lower center",
        ncol=4,
    )
    return fig, axs


def _product_panel(
    ax: Axes,
    ex: OptionEval,
    targets: dict[str, KRTarget],
    krs: tuple[str, str, str],
    limits: tuple[tuple[float, float], tuple[float, float]],
    color: str,
) -> None:
    """One option's draws of (count, per unit), the side of the total's target curve that meets
    it shaded, the contributing targets dashed and the baselines' point marked."""
    total, count, per_unit = krs
    tt, tc, tu = targets[total], targets[count], targets[per_unit]
    xl, yl = limits
    xs = np.linspace(*xl, 200)
    if tt.op == ">=":
        ax.fill_between(xs, tt.target / xs, yl[1], color="#55A868", alpha=0.15, lw=0, zorder=0)
    else:
        ax.fill_between(xs, yl[0], tt.target / xs, color="#55A868", alpha=0.15, lw=0, zorder=0)
    ax.scatter(
        ex.values[count], ex.values[per_unit], s=3, alpha=0.25, color=color, lw=0, rasterized=True
    )
    ax.plot(xs, tt.target / xs, color=TARGET, lw=1.8)
    ax.axvline(tc.target, color=TARGET, ls="--", lw=1.0)
    ax.axhline(tu.target, color=TARGET, ls="--", lw=1.0)
    ax.plot([tc.baseline], [tu.baseline], marker="x", color=BASELINE, ms=7, mew=2)


def _product_title(evaluation: Evaluation, o: str, krs: tuple[str, str, str]) -> str:
    """P(total met) and P(both contributing targets met) in the same joint draws."""
    total, count, per_unit = krs
    ex = evaluation.options[o]
    p_total = float(ex.met[total].mean())
    p_both = float((ex.met[count] & ex.met[per_unit]).mean())
    return _("P({total}) {p_total} · P({count} and {per_unit}) {p_both}").format(
        total=total,
        p_total=fmt_num(p_total),
        count=count,
        per_unit=per_unit,
        p_both=fmt_num(p_both),
    )


# -------------------------------------------------------------------- the value model's check


@_styled
def value_check(scenario: Scenario, fit: Any, history: Any) -> tuple[Figure, np.ndarray]:
    """Per value stage: each history period's value per unit (dots) against the model's 80% and
    95% posterior predictive bands for it, given the period's count, with fresh period effects."""
    from ..model.values import observed_cells, replicate, value_stages

    stages = value_stages(scenario)
    fig, axs = _new(len(stages), 1, (9, 3.0 * len(stages) + 0.8))
    n_all, v_all = history.value_matrix(stages)
    x = np.arange(len(history))
    for i, stage in enumerate(stages):
        ax = axs[i, 0]
        n, v = n_all[i], v_all[i]
        rng = np.random.default_rng([scenario.seed, i, 77])
        rep = replicate(fit.arrays, n, rng, i)["fresh"]
        per = np.where(n > 0, rep / np.maximum(n, 1), np.nan)
        q = np.nanquantile(per, [0.025, 0.1, 0.9, 0.975], axis=0)
        ax.fill_between(x, q[0], q[3], color=PALETTE[0], alpha=0.15, lw=0, label=_("95% band"))
        ax.fill_between(x, q[1], q[2], color=PALETTE[0], alpha=0.3, lw=0, label=_("80% band"))
        obs = observed_cells(n, v)
        ax.plot(x[obs], v[obs] / n[obs], "o", color="black", ms=3.5, label=_("observed"))
        ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
        val = scenario.funnel[stage].value
        unit = f" ({val.unit})" if val is not None and val.unit else ""
        ax.set_ylabel(text(f"{scenario.stage_label(stage + '.value')}{unit}", 40))
        ticks = x[:: max(len(x) // 6, 1)]
        ax.set_xticks(ticks)
        ax.set_xticklabels([fmt_label(history.labels[t]) for t in ticks])
    axs[0, 0].legend(loc="upper right", ncol=3, fontsize=8)
    return fig, axs


# -------------------------------------------------------------------------- progress over time


@_styled
def kr_progress(
    scenario: Scenario,
    forecast: Forecast,
    targets: dict[str, KRTarget],
    *,
    axes: Sequence[Axes] | None = None,
) -> tuple[Figure, np.ndarray]:
    """Each KR accumulated over the horizon per option: median with 50% and 80% bands. Totals are
    drawn against the target's pace (a straight line from zero to the target); ratios as the
    running ratio against the target rate."""
    krs = scenario.key_results
    opts = list(forecast.options)
    H = scenario.horizon
    if axes is None:
        fig, axs = _new(len(krs), 1, (9, 2.9 * len(krs) + 0.8), sharex=True)
        axs = axs[:, 0]
    else:
        axs = np.asarray(axes)
        fig = axs[0].figure
    colors = option_colors(scenario)
    t_axis = np.arange(1, H + 1)
    for ax, kr in zip(axs, krs, strict=True):
        t = targets[kr.id]
        for o in opts:
            c = forecast.counts[o]
            if kr.is_ratio:
                a, b = (np.cumsum(c[s], axis=1) for s in kr.stages)
                v = np.divide(a, b, out=np.zeros(a.shape, dtype=float), where=b > 0)
            else:
                v = np.cumsum(c[kr.stages[0]], axis=1).astype(float)
            q10, q25, q50, q75, q90 = np.quantile(v, [0.1, 0.25, 0.5, 0.75, 0.9], axis=0)
            x = t_axis if kr.is_ratio else np.r_[0, t_axis]
            if not kr.is_ratio:
                q10, q25, q50, q75, q90 = (np.r_[0, q] for q in (q10, q25, q50, q75, q90))
            ax.fill_between(x, q10, q90, color=colors[o], alpha=0.13, lw=0)
            ax.fill_between(x, q25, q75, color=colors[o], alpha=0.3, lw=0)
            ax.plot(x, q50, color=colors[o], lw=2)
        if kr.is_ratio:
            ax.axhline(t.target, color=TARGET, ls="--", lw=1.5)
            ax.axhline(t.baseline, color=BASELINE, ls=":", lw=1.5)
        else:
            ax.plot([0, H], [0, t.target], color=TARGET, ls="--", lw=1.5)
            ax.plot([0, H], [0, t.baseline], color=BASELINE, ls=":", lw=1.5)
            ax.plot([H], [t.target], marker="o", color=TARGET, ms=5, clip_on=False, zorder=5)
        ax.yaxis.set_major_formatter(_value_formatter(kr.is_rate))
        what = (
            (_("running rate") if kr.is_rate else _("running ratio"))
            if kr.is_ratio
            else _("cumulative total")
        )
        ax.set_title(
            text(
                _("{kr} — {what}, target {target}").format(
                    kr=kr_label(scenario, kr.id),
                    what=what,
                    target=words.target_words(scenario, kr.id, t),
                ),
                90,
            ),
            loc="left",
        )
        ax.set_xlim(0, H)
    axs[-1].set_xlabel(into_the_quarter(scenario))
    axs[-1].xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    handles = [
        Line2D([], [], color=colors[o], lw=2, label=text(_option_label(scenario, o), 40, 2))
        for o in opts
    ]
    handles += [
        Patch(color="#777777", alpha=0.45, label=_("50% band")),
        Patch(color="#777777", alpha=0.18, label=_("80% band")),
        Line2D([], [], color=TARGET, ls="--", label=_("target (pace for totals)")),
        Line2D([], [], color=BASELINE, ls=":", label=_("baseline (pace for totals)")),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    return fig, axs


# ------------------------------------------------------------------------------- sensitivity


@_styled
def sensitivity(
    scenario: Scenario, summary: RunSummary, *, ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Tornado chart from ``summary.sensitivity``: for each uncertain belief, the rule's value of
    its option with the belief at its 10th and at its 90th percentile, against the option's value now
    and the best other option's; where the pick flips, at which value."""
    sens = summary.sensitivity
    rec = summary.recommendation
    n = max(len(sens), 1)
    if ax is None:
        fig, a = _new(1, 1, (10, 0.85 * n + 1.9))
        ax = a[0, 0]
    fig = ax.figure
    colors = option_colors(scenario)
    labels = []
    axis_label = rule_axis(rec)
    for i, s in enumerate(sens):
        y = n - 1 - i
        o = s.option
        v0, v1 = s.value_low, s.value_high
        ax.plot([v0, v1], [y, y], color=colors[o], lw=9, alpha=0.45, solid_capstyle="butt")
        ax.plot([v0], [y], "o", mfc="white", mec=colors[o], mew=2, ms=8)
        ax.plot([v1], [y], "o", color=colors[o], ms=8)
        ax.plot([rec.value[o]], [y], "|", color="black", ms=18, mew=2)
        others = [v for k, v in rec.value.items() if k != o]
        if others:
            ax.plot([max(others)], [y], "D", color="#999999", ms=6)
        name = words.parameter_label(scenario, s.parameter)
        span = (
            f"{words.parameter_value(scenario, s.parameter, s.low)} → "
            f"{words.parameter_value(scenario, s.parameter, s.high)}"
        )
        labels.append(text(name, 44) + "\n" + _("(10th → 90th pct: {span})").format(span=span))
        be = s.break_even
        if be:
            lab = {k: _option_label(scenario, k) for k in (be.below, be.above)}
            flip = _("pick flips at {value}:\n{below} below,\n{above} above").format(
                value=words.parameter_value(scenario, s.parameter, be.value),
                below=text(lab[be.below], 30),
                above=text(lab[be.above], 30),
            )
        else:
            flip = _("pick does not flip\nwithin this range")
        ax.text(1.02, y, flip, transform=ax.get_yaxis_transform(), va="center", fontsize=8.5)
    if not sens:
        ax.text(
            0.5, 0, _("no uncertain beliefs to vary"), ha="center", va="center", color="#666666"
        )
        labels = [""]
    ax.set_yticks(np.arange(n)[::-1], labels)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-0.7, n - 0.3)
    lows = [min(s.value_low, s.value_high) for s in sens] + list(rec.value.values())
    ax.set_xlim(-1.02 if min(lows, default=0) < 0 else -0.02, 1.02)  # grades go down to -1
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(_("{axis} of the belief's option").format(axis=axis_label))
    ax.legend(
        handles=_sensitivity_handles(),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16 if n > 2 else -0.3),
        ncol=4 if get_language() == "en" else 2,  # longer labels in other languages
    )
    return fig, ax


def _sensitivity_handles() -> list[Line2D]:
    """The tornado chart's legend: the belief's two ends, the option now, the best other."""
    return [
        Line2D(
            [],
            [],
            marker="o",
            mfc="white",
            mec="#444444",
            mew=2,
            ls="",
            label=_("belief at its 10th percentile"),
        ),
        Line2D([], [], marker="o", color="#444444", ls="", label=_("at its 90th percentile")),
        Line2D([], [], marker="|", color="black", ms=12, mew=2, ls="", label=_("that option now")),
        Line2D([], [], marker="D", color="#999999", ls="", label=_("best other option now")),
    ]
