"""The decision report's section "How much does our optimism matter?": for each change parameter
whose prior comes from the archive of past experiments, the team's belief, the archive's and the
one used, with P(met) of every key result under each, from the same funnel fit
(`pipeline.decide` with that parameter's draws replaced: no refit, common random numbers).
"""

from __future__ import annotations

from typing import Any


def _p(x: float, se: float) -> str:
    from ..engine.render import fmt_p

    return fmt_p(x, se)


def optimism_rows(result) -> dict[str, Any] | None:
    """For a decision result whose scenario has `from_archive` priors: per such parameter, the
    team's belief (its `with` interval), the archive's, and the one used, as median [90%
    interval] of the factor, and P(met) of each key result and P(all met) of the parameter's
    option under each (the other beliefs as they are; the same funnel fit, through
    `pipeline.decide(..., params=...)`). None when no prior comes from the archive."""
    variants = belief_variants(result)
    if not variants:
        return None
    s = result.scenario
    head = (
        ["Parameter", "Belief", "Factor: median [90%]"]
        + [kr.id for kr in s.key_results]
        + ["all met"]
    )
    rows = []
    for v in variants:
        for b in v["beliefs"]:
            rows.append(
                [
                    v["name"],
                    b["label"],
                    f"{b['median']:.3f} [{b['interval90'][0]:.3f}, {b['interval90'][1]:.3f}]",
                    *[_p(b["p_met"][kr.id], b["p_met_se"][kr.id]) for kr in s.key_results],
                    _p(b["p_all_met"], b["p_all_met_se"]),
                ]
            )
    return {
        "head": head,
        "rows": rows,
        "sentences": [v["sentence"] for v in variants],
        "note": "Each belief's P(met) is the option's under that belief for this parameter, the "
        "other beliefs as they are, from the same fit of the funnel and common random numbers "
        "(± Monte Carlo error). ‘Used’ is what the report above rests on.",
    }


def belief_variants(result) -> list[dict[str, Any]]:
    """For a decision result (`pipeline.SimulationResult`), each change parameter whose prior
    comes from the archive, with its beliefs: the team's own (the `with` interval, when given),
    the archive's alone, and the one used; per belief the factor's median and 90% interval and
    the option's P(met) per key result and P(all met) with Monte Carlo errors. The other beliefs'
    P(met) come from `pipeline.decide` with that parameter's draws replaced (same fit, same
    random streams), so the funnel is not refitted."""
    from ..engine.pipeline import decide
    from ..io.scenario import Prior, change_param_names
    from ..model import priors
    from ..model.streams import stream

    s = result.scenario
    out = []
    for oid, opt in s.options.items():
        for change, names in zip(opt.changes, change_param_names(oid, opt), strict=True):
            for fld, name in names:
                prior = getattr(change.spec, "pass_" if fld == "pass" else fld)
                if prior.kind != "from_archive":
                    continue
                beliefs = []
                if prior.with_ is not None:
                    beliefs.append(("the team's belief", prior.with_))
                    beliefs.append(("the archive's", Prior(from_archive=prior.from_archive)))
                beliefs.append(
                    ("used" if prior.with_ is not None else "the archive's (used)", prior)
                )
                rows = []
                for label, b in beliefs:
                    q = priors.quantiles(b, [0.05, 0.5, 0.95])
                    if b is prior:
                        od = result.run.options[oid]
                    else:
                        params = dict(result.forecast.params)
                        n = len(params[name])
                        params[name] = priors.sample(b, n, stream(s.seed, "param", name))
                        other = decide(s, result.history, result.fit, params=params)
                        od = other.run.options[oid]
                    rows.append(
                        {
                            "label": label,
                            "describe": b.describe(),
                            "median": float(q[1]),
                            "interval90": [float(q[0]), float(q[2])],
                            "p_met": {k: v.p_met for k, v in od.key_results.items()},
                            "p_met_se": {k: v.p_met_se for k, v in od.key_results.items()},
                            "p_all_met": od.p_all_met,
                            "p_all_met_se": od.p_all_met_se,
                        }
                    )
                out.append(
                    {
                        "option": oid,
                        "name": name,
                        "beliefs": rows,
                        "sentence": _optimism_sentence(s, oid, name, rows),
                    }
                )
    return out


def _optimism_sentence(s, oid: str, name: str, rows: list[dict[str, Any]]) -> str:
    label = s.options[oid].label or oid
    if len(rows) == 1:
        r = rows[0]
        return (
            f"“{label}”: the archive alone puts {name} at {r['median']:.3f} (90% interval "
            f"{r['interval90'][0]:.3f} to {r['interval90'][1]:.3f}); P(all met) "
            f"{_p(r['p_all_met'], r['p_all_met_se'])}. No team belief was given to "
            "compare it with (add `with: {lognormal_interval: [lo, hi]}`)."
        )
    team, arc = rows[0], rows[1]
    return (
        f"“{label}”: the team believes {name} is {team['median']:.3f} (90% interval "
        f"{team['interval90'][0]:.3f} to {team['interval90'][1]:.3f}), the archive's past "
        f"experiments say {arc['median']:.3f} ({arc['interval90'][0]:.3f} to "
        f"{arc['interval90'][1]:.3f}); P(all met) is {_p(team['p_all_met'], team['p_all_met_se'])} "
        f"under the team's belief and {_p(arc['p_all_met'], arc['p_all_met_se'])} under the "
        "archive's."
    )
