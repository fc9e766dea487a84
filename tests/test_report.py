"""The decision report: files, Markdown and JSON content, escaping, atomic writing, and the HTML page
loaded in a real browser (headless Chromium)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEED_SCENARIO

from simulator.engine.render import answer_sentence, fmt_p, kr_label
from simulator.engine.summary import RunSummary
from simulator.report import plots, summary_json, write_report

FIGURES = {
    "funnel",
    "kr_accounts",
    "kr_bookings",
    "kr_booking_conversion",
    "joint",
    "progress",
    "sensitivity",
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE_TITLE = "<script>alert('title')</script> & $5 *bold* | pipe"
HOSTILE_STAGE = "<img src=x onerror=alert(1)> accounts"
HOSTILE_OPTION = "<b>open</b> [link](http://example.com)"


@pytest.fixture(scope="module")
def report_dir(seed_result, tmp_path_factory) -> Path:
    return write_report(seed_result, tmp_path_factory.mktemp("reports"))


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _hostile(result):
    """The seed result with scenario strings that would break HTML, Markdown or matplotlib."""
    s = result.scenario
    funnel = dict(s.funnel)
    funnel["signup"] = funnel["signup"].model_copy(update={"label": HOSTILE_STAGE})
    options = dict(s.options)
    options["status_quo"] = options["status_quo"].model_copy(update={"label": HOSTILE_OPTION})
    s2 = s.model_copy(
        update={"title": HOSTILE_TITLE, "funnel": funnel, "options": options, "description": "# x"}
    )
    s2._source, s2._text = s._source, s._text
    run = result.run
    quo = dataclasses.replace(run.options["status_quo"], label=HOSTILE_OPTION)
    run = dataclasses.replace(run, title=HOSTILE_TITLE, options={**run.options, "status_quo": quo})
    return dataclasses.replace(result, scenario=s2, run=run)


# ------------------------------------------------------------------------------------- files


def test_writes_every_file(report_dir: Path) -> None:
    assert report_dir.name == "mandatory_account"
    assert {p.stem for p in (report_dir / "figures").glob("*.png")} == FIGURES
    for name in ("index.html", "report.md", "summary.json"):
        assert (report_dir / name).stat().st_size > 0
    for png in (report_dir / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leftovers = [p.name for p in report_dir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_summary_json_is_the_run_json_object(report_dir: Path, seed_result) -> None:
    text = (report_dir / "summary.json").read_text()
    # exactly what `krsim run --json` prints: json.dump(summary, indent=2) and a newline
    assert text == json.dumps(seed_result.to_dict(), indent=2) + "\n" == summary_json(seed_result)
    data = json.loads(text)
    for key in ("scenario", "title", "seed", "draws", "options", "recommendation"):
        assert key in data
    for key in ("sensitivity", "diagnostics", "provenance"):
        assert key in data
    assert data["scenario"] == "mandatory_account"
    assert set(data["options"]) == {"status_quo", "mandatory_account", "account_after_booking"}


# --------------------------------------------------------------------------- the typed summary


def test_to_dict_is_a_fresh_copy_and_the_result_stays_frozen(seed_result) -> None:
    before = json.dumps(seed_result.to_dict())
    d = seed_result.to_dict()
    d["title"] = "changed"
    d["options"]["status_quo"]["key_results"]["accounts"]["p_met"] = -1.0
    d["recommendation"]["out_of_reach"].append("accounts")
    assert seed_result.to_dict() is not d
    assert json.dumps(seed_result.to_dict()) == before
    run = seed_result.run
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.title = "changed"
    with pytest.raises(TypeError):
        run.options["status_quo"] = run.options["mandatory_account"]
    with pytest.raises(TypeError):
        run.recommendation.value["status_quo"] = 1.0
    assert isinstance(run.recommendation.out_of_reach, tuple)


def test_summary_mapping_is_read_only_and_equals_to_dict(seed_result) -> None:
    summary = seed_result.summary
    assert summary == seed_result.to_dict()
    assert list(summary) == list(seed_result.to_dict())
    pick = summary["recommendation"]["option"]
    assert pick == seed_result.run.recommendation.option
    assert summary["options"][pick]["label"] == seed_result.run.options[pick].label
    with pytest.raises(TypeError):
        summary["title"] = "changed"


COMMITTED = sorted((ROOT / "reports").rglob("summary.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.parent.name) for p in COMMITTED])
def test_committed_summary_reads_back_to_the_same_json(path: Path) -> None:
    """Every key, its order and its value survive `RunSummary.from_dict` and `to_dict`."""
    text = path.read_text()
    summary = RunSummary.from_dict(json.loads(text))
    assert json.dumps(summary.to_dict(), indent=2) + "\n" == text


def test_to_frame_has_one_row_per_option_and_key_result(seed_result) -> None:
    frame = seed_result.to_frame()
    run = seed_result.run
    assert len(frame) == len(run.options) * len(seed_result.scenario.key_results)
    kr = run.options["status_quo"].key_results["accounts"]
    row = frame.loc[("status_quo", "accounts")]
    assert row["p_met"] == kr.p_met and row["low80"] == kr.interval80[0]
    assert row["high80"] == kr.interval80[1] and row["target"] == kr.target


def test_markdown_answers_first_then_table(report_dir: Path, seed_result) -> None:
    md = (report_dir / "report.md").read_text()
    s, summary = seed_result.scenario, seed_result.run
    lines = md.splitlines()
    assert lines[0] == "# Require an account before booking an appointment?"
    answer = next(i for i, line in enumerate(lines) if line.startswith("**"))
    table = next(i for i, line in enumerate(lines) if line.startswith("| "))
    figures = lines.index("## Figures")
    assert answer < table < figures
    # the answer sentence (its quotes and punctuation survive Markdown escaping)
    assert lines[answer].strip("*") == answer_sentence(s, summary)
    header = lines[table]
    for kr in s.key_results:
        assert kr_label(s, kr.id) in header
    assert "All met" in header
    rows = [line for line in lines[table + 2 : figures] if line.startswith("| ")]
    assert len(rows) == len(summary.options)
    for row, od in zip(rows, summary.options.values(), strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0].startswith(od.label)
        expected = [
            fmt_p(od.key_results[k.id].p_met, od.key_results[k.id].p_met_se) for k in s.key_results
        ]
        assert cells[1 : 1 + len(expected)] == expected
        assert cells[1 + len(expected)] == fmt_p(od.p_all_met, od.p_all_met_se)
    rec = summary.options[summary.recommendation.option].label
    assert sum("(recommended)" in r for r in rows) == 1
    assert next(r for r in rows if "(recommended)" in r).startswith(f"| {rec}")


def test_markdown_figures_assumptions_diagnostics_provenance(report_dir: Path, seed_result) -> None:
    md = (report_dir / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert {Path(link).stem for link in links} == FIGURES
    assert all((report_dir / link).is_file() for link in links)
    assert md.index("## Figures") < md.index("## Assumptions") < md.index("## Sampler diagnostics")
    assert md.index("## Sampler diagnostics") < md.index("## Provenance")
    # every change prior in words, in the scenario's labels
    assert "We believe 50–85% of those not in “Already had an account” would pass it" in md
    assert "we believe 0–20% of them would have been counted there anyway" in md
    assert "We believe 3–15% of “Appointments booked” not in “Already had an account”" in md
    # the gate assumption of the model
    assert "then convert at the same rate as those in “Already had an account”" in md
    diag = seed_result.run.diagnostics
    assert f"{diag.rhat_max:.3f}" in md
    prov = seed_result.run.provenance
    for v in (prov.scenario_sha256, prov.krsim, prov.pymc, prov.created):
        assert v in md


def test_html_is_self_contained(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text()
    imgs = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)
    assert len(imgs) == len(FIGURES)
    # nothing to fetch: no http(s) URL in any src/href, no external script or stylesheet
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html
    assert "Content-Security-Policy" in html


# ---------------------------------------------------------------------- escaping, atomicity


def test_scenario_strings_are_escaped(report_dir: Path, seed_result, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    shutil.copytree(report_dir.parent, out)
    d = write_report(_hostile(seed_result), out)  # also replaces the existing report
    html = (d / "index.html").read_text()
    assert "<script>" not in html and "<img src=x" not in html and "<b>open</b>" not in html
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; &amp; $5" in html
    assert "&lt;img src=x onerror=alert(1)&gt; accounts" in html
    assert "&lt;b&gt;open&lt;/b&gt;" in html
    md = (d / "report.md").read_text()
    assert md.splitlines()[0] == (
        "# &lt;script&gt;alert('title')&lt;/script&gt; &amp; $5 \\*bold\\* \\| pipe"
    )
    assert "<img" not in md and "<b>" not in md and "[link](" not in md
    assert "\\[link\\](http://example.com)" in md
    assert "\n\\# x\n" in md  # a description cannot become a heading
    assert [p.name for p in out.iterdir()] == ["mandatory_account"]


def test_failed_write_leaves_previous_report_intact(
    report_dir: Path, seed_result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "reports"
    shutil.copytree(report_dir.parent, out)
    before = _snapshot(out)

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    # the last figure, so that everything before it has been drawn and written
    monkeypatch.setattr(plots, "sensitivity", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        write_report(seed_result, out)
    assert _snapshot(out) == before
    assert [p.name for p in out.iterdir()] == ["mandatory_account"]


# ------------------------------------------------------------------------------------ CLI


def test_cli_report_rejects_a_file_as_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from simulator.cli import main

    f = tmp_path / "afile"
    f.write_text("")
    assert main(["report", str(SEED_SCENARIO), "--out", str(f)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --out: {f} is a file; give a directory"
    assert main(["report", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'missing.yaml'}: cannot read the scenario file")


def test_cli_help_does_not_import_matplotlib() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from simulator.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['report', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'matplotlib' not in sys.modules and 'pymc' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


# -------------------------------------------------------------------------------- browser

CHECK_SCRIPT = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(
  'error: ' + (e.message || (e.target && (e.target.src || e.target.href)) || 'unknown')), true);
document.addEventListener('securitypolicyviolation', e => window.__errors.push(
  'csp: ' + e.violatedDirective + ' ' + e.blockedURI));
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => ({
    data: i.src.startsWith('data:image/png;base64,'), ok: i.complete && i.naturalWidth > 0,
    w: i.naturalWidth, shown: i.getBoundingClientRect().width}));
  const out = document.createElement('pre');
  out.id = 'krsim-check';
  out.textContent = JSON.stringify({imgs, errors: window.__errors,
    answer: document.getElementById('answer').textContent, title: document.title});
  document.body.appendChild(out);
});
</script>"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_page_loads_in_a_browser_with_figures_and_no_errors(
    report_dir: Path, seed_result, tmp_path: Path
) -> None:
    html = (report_dir / "index.html").read_text()
    # The page itself runs no script (its policy forbids it); the checking copy allows one inline
    # script and still forbids any network access.
    checked = html.replace(
        "style-src 'unsafe-inline'", "style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    )
    checked = checked.replace("<head>", "<head>\n" + CHECK_SCRIPT, 1)
    page = tmp_path / "check.html"
    page.write_text(checked)
    r = _chromium(["--virtual-time-budget=10000", "--dump-dom", page.as_uri()], tmp_path / "p1")
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="krsim-check">(.*?)</pre>', r.stdout, re.S)
    assert m, "the check script did not run:\n" + r.stdout[-2000:]
    check = json.loads(m.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert check["errors"] == []
    assert len(check["imgs"]) == len(FIGURES)
    assert all(i["data"] and i["ok"] and i["w"] > 500 and i["shown"] > 300 for i in check["imgs"])
    assert check["title"] == seed_result.run.title
    assert check["answer"] == answer_sentence(seed_result.scenario, seed_result.run)

    # The page as shipped: a screenshot, and no console message about errors or blocked loads.
    shot = tmp_path / "screenshot.png"
    r = _chromium(
        [
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1200,900",
            f"--screenshot={shot}",
            (report_dir / "index.html").as_uri(),
        ],
        tmp_path / "p2",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    console = [
        line
        for line in r.stderr.splitlines()
        if "CONSOLE" in line or "Refused to" in line or "net::ERR" in line
    ]
    assert console == []
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 900)
        colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50  # text, table and a figure, not a blank page
