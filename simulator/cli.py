"""The command line: parses, calls, writes. Heavy libraries are imported only by the commands that
need them, so `krsim check`, `--help` and cache-hit runs start fast."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .scenario import InputError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="krsim",
        description="The probability that each key-result target is met, under each option.",
    )
    p.add_argument("--version", action="version", version=f"krsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def scenario_cmd(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("scenario", type=Path, help="scenario file (YAML)")
        return c

    def output_opts(
        c: argparse.ArgumentParser,
        what: str,
        page: str,
        out_help: str = "report directory (default: reports)",
    ) -> None:
        """--json (the result object), --report (a page) and --out (where)."""
        c.add_argument("--json", action="store_true", help=f"print the {what} object only")
        c.add_argument("--report", action="store_true", help=page)
        c.add_argument("--out", type=Path, default=Path("reports"), help=out_help)

    def model_opts(c: argparse.ArgumentParser) -> None:
        c.add_argument(
            "--draws", type=int, help="posterior draws per chain (overrides model.draws)"
        )
        c.add_argument("--seed", type=int, help="random seed (overrides the scenario's seed)")
        c.add_argument(
            "--no-cache", action="store_true", help="refit instead of reusing a cached fit"
        )

    scenario_cmd("check", "validate a scenario and its data, without running the model")
    run = scenario_cmd("run", "fit, simulate the quarter per option, print P(met) per key result")
    model_opts(run)
    run.add_argument("--json", action="store_true", help="print the summary.json object only")
    report = scenario_cmd(
        "report", "write the decision report: index.html, report.md with figures, summary.json"
    )
    model_opts(report)
    report.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="directory to write DIR/<scenario name>/ into (default: reports)",
    )
    cmp = scenario_cmd(
        "compare", "experiment results vs the beliefs: lifts, conflict, the updated decision"
    )
    cmp.add_argument(
        "results",
        type=Path,
        nargs="?",
        help="results CSV: arm, optional period, a count column per stage and segment "
        "(default: the scenario's experiment.data)",
    )
    model_opts(cmp)
    output_opts(cmp, "comparison", "write the decision report with a comparison section")
    tr = scenario_cmd(
        "track",
        "the quarter in flight: actuals so far -> the odds of still reaching each target",
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
    model_opts(tr)
    output_opts(
        tr,
        "tracking",
        "write the tracking page",
        "directory to write DIR/<scenario name>_track/ into (default: reports)",
    )
    pl = scenario_cmd(
        "plan",
        "is a test worth running before deciding, and how big? EVPI, and per test design the "
        "EVSI, the net value against deciding now, P(decision changes), the assurance",
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
    model_opts(pl)
    output_opts(pl, "plan", "write the decision report with a planning section")
    bt = scenario_cmd(
        "backtest",
        "would past quarters have been predicted well? Fit before each of the last windows of "
        "history, forecast it, and compare with what happened",
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
    model_opts(bt)
    bt.add_argument("--json", action="store_true", help="print the backtest as one JSON object")
    return p


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
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "run":
            return _run(args)
        if args.command == "backtest":
            return _backtest(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "report":
            return _report(args)
        if args.command == "track":
            return _track(args)
        if args.command == "plan":
            return _plan(args)
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
    return 1


def _validate_overrides(args: argparse.Namespace) -> None:
    problems = []
    if getattr(args, "draws", None) is not None and not 50 <= args.draws <= 100_000:
        problems.append(f"--draws: must be between 50 and 100000, got {args.draws}")
    if getattr(args, "seed", None) is not None and args.seed < 0:
        problems.append(f"--seed: must not be negative, got {args.seed}")
    if problems:
        raise InputError(problems)


def _load(path: Path):
    """Load a scenario and its history; say on stderr what was done to the input or looks
    unintended (a sort, ignored columns, empty cells, surprising targets)."""
    from .api import load_scenario
    from .data import read_history
    from .decision import targets
    from .render import input_notes

    s = load_scenario(path)
    h = read_history(s)
    for line in input_notes(s, h, targets(s, h)):
        print(f"note: {line}", file=sys.stderr)
    return s, h


def _check(args: argparse.Namespace) -> int:
    from .data import plural

    s, h = _load(args.scenario)
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
    from . import cache
    from .api import simulate

    if args.no_cache:
        cache.disable()
    s, h = _load(args.scenario)
    return simulate(s, history=h, draws=args.draws, seed=args.seed)


def _run(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    result = _simulate(args)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from .render import text_summary

        print(text_summary(result.scenario, result.to_dict(), from_cache=result.fit.from_cache))
    return 0


def _report(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    if args.out.exists() and not args.out.is_dir():
        raise InputError([f"--out: {args.out} is a file; give a directory"])
    result = _simulate(args)
    from .report import write_report

    try:
        out = write_report(result, args.out)
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise InputError(
            [f"--out: cannot write the report into {args.out}: {exc.strerror or exc}"]
        ) from None
    print(f"wrote {out / 'index.html'}, {out / 'report.md'} and {out / 'summary.json'}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    from . import cache
    from .experiment import read_results, results_path

    if args.no_cache:
        cache.disable()
    s, h = _load(args.scenario)
    exp = read_results(s, results_path(s, args.results))  # invalid input stops here, before fitting
    from .compare import compare, text_comparison

    result = compare(
        s, exp, history=h, draws=args.draws, seed=args.seed, before=args.report or not args.json
    )
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text_comparison(result, from_cache=result.updated.fit.from_cache))
    if args.report:
        from .report.compare_plots import write_comparison_report

        where = write_comparison_report(result, args.out)
        print(f"wrote {where / 'index.html'} and {where / 'report.md'}", file=sys.stderr)
    return 0


def _track(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    if args.report and args.out.exists() and not args.out.is_dir():
        raise InputError([f"--out: {args.out} is a file; give a directory"])
    from . import cache
    from .api import load_scenario
    from .track import launched_option, read_launched_actuals, text_track, thresholds, track

    if args.no_cache:
        cache.disable()
    from .data import read_history

    s = load_scenario(args.scenario)
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
    text = text_track(result, from_cache=result.fit.from_cache)
    return _emit(args, result, text, _track_page)


def _plan(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    from . import cache
    from .api import load_scenario
    from .plan import check_arms, check_designs

    if args.no_cache:
        cache.disable()
    s = load_scenario(args.scenario)
    _, notes, arm_problems = check_arms(s, args.arms)
    problems = check_designs(s, args.per_arm, args.periods) + arm_problems  # before fitting
    if problems:
        raise InputError(problems)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.report and args.out.exists() and not args.out.is_dir():
        raise InputError([f"--out: {args.out} is a file; give a directory"])
    from .data import read_history

    h = read_history(s)
    if args.draws is not None or args.seed is not None:
        s = s.with_overrides(seed=args.seed, draws=args.draws)
    from .plan import plan, progress_bar, text_plan

    result = plan(
        s,
        history=h,
        per_arm=args.per_arm,
        periods=args.periods,
        arms=args.arms,
        progress=progress_bar(),
    )
    for note in result.notes[len(notes) :]:  # those found while planning
        print(f"note: {note}", file=sys.stderr)
    return _emit(args, result, text_plan(result), _plan_page)


def _track_page():
    from .report.track_page import write_track_report

    return write_track_report


def _plan_page():
    from .report.plan_plots import write_plan_report

    return write_plan_report


def _emit(args: argparse.Namespace, result, text: str, page_writer) -> int:
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
            where = write_page(result, args.out)
        except (FileExistsError, NotADirectoryError, PermissionError) as exc:
            raise InputError(
                [f"--out: cannot write the report into {args.out}: {exc.strerror or exc}"]
            ) from None
        print(f"wrote {where / 'index.html'} and {where / 'report.md'}", file=sys.stderr)
    return 0


def _backtest(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    if args.windows is not None and args.windows < 1:
        raise InputError([f"--windows: must be at least 1, got {args.windows}"])
    from . import cache
    from .backtest import backtest, parse_models, plan_windows, render_text

    names = parse_models(args.models) if args.models is not None else None
    if args.no_cache:
        cache.disable()
    s, h = _load(args.scenario)
    plan_windows(len(h), s.horizon, args.windows)  # refuse a short history before fitting
    if args.draws is not None or args.seed is not None:
        s = s.with_overrides(seed=args.seed, draws=args.draws)
    if names is not None:
        from .backtest import rank_models, ranking_dict, render_ranking

        ranks = rank_models(s, h, names, windows=args.windows)
        if args.json:
            json.dump(ranking_dict(ranks), sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(render_ranking(ranks))
        return 0
    result = backtest(s, h, windows=args.windows)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(result, s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
