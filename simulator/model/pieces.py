"""A compiled PyTensor function graph cut into pieces that numba compiles in parallel processes.

numba compiles a model's log density in one process, one node's function after another: about 40
s of a cold fit of the seed scenario on one core, whatever the machine has (docs/performance.md).
Here the graph's nodes, in the order PyTensor's own numba function runs them, are cut into
consecutive pieces. Each piece is a function graph of its own, whose inputs are the graph's
inputs and the values earlier pieces made and whose outputs are the values later pieces (or the
caller) read. Run one after the other they are the same operations in the same order as the
whole; only where pieces meet may LLVM fuse floating-point operations differently (PyTensor
compiles with fast-math flags), so the values agree with the whole's to a few units in the last
place (at most 2 measured on the seed and the test funnel).

Each piece is cached on disk under PyTensor's key of its graph (PyTensor's compile directory).
A piece returns copies of the arrays it passes on, C-contiguous and writable, so that every
piece's argument types are known before any piece is compiled: forked processes
(`compile_all`) compile the pieces at once, each taking the next from a pipe, and the calling
process then loads what they compiled from the cache. A process that fails costs only time:
whatever it did not compile, the caller compiles itself; one still running a bounded time after
the caller is done (`WAIT_FLOOR`, or twice the caller's own share) is stopped.

``KRSIM_COMPILE_JOBS`` sets how many processes compile (1: none forked, one piece); the default
is the CPUs this process may use, at most 4, on Linux with PyTensor's fork-safe function ids,
else 1. numba's compiler lock is held across each fork, and numba's cache index writes are
serialised between processes (`_serialise_cache_writes`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MAX_JOBS = 4  # each process holds a compiler's memory (a few hundred MB)
NODES_PER_PIECE = 30  # the seed's log density (116 nodes) in 4 pieces
MAX_PIECES = 8
WAIT_FLOOR = 60.0  # seconds the caller waits for the other processes at least, once its own done


@dataclass(frozen=True)
class Piece:
    """One piece: its numba function (not yet compiled), PyTensor's cache key of it (None: not
    cacheable), the value numbers it takes and makes, its argument types and its node count."""

    fn: Any
    key: str | None
    takes: tuple[int, ...]
    makes: tuple[int, ...]
    signature: tuple
    size: int


@dataclass(frozen=True)
class Split:
    """A function graph in pieces. Values are numbered: first the graph's inputs, then what each
    piece makes, in order; ``results`` are the graph's outputs' numbers."""

    pieces: tuple[Piece, ...]
    n_inputs: int
    results: tuple[int, ...]

    @property
    def key(self) -> str | None:
        """The pieces' keys together, or None when one has none."""
        keys = [p.key for p in self.pieces]
        return None if None in keys else "+".join(keys)  # type: ignore[arg-type]


def jobs() -> int:
    """How many processes compile: ``KRSIM_COMPILE_JOBS``, else the CPUs this process may use (at
    most `MAX_JOBS`) where forking is safe for it (Linux), else 1."""
    raw = os.environ.get("KRSIM_COMPILE_JOBS", "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            logger.warning(
                "KRSIM_COMPILE_JOBS=%r is not a whole number: compiling in one process", raw
            )
            return 1
    if not sys.platform.startswith("linux") or not hasattr(os, "sched_getaffinity"):
        return 1
    if not _fork_safe_ids():
        return 1
    return max(1, min(MAX_JOBS, len(os.sched_getaffinity(0))))


def _fork_safe_ids() -> bool:
    """Whether numba names fresh functions with random ids (PyTensor installs them): with
    numba's own counter, forked processes give two different functions one symbol, and a process
    that loads both can run the wrong one."""
    import itertools

    from numba.core.bytecode import FunctionIdentity
    from pytensor.link.numba import cache  # noqa: F401 - installs PyTensor's ids

    return not isinstance(FunctionIdentity._unique_ids, itertools.count)


