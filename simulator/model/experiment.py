"""Experiment results: the results table, and its likelihood inside the funnel model.

An experiment's rows (one per arm and period; arms are option ids) enter the same PyMC model as the
history, in periods of their own. Each experiment period gets, for every rate node, a fresh logit
rate drawn from that node's hierarchical prior (``rate_mu``, ``rate_sigma``), shared by every arm in
that period; each arm's changes act on those rates through `changes.py`, the one definition the
forecast also uses. Root counts are conditioned on: the allocation sets them, so they say nothing
about traffic. The change parameters of the arms become random variables with the scenario's priors,
named as docs/design.md §4 names them (``mandatory_account.gate.pass``).

Likelihood, conditional on each row's observed counts of parents, sources and segments:

- a node whose count is one binomial draw given those counts (any stage of the control arm, a
  lifted or set stage, a segment) gets that binomial likelihood — exact;
- a stage fed by unobserved users (a gate's stage, whose passers are not observed; a stage that a
  gate's ``counts_as`` or a flow adds users to) gets a Gaussian likelihood with the exact mean and
  covariance of the forecast's generative semantics, jointly over the arm's such stages (a gate's
  stage and its ``counts_as`` stage share the passers, so their counts are positively correlated:
  treating them as independent would count the passers twice). The exact likelihood is a
  convolution of binomials (the gate's stage given the exempt count k at its parent P is
  Bin(k, r) + Bin(n_P - k, pass * r)). Bin(n_P, through * r), with ``through`` from
  `changes.gate_rates`, is exact only marginally over the exempt count, so it cannot be combined
  with the observed segment count, and it says nothing of the ``counts_as`` additions. The exact
  joint likelihood sums over the unobserved passers, too costly inside NUTS; with the counts of an
  experiment the multivariate central limit theorem makes the Gaussian with exact moments
  accurate, 1/12 is added to each variance for the rounding of a discrete count (Sheppard's
  correction), and a test checks the resulting posterior of ``pass`` against the exact
  convolution on a grid, besides recovery.

The exempt count at the gate's parent is the observed segment count when the segment is recorded at
that stage (exact); when it is recorded higher up, the count at the parent is hypergeometric (the
users reaching the parent are a random subset, as in the forecast) and its mean and variance enter
the moments. Experiment periods' effects are iid draws from the marginal prior also under
``period_effects: ar1`` (an experiment's periods are not placed on the history's time line).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.data import check_values, read_count_table
from ..io.scenario import InputError, Prior, Scenario, change_priors, did_you_mean
from . import changes as ch
from .changes import ChangePlan

LIKELIHOOD_VERSION = 1
SHEPPARD = 1.0 / 12.0  # variance of rounding a continuous approximation to a whole count


# ------------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class ExperimentData:
    """Experiment results, rows sorted by arm (control first), with the planned allocation."""

    path: Path
    control: str
    arms: tuple[str, ...]  # arms present, control first, then in the scenario's option order
    periods: tuple[str, ...]  # experiment periods ("all" when the table has no period column)
    arm_index: np.ndarray  # per row
    period_index: np.ndarray  # per row
    counts: dict[str, np.ndarray] = field(repr=False)  # column -> per-row counts
    allocation: dict[str, float] = field(default_factory=dict)  # planned share per arm, sums to 1
    # value stage -> per-row total value (``STAGE.value`` columns, optional; NaN = empty)
    values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def treatments(self) -> tuple[str, ...]:
        return self.arms[1:]

    def rows(self, arm: str) -> np.ndarray:
        return np.nonzero(self.arm_index == self.arms.index(arm))[0]

    def total(self, arm: str, column: str) -> int:
        return int(self.counts[column][self.rows(arm)].sum())

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(repr((self.arms, self.periods)).encode())
        h.update(np.ascontiguousarray(self.arm_index, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.period_index, dtype=np.int64).tobytes())
        for name in sorted(self.counts):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.counts[name], dtype=np.int64).tobytes())
        for name in sorted(self.values):  # absent for counts-only tables: their digest is unchanged
            h.update(f"{name}.value".encode())
            h.update(np.ascontiguousarray(self.values[name], dtype=np.float64).tobytes())
        return h.hexdigest()


def results_path(scenario: Scenario, given: str | Path | None) -> Path:
    """The results table: the path given on the command line, else the scenario's experiment.data."""
    if given is not None:
        return Path(given)
    if scenario.experiment is None:
        raise InputError(
            [
                f"{scenario.source or '<scenario>'}: experiment: no results file given and the "
                "scenario has no `experiment: {data: PATH}` block"
            ]
        )
    return scenario.resolve(scenario.experiment.data)


