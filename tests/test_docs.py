"""The docs site and what is generated for it: the scenario reference, the JSON Schema, the
troubleshooting page, the guides' commands, the README's length and example, the report pages'
links to the guides.

The JSON Schema is checked without a JSON Schema library (none is a dependency): a minimal
evaluator below implements the keywords `krsim schema` emits, and a structural check fails if the
schema uses any other keyword, so the evaluator cannot silently skip one. Every scenario in
scenarios/ must pass it and load with pydantic; the broken fixtures that are mistakes of form
(unknown key, missing key, wrong type, bad id, two kinds in one belief) must fail it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from conftest import load_script

from simulator.cli import build_parser, main, scenario_schema
from simulator.io.scenario import load_yaml, read_scenario

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = sorted((DOCS / "guides").glob("*.md"))
INVALID = ROOT / "tests" / "fixtures" / "invalid"


def _krsim(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------ generated pages


def test_every_field_has_a_description():
    assert load_script("make_reference").missing_descriptions() == []


def test_committed_reference_is_generated_from_the_models():
    page = (DOCS / "reference" / "scenario.md").read_text(encoding="utf-8")
    assert page == load_script("make_reference").render(), "run make docs"


def test_committed_troubleshooting_is_krsims_own_output():
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    assert page == load_script("make_troubleshooting").render(), "run make docs"


def test_committed_schema_is_krsim_schema():
    code, out, _ = _krsim(["schema"])
    assert code == 0
    committed = (DOCS / "scenario.schema.json").read_text(encoding="utf-8")
    assert committed == out, "run make docs"
    assert json.loads(out) == scenario_schema()


# ------------------------------------------------------------------------ the JSON Schema

KEYWORDS = {
    "$schema", "$ref", "$defs", "title", "description", "default", "type", "properties",
    "patternProperties", "additionalProperties", "required", "items", "minItems", "maxItems",
    "anyOf", "oneOf", "enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum",
}  # fmt: skip
TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def _subschemas(node: dict):
    for key in ("properties", "patternProperties", "$defs"):
        yield from node.get(key, {}).values()
    for key in ("anyOf", "oneOf"):
        yield from node.get(key, [])
    items = node.get("items")
    if isinstance(items, dict):
        yield items
    elif isinstance(items, list):
        yield from items
    if isinstance(node.get("additionalProperties"), dict):
        yield node["additionalProperties"]


def test_schema_is_a_well_formed_json_schema():
    schema = scenario_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    seen = 0

    def check(node: dict, where: str) -> None:
        nonlocal seen
        seen += 1
        assert isinstance(node, dict), where
        assert set(node) <= KEYWORDS, f"{where}: unknown keywords {set(node) - KEYWORDS}"
        types = node.get("type", [])
        assert set([types] if isinstance(types, str) else types) <= TYPES, where
        if "$ref" in node:
            assert node["$ref"].removeprefix("#/$defs/") in schema["$defs"], where
        if "required" in node and "properties" in node:
            assert set(node["required"]) <= set(node["properties"]), where
        for pattern in node.get("patternProperties", {}):
            re.compile(pattern)
        if "pattern" in node:
            re.compile(node["pattern"])
        for sub in _subschemas(node):
            check(sub, where + "/…")

    check(schema, "#")
    assert seen > 100
    assert "from" in schema["$defs"]["Stage"]["properties"]  # aliases as written in YAML
    assert "pass" in schema["$defs"]["Gate"]["properties"]


def _errors(schema: dict, node: dict, value, path: str = "") -> list[str]:
    """The draft-07 keywords `krsim schema` uses, evaluated on ``value``."""
    if "$ref" in node:
        return _errors(schema, schema["$defs"][node["$ref"].removeprefix("#/$defs/")], value, path)
    if "type" in node and not _of_type(node["type"], value):
        types = [node["type"]] if isinstance(node["type"], str) else node["type"]
        return [f"{path}: not {' or '.join(types)}"]
    out = _scalar_errors(node, value, path)
    if isinstance(value, dict):
        out += _object_errors(schema, node, value, path)
    if isinstance(value, list):
        out += _array_errors(schema, node, value, path)
    return out + _combined_errors(schema, node, value, path)


def _of_type(types: str | list[str], value) -> bool:
    ok = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }
    return any(ok[t] for t in ([types] if isinstance(types, str) else types))


def _scalar_errors(node: dict, value, path: str) -> list[str]:
    """enum, const, pattern and the bounds of a number."""
    out = []
    if "enum" in node and value not in node["enum"]:
        out.append(f"{path}: not one of {node['enum']}")
    if "const" in node and value != node["const"]:
        out.append(f"{path}: not {node['const']!r}")
    if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
        out.append(f"{path}: does not match {node['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        for key, test in [
            ("minimum", lambda v, b: v >= b),
            ("maximum", lambda v, b: v <= b),
            ("exclusiveMinimum", lambda v, b: v > b),
            ("exclusiveMaximum", lambda v, b: v < b),
        ]:
            if key in node and not test(value, node[key]):
                out.append(f"{path}: {key} {node[key]}")
    return out


def _object_errors(schema: dict, node: dict, value: dict, path: str) -> list[str]:
    """required, properties, patternProperties and additionalProperties."""
    props, patterns = node.get("properties", {}), node.get("patternProperties", {})
    out = [f"{path}: missing {key!r}" for key in node.get("required", []) if key not in value]
    for key, v in value.items():
        where = f"{path}.{key}"
        matched = [p for p in patterns if re.search(p, str(key))]
        if key in props:
            out += _errors(schema, props[key], v, where)
        for p in matched:
            out += _errors(schema, patterns[p], v, where)
        if key not in props and not matched:
            extra = node.get("additionalProperties", True)
            if extra is False:
                out.append(f"{where}: unknown key")
            elif isinstance(extra, dict):
                out += _errors(schema, extra, v, where)
    return out


def _array_errors(schema: dict, node: dict, value: list, path: str) -> list[str]:
    """minItems, maxItems and items (one schema, or one per position)."""
    out = []
    items = node.get("items")
    if "minItems" in node and len(value) < node["minItems"]:
        out.append(f"{path}: fewer than {node['minItems']} items")
    if "maxItems" in node and len(value) > node["maxItems"]:
        out.append(f"{path}: more than {node['maxItems']} items")
    for i, v in enumerate(value):
        sub = items[i] if isinstance(items, list) and i < len(items) else items
        if isinstance(sub, dict):
            out += _errors(schema, sub, v, f"{path}[{i}]")
    return out


def _combined_errors(schema: dict, node: dict, value, path: str) -> list[str]:
    """anyOf and oneOf."""
    out = []
    if "anyOf" in node and all(_errors(schema, s, value, path) for s in node["anyOf"]):
        out.append(f"{path}: matches none of anyOf")
    if "oneOf" in node:
        passing = sum(not _errors(schema, s, value, path) for s in node["oneOf"])
        if passing != 1:
            out.append(f"{path}: matches {passing} of oneOf, not exactly one")
    return out


def _yaml(path: Path):
    """The file as an editor's YAML 1.2 reads it: dates stay text."""

    def text_dates(v):
        if isinstance(v, dict):
            return {k: text_dates(x) for k, x in v.items()}
        if isinstance(v, list):
            return [text_dates(x) for x in v]
        return v.isoformat() if isinstance(v, dt.date) else v

    return text_dates(load_yaml(path.read_bytes()))


SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_passes_the_schema_and_pydantic(path):
    schema = scenario_schema()
    assert _errors(schema, schema, _yaml(path)) == []
    read_scenario(path)  # and the models themselves accept it


FORM_MISTAKES = [
    "unknown_key",
    "unknown_key_nested",
    "missing_field",
    "bad_id",
    "not_mapping",
    "two_kinds_in_prior",
]


@pytest.mark.parametrize("name", FORM_MISTAKES)
def test_schema_rejects_the_broken_fixtures_of_form(name):
    schema = scenario_schema()
    assert _errors(schema, schema, _yaml(INVALID / f"{name}.yaml"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("horizon: 13", "horizon: thirteen"),  # wrong type
        ("horizon: 13", "horizon: 0"),  # out of range
        ("rule: all_met", "rule: best"),  # not an allowed value
        ("grading: committed", "grading: [committed]"),  # wrong type
    ],
)
def test_schema_rejects_wrong_types_and_values(tmp_path, old, new):
    text = (ROOT / "scenarios" / "booking_q1.yaml").read_text(encoding="utf-8")
    assert old in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new, 1), encoding="utf-8")
    schema = scenario_schema()
    assert _errors(schema, schema, _yaml(bad))


def test_schema_accepts_the_short_forms():
    schema = scenario_schema()
    base = _yaml(ROOT / "scenarios" / "booking_q1.yaml")
    for baseline in (
        "previous_quarter",
        {"from": "2025-01-06", "to": "2025-03-31"},
        {"bookings": 12500, "accounts": "same_period_last_year"},
    ):
        assert _errors(schema, schema, {**base, "baseline": baseline}) == []
    gate = base["options"]["mandatory_account"]["changes"][0]["gate"]
    gate["overlap"] = 0.1  # a bare number is a fixed belief
    assert _errors(schema, schema, base) == []


