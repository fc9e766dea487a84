"""Write docs/troubleshooting.md: every error (and note) krsim gives on the broken inputs the tests
use, as krsim prints it, with what to change. The messages are not copied by hand: this script
runs the command line in-process (``simulator.cli.main``) on each input and writes what it prints,
so the page cannot drift from the program. `make docs` runs it; tests/test_docs.py fails when the
committed page differs from what it writes.

Every input here is refused before any model work; as a safeguard the fitting entry points are
replaced by a function that raises, so a case that stopped being an error fails loudly instead of
fitting.

    python scripts/make_troubleshooting.py          # write the page
    python scripts/make_troubleshooting.py --check  # exit 1 if the committed page is out of date
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "troubleshooting.md"
INVALID = Path("tests/fixtures/invalid")
TRAPS = Path("tests/fixtures/traps")
ACTUALS = Path("tests/fixtures/actuals")
SEED = "scenarios/mandatory_account.yaml"
BASE = "tests/fixtures/base.yaml"

# What to change, per broken scenario in tests/fixtures/invalid/ (by file stem). A fixture added
# there without an entry here stops this script: every message gets its fix.
FIXES = {
    "unknown_key": "A key the format does not have, usually a typo: use the key suggested. The "
    "[scenario reference](reference/scenario.md) lists every key.",
    "unknown_key_nested": "The same inside a block: the path before the message "
    "(`options.gate.changes[0].gate`) says which block; use the suggested key.",
    "missing_field": "Add the key named. The [reference](reference/scenario.md) marks every "
    "required key.",
    "bad_id": "Ids (stages, segments, options, key results) are lowercase letters, digits and "
    "`_`, starting with a letter: `status_quo`. Put the display name in `label:`.",
    "not_mapping": "A scenario is a mapping of keys (`title:`, `funnel:`, ...), not a list: "
    "remove the leading `- `.",
    "tab_indent": "Indent with spaces only (set the editor to insert spaces for Tab in YAML "
    "files).",
    "duplicate_key": "A key written twice in one block (here two options named `gate`): YAML "
    "would silently keep the last one. Rename or remove one.",
    "unsafe_tag": "YAML tags (`!!python/...`, `!something`) are refused: a scenario holds plain "
    "values only. Remove the tag.",
    "unquoted_target": "In YAML a bare `>` starts a block of text: quote targets that start "
    'with `>` or `<`: `target: ">= 0.70"`.',
    "bad_target": 'Write a target as `+20%` or `-5%` (relative to the baseline), or `">= 0.55"` '
    'or `"<= 1500"` (absolute).',
    "strict_operator": "The operators are `>=` and `<=`: a target is met at the value itself. "
    'Write `">= 0.4"`.',
    "ratio_target_in_percent": "An absolute target on a conversion rate is a share in [0, 1]: "
    'write `">= 0.70"`, or `+10%` for 10% above the baseline rate.',
    "beta_interval_in_percent": "Shares are written as fractions: `{beta_interval: [0.55, "
    "0.75]}`, not percentages.",
    "empty_interval": "An interval is `[low, high]`: swap the two numbers.",
    "probability_out_of_range": "A pass rate, overlap or flow rate is a share in [0, 1]: give a "
    "prior that stays in it (`beta_interval`, `beta`, or `uniform` within [0, 1]).",
    "two_kinds_in_prior": "A belief has exactly one kind: keep one of the keys (`beta`, "
    "`beta_interval`, `lognormal_interval`, `normal`, `uniform`, `fixed`).",
    "duplicate_kr": "Every key result needs its own `id`: rename one.",
    "metric_by_label": "Metrics name stage ids, not labels: use the id suggested.",
    "metric_label_text": "The same with a ratio: `booking / form`, the ids, not the labels.",
    "cycle": "Following `from:` must lead back to the traffic stage: one of the `from:` in the "
    "cycle is wrong. Problems found further on (here the segment) often disappear with it.",
    "no_root": "Exactly one stage, the traffic entering the funnel (visits, sessions), has no "
    "`from:`; give it none.",
    "two_roots": "Only the traffic stage has no `from:`; give every other stage the stage its "
    "users come from.",
    "unknown_parent": "A `from:` names a stage that does not exist: use the id suggested.",
    "unknown_stage": "A change names a stage that does not exist: use the id suggested.",
    "unknown_segment": "A change names a segment that does not exist: use the id suggested, or "
    "declare the segment under `segments:`.",
    "period_word_with_dates": "`period:` is the unit of one row: `day`, `week` or `month` when "
    "the rows are dated.",
    "weighted_without_weights": "`rule: weighted` weighs the key results by `decision.weights`: "
    "give one per key result (`weights: {signups: 1, bookings: 2, conv: 1}`), or use "
    "`rule: expected_grade`.",
    "weights_missing_kr": "Give every key result a weight; 0 leaves one out of the decision.",
    "csv_missing_column": "The history needs one count column per stage and segment: add the "
    "column, or map a column of another name with `column:` on the stage or segment.",
    "csv_negative": "Counts are numbers of users, never negative: fix the cell at the row "
    "named (row 1 is the header).",
    "csv_not_number": "Count cells hold whole numbers: fix the cell named; leave it empty if "
    "the value is unknown (missing data).",
    "csv_segment_above_stage": "A segment is a share of its stage's users: its count cannot "
    "exceed the stage's. Check the column (is it the right segment?) and the row.",
    "csv_stage_above_parent": "A stage's users come from its parent (`from:`): its count cannot "
    "exceed the parent's. Check `from:` in the funnel, then the row.",
    "csv_too_short": "The model needs at least 3 periods of history, and the default baseline "
    "the last `horizon` of them: add history, or give the baselines in `baseline:`.",
}


@dataclass
class Case:
    title: str
    argv: list[str]
    fix: str
    shown: str = ""  # the command as the page shows it (default: argv)
    history: str = ""  # for a trap: the history file the scenario points at
    edits: dict[str, str] = field(default_factory=dict)


# The history file's traps (tests/fixtures/traps): weekly.yaml pointed at each table.
TRAP_FIXES = {
    "misspelt_column": "A column that looks like a misspelt stage: rename the header to the "
    "stage id suggested.",
    "percent_cell": "Count cells hold numbers of users, not percentages: export the counts.",
    "excel_serial": "Format the period column as dates (YYYY-MM-DD) in the spreadsheet before "
    "exporting.",
    "totals_row": "Remove the totals row at the bottom of the export.",
    "daily_dates": "`period:` must match the rows: here `period: day`.",
    "mixed_weekdays": "Weekly rows fall on one weekday, 7 days apart: fix the shifted date.",
    "missing_week": "Every period between the first and the last must be present: add the "
    "missing row with empty cells (missing data).",
    "unpadded_dates": "Write dates as YYYY-MM-DD with two-digit months and days.",
    "numbered_newest_first": "Undated rows are taken in file order: put the oldest row first "
    "(or use dates, which are sorted).",
    "utf16": "Save the file as 'CSV UTF-8 (comma delimited)'.",
    "month_gap": "The same for months: add the missing month's row with empty cells.",
}
TRAP_NOTES = {
    "empty_cells": "Nothing to do if the cells are unknown: the model skips them. Fill them if "
    "the counts exist.",
    "extra_columns": "Nothing to do: columns that name no stage or segment are ignored.",
    "header_case": "Nothing to do; `column: Visits` on the stage makes the mapping explicit.",
    "newest_first": "Nothing to do: dated rows are sorted.",
    "partial_last_week": "If the last period was exported before it ended, remove it: the "
    "baselines come from the last periods.",
    "running_totals": "Export the count of each period, not the running total.",
    "us_dates": "Nothing to do when the reading is right; write YYYY-MM-DD to be sure.",
}

OTHERS = [
    Case(
        "Actuals that overlap the history",
        ["track", BASE, str(ACTUALS / "overlap.csv")],
        "The actuals are the quarter's periods after the history's last one: drop the rows "
        "already in the history.",
    ),
    Case(
        "A gap in the actuals",
        ["track", BASE, str(ACTUALS / "gap.csv")],
        "The actuals continue the history period by period: add the missing period.",
    ),
    Case(
        "More actuals than the quarter",
        ["track", BASE, str(ACTUALS / "too_many.csv")],
        "At most `horizon` rows: the actuals are the first periods of the quarter being tracked.",
    ),
    Case(
        "Impossible counts in the actuals",
        ["track", BASE, str(ACTUALS / "above_parent.csv")],
        "As in the history: a stage cannot exceed its parent, a segment its stage.",
    ),
    Case(
        "A column missing from the actuals",
        ["track", BASE, str(ACTUALS / "broken.csv")],
        "The actuals have the history's columns.",
    ),
    Case(
        "An unknown launched option",
        ["track", BASE, str(ACTUALS / "good.csv"), "--option", "gatee"],
        "`--option` takes an option id of the scenario: use the one suggested.",
    ),
    Case(
        "Status thresholds in the wrong order",
        [
            "track",
            SEED,
            "scenarios/data/mandatory_account_actuals.csv",
            "--at-risk-below",
            "0.2",
            "--off-track-below",
            "0.5",
        ],
        "Off track is the lower threshold: `--off-track-below` ≤ `--at-risk-below` (defaults "
        "0.3 and 0.7).",
    ),
    Case(
        "No experiment results to compare",
        ["compare", BASE],
        "Give the results CSV after the scenario (`krsim compare SCENARIO RESULTS.csv`) or "
        "name it in the scenario's `experiment: {data: ...}`.",
    ),
    Case(
        "Too few draws",
        ["run", SEED, "--draws", "3"],
        "`--draws` is per chain, between 50 and 100000.",
    ),
    Case(
        "No such scenario file",
        ["run", "no/such/file.yaml"],
        "Check the path (relative to the current directory).",
    ),
    Case(
        "Test designs that cannot run",
        ["plan", SEED, "--periods", "13,0", "--per-arm", "0"],
        "A test lasts at least one period and ends before the horizon, so part of the quarter "
        "is left to act on its result; `--per-arm` is at least 1.",
    ),
    Case(
        "A list that is not numbers",
        ["plan", SEED, "--per-arm", "1,x"],
        "`--per-arm` and `--periods` take whole numbers separated by commas: `--per-arm "
        "2000,5000`.",
    ),
    Case(
        "An unknown arm",
        ["plan", SEED, "--arms", "status_quo,nope"],
        "`--arms` takes option ids of the scenario, separated by commas.",
    ),
    Case(
        "No window to backtest",
        ["backtest", SEED, "--windows", "0"],
        "`--windows` is at least 1 (default: as many as fit, up to 6).",
    ),
    Case(
        "An unknown candidate model",
        ["backtest", SEED, "--models", "nope"],
        "`--models` takes names from the list given, separated by commas, or nothing for all.",
    ),
]


@contextlib.contextmanager
def no_fitting():
    """Within: the fitting entry points raise instead of fitting (restored after)."""
    import importlib

    def mod(name: str):  # the module itself (`simulator.track` is also a function's name)
        return importlib.import_module(f"simulator.{name}")

    def refuse(*args, **kwargs):
        raise RuntimeError("this input was expected to be refused before any model work")

    saved = []
    for module, name in [
        (mod("api"), "simulate"),
        (mod("analyses.track"), "track"),
        (mod("analyses.plan"), "plan"),
        (mod("analyses.compare"), "compare"),
        (mod("analyses.backtest"), "backtest"),
        (mod("analyses.backtest"), "rank_models"),
    ]:
        saved.append((module, name, getattr(module, name)))
        setattr(module, name, refuse)
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def run(argv: list[str]) -> tuple[int, str]:
    """Exit code and stderr of ``krsim ARGV``, in-process, from the repository root."""
    from simulator.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
    return code, err.getvalue()


def _clean(text: str, tmp: Path) -> str:
    """Paths relative to the repository; argparse's usage lines (they follow the options other
    commands add, and the terminal's width) shortened to their first words."""
    text = text.replace(f"{tmp}{os.sep}", "").replace(f"{ROOT}{os.sep}", "")
    lines, out = text.rstrip().splitlines(), []
    for line in lines:
        if line.startswith("usage: "):
            out.append(" ".join(line.split()[:3]) + " ...")
        elif not (line.startswith(" ") and out and out[-1].startswith("usage: ")):
            out.append(line)
    return "\n".join(out)


