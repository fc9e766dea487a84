"""Which ship rule would have served the team best, judged on its own archive.

Each rule decides, experiment by experiment, whether to ship. Leave-one-out: the decision on
experiment ``i`` uses the effect distribution learnt from the *other* experiments as the prior and
``i``'s own result as the data. By Bayes' theorem that posterior,
``p(theta_i | y_-i, y_i)``, is exactly the full fit's posterior of ``theta_i`` (the hyperparameters'
posterior given the others, updated with ``y_i``, is the posterior given all), so the folds need
no refit and no approximation: each decision comes from the fit's own Rao-Blackwellised posterior.

The score of a rule is the cumulative true effect of what it ships, ``sum_i d_i theta_i``. The
true effects are unknown; given everything the archive holds, its expectation is
``sum_i d_i E[theta_i | all data]`` (each ``d_i`` is a function of the data), i.e. the sum of the
*shrunk* estimates of the shipped experiments, and its posterior spread is that of
``sum_i d_i theta_i`` over the fit's draws. Raw lifts would reward rules that ship noise (the
winner's curse); the shrunk estimate is the minimum-mean-squared-error estimate of each effect
under the fitted effect distribution. (Netflix's return-aware estimator corrects the same bias
for a single rule's shipped set; here the model already gives the correction per experiment.)

The rules: ``p < 0.05`` ships a positive lift whose two-sided p-value (from ``lift / se``) is below
0.05; the Bayesian rules use the archive-informed posterior: ``P(win) >= 95%`` ships when
``P(theta_i > 0) >= 0.95``; ``expected loss < eps`` when ``E[max(0, -theta_i)] < eps`` (the
metric lost in expectation by shipping; eps = 0.1% of the metric by default); ``mean > 0`` when
the posterior mean is positive (the Bayes rule for a linear payoff: under the fitted model it
maximises the expected cumulative impact, so the table shows how much the others give up).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RULES = ("p_below_0.05", "p_win_95", "expected_loss", "mean_positive")


def rule_labels(eps: float) -> dict[str, str]:
    return {
        "p_below_0.05": "ship if p < 0.05 (and the lift is positive)",
        "p_win_95": "ship if the chance to win is at least 95%",
        "expected_loss": f"ship if the expected loss is below {eps:.1%} of the metric",
        "mean_positive": "ship if the posterior mean effect is positive",
        "team": "what the team shipped",
    }


def decisions(archive, post, eps: float) -> dict[str, np.ndarray]:
    """Each rule's ship decisions (bool per experiment)."""
    from scipy import special

    z = archive.lift / archive.se
    p = 2 * special.ndtr(-np.abs(z))
    out = {
        "p_below_0.05": (p < 0.05) & (archive.lift > 0),
        "p_win_95": post.p_positive >= 0.95,
        "expected_loss": post.loss_ship < eps,
        "mean_positive": post.mean > 0,
    }
    if any(s is not None for s in archive.shipped):
        out["team"] = np.array([s is True for s in archive.shipped], dtype=bool)
    return out


def rules_table(archive, post, settings, chains: int) -> dict[str, Any]:
    """Per rule: how many it ships, the expected cumulative impact (sum of shrunk effects) with
    its posterior sd and 80% interval, its Monte Carlo error, and the difference to the best rule
    with the sd of that difference; plus the best rule and a sentence."""
    dec = decisions(archive, post, settings.epsilon)
    labels = rule_labels(settings.epsilon)
    totals = {r: post.draws[:, d].sum(1) for r, d in dec.items()}
    est = {r: float(post.mean[d].sum()) for r, d in dec.items()}
    best = max(RULES, key=lambda r: est[r])
    rows = {}
    for r, d in dec.items():
        diff = totals[r] - totals[best]
        rows[r] = {
            "label": labels[r],
            "shipped": int(d.sum()),
            "impact": est[r],
            "sd": float(totals[r].std(ddof=1)),
            "interval80": [float(x) for x in np.quantile(totals[r], [0.1, 0.9])],
            "mcse": mcse(totals[r], chains),
            "raw": float(archive.lift[d].sum()),
            "vs_best": float(est[r] - est[best]),
            "vs_best_sd": float(diff.std(ddof=1)),
            "p_beats_best": float((diff > 0).mean()) if r != best else None,
        }
    second = max((r for r in RULES if r != best), key=lambda r: est[r])
    b, s2 = rows[best], rows[second]
    sentence = (
        f"Over these {len(archive)} experiments, “{labels[best]}” would have shipped "
        f"{b['shipped']} changes worth {b['impact']:+.1%} in total (sd {b['sd']:.1%}); the next "
        f"best, “{labels[second]}”, {s2['impact']:+.1%} ({s2['vs_best']:+.1%} ± "
        f"{s2['vs_best_sd']:.1%} against it)."
    )
    if "team" in rows:
        t = rows["team"]
        sentence += (
            f" What the team actually shipped ({t['shipped']} changes) is worth {t['impact']:+.1%}"
            f" by the same measure ({t['raw']:+.1%} as measured)."
        )
    return {"epsilon": settings.epsilon, "best": best, "rows": rows, "sentence": sentence}


def text_rules(r: dict[str, Any]) -> list[str]:
    """The rules table as terminal lines."""
    lines = [
        "ship rules judged on the archive (impact = sum of the shrunk effects of what each rule "
        "ships; ± its posterior sd):"
    ]
    w = max(len(v["label"]) for v in r["rows"].values())
    for name, v in r["rows"].items():
        mark = "  <- best" if name == r["best"] else ""
        lines.append(
            f"  {v['label']:<{w}}  ships {v['shipped']:>3}  impact {v['impact']:+7.1%} ± "
            f"{v['sd']:.1%}  vs best {v['vs_best']:+6.1%} ± {v['vs_best_sd']:.1%}  (as measured "
            f"{v['raw']:+.1%}){mark}"
        )
    lines.append(r["sentence"])
    return lines


def mcse(x: np.ndarray, chains: int) -> float:
    """Monte Carlo error of the mean of per-draw values (ESS from the chains)."""
    import arviz as az

    if np.ptp(x) == 0:
        return 0.0
    a = x.reshape(chains, -1)
    ess = float(az.ess(a))
    return float(x.std(ddof=1) / np.sqrt(max(ess, 1.0)))
