"""The on-disk fit cache: one directory per fit, written atomically, keyed by what determines it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from importlib import metadata
from pathlib import Path
from typing import Any

_disabled = False  # for the whole process (`disable`)
_off: ContextVar[bool] = ContextVar("krsim_cache_off", default=False)  # inside `disabled()`


def disable(flag: bool = True) -> None:
    """Turn the cache off for this process, every thread included."""
    global _disabled
    _disabled = flag


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """No fit is read from or written to the cache inside the block (``--no-cache``)::

        with cache.disabled():
            result = simulate(scenario)  # a fresh fit, the cache left as it was

    Only the current context is affected (a context variable): other threads and asyncio tasks
    keep using the cache, and so do other processes such as a portfolio's workers (the
    environment variable ``KRSIM_NO_CACHE`` reaches those)."""
    token = _off.set(True)
    try:
        yield
    finally:
        _off.reset(token)


def cache_dir() -> Path | None:
    """The cache's directory (``KRSIM_CACHE_DIR``, else the user cache directory), or None while
    the cache is off (`disable`, `disabled`, ``KRSIM_NO_CACHE``)."""
    if _disabled or _off.get() or os.environ.get("KRSIM_NO_CACHE"):
        return None
    env = os.environ.get("KRSIM_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("krsim"))


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "none"
    return out


def key_of(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def entry(key: str) -> Path | None:
    d = cache_dir()
    if d is None:
        return None
    p = d / "fits" / key
    return p if (p / "complete").exists() else None


def store(key: str, write: Any) -> Path | None:
    """Write an entry with ``write(tmpdir)``, then move it into place in one rename.

    Concurrent runs each write their own temporary directory; the first rename wins and the others
    are discarded, so a reader never sees a half-written entry.
    """
    d = cache_dir()
    if d is None:
        return None
    fits = d / "fits"
    try:
        fits.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=fits))
    except OSError:
        return None
    try:
        write(tmp)
        (tmp / "complete").write_text("ok")
        final = fits / key
        if final.exists():  # a corrupt or concurrent entry: replace only a broken one
            if (final / "complete").exists():
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return final
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return entry(key)


def discard(key: str) -> None:
    d = cache_dir()
    if d is not None:
        shutil.rmtree(d / "fits" / key, ignore_errors=True)