def _block(shown: str, output: str) -> list[str]:
    return ["```console", f"$ {shown}", output, "```", ""]


def cases(tmp: Path) -> list[tuple[str, list[Case]]]:
    invalid = sorted(INVALID.glob("*.yaml"))
    unknown = [p.stem for p in invalid if p.stem not in FIXES]
    if unknown:
        raise SystemExit(f"no fix written for {', '.join(unknown)}: add it to FIXES")
    scenario, data = [], []
    for p in invalid:
        first = p.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ")
        case = Case(first, ["check", str(p)], FIXES[p.stem])
        (data if p.stem.startswith("csv_") else scenario).append(case)
    weekly = (ROOT / TRAPS / "weekly.yaml").read_text(encoding="utf-8")
    traps, notes = [], []
    for csv in sorted((ROOT / TRAPS).glob("*.csv")):
        fix = TRAP_FIXES.get(csv.stem) or TRAP_NOTES.get(csv.stem)
        if fix is None:
            continue
        text = weekly.replace("history: weekly.csv", f"history: {csv}")
        if csv.stem == "month_gap":
            text = text.replace("period: week", "period: month")
        name = tmp / f"{csv.stem}.yaml"
        name.write_text(text, encoding="utf-8")
        case = Case("", ["check", str(name)], fix, shown="krsim check scenario.yaml")
        case.history = str(TRAPS / csv.name)
        (traps if csv.stem in TRAP_FIXES else notes).append(case)
    return [
        ("The scenario file", scenario),
        ("The history file", data + traps),
        ("Notes on the history (not errors)", notes),
        ("Other inputs and arguments", OTHERS),
    ]


