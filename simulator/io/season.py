"""The calendar terms of the history model: a yearly seasonal profile from the period dates.

A yearly profile is ``K`` pairs of Fourier terms of the date's position in the year, with a
shrinkage prior on their coefficients (``Normal(0, s / k)`` for the k-th harmonic, ``s`` learnt), so
that a year of history that cannot tell a season from drift leaves the profile near flat rather than
inventing one. ``model.seasonality: auto`` turns it on when the history's dates span at least two
years (`MIN_SPAN_DAYS`): with less, a season and a slow drift look the same.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np

YEAR_DAYS = 365.25
MIN_SPAN_DAYS = 2 * 365 - 3  # two years of periods: first date to one period after the last


def fourier(dates, K: int) -> np.ndarray:
    """(periods, 2K): ``sin`` then ``cos`` of ``2 pi k t`` for k = 1..K, t the date in years."""
    t = np.array([d.toordinal() for d in dates], dtype=float) / YEAR_DAYS
    ang = 2 * np.pi * t[:, None] * np.arange(1, K + 1)[None, :]
    return np.concatenate([np.sin(ang), np.cos(ang)], axis=1)


def harmonics(K: int) -> np.ndarray:
    """The harmonic number of each Fourier column (the prior scale divides by it)."""
    return np.tile(np.arange(1, K + 1), 2).astype(float)


def seasonal(setting: str, dates) -> tuple[bool, str]:
    """Whether the yearly profile is in the model, and the sentence that says why."""
    from ..i18n import _, fmt_g

    if setting == "none":
        return False, _("no seasonal profile (model.seasonality: none)")
    if dates is None:
        return False, _("no seasonal profile: the period labels are not dates")
    step = int(np.median(np.diff([d.toordinal() for d in dates]))) if len(dates) > 1 else 0
    span = (dates[-1] - dates[0]).days + step
    if setting == "yearly":
        return (
            True,
            _(
                "a yearly seasonal profile (model.seasonality: yearly, {days} days of history)"
            ).format(days=span),
        )
    if span >= MIN_SPAN_DAYS:
        return True, _("a yearly seasonal profile (the history spans {years} years)").format(
            years=fmt_g(span / YEAR_DAYS, ".1f")
        )
    return False, _(
        "no seasonal profile: the history spans {days} days, too short to tell a yearly season "
        "from drift (model.seasonality: auto needs two years; `yearly` forces it)"
    ).format(days=span)


def is_month_end(d: dt.date) -> bool:
    return d.day == calendar.monthrange(d.year, d.month)[1]


def add_months(d: dt.date, n: int, month_end: bool = False) -> dt.date:
    """``d`` moved ``n`` months on: the same day of the month (the month's last day where it has
    fewer days), or the month's last day when ``month_end`` (a series of month ends)."""
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    last = calendar.monthrange(y, m + 1)[1]
    return dt.date(y, m + 1, last if month_end else min(d.day, last))


def future_dates(dates, H: int) -> list[dt.date]:
    """The ``H`` period dates after the history's, at its own step (days, weeks or months)."""
    last = dates[-1]
    if len(dates) < 2:
        return [last + dt.timedelta(days=7 * (h + 1)) for h in range(H)]
    step = int(np.median(np.diff([d.toordinal() for d in dates])))
    if 28 <= step <= 31:
        ends = all(is_month_end(d) for d in dates)
        return [add_months(last, h + 1, ends) for h in range(H)]
    return [last + dt.timedelta(days=step * (h + 1)) for h in range(H)]


def daily(dates) -> bool:
    """Whether the periods are days (then a day-of-week profile joins the yearly one)."""
    if dates is None or len(dates) < 2:
        return False
    return int(np.median(np.diff([d.toordinal() for d in dates]))) == 1


def weekday(dates) -> np.ndarray:
    """(periods, 6): the day of the week in sum-to-zero coding (Monday..Saturday columns, Sunday
    the negative of their sum), so the effects average to zero over a week."""
    wd = np.array([d.weekday() for d in dates])
    X = np.zeros((len(wd), 6))
    for j in range(6):
        X[wd == j, j] = 1.0
    X[wd == 6, :] = -1.0
    return X


def profile_is_clear(z: np.ndarray, X: np.ndarray, kk: np.ndarray) -> np.ndarray:
    """Per series (rows of ``z``, a log count or empirical logit rate per period, NaN where
    unobserved): whether the data pin the yearly profile down, so that its coefficients sample
    best centred, ``Normal(0, s/k)`` directly; otherwise non-centred, ``s z / k``. (Centred, a
    profile near flat makes a funnel between ``s`` and the coefficients, in which the sampler
    diverges; non-centred, a clear profile makes the mirror-image ridge.)

    The rule of `model.centred_nodes`, for the profile: least squares of the series on a level
    and the Fourier terms ``X``; with the coefficients scaled by their harmonic ``kk``, clear when
    their mean square over their mean sampling variance exceeds what a flat profile gives in
    1 series of 1,000 (its 99.9% point, chi-square on the number of coefficients over that
    number: 3.3 for 4 Fourier pairs). A false "clear" costs more than a missed one: centred, a
    flat profile diverges in most fits; non-centred, a clear one in some."""
    from scipy import stats

    z = np.atleast_2d(np.asarray(z, dtype=float))
    limit = stats.chi2.ppf(0.999, X.shape[1]) / X.shape[1]
    out = np.zeros(z.shape[0], dtype=bool)
    for i, row in enumerate(z):
        seen = np.isfinite(row)
        A = np.column_stack([np.ones(seen.sum()), X[seen]])
        if seen.sum() <= A.shape[1] + 2:
            continue
        coef, *_ = np.linalg.lstsq(A, row[seen], rcond=None)
        resid = row[seen] - A @ coef
        s2 = resid @ resid / (seen.sum() - A.shape[1])
        var = s2 * np.diag(np.linalg.pinv(A.T @ A))[1:] * kk**2
        b2 = (coef[1:] * kk) ** 2
        out[i] = b2.mean() > limit * var.mean()
    return out
