"""Run the validation suite and write docs/validation.md with its figures.

    .venv/bin/python scripts/run_validation.py              # the full suite, as `make validate` runs it
    .venv/bin/python scripts/run_validation.py --reduced    # the sizes of `make test`, for a quick look
    .venv/bin/python scripts/run_validation.py --from-results docs/figures/validation_results.json
                                                            # rewrite the page from saved results

The checks themselves are in validation/suite.py (computation only); this script draws and writes.
Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHECK_TITLES = {
    "calibration": "1. Calibration of P(met) on the model's own family",
    "sbc": "2. Simulation-based calibration of the parameters",
    "recovery": "3. Parameter recovery (94% intervals)",
    "exact": "4. Exact agreement with closed forms",
    "mc_error": "5. Reported Monte Carlo error vs spread across seeds",
    "drift": "6. Drift: calibration when period effects persist or trend",
}


# ------------------------------------------------------------------------------------- figures


# section 7's results (scripts/validate_default.py), which this page includes as written
DEFAULT_NOTE = "Checks 1-6 run the model with constant levels (`drift: none`), for which their closed forms and SBC priors are written. The default since model version 5, whose levels may drift, is run through checks 1 and 6 in section 7: calibrated on iid and on drifting worlds, its 80% intervals holding 85.4% and 73.4% (oracle 82.2% and 78.0%), with the Brier-gap criterion failing on both."
MODELS = ("iid", "ar1", "ar1+trend")  # the models the suite fits, in the order shown
MODEL_WORDS = {"iid": "iid effects", "ar1": "AR(1) effects", "ar1+trend": "AR(1) + trends"}


def plot_reliability(results: dict[str, Any], ax=None):
    """Predicted P(met) against the observed frequency, with Wilson 95% intervals."""
    import matplotlib.pyplot as plt

    cal = results["calibration"]
    panels = [
        ("Worlds of the model's family (iid period effects)", [f"iid/{m}" for m in MODELS]),
        ("Drifting worlds (AR(1) effects and slow trends)", [f"drift/{m}" for m in MODELS]),
    ]
    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(11, 5.2), constrained_layout=True)
    else:
        fig = ax[0].figure
    styles = {
        "oracle": dict(color="0.45", marker="s", label="oracle (knows the parameters)"),
        "iid": dict(color="tab:blue", marker="o", label="krsim, iid period effects"),
        "ar1": dict(color="tab:orange", marker="^", label="krsim, AR(1) period effects"),
        "ar1+trend": dict(color="tab:green", marker="v", label="krsim, AR(1) effects + trends"),
    }
    for a, (title, keys) in zip(ax, panels, strict=True):
        a.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
        keys = [k for k in keys if k in cal]
        if keys:
            series = [("oracle", cal[keys[0]]["reliability_oracle"], -0.012)]
            series += [
                (k.split("/")[1], cal[k]["reliability_krsim"], 0.012 * i)
                for i, k in enumerate(keys)
            ]
            for name, bins, dx in series:
                b = [x for x in bins if x["n"] > 0]
                pr = np.array([x["predicted"] for x in b])
                ob = np.array([x["observed"] for x in b])
                lo = np.array([x["ci_low"] for x in b])
                hi = np.array([x["ci_high"] for x in b])
                a.errorbar(
                    pr + dx,
                    ob,
                    yerr=[np.clip(ob - lo, 0, None), np.clip(hi - ob, 0, None)],
                    ls="-",
                    lw=1,
                    ms=5,
                    capsize=2,
                    **styles[name],
                )
            n = cal[keys[0]]["n_predictions"]
            w = cal[keys[0]]["n_worlds"]
            a.text(0.98, 0.03, f"{n} predictions, {w} worlds", ha="right", transform=a.transAxes)
        a.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="predicted P(met)",
            ylabel="observed frequency of met",
            title=title,
            aspect="equal",
        )
        a.legend(loc="upper left", fontsize=8, frameon=False)
    return fig, ax


def plot_pit(results: dict[str, Any]):
    """Histograms of where the true KR value fell in the forecast (uniform if calibrated)."""
    import matplotlib.pyplot as plt

    cal = results["calibration"]
    rows = [("iid worlds", "iid"), ("drifting worlds", "drift")]
    cols = [("oracle", None)] + [(f"krsim, {MODEL_WORDS[m]}", m) for m in MODELS]
    fig, ax = plt.subplots(
        2, len(cols), figsize=(3.7 * len(cols), 5.6), sharex=True, constrained_layout=True
    )
    for i, (rlabel, fam) in enumerate(rows):
        for j, (clabel, m) in enumerate(cols):
            a = ax[i, j]
            key = f"{fam}/{m or 'iid'}"
            if key not in cal:
                a.set_axis_off()
                continue
            pit = np.asarray(cal[key]["pit_oracle" if m is None else "pit_krsim"])
            a.hist(
                pit, bins=10, range=(0, 1), density=True, color="0.6" if m is None else "tab:blue"
            )
            a.axhline(1, color="k", lw=1, ls="--")
            tails = np.mean((pit < 0.1) | (pit > 0.9))
            a.set_title(f"{rlabel}: {clabel}\noutside the 80% interval: {tails:.0%}", fontsize=9)
            a.set_ylim(0, 3.5)
            if i == 1:
                a.set_xlabel("predictive percentile of the true value")
    return fig, ax


def plot_sbc(sbc: dict[str, Any], title: str):
    """Rank histograms with the 99% band of a uniform histogram's bins."""
    import matplotlib.pyplot as plt
    from scipy import stats

    names = list(sbc["tests"])
    ncol = 3
    nrow = int(np.ceil(len(names) / ncol))
    fig, ax = plt.subplots(nrow, ncol, figsize=(11, 2.7 * nrow), constrained_layout=True)
    ax = np.atleast_2d(ax)
    for a, name in zip(ax.flat, names, strict=False):
        t = sbc["tests"][name]
        counts = np.asarray(t["counts"])
        n, bins = t["n"], counts.size
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
        a.axhspan(lo, hi, color="0.88")
        a.axhline(n / bins, color="0.5", lw=1)
        a.bar(np.arange(bins), counts, width=0.9, color="tab:blue")
        a.set_title(f"{name}   p = {t['p_value']:.3f}", fontsize=9)
        a.set_xticks([])
        a.set_xlabel("rank of the truth among the draws: low to high", fontsize=8)
    for a in list(ax.flat)[len(names) :]:
        a.set_axis_off()
    fig.suptitle(title)
    return fig, ax