def read_results(scenario: Scenario, path: str | Path) -> ExperimentData:
    """Read and validate an experiment results table (raises InputError, one line per problem).

    Columns: `arm` (an option id), optional `period`, one count column per stage and segment.
    """
    path = Path(path)
    table = read_count_table(
        path, scenario, "arm", optional_columns=("period",), with_values=True, values_optional=True
    )
    present = [o for o in scenario.options if o in table.labels]
    planned = (scenario.experiment.allocation if scenario.experiment else None) or {}
    problems = [
        *check_values(table),
        *_arm_problems(scenario, path, table),
        *_row_key_problems(path, table),
        *_presence_problems(scenario, path, present),
        *_count_problems(scenario, path, table),
        *_allocation_problems(path, present, planned),
    ]
    if problems:
        raise InputError(problems)

    control = scenario.control_option
    periods_col = table.periods
    arms = (control, *[a for a in present if a != control])
    period_labels = tuple(dict.fromkeys(periods_col)) if periods_col is not None else ("all",)
    arm_idx = np.array([arms.index(a) for a in table.labels])
    per_idx = np.array(
        [period_labels.index(p) for p in periods_col] if periods_col else [0] * len(table)
    )
    order = np.lexsort((per_idx, arm_idx))
    shares = {a: float(planned[a]) if planned else 1.0 for a in arms}
    total = sum(shares.values())
    return ExperimentData(
        path=path,
        control=control,
        arms=arms,
        periods=period_labels,
        arm_index=arm_idx[order],
        period_index=per_idx[order],
        counts={c: v[order] for c, v in table.counts.items()},
        allocation={a: v / total for a, v in shares.items()},
        values={c: v[order] for c, v in table.values.items()},
    )


def _arm_problems(scenario: Scenario, path: Path, table: Any) -> list[str]:
    """Arms that are not option ids (each named once)."""
    options = list(scenario.options)
    out: list[str] = []
    seen_unknown: set[str] = set()
    for r, label in enumerate(table.labels):
        if label and label not in scenario.options and label not in seen_unknown:
            seen_unknown.add(label)
            out.append(
                f"{path}: row {r + 2}, column 'arm': unknown arm {label!r}"
                f"{did_you_mean(label, options)}; arms are option ids ({', '.join(options)})"
            )
    return out


def _row_key_problems(path: Path, table: Any) -> list[str]:
    """Empty periods, and an arm twice in one period (or twice in a table without periods)."""
    out: list[str] = []
    periods_col = table.periods
    if periods_col is not None:
        out += [
            f"{path}: row {r + 2}, column 'period': empty"
            for r, p in enumerate(periods_col)
            if not p
        ]
    keys = [(a, periods_col[r] if periods_col else "") for r, a in enumerate(table.labels)]
    for r, k in enumerate(keys):
        if keys.index(k) != r:
            where = f"period {k[1]!r}" if periods_col else "the table (add a `period` column)"
            out.append(f"{path}: row {r + 2}, column 'arm': arm {k[0]!r} appears twice in {where}")
    return out


def _presence_problems(scenario: Scenario, path: Path, present: list[str]) -> list[str]:
    """No rows for the control arm, or rows for the control arm only."""
    control = scenario.control_option
    if control not in present:
        src = "experiment.control" if scenario.experiment and scenario.experiment.control else None
        hint = f" (named by {src})" if src else " (the option without changes)"
        return [f"{path}: column 'arm': no rows for the control arm {control!r}{hint}"]
    if len(present) < 2:
        return [
            f"{path}: column 'arm': only the control arm {control!r}; an experiment compares it "
            "with at least one option"
        ]
    return []


def _count_problems(scenario: Scenario, path: Path, table: Any) -> list[str]:
    """Counts that cannot be: a stage above its parent, a segment above its stage. A stage that
    an arm's changes add users to (a gate's counts_as, a flow's target) may legitimately exceed
    its parent in that arm, never the traffic."""
    out: list[str] = []
    for r, arm in enumerate(table.labels):
        if arm not in scenario.options:
            continue
        fed = fed_stages(scenario, arm)
        for child, st in scenario.funnel.items():
            if st.from_ is None:
                continue
            parent = scenario.root if child in fed else st.from_
            c, p = table.counts[child][r], table.counts[parent][r]
            if c > p:
                out.append(
                    f"{path}: row {r + 2} (arm {arm}), column {child!r}: stage count {c} is "
                    f"larger than {'the traffic' if child in fed else 'its parent stage'} "
                    f"{parent!r} ({p})"
                )
        for g, seg in scenario.segments.items():
            c, p = table.counts[g][r], table.counts[seg.of][r]
            if c > p:
                out.append(
                    f"{path}: row {r + 2} (arm {arm}), column {g!r}: segment count {c} is larger "
                    f"than its stage {seg.of!r} ({p})"
                )
    return out


def _allocation_problems(path: Path, present: list[str], planned: dict[str, float]) -> list[str]:
    """Arms with rows but no planned share, and planned arms without rows."""
    shares = ", ".join(f"{k}: {v:g}" for k, v in planned.items())
    out = [
        f"{path}: column 'arm': arm {arm!r} has rows but no share in experiment.allocation "
        f"({shares})"
        for arm in present
        if planned and arm not in planned
    ]
    out += [
        f"{path}: column 'arm': experiment.allocation plans an arm {arm!r} that has no rows"
        for arm in planned
        if arm not in present
    ]
    return out


def fed_stages(scenario: Scenario, arm: str) -> set[str]:
    return ChangePlan.of(scenario, arm).fed


def tested_priors(scenario: Scenario, exp: ExperimentData) -> dict[str, Prior]:
    """The change parameters of the experiment's arms (those the likelihood informs): value
    lifts when the table has that stage's value column."""
    from .values import value_lifts

    out: dict[str, Prior] = {}
    priors_all = change_priors(scenario)
    for arm in exp.arms:
        out.update(ChangePlan.of(scenario, arm).params)
        for stage, name in value_lifts(scenario, arm):
            if stage in exp.values:
                out[name] = priors_all[name]
    return out


# ---------------------------------------------------------------- rates and count moments (xp)


def segment_moments(
    scenario: Scenario, plan: ChangePlan, segment: str, stage: str, obs: dict[str, Any]
) -> tuple[Any, Any]:
    """Mean and variance of the number of ``segment`` members at ``stage`` given the observed
    counts: observed when the segment is recorded there; else hypergeometric, since the users who
    reach ``stage`` are a random subset of those at the segment's stage (as in the forecast)."""
    if plan.holds_all(scenario, segment, stage):
        return obs[stage], 0.0
    of = scenario.segments[segment].of
    if of == stage:
        return obs[segment], 0.0
    N, K, n = obs[of], obs[segment], obs[stage]
    numeric = isinstance(N, (int, float, np.ndarray, np.generic))  # else a PyTensor variable
    maximum = np.maximum if numeric else _pt_maximum
    q = K / maximum(N, 1)
    fpc = (N - n) / maximum(N - 1, 1)
    return n * q, n * q * (1 - q) * fpc


def _pt_maximum(a: Any, b: Any) -> Any:
    import pytensor.tensor as pt

    return pt.maximum(a, b)


def mixed_moments(
    scenario: Scenario,
    plan: ChangePlan,
    rates: dict[str, Any],
    params: dict[str, Any],
    obs: dict[str, Any],
) -> tuple[list[str], list[Any], list[list[Any]]]:
    """Exact mean vector and covariance matrix of the counts of the arm's mixed stages, given the
    observed counts of their parents, sources and segments (entries broadcast over rows).

    Per user at a gate's parent P: exempt users convert to S at S's rate r; the others pass with
    probability ``pass`` and then convert at r, and each passer adds to ``counts_as`` with
    probability 1 - ``overlap``. So given the exempt count k, S's count has mean
    k r + (n_P - k) pass r, the counts_as additions mean (n_P - k) pass (1 - overlap), and the two
    covary by (n_P - k) pass (1 - pass) r (1 - overlap) through the shared passers.
    """
    stages = plan.mixed
    i = {s: j for j, s in enumerate(stages)}
    d = len(stages)
    mean: list[Any] = [0.0] * d
    cov: list[list[Any]] = [[0.0] * d for _ in range(d)]
    for s in stages:
        if s not in plan.gate_stages:  # the stage's own conversions from its parent
            n, r = obs[scenario.funnel[s].from_], rates[s]
            mean[i[s]] = mean[i[s]] + n * r
            cov[i[s]][i[s]] = cov[i[s]][i[s]] + n * r * (1 - r)
    for g in plan.gates:
        r, pi, o = rates[g.stage], params[g.pass_], params[g.overlap]
        n_p = obs[g.parent]
        if g.exempt is None:
            k, k_var = 0.0, 0.0
        else:
            k, k_var = segment_moments(scenario, plan, g.exempt, g.parent, obs)
        others = n_p - k
        _, through_rate, add_rate = ch.gate_rates(r, 0.0, pi, o)  # per non-exempt user
        s = i[g.stage]
        mean[s] = mean[s] + k * r + others * through_rate
        cov[s][s] = cov[s][s] + k * r * (1 - r) + others * through_rate * (1 - through_rate)
        grad_s = r - through_rate  # d mean_S / d k
        cov[s][s] = cov[s][s] + k_var * grad_s**2
        if g.counts_as:
            c = i[g.counts_as]
            mean[c] = mean[c] + others * add_rate
            cov[c][c] = cov[c][c] + others * add_rate * (1 - add_rate) + k_var * add_rate**2
            both = others * pi * (1 - pi) * r * (1 - o) - k_var * grad_s * add_rate
            cov[s][c] = cov[s][c] + both
            cov[c][s] = cov[c][s] + both
    for f in plan.flows:
        rho = params[f.rate]
        n_src = obs[f.source]
        if f.segment is None:
            pool, pool_var = n_src, 0.0
        else:
            m, v = segment_moments(scenario, plan, f.segment, f.source, obs)
            pool, pool_var = (n_src - m, v) if f.negated else (m, v)
        t = i[f.target]
        mean[t] = mean[t] + ch.flow_rate(pool, rho)  # the pool's expected flow into the target
        cov[t][t] = cov[t][t] + pool * rho * (1 - rho) + pool_var * rho**2
    return stages, mean, cov


def mvn_logp(x: list[Any], mean: list[Any], cov: list[list[Any]], xp: Any) -> Any:
    """Log density of a small multivariate normal, batched over rows, through an unrolled
    Cholesky factorisation (dimension = an arm's mixed stages, usually one or two)."""
    d = len(x)
    L: list[list[Any]] = [[0.0] * d for _ in range(d)]
    for j in range(d):
        var = cov[j][j] + SHEPPARD - sum(L[j][k] ** 2 for k in range(j))
        L[j][j] = xp.sqrt(var)
        for r in range(j + 1, d):
            L[r][j] = (cov[r][j] - sum(L[r][k] * L[j][k] for k in range(j))) / L[j][j]
    out: Any = 0.0
    z: list[Any] = []
    for j in range(d):
        zj = (x[j] - mean[j] - sum(L[j][k] * z[k] for k in range(j))) / L[j][j]
        z.append(zj)
        out = out - 0.5 * zj**2 - xp.log(L[j][j])
    return out - 0.5 * d * np.log(2 * np.pi)


# ------------------------------------------------------------------------ the PyMC likelihood


def add_likelihood(
    scenario: Scenario,
    exp: ExperimentData,
    nodes: tuple[str, ...],
    mean: Any,
    sigma: Any,
    value: Any = None,
) -> Any:
    """Add the experiment's likelihood to the model in context (see the module docstring), given
    the nodes' mean logit rate in the experiment's periods (``mean``: ``rate_mu``, with rate
    trends at the period after the history) and the sd of their period effects (``sigma``:
    ``rate_sigma``); ``value``: the value terms (`value_terms.ValueTerms`, with ``mu`` at the
    experiment's periods) when the table has value columns. Returns the experiment periods'
    logit rates (nodes x experiment periods, ``exp_rate_eta``; None without rate nodes)."""
    import pymc as pm
    import pytensor.tensor as pt

    from .priors import pymc_dist

    model = pm.modelcontext(None)
    if not nodes:
        return None
    model.add_coord("exp_period", list(exp.periods))
    # Centred like the history's rates: an experiment's periods hold thousands of users per arm, so
    # the data pin down each period's rate.
    eta = pm.Normal("exp_rate_eta", mean[:, None], sigma[:, None], dims=("node", "exp_period"))
    params = {name: pymc_dist(name, prior) for name, prior in tested_priors(scenario, exp).items()}
    n_list, p_list, x_list = [], [], []
    for arm in exp.arms:
        rows = exp.rows(arm)
        per = exp.period_index[rows]
        logits = {nd: eta[j][per] for j, nd in enumerate(nodes)}
        effects = {nd: logits[nd] - mean[j] for j, nd in enumerate(nodes)}
        counts = {c: exp.counts[c][rows] for c in exp.counts}
        n, p, x, mixed_logp = _arm_terms(scenario, arm, nodes, logits, effects, params, counts)
        if mixed_logp is not None:
            pm.Potential(f"exp_{arm}_mixed", mixed_logp)
        n_list += n
        p_list += p
        x_list += x
    pm.Binomial(
        "exp_obs",
        n=np.concatenate(n_list),
        p=pt.concatenate(p_list),
        observed=np.concatenate(x_list),
    )
    if exp.values:
        add_value_likelihood(scenario, exp, params, value.mu, value.sigma, value.k)
    return eta


def add_value_likelihood(
    scenario: Scenario, exp: Any, params: dict[str, Any], mu: Any, sigma: Any, k: Any
) -> None:
    """The experiment's value columns in the model in context: each arm's row total given its
    count is the same Gamma sum (per-unit shape ``k``), with ``log m = mu + sigma z[period]``
    (``mu``: ``value_mu`` with its trend at the period after the history; the experiment
    periods' standard normal effects ``exp_value_z`` shared by the arms, like the rates') times
    the arm's value lifts (``params``: the tested change parameters as PyMC variables)."""
    import pymc as pm
    import pytensor.tensor as pt

    from .values import value_lifts, value_stages

    stages = value_stages(scenario)
    K = len(exp.periods)
    z = pm.Normal("exp_value_z", 0.0, 1.0, shape=(len(stages), K))
    for i, stage in enumerate(stages):
        if stage not in exp.values:
            continue
        log_m = mu[i] + sigma[i] * z[i]
        for arm in exp.arms:
            rows = exp.rows(arm)
            n = exp.counts[stage][rows].astype(float)
            v = exp.values[stage][rows]
            keep = np.isfinite(v) & (n > 0)
            if not keep.any():
                continue
            lm = log_m[exp.period_index[rows][keep]]
            for lifted, name in value_lifts(scenario, arm):
                if lifted == stage:
                    lm = lm + pt.log(params[name])
            pm.Gamma(
                f"exp_value_obs_{arm}_{stage}",
                alpha=n[keep] * k[i],
                beta=k[i] * pt.exp(-lm),
                observed=v[keep],
            )


