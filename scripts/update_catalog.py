"""Re-extract krsim's messages from the source and update the catalogues.

    .venv/bin/python scripts/update_catalog.py          # every language under simulator/locale/
    .venv/bin/python scripts/update_catalog.py --check  # exit 1 when a catalogue is out of date

The messages are the English strings marked with ``_()``, ``ngettext``, ``pgettext`` and ``N_`` in
``simulator/**/*.py`` and ``{{ _("...") }}`` in the report templates, extracted with Babel (the
same extraction as ``pybabel extract``). Each ``simulator/locale/<lang>/LC_MESSAGES/krsim.po`` is
then updated as ``pybabel update`` does it: new messages are added with an empty translation,
messages no longer in the source are dropped, translations already there are kept. Fill the
empty ``msgstr`` entries and run ``tests/test_i18n.py``: it fails while a message has none. There
is no compile step: krsim compiles a ``.po`` in memory when its language is first used.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "simulator"
LOCALE = PACKAGE / "locale"
DOMAIN = "krsim"
METHODS = [
    ("**/templates/**.j2", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.j2": {"trim_blocks": "True", "lstrip_blocks": "True"}}


def extract() -> Catalog:
    """Every message of the package, as a template catalogue (``.pot``)."""
    template = Catalog(project="krsim", domain=DOMAIN, fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        PACKAGE, METHODS, OPTIONS, DEFAULT_KEYWORDS, strip_comment_tags=True
    ):
        template.add(
            message,
            None,
            [(f"simulator/{filename}", lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def updated(lang: str, template: Catalog) -> Catalog:
    path = LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if path.exists():
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=DOMAIN)
    else:
        catalog = Catalog(locale=lang, domain=DOMAIN, project="krsim")
    catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
    catalog.obsolete.clear()
    return catalog


def po_text(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_po(buf, catalog, width=100, sort_output=False, omit_header=False, include_lineno=False)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only say whether a .po is out of date")
    ap.add_argument("--add", metavar="LANG", help="start the catalogue of a new language")
    args = ap.parse_args(argv)
    template = extract()
    langs = sorted(p.name for p in LOCALE.iterdir() if (p / "LC_MESSAGES").is_dir())
    if args.add and args.add not in langs:
        (LOCALE / args.add / "LC_MESSAGES").mkdir(parents=True)
        langs.append(args.add)
    stale = []
    for lang in langs:
        path = LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        text = po_text(updated(lang, template))
        old = path.read_bytes() if path.exists() else b""
        if _body(text) != _body(old):
            stale.append(path)
            if not args.check:
                path.write_bytes(text)
        missing = sum(1 for m in read_po(io.BytesIO(text), locale=lang) if m.id and not _done(m))
        print(f"{path.relative_to(ROOT)}: {len(template)} messages, {missing} untranslated")
    if args.check and stale:
        print("out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    return 0


def _done(m) -> bool:
    return all(m.string) if isinstance(m.string, tuple | list) else bool(m.string)


def _body(po: bytes) -> bytes:
    """The catalogue without its header's dates, which change on every write."""
    return b"\n".join(
        line for line in po.splitlines() if not line.startswith((b'"POT-Creation', b'"PO-Revision'))
    )


if __name__ == "__main__":
    sys.exit(main())
