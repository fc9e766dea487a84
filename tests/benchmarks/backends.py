"""Where a cold fit's time goes, per sampler backend: compile and sampling split, cold (empty
compile caches) and warm (a second process on the same on-disk caches), with the fit's health.

Every configuration runs in its own subprocess (`--worker SPEC`) with a private fit cache and,
for a cold run, private compile caches (PyTensor compiledir, which holds the Numba cache, and
JAX's persistent cache); a warm run is a new process on the caches the cold run filled.

    .venv/bin/python tests/benchmarks/backends.py [--repeat 1] [--only numba,jax,...] [--json out.json]

`make bench` runs it after `bench.py`; the JAX configurations (nutpie's JAX backend, NumPyro,
BlackJAX) need jax, numpyro and blackjax installed and are skipped when jax is not importable.
The table and what it decided are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "mandatory_account.yaml"
BOOKING = ROOT / "scenarios" / "booking_q1.yaml"


# --------------------------------------------------------------------------------- the worker


def load(spec: dict):
    """Scenario and history of a spec, with its model overrides and history length."""
    from simulator.io.data import read_history
    from simulator.io.scenario import read_scenario

    sc = read_scenario(spec["scenario"])
    if spec.get("model"):
        sc = sc.model_copy(update={"model": sc.model.model_copy(update=spec["model"])})
    h = read_history(sc)
    if spec.get("periods"):
        h = h.rows(0, spec["periods"])
    return sc, h


def decision_ess(sc, h, dt) -> dict:
    """Min bulk/tail ESS over each KR's value (every option) and bulk ESS of each option's
    P(all met), through the forecast and decision the fit feeds."""
    import arviz as az
    import numpy as np

    from simulator.engine import decision, forecast
    from simulator.io.scenario import Structure
    from simulator.model import posterior_arrays
    from simulator.model.posterior import Fit

    arrays = posterior_arrays(dt, sc.model.period_effects == "ar1")
    C, D = arrays["level"].shape[:2]
    fit = Fit("bench", arrays, {}, len(h), Structure.of(sc).nodes)
    fc = forecast.simulate(sc, fit)
    ev = decision.evaluate(sc, fc, decision.targets(sc, h))
    bulk, tail, pmet = [], [], []
    for oe in ev.options.values():
        for v in oe.values.values():
            x = np.asarray(v, float).reshape(C, D)
            if x.std() > 0:
                bulk.append(float(az.ess(x, method="bulk")))
                tail.append(float(az.ess(x, method="tail", prob=(0.05, 0.95))))
        m = np.asarray(oe.all_met, float).reshape(C, D)
        if 0 < m.mean() < 1:
            pmet.append(float(az.ess(m, method="bulk")))
    return {
        "kr_ess_bulk": min(bulk) if bulk else None,
        "kr_ess_tail": min(tail) if tail else None,
        "pmet_ess_bulk": min(pmet) if pmet else None,
    }


def run_nutpie(model, mb, spec: dict, seed: int):
    import nutpie

    backend = spec["backend"]
    kw = {}
    if backend == "jax":
        kw = {
            "backend": "jax",
            "gradient_backend": "jax",
            "freeze_model": spec.get("freeze", False),
        }
    elif spec.get("freeze") is not None:
        kw = {"freeze_model": spec["freeze"]}
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model, **kw)
    t1 = time.perf_counter()
    dt = nutpie.sample(
        compiled,
        draws=spec.get("draws", mb.draws),
        tune=spec.get("tune", mb.tune),
        chains=spec.get("chains", mb.chains),
        seed=seed,
        target_accept=mb.accept,
        progress_bar=False,
    )
    t2 = time.perf_counter()
    return dt, t1 - t0, t2 - t1, compiled


def run_pymc(model, mb, spec: dict, seed: int):
    import pymc as pm

    t0 = time.perf_counter()
    with model:
        dt = pm.sample(
            draws=spec.get("draws", mb.draws),
            tune=spec.get("tune", mb.tune),
            chains=spec.get("chains", mb.chains),
            cores=2,
            random_seed=seed,
            target_accept=mb.accept,
            nuts_sampler="pymc",
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
        )
    total = time.perf_counter() - t0
    samp = float(dt["posterior"].attrs.get("sampling_time", total))
    return dt, total - samp, samp


def run_jax_sampler(model, mb, spec: dict, seed: int):
    """NumPyro/BlackJAX through `pymc.sampling.jax`: JAX compiles inside the sampling call, so
    the split is the first call (compile + sample) against a second call in the same process
    (sample only, compiled)."""
    from pymc.sampling.jax import sample_jax_nuts

    def once(s):
        t = time.perf_counter()
        dt = sample_jax_nuts(
            draws=spec.get("draws", mb.draws),
            tune=spec.get("tune", mb.tune),
            chains=spec.get("chains", mb.chains),
            target_accept=mb.accept,
            random_seed=s,
            model=model,
            nuts_sampler=spec["backend"],
            chain_method="vectorized",
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
        )
        return dt, time.perf_counter() - t

    dt, first = once(seed)
    if spec.get("second", True):
        _, second = once(seed + 1)
        return dt, first - second, second
    return dt, first, float("nan")


def worker(spec: dict) -> dict:
    t_start = time.perf_counter()
    import warnings

    warnings.simplefilter("ignore")
    if spec.get("jax_cache"):
        import jax

        jax.config.update("jax_compilation_cache_dir", spec["jax_cache"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    import pymc  # noqa: F401

    from simulator import model as build
    from simulator.model import design

    if spec.get("walk_terms"):
        design.walk_terms = lambda T, k=spec["walk_terms"]: k
    t_import = time.perf_counter() - t_start
    sc, h = load(spec)
    t = time.perf_counter()
    model = build.build_model(sc, h)
    t_build = time.perf_counter() - t
    mb, backend = sc.model, spec["backend"]
    if backend in ("numba", "jax"):
        dt, t_compile, t_sample, _ = run_nutpie(model, mb, spec, sc.seed)
    elif backend == "pymc":
        dt, t_compile, t_sample = run_pymc(model, mb, spec, sc.seed)
    else:
        dt, t_compile, t_sample = run_jax_sampler(model, mb, spec, sc.seed)
    out = {
        "import": t_import,
        "build": t_build,
        "compile": t_compile,
        "sample": t_sample,
        "T": len(h),
        "n_free": sum(int(v.size) for v in model.initial_point().values()),
        **build.diagnostics(dt),
    }
    print(json.dumps(out), file=sys.stderr, flush=True)
    if spec.get("decision"):
        out.update(decision_ess(sc, h, dt))
    out["wall"] = time.perf_counter() - t_start
    return out


# --------------------------------------------------------------------------------- the driver


def run(spec: dict, env_extra: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_extra)
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    if p.returncode != 0:
        return {
            "error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "?",
            "proc": wall,
        }
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["proc"] = wall
    return out


def fresh_caches(tmp: Path, name: str) -> dict:
    d = Path(tempfile.mkdtemp(prefix=name + "-", dir=tmp))
    for sub in ("pytensor", "numba", "jax", "fits"):
        (d / sub).mkdir()
    return {
        "PYTENSOR_FLAGS": f"base_compiledir={d / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(d / "numba"),
        "JAX_COMPILATION_CACHE_DIR": str(d / "jax"),
        "KRSIM_CACHE_DIR": str(d / "fits"),
    }


CONFIGS = {
    # name: (spec extras, cold+warm?)
    "numba": {"backend": "numba"},
    "numba-frozen": {"backend": "numba", "freeze": True},
    "numba-walk8": {"backend": "numba", "walk_terms": 4},
    "jax": {"backend": "jax"},
    "pymc": {"backend": "pymc"},
    "numpyro": {"backend": "numpyro"},
    "blackjax": {"backend": "blackjax"},
}


def fmt(x, w=7, p=1):
    if x is None or (isinstance(x, float) and x != x):
        return "-".rjust(w)
    if isinstance(x, float):
        return f"{x:{w}.{p}f}"
    return str(x).rjust(w)


def table(rows: list[tuple[str, str, dict]]) -> str:
    head = (
        f"{'config':<16}{'run':<6}{'proc s':>8}{'compile':>8}{'sample':>8}{'build':>7}"
        f"{'rhat':>7}{'essB':>7}{'essT':>7}{'div':>5}{'krB':>7}{'krT':>7}{'pmetB':>7}"
    )
    lines = [head, "-" * len(head)]
    for name, kind, r in rows:
        if "error" in r:
            lines.append(f"{name:<16}{kind:<6}ERROR {r['error'][:90]}")
            continue
        lines.append(
            f"{name:<16}{kind:<6}{fmt(r['proc'], 8)}{fmt(r['compile'], 8)}{fmt(r['sample'], 8)}"
            f"{fmt(r['build'], 7)}{fmt(r['rhat_max'], 7, 3)}{fmt(r['ess_bulk_min'], 7, 0)}"
            f"{fmt(r['ess_tail_min'], 7, 0)}{fmt(r['divergences'], 5)}"
            f"{fmt(r.get('kr_ess_bulk'), 7, 0)}{fmt(r.get('kr_ess_tail'), 7, 0)}"
            f"{fmt(r.get('pmet_ess_bulk'), 7, 0)}"
        )
    return "\n".join(lines)


def median_runs(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    out = dict(ok[0])
    for k, v in ok[0].items():
        if isinstance(v, float):
            vals = [r[k] for r in ok if isinstance(r.get(k), float)]
            out[k] = statistics.median(vals)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--only", default="numba,jax,pymc,numpyro")
    ap.add_argument("--scenario", default=str(SEED))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--decision", action="store_true", help="ESS of KR values and P(met)")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return
    names = a.only.split(",")
    try:
        import jax  # noqa: F401
    except ImportError:
        skipped = [n for n in names if CONFIGS[n]["backend"] in ("jax", "numpyro", "blackjax")]
        if skipped:
            print(f"skipped (jax is not installed): {', '.join(skipped)}", file=sys.stderr)
        names = [n for n in names if n not in skipped]
    tmp = Path(tempfile.mkdtemp(prefix="krsim-backends-"))
    results: dict[tuple[str, str], list[dict]] = {}
    for rep in range(a.repeat):  # interleaved: each repetition runs every configuration
        for name in names:
            spec = {"scenario": a.scenario, "decision": a.decision, **CONFIGS[name]}
            env = fresh_caches(tmp, name)
            if spec["backend"] in ("jax", "numpyro", "blackjax"):
                spec["jax_cache"] = env["JAX_COMPILATION_CACHE_DIR"]
            for kind in ("cold", "warm"):
                r = run(spec, env)
                results.setdefault((name, kind), []).append(r)
                print(f"[{rep}] {name} {kind}: {json.dumps(r)}", file=sys.stderr, flush=True)
    rows = [(n, k, median_runs(results[(n, k)])) for n in names for k in ("cold", "warm")]
    print(f"scenario {Path(a.scenario).name}, median of {a.repeat}, load {os.getloadavg()}")
    print(table(rows))
    print(
        "proc: process wall time (imports, build, compile, sampling, diagnostics); "
        "essB/essT: min bulk/tail ESS over the fitted parameters; krB/krT: min ESS of the KR "
        "values, pmetB: of P(all met)"
    )
    if a.json:
        Path(a.json).write_text(json.dumps({f"{n}/{k}": v for (n, k), v in results.items()}))


if __name__ == "__main__":
    main()
