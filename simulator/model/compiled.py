"""Compiled models reused within a process: nutpie's numba compile of a model's log density
(30-60 s on the seed scenario) is kept, and a later model of the same structure samples through
it with its own data (nutpie's ``with_data``) instead of compiling again.

A compiled model serves another model only when that is provably the same computation:

- a cheap key picks the candidates: the free variables (names, value types, transforms), the
  traced variables, the shared variables (data containers and dim lengths: names, types, the
  values' shapes and dtypes), dims and coord lengths, ``check_bounds`` and the graph-rewrite
  settings;
- PyTensor's ``equal_computations`` decides: the log density and every traced variable must be
  the same graphs once the free variables' values and the shared variables (paired by name) are
  mapped onto each other, so a constant that differs (a prior's scale, the observed values of a
  path with missing cells) means no reuse;
- the parameter and trace layout (nutpie's shapes, read from the model) must be the same, and the
  shared variables the compiled functions read must be the ones that were compared.

A reused model takes the new model's data, its initial-point function (PyMC's, with the new data)
and its dims and coords, which is what compiling the new model would give. `sample` runs nutpie as
``pm.sample(..., nuts_sampler="nutpie")`` does, so the draws are the same for the same seed.

At most `MAX_ENTRIES` compiled models are kept (the least recently used goes). `clear` empties
the cache, ``with disabled():`` (or the environment variable ``KRSIM_COMPILED_CACHE=off``) makes
every fit go through ``pm.sample`` as before, and `stats` counts compiles, reuses and the NUTS runs
made here. Details go to this module's logger at DEBUG.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MAX_ENTRIES = 4
ENV_SWITCH = "KRSIM_COMPILED_CACHE"  # "off" (or "0", "no", "false"): compile every fit afresh


@dataclasses.dataclass(frozen=True)
class Graphs:
    """What decides whether a compiled model serves a model: the cheap key, the graphs nutpie
    compiles (the log density, then the traced variables), the free variables' values in the
    order of the model's free variables, and the shared variables by name."""

    key: tuple
    outputs: list
    values: list
    shared: dict[str, Any]


@dataclasses.dataclass
class Entry:
    """A compiled model and the graphs of the model it was compiled from."""

    graphs: Graphs
    compiled: Any


_lock = threading.Lock()
_entries: OrderedDict[int, Entry] = OrderedDict()
_ids = itertools.count()
_counts = {"compiles": 0, "loads": 0, "reuses": 0, "runs": 0}
_off = {"depth": 0}
CALLBACKS = ("compiled_logp_func", "compiled_expand_func")  # a compiled model's two callbacks


def enabled() -> bool:
    """Whether fits use the cache (not inside `disabled`, and not switched off by
    ``KRSIM_COMPILED_CACHE``)."""
    env = os.environ.get(ENV_SWITCH, "").strip().lower()
    return _off["depth"] == 0 and env not in ("off", "0", "no", "false")


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Inside the block, every fit of the process samples through ``pm.sample`` (it compiles),
    and the cache is neither read nor filled."""
    with _lock:
        _off["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _off["depth"] -= 1


def clear() -> None:
    """Forget every compiled model (the counts of `stats` stay)."""
    with _lock:
        _entries.clear()


def stats() -> dict[str, int]:
    """Since the process started: ``compiles`` (models compiled here), ``loads`` (those of them
    whose two callbacks came from the on-disk cache), ``reuses`` (compiles skipped), ``runs``
    (NUTS runs made here, not through ``pm.sample``); and ``entries``, the compiled models kept
    now."""
    with _lock:
        return {**_counts, "entries": len(_entries)}


def _count(name: str) -> None:
    with _lock:
        _counts[name] += 1


# ------------------------------------------------------------------------- what is compared


def graphs_of(model) -> Graphs | None:
    """The graphs of ``model`` that nutpie compiles, with its key; None when the model cannot be
    matched safely (a shared variable without a name, two with the same name, or one that does
    not hold an array)."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors
    from pytensor.tensor.sharedvar import TensorSharedVariable

    outputs = [model.logp(), *model.unobserved_value_vars]
    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    shared = list(dict.fromkeys(v for v in ancestors(outputs) if isinstance(v, SharedVariable)))
    names = [v.name for v in shared]
    if None in names or len(set(names)) != len(names):
        return None
    if not all(isinstance(v, TensorSharedVariable) for v in shared):
        return None
    by_name = dict(zip(names, shared, strict=True))
    return Graphs(_key(model, outputs, values, by_name), outputs, values, by_name)


