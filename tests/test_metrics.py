"""Metrics against scipy / scikit-learn references and permutation nulls with known behaviour."""

import warnings

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics
import torch

from cortexscale.encoding.metrics import (
    _block_permutation_indices,
    correlation_score,
    fdr_correction,
    permutation_test,
    r2_score,
)


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    y_true = rng.standard_normal((120, 7)) * rng.uniform(0.5, 3, 7) + rng.uniform(-50, 50, 7)
    y_pred = 0.6 * y_true + rng.standard_normal((120, 7))
    return y_true, y_pred


def _ar1(rng, shape, phi):
    """AR(1) noise along axis 0 with unit stationary variance."""
    e = rng.standard_normal(shape) * np.sqrt(1 - phi**2)
    x = np.empty(shape)
    x[0] = rng.standard_normal(shape[1:])
    for t in range(1, shape[0]):
        x[t] = phi * x[t - 1] + e[t]
    return x


def _user_warnings(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    return out, caught


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correlation_matches_scipy(pair, dtype):
    y_true, y_pred = (a.astype(dtype) for a in pair)
    r = correlation_score(y_true, y_pred)
    expected = [scipy.stats.pearsonr(y_true[:, j].astype(np.float64), y_pred[:, j].astype(np.float64))[0]
                for j in range(y_true.shape[1])]
    assert r.shape == (7,) and r.dtype == np.float64
    np.testing.assert_allclose(r, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_correlation_1d_gives_float(pair):
    y_true, y_pred = pair
    r = correlation_score(y_true[:, 2], y_pred[:, 2])
    assert isinstance(r, float)
    assert r == pytest.approx(scipy.stats.pearsonr(y_true[:, 2], y_pred[:, 2])[0], abs=1e-12)


def test_torch_tensors_are_accepted(pair):
    y_true, y_pred = pair
    t_true = torch.tensor(y_true, requires_grad=True)
    np.testing.assert_allclose(correlation_score(t_true, torch.tensor(y_pred)), correlation_score(y_true, y_pred))
    np.testing.assert_allclose(r2_score(t_true, torch.tensor(y_pred)), r2_score(y_true, y_pred))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(10, 3\).*\(10, 4\)"):
        correlation_score(np.ones((10, 3)), np.ones((10, 4)))
    with pytest.raises(ValueError, match=r"\(10, 3\).*\(9, 3\)"):
        r2_score(np.ones((10, 3)), np.ones((9, 3)))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="3-D|2-D"):
        correlation_score(np.ones((4, 3, 2)), np.ones((4, 3, 2)))
    bad = np.random.default_rng(0).standard_normal((10, 3))
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"y_pred.*NaN.*\(4, 1\)"):
        correlation_score(np.ones((10, 3)), bad)
    with pytest.raises(ValueError, match="at least 2"):
        correlation_score(np.ones((1, 3)), np.ones((1, 3)))


def test_constant_targets_give_nan_and_one_warning(pair):
    y_true, y_pred = (a.copy() for a in pair)
    y_true[:, 1] = 3.0
    y_pred[:, 4] = -1.0
    y_true[:, 6] = 0.0
    y_pred[:, 6] = 0.0
    r, caught = _user_warnings(correlation_score, y_true, y_pred)
    assert np.isnan(r[[1, 4, 6]]).all() and np.isfinite(r[[0, 2, 3, 5]]).all()
    assert len(caught) == 1 and caught[0].category is UserWarning
    assert "3 of 7" in str(caught[0].message)


def test_r2_matches_sklearn(pair):
    y_true, y_pred = pair
    expected = sklearn.metrics.r2_score(y_true, y_pred, multioutput="raw_values")
    np.testing.assert_allclose(r2_score(y_true, y_pred), expected, rtol=1e-12)
    assert r2_score(y_true[:, 0], y_pred[:, 0]) == pytest.approx(expected[0], rel=1e-12)


def test_r2_constant_truth_is_nan_with_one_warning(pair):
    y_true, y_pred = (a.copy() for a in pair)
    y_true[:, [0, 5]] = 2.0
    y_pred[:, 3] = 1.0  # a constant prediction still has an R^2
    r2, caught = _user_warnings(r2_score, y_true, y_pred)
    assert np.isnan(r2[[0, 5]]).all() and np.isfinite(np.delete(r2, [0, 5])).all()
    assert len(caught) == 1 and "2 of 7" in str(caught[0].message)
    keep = [1, 2, 3, 4, 6]
    np.testing.assert_allclose(r2[keep], sklearn.metrics.r2_score(y_true[:, keep], y_pred[:, keep],
                                                                  multioutput="raw_values"))


