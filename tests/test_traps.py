"""Mistakes a product analyst makes with a spreadsheet export and a YAML file: each one either gives
a one-line error that says what to change, or is read as the user meant and said so.

The fixtures under tests/fixtures/traps are the same twelve weeks of counts (weekly.csv) written
the ways spreadsheets and people write them; the tests compare what krsim reads from each with
what it reads from the plain file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import FIXTURES

from simulator import InputError, __version__, load_scenario
from simulator.cli import main
from simulator.engine import decision
from simulator.engine.render import answer_sentence, target_warnings
from simulator.engine.summary import Guardrails, OptionSummary, Recommendation
from simulator.io.data import CountTable, read_count_table, read_history

TRAPS = FIXTURES / "traps"
WEEKLY = TRAPS / "weekly.yaml"


@dataclass(frozen=True)
class Ran:
    """A command's exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def krsim(capsys):
    """Run the command line in this process: ``krsim("check", path)`` -> `Ran`."""

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as stop:  # --version and --help exit through argparse
            code = stop.code
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def scenario_file(tmp_path: Path, csv: str = "weekly.csv", **replace: str) -> Path:
    """weekly.yaml reading ``csv`` from the fixtures, with text replacements (old=new pairs)."""
    text = WEEKLY.read_text().replace("history: weekly.csv", f"history: {TRAPS / csv}")
    for old, new in replace.values():
        assert old in text, old
        text = text.replace(old, new)
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def problems(tmp_path: Path, csv: str, **replace: str) -> list[str]:
    with pytest.raises(InputError) as exc:
        load_scenario(scenario_file(tmp_path, csv, **replace))
    return exc.value.problems


def same_counts(a: CountTable, b: CountTable) -> bool:
    return a.labels == b.labels and all(np.array_equal(a.counts[c], b.counts[c]) for c in a.counts)


@pytest.fixture(scope="module")
def plain() -> CountTable:
    return read_history(load_scenario(WEEKLY))


# ------------------------------------------------------------------------- the calendar


def test_dated_history_is_a_calendar(plain):
    assert plain.dates is not None and len(plain.dates) == 12
    assert (
        plain.dates[0].isoformat() == "2025-01-06" and plain.dates[-1].isoformat() == "2025-03-24"
    )
    assert plain.n_missing == 0 and set(plain.missing) == set(plain.counts)
    assert not any(m.any() for m in plain.missing.values())
    assert plain.notes == ()


def test_newest_first_rows_are_sorted_and_said(tmp_path, plain, krsim):
    s = load_scenario(scenario_file(tmp_path, "newest_first.csv"))
    h = read_history(s)
    assert same_counts(h, plain) and h.dates == plain.dates
    assert h.digest() == plain.digest()  # the same data: the same fit
    assert any(
        "not in time order (newest first); they are used sorted oldest first" in n for n in h.notes
    )
    # the baselines are those of the most recent weeks, as meant; taken in file order they would
    # be the oldest weeks' (about 30% lower on this growing funnel)
    base = decision.baselines(s, h)
    assert base == decision.baselines(s, plain)
    oldest = plain.rows(0, 4)
    assert decision.baselines(s, oldest)["signups"] < 0.8 * base["signups"]
    r = krsim("check", str(scenario_file(tmp_path, "newest_first.csv")))
    assert r.returncode == 0, r.stderr
    assert "sorted oldest first" in r.stdout
    assert (
        f"note: {TRAPS / 'newest_first.csv'}: the rows were not in time order (newest first)"
        in r.stderr
    )


def test_missing_week_is_named(tmp_path, krsim):
    csv = TRAPS / "missing_week.csv"
    assert problems(tmp_path, "missing_week.csv") == [
        f"{csv}: column 'period': 2025-03-03 is missing between 2025-02-24 and 2025-03-10 (week steps); "
        "add the rows with empty cells (krsim treats them as missing)"
    ]
    r = krsim("check", str(scenario_file(tmp_path, "missing_week.csv")))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {csv}: column 'period': 2025-03-03 is missing between 2025-02-24 and 2025-03-10 (week steps); "
        "add the rows with empty cells (krsim treats them as missing)"
    ]


