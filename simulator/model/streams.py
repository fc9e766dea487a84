"""Keyed random streams: one generator per (seed, key...), so that adding an option, a parameter or
a test design does not change the draws of another (common random numbers across options)."""

from __future__ import annotations

import zlib

import numpy as np


def _ints(key: tuple[int | str, ...]) -> list[int]:
    return [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in key]


def stream(seed: int, *key: int | str) -> np.random.Generator:
    """The generator of ``seed`` and ``key`` (strings hashed with CRC-32, integers as they are)."""
    return np.random.default_rng([seed, *_ints(key)])


def seed_of(seed: int, *key: int | str) -> int:
    """An integer seed derived from ``seed`` and ``key`` the same way (for APIs that take a seed)."""
    return int(np.random.SeedSequence([seed, *_ints(key)]).generate_state(1)[0])
