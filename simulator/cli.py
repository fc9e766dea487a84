"""The command line: parses, calls, writes. Heavy libraries are imported only by the commands that
need them, so `krsim check`, `--help` and cache-hit runs start fast."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .i18n import _, language, set_language
from .io import cache
from .io.scenario import InputError


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``krsim COMMAND ...``, one subparser per command."""
    p = argparse.ArgumentParser(
        prog="krsim",
        description="The probability that each key-result target is met, under each option.",
    )
    p.add_argument("--version", action="version", version=f"krsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()
    for add in (
        _add_check,
        _add_schema,
        _add_run,
        _add_report,
        _add_compare,
        _add_track,
        _add_plan,
        _add_backtest,
        _add_portfolio,
        _add_archive,
    ):
        add(sub, common)
    return p


def _common_options() -> argparse.ArgumentParser:
    """The options every command takes (a parent parser): ``-v``."""
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print details on stderr (such as a fit read from the cache), not only progress",
    )
    return c


def _scenario_command(sub, name: str, help: str, common) -> argparse.ArgumentParser:
    """A command whose first argument is the scenario file."""
    c = sub.add_parser(name, help=help, description=help, parents=[common])
    c.add_argument("scenario", type=Path, help="scenario file (YAML)")
    return c


def _output_options(
    c: argparse.ArgumentParser,
    what: str,
    page: str,
    out_help: str = "report directory (default: reports)",
) -> None:
    """--json (the result object), --report (a page) and --out (where)."""
    c.add_argument("--json", action="store_true", help=f"print the {what} object only")
    c.add_argument("--report", action="store_true", help=page)
    c.add_argument("--out", type=Path, default=Path("reports"), help=out_help)


def _model_options(c: argparse.ArgumentParser) -> None:
    """The options of a command that fits the model: draws, seed, cache, language."""
    c.add_argument("--draws", type=int, help="posterior draws per chain (overrides model.draws)")
    c.add_argument("--seed", type=int, help="random seed (overrides the scenario's seed)")
    c.add_argument("--no-cache", action="store_true", help="refit instead of reusing a cached fit")
    c.add_argument(
        "--lang",
        choices=["en", "fr"],
        help="language of the text and pages (default: the scenario's `language`, else en); "
        "JSON stays English",
    )


def _add_check(sub, common) -> None:
    _scenario_command(
        sub, "check", "validate a scenario and its data, without running the model", common
    )


def _add_schema(sub, common) -> None:
    sub.add_parser(
        "schema",
        help="print the JSON Schema of the scenario format (for editors' YAML validation)",
        description="Print the JSON Schema of the scenario format, keys as written in YAML. "
        "Point an editor at it with a first line `# yaml-language-server: $schema=PATH`.",
        parents=[common],
    )


def _add_run(sub, common) -> None:
    run = _scenario_command(
        sub, "run", "fit, simulate the quarter per option, print P(met) per key result", common
    )
    _model_options(run)
    _output_options(
        run,
        "summary.json",
        "also write the decision report (what `krsim report` writes), in the same process",
        "directory to write the report's DIR/<scenario name>/ into (default: reports)",
    )


def _add_report(sub, common) -> None:
    report = _scenario_command(
        sub,
        "report",
        "write the decision report: index.html, report.md with figures, summary.json",
        common,
    )
    _model_options(report)
    report.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="directory to write DIR/<scenario name>/ into (default: reports)",
    )


def _add_compare(sub, common) -> None:
    cmp = _scenario_command(
        sub,
        "compare",
        "experiment results vs the beliefs: lifts, conflict, the updated decision",
        common,
    )
    cmp.add_argument(
        "results",
        type=Path,
        nargs="?",
        help="results CSV: arm, optional period, a count column per stage and segment "
        "(default: the scenario's experiment.data)",
    )
    _model_options(cmp)
    _output_options(cmp, "comparison", "write the decision report with a comparison section")