def numba_type(var) -> Any:
    """The numba type a value of ``var`` has when passed between pieces: a C-contiguous writable
    array of its dtype and rank, or a scalar; TypeError for other types (slices, random
    generators, ...), which are not cut across."""
    import numba
    from numba import types
    from pytensor.scalar import ScalarType
    from pytensor.tensor.type import TensorType

    t = var.type
    if isinstance(t, TensorType):
        return types.Array(numba.from_dtype(np.dtype(t.dtype)), t.ndim, "C")
    if isinstance(t, ScalarType):
        return numba.from_dtype(np.dtype(t.dtype))
    raise TypeError(f"cannot pass a {t} between pieces")


def split(fgraph, n: int | None = None) -> Split:
    """``fgraph`` (a compiled PyTensor function's graph) in ``n`` pieces of about equal node
    counts (one when an output is no node's or a value of a type `numba_type` cannot pass would
    cross a cut).

    By default: one piece when one process compiles (`jobs`), as nutpie compiles it; else a
    count that follows the graph's size (`NODES_PER_PIECE`), not the number of processes.
    Where pieces meet, LLVM fuses floating-point operations differently (PyTensor compiles with
    fast-math flags), so the count changes the last bits of the log density and, with them, the
    draws of a seed: a model and a seed draw the same on one machine whatever number of
    processes above one compiled it."""
    order = list(fgraph.toposort())
    if n is None:
        n = 1 if jobs() == 1 else min(MAX_PIECES, round(len(order) / NODES_PER_PIECE))
    n = max(1, min(n, len(order)))
    if n > 1 and any(out.owner is None for out in fgraph.outputs):
        n = 1
    if n > 1:
        try:
            result = _split(fgraph, order, n)
            if result.key is not None:  # every piece cacheable: other processes can compile them
                return result
            logger.debug("Compiling in one piece: PyTensor gave a piece no cache key")
        except TypeError as err:
            logger.debug("Compiling in one piece: %s", err)
    return _split(fgraph, order, 1)


def _split(fgraph, order: list, n: int) -> Split:
    """`split`'s cut at equal node counts; TypeError when a value `numba_type` cannot pass would
    be an argument of a piece."""
    from numba import types

    inputs = list(fgraph.inputs)
    if n == 1:  # the whole graph: its outputs as they are (an input, a constant, twice, ...)
        fn, key = _function(inputs, list(fgraph.outputs), order)
        k, m = len(inputs), len(fgraph.outputs)
        sig = (types.StarArgTuple([numba_type(v) for v in inputs]),)
        piece = Piece(fn, key, tuple(range(k)), tuple(range(k, k + m)), sig, len(order))
        return Split((piece,), k, piece.makes)
    number = {v: i for i, v in enumerate(inputs)}
    bounds = [round(len(order) * i / n) for i in range(n + 1)]
    pieces = []
    for i in range(n):
        nodes = order[bounds[i] : bounds[i + 1]]
        later = {x for node in order[bounds[i + 1] :] for x in node.inputs} | set(fgraph.outputs)
        used = {x for node in nodes for x in node.inputs}
        takes = inputs + [v for v in number if v in used and number[v] >= len(inputs)]
        makes = list(dict.fromkeys(o for node in nodes for o in node.outputs if o in later))
        sig = (types.StarArgTuple([numba_type(v) for v in takes]),)
        fn, key = _function(takes, makes, nodes, copy=True)
        number.update({v: len(number) + j for j, v in enumerate(makes)})
        pieces.append(
            Piece(
                fn,
                key,
                tuple(number[v] for v in takes),
                tuple(number[v] for v in makes),
                sig,
                len(nodes),
            )
        )
    results = tuple(number[v] for v in fgraph.outputs)
    return Split(tuple(pieces), len(inputs), results)