# -------------------------------------------------------------------------------------- writing


def _f(x: float, d: int = 3) -> str:
    return f"{x:.{d}f}"


def _pct(x: float, d: int = 1) -> str:
    return f"{100 * x:.{d}f}%"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def versions() -> str:
    from simulator import __version__
    from simulator.io.cache import versions as v

    vs = v("pymc", "pytensor", "nutpie", "numpy", "arviz")
    return f"krsim {__version__}, " + ", ".join(f"{k} {x}" for k, x in vs.items())


def recommend_default(cal: dict[str, Any]) -> tuple[str, str]:
    """The default period-effect model the results support, and why, in words.

    AR(1) is preferred only if it is clearly better on drifting worlds (80% coverage closer to the
    oracle's by more than twice its standard error) and no worse beyond Monte Carlo error on
    worlds of the model's own family."""
    d_iid, d_ar1 = cal.get("drift/iid"), cal.get("drift/ar1")
    i_iid, i_ar1 = cal.get("iid/iid"), cal.get("iid/ar1")
    if not (d_iid and d_ar1):
        return "iid", "the AR(1) model was not run on drifting worlds"

    def miss(s):
        return abs(s["coverage80_krsim"] - s["coverage80_oracle"])

    gain = miss(d_iid) - miss(d_ar1)
    gain_se = float(np.hypot(d_iid["coverage80_krsim_se"], d_ar1["coverage80_krsim_se"]))
    brier_gain = d_iid["brier_krsim"] - d_ar1["brier_krsim"]
    cost = None
    if i_iid and i_ar1:
        cost = miss(i_ar1) - miss(i_iid)
        cost_se = float(np.hypot(i_iid["coverage80_krsim_se"], i_ar1["coverage80_krsim_se"]))
    words = (
        f"on drifting worlds the iid model's 80% intervals held the truth {_pct(d_iid['coverage80_krsim'])} "
        f"of the time and the AR(1) model's {_pct(d_ar1['coverage80_krsim'])} (oracle "
        f"{_pct(d_iid['coverage80_oracle'])}); Brier {_f(d_iid['brier_krsim'])} vs {_f(d_ar1['brier_krsim'])}"
    )
    if cost is not None:
        words += (
            f"; on the model's own family the AR(1) model's coverage was {_pct(i_ar1['coverage80_krsim'])} "
            f"against the iid model's {_pct(i_iid['coverage80_krsim'])}"
        )
    better = gain > 2 * gain_se and brier_gain > 0
    harmless = cost is None or cost < 2 * cost_se
    if better and harmless:
        return "ar1", words
    return "iid", words