def _add_track(sub, common) -> None:
    tr = _scenario_command(
        sub,
        "track",
        "the quarter in flight: actuals so far -> the odds of still reaching each target",
        common,
    )
    tr.add_argument(
        "actuals",
        type=Path,
        help="actuals CSV: the history's columns for the first periods of the quarter, labels "
        "continuing the history's",
    )
    tr.add_argument(
        "--option",
        help="the option launched this quarter (default: the option without changes)",
    )
    tr.add_argument(
        "--at-risk-below",
        type=float,
        help="P(met) below which a key result is at risk (default: tracking.at_risk_below, 0.7)",
    )
    tr.add_argument(
        "--off-track-below",
        type=float,
        help="P(met) below which it is off track (default: tracking.off_track_below, 0.3)",
    )
    _model_options(tr)
    _output_options(
        tr,
        "tracking",
        "write the tracking page",
        "directory to write DIR/<scenario name>_track/ into (default: reports)",
    )


def _add_plan(sub, common) -> None:
    pl = _scenario_command(
        sub,
        "plan",
        "is a test worth running before deciding, and how big? EVPI, and per test design the "
        "EVSI, the net value against deciding now, P(decision changes), the assurance",
        common,
    )
    pl.add_argument(
        "--per-arm",
        type=_int_list,
        metavar="N,...",
        help="visitors per arm to evaluate (default: 1/8, 1/4, 1/2, all of the traffic over "
        "each duration, split among the arms)",
    )
    pl.add_argument(
        "--periods",
        type=_int_list,
        metavar="K,...",
        help="test durations in periods, each below the horizon (default: about 1/6, 1/3, 1/2 "
        "of the horizon)",
    )
    pl.add_argument(
        "--arms",
        type=_id_list,
        metavar="A,B,...",
        help="the options every test runs (default: all); the control option is always the "
        "first arm (added if left out); the others are not tested but can still be chosen",
    )
    _model_options(pl)
    _output_options(pl, "plan", "write the decision report with a planning section")


def _add_backtest(sub, common) -> None:
    bt = _scenario_command(
        sub,
        "backtest",
        "would past quarters have been predicted well? Fit before each of the last windows of "
        "history, forecast it, and compare with what happened",
        common,
    )
    bt.add_argument(
        "--windows",
        type=int,
        help="number of past quarter-long windows (default: as many as fit, up to 6)",
    )
    bt.add_argument(
        "--models",
        nargs="?",
        const="all",
        help="backtest candidate `model:` settings on the same windows and rank them "
        "(comma-separated from scenario, default, steady, trend, ar1; alone: all)",
    )
    _model_options(bt)
    bt.add_argument("--json", action="store_true", help="print the backtest as one JSON object")


def _add_portfolio(sub, common) -> None:
    pf = sub.add_parser(
        "portfolio",
        help="every team's key results this week: run or track many scenarios, keep their history",
        description="Run (or track, when a scenario's `tracking:` names its actuals) every "
        "scenario of a folder, list, or glob; store the week's P(met) per key result in a database "
        "and compare with a week ago.",
        parents=[common],
    )
    pf.add_argument("paths", nargs="+", help="a folder of scenario files, files, or globs")
    pf.add_argument("--db", help="database: a file (SQLite; default FOLDER/krsim.sqlite) or a URL")
    pf.add_argument("--workers", type=int, default=1, help="fits run in parallel (default 1)")
    pf.add_argument("--engine", choices=["local", "dask"], default="local", help="where fits run")
    pf.add_argument("--scheduler", help="the Dask scheduler's address (with --engine dask)")
    pf.add_argument("--week", help="the ISO week of this run, e.g. 2026-W49 (default: this week)")
    pf.add_argument("--json", action="store_true", help="print the portfolio object only")
    pf.add_argument("--out", type=Path, help="write the overview and every team's page here")
    pf.add_argument("--draws", type=int, default=None, help="posterior draws per fit")


def _add_archive(sub, common) -> None:
    ar = sub.add_parser(
        "archive",
        help="what past experiments say: the share of changes that do nothing, the size of "
        "those that do, each result shrunk for the winner's curse, the best ship rule",
        description="Fit the distribution of true effects behind an archive of past experiments "
        "(normal, Student-t, spike at zero; compared by LOO) and report what it says.",
        parents=[common],
    )
    ar.add_argument("archive", type=Path, help="archive CSV: experiment, metric, lift, se ...")
    ar.add_argument("--category", help="report on one category (fitted with the whole archive)")
    ar.add_argument("--rules", action="store_true", help="judge the ship rules on the archive")
    ar.add_argument(
        "--threshold",
        type=float,
        default=0.005,
        help="|true effect| below which a change does practically nothing (default 0.005)",
    )
    ar.add_argument("--draws", type=int, help="posterior draws (and tuning steps) per chain")
    ar.add_argument("--seed", type=int, help="random seed (default 2024)")
    ar.add_argument("--no-cache", action="store_true", help="refit instead of reusing a fit")
    _output_options(
        ar,
        "archive",
        "write the archive's page",
        "directory to write DIR/<archive name>_archive/ into (default: reports)",
    )


