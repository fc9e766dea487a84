"""French output: every message has a translation, numbers and dates in the French formats, and
the French pages have no English left (the same scan finds English on the English pages)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re

import pytest
from conftest import ROOT, load_script

from simulator import i18n
from simulator.i18n import (
    fmt_date,
    fmt_int,
    fmt_money,
    fmt_num,
    fmt_p,
    fmt_pct,
    language,
)

NNBSP, NBSP = "\u202f", "\u00a0"
PLACEHOLDER = re.compile(r"\{(\w*)\}")

# English words that would show an untranslated sentence, heading, label or legend ("option" and
# "total" are French words too)
ENGLISH = [
    "the", "and", "probability", "target", "targets", "met", "weeks",
    "baseline", "expected", "grade", "recommended", "draws", "interval", "which", "with", "of",
    "below", "above", "each", "every", "quarter", "simulated", "sampler", "warning", "what",
    "how", "per", "now", "before", "rate", "share", "belief", "key", "result", "results",
]  # fmt: skip


def _update_catalog():
    return load_script("update_catalog")


def _forms(x) -> list[str]:
    return list(x) if isinstance(x, tuple | list) else [x]


def test_every_message_has_a_french_translation_with_the_same_placeholders():
    from babel.messages.pofile import read_po

    template = _update_catalog().extract()
    with i18n.catalog_path("fr").open("rb") as fh:
        po = read_po(fh, locale="fr")
    assert len(template) > 300  # the extraction itself works
    problems = []
    for m in template:
        if not m.id:
            continue
        t = po.get(m.id, context=m.context)
        if t is None or not all(_forms(t.string)):
            problems.append(f"no translation: {m.id!r}")
            continue
        ids = _forms(m.id)
        for i, text in enumerate(_forms(t.string)):
            want = set(PLACEHOLDER.findall(ids[min(i, len(ids) - 1)]))
            if i == 0 and len(ids) > 1:  # French's first form also covers 0
                want -= {"n"}
            got = set(PLACEHOLDER.findall(text))
            if got - set(PLACEHOLDER.findall(" ".join(ids))) or want - got:
                problems.append(f"placeholders differ: {m.id!r} -> {text!r}")
    stale = sorted(str(m.id) for m in po if m.id and template.get(m.id, context=m.context) is None)
    assert not problems, "\n".join(problems)
    assert not stale, f"not in the source any more (run scripts/update_catalog.py): {stale}"


def test_french_number_and_date_formats():
    with language("fr"):
        assert fmt_int(5821) == f"5{NNBSP}821"
        assert fmt_p(0.49) == "0,49"
        assert fmt_p(0.49, 0.012) == "0,49 ±0,01"
        assert fmt_p(0.49, 0.001) == "0,49 ±<0,01"
        assert fmt_pct(0.123) == f"12,3{NBSP}%"
        assert fmt_money(925772, "EUR") == f"925{NNBSP}772{NBSP}€"
        assert fmt_date(dt.date(2027, 1, 6)) == "6 janv. 2027"
        assert fmt_num(1234.5, 2, group=True) == f"1{NNBSP}234,50"
        assert i18n._("Figures") == "Graphiques"
        assert i18n.periods(13, "week") == "13 semaines"
    # English keeps the formats the f-strings gave
    assert (fmt_int(5821), fmt_p(0.49, 0.012), fmt_p(0.49, 0.001)) == (
        "5,821",
        "0.49 ±0.01",
        "0.49 ±<.01",
    )
    assert (fmt_pct(0.123), fmt_date(dt.date(2027, 1, 6))) == ("12.3%", "2027-01-06")
    assert i18n._("Figures") == "Figures" and i18n.get_language() == "en"


def _visible(page: str) -> str:
    """The text a reader sees: no tags, styles, embedded images or file names in <code>."""
    page = re.sub(r"<(style|code|title)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    return html.unescape(page)


def _user_words(scenario) -> list[str]:
    """What the scenario's author wrote (and ids): left out of the scan."""
    out = [scenario.title, (scenario.description or "").strip()]
    out += [st.label or "" for st in scenario.funnel.values()]
    out += [sg.label or "" for sg in scenario.segments.values()]
    out += [o.label or "" for o in scenario.options.values()]
    out += [o.description or "" for o in scenario.options.values()]
    out += [kr.label or "" for kr in scenario.key_results]
    return sorted((" ".join(w.split()) for w in out if w), key=len, reverse=True)


def _english_left(text: str, scenario) -> set[str]:
    text = " ".join(text.replace("\\", "").split())  # Markdown's escapes too
    for w in _user_words(scenario):
        text = text.replace(w, " ")
    text = re.sub(r"\b\w+(\.\w+)+\b|\b\w+_\w+\b|--\w[\w-]*", " ", text)  # ids, names, flags
    found = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
    return found & set(ENGLISH)


@pytest.fixture(scope="module")
def french(seed_result):
    """The seed result with a scenario copy whose `language` is fr."""
    s = seed_result.scenario
    fr = s.model_copy(update={"language": "fr"})
    fr._source, fr._text = s._source, s._text
    return dataclasses.replace(seed_result, scenario=fr)


def test_the_french_decision_report_has_no_english_left(french, seed_result, tmp_path, monkeypatch):
    import matplotlib.text

    from simulator.report import context as report_context
    from simulator.report import write_report
    from simulator.report.html import render_html

    drawn: list[str] = []
    png = report_context.figure_png

    def capture(fig):
        out = png(fig)  # drawn: the tick labels exist now
        drawn.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        return out

    monkeypatch.setattr(report_context, "figure_png", capture)
    d = write_report(french, tmp_path)  # the scenario's language
    page = (d / "index.html").read_text()
    assert '<html lang="fr">' in page
    s = french.scenario
    assert _english_left(_visible(page), s) == set()
    assert _english_left((d / "report.md").read_text(), s) == set()
    assert _english_left("\n".join(drawn), s) == set()
    assert "P(objectif atteint)" not in page and "Probabilité d’atteindre l’objectif" in page
    # the JSON is the English, numeric interface
    assert (d / "summary.json").read_text() == _json(seed_result)
    # the same scan finds English on the English page and figures
    with language("en"):
        ctx = report_context.context(seed_result, [])
        english = _visible(render_html(ctx))
        from simulator.report import plots

        fig, _axes = plots.kr_distribution(
            s, seed_result.evaluation, seed_result.targets, s.key_results[0].id
        )
        fig.canvas.draw()
        labels = "\n".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))
    assert {"the", "and", "target", "baseline", "expected", "grade", "with", "of"} <= (
        _english_left(english, s)
    )
    assert {"baseline", "target", "met"} <= _english_left(labels, s)


def _json(result) -> str:
    from simulator.report.writer import summary_json

    return summary_json(result)


def test_the_french_tracking_page_and_terminal_text_have_no_english_left(
    french, seed_result, tmp_path
):
    from simulator.analyses.track import text_track, track
    from simulator.engine.render import localized_summary, text_summary
    from simulator.report.track_page import write_track_report

    s = french.scenario
    result = track(s, None, history=french.history)  # no actuals yet: the run's cached fit
    d = write_track_report(result, tmp_path)  # the scenario's language
    page = (d / "index.html").read_text()
    assert '<html lang="fr">' in page
    assert _english_left(_visible(page), s) == set()
    assert _english_left((d / "report.md").read_text(), s) == set()
    data = (d / "track.json").read_text()  # the JSON stays English
    assert "P(all met)" in data and "«" not in data and "atteint" not in data
    with language("fr"):
        run_text = text_summary(s, localized_summary(french))
        track_text = text_track(result)
    assert _english_left(run_text, s) == set()
    assert _english_left(track_text, s) == set()
    assert "P(objectif atteint)" in run_text and "Réponse" in run_text
    with language("en"):
        english = text_summary(s, localized_summary(seed_result)) + text_track(result)
    assert {"the", "target", "baseline", "of", "met", "weeks"} <= _english_left(english, s)


# ------------------------------------------------- compare, plan, backtest: from computed results


def _drawn_text(fig) -> str:
    """Every text of a figure, drawn first so that its tick labels exist."""
    import matplotlib.pyplot as plt
    import matplotlib.text

    fig.canvas.draw()
    out = "\n".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))
    plt.close(fig)
    return out


@pytest.fixture(scope="module")
def comparison(seed_result):
    """A comparison of the seed scenario with its example experiment, from the session's fit (the
    beliefs before stand for the fit after: no second model is fitted); one stage's conflict is
    flagged so that its sentence is written too."""
    from simulator.analyses import compare as cp
    from simulator.model import experiment as ex

    s = seed_result.scenario
    exp = ex.read_results(s, ex.results_path(s, None))
    changes = cp.change_table(s, seed_result.fit)
    conflicts = cp.conflict(s, exp, seed_result.fit, s.seed, sims=2000)
    arm = next(a for a, rows in conflicts.items() if rows)
    first = dataclasses.replace(conflicts[arm][0], flag=True, p_adjusted=0.01)
    conflicts[arm] = [first, *conflicts[arm][1:]]
    sentences = {a: cp.conflict_sentence(s, a, rows, changes) for a, rows in conflicts.items()}
    lifts = cp.lifts(s, exp, s.seed)
    srm = cp.sample_ratio(s, exp)
    return cp.ComparisonResult(
        s, exp, srm, lifts, changes, conflicts, sentences, seed_result, seed_result
    )


def test_the_french_comparison_has_no_english_left(comparison):
    from simulator.analyses.compare import text_comparison
    from simulator.report import compare_plots as cpl

    s = comparison.scenario
    with language("fr"):
        text = text_comparison(comparison)
        section = cpl.comparison_section(comparison)  # its text, tables, figures and captions
        drawn = "\n".join(
            _drawn_text(f(comparison)[0]) for f in (cpl.beliefs, cpl.lift_forest, cpl.key_results)
        )
    page = _visible(section.html)
    for words in (text, page, section.markdown, drawn):
        assert _english_left(words, s) == set(), words
    assert "Conflit entre a priori et données" in text and "CONFLIT" in text
    assert "contredisent l’hypothèse" in page and "contredisent l’hypothèse" in section.markdown
    # the result's own sentences stay English, and the English text is as before
    assert "the data contradict the belief about" in " ".join(comparison.sentences.values())
    english = text_comparison(comparison)
    assert "Prior–data conflict" in english and "P(better)" in english
    assert {"the", "of", "and", "before", "expected"} & _english_left(english, s)


@pytest.fixture(scope="module")
def plans():
    """A plan with a recommended test (the conjugate case of tests/test_plan.py, known fit: no
    sampling), and the same plan made a roll-out and a noisy decide-now, for every sentence."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_plan import conjugate, make_plan

    s, fit, h = conjugate()
    tested = make_plan(s, fit=fit, history=h, per_arm=[50, 800], periods=[2], replicates=1)
    d = dataclasses.replace(
        tested.designs[0],
        exposure_value=0.010,
        exposure_value_se=0.002,
        learning_value=-0.001,
        learning_value_se=0.002,
        exposure_then="new",
        decision_changes_worth_nothing=True,
    )
    rolled = dataclasses.replace(tested, designs=[d], recommended=None, roll_out="new")
    noisy = dataclasses.replace(rolled, roll_out=None, evpi=0.0, evpi_se=0.0)
    return tested, rolled, noisy


def test_the_french_plan_has_no_english_left(plans, tmp_path):
    from simulator.analyses.plan import planning_notes, recommendation_sentence, text_plan
    from simulator.report import plan_plots

    tested, rolled, noisy = plans
    s = tested.scenario
    with language("fr"):
        texts = [text_plan(p) for p in plans]
        texts += [recommendation_sentence(p, p.designs[0]) for p in plans]
        for p in plans:  # the page's section: its text, table, note, figure caption
            section = plan_plots.plan_section(p)
            texts += [_visible(section.html), section.markdown]
        texts.append(_drawn_text(plan_plots.value_curves(tested)[0]))
        texts += planning_notes(tested)
    for words in texts:
        assert _english_left(words, s) == set(), words
    assert "Recommandé" in texts[0] and "Pas besoin de test" in texts[1]
    assert "Décidez maintenant" in texts[2]
    # the page: the decision report with its planning section, in French; the plan's JSON English
    d = plan_plots.write_plan_report(tested, tmp_path, lang="fr")
    page = (d / "index.html").read_text()
    assert '<html lang="fr">' in page and "Un test en vaut-il la peine" in page
    assert _english_left(_visible(page), s) == set()
    assert _english_left((d / "report.md").read_text(), s) == set()
    plan_json = (d / "plan.json").read_text()
    assert "Deciding now picks" in plan_json and "Décider" not in plan_json
    assert tested.sentence.startswith("Deciding now picks")  # the result's own: English


def test_the_french_backtest_has_no_english_left(seed_result):
    import numpy as np

    from simulator.analyses.backtest import (
        BacktestResult,
        KRCheck,
        ModelRank,
        WindowCheck,
        advice,
        render_ranking,
        render_text,
        tally,
    )

    s = seed_result.scenario
    q = [np.array([0.8, 0.2])]
    checks = {
        kr.id: KRCheck(
            actual=1.0,
            median=1.1,
            interval80=(1.05, 1.2),
            percentile=0.01,
            inside80=False,
            p_outside=0.2,
            crps=0.1,
        )  # fmt: skip
        for kr in s.key_results
    }
    sampler = {"rhat_max": 1.05, "ess_bulk_min": 90, "divergences": 3}
    windows = [
        WindowCheck(
            start=a,
            end=b,
            train_periods=20,
            key_results=checks,
            diagnostics=sampler,
            miss_distribution=np.array([0.5, 0.3, 0.2]),
            draws=600,
        )  # fmt: skip
        for a, b in (("2025-01-06", "2025-03-31"), ("2025-04-07", "2025-06-30"))
    ]
    per_kr = {k: tally([c, c], q * 2, "week", one_kr=True) for k, c in checks.items()}
    overall = tally([c for w in windows for c in w.key_results.values()], [
        w.miss_distribution for w in windows], "week", one_kr=False)  # fmt: skip
    result = BacktestResult(
        scenario=s, option=s.control_option, draws=600, windows=windows, key_results=per_kr,
        overall=overall,
        advice=advice(s, overall), warnings=["English warnings of the result"],
    )  # fmt: skip
    assert overall.calibration == "overconfident" and result.advice
    ranks = [ModelRank(name=n, settings={}, result=result) for n in ("scenario", "steady")]
    with language("fr"):
        text = render_text(result)
        ranking = render_ranking(ranks)
    assert _english_left(text, s) == set(), text
    assert _english_left(ranking, s) == set(), ranking
    assert "Verdict\u00a0: le modèle était trop sûr de lui" in text and "6 janv. 2025" in text
    assert "avertissement" in text and "English warnings" not in text
    assert overall.verdict.startswith("the model was overconfident")  # the JSON's: English
    english = render_text(result)
    assert "English warnings of the result" in english
    assert {"the", "of", "quarter", "and"} <= _english_left(english, s)
