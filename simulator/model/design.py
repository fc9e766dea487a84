"""What the funnel model reads from a scenario and its data, in numpy: the inputs of its terms.

`model_data` holds the values of the model's data containers (``pm.Data``: the counts and the
traffic level's prior centre); `Design` gathers everything else the terms take from the history —
the time line and its trend covariate, which cells were observed, the calendar's design matrices
(yearly Fourier terms, day of week) and whether the data show a yearly profile, the events'
indicator matrices, the walks' bases and which rate nodes are centred. `Launched` is a table of
periods observed after the history under an option. `Padding` pads time lines of different
lengths at the front to one length, so that one compiled model samples them all (`padded`;
`paddings` for `krsim backtest`'s windows, `launched_padding` for `krsim track`'s weeks). Nothing
here imports PyMC.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..io import season
from ..io.data import CountTable, event_rows
from ..io.scenario import Structure, value_stages
from .posterior import period_times

if TYPE_CHECKING:
    from ..io.scenario import Scenario


@dataclass(frozen=True)
class Launched:
    """Periods observed after the history under a launched option (`krsim track`'s actuals):
    they continue the history's time line, with the option's changes acting on their rates."""

    option: str
    table: CountTable

    def __len__(self) -> int:
        return len(self.table)

    def after(self, history: CountTable) -> CountTable:
        """One table of the history's periods followed by these."""
        counts = {c: np.concatenate([v, self.table.counts[c]]) for c, v in history.counts.items()}
        L = len(self.table)
        missing = {
            c: np.concatenate(
                [
                    np.asarray(history.missing.get(c, np.zeros(len(history), dtype=bool))),
                    np.asarray(self.table.missing.get(c, np.zeros(L, dtype=bool))),
                ]
            )
            for c in set(history.missing) | set(self.table.missing)
        }
        dates = calendar_dates(history, len(history) + L)
        return CountTable(
            history.path,
            history.key,
            history.labels + self.table.labels,
            counts,
            dates=tuple(dates) if dates is not None else None,
            missing=missing,
        )


def calendar_dates(history: CountTable, T: int) -> list | None:
    """The dates of the history's periods continued to ``T`` periods at its step (None for
    ordinal labels)."""
    if history.dates is None:
        return None
    return list(history.dates) + season.future_dates(history.dates, T - len(history))


def model_data(scenario: Scenario, history: CountTable) -> dict[str, np.ndarray]:
    """The values of the model's data containers (``pm.Data``) for a history: the traffic, the
    rate nodes' counts and their parents' counts, and the centre of the traffic level's prior.
    A built model takes another history of the same length through these (``pm.set_data``, or
    nutpie's ``with_data`` on a compiled model)."""
    st = Structure.of(scenario)
    T = len(history)
    y = np.asarray(history.counts[st.root], dtype=np.int64)
    if st.nodes:
        n_node = np.stack([history.counts[n] for n in st.nodes]).astype(np.int64)
        n_par = np.stack([history.counts[p] for p in st.parents]).astype(np.int64)
    else:
        n_node = n_par = np.zeros((0, T), dtype=np.int64)
    seen = ~np.asarray(history.missing.get(st.root, np.zeros(T, dtype=bool)), dtype=bool)
    return {
        "traffic_count": y,
        "node_count": n_node,
        "parent_count": n_par,
        "level_centre": np.asarray(np.log(max(y[seen].mean(), 1.0)), dtype=np.float64),
    }


def observed_cells(history: CountTable, st: Structure) -> tuple[np.ndarray, np.ndarray]:
    """Which traffic periods were observed, and which (node, period) rate cells: a rate cell needs
    its stage and its parent both observed (empty cells are missing data, not zeros)."""
    T = len(history)

    def seen(col: str) -> np.ndarray:
        m = history.missing.get(col)
        return np.ones(T, dtype=bool) if m is None else ~np.asarray(m, dtype=bool)

    cells = [seen(n) & seen(p) for n, p in zip(st.nodes, st.parents, strict=True)]
    return seen(st.root), np.stack(cells) if cells else np.ones((0, T), dtype=bool)


def empirical_rates(n_node: np.ndarray, n_par: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's observed rate, with half a count added so that 0 and 1 stay finite, and its
    logit."""
    p = (n_node + 0.5) / (n_par + 1.0)
    return p, np.log(p) - np.log1p(-p)


def default_centred(scenario: Scenario, history: CountTable) -> np.ndarray:
    """Which rate nodes `build_model` centres for ``history`` (`centred_nodes` on its observed
    cells, with the drifting levels in mind when the model has them)."""
    v = model_data(scenario, history)
    _, seen = observed_cells(history, Structure.of(scenario))
    return centred_nodes(v["node_count"], v["parent_count"], seen, drift=scenario.model.walks)


def centred_nodes(
    n_node: np.ndarray,
    n_par: np.ndarray,
    seen: np.ndarray | None = None,
    *,
    drift: bool = False,
) -> np.ndarray:
    """Per rate node: True when the data pin down each period's rate, so the centred form samples
    best; False when binomial noise dominates the week-to-week variation, where the centred form
    has a funnel between ``sigma`` and the period rates and the non-centred form is the right one.

    Compares the binomial sampling variance of a period's empirical logit rate with the
    between-period variance left after removing it (measured in `make bench`: on a 12-stage,
    104-period funnel the mixed form gives 35x the effective draws per second of the all-centred
    one, and 2x on the seed scenario, with no divergences).
    """
    p, logit = empirical_rates(n_node, n_par)
    noise = 1.0 / (n_par * p * (1 - p) + 1e-9)
    if seen is not None and not seen.all():
        logit = np.ma.masked_array(logit, ~seen)
        noise = np.ma.masked_array(noise, ~seen)
    if drift and logit.shape[1] > 2:
        # with a drifting level the period effects are what the walk leaves: the period-to-period
        # variation, from half the variance of first differences (a slow walk barely moves
        # them), so a rate whose variation is all drift is non-centred (centred, its period
        # effects' sd shrinks toward 0 under the walk: a funnel the sampler diverges in)
        between = 0.5 * np.ma.diff(logit, axis=1).var(axis=1) - noise.mean(axis=1)
    else:
        between = logit.var(axis=1) - noise.mean(axis=1)
    return np.asarray(between > noise.mean(axis=1))


WALK_TERMS = 32


def walk_terms(T: int) -> int:
    """How many Karhunen-Loeve terms a walk over ``T`` periods keeps: one per 5 periods (its
    shortest wave about 10 periods), at least 4, at most ``WALK_TERMS``. Faster wiggles are the
    period effects' (the negative binomial's, the rates' iid effects); a walk with nearly as many
    terms as periods competes with them for the same variation, which the sampler pays for."""
    return int(min(WALK_TERMS, max(4, -(-T // 5))))


def walk_basis(T: int, M: int | None = None, *, trend: bool = False) -> np.ndarray:
    """(T, M): a random walk of unit step sd over periods 1..T (Brownian motion on [0, T]
    at the period ends) is ``basis @ z`` with ``z`` standard normal, truncated to its slowest
    Karhunen-Loeve terms (``M``, by default `walk_terms`). The truncation keeps the walk's slow
    part (with 32 terms over 156 periods, over 99% of its variance at the end of the history);
    the rest is period-to-period noise.

    The columns' mean over the history (and with ``trend``, their linear part in
    `period_times`) is removed: the level (and the trend) carry those directions, so the walk does
    not compete with them for the same paths, which the sampler pays for in effective draws."""
    M = walk_terms(T) if M is None else M
    s = np.arange(1, T + 1, dtype=float)
    w = (np.arange(1, M + 1) - 0.5) * np.pi
    B = np.sqrt(2 * T) * np.sin(w[None, :] * s[:, None] / T) / w[None, :]
    Z = np.ones((T, 1)) if not trend else np.stack([np.ones(T), period_times(T)], axis=1)
    return B - Z @ np.linalg.lstsq(Z, B, rcond=None)[0]


@dataclass(frozen=True)
class Calendar:
    """The calendar's design: the yearly Fourier terms (periods x 2K, None without a yearly
    profile) with their harmonic numbers, whether the history shows the profile clearly (the
    traffic; per rate node), and the day-of-week terms (periods x 6, None unless the periods
    are days)."""

    season: np.ndarray | None = None
    harmonics: np.ndarray | None = None
    traffic_clear: bool = False
    rate_clear: np.ndarray | None = None
    weekday: np.ndarray | None = None


def calendar_design(
    scenario: Scenario, history: CountTable, T: int, data: dict[str, np.ndarray], seen
) -> Calendar:
    """`Calendar` of a time line of ``T`` periods starting with ``history``'s (``data``: its
    `model_data` values; ``seen``: `observed_cells` of the time line). Whether a profile is clear
    (`season.profile_is_clear`) is read from the history's periods."""
    mb = scenario.model
    T0 = len(history)
    dates = calendar_dates(history, T)
    weekday = season.weekday(dates) if mb.seasonality != "none" and season.daily(dates) else None
    if not season.seasonal(mb.seasonality, history.dates)[0]:
        return Calendar(weekday=weekday)
    X = season.fourier(dates, mb.season_terms)
    kk = season.harmonics(mb.season_terms)
    y_seen, cell_seen = seen
    y0 = data["traffic_count"][:T0].astype(float)
    log_y = np.where(y_seen[:T0] & (y0 > 0), np.log(np.maximum(y0, 1.0)), np.nan)
    traffic_clear = bool(season.profile_is_clear(log_y, X[:T0], kk)[0])
    rate_clear = None
    if len(data["node_count"]):
        _, logit = empirical_rates(data["node_count"][:, :T0], data["parent_count"][:, :T0])
        logit = np.where(cell_seen[:, :T0], logit, np.nan)
        rate_clear = season.profile_is_clear(logit, X[:T0], kk)
    return Calendar(X, kk, traffic_clear, rate_clear, weekday)