def test_monthly_calendar_month_ends_and_gap(tmp_path):
    month = {"p": ("period: week", "period: month")}
    h = read_history(load_scenario(scenario_file(tmp_path, "month_ends.csv", **month)))
    assert [d.isoformat() for d in h.dates][:3] == ["2025-01-31", "2025-02-28", "2025-03-31"]
    assert problems(tmp_path, "month_gap.csv", **month) == [
        f"{TRAPS / 'month_gap.csv'}: column 'period': 2025-03-31 is missing between 2025-02-28 "
        "and 2025-04-30 (month steps); add the rows with empty cells (krsim treats them as "
        "missing)"
    ]


def test_datetime_labels_at_midnight_are_dates(tmp_path, plain):
    h = read_history(load_scenario(scenario_file(tmp_path, "datetime_labels.csv")))
    assert h.dates == plain.dates
    assert all(np.array_equal(h.counts[c], plain.counts[c]) for c in plain.counts)


def test_ordinal_labels_keep_file_order(tmp_path):
    rows = ["period,visits,form,booking,signup,member"]
    rows += [
        f"2025-W{w:02d},1000,300,150,50,90" for w in range(10, 2, -1)
    ]  # any order: taken as is
    (tmp_path / "h.csv").write_text("\n".join(rows) + "\n")
    text = WEEKLY.read_text().replace("history: weekly.csv", f"history: {tmp_path / 'h.csv'}")
    (tmp_path / "o.yaml").write_text(text)
    h = read_history(load_scenario(tmp_path / "o.yaml"))
    assert h.dates is None and h.labels[0] == "2025-W10" and h.notes == ()


# --------------------------------------------------------------------- empty cells


def test_empty_cells_are_missing_data(tmp_path, plain, krsim):
    path = scenario_file(tmp_path, "empty_cells.csv")
    h = read_history(load_scenario(path))
    assert h.n_missing == 7
    assert h.missing["form"][4] and h.missing["booking"][4] and not h.missing["visits"][4]
    assert all(h.missing[c][7] for c in h.counts)
    assert h.counts["form"][4] == 0
    filled = dataclasses.replace(h, missing={c: np.zeros(12, dtype=bool) for c in h.counts})
    assert filled.digest() != h.digest()  # missing cells change the cache key
    r = krsim("check", str(path))
    assert r.returncode == 0, r.stderr
    assert "7 empty count cells (missing data: the model skips those observations)" in r.stdout


def test_experiment_tables_still_refuse_empty_cells(tmp_path):
    s = load_scenario(WEEKLY)
    (tmp_path / "r.csv").write_text(
        "arm,visits,form,booking,signup,member\nstatus_quo,1000,300,,50,90\ngate,1000,300,120,80,90\n"
    )
    with pytest.raises(InputError) as exc:
        read_count_table(tmp_path / "r.csv", s, "arm")
    assert exc.value.problems == [
        f"{tmp_path / 'r.csv'}: row 2, column 'booking': empty cell; this table needs every count "
        "(only the history may have empty cells, which krsim treats as missing)"
    ]


# ------------------------------------------------------------- files read as the user meant


@pytest.mark.parametrize(
    "csv",
    ["semicolon.csv", "thousands.csv", "windows_tabs.csv", "trailing_spaces.csv", "bom.csv"],
)
def test_spreadsheet_exports_read_as_the_plain_file(tmp_path, plain, csv):
    h = read_history(load_scenario(scenario_file(tmp_path, csv)))
    assert same_counts(h, plain) and h.dates == plain.dates and h.notes == ()


def test_count_cells_as_spreadsheets_write_them():
    from simulator.io.data import parse_count

    assert parse_count("12,345") == 12345 and parse_count("12 345") == 12345
    assert parse_count("1234,0", ";") == 1234  # decimal comma in a `;` export
    assert parse_count("12,5", ";") == "a count must be a whole number (12,5)"
    assert parse_count("12.345", ";") == (
        "'12.345': a thousands separator or a decimal point? write the count without it"
    )
    assert parse_count(" ") is None
    # the model holds counts as 32-bit integers: a larger one is refused, not wrapped around
    assert parse_count("2147483647") == 2**31 - 1
    assert parse_count("2,147,483,648") == (
        "2,147,483,648: more than 2,147,483,647 in one period, the most the model holds"
    )


