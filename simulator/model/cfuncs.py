"""nutpie's numba compile of a PyMC model, with entry points that numba can cache on disk, so a
new process whose model has the same structure loads them instead of compiling them again.

nutpie samples through two C callbacks: the log density with its gradient, and the "expand"
function that turns a draw into the traced variables. ``nutpie.compile_pymc_model`` builds them as
``numba.cfunc`` closures over the model's data, with slots named by a fresh random id per compile,
so their cache entries never match and every new process compiles them again (about 10 s of a
warm process's 13 s on the seed scenario, measured in docs/performance.md).

Here the same two callbacks are generated as source text with positional slots: the model's data
reach them through one flat ``uint64`` array (for each shared variable, its address and then its
shape), and nothing else is closed over. The text says everything the machine code depends on
besides the inner function: the parameter count, the traced size, each slot's offset, rank and
dtype. Each callback is cached under a key that hashes that text with PyTensor's own cache key of
the inner function (which covers its graph and constants), the versions of numba, llvmlite,
NumPy, PyTensor and nutpie, and numba's optimisation and bounds-check settings; numba adds the
signature and the CPU. PyTensor's cache locator keeps the entries in its compile directory
(``PYTENSOR_FLAGS=base_compiledir=``), beside its own.

The inner functions and everything else (initial points, shapes, dims, coords) are nutpie's. When
PyTensor gives no cache key for an inner function, its callback is compiled without caching. When
the nutpie installed does not have the internals this builds on, `compile_model` returns None and
the caller compiles with nutpie as it is. When several processes compile, the inner functions
are pieces of nutpie's (`pieces`), compiled at once, and then the two callbacks at once. nutpie's
functions are made in PyTensor's NUMBA mode with a linker that converts them to numba only if
called (`graph_mode`): only their pieces are converted. ``tests/test_compiled.py`` checks that the
draws of a model compiled in one piece are those of ``pm.sample(nuts_sampler="nutpie")``, bit for
bit, and that the callbacks in pieces give the whole function's values to rounding.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import time
import warnings
from typing import Any

import numpy as np

from . import pieces

logger = logging.getLogger(__name__)

VERSION = "2"  # of the generated text below: change it when the text's meaning changes


def _slots(values: list[np.ndarray]) -> tuple[list[tuple[int, int, str]], int]:
    """Each value's (offset, rank, NumPy scalar type's name) in the flat layout, and the
    layout's length: at the offset the address, then the shape."""
    slots, offset = [], 0
    for v in values:
        slots.append((offset, v.ndim, np.dtype(v.dtype).type.__name__))  # float64, bool, ...
        offset += 1 + v.ndim
    return slots, offset


def flat_user_data(values: list[np.ndarray]) -> np.ndarray:
    """The flat layout of ``values`` (C-contiguous arrays that must outlive it)."""
    slots, n = _slots(values)
    data = np.zeros(max(n, 1), dtype=np.uint64)
    for (offset, ndim, _), v in zip(slots, values, strict=True):
        if not (v.flags.c_contiguous and v.dtype.isnative):
            raise ValueError("the callbacks read C-contiguous arrays in native byte order")
        data[offset] = v.ctypes.data
        data[offset + 1 : offset + 1 + ndim] = v.shape
    return data


def _reads(slots: list[tuple[int, int, str]], n_data: int) -> tuple[list[str], str]:
    """The source lines that view the slots as arrays (``d0``, ``d1``, ...), and the argument
    text that passes them on."""
    lines = [f"        ud = numba.carray(ud_, ({n_data},), np.uint64)"]
    for i, (offset, ndim, dtype) in enumerate(slots):
        dims = [f"ud[{offset + 1 + k}]" for k in range(ndim)]
        size = " * ".join(dims) or "1"
        shape = "(" + "".join(d + ", " for d in dims) + ")"
        lines.append(
            f"        d{i} = numba.carray(_void(ud[{offset}]), ({size},), np.{dtype}).reshape({shape})"
        )
    return lines, "".join(f", d{i}" for i in range(len(slots)))


