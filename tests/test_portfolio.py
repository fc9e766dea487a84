"""`krsim portfolio`: the database after weekly runs (rows, idempotence, a week ago, no partial
week after an interruption), a broken scenario listed while the others are done, and the same
numbers from local worker processes and from a local Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.io.scenario import InputError
from simulator.portfolio import run as pf

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def result(name: str, p: dict[str, float], status: str = "ok") -> dict:
    """A scenario's result as `run_one` returns it, with given P(met) per KR."""
    if status == "error":
        return {"name": name, "status": "error", "error": f"{name}.yaml: broken", "key_results": {}}
    return {
        "name": name,
        "status": "ok",
        "error": None,
        "title": name.title(),
        "kind": "run",
        "option": "keep",
        "option_label": "Keep",
        "periods_done": 0,
        "horizon": 4,
        "digest": "d" * 64,
        "warnings": [],
        "page": None,
        "key_results": {
            k: {
                "p_met": v,
                "p_met_se": 0.01,
                "median": 100.0,
                "interval80": [90.0, 110.0],
                "status": "on_track" if v >= 0.7 else "at_risk" if v >= 0.3 else "off_track",
                "label": k,
                "objective": "",
            }
            for k, v in p.items()
        },
    }


def week(store: pf.Store, w: str, results: list[dict], run: str | None = None) -> None:
    run = run or f"run-{w}"
    for r in results:
        store.stage(run, w, r)
    store.commit_week(run, w)


def test_two_weekly_runs_rerun_and_a_week_ago(tmp_path):
    store = pf.Store(tmp_path / "k.sqlite")
    week(store, "2026-W48", [result("a", {"x": 0.4, "y": 0.9}), result("b", {"z": 0.2})])
    week(store, "2026-W49", [result("a", {"x": 0.6, "y": 0.8}), result("b", {}, "error")])
    assert store.count("results") == 5 and store.count("errors") == 1
    assert store.week("2026-W48") == {"a": {"x": 0.4, "y": 0.9}, "b": {"z": 0.2}}
    # the same week again replaces its rows: still 5, with the new numbers
    week(store, "2026-W49", [result("a", {"x": 0.65, "y": 0.8}), result("b", {"z": 0.1})], "again")
    assert store.count("results") == 6 and store.count("errors") == 0
    assert store.week("2026-W49") == {"a": {"x": 0.65, "y": 0.8}, "b": {"z": 0.1}}
    assert store.series("a", "x") == [("2026-W48", 0.4), ("2026-W49", 0.65)]
    assert store.count("staging_results") == 0
    store.close()
    # a new connection finds the schema at its version and the data in place
    again = pf.Store(tmp_path / "k.sqlite")
    assert again.weeks() == ["2026-W48", "2026-W49"]


def test_interrupted_run_leaves_no_partial_week(tmp_path, monkeypatch):
    store = pf.Store(tmp_path / "k.sqlite")
    week(store, "2026-W48", [result("a", {"x": 0.4}), result("b", {"z": 0.2})])
    store.close()
    sc = tmp_path / "sc"
    sc.mkdir()
    for n in ("a", "b"):
        (sc / f"{n}.yaml").write_text("title: t\n")

    def fake(path, out=None, draws=None, compiledir=None):
        if Path(path).stem == "b":
            raise KeyboardInterrupt  # Ctrl-C while the second scenario runs
        return result("a", {"x": 0.9})

    monkeypatch.setattr(pf, "run_one", fake)
    with pytest.raises(KeyboardInterrupt):
        pf.portfolio([sc], db=tmp_path / "k.sqlite", week="2026-W48")
    store = pf.Store(tmp_path / "k.sqlite")
    assert store.week("2026-W48") == {"a": {"x": 0.4}, "b": {"z": 0.2}}  # as before
    assert store.count("staging_results") == 0


def test_sqlalchemy_url_is_the_same_store(tmp_path):
    pytest.importorskip("sqlalchemy")
    store = pf.Store(f"sqlite:///{tmp_path / 'k.sqlite'}")
    week(store, "2026-W48", [result("a", {"x": 0.4})])
    week(store, "2026-W48", [result("a", {"x": 0.5})], "again")
    assert store.week("2026-W48") == {"a": {"x": 0.5}} and store.count("results") == 1