def event_designs(
    scenario: Scenario, history: CountTable, T: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Indicator matrices of the events' periods on a time line of ``T`` periods (the events lie
    in the history): for the traffic (periods x effects, None when no event names the root), and
    for the rates (nodes x periods x effects, one effect per node and period an event covers;
    None when there is none)."""
    st = Structure.of(scenario)
    rows = np.array([np.pad(r, (0, T - len(history))) for r in event_rows(scenario, history)])
    rows = rows.reshape(len(scenario.events), T).astype(bool)
    names = [ev.stages for ev in scenario.events]
    on_root = np.array([s is None or st.root in s for s in names], dtype=bool)
    traffic = None
    if on_root.any():
        hit = np.flatnonzero(np.any(rows[on_root], axis=0))
        traffic = np.zeros((T, len(hit)))
        traffic[hit, np.arange(len(hit))] = 1.0
    on_node = np.array([[s is None or n in s for s in names] for n in st.nodes], dtype=bool)
    hit = (on_node.reshape(len(st.nodes), len(names)).astype(int) @ rows.astype(int)) > 0
    pairs = np.argwhere(hit)
    if not len(pairs):
        return traffic, None
    rates = np.zeros((len(st.nodes), T, len(pairs)))
    rates[pairs[:, 0], pairs[:, 1], np.arange(len(pairs))] = 1.0
    return traffic, rates


@dataclass(frozen=True)
class Values:
    """The value stages' history: counts and total values (stages x history periods, a value
    NaN where its cell is empty)."""

    stages: tuple[str, ...]
    labels: tuple[str, ...]
    counts: np.ndarray
    totals: np.ndarray


@dataclass(frozen=True)
class Design:
    """Everything the funnel model's terms read from the scenario and the data, besides the data
    containers' values (``data``, `model_data`; the traffic level's prior centred on the history
    alone). The time line holds the history's ``T0`` periods and the launched ones after them
    (``T`` in all); ``times`` is its trend covariate (`period_times`)."""

    nodes: tuple[str, ...]
    T0: int
    T: int
    times: np.ndarray
    data: dict[str, np.ndarray]
    coords: dict[str, list]
    traffic_seen: np.ndarray  # (T,)
    cell_seen: np.ndarray  # (nodes, T)
    centred: np.ndarray  # (nodes,): which rate nodes are sampled centred
    calendar: Calendar
    traffic_events: np.ndarray | None  # (T, effects)
    rate_events: np.ndarray | None  # (nodes, T, effects)
    traffic_walk: np.ndarray | None  # the walks' bases (T, terms), None without walks
    rate_walk: np.ndarray | None
    values: Values | None
    # periods added before the history (`Padding`): None for the model's ordinary form, else
    # every per-period input is a data container, the history's periods are padded..T0 and the
    # launched ones T0..T
    padded: int | None = None
    # in the padded form with launched periods: the last periods, in which they lie (their
    # likelihood is computed on these alone)
    window: int | None = None
    # in the padded form, inside the model: the data containers of `real` ("real") and of the
    # observed traffic periods ("seen")
    inputs: dict | None = None

    @property
    def real(self) -> np.ndarray:
        """(T,): 1.0 for the periods of the data, 0.0 for those padded before them."""
        return (np.arange(self.T) >= (self.padded or 0)).astype(float)


@dataclass(frozen=True)
class Padding:
    """One model for histories of different lengths (`paddings`: a backtest's windows;
    `launched_padding`: track's weeks, launched periods after one history): each time line is
    padded at the front to ``length`` periods, with no data in the padded ones, and the choices
    the model would otherwise read from each history are fixed (which rate nodes are centred,
    whether the yearly profiles are clear: both only how the same model is parameterised) with
    the walks' number of terms. The padded periods' parameters are standard normals the data do
    not reach, so the posterior of the others is the unpadded model's."""

    length: int
    centred: tuple[bool, ...]
    traffic_clear: bool
    rate_clear: tuple[bool, ...] | None
    walk_terms: int
    launched: int = 0  # the last periods, in which launched periods may lie (`launched_padding`)

    def key(self) -> dict:
        return dataclasses.asdict(self)


def paddings(scenario: Scenario, histories: list[CountTable]) -> list[Padding | None]:
    """Per history (of one scenario), the `Padding` under which it shares one compiled model
    with the others whose models have the same parts (the same profiles, as many events'
    effects): each is padded to the longest of its group and takes that one's choices (which
    rate nodes are centred, whether the profiles are clear: either way the posterior is the same,
    though a shorter history may be sampled in a form its own data would not choose). None for
    a history alone in its group, and for every history when the model has parts that padding
    does not cover (`padding_covers`)."""
    if not padding_covers(scenario):
        return [None] * len(histories)
    designs = [design_of(scenario, h) for h in histories]
    groups: dict[tuple, list[Design]] = {}
    for d in designs:
        groups.setdefault(_parts(d), []).append(d)
    out: list[Padding | None] = []
    for d in designs:
        group = groups[_parts(d)]
        longest = max(group, key=lambda g: g.T)
        out.append(_padding_of(longest, longest.T) if len(group) > 1 else None)
    return out


def launched_padding(
    scenario: Scenario, history: CountTable, periods: int, horizon: int
) -> Padding | None:
    """The `Padding` of the history followed by ``periods`` launched ones (`krsim track`'s
    actuals): to the history and the next whole number of ``horizon``s, with the history's
    choices, so that every week of a quarter's actuals gives the same graph. None when the
    model has parts that padding does not cover (`padding_covers`)."""
    if not padding_covers(scenario):
        return None
    window = horizon * max(1, -(-periods // horizon))
    return _padding_of(design_of(scenario, history), len(history) + window, window)


def padding_covers(scenario: Scenario) -> bool:
    """Whether the scenario's history model can be padded: not with AR(1) period effects (a
    stationary AR(1) started in the padded periods would tie them to the history's) nor value
    stages (their data enter the model as constants)."""
    return scenario.model.period_effects != "ar1" and not value_stages(scenario)


def _padding_of(d: Design, length: int, launched: int = 0) -> Padding:
    """The `Padding` to ``length`` periods with the choices of the design ``d``."""
    cal = d.calendar
    return Padding(
        length=length,
        centred=tuple(bool(c) for c in d.centred),
        traffic_clear=bool(cal.traffic_clear),
        rate_clear=None if cal.rate_clear is None else tuple(bool(c) for c in cal.rate_clear),
        walk_terms=walk_terms(length),
        launched=launched,
    )


def _parts(d: Design) -> tuple:
    """Which parts a history's model has besides its length (`paddings`' groups): the yearly
    and the day-of-week profiles, and how many events' effects."""
    cal = d.calendar
    return (
        cal.season is None,
        cal.weekday is None,
        None if d.traffic_events is None else d.traffic_events.shape[-1],
        None if d.rate_events is None else d.rate_events.shape[-1],
    )


def _front(x: np.ndarray | None, pad: int, axis: int = 0) -> np.ndarray | None:
    """``x`` with ``pad`` zeros (False) before its first period (along ``axis``)."""
    if x is None:
        return None
    width = [(0, 0)] * np.ndim(x)
    width[axis] = (pad, 0)
    return np.pad(x, width)


def padded(d: Design, pad: Padding) -> Design:
    """``d`` (a history's design, with launched periods after it or not) padded at the front to
    ``pad.length`` periods: no traffic and no rate cell observed there (a rate cell with no
    parent count adds nothing to the binomials), the designs' rows zero there (the walks' paths,
    the profiles, the trend and the events are zero), the walks' bases widened to
    ``pad.walk_terms`` columns with zeros, and the choices fixed by ``pad``."""
    P = pad.length - d.T
    if P < 0 or d.T - d.T0 > pad.launched:
        raise ValueError(f"cannot pad {d.T0} + {d.T - d.T0} periods to {pad.length}")
    if len(pad.centred) != len(d.nodes) or len(pad.rate_clear or d.nodes) != len(d.nodes):
        raise ValueError("the padding's choices are of another funnel")
    seen = _front(d.cell_seen, P, 1)
    data = dict(d.data)
    data["traffic_count"] = _front(np.where(d.traffic_seen, d.data["traffic_count"], 0), P)
    history = d.cell_seen & (np.arange(d.T) < d.T0)  # launched periods: their own likelihood
    for k in ("node_count", "parent_count"):
        data[k] = _front(np.where(history, d.data[k], 0), P, 1)

    def basis(b: np.ndarray | None) -> np.ndarray | None:
        return None if b is None else np.pad(b, [(P, 0), (0, pad.walk_terms - b.shape[1])])

    cal = d.calendar
    clear = None if pad.rate_clear is None else np.array(pad.rate_clear, dtype=bool)
    labels = [f"(before {i})" for i in range(P, 0, -1)]
    return dataclasses.replace(
        d,
        T0=P + d.T0,
        T=pad.length,
        times=_front(d.times, P),
        data=data,
        coords={**d.coords, "period": labels + list(d.coords["period"])},
        traffic_seen=_front(d.traffic_seen, P),
        cell_seen=seen,
        centred=np.array(pad.centred, dtype=bool),
        calendar=dataclasses.replace(
            cal,
            season=_front(cal.season, P),
            weekday=_front(cal.weekday, P),
            traffic_clear=pad.traffic_clear,
            rate_clear=clear,
        ),
        traffic_events=_front(d.traffic_events, P),
        rate_events=_front(d.rate_events, P, 1),
        traffic_walk=basis(d.traffic_walk),
        rate_walk=basis(d.rate_walk),
        padded=P,
        window=pad.launched if d.T > d.T0 else None,
    )


def design_of(
    scenario: Scenario,
    history: CountTable,
    launched: Launched | None = None,
    centred: np.ndarray | None = None,
    pad: Padding | None = None,
) -> Design:
    """The `Design` of the model of ``history`` (followed by ``launched``'s periods when given);
    ``centred`` fixes which rate nodes are centred (default: `default_centred` of the history);
    ``pad``: padded at the front (`padded`, with the padding's choices)."""
    if pad is not None:
        if centred is not None or (launched is not None and not len(launched)):
            raise ValueError("a padded design makes the padding's choices, after some periods")
        return padded(design_of(scenario, history, launched, np.array(pad.centred)), pad)
    mb = scenario.model
    st = Structure.of(scenario)
    both = history if launched is None else launched.after(history)
    T = len(both)
    data = model_data(scenario, both)
    data["level_centre"] = model_data(scenario, history)["level_centre"]
    seen = observed_cells(both, st)
    if st.nodes:
        centred = default_centred(scenario, history) if centred is None else centred
    traffic_events, rate_events = event_designs(scenario, history, T)
    stages = value_stages(scenario)
    return Design(
        nodes=st.nodes,
        T0=len(history),
        T=T,
        times=period_times(T),
        data=data,
        coords={"period": list(both.labels), "node": list(st.nodes)},
        traffic_seen=seen[0],
        cell_seen=seen[1],
        centred=np.asarray(centred if centred is not None else [], dtype=bool),
        calendar=calendar_design(scenario, history, T, data, seen),
        traffic_events=traffic_events,
        rate_events=rate_events,
        traffic_walk=walk_basis(T, trend=mb.trend) if mb.walks else None,
        rate_walk=walk_basis(T, trend=mb.rate_trend) if mb.walks and st.nodes else None,
        values=Values(stages, history.labels, *history.value_matrix(stages)) if stages else None,
    )