# ------------------------------------------------------------------------ the guides' commands

FENCE = re.compile(r"^```(\w*)\s*$")


def guide_commands(paths: list[Path]) -> list[tuple[str, list[str], list[str]]]:
    """(where, argv, printed output) of every `krsim` command in a fenced console or bash block:
    the lines that start with `krsim` (in console blocks, after an optional `$ `; the lines up
    to the next prompt after a `$ krsim` line are the output shown)."""
    out = []
    for path in paths:
        lang, lines = None, path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i].strip())
            if m and lang is None:
                lang = m.group(1) or "text"
            elif lines[i].strip() == "```":
                lang = None
            elif lang in ("bash", "console"):
                line = lines[i].strip()
                prompt = lang == "console" and line.startswith("$ ")
                line = line.removeprefix("$ ") if prompt else line
                if line.startswith("krsim "):
                    start = i
                    while line.endswith("\\"):
                        i += 1
                        line = line[:-1] + " " + lines[i].strip()
                    shown = []
                    while (
                        prompt
                        and i + 1 < len(lines)
                        and lines[i + 1].strip() not in ("```",)
                        and not lines[i + 1].startswith("$ ")
                    ):
                        i += 1
                        shown.append(lines[i])
                    argv = shlex.split(line.split("  #")[0])[1:]
                    out.append((f"{path.relative_to(ROOT)}:{start + 1}", argv, shown))
            i += 1
    return out


PAGES = [*GUIDES, DOCS / "quickstart.md", DOCS / "reference" / "cli.md"]
COMMANDS = guide_commands(PAGES)
CHEAP = ("check", "schema")


def test_the_guides_have_commands():
    assert {p.name for p in GUIDES} >= {
        "decide.md",
        "read-the-report.md",
        "compare.md",
        "track.md",
        "plan.md",
        "money-krs.md",
        "backtest.md",
    }
    commands = {argv[0] for _, argv, _ in COMMANDS}
    assert commands >= {"check", "run", "report", "compare", "track", "plan", "backtest"}


@pytest.mark.parametrize(
    ("where", "argv", "shown"), COMMANDS, ids=[f"{w} {' '.join(a)}" for w, a, _ in COMMANDS]
)
def test_guide_command(monkeypatch, where, argv, shown):
    monkeypatch.chdir(ROOT)
    if argv[0] in CHEAP or "--help" in argv:
        code, out, err = _krsim(argv)
        assert code == 0, f"{where}: krsim {' '.join(argv)}\n{err}"
        if shown:  # the output the page shows is what krsim prints
            assert [x.rstrip() for x in shown] == out.rstrip().splitlines(), where
        return
    # the others fit a model: only check that the command line parses and names real things
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: krsim {' '.join(argv)} does not parse: {err.getvalue()}")
    for name in ("scenario", "results", "actuals"):
        path = getattr(args, name, None)
        assert path is None or path.exists(), f"{where}: no file {path}"
    path = getattr(args, "scenario", None)
    if path is not None and path.is_file():
        scenario = read_scenario(path)
        for option in [getattr(args, "option", None), *(getattr(args, "arms", None) or [])]:
            assert option is None or option in scenario.options, f"{where}: no option {option}"


