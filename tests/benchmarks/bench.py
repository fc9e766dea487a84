"""`make bench`: krsim's speed, side by side in one run, for the seed scenario and a large one.

Every figure is the wall time of a fresh subprocess, so it includes Python start-up and imports, as
a user sees it:
- plain PyMC fit: the same model written as a notebook would (``pm.Model``, PyMC's own NUTS, 4 chains,
  cores=2, ``pm.sample`` defaults otherwise), with a fresh PyTensor compile directory;
- bare start: ``python -c "import numpy, scipy.stats"``;
- krsim cold fit: ``krsim run --json`` with a fresh PyTensor compile directory and an empty fit cache;
- krsim warm fit: the same, compiled, with ``--no-cache``;
- cache-hit what-if: a copy of the scenario with one target changed (must reuse the fit);
- ``krsim check``.
Fits run once; the short runs (bare, check, cache hit) run ``--repeat`` times, interleaved, and the
median is shown with the spread. Other work on the machine makes timings noisy: compare the ratios,
which are measured minutes apart, and read the load average printed with the table.

Python bytecode: the subprocesses share a private bytecode cache (``PYTHONPYCACHEPREFIX``, filled by
a warm-up run) and ``PYTHONDONTWRITEBYTECODE`` is cleared, as for a normally installed package;
``--no-bytecode-cache`` keeps the environment as it is.

    .venv/bin/python tests/benchmarks/bench.py [--quick] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SEED_SCENARIO = ROOT / "scenarios" / "mandatory_account.yaml"
KRSIM = Path(sys.executable).with_name("krsim")
BARE = [sys.executable, "-c", "import numpy, scipy.stats"]
PERIODS = (52, 104, 260, 520)

# The model written as a notebook would: independent of krsim, same likelihood and default priors.
NOTEBOOK = """
import json, sys
import numpy as np
import pandas as pd
import pymc as pm

spec = json.loads(sys.argv[1])
df = pd.read_csv(spec["history"])
nodes, parents = spec["nodes"], spec["parents"]
y = df[spec["root"]].to_numpy()
T = len(df)
t = np.arange(T) - (T - 1) / 2
n_node = df[nodes].to_numpy().T
n_par = df[parents].to_numpy().T

with pm.Model() as model:
    level = pm.Normal("level", np.log(y.mean()), 1.0)
    log_mu = level + (pm.Normal("trend", 0.0, 0.05) * t if spec["trend"] else 0.0)
    alpha = pm.Gamma("alpha", alpha=2.0, beta=0.02)
    pm.NegativeBinomial("traffic", mu=pm.math.exp(log_mu), alpha=alpha, observed=y)
    mu = pm.Normal("rate_mu", 0.0, 2.5, shape=len(nodes))
    sigma = pm.HalfNormal("rate_sigma", 0.5, shape=len(nodes))
    eta = pm.Normal("rate_eta", mu[:, None], sigma[:, None], shape=(len(nodes), T))
    pm.Binomial("rates", n=n_par, logit_p=eta, observed=n_node)
    idata = pm.sample(nuts_sampler=spec.get("sampler", "pymc"), chains=4, cores=2,
                      random_seed=spec["seed"], progressbar=False)
print(float(idata["posterior"]["rate_mu"].mean()))
"""


@dataclass
class Run:
    wall: float
    rss_mb: float
    code: int
    stdout: str
    stderr: str
    refit: bool = False


def run(cmd: list[str], env: dict[str, str], timeout: float = 3600.0) -> Run:
    """Run a subprocess; wall time and its own peak RSS (``wait4`` rusage of that child)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=ROOT)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        r = Run(
            wall, usage.ru_maxrss / 1024, p.returncode, out.read().decode(), err.read().decode()
        )
    if r.code:
        tail = "\n".join(r.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.code}):\n{tail}")
    return r