def _key(model, outputs: list, values: list, shared: dict[str, Any]) -> tuple:
    """The cheap part of the comparison: equal for models that may share a compiled model."""
    import pytensor

    cfg = pytensor.config
    free = tuple(
        (rv.name, v.name, v.type, type(model.rvs_to_transforms.get(rv)).__qualname__)
        for rv, v in zip(model.free_RVs, values, strict=True)
    )
    traced = tuple((o.name, o.type) for o in outputs[1:])
    data = tuple(
        (name, var.type, np.shape(val), np.asarray(val).dtype.str)
        for name, var in sorted(shared.items())
        for val in [var.get_value(borrow=True)]
    )
    dims = tuple(sorted((k, tuple(v)) for k, v in model.named_vars_to_dims.items() if v))
    coords = tuple(sorted((k, None if v is None else len(v)) for k, v in model.coords.items()))
    rewrites = (cfg.floatX, cfg.optimizer_including, cfg.optimizer_excluding)
    return (free, traced, data, dims, coords, bool(model.check_bounds), rewrites)


def same_computation(a: Graphs, b: Graphs) -> bool:
    """Whether ``a`` and ``b`` compute the same log density and traced variables once their
    free variables' values and their shared variables (by name) are mapped onto each other;
    constants compare by value."""
    from pytensor.graph.basic import equal_computations

    if a.key != b.key or sorted(a.shared) != sorted(b.shared):
        return False
    names = sorted(a.shared)
    if any(a.shared[n].type != b.shared[n].type for n in names):
        return False
    if any(x.type != y.type for x, y in zip(a.values, b.values, strict=True)):
        return False
    try:
        return equal_computations(
            a.outputs,
            b.outputs,
            in_xs=[*a.values, *(a.shared[n] for n in names)],
            in_ys=[*b.values, *(b.shared[n] for n in names)],
        )
    except RecursionError:  # a graph too deep to walk: not shown to be the same
        return False


# ------------------------------------------------------------------------------- the cache


def lookup(graphs: Graphs) -> Entry | None:
    """The most recently used entry whose model is the same computation as ``graphs`` (it
    becomes the most recent), or None."""
    with _lock:
        candidates = [(i, e) for i, e in reversed(_entries.items()) if e.graphs.key == graphs.key]
    for i, entry in candidates:  # compared outside the lock: the graphs are never changed
        if same_computation(entry.graphs, graphs):
            with _lock:
                if i in _entries:
                    _entries.move_to_end(i)
            return entry
    return None


def insert(entry: Entry) -> None:
    """Keep ``entry`` as the most recent; the least recently used go beyond `MAX_ENTRIES`."""
    with _lock:
        _entries[next(_ids)] = entry
        while len(_entries) > max(MAX_ENTRIES, 0):
            _entries.popitem(last=False)


def compiled_model(model) -> tuple[Any, bool]:
    """nutpie's compiled ``model`` (a reused one carrying ``model``'s data when the cache holds
    the same computation, else a new compile, kept), and whether it was reused."""
    graphs = graphs_of(model)
    entry = lookup(graphs) if graphs is not None else None
    if entry is not None:
        t0 = time.perf_counter()
        rebound = rebind(entry, model, graphs)
        if rebound is not None:
            _count("reuses")
            logger.debug(
                "Compiled model reused (same structure as an earlier fit in this process): "
                "compile skipped (%.1f s to check and swap in the data)",
                time.perf_counter() - t0,
            )
            return rebound, True
        logger.debug("Same graphs as a compiled model but another layout: compiling afresh")
    compiled = compile_model(model)
    if graphs is not None:
        insert(Entry(graphs, compiled))
    return compiled, False


def compile_model(model):
    """nutpie's numba compile of ``model``, with the arguments ``pm.sample`` gives it; its two
    callbacks are cached on disk across processes (`cfuncs`)."""
    import nutpie

    from . import cfuncs

    logger.debug("Compiling the model's log density (numba)...")
    t0 = time.perf_counter()
    compiled = cfuncs.compile_model(model)
    if compiled is None:
        compiled = nutpie.compile_pymc_model(model, var_names=None, backend="numba")
    _count("compiles")
    if all(cfuncs.loaded(getattr(compiled, f, None)) for f in CALLBACKS):
        _count("loads")
        logger.debug(
            "Compiled model loaded from the on-disk cache (same structure as an earlier fit) "
            "in %.1f s",
            time.perf_counter() - t0,
        )
    else:
        logger.debug("Compiled the model's log density in %.1f s", time.perf_counter() - t0)
    return compiled


def rebind(entry: Entry, model, graphs: Graphs):
    """``entry``'s compiled model with ``model``'s data, initial points, dims and coords (a
    copy: the entry is unchanged), or None when the layout differs or a shared variable that the
    compiled functions read is not one that was compared."""
    from nutpie.compile_pymc import _compute_shapes, _prepare_dims_and_coords

    cm = entry.compiled
    names, _, shapes = cm.shape_info
    now = _compute_shapes(model)
    if any(n not in now or tuple(now[n]) != tuple(s) for n, s in zip(names, shapes, strict=True)):
        return None
    updates = _new_data(entry, graphs)
    if updates is None:
        return None
    fresh = cm.with_data(**updates)
    k = len(model.free_RVs)
    dims, coords = _prepare_dims_and_coords(model, cm.shape_info, cm.reparameterized_names)
    return dataclasses.replace(
        fresh,
        initial_point_func=_initial_point(model, names[:k], shapes[:k]),
        dims=dims,
        _coords=coords,
    )


