"""Sampler choices measured on this machine: time to a fixed effective sample size.

Each configuration (sampler / chains / parameterisation of the rate period effects) runs in its own
subprocess on the same model and data, and reports the wall time of ``pm.sample`` split into
compilation and sampling, the smallest bulk ESS over the parameters krsim uses (level, trend, alpha,
rate_mu, rate_sigma, rate_eta), the largest R-hat and the number of divergences. The metric is
``seconds per 1000 effective draws = seconds / min ESS bulk * 1000`` (lower is better).

    .venv/bin/python tests/benchmarks/samplers.py --scenario seed
    .venv/bin/python tests/benchmarks/samplers.py --scenario large --periods 104 --configs nutpie/4/centred,nutpie/4/noncentred

Configurations are ``SAMPLER/CHAINS/PARAMETERISATION``:
  SAMPLER: ``pymc`` (PyMC's NUTS, cores=2), ``nutpie`` (numba backend, as krsim runs it),
  ``nutpie-fastmath`` (``fastmath`` passed to nutpie's numba compilation), ``nutpie-lowrank``
  (low-rank mass matrix adaptation; very slow here, not in the default list);
  PARAMETERISATION: ``centred`` (``rate_eta ~ Normal(mu, sigma)``), ``noncentred``
  (``rate_eta = mu + sigma * z``), ``mixed`` (centred only for the nodes whose data pin down each
  period's rate: ``simulator.model.centred_nodes``, krsim's default).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SEED_SCENARIO = ROOT / "scenarios" / "mandatory_account.yaml"
DEFAULT_CONFIGS = (
    "pymc/4/centred",
    "pymc/2/centred",
    "pymc/4/noncentred",
    "nutpie/4/centred",
    "nutpie/2/centred",
    "nutpie/4/noncentred",
    "nutpie/2/noncentred",
    "nutpie/4/mixed",
    "nutpie-fastmath/4/centred",
)
DIAG_VARS = ("level", "trend", "alpha", "rate_mu", "rate_sigma", "rate_eta")


def scenario_path(name: str, periods: int, build_dir: Path) -> Path:
    if name == "seed":
        return SEED_SCENARIO
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_large_scenario

    return make_large_scenario.write(build_dir, periods)


def build_variant(scenario, history, param: str):
    """krsim's history model (iid period effects) with the rate effects centred, non-centred or
    mixed (krsim's ``centred_nodes`` rule), and the logit rates kept as ``rate_eta`` so that every
    variant is diagnosed on the same quantities."""
    from simulator.io.scenario import Structure
    from simulator.model import centred_nodes

    if scenario.model.period_effects != "iid":
        raise SystemExit("the variants cover iid period effects only")
    import pymc as pm
    import pytensor.tensor as pt

    mb = scenario.model
    st = Structure.of(scenario)
    T = len(history)
    t = np.arange(T) - (T - 1) / 2
    y = history.counts[st.root]
    n_node = np.stack([history.counts[n] for n in st.nodes])
    n_par = np.stack([history.counts[p] for p in st.parents])
    if param not in ("centred", "noncentred", "mixed"):
        raise SystemExit(f"unknown parameterisation {param!r}")
    centred = (
        centred_nodes(n_node, n_par)
        if param == "mixed"
        else np.full(len(st.nodes), param == "centred", dtype=bool)
    )
    coords = {"period": list(history.labels), "node": list(st.nodes)}
    with pm.Model(coords=coords) as model:
        level = pm.Normal("level", float(np.log(max(y.mean(), 1.0))), mb.level_sd)
        log_mu = level + pt.zeros(T)
        if mb.trend:
            log_mu = log_mu + pm.Normal("trend", 0.0, mb.trend_sd) * t
        alpha = pm.Gamma("alpha", alpha=mb.alpha_shape, beta=mb.alpha_rate)
        pm.NegativeBinomial(
            "traffic_obs", mu=pt.exp(log_mu), alpha=alpha, observed=y, dims="period"
        )
        mu = pm.Normal("rate_mu", 0.0, mb.rate_mu_sd, dims="node")
        sigma = pm.HalfNormal("rate_sigma", mb.rate_sigma_scale, dims="node")
        nc = np.flatnonzero(~centred)
        c = np.flatnonzero(centred)
        eta = pt.zeros((len(st.nodes), T))
        if len(nc):
            z = pm.Normal("rate_z", 0.0, 1.0, shape=(len(nc), T))
            eta = pt.set_subtensor(eta[nc], mu[nc, None] + sigma[nc, None] * z)
        if len(c):
            e = pm.Normal("rate_eta_c", mu[c, None], sigma[c, None], shape=(len(c), T))
            eta = pt.set_subtensor(eta[c], e)
        eta = pm.Deterministic("rate_eta", eta, dims=("node", "period"))
        pm.Binomial("rate_obs", n=n_par, logit_p=eta, observed=n_node, dims=("node", "period"))
    model.centred_nodes = [n for n, ok in zip(st.nodes, centred, strict=True) if ok]
    return model


def run_one(config: str, scenario_file: Path, draws: int, tune: int) -> dict:
    """Fit one configuration in this process and return its figures."""
    import warnings

    t_import = time.perf_counter()
    import arviz as az
    import pymc as pm

    from simulator.api import load_scenario
    from simulator.io.data import read_history

    t0 = time.perf_counter()
    sampler, chains, param = config.split("/")
    chains = int(chains)
    s = load_scenario(scenario_file)
    model = build_variant(s, read_history(s), param)
    kwargs: dict = {"cores": 2}
    if sampler == "pymc":
        kwargs["nuts_sampler"] = "pymc"
    else:
        kwargs["nuts_sampler"] = "nutpie"
        if sampler == "nutpie-fastmath":
            kwargs["compile_kwargs"] = {"fastmath": True}
        elif sampler == "nutpie-lowrank":
            kwargs["nuts_sampler_kwargs"] = {"adaptation": "low_rank"}
        elif sampler != "nutpie":
            raise SystemExit(f"unknown sampler {sampler!r}")
    t1 = time.perf_counter()
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=s.seed,
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
            **kwargs,
        )
    t2 = time.perf_counter()
    post = dt["posterior"]
    sampling = float(post.attrs.get("sampling_time", np.nan))
    names = [n for n in DIAG_VARS if n in post.data_vars]
    summ = az.summary(dt, var_names=names, kind="diagnostics", round_to="none")
    ess = summ["ess_bulk"].astype(float)
    hyper = summ.loc[[i for i in summ.index if not str(i).startswith("rate_eta")]]
    div = int(np.asarray(dt["sample_stats"]["diverging"].values).sum())
    fit = t2 - t1
    return {
        "config": config,
        "scenario": scenario_file.name,
        "import_s": t0 - t_import,
        "build_s": t1 - t0,
        "fit_s": fit,
        "sampling_s": sampling,
        "compile_s": fit - sampling if np.isfinite(sampling) else np.nan,
        "ess_bulk_min": float(ess.min()),
        "ess_worst": str(ess.idxmin()),
        "ess_bulk_min_hyper": float(hyper["ess_bulk"].astype(float).min()),
        "ess_tail_min": float(summ["ess_tail"].astype(float).min()),
        "rhat_max": float(summ["r_hat"].astype(float).max()),
        "divergences": div,
        "s_per_1000_ess": fit / float(ess.min()) * 1000,
        "sampling_s_per_1000_ess": sampling / float(ess.min()) * 1000,
        "centred_nodes": getattr(model, "centred_nodes", None),
        "load": os.getloadavg()[0],
    }


def run_configs(
    configs: list[str], scenario_file: Path, draws: int, tune: int, timeout: float
) -> list[dict]:
    out = []
    for cfg in configs:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            cfg,
            "--scenario-file",
            str(scenario_file),
            "--draws",
            str(draws),
            "--tune",
            str(tune),
        ]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            out.append({"config": cfg, "error": f"timeout after {timeout:.0f} s"})
            print(f"  {cfg}: timeout", file=sys.stderr)
            continue
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode or not lines:
            out.append({"config": cfg, "error": (p.stderr.strip().splitlines() or ["?"])[-1]})
            print(f"  {cfg}: failed: {out[-1]['error']}", file=sys.stderr)
            continue
        r = json.loads(lines[-1])
        out.append(r)
        print(
            f"  {cfg}: fit {r['fit_s']:.1f} s, ESS {r['ess_bulk_min']:.0f}, "
            f"R-hat {r['rhat_max']:.3f}, load {r['load']:.1f}",
            file=sys.stderr,
        )
    return out


def table(rows: list[dict]) -> str:
    head = (
        f"{'configuration':<28} {'fit s':>7} {'compile':>7} {'sample':>7} {'ESS min':>8} "
        f"{'ESS hyp':>8} {'R-hat':>6} {'div':>4} {'s/1k ESS':>9} {'smp/1k':>7} {'load':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['config']:<28} {r['error']}")
            continue
        lines.append(
            f"{r['config']:<28} {r['fit_s']:7.1f} {r['compile_s']:7.1f} {r['sampling_s']:7.1f} "
            f"{r['ess_bulk_min']:8.0f} {r['ess_bulk_min_hyper']:8.0f} {r['rhat_max']:6.3f} "
            f"{r['divergences']:4d} {r['s_per_1000_ess']:9.1f} {r['sampling_s_per_1000_ess']:7.1f} "
            f"{r['load']:5.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", choices=("seed", "large"), default="seed")
    p.add_argument("--periods", type=int, default=104, choices=(52, 104, 260, 520))
    p.add_argument("--configs", help="comma-separated configurations (default: all)")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=1, help="run the list this many times")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per configuration")
    p.add_argument("--json", type=Path, help="also write the rows to this file")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--scenario-file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.scenario_file, args.draws, args.tune)))
        return 0
    configs = args.configs.split(",") if args.configs else list(DEFAULT_CONFIGS)
    with tempfile.TemporaryDirectory(prefix="krsim-samplers-") as tmp:
        scenario_file = scenario_path(args.scenario, args.periods, Path(tmp))
        label = "seed" if args.scenario == "seed" else f"large, {args.periods} periods"
        print(f"scenario: {label} ({scenario_file.name}); draws {args.draws}, tune {args.tune}")
        rows = []
        for _ in range(args.repeat):
            rows += run_configs(configs, scenario_file, args.draws, args.tune, args.timeout)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