INTRO = """\
# Troubleshooting

<!-- Generated by scripts/make_troubleshooting.py, which runs krsim on each broken input below
     (the inputs the tests use); do not edit by hand: `make docs` rewrites it. -->

krsim checks everything it reads before any model work and reports each problem on one line:
the file, the field or the row and column, what is wrong, and often what you meant. Exit code 2
means invalid input (scenario, CSV or arguments); nothing was fitted. `krsim check SCENARIO`
runs these checks alone, without fitting.

Every message on this page is krsim's real output on a broken input kept in the repository's
tests (`tests/fixtures/`), followed by the fix. Find yours with the browser's search (the part
after the field path is the stable part).
"""


def render() -> str:
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        with tempfile.TemporaryDirectory() as d, no_fitting():
            tmp = Path(d)
            out = INTRO.splitlines() + [""]
            for group, items in cases(tmp):
                out += [f"## {group}", ""]
                for c in items:
                    code, err = run(c.argv)
                    expected = 0 if group.startswith("Notes") else 2
                    if code != expected or not err.strip():
                        raise SystemExit(f"krsim {' '.join(c.argv)}: exit {code}, {err!r}")
                    text = _clean(err, tmp)
                    title = c.title or text.splitlines()[0].split(": ", 2)[-1]
                    if len(title) > 90:
                        title = title[:87].rsplit(" ", 1)[0] + " …"
                    out += [f"### {title}", ""]
                    if c.history:
                        out += [f"With `history: {c.history}`:", ""]
                    out += _block(c.shown or "krsim " + " ".join(c.argv), text)
                    out += [f"**Fix.** {c.fix}", ""]
    finally:
        os.chdir(cwd)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run make docs", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