@pytest.fixture(scope="module")
def small_portfolio(tmp_path_factory):
    """Two copies of the small test funnel (one tracked: none of its actuals yet) and a broken
    scenario, with few draws."""
    d = tmp_path_factory.mktemp("portfolio")
    text = (
        (FIXTURES / "base.yaml")
        .read_text()
        .replace("history: history.csv", f"history: {FIXTURES / 'history.csv'}")
    )
    assert "model:" not in text
    # constant levels, as in test_compiled.py: the same structure, compiled once for both files
    text += "model: {drift: none}\n"
    (d / "alpha.yaml").write_text(text)
    (d / "beta.yaml").write_text(
        text.replace("seed:", "tracking:\n  actuals: none.csv\nseed:", 1)
        if "seed:" in text
        else text + "\ntracking:\n  actuals: none.csv\n"
    )
    (d / "none.csv").write_text((FIXTURES / "actuals" / "none_yet.csv").read_text())
    (d / "broken.yaml").write_text(text.replace("key_results:", "key_results_typo:"))
    return d


def test_a_broken_scenario_is_listed_and_the_others_done(small_portfolio, tmp_path, capsys):
    db = tmp_path / "k.sqlite"
    code = main(
        [
            "portfolio",
            str(small_portfolio),
            "--db",
            str(db),
            "--week",
            "2026-W49",
            "--json",
            "--draws",
            "200",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    sc = out["scenarios"]
    assert set(sc) == {"alpha", "beta", "broken"}
    assert sc["broken"]["status"] == "error" and "broken.yaml" in sc["broken"]["error"]
    assert "\n" not in sc["broken"]["error"]
    assert sc["alpha"]["status"] == "ok" and sc["alpha"]["kind"] == "run"
    assert sc["beta"]["kind"] == "track"  # actuals named (none yet: k = 0 is run's numbers)
    assert sc["beta"]["option"] == "status_quo"  # the launched option: the current product
    for v in sc["alpha"]["key_results"].values():
        assert 0 <= v["p_met"] <= 1 and v["status"] in ("on_track", "at_risk", "off_track")
        assert v["p_met_week_ago"] is None
    page = (tmp_path / "out" / "index.html").read_text()
    assert "broken" in page and "alpha/index.html" in page
    store = pf.Store(db)
    assert store.count("errors", "2026-W49") == 1
    assert store.count("results", "2026-W49") == 2 * len(sc["alpha"]["key_results"])
    # next week: "a week ago" comes from the database
    pf_next = pf.portfolio([small_portfolio], db=db, week="2026-W50", draws=200)
    assert pf_next.previous_week == "2026-W49"
    alpha = pf_next.to_dict()["scenarios"]["alpha"]["key_results"]
    assert all(v["p_met_week_ago"] == v["p_met"] for v in alpha.values())  # same fit, same seed


def test_local_workers_and_dask_give_the_local_numbers(small_portfolio, tmp_path):
    distributed = pytest.importorskip("distributed")
    files = [small_portfolio / "alpha.yaml", small_portfolio / "beta.yaml"]
    one = pf.portfolio(files, db=tmp_path / "1.sqlite", week="2026-W49", draws=200)
    two = pf.portfolio(files, db=tmp_path / "2.sqlite", week="2026-W49", draws=200, workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        dask = pf.portfolio(
            files,
            db=tmp_path / "3.sqlite",
            week="2026-W49",
            draws=200,
            engine="dask",
            scheduler=cluster.scheduler_address,
        )
    p = {n: {k: v["p_met"] for k, v in r["key_results"].items()} for n, r in one.results.items()}
    for other in (two, dask):
        assert {
            n: {k: v["p_met"] for k, v in r["key_results"].items()}
            for n, r in other.results.items()
        } == p
    assert {r["pid"] for r in dask.results.values()}.isdisjoint(
        {r["pid"] for r in one.results.values()}
    )


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["portfolio", str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["portfolio", str(tmp_path), "--week", "49"]) == 2
    assert "--week: write an ISO week" in capsys.readouterr().err
    with pytest.raises(InputError):
        pf.discover([tmp_path])  # an empty folder


def test_a_wrong_database_or_scheduler_is_one_line(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("title: t\n")
    for args, start in (
        (["--db", "foo://x"], "error: --db: cannot open foo://x: NoSuchModuleError"),
        (["--db", str(tmp_path / "a.yaml" / "k.sqlite")], f"error: --db: cannot open {tmp_path}"),
        (
            ["--engine", "dask", "--scheduler", "nonsense://x", "--db", str(tmp_path / "k.db")],
            "error: --scheduler: cannot reach the Dask scheduler at nonsense://x:",
        ),
    ):
        if args[1] == "foo://x":
            pytest.importorskip("sqlalchemy")
        if args[0] == "--engine":
            pytest.importorskip("distributed")
        assert main(["portfolio", str(tmp_path), "--week", "2026-W49", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(start), err