def _function(
    takes: list, makes: list, nodes: list, *, copy: bool = False
) -> tuple[Any, str | None]:
    """The numba function (not yet compiled) of the graph from ``takes`` to ``makes`` whose
    nodes are ``nodes``, run in that order, and PyTensor's cache key of it. With ``copy``, each
    array it makes is returned as a copy (C-contiguous and writable, whatever the layout of the
    value: a view, a transpose), the type `numba_type` says a later piece takes."""
    from pytensor.compile.ops import deep_copy_op
    from pytensor.graph.basic import clone_get_equiv
    from pytensor.graph.fg import FunctionGraph
    from pytensor.link.numba.dispatch.basic import numba_funcify_ensure_cache
    from pytensor.tensor.type import TensorType

    eq = clone_get_equiv(takes, makes, copy_inputs=True, copy_orphans=True)
    outputs = [eq[v] for v in makes]
    copies = []
    if copy:
        outputs = [deep_copy_op(v) if isinstance(v.type, TensorType) else v for v in outputs]
        copies = [v.owner for v in outputs if v.owner is not None and v.owner.op is deep_copy_op]
    fg = FunctionGraph([eq[v] for v in takes], outputs, clone=False)
    order = [eq[node] for node in nodes] + copies
    if set(order) != set(fg.apply_nodes):  # a node outside the piece, or one of it unused
        raise TypeError("the piece's nodes are not its graph's")
    return numba_funcify_ensure_cache(fg, order=order)


def chain(split: Split) -> Any:
    """A numba function (not compiled; callable from compiled code) that runs the pieces of
    ``split`` in turn (``inner0``, ``inner1``, ...), each on the graph's inputs and the values
    earlier ones made, and returns the graph's outputs: the one piece's function itself when
    there is one.

    Callers compile it outside any ``try`` block: numba compiles a call inside one with an
    exception path that releases every live value, which for dozens of values passed between
    pieces made a 27 MB module and a minute of LLVM."""
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    if len(split.pieces) == 1:
        return split.pieces[0].fn
    env = {f"inner{i}": piece.fn for i, piece in enumerate(split.pieces)}
    fn = compile_numba_function_src(chain_source(split), "krsim_chain", global_env=env)
    return numba.njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)(fn)


def chain_source(split: Split) -> str:
    """The source of `chain` ("" for one piece)."""
    if len(split.pieces) == 1:
        return ""
    names = [f"a{i}" for i in range(split.n_inputs)]
    lines = [f"def krsim_chain({', '.join(names)}):"]
    for i, piece in enumerate(split.pieces):
        lines.append(f"    o{i} = inner{i}({_arguments([names[j] for j in piece.takes])})")
        for k, j in enumerate(piece.makes):
            lines.append(f"    v{j} = o{i}[{k}]")
            names.append(f"v{j}")
    outs = "".join(f"{names[j]}, " for j in split.results)
    return "\n".join([*lines, f"    return ({outs})", ""])


def _arguments(names: list[str], chunk: int = 24) -> str:
    """A call's argument text: the names as they are, or, for more than ``chunk`` of them, one
    tuple made of smaller ones and unpacked (Python builds a call or a tuple of more than 30
    values through a list, which numba does not compile)."""
    if len(names) <= chunk:
        return ", ".join(names)
    parts = [
        "(" + "".join(f"{n}, " for n in names[i : i + chunk]) + ")"
        for i in range(0, len(names), chunk)
    ]
    return "*(" + " + ".join(parts) + ")"


def compile_all(split_graphs: list[Split], n_jobs: int) -> None:
    """Compile the pieces of ``split_graphs`` that PyTensor gave a cache key: in ``n_jobs``
    processes (this one and forked ones) sharing the work through PyTensor's compile cache, then
    each loaded here; or here alone with one job. A piece without a key is compiled by its
    caller's compile (its function takes positional arguments, not the signature here)."""
    pieces = sorted(
        (p for s in split_graphs for p in s.pieces if p.key is not None), key=lambda p: -p.size
    )
    n_jobs = min(n_jobs, len(pieces))
    if n_jobs > 1:
        t0 = time.perf_counter()
        in_processes([functools.partial(p.fn.compile, p.signature) for p in pieces], n_jobs)
        logger.debug(
            "Compiled %d pieces in %d processes in %.1f s",
            len(pieces),
            n_jobs,
            time.perf_counter() - t0,
        )
    for p in pieces:  # here: loaded from the cache when another process compiled it
        p.fn.compile(p.signature)