def logp_source(n_dim: int, slots: list, n_data: int) -> str:
    """The log density callback nuts-rs calls (nutpie's ``logp_numba``, with flat slots)."""
    reads, args = _reads(slots, n_data)
    return "\n".join(
        [
            "def krsim_logp(dim, x_, out_, logp_, ud_):",
            f"    if dim != {n_dim}:",
            "        return -1",
            "    try:",
            *reads,
            f"        x = numba.carray(x_, ({n_dim},))",
            f"        out = numba.carray(out_, ({n_dim},))",
            "        logp = numba.carray(logp_, ())",
            f"        logp_val, grad = inner(x{args})",
            "        logp[()] = logp_val",
            "        out[...] = grad",
            "        if not np.all(np.isfinite(out)):",
            "            return 3",
            "        if not np.isfinite(logp_val):",
            "            return 4",
            "    except Exception:",
            "        return 1",
            "    return 0",
            "",
        ]
    )


def expand_source(n_dim: int, n_expanded: int, slots: list, n_data: int) -> str:
    """The expand callback (nutpie's ``expand_numba``, with flat slots)."""
    reads, args = _reads(slots, n_data)
    return "\n".join(
        [
            "def krsim_expand(dim, expanded, x_, out_, ud_):",
            f"    if dim != {n_dim}:",
            "        return -1",
            f"    if expanded != {n_expanded}:",
            "        return -1",
            "    try:",
            *reads,
            f"        x = numba.carray(x_, ({n_dim},))",
            f"        out = numba.carray(out_, ({n_expanded},))",
            f"        (values,) = inner(x{args})",
            "        out[...] = values",
            "    except Exception:",
            "        return -2",
            "    return 0",
            "",
        ]
    )


def _signatures():
    from numba import types

    ptr = types.CPointer(types.double)
    logp = types.int64(types.uint64, ptr, ptr, ptr, types.voidptr)
    expand = types.int64(types.uint64, types.uint64, ptr, ptr, types.voidptr)
    return logp, expand