def findings(results: dict[str, Any]) -> list[str]:
    """Plain-words conclusions, each read off the numbers of this run."""
    cal, health = results["calibration"], results["fit_health"]
    out = []

    def gap(x):
        return x["coverage80_oracle"] - x["coverage80_krsim"]

    def se(x):
        return float(np.hypot(x["coverage80_krsim_se"], x["coverage80_oracle_se"]))

    g = cal.get("iid/iid")
    if g:
        ok = abs(g["spiegelhalter_z"]) < g["verdict"]["z_limit"] and abs(gap(g)) < 3 * se(g)
        out.append(
            f"On worlds of its own family the default model's probabilities are "
            f"{'calibrated' if ok else 'not calibrated'} (Spiegelhalter z {_f(g['spiegelhalter_z'], 2)}, "
            f"80% intervals hold {_pct(g['coverage80_krsim'])}); its Brier score is "
            f"{_pct(g['verdict']['relative_brier_gap'])} above the oracle's, the cost of learning "
            "the parameters from the history."
        )
    d = cal.get("drift/iid")
    if d and gap(d) > 3 * se(d):
        out.append(
            f"With iid period effects, drift makes krsim overconfident: on drifting worlds its 80% "
            f"intervals held the truth {_pct(d['coverage80_krsim'])} of the time (oracle "
            f"{_pct(d['coverage80_oracle'])}) and {_pct(d['pit_tails_krsim'])} of true values fell in "
            "the outer 5% tails of its forecast. The iid effects average away over a quarter; "
            "persistent effects do not."
        )
    for kind, words in (("ar1", "persistent (AR(1)) effects"), ("trend", "slow linear trends")):
        a = cal.get(f"{kind}/ar1")
        if a:
            verdict = (
                "matches the oracle's" if abs(gap(a)) < 3 * se(a) else "falls short of the oracle's"
            )
            out.append(
                f"On worlds with {words} the AR(1) model's 80% coverage is "
                f"{_pct(a['coverage80_krsim'])} against the oracle's {_pct(a['coverage80_oracle'])}: "
                f"it {verdict}."
            )
    for kind, words in (("trend", "slow linear trends"), ("ar1", "persistent (AR(1)) effects")):
        a = cal.get(f"{kind}/ar1+trend")
        if a:
            out.append(
                f"With linear trends in the model as well (`trend`, `rate_trend`), the 80% coverage "
                f"on worlds with {words} is {_pct(a['coverage80_krsim'])} against the oracle's "
                f"{_pct(a['coverage80_oracle'])} (Brier {_f(a['brier_krsim'])}, oracle "
                f"{_f(a['brier_oracle'])})."
            )
    for key, h in health.items():
        if key.endswith("/ar1"):
            out.append(
                f"Sampler health of the AR(1) model ({key.split('/')[0]} worlds): "
                f"{_pct(h['rhat_above_1.01'] / h['fits'], 0)} of fits with R-hat above 1.01 and "
                f"{_pct(h['with_divergences'] / h['fits'], 0)} with divergences at "
                f"{results['config']['chains']} x {results['config']['draws']} draws, against "
                f"{_pct(health.get(key.split('/')[0] + '/iid', h)['rhat_above_1.01'] / h['fits'], 0)} "
                "and "
                f"{_pct(health.get(key.split('/')[0] + '/iid', h)['with_divergences'] / h['fits'], 0)} "
                "for the iid model."
            )
            break
    for pe, r in results["recovery"].items():
        bad = [
            f"`{n}` {_pct(x['coverage'])} on {w.split('_')[0]} worlds "
            f"({x['truth_below']} below, {x['truth_above']} above)"
            for w in ("prior_worlds", "realistic_worlds")
            for n, x in r[w]["params"].items()
            if x["p_value"] <= r[w]["p_limit"]
        ]
        if bad:
            out.append(
                f"Recovery with {pe} period effects misses the nominal 94% for "
                + "; ".join(bad)
                + "."
            )
    ex = results["exact"]
    worst = max(abs(c["z"]) for c in ex["forecast_cases"] + ex["fitted_cases"])
    out.append(
        f"Exact agreement {'holds' if results['checks']['exact'] else 'fails'} within Monte Carlo "
        f"error (largest |z| {worst:.2f} over {len(ex['forecast_cases']) + len(ex['fitted_cases'])} "
        "cases); the reported Monte Carlo SE "
        f"{'matches' if results['checks']['mc_error'] else 'does not match'} the spread across seeds "
        "(ratios "
        + ", ".join(_f(x["ratio"], 2) for x in results["mc_error"]["key_results"].values())
        + ")."
    )
    return out