# ------------------------------------------------------------------------ the site and the README


def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for x in node for p in _nav_pages(x)]
    if isinstance(node, dict):
        return [p for x in node.values() for p in _nav_pages(x)]
    return []


def test_the_nav_lists_every_page_and_only_pages_that_exist():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    excluded = set(config.get("exclude_docs", "").split())
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")} - excluded
    assert sorted(set(nav)) == sorted(pages)
    for kept in ("design.md", "validation.md", "forecast_study.md"):  # cited by the code
        assert kept in nav


def test_readme_fits_on_two_screens():
    words = len((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert words <= 1200, f"README.md has {words} words"


def _fenced_after(text: str, marker: str) -> list[str]:
    """The lines, right-stripped, of the fenced block that ``marker`` opens (a line inside it)
    or heads (a heading just above it)."""
    assert marker in text, marker
    after = text.split(marker, 1)[1]
    if after.lstrip("\n").startswith("```"):
        after = after.lstrip("\n")[3:]
    return [x.rstrip() for x in after.split("```")[0].strip("\n").splitlines()]


def test_readme_example_is_the_committed_report():
    """The README's table, and the report guide's, are what `krsim run` prints for the committed
    report's summary.json (reports/mandatory_account/, written by `make reports`), and the
    README's answer quotes it."""
    from simulator.engine.render import text_summary
    from simulator.engine.summary import RunSummary

    summary = RunSummary.from_dict(
        json.loads((ROOT / "reports/mandatory_account/summary.json").read_text())
    )
    scenario = read_scenario(ROOT / "scenarios" / "mandatory_account.yaml")
    printed = [x.rstrip() for x in text_summary(scenario, summary, from_cache=True).splitlines()]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = _fenced_after(readme, "$ krsim run scenarios/mandatory_account.yaml")
    guide = (DOCS / "guides" / "read-the-report.md").read_text(encoding="utf-8")
    for shown in (block, _fenced_after(guide, "## The table")):
        assert len(shown) >= 5 and shown[0] in printed, shown  # the table, from its heading
        start = printed.index(shown[0])
        assert shown == printed[start : start + len(shown)]  # every row, in order
    answer = next(x for x in printed if x.startswith("Answer:"))
    said = readme.split("\nAnswer: ", 1)[1].split("\n\n")[0]
    for number in re.findall(r"\d+\.\d+|\d+%", said):
        assert number in answer, number


# ------------------------------------------------------------------------ report pages -> guides


def _slug(heading: str) -> str:
    """The anchor MkDocs gives a heading (its toc extension's default, for plain ASCII)."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


@pytest.mark.parametrize("template", ["report.html.j2", "track.html.j2"])
def test_every_report_section_names_its_guide(template):
    text = (ROOT / "simulator" / "report" / "templates" / template).read_text(encoding="utf-8")
    sections = re.findall(r"<section id=\"([\w-]+)\">(.*?)</section>", text, re.S)
    assert sections
    for sid, body in sections:
        refs = re.findall(
            r'<p class="note how">.*?<code>(docs/guides/[\w-]+\.md)#([\w-]+)</code>', body
        )
        assert refs, f"{template}: section {sid} has no 'How this is computed' line"
        for page, anchor in refs:
            headings = re.findall(r"^#+ (.+?)(?: \{#[\w-]+\})?$", (ROOT / page).read_text(), re.M)
            assert anchor in {_slug(h) for h in headings}, f"{page}#{anchor}"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
