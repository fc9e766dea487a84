"""Baselines as teams set them (`baseline:`): each form's window and value, computed by hand from a
small weekly history, and the messages for forms that cannot be computed."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.engine import baselines, decision
from simulator.io.data import read_history
from simulator.io.scenario import InputError, read_scenario

H = 13
START = dt.date(2024, 1, 1)  # a Monday; 105 weekly rows run to 2025-12-29
N = 105
PEAK, LOW = 48, 30  # ISO weeks of the year with the most and the fewest visits


def day(i: int) -> dt.date:
    return START + dt.timedelta(weeks=i)


def rows(n: int = N) -> list[dict]:
    """The history's rows: visits flat at 200 but for a peak in ISO week 48 (Black Friday) and a
    low in week 30; the other columns vary from row to row."""
    out = []
    for i in range(n):
        week = day(i).isocalendar().week
        visits = 400 if week == PEAK else 100 if week == LOW else 200
        signup = 20 + i % 7
        purchase = 10 + i % 3
        out.append(
            {
                "period": day(i).isoformat(),
                "visits": visits,
                "signup": signup,
                "purchase": purchase,
                "purchase.value": 25.5 * purchase + i,
            }
        )
    return out


SCENARIO = """\
title: Baselines (test)
period: week
horizon: 13
funnel:
  visits: {label: Site visits}
  signup: {from: visits, label: Sign-ups}
  purchase: {from: signup, label: Purchases, value: {label: Revenue, unit: EUR}}
history: history.csv
options:
  status_quo: {label: As is}
key_results:
  - {id: signups, metric: signup, target: +10%}
  - {id: revenue, metric: purchase.value, target: +5%}
  - {id: conv, metric: purchase / signup, target: +2%}