def test_extra_columns_ignored_with_one_note(tmp_path, plain, krsim):
    h = read_history(load_scenario(scenario_file(tmp_path, "extra_columns.csv")))
    assert same_counts(h, plain)
    assert h.notes == (
        f"{TRAPS / 'extra_columns.csv'}: ignored 2 columns that name no stage or segment: "
        "revenue, browser",
    )
    r = krsim("check", str(scenario_file(tmp_path, "extra_columns.csv")))
    assert r.returncode == 0 and "note: " in r.stderr and "revenue, browser" in r.stderr
    one = tmp_path / "one_extra.csv"
    rows = (TRAPS / "extra_columns.csv").read_text().splitlines()
    drop = rows[0].split(",").index("browser")
    one.write_text(
        "\n".join(",".join(c for i, c in enumerate(r.split(",")) if i != drop) for r in rows)
    )
    h = read_history(load_scenario(scenario_file(tmp_path, str(one))))
    assert h.notes == (f"{one}: ignored 1 column that names no stage or segment: revenue",)


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("misspelt_column.csv", "column 'bookings': unknown column (did you mean 'booking'?)"),
        (
            "percent_cell.csv",
            "row 5, column 'signup': a count, not a percentage ('5%'); write the number of users",
        ),
        (
            "excel_serial.csv",
            "column 'period': '45663' looks like a spreadsheet date serial number (2025-01-06); "
            "format the column as dates YYYY-MM-DD before exporting",
        ),
        ("totals_row.csv", "row 14, column 'period': 'Total' looks like a totals row; remove it"),
        (
            "daily_dates.csv",
            "column 'period': the dates are mostly 1 day apart, not a week: set `period: day`",
        ),
        (
            "mixed_weekdays.csv",
            "column 'period': 2025-02-12 (a Wednesday) is 9 days after 2025-02-03 (a Monday); "
            "weekly rows must fall on one weekday, 7 days apart",
        ),
        (
            "unpadded_dates.csv",
            "column 'period': write dates with two-digit months and days, e.g. '2025-1-6' as "
            "YYYY-MM-DD",
        ),
        (
            "numbered_newest_first.csv",
            "column 'period': the periods are numbered newest first (12, 11, …); undated rows are "
            "taken in file order, so put the oldest first",
        ),
        ("utf16.csv", "the file is UTF-16 text; save it as 'CSV UTF-8 (comma delimited)'"),
    ],
)
def test_spreadsheet_mistakes_one_line_each(tmp_path, csv, message):
    got = problems(tmp_path, csv)
    assert got[0] == f"{TRAPS / csv}: {message}"
    if csv != "mixed_weekdays.csv":  # one shifted row breaks two steps
        assert len(got) == 1, got


def test_partial_last_period_and_running_totals_are_noted(tmp_path, plain):
    h = read_history(load_scenario(scenario_file(tmp_path, "partial_last_week.csv")))
    assert h.notes == (
        f"{TRAPS / 'partial_last_week.csv'}: the last period (2025-03-24) has 51% of the usual "
        "'visits' count; if it is a partial week (exported before it ended), remove it: the "
        "baselines come from the last periods",
    )
    h = read_history(load_scenario(scenario_file(tmp_path, "running_totals.csv")))
    assert h.notes == (
        f"{TRAPS / 'running_totals.csv'}: every column only grows ('visits' from 995 to 15,961); "
        "if these are running totals, export the count of each period instead",
    )


def test_period_typo_with_dates(tmp_path):
    got = problems(tmp_path, "weekly.csv", p=("period: week", "period: weekly"))
    assert len(got) == 1 and "use day, week or month (did you mean 'week'?)" in got[0]


# ----------------------------------------------------------------------------- targets


def test_relative_target_on_a_ratio_keeps_its_meaning_and_warns(tmp_path, krsim):
    path = scenario_file(tmp_path, conv=('target: ">= 0.4"', "target: 70%"))
    s = load_scenario(path)
    tg = decision.targets(s, read_history(s))
    base = tg["conv"].baseline
    assert 0.45 < base < 0.55
    assert tg["conv"].target == pytest.approx(base * 1.7)  # the documented meaning is kept
    (w,) = target_warnings(s, tg)
    assert w == (
        f"{path}: key_results[2].target: '70%' on a rate is relative to the baseline rate "
        f"{base:.3f}, so the target is the rate {1.7 * base:.3f}; did you mean the rate 0.70? "
        "write '>= 0.70'"
    )
    r = krsim("check", str(path))
    assert r.returncode == 0 and f"note: {w}" in r.stderr


def test_relative_ratio_target_beyond_one_says_it_cannot_be_met(tmp_path):
    s = load_scenario(scenario_file(tmp_path, conv=('target: ">= 0.4"', "target: +120%")))
    (w,) = target_warnings(s, decision.targets(s, read_history(s)))
    assert "(outside [0, 1], so it can never be met)" in w