def cold_env(d: Path) -> dict[str, str]:
    """This process's environment with the fit cache and the compile caches (PyTensor's, which
    holds numba's too) in the folder ``d``: a new user's first run when ``d`` is new and empty.
    Python's bytecode is kept, as on a user's machine (`make` unexports the variable too)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {
        "KRSIM_CACHE_DIR": str(d / "fits"),
        "NUMBA_CACHE_DIR": str(d / "numba"),
        "PYTENSOR_FLAGS": f"base_compiledir={d / 'pytensor'}",
    }


class Bench:
    def __init__(self, work: Path, pyc: Path | None, log):
        self.work = work
        self.log = log
        env = dict(os.environ)
        env.pop("KRSIM_NO_CACHE", None)
        env.pop("PYTENSOR_FLAGS", None)
        if pyc is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(pyc)
        self.env = env

    def fresh(self, name: str) -> Path:
        d = self.work / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def env_for(self, *, compiledir: Path, cache: Path) -> dict[str, str]:
        env = dict(self.env)
        env["PYTENSOR_FLAGS"] = f"base_compiledir={compiledir}"
        env["NUMBA_CACHE_DIR"] = str(compiledir / "numba")
        env["KRSIM_CACHE_DIR"] = str(cache)
        return env


def what_if_copy(scenario: Path, out: Path) -> tuple[Path, str]:
    """A copy of the scenario with the first key result's target changed (the fit is unchanged)."""
    raw = yaml.safe_load(scenario.read_text())
    raw["history"] = str((scenario.parent / raw["history"]).resolve())
    kr = raw["key_results"][0]
    old = str(kr["target"]).strip()
    if old.endswith("%"):
        kr["target"] = f"{float(old.rstrip('%')) + 5:+g}%"
    else:
        op, value = (old[:2], old[2:]) if old[:2] in (">=", "<=") else (">=", old)
        kr["target"] = f"{op} {float(value) * 0.98:g}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{scenario.stem}_what_if.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path, kr["id"]


def notebook_spec(scenario: Path) -> str:
    raw = yaml.safe_load(scenario.read_text())
    nodes, parents = [], []
    for s, st in raw["funnel"].items():
        if st.get("from"):
            nodes.append(s)
            parents.append(st["from"])
    for g, seg in (raw.get("segments") or {}).items():
        nodes.append(g)
        parents.append(seg["of"])
    root = next(s for s, st in raw["funnel"].items() if not st.get("from"))
    return json.dumps(
        {
            "history": str(scenario.parent / raw["history"]),
            "root": root,
            "nodes": nodes,
            "parents": parents,
            "trend": bool((raw.get("model") or {}).get("trend", False)),
            "seed": raw.get("seed", 2024),
        }
    )


def p_met_table(summary: dict) -> dict[tuple[str, str], tuple[float, float]]:
    return {
        (o, k): (kd["p_met"], kd["p_met_se"])
        for o, od in summary["options"].items()
        for k, kd in od["key_results"].items()
    }


def compare_p_met(a: dict, b: dict, skip: str, n_draws: int) -> tuple[float, float, bool]:
    """Largest |difference| of P(met) and the same in units of its MC error; True when within 3 se."""
    ta, tb = p_met_table(a), p_met_table(b)
    worst, worst_z, ok = 0.0, 0.0, True
    for key, (pa, sa) in ta.items():
        if key[1] == skip:
            continue
        pb, sb = tb[key]
        se = (sa**2 + sb**2) ** 0.5 + 1.0 / n_draws  # a floor for P(met) of exactly 0 or 1
        d = abs(pa - pb)
        worst, worst_z = max(worst, d), max(worst_z, d / se)
        ok &= d <= 3 * se
    return worst, worst_z, ok


