"""The libraries' warnings that a user of krsim cannot act on, silenced by category and message
while the models are sampled and their traces written; every other warning shows as it would."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

NOT_ACTIONABLE: tuple[tuple[type[Warning], str], ...] = (
    # Python's note that forking a multi-threaded process may deadlock: PyMC's sampler starts its
    # chains so
    (DeprecationWarning, r"This process \(pid=\d+\) is multi-threaded, use of fork\(\)"),
    # PyTensor's note that it falls back on NumPy's BLAS
    (UserWarning, r"Using NumPy C-API based implementation for BLAS functions"),
    # zarr's note that consolidated metadata lies outside the format 3 specification (the cached
    # trace is read back by the same library)
    (UserWarning, r"Consolidated metadata is currently not part in the Zarr format 3"),
    # ArviZ's PSIS-LOO note on Pareto k above 0.67: the archive's fit counts the experiments with
    # k above 0.7 and says so in words (`archive.summarise`)
    (UserWarning, r"Estimated shape parameter of Pareto distribution is greater than"),
    # NumPy's overflow in PyMC's own NUTS (`sampler: pymc`) on a diverging trajectory's kinetic
    # energy: PyMC records the step as a divergence, which the diagnostics count and say in words
    (RuntimeWarning, r"overflow encountered in dot"),
)


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """`NOT_ACTIONABLE` warnings ignored inside the block."""
    with warnings.catch_warnings():
        for category, message in NOT_ACTIONABLE:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield
