"""The language of what krsim prints and writes: message catalogues and locale-aware numbers.

Messages are marked in the source with ``_()`` (``ngettext`` for plurals, ``N_`` for a string
defined before the language is known) and looked up in gettext catalogues whose message ids are
the English text itself:

- the English source stays readable: a sentence is written where it is used, in full, with named
  placeholders (``_("{option} gives ... (P = {p})").format(option=..., p=...)``) that a translation
  may put in another order;
- a message with no translation falls back to the English text, so a new sentence shows up in
  English until it is translated instead of breaking the output (``tests/test_i18n.py`` fails
  while any message lacks a translation);
- the standard tooling works on the catalogues: Babel's extract, update and compile
  (``scripts/update_catalog.py`` runs the first two).

The catalogue of a language is its source, ``locale/<lang>/LC_MESSAGES/krsim.po``, compiled in
memory with Babel the first time the language is used (a few tens of milliseconds): there is no
compiled ``.mo`` to rebuild or to drift from its source, and no build step for a user; English,
the default, loads nothing.

The language is a context variable: ``with language("fr"): ...`` (or ``set_language``) around
rendering. Results, and the JSON objects they give, are computed in English whatever the language:
JSON is an interface, its keys and values never change with the language.

Numbers go through the ``fmt_*`` functions below instead of f-string formats: in English they give
exactly the text the f-strings gave (``5,821``, ``0.49``, ``12.3%``), in French the locale's
format from Babel (``5 821`` with a narrow no-break space, ``0,49``, ``12,3 %``, ``925 772 €``,
``6 janv. 2027``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gettext
import io
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

LANGUAGES = ("en", "fr")
DOMAIN = "krsim"
LOCALE_DIR = Path(__file__).parent / "locale"

_current: ContextVar[str] = ContextVar("krsim_language", default="en")


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    return lang


def set_language(lang: str) -> None:
    """Make ``lang`` the language of everything rendered from now on (in this context)."""
    _current.set(check_language(lang))


def get_language() -> str:
    return _current.get()


@contextlib.contextmanager
def language(lang: str | None) -> Iterator[str]:
    """Render in ``lang`` inside the block (None: keep the current language)."""
    token = _current.set(check_language(lang or _current.get()))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of ``lang``, compiled from its ``.po`` file in memory (English: none)."""
    if lang == "en" or not catalog_path(lang).exists():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with catalog_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def _(message: str) -> str:
    """``message`` in the current language (the English text when it has no translation)."""
    lang = _current.get()
    return message if lang == "en" else translations(lang).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    lang = _current.get()
    if lang == "en":
        return singular if n == 1 else plural
    return translations(lang).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in the current language, told apart from the same English text used with
    another meaning by ``context``."""
    lang = _current.get()
    return message if lang == "en" else translations(lang).pgettext(context, message)


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is defined; ``_()`` translates it where used."""
    return message


# ---------------------------------------------------------------------------------- numbers


def _locale() -> str:
    return _current.get()


def _decimal_pattern(digits: int, group: bool) -> str:
    whole = "#,##0" if group else "0"
    return whole + ("." + "0" * digits if digits > 0 else "")


def fmt_num(x: float, digits: int = 2, *, group: bool = False) -> str:
    """``x`` with ``digits`` decimals (``group``: thousands separated): '0.49', '1,234.50';
    in French '0,49', '1 234,50'."""
    if _locale() == "en":
        return f"{x:,.{digits}f}" if group else f"{x:.{digits}f}"
    from babel.numbers import format_decimal

    return format_decimal(
        _rounded(x, digits), format=_decimal_pattern(digits, group), locale=_locale()
    )


def _rounded(x: float, digits: int):
    """``x`` rounded to ``digits`` decimals as Python's formats round it (the float's exact value,
    halves to even), so that a number reads the same in every language: Babel would round the
    float's shortest decimal form instead (0.505 -> '0,50' where English says '0.51')."""
    import math
    from decimal import ROUND_HALF_EVEN, Decimal

    if not math.isfinite(x):
        return x
    return Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)


def fmt_int(x: float) -> str:
    """A whole number with thousands separated: '5,821'; in French '5 821'."""
    return fmt_num(x, 0, group=True)


def fmt_signed(x: float, digits: int = 2) -> str:
    """A number with its sign always shown: '+0.12', '-0.03'."""
    if _locale() == "en":
        return f"{x:+.{digits}f}"
    s = fmt_num(abs(x), digits)
    return ("-" if x < 0 else "+") + s


def fmt_g(x: float, spec: str = ".3g") -> str:
    """A number in a general format (``spec`` as for ``format``, e.g. '.3g', 'g'), with the
    locale's decimal sign: '1.23', '×1.1'; in French '1,23'."""
    s = format(x, spec)
    if _locale() == "en":
        return s
    from babel.numbers import get_decimal_symbol, get_minus_sign_symbol

    return s.replace(".", get_decimal_symbol(_locale())).replace("-", get_minus_sign_symbol("en"))