def code_fingerprint() -> str:
    """A hash of krsim's source: the bench warns when it changed while the bench ran."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((ROOT / "simulator").rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def fits_in(cache: Path) -> int:
    d = cache / "fits"
    return len([p for p in d.iterdir() if not p.name.startswith(".")]) if d.exists() else 0


def measure_scenario(b: Bench, name: str, scenario: Path) -> dict:
    """Plain PyMC, cold and warm krsim fits of one scenario; leaves a filled cache for the what-if."""
    log = b.log
    spec = json.loads(notebook_spec(scenario))
    periods = len(Path(spec["history"]).read_text().splitlines()) - 1
    label = f"{name.rstrip('0123456789')} ({periods} periods, {len(spec['nodes'])} rates)"
    res: dict = {"name": name, "scenario": scenario, "label": label}
    nb = b.work / "notebook.py"
    nb.write_text(NOTEBOOK)
    log(f"[{name}] plain PyMC fit (PyMC NUTS, 4 chains, cores=2, fresh compile dir)...")
    env = b.env_for(compiledir=b.fresh(f"{name}-pymc-compile"), cache=b.fresh(f"{name}-unused"))
    res["pymc"] = run([sys.executable, str(nb), notebook_spec(scenario)], env)
    log(f"  {res['pymc'].wall:.1f} s")

    compiledir, cache = b.fresh(f"{name}-compile"), b.fresh(f"{name}-cache")
    env = b.env_for(compiledir=compiledir, cache=cache)
    log(f"[{name}] krsim cold fit...")
    res["cold"] = run([str(KRSIM), "run", "--json", str(scenario)], env)
    log(f"  {res['cold'].wall:.1f} s")
    log(f"[{name}] krsim warm fit (--no-cache)...")
    res["warm"] = run([str(KRSIM), "run", "--json", "--no-cache", str(scenario)], env)
    log(f"  {res['warm'].wall:.1f} s")
    res["env"] = env
    res["cache"] = cache
    res["what_if"], res["changed_kr"] = what_if_copy(scenario, b.work / f"{name}-what-if")
    res["hits"], res["checks"] = [], []
    return res


def short_runs(b: Bench, scenarios: list[dict], repeat: int) -> list[Run]:
    """Bare start, check and cache-hit what-if, interleaved so that load drift hits all alike."""
    bare = []
    for i in range(repeat):
        b.log(f"short runs, round {i + 1}/{repeat}...")
        bare.append(run(BARE, b.env))
        for s in scenarios:
            before = fits_in(s["cache"])
            hit = run([str(KRSIM), "run", "--json", str(s["what_if"])], s["env"])
            hit.refit = "Fitting" in hit.stderr or fits_in(s["cache"]) != before
            s["hits"].append(hit)
            s["checks"].append(run([str(KRSIM), "check", str(s["scenario"])], s["env"]))
    return bare


def growth(b: Bench, work: Path, sizes: list[int], env: dict, reuse: dict[int, Run]) -> dict:
    """Warm krsim fit (--no-cache) of the large funnel at several history lengths."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_large_scenario

    out = {}
    for n in sizes:
        if n in reuse:
            out[n] = reuse[n]
            continue
        path = make_large_scenario.write(work / f"growth-{n}", n)
        b.log(f"[growth] krsim warm fit, {n} periods...")
        out[n] = run([str(KRSIM), "run", "--json", "--no-cache", str(path)], env)
        b.log(f"  {out[n].wall:.1f} s")
    return out


def spread(runs: list[Run]) -> tuple[float, float, float]:
    w = [r.wall for r in runs]
    return statistics.median(w), min(w), max(w)


