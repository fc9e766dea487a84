"""A French analytics export as it comes: headers mapped with `column:`, day-first dates, `;`,
decimal commas and amounts with spaces and a currency, tracking outages refused, unquoted YAML
dates. Each case is a small table written here, read without a model fit.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from simulator.cli import main
from simulator.io.data import parse_amounts, read_actuals, read_history
from simulator.io.scenario import InputError, read_scenario

SCENARIO = """
title: rdv
period: week
horizon: 2
history: {file: export.csv, period_column: Semaine}
funnel:
  sessions: {label: Site visits, column: Sessions}
  conseiller: {from: sessions, label: Advisor page views, column: "Vues page conseiller"}
  rdv: {from: conseiller, label: Appointments, column: "RDV pris",
        value: {label: Revenue, unit: EUR, column: "CA"}}
  comptes: {from: sessions, label: Comptes créés}
options: {status_quo: {}}
key_results: [{id: rdv, metric: rdv, target: +5%}]
"""

HEADER = "Semaine;Sessions;Vues page conseiller;RDV pris;CA;Comptes créés"
WEEKS = ["03/03/2025", "10/03/2025", "17/03/2025", "24/03/2025", "31/03/2025", "07/04/2025"]


def rows(n=6, override=None):
    """Six weeks: sessions 20 137 + 100 i, advisor views 3 000, appointments 300, revenue, sign-ups."""
    out = []
    for i in range(n):
        cells = {
            "week": WEEKS[i],
            "sessions": f"20 {137 + 100 * i:03d}".replace(" ", "\u202f"),
            "conseiller": "3000",
            "rdv": "300",
            "ca": f"64 424,{i:02d}",
            "comptes": "450",
        }
        cells.update((override or {}).get(i, {}))
        out.append(";".join(cells.values()))
    return out


def write(tmp_path, lines, scenario=SCENARIO, name="export.csv"):
    (tmp_path / name).write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    p = tmp_path / "s.yaml"
    p.write_text(scenario)
    return read_scenario(p)


def problems(tmp_path, lines, scenario=SCENARIO):
    s = write(tmp_path, lines, scenario)
    with pytest.raises(InputError) as e:
        read_history(s)
    return e.value.problems


# ------------------------------------------------------------------- columns mapped, not renamed


def test_french_headers_mapped_with_column_and_period_column(tmp_path):
    s = write(tmp_path, rows())
    h = read_history(s)
    assert h.labels[:2] == ("2025-03-03", "2025-03-10")  # day-first, read as ISO dates
    assert h.counts["sessions"].tolist() == [20137 + 100 * i for i in range(6)]
    assert h.counts["conseiller"].tolist() == [3000] * 6
    assert h.counts["comptes"].tolist() == [450] * 6  # header = the stage's label: accepted
    assert np.allclose(h.values["rdv"], [64424 + i / 100 for i in range(6)])
    path = tmp_path / "export.csv"
    assert (
        f"{path}: read 1 column by its label: 'Comptes créés' as stage 'comptes' (`column:` on the stage makes it explicit)"
        in h.notes
    )
    assert any("as day/month/year ('17/03/2025' can only be day/month/year)" in n for n in h.notes)


def test_first_column_of_dates_is_the_period(tmp_path):
    s = write(tmp_path, rows(), SCENARIO.replace(", period_column: Semaine", ""))
    h = read_history(s)
    assert h.labels[0] == "2025-03-03"
    assert any("took the first column, 'Semaine', as the period" in n for n in h.notes)


def test_did_you_mean_searches_labels_and_columns(tmp_path):
    got = problems(tmp_path, rows(), SCENARIO.replace("column: Sessions", "column: Sesions"))
    path = tmp_path / "export.csv"
    assert got == [
        f"{path}: column 'Sessions': unknown column (did you mean 'Sesions', stage 'sessions'? "
        "map it with `column: 'Sessions'` or rename the header)"
    ]


def test_missing_mapped_column_names_the_header_and_the_stage(tmp_path):
    text = SCENARIO.replace('column: "RDV pris",', 'column: "Rendez-vous",')
    got = problems(tmp_path, rows(), text)
    assert any("column 'Rendez-vous' (stage 'rdv'): missing" in p for p in got), got


# ------------------------------------------------------------------------ dates as written


def test_ambiguous_dates_are_refused_with_both_readings(tmp_path):
    lines = [
        ln.replace(WEEKS[i], d)
        for i, (ln, d) in enumerate(
            zip(rows(3), ["01/02/2025", "03/04/2025", "05/06/2025"], strict=True)
        )
    ]
    text = SCENARIO.replace("horizon: 2", "horizon: 1")
    got = problems(tmp_path, lines, text)
    assert got == [
        f"{tmp_path / 'export.csv'}: column 'Semaine': '01/02/2025' may be 2025-02-01 "
        "(day/month) or 2025-01-02 (month/day), and the file does not settle it; write the "
        "dates as YYYY-MM-DD or say `history: {file: ..., date_format: '%d/%m/%Y'}`"
    ]


def test_the_weekly_step_settles_the_order(tmp_path):
    # 01/03 .. 05/04 fits day/month (a week apart) and month/day (not a week apart)
    weeks = ["01/03/2025", "08/03/2025", "15/03/2025"]
    lines = [ln.replace(WEEKS[i], weeks[i]) for i, ln in enumerate(rows(3))]
    weeks2 = ["02/03/2025", "09/03/2025"]  # Sundays, 7 days apart only day-first
    lines2 = [ln.replace(WEEKS[i], weeks2[i]) for i, ln in enumerate(rows(2))]
    text = SCENARIO.replace("horizon: 2", "horizon: 1")
    h = read_history(write(tmp_path, lines, text))
    assert h.labels == ("2025-03-01", "2025-03-08", "2025-03-15")
    assert problems(tmp_path, lines2, text)  # two rows: too short for a history, but read
    assert "model needs at least 3 periods" in problems(tmp_path, lines2, text)[0]


def test_date_format_settles_the_rest(tmp_path):
    lines = [
        ln.replace(WEEKS[i], d)
        for i, (ln, d) in enumerate(
            zip(rows(3), ["01/02/2025", "03/04/2025", "05/06/2025"], strict=True)
        )
    ]
    text = SCENARIO.replace("horizon: 2", "horizon: 1").replace(
        "period_column: Semaine}", "period_column: Semaine, date_format: '%m/%d/%Y'}"
    )
    s = write(tmp_path, lines, text)
    with pytest.raises(InputError) as e:  # month/day: Jan 2, Mar 4, May 6 are not weeks apart
        read_history(s)
    assert "2025-01-02" in e.value.problems[0] and "2025-03-04" in e.value.problems[0]


def test_us_dates_settled_by_a_day_above_12(tmp_path):
    weeks = ["01/06/2025", "01/13/2025", "01/20/2025"]
    lines = [ln.replace(WEEKS[i], weeks[i]) for i, ln in enumerate(rows(3))]
    h = read_history(write(tmp_path, lines, SCENARIO.replace("horizon: 2", "horizon: 1")))
    assert h.labels == ("2025-01-06", "2025-01-13", "2025-01-20")
    assert any("as month/day/year ('01/13/2025' can only be month/day/year)" in n for n in h.notes)


def test_unquoted_yaml_dates_in_events(tmp_path):
    text = SCENARIO + "events:\n  - {label: Salon, first: 2025-03-10, last: 2025-03-17}\n"
    s = write(tmp_path, rows(), text)
    assert s.events[0].first == "2025-03-10"  # YAML read a date; taken as its label
    read_history(s)


# ------------------------------------------------------------------------------- amounts


def test_amounts_as_spreadsheets_write_them():
    got = parse_amounts(
        ["64 424,08", "64.424,08", "64424,08 €", "€ 64\u202f424,08", "EUR 64\u00a0424,08"],
        ";",
        "EUR",
    )
    assert got == [64424.08] * 5
    # a cell the column settles: the other cells use a decimal comma, so '.' groups thousands
    assert parse_amounts(["64.424", "1 234,50"], ";", "EUR") == [64424.0, 1234.5]


def test_ambiguous_amount_is_refused_with_both_readings():
    assert parse_amounts(["64.424"], ";", "EUR") == [
        "'64.424' may be 64424 ('.' separates thousands) or 64.424 ('.' is the decimal mark); "
        "write the decimals (e.g. 64.424,00) or no thousands separator"
    ]


def test_currency_checked_against_the_unit(tmp_path):
    got = problems(tmp_path, rows(override={2: {"ca": "64 424,08 USD"}}))
    assert got == [
        f"{tmp_path / 'export.csv'}: row 4, column 'CA': '64 424,08 USD' is in USD, the value's "
        "unit is EUR"
    ]


# ---------------------------------------------------------------------- outages are not data


def test_outage_week_of_zeros_is_refused_with_the_fix(tmp_path):
    zero = {k: "0" for k in ("sessions", "conseiller", "rdv", "comptes")} | {"ca": "0"}
    got = problems(tmp_path, rows(override={3: zero}))
    assert got == [
        f"{tmp_path / 'export.csv'}: row 5 (period 2025-03-24): every count is 0 while the other "
        "periods are not: a tracking outage? leave the cells empty: krsim treats them as missing "
        "(or, for a period that really had no activity, an `events:` entry with `closed: true`)"
    ]
    for p in got:
        assert "write 0" not in p


def test_closed_period_is_a_real_zero(tmp_path):
    zero = {k: "0" for k in ("sessions", "conseiller", "rdv", "comptes")} | {"ca": "0"}
    text = SCENARIO + (
        "events:\n  - {label: Fermeture, first: 2025-03-24, last: 2025-03-24, closed: true}\n"
    )
    h = read_history(write(tmp_path, rows(override={3: zero}), text))
    assert h.counts["sessions"][3] == 0


def test_outage_as_empty_cells_is_missing_data(tmp_path):
    empty = {k: "" for k in ("sessions", "conseiller", "rdv", "comptes", "ca")}
    h = read_history(write(tmp_path, rows(override={3: empty})))
    assert h.missing["sessions"][3] and h.missing["rdv"][3] and np.isnan(h.values["rdv"][3])


def test_stage_at_zero_under_a_busy_parent_is_refused(tmp_path):
    got = problems(tmp_path, rows(override={2: {"rdv": "0", "ca": "0"}}))
    assert got == [
        f"{tmp_path / 'export.csv'}: row 4 (period 2025-03-17), column 'RDV pris': 0 while "
        "'Vues page conseiller' counts 3,000 and it is never 0 in the other periods: a tracking "
        "outage? leave the cells empty: krsim treats them as missing"
    ]


def test_actuals_outage_and_empty_cell(tmp_path):
    s = write(tmp_path, rows())
    h = read_history(s)
    act = tmp_path / "actuals.csv"
    zero = "14/04/2025;0;0;0;0;0"
    act.write_text(f"{HEADER}\n{zero}\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_actuals(s, h, act)
    assert e.value.problems == [
        f"{act}: row 2 (period 2025-04-14): every count is 0 while the other periods are not: a "
        "tracking outage? leave the cells empty: krsim treats them as missing (or, for a period "
        "that really had no activity, an `events:` entry with `closed: true`)"
    ]
    act.write_text(f"{HEADER}\n14/04/2025;20 000;3000;;64 424,08;450\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_actuals(s, h, act)
    assert len(e.value.problems) == 1 and "column 'RDV pris': empty cell" in e.value.problems[0]
    assert "write 0" not in e.value.problems[0]


def test_cli_check_exit_2_one_line(tmp_path, capsys):
    zero = {k: "0" for k in ("sessions", "conseiller", "rdv", "comptes")} | {"ca": "0"}
    write(tmp_path, rows(override={3: zero}))
    assert main(["check", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "tracking outage" in err[0]


def test_plain_history_form_still_works(tmp_path):
    text = SCENARIO.replace(
        "history: {file: export.csv, period_column: Semaine}", "history: export.csv"
    )
    s = write(tmp_path, rows(), text)
    assert s.history_source.file == "export.csv" and s.history_source.period_column is None
    assert isinstance(dt.date.fromisoformat(read_history(s).labels[0]), dt.date)
