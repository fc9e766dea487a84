"""Write a report directory atomically: everything is built in a temporary directory beside the
target and swapped in with renames, so a failure at any step leaves the previous report intact."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..engine.pipeline import SimulationResult
from ..i18n import language
from .context import context, figures
from .html import render_html
from .markdown import render_markdown
from .sections import Section


def report_stem(result: SimulationResult) -> str:
    """The report's directory name: the scenario file's stem (or its id), safe as a file name."""
    stem = re.sub(r"[^\w.-]+", "_", result.scenario.id).strip("._")
    return stem or "report"


def summary_json(result: SimulationResult) -> str:
    """The summary object exactly as `krsim run --json` prints it."""
    return json_text(result.to_dict())


def json_text(obj) -> str:
    """``obj`` as `--json` prints it: indented, with a final newline."""
    return json.dumps(obj, indent=2) + "\n"


def write_page_files(d: Path, figs, html: str, markdown: str, json_name: str, obj) -> None:
    """A page's files in directory ``d``: figures/*.png, index.html, report.md and ``json_name``
    (``obj`` as indented JSON, the form `--json` prints)."""
    (d / "figures").mkdir()
    for f in figs:
        (d / "figures" / f"{f.name}.png").write_bytes(f.png)
    (d / "index.html").write_text(html, encoding="utf-8")
    (d / "report.md").write_text(markdown, encoding="utf-8")
    (d / json_name).write_text(json_text(obj), encoding="utf-8")


def _write_files(
    result: SimulationResult, d: Path, sections: Sequence[Section], files: Mapping[str, str]
) -> None:
    """The decision page's files in ``d``, the sections in place, and the extra ``files``."""
    figs = figures(result)
    ctx = context(result, figs)
    html = render_html(
        ctx,
        decision=[s.html for s in sections if s.place == "decision"],
        end=[s.html for s in sections if s.place == "end"],
    )
    markdown = render_markdown(
        ctx,
        decision=[s.markdown for s in sections if s.place == "decision"],
        end=[s.markdown for s in sections if s.place == "end"],
    )
    extra = [f for s in sections for f in s.figures]
    write_page_files(d, [*figs, *extra], html, markdown, "summary.json", result.to_dict())
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")


def _swap(new: Path, final: Path) -> None:
    """Put ``new`` in place of ``final``: two renames, undone if the second fails."""
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    try:
        os.rename(new, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_dir(out_dir: str | Path, name: str, fill: Callable[[Path], None]) -> Path:
    """Build ``out_dir/name/`` by ``fill(tmp)`` in a temporary directory beside it and swap it
    in; on any failure the previous directory is left as it was. Returns the directory."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=out_dir))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is meant to be shared
        fill(tmp)
        _swap(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_report(
    result: SimulationResult,
    out_dir: str | Path,
    lang: str | None = None,
    *,
    sections: Sequence[Section] = (),
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write ``out_dir/<scenario stem>/`` (index.html, report.md, figures/*.png, summary.json) and
    return that directory. ``lang``: the pages' language (default: the scenario's); the JSON is
    English whatever the language. ``sections``: what an analysis adds to the page (rendered
    before, in the page's language), composed into it in memory; ``files``: more files of the
    directory, by name and text. The directory is written once, atomically (`write_dir`)."""
    with language(page_language(result.scenario, lang)):
        return write_dir(
            out_dir,
            report_stem(result),
            lambda d: _write_files(result, d, sections, files or {}),
        )


def page_language(scenario, lang: str | None) -> str:
    """The language asked for, else the scenario's (``language:``), else English."""
    return lang or getattr(scenario, "language", None) or "en"