def test_absolute_count_target_that_looks_relative(tmp_path):
    s = load_scenario(scenario_file(tmp_path, t=("target: +10%", "target: 20")))
    (w,) = target_warnings(s, decision.targets(s, read_history(s)))
    assert "'20' is an absolute total of 20" not in w  # a number, not a string
    assert "key_results[0].target: 20 is an absolute total of 20 over the horizon" in w
    assert w.endswith("did you mean '+20%' (relative to the baseline)?")


def test_target_equal_to_baseline_is_noted(tmp_path):
    s = load_scenario(scenario_file(tmp_path, t=("target: +10%", "target: +0%")))
    (w,) = target_warnings(s, decision.targets(s, read_history(s)))
    assert "equals the baseline" in w and "met by standing still" in w


def test_unicode_operator_is_read():
    from simulator.io.scenario import parse_target

    assert parse_target("≥ 0.55") == parse_target(">= 0.55")
    assert parse_target("≤ 3") == parse_target("<= 3")


# -------------------------------------------------------------------------- grading


def test_aspirational_met_at_is_the_threshold_used():
    t = decision.KRTarget(baseline=100, target=120, op=">=", share=0.7)
    assert t.met_at == pytest.approx(114)
    assert np.array_equal(t.met(np.array([113.9, 114.0, 119.0])), [False, True, True])
    # equal to the grade rule of DESIGN section 5 (met at grade >= 0.7)
    v = np.linspace(90, 130, 401)
    assert np.array_equal(t.met(v), decision.grade(v, t) >= 0.7 - 1e-12)
    guard = decision.KRTarget(baseline=100, target=95, op=">=", share=0.7)
    assert guard.met_at == 95  # not beyond the baseline: the target itself
    assert decision.KRTarget(100, 120, ">=").met_at == 120  # committed


# ------------------------------------------------------------------------ the answer


def _tie_summary(p: dict[str, float], grade: dict[str, float], pick: str, **rec) -> SimpleNamespace:
    """What the answer reads of a summary: two options with these expected grades, and the
    recommendation of ``pick`` with these values of the rule (all_met unless ``rec`` says)."""
    options = {
        o: OptionSummary(lab, 0.0, 0.0, grade[o], 0.0, {})
        for o, lab in (("status_quo", "Keep"), ("gate", "Redesign"))
    }
    fields = {
        "option": pick,
        "rule": "all_met",
        "rule_used": "all_met",
        "key_results_used": None,
        "out_of_reach": (),
        "primary": None,
        "value": p,
        "value_se": {o: 0.0 for o in p},
        "p_best": {"status_quo": 0.5, "gate": 0.5},
        "expected_loss": {"status_quo": 0.0, "gate": 0.0},
        "guardrails": Guardrails({}, {}),
        "trade_offs": (),
    }
    return SimpleNamespace(options=options, recommendation=Recommendation(**(fields | rec)))


def test_tie_answer_names_the_tie_rule_and_its_reason():
    s = load_scenario(WEEKLY)
    summary = _tie_summary(
        {"status_quo": 0.0, "gate": 0.0}, {"status_quo": 0.01, "gate": 0.73}, "gate"
    )
    assert answer_sentence(s, summary) == (
        "No option can meet all three key results (P = 0.00 for each); by expected grade "
        "“Redesign” is far ahead, 0.73 against 0.01 for “Keep”."
    )
    equal = _tie_summary(
        {"status_quo": 0.0, "gate": 0.0}, {"status_quo": 0.4, "gate": 0.4}, "status_quo"
    )
    assert answer_sentence(s, equal).endswith(
        "and their expected grades are equal (0.40); the pick is “Keep”, the option without changes."
    )


def test_near_zero_answer_is_decided_by_the_grades():
    """Every key result out of reach: the rule used is the expected grade, and the answer says
    so and compares grades (not P = 0.00 against 0.00)."""
    s = load_scenario(WEEKLY)
    summary = _tie_summary(
        {"status_quo": 0.01, "gate": 0.73},
        {"status_quo": 0.01, "gate": 0.73},
        "gate",
        rule_used="expected_grade",
        out_of_reach=[kr.id for kr in s.key_results],
        p_best={"status_quo": 0.1, "gate": 0.9},
    )
    text = answer_sentence(s, summary)
    assert text.startswith("No option can reach ‘")
    assert text.endswith(
        "(P < 0.01 under each option, for each). The options are therefore ranked by expected OKR "
        "grade: “Redesign” gets 0.73, against 0.01 for “Keep”; best in 90% of simulated quarters."
    )