def render(scenarios: list[dict], bare: list[Run], grow: dict[int, Run], meta: dict) -> str:
    bare_s, bare_lo, bare_hi = spread(bare)
    lines = [
        f"krsim bench: {meta['cpus']} cores, load average {meta['load0']:.1f} at start, "
        f"{meta['load1']:.1f} at end; {meta['minutes']:.1f} min in all; source {meta['code0']}",
        "wall seconds of a fresh process (imports included); xPyMC = / plain PyMC fit, "
        "xbare = / bare start",
        "",
    ]
    if meta["code1"] != meta["code0"]:
        lines[1:1] = [
            f"WARNING: krsim's source changed during the bench ({meta['code0']} -> "
            f"{meta['code1']}); runs before and after the change are not comparable"
        ]
    head = f"{'':34}"
    sub = f"{'':34}"
    for s in scenarios:
        head += f"{s['label']:^36}"
        sub += f"{'seconds':>9}{'xPyMC':>7}{'xbare':>7}{'RSS MB':>8}{'':5}"
    lines += [head, sub, "-" * len(sub)]

    def row(label: str, pick) -> None:
        line = f"{label:<34}"
        for s in scenarios:
            runs = pick(s)
            if runs is None:
                line += f"{'':36}"
                continue
            runs = runs if isinstance(runs, list) else [runs]
            sec, lo, hi = spread(runs)
            rss = max(r.rss_mb for r in runs)
            line += f"{sec:9.2f}{sec / s['pymc'].wall:7.2f}{sec / bare_s:7.1f}{rss:8.0f}" + (
                f" {hi - lo:4.1f}" if len(runs) > 1 else f"{'':5}"
            )
        lines.append(line.rstrip())

    row("plain PyMC fit (cold)", lambda s: s["pymc"])
    row('bare "import numpy, scipy.stats"', lambda s: bare)
    row("krsim run, cold fit", lambda s: s["cold"])
    row("krsim run, warm fit (--no-cache)", lambda s: s["warm"])
    row("krsim run, cache-hit what-if", lambda s: s["hits"])
    row("krsim check", lambda s: s["checks"])
    lines.append(
        f"(short runs: median of {len(bare)}; the last column is their max - min spread in s; "
        f"bare start {bare_lo:.2f}-{bare_hi:.2f} s)"
    )
    lines.append("")
    for s in scenarios:
        refits = sum(r.refit for r in s["hits"])
        hit_json = json.loads(s["hits"][0].stdout)
        cold_json = json.loads(s["cold"].stdout)
        warm_json = json.loads(s["warm"].stdout)
        n = cold_json["draws"]
        d_hit, z_hit, ok_hit = compare_p_met(cold_json, hit_json, s["changed_kr"], n)
        d_warm, z_warm, ok_warm = compare_p_met(cold_json, warm_json, "", n)
        lines.append(
            f"{s['label']}: cache-hit what-if ({s['changed_kr']} target changed) "
            + ("reused the fit" if not refits else f"REFITTED in {refits} of {len(s['hits'])} runs")
            + f"; peak RSS {max(r.rss_mb for r in s['hits']):.0f} MB"
        )
        lines.append(
            f"  P(met), other key results, cache hit vs fresh fit: max |diff| {d_hit:.4f} "
            f"({z_hit:.1f} MC se) {'ok' if ok_hit else 'MISMATCH'}; warm refit vs cold fit: "
            f"{d_warm:.4f} ({z_warm:.1f} se) {'ok' if ok_warm else 'MISMATCH'}"
        )
        dg = cold_json["diagnostics"]
        lines.append(
            f"  fit diagnostics: R-hat max {dg['rhat_max']:.3f}, ESS bulk min {dg['ess_bulk_min']:.0f}, "
            f"divergences {dg['divergences']}"
        )
    lines += ["", "fit time vs history length (large funnel, krsim warm fit, --no-cache)"]
    lines.append(
        f"{'periods':>8}{'seconds':>10}{'ms/period':>11}{'x first':>9}{'R-hat':>8}{'ESS':>7}"
    )
    first = min(grow.items())[1].wall if grow else 1.0
    for n, r in sorted(grow.items()):
        dg = json.loads(r.stdout)["diagnostics"]
        lines.append(
            f"{n:8d}{r.wall:10.1f}{r.wall / n * 1000:11.0f}{r.wall / first:9.2f}"
            f"{dg['rhat_max']:8.3f}{dg['ess_bulk_min']:7.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="large scenario at 104 periods, no 260/520")
    p.add_argument(
        "--large-periods", type=int, choices=PERIODS, help="periods of the large scenario"
    )
    p.add_argument("--repeat", type=int, default=3, help="repetitions of the short runs")
    p.add_argument("--no-growth", action="store_true", help="skip the fit-time-vs-periods series")
    p.add_argument("--no-bytecode-cache", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    p.add_argument("--keep", type=Path, help="work in this directory and keep it")
    p.add_argument("--json", type=Path, help="also write the raw timings here")
    args = p.parse_args(argv)
    large_n = args.large_periods or (104 if args.quick else 520)
    sizes = [n for n in PERIODS if n <= large_n and (not args.quick or n <= 104)]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    code0 = code_fingerprint()
    work = args.keep or Path(tempfile.mkdtemp(prefix="krsim-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pyc = None if args.no_bytecode_cache else Path(tempfile.gettempdir()) / "krsim-bench-pycache"
    b = Bench(work, pyc, log)
    try:
        sys.path.insert(0, str(ROOT / "scripts"))
        import make_large_scenario

        large = make_large_scenario.write(work / "large", large_n)
        if pyc is not None:  # fill the bytecode cache so that no run pays for compiling .py files
            log("warm-up: filling the bytecode cache...")
            run(BARE, b.env)
            warm = b.env_for(compiledir=b.fresh("warmup-compile"), cache=b.fresh("warmup-cache"))
            run([str(KRSIM), "check", str(SEED_SCENARIO)], warm)
            run([sys.executable, "-c", "import pymc, nutpie, arviz, simulator.api"], warm)
        scenarios = [
            measure_scenario(b, "seed", SEED_SCENARIO),
            measure_scenario(b, f"large{large_n}", large),
        ]
        bare = short_runs(b, scenarios, args.repeat)
        grow = {}
        if not args.no_growth:
            grow = growth(b, work, sizes, scenarios[1]["env"], {large_n: scenarios[1]["warm"]})
        meta = {
            "cpus": os.cpu_count(),
            "load0": load0,
            "load1": os.getloadavg()[0],
            "minutes": (time.perf_counter() - t0) / 60,
            "code0": code0,
            "code1": code_fingerprint(),
        }
        print(render(scenarios, bare, grow, meta))
        if args.json:
            raw = {
                s["name"]: {
                    k: [r.wall for r in s[k]] if isinstance(s[k], list) else s[k].wall
                    for k in ("pymc", "cold", "warm", "hits", "checks")
                }
                for s in scenarios
            }
            raw["bare"] = [r.wall for r in bare]
            raw["growth"] = {n: r.wall for n, r in grow.items()}
            raw["meta"] = meta
            args.json.write_text(json.dumps(raw, indent=1))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