def in_processes(tasks: list[Callable[[], Any]], n_jobs: int) -> None:
    """Run ``tasks`` (compiles that write numba's on-disk cache) here and in ``n_jobs - 1``
    forked processes, each taking the next task's number from a pipe, until none is left; then
    wait for the others (a bounded time: a process still running after it is stopped). What a
    task leaves is only in the cache: the caller then loads it, and compiles whatever a failed
    process did not."""
    from numba.core.compiler_lock import global_compiler_lock

    n_jobs = min(n_jobs, len(tasks))  # no process without a task to take
    _serialise_cache_writes()
    r, w = os.pipe()
    os.write(w, b"".join(i.to_bytes(4, "little") for i in range(len(tasks))))
    os.close(w)
    children: list[int] = []
    try:
        for _ in range(n_jobs - 1):
            # numba's compiler lock is held across the fork, so no other thread holds it then,
            # and the child, whose one thread is the one that holds it, takes it again freely
            with warnings.catch_warnings(), global_compiler_lock:
                warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded": BLAS's
                try:
                    pid = os.fork()
                except OSError as err:
                    logger.debug("Could not start a compiling process: %s", err)
                    break
                if pid == 0:  # pragma: no cover - runs in the child, which never returns
                    _child(tasks, r)
            children.append(pid)
        t0 = time.perf_counter()
        _take(tasks, r)
        _wait(children, max(WAIT_FLOOR, 2 * (time.perf_counter() - t0)))
    finally:
        os.close(r)
        for pid in children:  # on an interruption or a timeout: stop what is left
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def _take(tasks: list[Callable[[], Any]], r: int) -> None:
    """Run the tasks whose numbers this process reads from the pipe, until it is empty."""
    while len(b := os.read(r, 4)) == 4:
        tasks[int.from_bytes(b, "little")]()


def _child(tasks: list[Callable[[], Any]], r: int) -> None:  # pragma: no cover - forked
    """A forked process's life: silent, stopped when its parent dies, it runs tasks from the
    pipe and exits without running the parent's exit handlers."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with contextlib.suppress(Exception):  # PR_SET_PDEATHSIG: killed with its parent
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        _take(tasks, r)
        code = 0
    finally:
        os._exit(code)


def _wait(children: list[int], timeout: float) -> None:
    """Wait for the forked processes, at most ``timeout`` seconds, removing each that ended from
    ``children`` (those left are the caller's to stop); a failure is only logged."""
    deadline = time.monotonic() + timeout
    while children and time.monotonic() < deadline:
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.remove(pid)
                if code := os.waitstatus_to_exitcode(status):
                    logger.debug("A compiling process failed (%d): compiling the rest here", code)
        if children:
            time.sleep(0.05)
    if children:
        logger.debug("Compiling processes still running after %.0f s: stopped", timeout)


def _serialise_cache_writes() -> None:
    """Make numba's cache index updates one process at a time (a lock file beside each index).

    numba saves an entry by reading the index, choosing a data file's name and writing both; two
    processes adding different signatures under one key at once could both choose the same name,
    and an index could then point at the other signature's machine code. Forked compiling
    processes make that likely: PyTensor's key of a node's function leaves out the arrays'
    layouts, which differ between pieces."""
    global _serialised
    if _serialised:
        return
    import fcntl

    from numba.core.caching import IndexDataCacheFile

    save = IndexDataCacheFile.save

    def locked_save(self, key, data):
        with open(self._index_path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                save(self, key, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    IndexDataCacheFile.save = locked_save
    _serialised = True


_serialised = False