def test_unquoted_target_in_block_style():
    from simulator.io.scenario import parse_scenario

    text = (FIXTURES / "invalid" / "unquoted_target.yaml").read_text()
    text = text.replace(
        "  - {id: conv, metric: booking / form, target: >= 0.70}",
        "  - id: conv\n    metric: booking / form\n    target: >= 0.70",
    )
    with pytest.raises(InputError) as exc:
        parse_scenario(text.encode(), "x.yaml")
    assert exc.value.problems == [
        'x.yaml: line 28: invalid YAML: quote the target: write target: ">= 0.70" (in YAML a '
        "bare '>' starts a block of text)"
    ]


# ----------------------------------------------------------------------- command line


def test_version(krsim):
    r = krsim("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"krsim {__version__}"


def test_check_counts_are_singular_when_one(krsim):
    r = krsim("check", str(WEEKLY))
    assert r.returncode == 0, r.stderr
    assert "4 stages, 1 segment, 2 options (1 change), 3 key results, 12 periods" in r.stdout
    assert "(2025-01-06 to 2025-03-24, one row per week)" in r.stdout


def test_unquoted_target_cli_one_line(krsim):
    bad = FIXTURES / "invalid" / "unquoted_target.yaml"
    r = krsim("check", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f'error: {bad}: line 26: invalid YAML: quote the target: write target: ">= 0.70" '
        "(in YAML a bare '>' starts a block of text)"
    ]


# ---------------------------------------------------------------------------- the report


@pytest.fixture(scope="module")
def aspirational(seed_result, tmp_path_factory):
    """The seed result re-decided under aspirational grading, with a relative target on the
    booking rate (no refit: the same forecast), and its report."""
    from simulator.engine.pipeline import decide
    from simulator.report import write_report

    s = seed_result.scenario
    krs = [kr.model_copy(update={"target": "+70%"}) if kr.is_ratio else kr for kr in s.key_results]
    s2 = s.model_copy(
        update={
            "key_results": krs,
            "decision": s.decision.model_copy(update={"grading": "aspirational"}),
        }
    )
    s2._source, s2._text = s._source, s._text
    result = decide(s2, seed_result.history, seed_result.fit, created="2026-01-01T00:00:00+00:00")
    return result, write_report(result, tmp_path_factory.mktemp("aspirational"))


def test_aspirational_report_shows_met_at_and_one_probability(aspirational):
    from simulator.engine.render import text_summary
    from simulator.report import plots

    result, out = aspirational
    s, summary, tg = result.scenario, result.run, result.targets
    kr = next(k for k in s.key_results if not k.is_ratio and tg[k.id].ambitious)
    t = tg[kr.id]
    assert t.met_at == pytest.approx(t.baseline + 0.7 * (t.target - t.baseline))
    for o, od in summary.options.items():
        d = od.key_results[kr.id]
        assert d.met_at == pytest.approx(t.met_at)
        values = result.evaluation.options[o].values[kr.id]
        assert d.p_met == pytest.approx(np.mean(values >= t.met_at))
    # the figure writes the same P(met) as the table
    fig, ax = plots.kr_distribution(s, result.evaluation, tg, kr.id)
    written = sorted(x.get_text() for x in ax.texts if x.get_text().startswith("P(met)"))
    table = sorted(f"P(met) {od.key_results[kr.id].p_met:.2f}" for od in summary.options.values())
    assert written == table
    md = (out / "report.md").read_text()
    assert "Probability that the key result counts as met (aspirational grading" in md
    assert "(70% of the way)" in md and "met at ≥" in md
    text = text_summary(s, summary)
    assert "P(counted as met: aspirational grading, 70% of the way to the target)" in text
    assert "counted as met at" in text


def test_report_lists_input_notes_and_what_is_reproducible(aspirational):
    result, out = aspirational
    md = (out / "report.md").read_text()
    html = (out / "index.html").read_text()
    assert "### Notes on the input" in md
    assert "'+70%' on a rate is relative to the baseline rate" in md
    assert "on a rate is relative to the baseline rate" in html
    sentence = (
        "on this installation (the same krsim, PyMC and compiled model) with the same scenario, "
        "data, seed and draws gives identical numbers; on another machine or installation the "
        "numbers agree within the Monte Carlo errors shown"
    )
    assert sentence in md and sentence in html
    assert "gives the same numbers." not in html