def cache_key(inner_key: str | None, source: str) -> str | None:
    """The key a callback is cached under, or None when the inner function has none."""
    if inner_key is None:
        return None
    from importlib.metadata import version

    import numba

    parts = [VERSION, inner_key, source]
    parts += [f"{p} {version(p)}" for p in ("numba", "llvmlite", "numpy", "pytensor", "nutpie")]
    parts.append(f"numba OPT {numba.config.OPT} BOUNDSCHECK {numba.config.BOUNDSCHECK}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _callback(name: str, source: str, signature, split, key: str | None):
    """``source`` as a ``numba.CFunc`` calling the pieces of ``split`` (`pieces.chain`), cached
    under ``key``; not compiled yet."""
    import numba
    from numba.core import sigutils
    from numba.core.ccallback import CFunc
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import compile_numba_function_src

    env = {"__name__": __name__, "numba": numba, "np": np, "inner": pieces.chain(split)}
    env["_void"] = address_as_void_pointer
    py_func = compile_numba_function_src(source, name, global_env=env, cache_key=key)
    fn = CFunc(py_func, sigutils.normalize_signature(signature), locals={}, options={})
    if key is not None:
        fn.enable_caching()
    return fn


def _load(fn) -> bool:
    """Load the callback ``fn`` from the on-disk cache, if it is there (numba's own steps of
    ``CFunc.compile`` without the compile)."""
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock:
        cres = fn._cache.load_overload(fn._sig, fn._targetdescr.target_context)
        if cres is None:
            return False
        fn._cache_hits += 1
        fn._library = cres.library
        fn._wrapper_name = cres.fndesc.llvm_cfunc_wrapper_name
        fn._wrapper_address = fn._library.get_pointer_to_function(fn._wrapper_name)
    return True


def _compile(fn, key: str | None) -> None:
    """Compile the callback ``fn`` (its pieces are compiled: this is the callback and the chain)
    and say how long it took."""
    import numba

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", numba.NumbaWarning)
        fn.compile()
    for w in seen:  # numba's own notes are summed up below; any other warning shows as usual
        if not issubclass(w.category, numba.NumbaWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    how = "compiled"
    if key is None:
        how += " (PyTensor gave no cache key: not cached)"
    elif any("Cannot cache" in str(w.message) for w in seen):
        how += " (numba could not cache it)"
    logger.debug("%s callback %s in %.1f s", fn.__name__, how, time.perf_counter() - t0)


def _compile_callbacks(callbacks: list[tuple[Any, str | None]], n_jobs: int) -> None:
    """Compile ``callbacks`` (each with its key): with several processes, the cacheable ones at
    once (`pieces.in_processes`), then those compiled by another process loaded (and not counted
    as loaded: `loaded` means compiled by an earlier fit); a callback that could not be loaded is
    compiled here."""
    keyed = [(fn, key) for fn, key in callbacks if key is not None]
    if n_jobs > 1 and len(keyed) > 1:
        pieces.in_processes([functools.partial(_compile, fn, key) for fn, key in keyed], n_jobs)
        for fn, _ in keyed:
            if not _ready(fn) and _load(fn):
                fn._cache_hits = 0  # compiled for this fit, by another process
                logger.debug("%s callback compiled in another process", fn.__name__)
    for fn, key in callbacks:
        if not _ready(fn):
            _compile(fn, key)


def _ready(fn) -> bool:
    """Whether the callback ``fn`` has its machine code in this process (compiled or loaded)."""
    return fn._wrapper_address is not None


def loaded(fn) -> bool:
    """Whether the callback ``fn`` was loaded from the on-disk cache, not compiled."""
    return getattr(fn, "cache_hits", 0) > 0


def _compiled_class():
    from nutpie.compile_pymc import CompiledPyMCModel

    @dataclasses.dataclass(frozen=True)
    class FlatCompiledModel(CompiledPyMCModel):
        """nutpie's compiled model whose callbacks read the data through the flat layout."""

        def with_data(self, **updates):
            names = [v.name for v in self.shared_var_keys]
            by_name = dict(zip(names, self.shared_var_keys.values(), strict=True))
            if len(by_name) != len(names):
                raise ValueError("Names of shared variables are not unique")
            shared = dict(self.shared_data)
            for name, new in updates.items():
                if name not in by_name:
                    raise KeyError(f"Unknown shared variable: {name}")
                old = shared[by_name[name]]
                new = np.array(new, dtype=old.dtype, order="C", copy=True)
                if new.ndim != old.ndim:
                    raise ValueError(f"Shared variable {name} must have rank {old.ndim}")
                new.flags.writeable = False
                shared[by_name[name]] = new
            return dataclasses.replace(
                self, shared_data=shared, user_data=flat_user_data(list(shared.values()))
            )

    return FlatCompiledModel


def graph_mode():
    """PyTensor's NUMBA mode (the same rewrites, so the same graphs and cache keys) with a linker
    that converts the graph to numba only if the function is called from Python.

    The callbacks run the graph's `pieces`, converted on their own; PyTensor's linker would
    convert the whole graph again when the function is made (about 0.9 s on the seed, in every
    process, warm caches or not), for a function nuts-rs never calls."""
    from pytensor.compile.mode import NUMBA, Mode
    from pytensor.link.numba.linker import NumbaLinker

    class DeferredNumbaLinker(NumbaLinker):
        def fgraph_convert(self, fgraph, **kwargs):
            return fgraph, kwargs

        def jit_compile(self, converted):
            fgraph, kwargs = converted

            def convert():
                return NumbaLinker.jit_compile(
                    self, NumbaLinker.fgraph_convert(self, fgraph, **kwargs)
                )

            return Deferred(convert)

    return Mode(linker=DeferredNumbaLinker(), optimizer=NUMBA.provided_optimizer)


class Deferred:
    """A function made by ``convert()`` on its first call."""

    def __init__(self, convert):
        self.convert = convert
        self.fn = None

    def __call__(self, *args):
        if self.fn is None:
            self.fn = self.convert()
        return self.fn(*args)


def initial_points(model):
    """PyMC's initial-point function of ``model`` as nutpie asks for it (support points,
    jittered, on the transformed space), behind nutpie's lock."""
    from nutpie.compile_pymc import _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn

    fn = make_initial_point_fn(
        model=model,
        overrides=None,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )
    return _wrap_with_lock(fn)


def compile_model(model) -> Any | None:
    """What ``nutpie.compile_pymc_model(model, backend="numba")`` returns, with cacheable
    callbacks; None when the installed nutpie lacks the internals used here."""
    try:
        from nutpie import compile_pymc as cp

        make_functions, prepare = cp._make_functions, cp._prepare_dims_and_coords
        cp.address_as_void_pointer, cp._wrap_with_lock  # noqa: B018
        cls = _compiled_class()
    except (ImportError, AttributeError):
        return None
    n_dim, n_expanded, logp_pt, expand_pt, initial_point, shape_info, reparam = make_functions(
        model,
        mode=graph_mode(),
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=initial_points(model),
        var_names=None,
    )
    shared_vars = list(dict.fromkeys([*logp_pt.get_shared(), *expand_pt.get_shared()]))
    keys = {v: f"s{i}" for i, v in enumerate(shared_vars)}
    data = {keys[v]: np.array(v.get_value(), order="C", copy=True) for v in shared_vars}
    for a in data.values():
        a.flags.writeable = False
    layout, n_data = _slots(list(data.values()))
    slot_of = dict(zip(data, layout, strict=True))

    def callback(name: str, fn_pt, split, source_of, signature):
        if len(fn_pt.maker.fgraph.inputs) != 1 + len(fn_pt.get_shared()):
            raise ValueError("expected the point, then the shared variables")
        source = source_of([slot_of[keys[v]] for v in fn_pt.get_shared()])
        key = cache_key(split.key, source + pieces.chain_source(split))
        return _callback(name, source, signature, split, key), key

    sig_logp, sig_expand = _signatures()
    try:
        splits = [pieces.split(logp_pt.maker.fgraph), pieces.split(expand_pt.maker.fgraph, 1)]
    except TypeError:  # an input numba cannot be given as the callbacks give theirs
        return None
    callbacks = [
        callback(
            "krsim_logp", logp_pt, splits[0], lambda sl: logp_source(n_dim, sl, n_data), sig_logp
        ),
        callback(
            "krsim_expand",
            expand_pt,
            splits[1],
            lambda sl: expand_source(n_dim, n_expanded, sl, n_data),
            sig_expand,
        ),
    ]
    t0 = time.perf_counter()
    missing = [i for i, (fn, key) in enumerate(callbacks) if key is None or not _load(fn)]
    if len(missing) < len(callbacks):
        logger.debug("Callbacks loaded from the on-disk cache in %.1f s", time.perf_counter() - t0)
    n_jobs = pieces.jobs()
    pieces.compile_all([splits[i] for i in missing], n_jobs)
    _compile_callbacks([callbacks[i] for i in missing], n_jobs)
    (logp_fn, _), (expand_fn, _) = callbacks
    dims, coords = prepare(model, shape_info, reparam)
    return cls(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_fn,
        compiled_expand_func=expand_fn,
        initial_point_func=initial_point,
        shared_data=data,
        shared_var_keys=keys,
        user_data=flat_user_data(list(data.values())),
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_pt,
        expand_func=expand_pt,
        reparameterized_names=reparam,
    )
