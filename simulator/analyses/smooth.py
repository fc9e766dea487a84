"""Nonparametric regression for value-of-information estimates: penalised regression splines (a
generalised additive model) with the smoothing chosen by generalised cross-validation.

The conditional expectation E[V | x] of a per-draw decision value V given a few per-draw inputs x
(change parameters, or summaries of simulated experiment data) is estimated as in Strong, Oakley
and Brennan (2014) and Strong et al. (2015), who fit a GAM with `mgcv`: here cubic B-splines on the
ranks of each input (so knots sit at quantiles), a tensor product within a block of inputs that
may interact, blocks added together, a second-order difference penalty on the coefficients of
every margin (P-splines, Eilers and Marx 1996) and one smoothing parameter chosen per response by
GCV. With the Demmler-Reinsch basis every candidate smoothing parameter costs O(basis size), so
the whole GCV search costs about one least-squares fit.
"""

from __future__ import annotations

import numpy as np

LAMBDAS = np.logspace(-3, 7, 41)
MAX_TENSOR = 64  # basis functions of one block at most


def _margin(u: np.ndarray, k: int) -> np.ndarray:
    """Cubic B-spline basis with ``k`` functions on [0, 1], evaluated at ``u`` in (0, 1)."""
    from scipy.interpolate import BSpline

    inner = np.linspace(0.0, 1.0, k - 2)
    t = np.concatenate([[0.0] * 3, inner, [1.0] * 3])
    return BSpline.design_matrix(u, t, 3).toarray()


def _difference_penalty(k: int) -> np.ndarray:
    d = np.diff(np.eye(k), n=2, axis=0)
    return d.T @ d


def ranks(x: np.ndarray) -> np.ndarray:
    """Mid-ranks scaled into (0, 1)."""
    from scipy.stats import rankdata

    return (rankdata(x) - 0.5) / x.shape[0]


def basis(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Design matrix and penalty of an additive model of tensor-product blocks.

    Each block is an (N, d) array of inputs that may interact with each other; blocks add.
    """
    from scipy import linalg

    cols, pens = [], []
    for x in blocks:
        x = np.asarray(x, dtype=float).reshape(x.shape[0], -1)
        d = x.shape[1]
        if d == 0:
            continue
        k = int(np.clip(np.floor(MAX_TENSOR ** (1 / d)), 4, 12))
        margins = [_margin(ranks(x[:, j]), k) for j in range(d)]
        B = margins[0]
        for m in margins[1:]:
            B = (B[:, :, None] * m[:, None, :]).reshape(B.shape[0], -1)
        P = np.zeros((k**d, k**d))
        for j in range(d):
            mats = [np.eye(k)] * d
            mats[j] = _difference_penalty(k)
            pj = mats[0]
            for m in mats[1:]:
                pj = np.kron(pj, m)
            P += pj
        cols.append(B)
        pens.append(P)
    if not cols:
        return np.zeros((0, 0)), np.zeros((0, 0))
    return np.hstack(cols), linalg.block_diag(*pens)


def fit(
    B: np.ndarray,
    P: np.ndarray,
    Y: np.ndarray,
    w: np.ndarray | None = None,
    lam: np.ndarray | None = None,
    loo: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Fitted values of each column of ``Y`` (N, m) under the penalised spline model ``(B, P)``
    and the index into ``LAMBDAS`` of each column's smoothing parameter, chosen by GCV unless
    given as ``lam``; ``w`` are case weights (bootstrap counts, with which the smoothing chosen on
    the original sample is kept: GCV on a resample with repeated rows undersmooths).

    With ``loo`` the fitted value of each row is the one predicted without that row
    (leave-one-out, exact for a linear smoother: (f_i - h_ii y_i) / (1 - h_ii)). A maximum over
    in-sample fitted values is biased upwards by each row's own noise; the left-out prediction
    is free of it."""
    from scipy import linalg

    Y = np.asarray(Y, dtype=float)
    N = Y.shape[0]
    w = np.ones(N) if w is None else np.asarray(w, dtype=float)
    n = w.sum()
    if B.shape[1] == 0:
        return np.broadcast_to((w @ Y) / n, Y.shape).copy(), np.zeros(Y.shape[1], dtype=int)
    sparse = not isinstance(B, np.ndarray)  # a scipy.sparse matrix: B-splines are local
    if sparse:
        M = (B.T @ B.multiply(w[:, None]).tocsr()).toarray()
    else:
        M = B.T @ (B * w[:, None])
    p = M.shape[0]
    M[np.diag_indices(p)] += 1e-9 * np.trace(M) / p  # the blocks share the constant
    L = linalg.cholesky(M, lower=True)
    Li_P = linalg.solve_triangular(L, P, lower=True)
    S = linalg.solve_triangular(L, Li_P.T, lower=True)
    s, U = linalg.eigh((S + S.T) / 2)
    s = np.clip(s, 0.0, None)
    c = U.T @ linalg.solve_triangular(L, B.T @ (w[:, None] * Y), lower=True)  # (p, m)
    yy = np.einsum("n,nm,nm->m", w, Y, Y)
    shrink = 1.0 / (1.0 + LAMBDAS[:, None] * s[None, :])  # (lambdas, p)
    c2 = c**2
    rss = yy[None, :] - 2 * shrink @ c2 + (shrink**2) @ c2  # (lambdas, m)
    edf = shrink.sum(axis=1)[:, None]
    gcv = n * np.maximum(rss, 0.0) / np.maximum(n - edf, 1.0) ** 2
    best = gcv.argmin(axis=0) if lam is None else np.asarray(lam)
    T = linalg.solve_triangular(L.T, U, lower=False)  # coefficients per Demmler-Reinsch direction
    Z = np.asarray(B @ T)  # (N, p): the data in those directions
    fitted = Z @ (c * shrink[best].T)
    if loo:
        h = w[:, None] * ((Z**2) @ shrink[best].T)  # hat-matrix diagonal per column
        fitted = (fitted - h * Y) / np.maximum(1.0 - h, 1e-6)
    return fitted, best