def fmt_p(p: float, se: float | None = None) -> str:
    """A probability with two decimals, and its Monte Carlo error: '0.49 ±0.01', '0.49 ±<.01';
    in French '0,49 ±0,01', '0,49 ±<0,01'."""
    if _locale() == "en":
        s = f"{p:.2f}"
        return s if se is None else f"{s} ±{max(se, 0.005):.2f}" if se >= 0.005 else f"{s} ±<.01"
    s = fmt_num(p, 2)
    if se is None:
        return s
    return f"{s} ±{fmt_num(max(se, 0.005), 2)}" if se >= 0.005 else f"{s} ±<{fmt_num(0.01, 2)}"


def list_sep() -> str:
    """The separator between two numbers of a list or an interval: ', ' ; in French ' ; ', since
    the comma is the decimal sign ('[0,31 ; 0,55]')."""
    return ", " if _locale() == "en" else "\u00a0; "


def fmt_interval(low: str, high: str) -> str:
    """An interval from its two ends, already formatted: '[0.31, 0.55]'; in French
    '[0,31 ; 0,55]'."""
    return f"[{low}{list_sep()}{high}]"


def fmt_pct(x: float, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals: 0.123 -> '12.3%'; in French '12,3 %'."""
    if _locale() == "en":
        return f"{x:.{digits}%}"
    from babel.numbers import format_percent

    return format_percent(
        _rounded(x, digits + 2), format=_decimal_pattern(digits, True) + "\u00a0%", locale=_locale()
    )


def fmt_pct_sig(x: float) -> str:
    """A share as a percentage with two significant digits: 0.046 -> '4.6%', 0.5 -> '50%'."""
    v = 100 * x
    if v == 0:
        text = "0"
    elif abs(v) >= 10:
        text = f"{v:.0f}"
    else:
        text = f"{v:.2g}"
    return pct_sign(fmt_g(float(text), "g") if "e" not in text else text)


def pct_sign(number_text: str) -> str:
    """A number already written as a percentage, with the sign: '12' -> '12%' ('12 %')."""
    return f"{number_text}%" if _locale() == "en" else f"{number_text}\u00a0%"


def fmt_money(x: float, currency: str, digits: int = 0) -> str:
    """An amount in ``currency`` (an ISO code such as EUR) with ``digits`` decimals: '€925,772';
    in French '925 772 €'."""
    from babel import Locale
    from babel.numbers import format_currency

    loc = "en_US" if _locale() == "en" else _locale()
    pattern = Locale.parse(loc).currency_formats["standard"].pattern.split(";")[0]
    pattern = pattern.replace("#,##0.00", _decimal_pattern(digits, True))
    return format_currency(x, currency, format=pattern, locale=loc, currency_digits=False)


def is_currency(unit: str | None) -> bool:
    """Whether a value's unit is a currency Babel knows (an ISO 4217 code such as EUR)."""
    if not unit or len(unit) != 3 or not unit.isupper():
        return False
    from babel.numbers import is_currency as known

    return known(unit)


def fmt_date(d: dt.date | str) -> str:
    """A date: '2027-01-06' in English (ISO, as the history writes it); '6 janv. 2027' in
    French."""
    if isinstance(d, str):
        try:
            d = dt.date.fromisoformat(d[:10])
        except ValueError:
            return d
    if _locale() == "en":
        return d.isoformat()
    from babel.dates import format_date

    return format_date(d, format="medium", locale=_locale())


def fmt_label(label: str) -> str:
    """A period label from the history: a date (ISO) in the locale's format, anything else as
    written."""
    if _locale() == "en" or len(label) != 10:
        return label
    try:
        d = dt.date.fromisoformat(label)
    except ValueError:
        return label
    return fmt_date(d)


# ------------------------------------------------------------------------------- period words


def periods(n: int, period: str) -> str:
    """'13 weeks', '1 week' ('13 semaines'); a period word krsim does not know is kept as written
    (with an English plural 's', as before)."""
    forms = {
        "day": lambda: ngettext("{n} day", "{n} days", n),
        "week": lambda: ngettext("{n} week", "{n} weeks", n),
        "month": lambda: ngettext("{n} month", "{n} months", n),
        "quarter": lambda: ngettext("{n} quarter", "{n} quarters", n),
        "year": lambda: ngettext("{n} year", "{n} years", n),
        "period": lambda: ngettext("{n} period", "{n} periods", n),
    }
    if period in forms:
        return forms[period]().format(n=n)
    return f"{n} {period}" if n == 1 else f"{n} {period}s"


def period_noun(period: str, n: int = 1) -> str:
    """The period word alone: 'week', 'weeks' ('semaine', 'semaines')."""
    return periods(n, period).split(" ", 1)[1]


def last_periods(n: int, period: str) -> str:
    """'the last 13 weeks', 'the last week' ('les 13 dernières semaines')."""
    forms = {
        "day": lambda: ngettext("the last day", "the last {n} days", n),
        "week": lambda: ngettext("the last week", "the last {n} weeks", n),
        "month": lambda: ngettext("the last month", "the last {n} months", n),
        "quarter": lambda: ngettext("the last quarter", "the last {n} quarters", n),
        "year": lambda: ngettext("the last year", "the last {n} years", n),
        "period": lambda: ngettext("the last period", "the last {n} periods", n),
    }
    if period in forms:
        return forms[period]().format(n=n)
    if n == 1:
        return _("the last {period}").format(period=period)
    return _("the last {periods}").format(periods=periods(n, period))