def _new_data(entry: Entry, graphs: Graphs) -> dict[str, np.ndarray] | None:
    """The values of the new model's shared variables for each shared variable the compiled
    functions read (by name); None unless each is the compared variable of its name and the new
    value has the old one's shape and dtype."""
    cm = entry.compiled
    updates = {}
    for var, key in cm.shared_var_keys.items():
        if entry.graphs.shared.get(var.name) is not var or var.name not in graphs.shared:
            return None
        old = cm.shared_data[key]
        new = np.asarray(graphs.shared[var.name].get_value(borrow=True))
        if new.shape != old.shape or new.dtype != old.dtype:
            return None
        updates[var.name] = new
    return updates


def _initial_point(model, names: list[str], shapes: list[tuple[int, ...]]):
    """nutpie's initial-point function of ``model`` (as ``nutpie.compile_pymc_model`` makes it:
    support points, jittered, on the transformed space, flattened)."""
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper

    from .cfuncs import initial_points

    return _rv_dict_to_flat_array_wrapper(initial_points(model), names=names, shapes=shapes)


# ------------------------------------------------------------------------------- sampling


def sample(model, *, draws: int, tune: int, chains: int, random_seed: int, target_accept: float):
    """NUTS draws of ``model`` by nutpie, as ``pm.sample(draws=, tune=, chains=, random_seed=,
    target_accept=, nuts_sampler="nutpie", progressbar=False, quiet=True,
    compute_convergence_checks=False, cores=<the CPUs available>)`` returns them (same seeds,
    sampler arguments and DataTree), through a reused compiled model when the cache holds the same computation. When
    the cache is off, or PyMC's settings would not compile with numba, that is ``pm.sample``."""
    from pymc.vartypes import continuous_types

    prelude = _pymc_prelude(chains, random_seed) if enabled() else None
    continuous = model.free_RVs and all(rv.dtype in continuous_types for rv in model.free_RVs)
    if prelude is None or not continuous:
        return _pm_sample(model, draws, tune, chains, random_seed, target_accept)
    limiter, cores, seed = prelude
    with limiter():
        compiled, _ = compiled_model(model)
        return _run(compiled, model, draws, tune, chains, cores, seed, target_accept)


def _pymc_prelude(chains: int, random_seed: int):
    """What ``pm.sample`` settles before it hands over to nutpie: the BLAS limiter, the cores
    and the seed nutpie gets; None when its compile mode is not numba's."""
    from pymc.pytensorf import resolve_backend_compile_kwargs
    from pymc.sampling.mcmc import setup_cores_blas_cores
    from pymc.sampling.parallel import _initialize_multiprocessing_context
    from pymc.util import get_random_generator
    from pytensor.compile.mode import get_mode
    from pytensor.link.jax.linker import JAXLinker

    compile_kwargs = resolve_backend_compile_kwargs(None, None)
    mode = compile_kwargs.get("mode")
    if isinstance(get_mode(mode).linker, JAXLinker):
        return None
    mp_ctx = _initialize_multiprocessing_context(None, mode=mode, quiet=True)
    # PyMC takes half the CPUs (it assumes hyper-threads), so on 2 cores nutpie ran the chains
    # one after another; each chain's draws do not depend on how many run at once (measured:
    # identical), so every available core is used: 12 s of sampling became 7 s on the seed
    limiter, cores, _ = setup_cores_blas_cores("auto", chains, min(4, _cpus()), mp_ctx)
    seeds = [rng.integers(2**30) for rng in get_random_generator(random_seed).spawn(chains)]
    return limiter, cores, int(seeds[0])


def _cpus() -> int:
    """The CPUs this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run(compiled, model, draws, tune, chains, cores, seed, target_accept):
    """``nutpie.sample`` with the arguments PyMC gives it, and PyMC's touches to its DataTree."""
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata
    from pymc.progress_bar import NutpieProgressBarManager

    tune = 1 if tune == 0 else tune  # as PyMC: nuts-rs needs at least one tuning step
    bar = NutpieProgressBarManager(chains=chains, draws=draws, progressbar=False)
    _count("runs")
    t0 = time.time()
    with bar:
        dt = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            save_warmup=False,
            store_unconstrained=False,
            progress_bar=False,
            progress_callback=bar.update,
            target_accept=target_accept,
        )
    seconds = time.time() - t0
    logger.debug("Sampled %d chains x %d draws in %.1f s", chains, draws, seconds)
    patch_nutpie_idata(dt, model, sampling_time=seconds)
    return dt


def _pm_sample(model, draws, tune, chains, random_seed, target_accept):
    """``pm.sample`` with nutpie, compiling the model."""
    import pymc as pm

    with model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            target_accept=target_accept,
            nuts_sampler="nutpie",
            progressbar=False,
            quiet=True,
            compute_convergence_checks=False,
            cores=min(4, _cpus()),
        )