def _arm_terms(
    scenario: Scenario,
    arm: str,
    nodes: tuple[str, ...],
    logits: dict[str, Any],
    effects: dict[str, Any],
    params: dict[str, Any],
    counts: dict[str, np.ndarray],
    weights: Any = None,
) -> tuple[list[Any], list[Any], list[Any], Any]:
    """One arm's likelihood, given its rows' base logit rates and period effects per node: the
    binomial terms (parent counts, probabilities, observed counts) of its nodes whose count is one
    binomial draw, returned to be added in one variable, and the log density of its mixed stages
    (a Gaussian; None when there are none). ``weights`` (per period, 1 or 0): the periods whose
    mixed stages count (the others have zero counts, where the Gaussian is a constant)."""
    import pytensor.tensor as pt

    plan = ChangePlan.of(scenario, arm)
    rates = {nd: ch.expit(e, pt) for nd, e in logits.items()}
    rates = ch.apply_rates(plan, rates, effects, params, pt)
    obs = {
        c: v.astype(float) if isinstance(v, np.ndarray) else pt.cast(v, "float64")
        for c, v in counts.items()
    }
    node_parent = dict(zip(nodes, _parents(scenario, nodes), strict=True))
    mixed = plan.mixed
    n_list, p_list, x_list = [], [], []
    for nd in nodes:
        if nd in mixed:
            continue
        n_list.append(counts[node_parent[nd]])
        x_list.append(counts[nd])
        p_list.append(rates[nd])
    mixed_logp: Any = None
    if mixed:
        stages, mean, cov = mixed_moments(scenario, plan, rates, params, obs)
        x = [obs[s] for s in stages]
        mixed_logp = mvn_logp(x, mean, cov, pt)
        if weights is not None:
            mixed_logp = pt.switch(weights > 0, mixed_logp, 0.0)
        mixed_logp = mixed_logp.sum()
    return n_list, p_list, x_list, mixed_logp


# ------------------------------------------------------- periods under a launched option


def launched_params(scenario: Scenario, option: str) -> dict[str, Any]:
    """The launched option's change parameters as random variables with the scenario's priors
    (in the model in context)."""
    from .priors import pymc_dist

    plan = ChangePlan.of(scenario, option)
    return {name: pymc_dist(name, prior) for name, prior in plan.params.items()}


def launched_data(launched: Any, length: int | None = None) -> dict[str, Any]:
    """The launched periods' counts as data containers (``pm.Data`` ``launched_count_<column>``,
    in the model in context), so that actuals of the same length and columns give the same graph:
    a rerun with corrected actuals, or another team's, reuses the compiled model. ``length``
    (the padded form): over the last ``length`` periods of the time line, zero before the
    launched ones, so that actuals of any length give the same graph."""
    import pymc as pm

    counts = launched.table.counts
    if length is not None:
        counts = {c: np.pad(v, (length - len(v), 0)) for c, v in counts.items()}
    return {c: pm.Data(f"launched_count_{c}", v) for c, v in counts.items()}