def _int_list(text: str) -> list[int]:
    try:
        out = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, got {text!r}"
        ) from None
    if not out:
        raise argparse.ArgumentTypeError("expected at least one number")
    return out


def _id_list(text: str) -> list[str]:
    out = [x.strip() for x in text.split(",") if x.strip()]
    if not out:
        raise argparse.ArgumentTypeError("expected at least one option id")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (0 done, 2 invalid input, 1 anything else)."""
    args = build_parser().parse_args(argv)
    fits = cache.disabled() if getattr(args, "no_cache", False) else contextlib.nullcontext()
    with language(None), _progress_to_stderr(args.verbose), fits:
        # a command sets its language once the scenario is read; undone here
        return _dispatch(args)


@contextlib.contextmanager
def _progress_to_stderr(verbose: bool):
    """The package's log records (progress lines; with ``-v`` also the details such as a reused
    compiled model or a fit read from the cache) printed on stderr while a command runs."""
    logger = logging.getLogger("simulator")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command ``args`` names; invalid input is one ``error:`` line per problem on
    stderr and exit code 2."""
    command = {
        "check": _check,
        "schema": _schema,
        "run": _run,
        "backtest": _backtest,
        "portfolio": _portfolio,
        "compare": _compare,
        "report": _report,
        "track": _track,
        "plan": _plan,
        "archive": _archive,
    }[args.command]
    try:
        return command(args)
    except InputError as err:
        for line in err.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `krsim run --json | head`
        sys.stderr.close()
        return 0


def _validate_overrides(args: argparse.Namespace) -> None:
    problems = []
    if getattr(args, "draws", None) is not None and not 50 <= args.draws <= 100_000:
        problems.append(f"--draws: must be between 50 and 100000, got {args.draws}")
    if getattr(args, "seed", None) is not None and args.seed < 0:
        problems.append(f"--seed: must not be negative, got {args.seed}")
    if problems:
        raise InputError(problems)


def _load(path: Path, lang: str | None = None):
    """Load a scenario and its history; say on stderr what was done to the input or looks
    unintended (a sort, ignored columns, empty cells, surprising targets). The command's language
    (``lang``, else the scenario's) applies from the moment the scenario is read: the notes on
    its data, the progress lines and the output are in it (results and JSON stay English)."""
    from .api import load_scenario
    from .engine.decision import targets
    from .engine.render import input_notes
    from .io.data import read_history

    s = load_scenario(path)
    set_language(_lang(lang, s))
    h = read_history(s)
    tg = targets(s, h)
    for line in input_notes(s, h, tg):
        _note(line)
    return s, h


def _lang(lang: str | None, scenario) -> str:
    """The output language: ``--lang``, else the scenario's ``language``, else English."""
    return lang or getattr(scenario, "language", None) or "en"


def _note(line: str) -> None:
    print(_("note: {note}").format(note=line), file=sys.stderr)


def _wrote(paths: list) -> str:
    """'wrote A, B and C' in the current language."""
    names = [str(p) for p in paths]
    return _("wrote {files} and {last}").format(files=", ".join(names[:-1]), last=names[-1])


def _check(args: argparse.Namespace) -> int:
    from .io.data import plural

    s, h = _load(args.scenario, "en")  # a report on the file, in its keys' terms: English
    n_changes = sum(len(o.changes) for o in s.options.values())
    what = f"{plural(len(h), 'period')} of history"
    if h.dates is not None:
        what += f" ({h.dates[0].isoformat()} to {h.dates[-1].isoformat()}, one row per {s.period}"
        if any("not in time order" in n for n in h.notes):
            what += ", sorted oldest first"
        what += ")"
    if h.n_missing:
        what += (
            f", {plural(h.n_missing, 'empty count cell')} (missing data: the model "
            "skips those observations)"
        )
    print(
        f"ok: {args.scenario}: {plural(len(s.funnel), 'stage')}, "
        f"{plural(len(s.segments), 'segment')}, {plural(len(s.options), 'option')} "
        f"({plural(n_changes, 'change')}), {plural(len(s.key_results), 'key result')}, {what}"
    )
    print(f"decision: {_decision_line(s)}")
    return 0


