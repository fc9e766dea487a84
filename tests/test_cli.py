"""The command line through a subprocess: exit codes, the --json contract, errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, SEED_SCENARIO

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


def krsim(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )


def small_seed_copy(tmp_path: Path, **extra: str) -> Path:
    """The seed scenario with the same small model block as the `seed_result` fixture (same fit)."""
    text = SEED_SCENARIO.read_text()
    text = text.replace("history: data/", f"history: {SEED_SCENARIO.parent / 'data'}/")
    text = text.replace("  trend: true", "  trend: true\n  chains: 2\n  draws: 300\n  tune: 400")
    for old, new in extra.items():
        text = text.replace(old, new)
    p = tmp_path / "mandatory_account.yaml"
    p.write_text(text)
    return p


def test_check_ok():
    r = krsim("check", str(SEED_SCENARIO))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: ")
    # how the scenario decides, seen before a fit: where weights, priority and guardrails go
    assert r.stdout.splitlines()[1] == (
        "decision: rule all_met; key results weighted equally (set decision.weights to change); "
        "no primary key result (priority: primary); no guardrails; committed grading"
    )


def test_check_invalid_exit_2_one_line_per_problem():
    bad = FIXTURES / "invalid" / "unknown_stage.yaml"
    r = krsim("check", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines and all(line.startswith(f"error: {bad}: ") for line in lines)
    assert "did you mean 'booking'?" in r.stderr


def test_missing_file_exit_2():
    r = krsim("run", "no/such/file.yaml")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error: no/such/file.yaml: cannot read" in r.stderr


def test_bad_argument_exit_2():
    r = krsim("run", str(SEED_SCENARIO), "--draws", "3")
    assert r.returncode == 2 and "--draws" in r.stderr


def test_help_lists_commands():
    r = krsim("--help")
    assert r.returncode == 0 and "check" in r.stdout and "run" in r.stdout


def test_run_json_contract_and_reproducible(tmp_path, seed_result):
    scen = small_seed_copy(tmp_path)
    r = krsim("run", str(scen), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # stdout holds one JSON object and nothing else
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
    again = json.loads(krsim("run", str(scen), "--json").stdout)
    out["provenance"].pop("created"), again["provenance"].pop("created")
    assert out == again


def test_what_if_reuses_fit_and_changes_only_that_kr(tmp_path, seed_result):
    scen = small_seed_copy(tmp_path, **{"target: +20%": "target: +10%"})
    r = krsim("run", str(scen), "--json")
    assert r.returncode == 0, r.stderr
    assert "Fitting" not in r.stderr  # cache hit
    out = json.loads(r.stdout)
    base = seed_result.summary["options"]["status_quo"]["key_results"]
    new = out["options"]["status_quo"]["key_results"]
    assert new["bookings"] == json.loads(json.dumps(base["bookings"]))
    assert new["accounts"]["p_met"] > base["accounts"]["p_met"]


def test_run_text_table(tmp_path, seed_result):
    r = krsim("run", str(small_seed_copy(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert "P(target met)" in r.stdout and "Answer:" in r.stdout
    for o in seed_result.summary["options"].values():
        assert o["label"] in r.stdout


def test_plan_bad_arguments_exit_2_before_fitting():
    r = krsim("plan", str(SEED_SCENARIO), "--periods", "13,0", "--per-arm", "0")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3 and all(x.startswith("error: --") for x in lines), r.stderr
    assert "Fitting" not in r.stderr
    r = krsim("plan", str(SEED_SCENARIO), "--per-arm", "1,x")
    assert r.returncode == 2 and "--per-arm" in r.stderr


def test_plan_json_contract(tmp_path, seed_result):
    scen = small_seed_copy(tmp_path)
    r = krsim("plan", str(scen), "--json", "--periods", "2,4")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
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
    r = krsim("plan", str(scen), "--per-arm", "100000", "--periods", "2")
    assert r.returncode == 2 and "more than all the traffic" in r.stderr


def test_plan_report_section(tmp_path, seed_result):
    scen = small_seed_copy(tmp_path)
    out = tmp_path / "reports"
    r = krsim("plan", str(scen), "--periods", "2", "--report", "--out", str(out))
    assert r.returncode == 0, r.stderr
    d = out / "mandatory_account"
    page = (d / "index.html").read_text()
    assert page.count('<section id="plan">') == 1 and "EVPI" in page
    assert "## Is a test worth it?" in (d / "report.md").read_text()
    assert (d / "figures" / "plan_value.png").stat().st_size > 10_000
