"""Write docs/reference/scenario.md, the scenario format's reference, from the pydantic models of
simulator/io/scenario.py: every key with its type, default, allowed values and the one-line meaning
its ``Field(description=...)`` gives. `make docs` runs it; tests/test_docs.py fails when the
committed page differs from what this script writes, or when a field has no description.

    python scripts/make_reference.py          # write the page
    python scripts/make_reference.py --check  # exit 1 if the committed page is out of date
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.io import scenario as sc  # noqa: E402

OUT = ROOT / "docs" / "reference" / "scenario.md"

# Where each block sits in a scenario file, and what it is (by model class). A model that is not
# listed here is still documented: its path is found by walking the types, its intro is the first
# sentence of its docstring.
INTRO = {
    "Scenario": "The top level of a scenario file.",
    "Stage": "One stage of the funnel, by id. Exactly one stage has no `from`: the traffic "
    "entering the funnel.",
    "Value": "An amount each unit of a stage carries (money, time). The history then has a "
    "`STAGE.value` column holding each period's total; see [Money KRs](../guides/money-krs.md).",
    "Segment": "An observed share of a stage's users, by id (inherited by later stages); the "
    "history has a count column for it.",
    "Option": "One of the choices compared, by id.",
    "Change": "Exactly one of the four kinds below.",
    "Lift": "Multiplies a stage's conversion rate (capped at 1), or the traffic when the stage is "
    "the root, or with `on: value` the stage's average value per unit.",
    "SetRate": "Replaces a stage's average conversion rate; its period-to-period variation still "
    "applies around it, on the logit scale.",
    "Gate": "A new required step between a stage and its parent. Users reaching it split into "
    "exempt (the segment) and others; others pass with probability `pass`; passers convert "
    "downstream at the same rate as the exempt (an assumption); passers who were not exempt add "
    "to `counts_as`, less the `overlap`.",
    "Flow": "Of the users at `from` (restricted to `among`), a share `rate` is added to `to`. "
    "Users added to a stage by a gate or a flow are not counted in its segments.",
    "Prior": "A belief: exactly one kind, or a bare number (`{fixed: x}`). The usual way to say "
    '"we are 90% sure it is between 50% and 85%" is `{beta_interval: [0.50, 0.85]}`.',
    "KeyResult": "One key result and its target.",
    "Decision": "How the options are compared; see [Decide before a change]"
    "(../guides/decide.md#how-the-answer-is-decided).",
    "ModelBlock": "Model settings and the default priors of the history model; see "
    "[The model](model.md). The defaults suit a weekly funnel.",
    "Tracking": "Status thresholds of `krsim track` on P(met by the end of the quarter): on track "
    "at or above `at_risk_below`, at risk below it, off track below `off_track_below`.",
    "Event": "A one-off shock in the history (a campaign, an outage): each of its periods gets "
    "its own effect on each named stage, so it neither inflates the regular variation nor bends "
    "the level; the forecast leaves it out.",
    "Experiment": "An experiment's results, read by `krsim compare`; see "
    "[Compare an experiment](../guides/compare.md).",
}

PRIOR_NOTE = "a [belief](#prior) or a number"
ID = "id"


def _anchor(model: type) -> str:
    return model.__name__.lower()


def _constraints(field: FieldInfo) -> list[str]:
    out = []
    for m in field.metadata:
        if isinstance(m, Ge):
            out.append(f"≥ {m.ge:g}")
        elif isinstance(m, Gt):
            out.append(f"> {m.gt:g}")
        elif isinstance(m, Le):
            out.append(f"≤ {m.le:g}")
        elif isinstance(m, Lt):
            out.append(f"< {m.lt:g}")
    return out


def type_text(tp: Any) -> str:
    """A type as a reader of the YAML sees it."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        if any(getattr(m, "pattern", None) == sc.ID_PATTERN for m in meta):
            return ID
        return type_text(base)
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(type_text(a) for a in parts)
    if origin is Literal:
        return " \\| ".join(f"`{v}`" for v in typing.get_args(tp))
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"mapping {type_text(k)} → {type_text(v)}"
    if origin is list:
        return f"list of {type_text(typing.get_args(tp)[0])}"
    if origin is tuple:
        return "[" + ", ".join(type_text(a) for a in typing.get_args(tp)) + "]"
    if tp is sc.Prior:
        return PRIOR_NOTE
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{_anchor(tp)})"
    return {str: "text", int: "integer", float: "number", bool: "true \\| false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    d = field.get_default(call_default_factory=True)
    if d is None:
        return "—"
    if isinstance(d, sc.Prior):
        return f"`{d.value:g}`" if d.kind == "fixed" else d.describe()
    if isinstance(d, BaseModel):
        return "see below"
    if isinstance(d, bool):
        return f"`{str(d).lower()}`"
    if isinstance(d, list | dict):
        return f"`{d!r}`"
    return f"`{d}`"


def _models_in(tp: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(tp)
    if origin is not None:
        return [m for a in typing.get_args(tp) for m in _models_in(a)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []


def _suffix(tp: Any) -> str:
    """How the path continues into a field's model: `.ID` for a mapping, `[]` for a list."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return next((_suffix(a) for a in typing.get_args(tp) if _suffix(a)), "")
    if origin is dict:
        return ".ID"
    if origin is list:
        return "[]"
    return ""


def walk() -> list[tuple[type[BaseModel], list[str]]]:
    """Every model reachable from the scenario, breadth first, with the YAML paths to it."""
    order: list[tuple[type[BaseModel], list[str]]] = [(sc.Scenario, [""])]
    paths: dict[type, list[str]] = {sc.Scenario: [""]}
    i = 0
    while i < len(order):
        model, (path, *_) = order[i]
        i += 1
        for name, f in model.model_fields.items():
            key = f.alias or name
            if model is sc.Scenario and key == "baseline":
                continue  # written as forms, documented in its own section
            for sub in _models_in(f.annotation):
                where = (f"{path}.{key}" if path else key) + _suffix(f.annotation)
                if sub not in paths:
                    paths[sub] = []
                    order.append((sub, paths[sub]))
                paths[sub].append(where)
    return order


def _where(paths: list[str]) -> str:
    if paths == [""]:
        return "top level"
    if len(paths) == 1:
        return f"`{paths[0]}`"
    keys = sorted({p.rsplit(".", 1)[-1] for p in paths})
    return ", ".join(f"`{k}`" for k in keys)


def missing_descriptions() -> list[str]:
    """`Model.field` for every field of every model in simulator/io/scenario.py without a
    description."""
    out = []
    for obj in vars(sc).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == sc.__name__:
            for name, f in obj.model_fields.items():
                if not (f.description or "").strip():
                    out.append(f"{obj.__name__}.{name}")
    return out


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _intro(model: type[BaseModel]) -> str:
    if model.__name__ in INTRO:
        return INTRO[model.__name__]
    doc = " ".join((model.__doc__ or "").split())
    return doc.split(". ")[0].rstrip(".").replace("``", "`") + "." if doc else ""


def _table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        key = f.alias or name
        if model is sc.Scenario and key == "baseline":
            kind = "a [baseline form](#baseline), or a mapping key result id → form"
        else:
            kind = type_text(f.annotation)
        limits = _constraints(f)
        if limits:
            kind += " (" + ", ".join(limits) + ")"
        meaning = (f.description or "").strip()
        rows.append(f"| `{key}` | {_cell(kind)} | {_cell(default_text(f))} | {_cell(meaning)} |")
    return rows


def _baseline_section() -> list[str]:
    spec = sc.BaselineSpec
    kinds = typing.get_args(spec.model_fields["kind"].annotation)
    named = {
        "last_periods": "the last `horizon` periods of the history (the default)",
        "same_period_last_year": "the `horizon` periods starting a year before the horizon's "
        "first date (needs dated periods)",
        "previous_quarter": "the `horizon` periods that end before the calendar quarter the "
        "horizon starts in",
    }
    assert set(sc.BASELINE_KINDS) <= set(named), "describe every named baseline window here"
    rows = [
        "## baseline {#baseline}",
        "",
        "`baseline:` takes one form for every key result, or a mapping of key result id → form "
        "(key results not named keep `last_periods`). A window of another length than the "
        "horizon has its totals scaled to the horizon (ratios are not scaled). The output says "
        "which window each baseline comes from.",
        "",
        "| form | meaning |",
        "|---|---|",
    ]
    for k in sc.BASELINE_KINDS:
        rows.append(f"| `{k}` | {named[k]} |")
    if "window" in kinds:
        rows.append(
            "| `{from: A, to: B}` | an explicit window: period labels or dates, inclusive |"
        )
    if "given" in kinds:
        rows.append(
            "| a number (per key result only) | the baseline itself, e.g. `{bookings: 12500}` |"
        )
    return [*rows, ""]


HEADER = """\
# Scenario reference

<!-- Generated by scripts/make_reference.py from simulator/io/scenario.py; do not edit by hand:
     `make docs` rewrites it. -->

Every key of a scenario file (format version 1), block by block: its type, its default
(**required** when it has none) and what it means. The path above each table says where the
block sits in the file (`ID` stands for an id you choose, `[]` for an item of a list). An `id` is
lowercase letters, digits and `_`, starting with a letter. Unknown keys are refused, with the
closest allowed key suggested.

For a scenario explained line by line, see [Decide before a change](../guides/decide.md).

!!! tip "Validation while you type"
    `krsim schema` prints this format as a JSON Schema; the repository keeps a copy in
    [`docs/scenario.schema.json`](../scenario.schema.json). Make this the first line of a
    scenario file and VS Code (with Red Hat's YAML extension) and the other editors built on
    yaml-language-server check keys, types and allowed values as you type, and show each key's
    meaning on hover (the path is relative to the scenario file; this one is for a file in
    `scenarios/`):

    ```yaml
    # yaml-language-server: $schema=../docs/scenario.schema.json
    ```

    JetBrains IDEs (IntelliJ IDEA, PyCharm) document their own form of the line,
    `# $schema: ../docs/scenario.schema.json`; both lines can stand at the top of a file.

    The schema checks the form of the file; `krsim check` also checks what refers to what
    (stages, segments, key results) and the data.

"""


def render() -> str:
    out = HEADER.splitlines()
    for model, paths in walk():
        where = _where(paths)
        out += [f"## {where}: {model.__name__} {{#{_anchor(model)}}}", "", _intro(model), ""]
        out += _table(model)
        out.append("")
        if model is sc.Scenario:
            out += _baseline_section()
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    missing = missing_descriptions()
    if missing:
        print("fields without a description: " + ", ".join(missing), file=sys.stderr)
        return 1
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run make docs", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
