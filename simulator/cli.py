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
    cmp.add_argument("--json", action="store_true", help="print the comparison object only")
    cmp.add_argument(
        "--report", action="store_true", help="write the decision report with a comparison section"
    )
    cmp.add_argument(
        "--out", type=Path, default=Path("reports"), help="report directory (default: reports)"
    )
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
    model_opts(bt)
    bt.add_argument("--json", action="store_true", help="print the backtest as one JSON object")
    return p


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
    from .decision import targets
    from .render import input_notes

    s = load_scenario(path)
    for line in input_notes(s, s._history, targets(s, s._history)):
        print(f"note: {line}", file=sys.stderr)
    return s


def _check(args: argparse.Namespace) -> int:
    from .data import plural

    s = _load(args.scenario)
    h = s._history
    n_changes = sum(len(o.changes) for o in s.options.values())
    what = f"{plural(len(h), 'period')} of history"
    if h.dates is not None:
        what += f" ({h.dates[0].isoformat()} to {h.dates[-1].isoformat()}, one row per {s.period}"
        if any("not in time order" in n for n in h.notes):
            what += ", sorted oldest first"
        what += ")"
    if h.n_missing:
        what += (
            f", {plural(h.n_missing, 'empty count cell')} (missing data, not modelled yet: "
            "`run` refuses them)"
        )
    print(
        f"ok: {args.scenario}: {plural(len(s.funnel), 'stage')}, "
        f"{plural(len(s.segments), 'segment')}, {plural(len(s.options), 'option')} "
        f"({plural(n_changes, 'change')}), {plural(len(s.key_results), 'key result')}, {what}"
    )
    return 0


def _simulate(args: argparse.Namespace):
    """Load the scenario named on the command line and simulate it with the model overrides."""
    from . import cache
    from .api import simulate

    if args.no_cache:
        cache.disable()
    return simulate(_load(args.scenario), draws=args.draws, seed=args.seed)


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
    s = _load(args.scenario)
    exp = read_results(s, results_path(s, args.results))  # invalid input stops here, before fitting
    from .compare import compare, text_comparison

    result = compare(s, exp, draws=args.draws, seed=args.seed, before=args.report or not args.json)
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


def _backtest(args: argparse.Namespace) -> int:
    _validate_overrides(args)
    if args.windows is not None and args.windows < 1:
        raise InputError([f"--windows: must be at least 1, got {args.windows}"])
    from . import cache
    from .backtest import backtest, plan_windows, render_text

    if args.no_cache:
        cache.disable()
    s = _load(args.scenario)
    plan_windows(len(s._history), s.horizon, args.windows)  # refuse a short history before fitting
    if args.draws is not None or args.seed is not None:
        h = s._history
        s = s.with_overrides(seed=args.seed, draws=args.draws)
        s._history = h
    result = backtest(s, windows=args.windows)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(result, s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
