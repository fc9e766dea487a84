"""The command line: exit codes, the --json contract, errors without tracebacks, `-v` and
`--no-cache`. Commands run in this process through `main`; the console script and
`python -m simulator` run in a process of their own, which is what they are about."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, SEED_SCENARIO

from simulator import InputError
from simulator import cli as krsim_cli
from simulator.cli import main
from simulator.io import archive_data, cache

SUMMARY_KEYS = {
    "scenario",
    "title",
    "seed",
    "draws",
    "options",
    "recommendation",
    "sensitivity",
    "diagnostics",
    "provenance",
}
COMMANDS = (
    "check",
    "schema",
    "run",
    "report",
    "compare",
    "track",
    "plan",
    "backtest",
    "portfolio",
    "archive",
)


def krsim(capsys, *args: str | Path) -> tuple[int, str, str]:
    """`krsim ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse: --help, --version, or arguments it refuses
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def small_seed_copy(tmp_path: Path, **extra: str) -> Path:
    """The seed scenario with the same small model block as the `seed_result` fixture (same fit)."""
    text = SEED_SCENARIO.read_text()
    text = text.replace("history: data/", f"history: {SEED_SCENARIO.parent / 'data'}/")
    text = text.replace(
        "  trend: true",
        "  trend: true\n  chains: 2\n  draws: 300\n  tune: 400\n  until_sound: false",
    )
    for old, new in extra.items():
        text = text.replace(old, new)
    p = tmp_path / "mandatory_account.yaml"
    p.write_text(text)
    return p


def test_check_ok(capsys):
    code, out, err = krsim(capsys, "check", SEED_SCENARIO)
    assert code == 0, err
    assert out.startswith("ok: ")
    # how the scenario decides, seen before a fit: where weights, priority and guardrails go
    assert out.splitlines()[1] == (
        "decision: rule all_met; key results weighted equally (set decision.weights to change); "
        "no primary key result (priority: primary); no guardrails; committed grading"
    )


def test_check_invalid_exit_2_one_line_per_problem(capsys):
    bad = FIXTURES / "invalid" / "unknown_stage.yaml"
    code, _out, err = krsim(capsys, "check", bad)
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith(f"error: {bad}: ") for line in lines)
    assert "did you mean 'booking'?" in err


def test_missing_file_exit_2(capsys):
    code, _out, err = krsim(capsys, "run", "no/such/file.yaml")
    assert code == 2 and "Traceback" not in err
    assert "error: no/such/file.yaml: cannot read" in err


def test_bad_argument_exit_2(capsys):
    code, _out, err = krsim(capsys, "run", SEED_SCENARIO, "--draws", "3")
    assert code == 2 and "--draws" in err


def test_help_lists_commands(capsys):
    code, out, _err = krsim(capsys, "--help")
    assert code == 0 and "check" in out and "run" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_verbose_and_says_so(capsys, command):
    code, out, _err = krsim(capsys, command, "--help")
    assert code == 0
    assert "-v, --verbose" in out and "details on stderr" in out


def test_verbose_prints_the_details_as_well_as_the_progress(capsys, monkeypatch):
    def schema() -> dict:
        log = logging.getLogger("simulator.schema_test")
        log.info("a progress line")
        log.debug("a detail")
        return {}

    monkeypatch.setattr(krsim_cli, "scenario_schema", schema)
    package = logging.getLogger("simulator")
    handlers, level = list(package.handlers), package.level
    code, out, err = krsim(capsys, "schema")
    assert code == 0 and json.loads(out) == {}
    assert err.splitlines() == ["a progress line"]
    code, _out, err = krsim(capsys, "schema", "-v")
    assert code == 0 and err.splitlines() == ["a progress line", "a detail"]
    code, _out, err = krsim(capsys, "schema", "--verbose")
    assert err.splitlines() == ["a progress line", "a detail"]
    # the command's handler and level are gone once it returns
    assert (package.handlers, package.level) == (handlers, level)


def test_no_cache_turns_the_cache_off_for_the_command_only(capsys, monkeypatch, tmp_path):
    seen = []

    def read_archive(path):
        seen.append(cache.cache_dir())
        raise InputError([f"{path}: stop here"])

    monkeypatch.setattr(archive_data, "read_archive", read_archive)
    code, _out, err = krsim(capsys, "archive", tmp_path / "a.csv", "--no-cache")
    assert code == 2 and err.strip() == f"error: {tmp_path / 'a.csv'}: stop here"
    assert seen == [None]
    assert cache.cache_dir() is not None  # on again for whatever runs next in this process
    krsim(capsys, "archive", tmp_path / "a.csv")
    assert seen[-1] == cache.cache_dir() is not None


@pytest.mark.parametrize(
    "entry", [["krsim"], ["-m", "simulator"]], ids=["console script", "python -m simulator"]
)
def test_entry_points_run_the_command_line(entry):
    command = (
        [str(Path(sys.executable).with_name("krsim"))]
        if entry == ["krsim"]
        else [sys.executable, *entry]
    )
    r = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("krsim "), r.stderr
    bad = FIXTURES / "invalid" / "unknown_stage.yaml"
    r = subprocess.run([*command, "check", str(bad)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {bad}: ")


def test_run_json_contract_and_reproducible(capsys, tmp_path, seed_result):
    scen = small_seed_copy(tmp_path)
    code, stdout, err = krsim(capsys, "run", scen, "--json")
    assert code == 0, err
    out = json.loads(stdout)  # stdout holds one JSON object and nothing else
    assert set(out) >= SUMMARY_KEYS
    opt = out["options"]["status_quo"]
    assert set(opt) >= {"label", "p_all_met", "p_all_met_se", "expected_grade", "key_results"}
    kr = opt["key_results"]["accounts"]
    assert set(kr) >= {
        "baseline",
        "target",
        "median",
        "interval80",
        "p_met",
        "p_met_se",
        "p_progress70",
        "expected_grade",
    }
    assert set(out["recommendation"]) >= {"option", "rule", "p_best", "expected_loss"}
    assert set(out["diagnostics"]) >= {"rhat_max", "ess_bulk_min", "divergences", "warnings"}
    assert set(out["provenance"]) >= {"scenario_sha256", "krsim", "pymc", "created"}
    assert out["draws"] == 600
    # the same fit as the in-process fixture: identical numbers
    assert out["options"] == json.loads(json.dumps(seed_result.summary["options"]))
    # a rerun gives the identical object apart from `created`
    again = json.loads(krsim(capsys, "run", scen, "--json")[1])
    out["provenance"].pop("created"), again["provenance"].pop("created")
    assert out == again


def test_what_if_reuses_fit_and_changes_only_that_kr(capsys, tmp_path, seed_result):
    scen = small_seed_copy(tmp_path, **{"target: +20%": "target: +10%"})
    code, stdout, err = krsim(capsys, "run", scen, "--json")
    assert code == 0, err
    assert "Fitting" not in err  # cache hit
    out = json.loads(stdout)
    base = seed_result.summary["options"]["status_quo"]["key_results"]
    new = out["options"]["status_quo"]["key_results"]
    assert new["bookings"] == json.loads(json.dumps(base["bookings"]))
    assert new["accounts"]["p_met"] > base["accounts"]["p_met"]


def test_run_text_table(capsys, tmp_path, seed_result):
    code, out, err = krsim(capsys, "run", small_seed_copy(tmp_path))
    assert code == 0, err
    assert "P(target met)" in out and "Answer:" in out
    for o in seed_result.summary["options"].values():
        assert o["label"] in out


def test_run_also_writes_the_report_in_the_same_process(capsys, tmp_path, seed_result):
    """`run --report` (what `make demo` runs): the answer on stdout, the report's files and a
    line saying so on stderr; with --json, stdout stays one JSON object."""
    scen = small_seed_copy(tmp_path)
    out = tmp_path / "reports"
    code, stdout, err = krsim(capsys, "run", scen, "--report", "--out", out)
    assert code == 0, err
    assert "Answer:" in stdout and "wrote" in err
    d = out / "mandatory_account"
    for name in ("index.html", "report.md", "summary.json"):
        assert (d / name).stat().st_size > 0 and str(d / name) in err
    code, stdout, err = krsim(capsys, "run", scen, "--json", "--report", "--out", out)
    assert code == 0, err
    assert json.loads(stdout)["options"] == json.loads((d / "summary.json").read_text())["options"]
    (tmp_path / "a_file").write_text("")
    for out in (tmp_path / "a_file", tmp_path / "a_file" / "below"):  # stops before the answer
        code, stdout, err = krsim(capsys, "run", scen, "--report", "--out", out)
        assert code == 2 and "--out" in err and "a_file is a file" in err and stdout == ""


def test_plan_bad_arguments_exit_2_before_fitting(capsys):
    code, _out, err = krsim(capsys, "plan", SEED_SCENARIO, "--periods", "13,0", "--per-arm", "0")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(x.startswith("error: --") for x in lines), err
    assert "Fitting" not in err
    code, _out, err = krsim(capsys, "plan", SEED_SCENARIO, "--per-arm", "1,x")
    assert code == 2 and "--per-arm" in err


def test_plan_json_contract(capsys, tmp_path, seed_result):
    scen = small_seed_copy(tmp_path)
    code, stdout, err = krsim(capsys, "plan", scen, "--json", "--periods", "2,4")
    assert code == 0, err
    out = json.loads(stdout)
    assert {"evpi", "designs", "recommended"} <= set(out)
    assert {d["periods"] for d in out["designs"]} == {2, 4}
    for d in out["designs"]:
        assert {
            "per_arm",
            "periods",
            "evsi",
            "net_value",
            "p_decision_changes",
            "assurance",
        } <= set(d)
        assert 0 <= d["evsi"] <= out["evpi"] + 3 * out["evpi_se"] + 3 * d["evsi_se"]
    assert out["recommended"] is None or set(out["recommended"]) == {"per_arm", "periods"}
    code, _out, err = krsim(capsys, "plan", scen, "--per-arm", "100000", "--periods", "2")
    assert code == 2 and "more than all the traffic" in err


def test_plan_report_section(capsys, tmp_path, seed_result):
    scen = small_seed_copy(tmp_path)
    out = tmp_path / "reports"
    code, _out, err = krsim(capsys, "plan", scen, "--periods", "2", "--report", "--out", out)
    assert code == 0, err
    d = out / "mandatory_account"
    page = (d / "index.html").read_text()
    assert page.count('<section id="plan">') == 1 and "EVPI" in page
    assert "## Is a test worth it?" in (d / "report.md").read_text()
    assert (d / "figures" / "plan_value.png").stat().st_size > 10_000