def scenario_schema() -> dict:
    """The JSON Schema of the scenario format, as written in YAML: the models' schema (aliases
    such as ``from``, descriptions), plus the short forms the loader reads before validating: a
    bare number for a prior, and ``baseline:`` as a word, a window or one entry per key result."""
    from .io.scenario import BASELINE_KINDS, CHANGE_KINDS, PRIOR_KINDS, Scenario

    schema = Scenario.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    defs["Change"]["oneOf"] = [{"required": [k]} for k in CHANGE_KINDS]  # exactly one kind
    prior = defs["Prior"]
    prior["oneOf"] = [{"required": [k]} for k in PRIOR_KINDS]
    defs["Prior"] = {
        "title": prior.pop("title"),
        "description": prior.pop("description"),
        "anyOf": [{"type": "number"}, prior],
    }
    end = {"type": ["string", "integer"], "description": "a period label or a date (inclusive)"}
    window = {
        "type": "object",
        "properties": {"from": end, "to": end},
        "required": ["from", "to"],
        "additionalProperties": False,
    }
    kinds = {"type": "string", "enum": list(BASELINE_KINDS)}
    one = {"anyOf": [{"type": "number", "minimum": 0}, kinds, window]}
    by_kr = {"type": "object", "additionalProperties": one, "description": "per key result id"}
    base = schema["properties"]["baseline"]
    base["anyOf"] = [kinds, window, by_kr, {"type": "null"}]
    defs.pop("BaselineSpec", None)

    def editors(node: object) -> None:
        """Maps keyed by ids refuse other keys; pairs in draft-07's form (``items: [a, b]``),
        the draft editors' YAML support reads."""
        if isinstance(node, dict):
            if "patternProperties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            if "prefixItems" in node:
                node["items"] = node.pop("prefixItems")
            for v in node.values():
                editors(v)
        elif isinstance(node, list):
            for v in node:
                editors(v)

    editors(schema)
    schema["title"] = "krsim scenario"
    schema["description"] = "A krsim scenario file (format version 1): docs/reference/scenario.md"
    return {"$schema": "http://json-schema.org/draft-07/schema#", **schema}