@pytest.mark.parametrize("n_samples, block_size", [(100, 10), (103, 10), (50, 7), (20, 1)])
def test_block_permutation_moves_whole_blocks(n_samples, block_size):
    rng = np.random.default_rng(1)
    idx = _block_permutation_indices(n_samples, block_size, rng)
    assert np.array_equal(np.sort(idx), np.arange(n_samples))
    blocks = [np.arange(s, min(s + block_size, n_samples)) for s in range(0, n_samples, block_size)]
    pos = 0
    seen = set()
    while pos < n_samples:
        start = idx[pos]
        assert start % block_size == 0, "each run of indices starts at a block boundary"
        block = blocks[start // block_size]
        assert np.array_equal(idx[pos : pos + block.size], block), "samples keep their order inside a block"
        seen.add(start)
        pos += block.size
    assert len(seen) == len(blocks)


def test_block_permutation_reorders_blocks():
    rng = np.random.default_rng(2)
    orders = {tuple(_block_permutation_indices(60, 10, rng)[::10]) for _ in range(50)}
    assert len(orders) > 10


def test_strong_signal_is_significant():
    rng = np.random.default_rng(3)
    signal = _ar1(rng, (300, 5), 0.7)
    y_true = signal + 0.5 * rng.standard_normal((300, 5))
    for metric in ("correlation", "r2"):
        p = permutation_test(y_true, signal, n_permutations=500, block_size=10, random_state=0, metric=metric)
        assert p.shape == (5,)
        assert (p < 0.01).all()
        assert (p >= 1 / 501).all()


def test_noise_pvalues_are_roughly_uniform():
    rng = np.random.default_rng(4)
    y_true = rng.standard_normal((200, 200))
    y_pred = rng.standard_normal((200, 200))
    p = permutation_test(y_true, y_pred, n_permutations=300, block_size=10, random_state=0)
    assert 0.01 <= np.mean(p < 0.05) <= 0.12
    assert 0.35 <= np.mean(p < 0.5) <= 0.65
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.001


def test_blocks_keep_autocorrelated_nulls_calibrated():
    """Independent AR(1) series: shuffling single samples inflates false positives, blocks do not."""
    rng = np.random.default_rng(5)
    y_true, y_pred = _ar1(rng, (400, 200), 0.9), _ar1(rng, (400, 200), 0.9)
    naive = permutation_test(y_true, y_pred, n_permutations=200, block_size=1, random_state=0)
    blocked = permutation_test(y_true, y_pred, n_permutations=200, block_size=40, random_state=0)
    assert np.mean(naive < 0.05) > 0.2
    assert np.mean(blocked < 0.05) < 0.12


def test_permutation_1d_seed_and_errors():
    rng = np.random.default_rng(6)
    y = rng.standard_normal(80)
    x = y + rng.standard_normal(80)
    p1 = permutation_test(y, x, n_permutations=99, random_state=7)
    assert isinstance(p1, float) and p1 == permutation_test(y, x, n_permutations=99, random_state=7)
    # (1 + count) / (1 + n) is always a multiple of 1 / (n + 1)
    assert (p1 * 100) == pytest.approx(round(p1 * 100))
    with pytest.raises(ValueError, match="metric"):
        permutation_test(y, x, metric="spearman")
    with pytest.raises(ValueError, match="block_size"):
        permutation_test(y, x, block_size=80)
    with pytest.raises(ValueError, match="n_permutations"):
        permutation_test(y, x, n_permutations=0)


def test_permutation_constant_target_is_nan():
    rng = np.random.default_rng(8)
    y_true = rng.standard_normal((60, 3))
    y_pred = y_true + rng.standard_normal((60, 3))
    y_pred[:, 1] = 1.0
    p, caught = _user_warnings(permutation_test, y_true, y_pred, n_permutations=50, random_state=0)
    assert np.isnan(p[1]) and np.isfinite(p[[0, 2]]).all()
    assert len(caught) == 1


def test_fdr_matches_scipy():
    rng = np.random.default_rng(9)
    p = np.concatenate([rng.uniform(size=300), rng.uniform(0, 1e-3, size=40)])
    rejected, q = fdr_correction(p, alpha=0.05)
    np.testing.assert_allclose(q, scipy.stats.false_discovery_control(p, method="bh"), rtol=1e-12)
    assert np.array_equal(rejected, q <= 0.05)
    assert rejected[-40:].mean() > 0.9


def test_fdr_nan_and_shape():
    rng = np.random.default_rng(10)
    p = rng.uniform(0, 0.05, size=(4, 5))
    p[1, 2] = p[3, 0] = np.nan
    rejected, q = fdr_correction(p, alpha=0.1)
    assert q.shape == p.shape and rejected.shape == p.shape
    nan = np.isnan(p)
    assert np.isnan(q[nan]).all() and not rejected[nan].any()
    np.testing.assert_allclose(q[~nan], scipy.stats.false_discovery_control(p[~nan]), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\[0, 1\].*1.5"):
        fdr_correction(np.array([0.1, 1.5]))
    with pytest.raises(ValueError, match="alpha"):
        fdr_correction(np.array([0.1]), alpha=1.0)