"""


def write(tmp_path: Path, extra: str = "", n: int = N, dated: bool = True) -> Path:
    lines = ["period,visits,signup,purchase,purchase.value"]
    for j, r in enumerate(rows(n)):
        label = r["period"] if dated else str(j + 1)
        lines.append(
            f"{label},{r['visits']},{r['signup']},{r['purchase']},{r['purchase.value']:.2f}"
        )
    (tmp_path / "history.csv").write_text("\n".join(lines) + "\n")
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO + textwrap.dedent(extra))
    return path


def load(path: Path):
    s = read_scenario(path)
    return s, read_history(s)


def sums(i: int, j: int, n: int = N) -> dict[str, float]:
    """Column totals over rows i..j inclusive, in plain Python."""
    rs = rows(n)[i : j + 1]
    return {c: sum(r[c] for r in rs) for c in ("visits", "signup", "purchase", "purchase.value")}


def check_values(b: dict, i: int, j: int, n: int = N) -> None:
    t = sums(i, j, n)
    scale = H / (j - i + 1)
    assert b["signups"].value == pytest.approx(t["signup"] * scale, rel=1e-12)
    assert b["revenue"].value == pytest.approx(t["purchase.value"] * scale, rel=1e-9)
    assert b["conv"].value == pytest.approx(t["purchase"] / t["signup"], rel=1e-12)
    for k in b.values():
        assert (k.first, k.last, k.periods) == (day(i).isoformat(), day(j).isoformat(), j - i + 1)


def test_last_periods_is_the_default(tmp_path):
    s, h = load(write(tmp_path))
    b = baselines.resolve(s, h)
    check_values(b, N - H, N - 1)
    assert {k.kind for k in b.values()} == {"last_periods"}
    assert b["signups"].describe() == "the last 13 weeks (2025-10-06 to 2025-12-29)"
    assert b["signups"].note is None
    assert decision.baselines(s, h) == {k: v.value for k, v in b.items()}
    s2, h2 = load(write(tmp_path, "baseline: last_periods\n"))
    assert s2.baseline is None and baselines.resolve(s2, h2) == b


def test_same_period_last_year(tmp_path):
    # the forecast starts 2026-01-05; a year before is 2025-01-05, nearest period 2025-01-06
    s, h = load(write(tmp_path, "baseline: same_period_last_year\n"))
    b = baselines.resolve(s, h)
    i = 53
    assert day(i) == dt.date(2025, 1, 6)
    check_values(b, i, i + H - 1)
    assert b["revenue"].describe() == "2025-01-06 to 2025-03-31, same period last year"
    assert b["revenue"].kind == "same_period_last_year" and b["revenue"].note is None


def test_previous_quarter(tmp_path):
    # history to 2025-11-03: the forecast starts 2025-11-10, in the quarter from 2025-10-01; the
    # last period before that quarter is 2025-09-29 (row 91)
    n = 97
    assert day(n - 1) == dt.date(2025, 11, 3) and day(91) == dt.date(2025, 9, 29)
    s, h = load(write(tmp_path, "baseline: previous_quarter\n", n=n))
    b = baselines.resolve(s, h)
    check_values(b, 91 - H + 1, 91, n)
    assert b["conv"].describe() == "2025-07-07 to 2025-09-29, the previous quarter"


def test_previous_quarter_at_a_quarter_start_is_the_last_periods(tmp_path):
    s, h = load(write(tmp_path, "baseline: previous_quarter\n"))
    prev = baselines.resolve(s, h)
    check_values(prev, N - H, N - 1)
    assert {k.kind for k in prev.values()} == {"previous_quarter"}


def test_window_of_another_length_is_scaled(tmp_path):
    # unquoted dates: YAML reads them as dates; 2025-01-06 .. 2025-03-24 is 12 weeks
    s, h = load(write(tmp_path, "baseline: {from: 2025-01-06, to: 2025-03-24}\n"))
    b = baselines.resolve(s, h)
    check_values(b, 53, 64)
    assert b["signups"].note == "12 periods, scaled to the horizon's 13"
    assert b["revenue"].note == "12 periods, scaled to the horizon's 13"
    assert b["conv"].note is None  # a ratio is not scaled
    assert b["signups"].kind == "window" and b["signups"].describe() == "2025-01-06 to 2025-03-24"


def test_window_with_quoted_dates_and_one_of_horizon_length(tmp_path):
    s, h = load(write(tmp_path, "baseline: {from: '2025-01-06', to: '2025-03-31'}\n"))
    b = baselines.resolve(s, h)
    check_values(b, 53, 65)
    assert b["signups"].note is None


def test_window_of_labels(tmp_path):
    s, h = load(write(tmp_path, "baseline: {signups: {from: 3, to: 7}}\n", dated=False))
    b = baselines.resolve(s, h)
    t = sums(2, 6)  # labels 3..7 are rows 2..6
    assert b["signups"].value == pytest.approx(t["signup"] * H / 5)
    assert (b["signups"].first, b["signups"].last, b["signups"].periods) == ("3", "7", 5)


def test_per_key_result_mix(tmp_path):
    extra = "baseline: {signups: 1234, revenue: same_period_last_year}\n"
    s, h = load(write(tmp_path, extra))
    b = baselines.resolve(s, h)
    assert b["signups"] == baselines.Baseline(1234.0, "given", None, None, None, None, "week")
    assert b["signups"].describe() == "given in the scenario"
    t = sums(53, 53 + H - 1)
    assert b["revenue"].value == pytest.approx(t["purchase.value"], rel=1e-9)
    assert b["revenue"].first == "2025-01-06"
    last = sums(N - H, N - 1)
    assert b["conv"].kind == "last_periods"
    assert b["conv"].value == pytest.approx(last["purchase"] / last["signup"], rel=1e-12)
    tg = decision.targets(s, h)
    assert tg["signups"].baseline == 1234 and tg["signups"].target == pytest.approx(1357.4)


def test_no_dates(tmp_path, capsys):
    path = write(tmp_path, "baseline: {revenue: same_period_last_year}\n", dated=False)
    s, h = load(path)
    with pytest.raises(InputError) as exc:
        baselines.resolve(s, h)
    assert exc.value.problems == [
        f"{path}: baseline.revenue: same_period_last_year needs dates in the history's period column"
    ]
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {exc.value.problems[0]}" in err and "Traceback" not in err


def test_window_outside_the_history(tmp_path, capsys):
    path = write(tmp_path, "baseline: {from: 2023-06-05, to: 2023-08-28}\n")
    s, h = load(path)
    with pytest.raises(InputError) as exc:
        baselines.resolve(s, h)
    # written once for all key results: one line
    assert exc.value.problems == [
        f"{path}: baseline: the window 2023-06-05 to 2023-08-28 starts before the history "
        "(first period 2024-01-01)"
    ]
    assert main(["check", str(path)]) == 2
    assert exc.value.problems[0] in capsys.readouterr().err


def test_same_period_last_year_before_the_history(tmp_path):
    # 40 weeks of history: a year before the forecast lies before its first period
    path = write(tmp_path, "baseline: {signups: same_period_last_year}\n", n=40)
    s, h = load(path)
    with pytest.raises(InputError) as exc:
        baselines.resolve(s, h)
    assert exc.value.problems == [
        f"{path}: baseline.signups: the window 2023-10-09 to 2024-01-01 (same period last year) "
        "starts before the history (first period 2024-01-01)"
    ]


def test_window_empty_and_after_the_history(tmp_path):
    extra = (
        "baseline: {signups: {from: 2025-01-07, to: 2025-01-12}, "
        "revenue: {from: 2025-12-01, to: 2026-01-31}}\n"
    )
    path = write(tmp_path, extra)
    with pytest.raises(InputError) as exc:
        baselines.resolve(*load(path))
    assert exc.value.problems == [
        f"{path}: baseline.signups: the window 2025-01-07 to 2025-01-12 holds no period of the "
        "history",
        f"{path}: baseline.revenue: the window 2025-12-01 to 2026-01-31 ends after the history "
        "(last period 2025-12-29)",
    ]


def test_unknown_kind(tmp_path, capsys):
    path = write(tmp_path, "baseline: {revenue: same_period_lastyear}\n")
    want = (
        f"{path}: baseline.revenue: unknown baseline 'same_period_lastyear' (did you mean "
        "'same_period_last_year'?); write a number, last_periods, same_period_last_year, "
        "previous_quarter or {from: DATE, to: DATE}"
    )
    with pytest.raises(InputError) as exc:
        read_scenario(path)
    assert exc.value.problems == [want]
    assert main(["check", str(path)]) == 2
    assert f"error: {want}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "want"),
    [
        (
            "baseline: {revenu: 3}\n",
            "baseline.revenu: unknown key result 'revenu' (did you mean 'revenue'?)",
        ),
        ("baseline: {revenue: -3}\n", "baseline.revenue: a baseline cannot be negative, got -3"),
        (
            "baseline: {from: 2025-03-31, to: 2025-01-06}\n",
            "baseline: the window's from (2025-03-31) comes after its to (2025-01-06)",
        ),
        (
            "baseline: {conv: {from: 2025-01-06}}\n",
            "baseline.conv: a baseline window needs both from and to (no 'to')",
        ),
        (
            "baseline: 12\n",
            "baseline: a number is a baseline of one key result: write baseline: {KR_ID: 12}",
        ),
    ],
)
def test_schema_problems(tmp_path, extra, want):
    path = write(tmp_path, extra)
    with pytest.raises(InputError) as exc:
        read_scenario(path)
    assert exc.value.problems == [f"{path}: {want}"]


def test_empty_cells_in_a_named_window(tmp_path):
    path = write(tmp_path, "baseline: {revenue: {from: 2025-01-06, to: 2025-03-31}}\n")
    csv = tmp_path / "history.csv"
    text = csv.read_text().replace(f"{day(55).isoformat()},", "@", 1)
    head, tail = text.split("@", 1)
    cells = tail.split("\n", 1)
    row = cells[0].split(",")
    row[-1] = ""  # purchase.value of 2025-01-20 left empty
    csv.write_text(head + f"{day(55).isoformat()}," + ",".join(row) + "\n" + cells[1])
    with pytest.raises(InputError) as exc:
        baselines.resolve(*load(path))
    assert exc.value.problems == [
        f"{path}: baseline.revenue: empty cells in 'purchase.value' in 2025-01-20, inside the "
        "baseline window 2025-01-06 to 2025-03-31; fill them or choose another window"
    ]


def test_event_and_season_note(tmp_path):
    extra = """\
    events:
      - {label: Black Friday, first: '2025-11-24', last: '2025-11-30', stages: [visits]}
    """
    s, h = load(write(tmp_path, extra))
    assert baselines.window_notes(s, h) == [
        "The baseline window (2025-10-06 to 2025-12-29) holds the event ‘Black Friday’ and the "
        "year's peak of Site visits: consider `baseline: same_period_last_year`."
    ]
    # the season extremes, judged from the history: ISO weeks 48 and 30
    assert baselines.season_extremes(h, "visits") == (PEAK, LOW)


def test_no_note_off_the_default_window_or_without_season(tmp_path):
    s, h = load(write(tmp_path, "baseline: same_period_last_year\n"))
    assert baselines.window_notes(s, h) == []
    s, h = load(write(tmp_path, "model: {seasonality: none}\n"))
    assert baselines.window_notes(s, h) == []  # no profile, no event
    s, h = load(write(tmp_path, "baseline: {signups: previous_quarter, conv: 0.5}\n"))
    assert baselines.window_notes(s, h) == [
        "The baseline window of revenue (2025-10-06 to 2025-12-29) holds the year's peak of "
        "Site visits: consider `baseline: same_period_last_year`."
    ]