def _schema(args: argparse.Namespace) -> int:
    """`krsim schema`: the scenario format's JSON Schema on stdout."""
    json.dump(scenario_schema(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _decision_line(s) -> str:
    """How the scenario decides, in one line: the rule, weights, primary KR, guardrails and
    grading (so the keys that change the answer are seen before a fit)."""
    d = s.decision
    parts = [f"rule {d.rule}"]
    if d.weights:
        parts.append("weights " + ", ".join(f"{k} {w:g}" for k, w in d.weights.items()))
    elif d.rule != "all_met" or len(s.key_results) > 1:
        parts.append("key results weighted equally (set decision.weights to change)")
    primary = next((kr.id for kr in s.key_results if kr.primary), None)
    parts.append(f"primary {primary}" if primary else "no primary key result (priority: primary)")
    guards = [
        f"{kr.id}" + (f" (-{kr.guardrail_drop:.0%})" if kr.guardrail_drop else "")
        for kr in s.key_results
        if kr.guardrail_drop is not None
    ]
    parts.append("guardrails " + ", ".join(guards) if guards else "no guardrails")
    parts.append(f"{d.grading} grading")
    return "; ".join(parts)


def _simulate(args: argparse.Namespace):
    """Load the scenario named on the command line and simulate it with the model overrides."""
    from .api import simulate

    s, h = _load(args.scenario, args.lang)
    return simulate(s, history=h, draws=args.draws, seed=args.seed)


def _run(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    if args.report:
        _check_out(args.out)
    result = _simulate(args)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from .engine.render import localized_summary, text_summary

        with language(_lang(args.lang, result.scenario)):
            summary = localized_summary(result)
            print(text_summary(result.scenario, summary, from_cache=result.fit.from_cache))
    if args.report:  # after the answer: on stderr, so that --json's stdout stays one object
        print(_write_report(result, args.out, args.lang), file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    _check_out(args.out)
    print(_write_report(_simulate(args), args.out, args.lang))
    return 0


def _check_out(out: Path) -> None:
    """Stop before fitting when the report directory ``out`` is a file, or cannot be made in the
    nearest folder that exists."""
    if out.exists() and not out.is_dir():
        raise InputError([f"--out: {out} is a file; give a directory"])
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError([f"--out: {parent} is a file; give a directory"])
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError([f"--out: cannot write into {parent}"])


def _write_report(result, out_dir: Path, lang: str | None) -> str:
    """Write ``result``'s decision report into ``out_dir``; the line that says what was written."""
    from .report import write_report

    lang = _lang(lang, result.scenario)
    try:
        out = write_report(result, out_dir, lang=lang)
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise InputError(
            [f"--out: cannot write the report into {out_dir}: {exc.strerror or exc}"]
        ) from None
    with language(lang):
        return _wrote([out / "index.html", out / "report.md", out / "summary.json"])


def _compare(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    from .model.experiment import read_results, results_path

    s, h = _load(args.scenario, args.lang)
    lang = _lang(args.lang, s)
    exp = read_results(s, results_path(s, args.results))  # invalid input stops here, before fitting
    from .analyses.compare import compare, text_comparison

    result = compare(
        s, exp, history=h, draws=args.draws, seed=args.seed, before=args.report or not args.json
    )
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        with language(lang):
            print(text_comparison(result, from_cache=result.updated.fit.from_cache))
    if args.report:
        from .report.compare_plots import write_comparison_report

        where = write_comparison_report(result, args.out, lang=lang)
        with language(lang):
            print(_wrote([where / "index.html", where / "report.md"]), file=sys.stderr)
    return 0


def _track(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    if args.report:
        _check_out(args.out)
    from .analyses.track import (
        launched_option,
        read_launched_actuals,
        text_track,
        thresholds,
        track,
    )
    from .api import load_scenario
    from .io.data import read_history

    s = load_scenario(args.scenario)
    set_language(_lang(args.lang, s))
    history = read_history(s)
    # invalid input stops here, before fitting: one line per problem
    problems = []
    option = None
    try:
        option = launched_option(s, args.option)
    except InputError as err:
        problems += err.problems
    try:
        thresholds(s, args.at_risk_below, args.off_track_below)
    except InputError as err:
        problems += err.problems
    try:  # the table's own problems too (checked as under the option without changes)
        actuals = read_launched_actuals(s, history, args.actuals, option or s.control_option)
    except InputError as err:
        problems += err.problems
    if problems:
        raise InputError(problems)
    result = track(
        s,
        actuals,
        option=option,
        history=history,
        at_risk_below=args.at_risk_below,
        off_track_below=args.off_track_below,
        draws=args.draws,
        seed=args.seed,
    )
    lang = _lang(args.lang, s)
    with language(lang):
        text = text_track(result, from_cache=result.fit.from_cache)
    return _emit(args, result, text, _track_page, lang)


def _plan(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    from .analyses.plan import check_arms, check_designs
    from .api import load_scenario

    s = load_scenario(args.scenario)
    lang = _lang(args.lang, s)
    set_language(lang)
    _arms, notes, arm_problems = check_arms(s, args.arms)
    problems = check_designs(s, args.per_arm, args.periods) + arm_problems  # before fitting
    if problems:
        raise InputError(problems)
    for note in notes:
        _note(note)
    if args.report:
        _check_out(args.out)
    from .io.data import read_history

    h = read_history(s)
    from .analyses.plan import plan, planning_notes, progress_bar, text_plan

    result = plan(
        s,
        history=h,
        draws=args.draws,
        seed=args.seed,
        per_arm=args.per_arm,
        periods=args.periods,
        arms=args.arms,
        progress=progress_bar(),
    )
    for note in planning_notes(result):  # those found while planning
        _note(note)
    text = text_plan(result)
    return _emit(args, result, text, _plan_page, lang)


def _track_page():
    from .report.track_page import write_track_report

    return write_track_report


def _plan_page():
    from .report.plan_plots import write_plan_report

    return write_plan_report


def _emit(args: argparse.Namespace, result, text: str, page_writer, lang: str = "en") -> int:
    """Print the result (its JSON object under --json, else ``text``) and, under --report, write
    its page with the writer ``page_writer()`` returns (imported only then: matplotlib is slow to
    import): the tail shared by the analyses that have a page of their own."""
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)
    if args.report:
        write_page = page_writer()
        try:
            where = write_page(result, args.out, lang=lang)
        except (FileExistsError, NotADirectoryError, PermissionError) as exc:
            raise InputError(
                [f"--out: cannot write the report into {args.out}: {exc.strerror or exc}"]
            ) from None
        with language(lang):
            print(_wrote([where / "index.html", where / "report.md"]), file=sys.stderr)
    return 0


def _backtest(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    if args.windows is not None and args.windows < 1:
        raise InputError([f"--windows: must be at least 1, got {args.windows}"])
    from .analyses.backtest import backtest, parse_models, plan_windows, render_text

    names = parse_models(args.models) if args.models is not None else None
    s, h = _load(args.scenario, args.lang)
    lang = _lang(args.lang, s)
    plan_windows(len(h), s.horizon, args.windows)  # refuse a short history before fitting
    over = {"draws": args.draws, "seed": args.seed}
    if names is not None:
        from .analyses.backtest import rank_models, ranking_dict, render_ranking

        ranks = rank_models(s, h, names, windows=args.windows, **over)
        if args.json:
            json.dump(ranking_dict(ranks), sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            with language(lang):
                print(render_ranking(ranks))
        return 0
    result = backtest(s, h, windows=args.windows, **over)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        with language(lang):
            print(render_text(result))
    return 0


def _portfolio(args: argparse.Namespace) -> int:
    import re

    _validate_overrides(args)
    problems = []
    if args.workers < 1:
        problems.append(f"--workers: must be at least 1, got {args.workers}")
    if args.week is not None and not re.fullmatch(r"\d{4}-W\d{2}", args.week):
        problems.append(f"--week: write an ISO week such as 2026-W49, got {args.week!r}")
    if args.engine == "dask" and not args.scheduler:
        problems.append("--engine dask: give the scheduler's address with --scheduler")
    if problems:
        raise InputError(problems)
    from .portfolio.run import portfolio, portfolio_json, progress_printer, text_portfolio

    result = portfolio(
        args.paths,
        db=args.db,
        workers=args.workers,
        engine=args.engine,
        scheduler=args.scheduler,
        week=args.week,
        out=args.out,
        draws=args.draws,
        progress=None if args.json else progress_printer(),
    )
    if args.json:
        sys.stdout.write(portfolio_json(result))
    else:
        print(text_portfolio(result))
    if args.out is not None:
        from .portfolio.page import write_overview

        print(f"wrote {write_overview(result, args.out)}", file=sys.stderr)
    return 0


def _archive(args: argparse.Namespace) -> int:
    """`krsim archive`: fit (or load) the archive's effect distribution and report it."""
    _validate_overrides(args)
    if not 0 < args.threshold < 1:
        raise InputError([f"--threshold: must be between 0 and 1, got {args.threshold:g}"])
    if args.report:
        _check_out(args.out)
    from .io.archive_data import category_problem, read_archive
    from .model.archive import Settings, analyse, category_view, text_summary

    arc = read_archive(args.archive)  # invalid input stops here, before fitting
    problem = category_problem(arc, args.category)
    if problem:
        raise InputError([f"--category: {problem}"])
    for note in arc.notes:
        print(f"note: {note}", file=sys.stderr)
    opts: dict = {"threshold": args.threshold}
    if args.draws is not None:
        opts.update(draws=args.draws, tune=args.draws)
    if args.seed is not None:
        opts["seed"] = args.seed
    result = analyse(arc, Settings(**opts))
    summary = result.summary
    if args.category:
        summary = category_view(summary, args.category)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text_summary(summary, rules=args.rules, from_cache=result.from_cache))
    if args.report:
        from .report.archive_page import write_archive_report

        try:
            where = write_archive_report(summary, args.out)
        except (FileExistsError, NotADirectoryError, PermissionError) as exc:
            raise InputError(
                [f"--out: cannot write the report into {args.out}: {exc.strerror or exc}"]
            ) from None
        print(f"wrote {where / 'index.html'} and {where / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
