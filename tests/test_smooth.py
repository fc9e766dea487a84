"""The penalised-spline GAM behind the value-of-information estimates (`analyses/smooth.py`),
against known truths: a smooth function recovered from noisy data within what the noise allows,
generalised cross-validation choosing heavy smoothing for pure noise, the limits of the smoothing
parameter (the penalty's null space, interpolation), the exact leave-one-out prediction, case
weights as repeated rows, and a tensor-product block capturing an interaction that an additive
model cannot."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.analyses import smooth

N = 2000
SIGMA = 0.3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261205)
    x = rng.uniform(size=N)
    truth = np.sin(2 * np.pi * x)
    return rng, x, truth, truth + SIGMA * rng.standard_normal(N)


def _lam(index: int) -> np.ndarray:
    """A fixed smoothing parameter: its index into `smooth.LAMBDAS`."""
    return np.array([index])


def test_basis_is_a_partition_of_unity_with_the_penalty_s_null_space():
    """Cubic B-splines sum to 1 at every point; a second-difference penalty leaves two directions
    free per margin (constant and linear coefficients); a block's size is capped at
    `MAX_TENSOR` functions with 4 to 12 per margin."""
    x = np.random.default_rng(1).uniform(size=(300, 3))
    B, P = smooth.basis([x[:, :1]])
    assert B.shape == (300, 12)
    assert np.allclose(B.sum(axis=1), 1.0)
    assert np.linalg.matrix_rank(P) == 12 - 2
    B2, P2 = smooth.basis([x[:, :2]])
    assert B2.shape == (300, 8 * 8) and np.linalg.matrix_rank(P2) == 64 - 4
    B3, _ = smooth.basis([x])
    assert B3.shape == (300, 4**3) and 4**3 <= smooth.MAX_TENSOR
    B_add, P_add = smooth.basis([x[:, :1], x[:, 1:2]])  # blocks add: side by side
    assert B_add.shape == (300, 24) and P_add.shape == (24, 24)


def test_ranks_are_mid_ranks_inside_the_unit_interval():
    u = smooth.ranks(np.array([3.0, 1.0, 3.0, 2.0]))
    assert u.tolist() == pytest.approx([0.75, 0.125, 0.75, 0.375])
    assert 0 < u.min() and u.max() < 1


def test_smooth_function_recovered_within_the_noise(data):
    """y = sin(2 pi x) + N(0, 0.3^2): the fitted curve's error is of the order of a linear
    smoother's, whose fitted values have average variance sigma^2 edf / N with edf at most the
    number of basis functions p; three times that bound leaves room for the bias."""
    _rng, x, truth, y = data
    B, P = smooth.basis([x[:, None]])
    fitted, lam = smooth.fit(B, P, y[:, None])
    rmse = np.sqrt(np.mean((fitted[:, 0] - truth) ** 2))
    assert rmse < 3 * SIGMA * np.sqrt(B.shape[1] / N)
    assert rmse < 0.2 * SIGMA  # far closer to the truth than the data are
    assert 0 < lam[0] < len(smooth.LAMBDAS) - 1  # neither end of the grid


def test_gcv_smooths_pure_noise_most(data):
    """No signal: GCV picks heavier smoothing than for the sine, and the fit is nearly flat (a
    two-parameter fit to pure noise varies by about sigma sqrt(2 / N))."""
    rng, x, _truth, y = data
    B, P = smooth.basis([x[:, None]])
    noise = SIGMA * rng.standard_normal(N)
    fitted, lams = smooth.fit(B, P, np.column_stack([y, noise]))  # one choice per column
    assert lams[1] > lams[0]
    assert fitted[:, 1].std() < 2 * SIGMA * np.sqrt(2 / N)


def test_the_penalty_s_null_space_is_fitted_exactly_at_every_smoothing(data):
    """A response that is a constant plus a linear combination of the coefficients' index (what
    the second-difference penalty does not penalise) is reproduced whatever the smoothing."""
    _rng, x, _truth, _y = data
    B, P = smooth.basis([x[:, None]])
    y = 1.5 - 0.2 * (B @ np.arange(B.shape[1], dtype=float))
    for i in (0, len(smooth.LAMBDAS) // 2, len(smooth.LAMBDAS) - 1):
        fitted, _ = smooth.fit(B, P, y[:, None], lam=_lam(i))
        assert np.abs(fitted[:, 0] - y).max() < 1e-6


def test_smoothing_limits_projection_and_interpolation(data):
    """The largest smoothing leaves the least-squares fit on the penalty's null space; the
    smallest reproduces any curve of the basis."""
    rng, x, _truth, y = data
    B, P = smooth.basis([x[:, None]])
    null = np.column_stack([np.ones(N), B @ np.arange(B.shape[1], dtype=float)])
    ols = null @ np.linalg.lstsq(null, y, rcond=None)[0]
    heavy, _ = smooth.fit(B, P, y[:, None], lam=_lam(len(smooth.LAMBDAS) - 1))
    assert np.abs(heavy[:, 0] - ols).max() < 1e-3 * np.abs(ols).max()
    curve = B @ rng.standard_normal(B.shape[1])
    light, _ = smooth.fit(B, P, curve[:, None], lam=_lam(0))
    assert np.abs(light[:, 0] - curve).max() < 1e-2 * np.abs(curve).max()


def test_leave_one_out_equals_refitting_without_each_row():
    """The left-out prediction (f_i - h_ii y_i) / (1 - h_ii) of a linear smoother is the fit
    without row i evaluated at row i (weight 0), exactly up to rounding."""
    rng = np.random.default_rng(7)
    n = 60
    x = rng.uniform(size=n)
    y = np.sin(3 * x) + 0.2 * rng.standard_normal(n)
    B, P = smooth.basis([x[:, None]])
    loo, _ = smooth.fit(B, P, y[:, None], lam=_lam(20), loo=True)
    refits = []
    for i in range(n):
        w = np.ones(n)
        w[i] = 0.0
        refits.append(smooth.fit(B, P, y[:, None], w=w, lam=_lam(20))[0][i, 0])
    assert np.abs(loo[:, 0] - np.array(refits)).max() < 1e-8


def test_case_weights_are_repeated_rows():
    """Integer case weights (a bootstrap's counts) fit as the data with each row repeated that
    many times, for a given smoothing."""
    rng = np.random.default_rng(8)
    n = 80
    x = rng.uniform(size=n)
    y = np.cos(4 * x) + 0.3 * rng.standard_normal(n)
    B, P = smooth.basis([x[:, None]])
    counts = rng.integers(0, 3, size=n)
    weighted, _ = smooth.fit(B, P, y[:, None], w=counts.astype(float), lam=_lam(15))
    rows = np.repeat(np.arange(n), counts)
    repeated, _ = smooth.fit(B[rows], P, y[rows][:, None], lam=_lam(15))
    assert np.abs(weighted[rows, 0] - repeated[:, 0]).max() < 1e-9


def test_an_interaction_needs_a_tensor_block(data):
    """y = 4 (x1 - 1/2)(x2 - 1/2) + noise has no additive part: two added blocks recover none of
    it (their error is the interaction's own sd, 1/3), one tensor block recovers it within the
    noise's bound."""
    rng, *_ = data
    x1, x2 = rng.uniform(size=N), rng.uniform(size=N)
    truth = 4 * (x1 - 0.5) * (x2 - 0.5)
    sd = 0.05
    y = truth + sd * rng.standard_normal(N)
    Ba, Pa = smooth.basis([x1[:, None], x2[:, None]])
    Bt, Pt = smooth.basis([np.column_stack([x1, x2])])
    additive, _ = smooth.fit(Ba, Pa, y[:, None])
    tensor, _ = smooth.fit(Bt, Pt, y[:, None])
    rmse_a = np.sqrt(np.mean((additive[:, 0] - truth) ** 2))
    rmse_t = np.sqrt(np.mean((tensor[:, 0] - truth) ** 2))
    assert rmse_a > 0.9 * truth.std()
    assert rmse_t < 3 * sd * np.sqrt(Bt.shape[1] / N)