def write_page(results: dict[str, Any], out: Path, figures: dict[str, str]) -> str:
    cal = results["calibration"]
    checks = results["checks"]
    cfg = results["config"]
    t = results["timings"]
    default = results["default_period_effects"]
    rec, why = recommend_default(cal)
    L: list[str] = []
    add = L.append
    add("# Validation: can krsim's probabilities be trusted?")
    add("")
    add(
        "krsim's output is a probability that people act on. This page is the evidence that the "
        "probabilities mean what they say, produced by the project's own code on simulated worlds "
        "whose truth is known. It is written by `scripts/run_validation.py` (the checks are in "
        "`validation/suite.py`; `make validate` runs the same suite as tests, and `make test` "
        "a reduced version of each check)."
    )
    add("")
    add(f"- Date: {results['date']}; suite: {cfg['name']}; seed {results['seed']}")
    add(f"- Machine: {results['machine']}")
    add(f"- Software: {results['versions']}")
    add(
        f"- Run time: {t['total'] / 60:.1f} minutes in all (model compilation {t.get('compile', 0):.0f} s; "
        + ", ".join(f"{k} {v:.0f} s" for k, v in t.items() if k not in ("total", "compile"))
        + ")"
    )
    add(
        f"- Fits: nutpie, {cfg['chains']} chains x {cfg['draws']} draws after {cfg['tune']} tuning steps "
        f"(the Monte Carlo error check uses the defaults: {cfg['se_chains']} x {cfg['se_draws']})"
    )
    add("")
    add("| check | result |")
    add("|---|---|")
    for k, title in CHECK_TITLES.items():
        add(f"| {title} | {'pass' if checks.get(k) else '**fail**'} |")
    add("")
    add(DEFAULT_NOTE)
    add("")
    add(
        "Every statistical criterion below allows a family-wise false-alarm rate of 1% per check "
        "(Bonferroni within a check), with tolerances from the Monte Carlo error of the run, never "
        "adjusted to the outcome."
    )
    add("")
    add("## The test funnel and the worlds")
    add("")
    add(
        "All checks use a small funnel, `visits -> start -> done`, with two options (`status_quo`, "
        "and `boost`: the `done` rate times a factor with a lognormal prior, 90% in [0.9, 1.2]) and "
        "three key results (the totals of `done` and `start`, and the ratio `done / start`), over a "
        "horizon of 13 periods. Histories are 26, 39 or 52 periods long."
    )
    add("")
    add(
        "*Worlds of the model's family*: traffic 300-20,000 a period (log-uniform), negative binomial "
        "overdispersion alpha 8-400 (log-uniform), first-step rate 5-60%, second-step 20-90%, iid "
        "period effects with sd 0.02-0.35 on the logit scale, and the option's true factor drawn "
        "from its prior. *Drifting worlds*: the same, with half of them AR(1) period effects "
        "(rho 0.6-0.97 on the rates, 0.6-0.95 on the traffic, which also gets AR effects of sd "
        "0.03-0.2) and half slow linear trends (logit rates +-0.012 a period, log traffic +-0.01)."
    )
    add("")
    add(
        "The *oracle* knows a world's parameters and its latent state at the end of the history; "
        "it does not know the option's true factor (no history can teach it), so it holds the "
        "same prior on it as krsim. Its P(met) is the share of 4,000 simulated futures that meet "
        "the target. Targets are set from the data alone, as a user's are: at random quantiles "
        "(5%-95%) of krsim's forecast (the iid model's), two per key result and option, so "
        "predictions spread over the whole range. (Placing them by the true parameters would fix "
        "the true P(met) and make any posterior's P(met) look too extreme.) Each world then draws "
        "one true future per option."
    )
    add("")

    # 1. calibration
    g = cal[f"iid/{default}"]
    v = g["verdict"]
    add(f"## {CHECK_TITLES['calibration']}")
    add("")
    add(f"![Reliability diagram]({figures['reliability']})")
    add("")
    add(
        f"{g['n_predictions']} predictions in {g['n_worlds']} worlds. Brier score: krsim "
        f"**{_f(g['brier_krsim'], 4)}**, oracle **{_f(g['brier_oracle'], 4)}**: krsim is worse by "
        f"{_f(g['brier_gap'], 4)} +- {_f(g['brier_gap_se'], 4)} ({_pct(v['relative_brier_gap'])} +- "
        f"{_pct(v['relative_brier_gap_se'])} of the oracle's score; the criterion, fixed before the "
        f"first run, is under {_pct(0.10, 0)}). This gap is the price of "
        "learning the parameters from the history."
    )
    add("")
    add(
        f"- Spiegelhalter's calibration test (variance from the worlds, as a world's targets share "
        f"its future): z = {_f(g['spiegelhalter_z'], 2)}, p = {_f(g['spiegelhalter_p'], 3)} "
        f"(|z| must stay under {_f(v['z_limit'], 2)})."
    )
    add(
        f"- Mean of met - P(met): {_f(g['mean_met_minus_p'], 4)} +- {_f(g['mean_met_minus_p_se'], 4)}."
    )
    add(
        f"- 80% predictive intervals held the true value {_pct(g['coverage80_krsim'])} +- "
        f"{_pct(g['coverage80_krsim_se'])} of the time (oracle: {_pct(g['coverage80_oracle'])})."
    )
    yes = {True: "yes", False: "**no**"}
    add(
        f"- Result: {'pass' if checks['calibration'] else '**fail**'} (calibrated: "
        f"{yes[v['calibrated']]}; 80% coverage like the oracle's: {yes[v['coverage_like_oracle']]}; "
        f"Brier score within 10% of the oracle's: {yes[v['close_to_oracle']]})."
    )
    add("")
    if "by_length" in g:
        add("By history length (each row has a few dozen worlds, so its gap is rough):")
        add("")
        add("| history | worlds | Brier krsim | Brier oracle | gap |")
        add("|---|---|---|---|---|")
        for T, x in g["by_length"].items():
            add(
                f"| {T} periods | {x['n_worlds']} | {_f(x['brier_krsim'], 4)} | "
                f"{_f(x['brier_oracle'], 4)} | {_pct(x['brier_krsim'] / x['brier_oracle'] - 1)} |"
            )
        add("")
    add(f"![Predictive percentiles]({figures['pit']})")
    add("")

    # 2. SBC
    add(f"## {CHECK_TITLES['sbc']}")
    add("")
    add(f"The check passes or fails on the default model (`{default}`); the other is reported.")
    add("")
    add(
        "Talts et al. (2018): draw the parameters from the model's documented priors (level "
        "~ Normal(centre, 1), alpha ~ Gamma(2, 0.02), rate_mu ~ Normal(0, 2.5), rate_sigma ~ "
        "HalfNormal(0.5); for AR(1) also the rates' rho ~ Beta(2, 2), and for the traffic, "
        "instead of alpha, its extra-Poisson sd ~ HalfNormal(0.3), the share of its variance "
        "that persists ~ Beta(2, 2) and the persistent part's rho ~ Beta(6, 2)), "
        "simulate a history, fit it, and take the rank of each true value among thinned posterior "
        "draws. If the model and the sampler are right, the ranks are uniform. The model centres "
        "the level's prior on the log mean traffic of the data; here it is drawn around log 3000. "
        "With weeks of traffic the likelihood pins the level far more tightly than "
        "that prior (posterior sd of the level a few hundredths against the prior's 1), so this "
        "cannot show in the ranks."
    )
    add("")
    for pe, s in results["sbc"].items():
        add(
            f"**{pe} period effects{' (the default)' if pe == default else ''}**: "
            f"{s['tests'][next(iter(s['tests']))]['n']} replications of "
            f"{cfg['sbc_periods']} periods, ranks among {s['n_post']} draws, 10 bins; chi-square p-values "
            f"(each must exceed {s['p_limit']:.4f}): "
            + ", ".join(f"`{k}` {t['p_value']:.3f}" for k, t in s["tests"].items())
            + f". Result: {'pass' if s['passed'] else '**fail**'}."
        )
        add("")
        add(f"![SBC rank histograms, {pe}]({figures[f'sbc_{pe}']})")
        add("")
        fh = next(iter(s["fit_health"].values()))
        add(
            f"Fits with any divergent transition: {fh['with_divergences']} of {fh['fits']}; "
            f"with R-hat above 1.01 (over the saved parameters): {fh['rhat_above_1.01']}."
        )
        add("")

    # 3. recovery
    add(f"## {CHECK_TITLES['recovery']}")
    add("")
    add(
        "The share of true values inside the central 94% posterior interval (equal tails). On "
        "parameters drawn from the prior (the SBC fits) the nominal rate is exact if the model and "
        "the sampler are right; on realistic worlds (check 1's for the iid model, the AR(1) "
        "drifting worlds for the AR(1) model) it is what a user can expect. Each share is tested "
        "against 94% with a two-sided binomial test at the 1% family-wise level; misses are split "
        "into truths below and above the interval."
    )
    add("")
    for pe, r in results["recovery"].items():
        tag = " (the default)" if pe == default else ""
        add(f"**{pe} period effects{tag}**")
        add("")
        add(
            "| parameter | prior worlds | below / above | p | realistic worlds | below / above | p |"
        )
        add("|---|---|---|---|---|---|---|")
        rp, rw = r["prior_worlds"]["params"], r["realistic_worlds"]["params"]
        for name in sorted(set(rp) | set(rw)):
            cells = []
            for x in (rp.get(name), rw.get(name)):
                if x:
                    cells += [
                        f"{_pct(x['coverage'])} of {x['n']}",
                        f"{x['truth_below']} / {x['truth_above']}",
                        _f(x["p_value"]),
                    ]
                else:
                    cells += ["-", "-", "-"]
            add(f"| `{name}` | " + " | ".join(cells) + " |")
        add("")
        for w in ("prior_worlds", "realistic_worlds"):
            a, b = r[w].get("fits_without_divergences"), r[w].get("fits_with_divergences")
            if a and b and b["n"]:
                add(
                    f"- {w.replace('_', ' ').capitalize()}: coverage {_pct(a['coverage'])} over fits "
                    f"without a divergent transition ({a['n']} parameter values), "
                    f"{_pct(b['coverage'])} over fits with some ({b['n']})."
                )
        add("")
        add(
            f"Prior worlds: {'pass' if r['prior_worlds']['passed'] else '**fail**'}; realistic "
            f"worlds: {'pass' if r['realistic_worlds']['passed'] else '**fail**'} (each p must "
            f"exceed {r['prior_worlds']['p_limit']:.4f})."
        )
        add("")
    add(f"Check 3 (on the default model): {'pass' if checks['recovery'] else '**fail**'}.")
    add("")

    # 4. exact
    ex = results["exact"]
    add(f"## {CHECK_TITLES['exact']}")
    add("")
    add(
        "With no period effects and a fixed rate p, a stage's total over the horizon H is "
        "negative binomial: traffic NegBin(H alpha) with mean H m, thinned by p. The forecast "
        "and decision layers are run on posterior draws set by hand (a point, or a Beta(120, 880) "
        "rate: a Beta mixture of negative binomials, integrated numerically); the ratio key result "
        "is a sum over the traffic total of binomial tails. End to end, the traffic's posterior "
        "(level, alpha) is two-dimensional, so P(traffic total >= target) after a real fit is "
        "computed exactly on a grid from the documented priors."
    )
    add("")
    add("| case | krsim | exact | error | Monte Carlo SE | z |")
    add("|---|---|---|---|---|---|")
    for c in ex["forecast_cases"] + ex["fitted_cases"]:
        add(
            f"| {c['case']} | {_f(c['krsim'], 4)} | {_f(c['exact'], 4)} | {c['error']:+.4f} | "
            f"{_f(c['se'], 4)} | {c['z']:+.2f} |"
        )
    add("")
    add(
        f"Forecast cases: every |z| under {_f(ex['z_limit'], 2)} "
        f"({cfg['exact_draws']:,} draws). Fitted cases: sum of z^2 = {_f(ex['fitted_chi2'], 2)} "
        f"on {len(ex['fitted_cases'])} degrees of freedom, p = {_f(ex['fitted_p_value'], 3)} "
        "(the SE is the batch-means error krsim reports, which accounts for the autocorrelation of "
        f"the draws). Result: {'pass' if checks['exact'] else '**fail**'}."
    )
    add("")
    add(
        "The stages have no such two-dimensional posterior (each has a rate per period), so their "
        "exactness is checked on the forecast layer above, and their learning by SBC and recovery."
    )
    add("")

    # 5. MC error
    se = results["mc_error"]
    add(f"## {CHECK_TITLES['mc_error']}")
    add("")
    add(
        f"One history refitted and re-forecast with {se['n_seeds']} seeds at the default "
        f"{cfg['se_chains']} chains x {cfg['se_draws']} draws; targets at the first run's medians, where the error is largest. If "
        "the reported SE is right, the spread of P(met) across seeds equals it: their ratio lies "
        f"in [{_f(se['ratio_limits'][0], 2)}, {_f(se['ratio_limits'][1], 2)}] (chi-square, 1% "
        "family-wise)."
    )
    add("")
    add("| key result | mean P(met) | sd across seeds | reported SE (rms) | ratio |")
    add("|---|---|---|---|---|")
    for k, x in se["key_results"].items():
        add(
            f"| {k} | {_f(x['p_met_mean'])} | {_f(x['sd_across_seeds'], 4)} | "
            f"{_f(x['reported_se_rms'], 4)} | {_f(x['ratio'], 2)} |"
        )
    add("")
    add(f"Result: {'pass' if checks['mc_error'] else '**fail**'}.")
    add("")

    # 6. drift
    add(f"## {CHECK_TITLES['drift']}")
    add("")
    add(
        "The same calibration on drifting worlds, each fitted with three models: iid period effects "
        "(`model.period_effects: iid`), AR(1) period effects (`ar1`), and AR(1) effects with "
        "linear trends in the traffic and in every rate (`ar1` with `trend: true` and "
        "`rate_trend: true`); the worlds of check 1 were also fitted with all three."
    )
    add("")
    add(
        "| worlds / model | worlds | Brier krsim | Brier oracle | gap | Spiegelhalter z | "
        "80% coverage | oracle coverage |"
    )
    add("|---|---|---|---|---|---|---|---|")
    for key in (f"{fam}/{m}" for fam in ("iid", "drift", "ar1", "trend") for m in MODELS):
        if key not in cal:
            continue
        s = cal[key]
        add(
            f"| {key} | {s['n_worlds']} | {_f(s['brier_krsim'], 4)} | {_f(s['brier_oracle'], 4)} | "
            f"{_pct(s['verdict']['relative_brier_gap'])} | {_f(s['spiegelhalter_z'], 2)} | "
            f"{_pct(s['coverage80_krsim'])} +- {_pct(s['coverage80_krsim_se'])} | "
            f"{_pct(s['coverage80_oracle'])} |"
        )
    add("")
    add(
        "(`ar1/...` and `trend/...` split the drifting worlds by kind.) Sampler health, share of "
        "fits with any divergence and with R-hat above 1.01 over the saved parameters:"
    )
    add("")
    add("| worlds / model | fits | with divergences | R-hat > 1.01 |")
    add("|---|---|---|---|")
    for key, h in results["fit_health"].items():
        add(
            f"| {key} | {h['fits']} | {_pct(h['with_divergences'] / h['fits'], 0)} | "
            f"{_pct(h['rhat_above_1.01'] / h['fits'], 0)} |"
        )
    add("")
    add(
        f"**Default.** The current default is `period_effects: {default}`; the results support "
        f"**`{rec}`**: {why}. (Rule, fixed before the run: AR(1) becomes the default only if its "
        "80% coverage on drifting worlds is closer to the oracle's by more than twice the standard "
        "error and its Brier score is lower there, and it is no worse beyond twice the standard "
        "error on the model's own family.)"
    )
    add("")
    add(
        "Trends stay off by default whatever these numbers say: a trend is extrapolated through "
        "the quarter, which is right when the funnel has been moving steadily and wrong when a "
        "past change made the history look like a trend; only the analyst knows which. The table "
        "shows what turning them on buys on trending worlds and costs elsewhere; "
        "`krsim backtest` shows it on the user's own history."
    )
    add("")
    add(
        f"Check 6 passes when the default model is calibrated on drifting worlds by the criteria of "
        f"check 1 (Brier gap aside): {'pass' if checks['drift'] else '**fail**'}."
    )
    add("")
    study = Path(__file__).resolve().parent.parent / "docs" / "validation_forecast_section.md"
    if study.exists():  # the forecast study's summary (scripts/forecast_study.py), kept as written
        add(study.read_text().rstrip() + "\n")
    add("## What the suite found")
    add("")
    for line in findings(results):
        add(f"- {line}")
    add("")
    add("## Your own funnel: `krsim backtest`")
    add("")
    add(
        "The worlds above are simulated. On real history, `krsim backtest SCENARIO` fits the model "
        "on the periods before each of the last few quarters, forecasts the quarter, and reports "
        "where each key result's actual value fell (its predictive percentile) and how many fell "
        "outside the 80% interval, with a verdict in words. It is the check to run before trusting "
        "krsim on a funnel."
    )
    add("")
    archive = Path(__file__).resolve().parent.parent / "docs" / "validation_archive_section.md"
    if archive.exists():  # the archive priors' validation (scripts/validate_archive.py), as written
        add(archive.read_text().rstrip() + "\n")
    path = out / "validation.md"
    path.write_text("\n".join(L))
    return path.name


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return float(f"{x:.5g}")
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_round(v) for v in x]
    if isinstance(x, np.generic):
        return _round(x.item())
    return x


def write_report(results: dict[str, Any], out: Path) -> Path:
    """docs/validation.md, docs/figures/validation_*.png and the results as JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    figures = {}

    def save(fig, name):
        fig.savefig(figdir / f"validation_{name}.png", dpi=110)
        plt.close(fig)
        figures[name] = f"figures/validation_{name}.png"

    figdir.mkdir(parents=True, exist_ok=True)
    (figdir / "validation_results.json").write_text(json.dumps(_round(results)))
    save(plot_reliability(results)[0], "reliability")
    save(plot_pit(results)[0], "pit")
    for pe, s in results["sbc"].items():
        save(plot_sbc(s, f"SBC rank histograms, {pe} period effects")[0], f"sbc_{pe}")
    write_page(results, out, figures)
    return out / "validation.md"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reduced", action="store_true", help="the small sizes of `make test`")
    p.add_argument("--seed", type=int, default=20260101)
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="directory for the page (docs)")
    p.add_argument("--from-results", type=Path, help="rewrite the page from saved results")
    args = p.parse_args(argv)

    if args.from_results:
        results = json.loads(args.from_results.read_text())
    else:
        import validation.suite as V

        def progress(msg: str) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

        results = V.run_suite(
            V.REDUCED if args.reduced else V.FULL, seed=args.seed, progress=progress
        )
        results["date"] = dt.date.today().isoformat()
        results["machine"] = machine()
        results["versions"] = versions()
    page = write_report(results, args.out)
    print(f"wrote {page}")
    for k, ok in results["checks"].items():
        print(f"{'pass' if ok else 'FAIL'}  {CHECK_TITLES[k]}")
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
