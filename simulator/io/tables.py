"""Reading a CSV as spreadsheets save it: the one place that opens a table file (count tables
in `data`, the experiment archive in `archive_data`), with one-line errors for the file itself."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from .scenario import InputError


def sniff_delimiter(first_line: str) -> str:
    """The header's separator: a comma, unless the header holds none and a `;` or tab instead."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    if counts[","]:
        return ","
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_rows(path: Path, expected: str) -> tuple[list[list[str]], str, str]:
    """A CSV file's non-blank rows, its separator (`,` `;` tab `|`, found from the header) and
    the SHA-256 of its bytes; or an InputError in one line when the file is missing, unreadable,
    UTF-16, not UTF-8 or empty (``expected``: the header it should have, for the message)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise InputError([f"{path}: cannot read the file: {exc.strerror or exc}"]) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(
            [f"{path}: the file is UTF-16 text; save it as 'CSV UTF-8 (comma delimited)'"]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            [
                f"{path}: not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' "
                "(a spreadsheet's plain 'CSV' may use another encoding)"
            ]
        ) from None
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    delimiter = sniff_delimiter(first)
    rows = [r for r in csv.reader(lines, delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        raise InputError([f"{path}: the file is empty (expected a header row: {expected})"])
    return rows, delimiter, hashlib.sha256(raw).hexdigest()