def launched_logp(
    scenario: Scenario,
    launched: Any,
    nodes: tuple[str, ...],
    eta: Any,
    base: Any,
    params,
    counts: dict[str, Any],
    weights: Any = None,
) -> Any:
    """The log likelihood of periods observed under a launched option (`design.Launched`): one arm
    of an experiment, without a control, in periods that continue the history's time line.
    ``eta`` holds their logit rates (node x period, from the history's hierarchical prior),
    ``base`` the nodes' mean logit rate in those periods; the traffic is in the model's traffic
    likelihood. (A function of ``eta`` and ``base`` so that the model can weigh it under a
    drifting and a steady level of the rates.) ``counts``: the periods' counts by column
    (`launched_data`); ``weights`` (the padded form): 1 for the launched periods among them, 0
    for the periods before, whose counts are zero (the binomials add nothing there; the mixed
    stages' Gaussian is switched off)."""
    import pymc as pm
    import pytensor.tensor as pt

    logits = {nd: eta[j] for j, nd in enumerate(nodes)}
    effects = {nd: eta[j] - base[j] for j, nd in enumerate(nodes)}
    n, p, x, mixed_logp = _arm_terms(
        scenario, launched.option, nodes, logits, effects, params, counts, weights
    )
    out: Any = 0.0 if mixed_logp is None else mixed_logp
    if n:
        binom = pm.Binomial.dist(n=pt.concatenate(n), p=pt.concatenate(p))
        out = out + pm.logp(binom, pt.concatenate(x)).sum()
    return out


def launched_key_parts(scenario: Scenario, launched: Any) -> dict[str, Any]:
    """What periods under a launched option add to the fit's cache key: their data, the option's
    changes and the priors of their parameters (as elicited)."""
    from .priors import elicit

    opt = scenario.options[launched.option]
    plan = ChangePlan.of(scenario, launched.option)
    return {
        "likelihood_version": LIKELIHOOD_VERSION,
        "option": launched.option,
        "data": launched.table.digest(),
        "changes": [c.model_dump(mode="json", by_alias=True) for c in opt.changes],
        "priors": {name: elicit(p) for name, p in sorted(plan.params.items())},
    }


def extract_launched(dt: Any, scenario: Scenario, launched: Any) -> dict[str, np.ndarray]:
    """Posterior draws of the launched option's change parameters, shape (chains, draws)."""
    post = dt["posterior"]
    shape = np.asarray(post["level"].values).shape[:2]
    out = {}
    for name in ChangePlan.of(scenario, launched.option).params:
        if name in post:
            out[name] = np.broadcast_to(np.asarray(post[name].values, dtype=float), shape).copy()
    return out


def _parents(scenario: Scenario, nodes: tuple[str, ...]) -> list[str]:
    out = []
    for nd in nodes:
        if nd in scenario.funnel:
            out.append(scenario.funnel[nd].from_)
        else:
            out.append(scenario.segments[nd].of)
    return out


def key_parts(scenario: Scenario, exp: ExperimentData) -> dict[str, Any]:
    """What the experiment adds to the fit's cache key: its data, the arms' changes and the
    priors of their parameters (the interval priors as elicited)."""
    from .priors import elicit

    return {
        "likelihood_version": LIKELIHOOD_VERSION,
        "data": exp.digest(),
        "arms": {
            arm: [c.model_dump(mode="json", by_alias=True) for c in scenario.options[arm].changes]
            for arm in exp.arms
        },
        "priors": {name: elicit(p) for name, p in sorted(tested_priors(scenario, exp).items())},
    }


def extract(dt: Any, scenario: Scenario, exp: ExperimentData) -> dict[str, np.ndarray]:
    """Posterior draws of the tested change parameters, shape (chains, draws), by name (docs/design.md §4)."""
    post = dt["posterior"]
    out = {}
    for name in tested_priors(scenario, exp):
        a = np.asarray(post[name].values, dtype=float)
        if a.ndim == 0 or a.shape[:2] != np.asarray(post["rate_mu"].values).shape[:2]:
            shape = np.asarray(post["rate_mu"].values).shape[:2]
            a = np.broadcast_to(a, shape).copy()
        out[name] = a
    return out
