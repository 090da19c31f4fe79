"""Noise ceilings recover analytic ground truth in simulation and behave on the Alice data.

Simulation model: response_i = s + e_i, with s of variance 1 per target and
independent Gaussian noise e_i of variance v (one v per target, spanning low
to high SNR). Then, for N repeats or subjects,

* reliability of the N-average   R_N = 1 / (1 + v / N),  cc_max = sqrt(R_N)
* r(one subject, mean of others) = 1 / sqrt((1 + v) (1 + v / (N - 1)))

Tolerances: a correlation estimated from T samples has standard error about
(1 - rho^2) / sqrt(T); with T = 4000 that is below 0.016 for every rho here,
so 0.05 per target is over 3 standard errors, and the mean over 30 targets
(bias) is held to 0.01. Power estimates are noisier: the signal power of the
noisiest target (v = 8, N = 6) has a standard error of about
sqrt(2 / T) (1 + v / N) ~ 0.05, so SP and SPE get 0.15 (3 standard errors).
"""

import dataclasses
import re
import warnings

import numpy as np
import pytest
import torch

from cortexscale.data import load_alice
from cortexscale.encoding.ceilings import (
    NoiseCeiling,
    cc_max,
    cc_norm,
    drop_empty_subjects,
    leave_one_out_ceiling,
    noise_ceiling,
    noise_power,
    normalised_correlation,
    signal_power,
    signal_power_explained,
    split_half_ceiling,
)

T, V = 4000, 30
NOISE_VAR = np.linspace(0.5, 8.0, V)
TOL, BIAS_TOL, POWER_TOL = 0.05, 0.01, 0.15


def _simulate(n, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((T, V))
    signal = (signal - signal.mean(0)) / signal.std(0)
    return signal, signal + rng.standard_normal((n, T, V)) * np.sqrt(NOISE_VAR)


def _close(estimate, truth, tol=TOL):
    assert np.abs(estimate - truth).max() < tol
    assert abs(np.mean(estimate - truth)) < BIAS_TOL


@pytest.fixture(scope="module")
def repeats():
    return _simulate(6)


def test_signal_and_noise_power(repeats):
    signal, data = repeats
    sp, npow = signal_power(data), noise_power(data)
    assert sp.shape == npow.shape == (V,)
    # SP estimates the signal variance (1); NP the noise variance, relative error ~ sqrt(2 / (N T))
    _close(sp, 1.0, POWER_TOL)
    np.testing.assert_allclose(npow / NOISE_VAR, 1.0, atol=0.05)


def test_signal_power_matches_equivalent_form(repeats):
    """(Var(sum) - sum Var) / (N (N-1)) equals (N Var(mean) - mean Var) / (N - 1)."""
    _, data = repeats
    n = data.shape[0]
    alt = (n * data.mean(0).var(0, ddof=1) - data.var(1, ddof=1).mean(0)) / (n - 1)
    np.testing.assert_allclose(signal_power(data), np.maximum(alt, 0), rtol=1e-10)


def test_cc_max_recovers_reliability_of_mean(repeats):
    _, data = repeats
    n = data.shape[0]
    _close(cc_max(data), np.sqrt(1.0 / (1.0 + NOISE_VAR / n)))


def test_cc_norm_and_spe_of_known_predictions(repeats):
    signal, data = repeats
    rng = np.random.default_rng(1)
    _close(cc_norm(signal, data), 1.0)
    _close(signal_power_explained(signal, data), 1.0, POWER_TOL)
    # A prediction with extra noise of variance 1 correlates 1/sqrt(2) with the signal
    _close(cc_norm(signal + rng.standard_normal((T, V)), data), np.sqrt(0.5))
    # Half the signal explains 1 - 0.25 of its power: (Var(y) - Var(y - s/2)) / SP = 0.75
    _close(signal_power_explained(0.5 * signal, data), 0.75, POWER_TOL)


def test_repeats_dispatcher(repeats):
    signal, data = repeats
    result = noise_ceiling(data, method="repeats", y_pred=signal)
    assert isinstance(result, NoiseCeiling) and result.method == "repeats"
    np.testing.assert_allclose(result.ceiling, cc_max(data))
    np.testing.assert_allclose(result.reliability, result.ceiling**2)
    np.testing.assert_allclose(result.signal_power, signal_power(data))
    np.testing.assert_allclose(result.noise_power, noise_power(data))
    np.testing.assert_allclose(result.cc_norm, cc_norm(signal, data))
    np.testing.assert_allclose(result.spe, signal_power_explained(signal, data))
    assert result.n_floored == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.method = "other"
    with pytest.raises(ValueError, match="read-only"):
        result.ceiling[0] = 2.0
    assert noise_ceiling(data, method="repeats").cc_norm is None


def test_pure_noise_targets_are_floored():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((4, 200, 400))
    result = noise_ceiling(data, method="repeats")
    # The raw SP estimate is unbiased around 0, so about half the targets go negative
    assert 120 < result.n_floored < 280
    assert np.count_nonzero(result.signal_power == 0) == result.n_floored
    assert np.count_nonzero(result.ceiling == 0) == result.n_floored
    floored = result.ceiling == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norm = cc_norm(data.mean(0), data)
    assert np.isnan(norm[floored]).all() and np.isfinite(norm[~floored]).all()


def test_constant_target_across_repeats():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((3, 50, 4))
    data[:, :, 2] = 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ceiling = cc_max(data)
    assert np.isnan(ceiling[2]) and np.isfinite(ceiling[[0, 1, 3]]).all()
    assert len(caught) == 1 and caught[0].category is UserWarning


@pytest.mark.parametrize("n_subjects", [8, 9])
def test_split_half_matches_reliability_of_group_mean(n_subjects):
    _, subjects = _simulate(n_subjects, seed=n_subjects)
    reliability = split_half_ceiling(subjects, n_splits=50, random_state=0)
    assert reliability.shape == (V,)
    _close(reliability, 1.0 / (1.0 + NOISE_VAR / n_subjects))
    result = noise_ceiling(subjects, method="split_half", n_splits=50, random_state=0)
    np.testing.assert_allclose(result.reliability, reliability)
    np.testing.assert_allclose(result.ceiling, np.sqrt(reliability))


def test_split_half_is_reproducible_and_validates():
    _, subjects = _simulate(4, seed=11)
    a = split_half_ceiling(subjects[:, :300], n_splits=5, random_state=3)
    np.testing.assert_array_equal(a, split_half_ceiling(subjects[:, :300], n_splits=5, random_state=3))
    with pytest.raises(ValueError, match="n_splits"):
        split_half_ceiling(subjects, n_splits=0)


def test_split_half_is_reproducible_by_default():
    _, subjects = _simulate(5, seed=12)
    subjects = subjects[:, :400]
    np.testing.assert_array_equal(split_half_ceiling(subjects, n_splits=6), split_half_ceiling(subjects, n_splits=6))
    first = noise_ceiling(subjects, method="split_half", n_splits=6)
    second = noise_ceiling(subjects, method="split_half", n_splits=6)
    np.testing.assert_array_equal(first.ceiling, second.ceiling)
    np.testing.assert_array_equal(first.reliability, second.reliability)
    # the default is a fixed seed, not a fixed set of splits: other seeds draw other splits
    fresh = split_half_ceiling(subjects, n_splits=6, random_state=1)
    assert not np.array_equal(fresh, first.reliability)


def test_normalised_correlation_divides_by_the_ceiling_not_the_reliability():
    _, subjects = _simulate(8, seed=13)
    result = noise_ceiling(subjects, method="split_half", n_splits=20)
    r = 0.5 * result.ceiling
    np.testing.assert_allclose(normalised_correlation(r, result.ceiling), 0.5)
    assert np.all(np.abs(normalised_correlation(r, result.ceiling) - r / result.reliability) > 0.01)
    # a prediction of the true signal reaches the ceiling: its normalised r is about 1
    signal, data = _simulate(6, seed=14)
    repeats = noise_ceiling(data, method="repeats", y_pred=signal)
    r_signal = np.array([np.corrcoef(signal[:, j], data.mean(0)[:, j])[0, 1] for j in range(V)])
    _close(normalised_correlation(r_signal, repeats.ceiling), 1.0)
    np.testing.assert_allclose(normalised_correlation(r_signal, repeats.ceiling), repeats.cc_norm)


def test_normalised_correlation_broadcasts_and_is_nan_without_a_ceiling():
    r = np.array([[0.2, 0.4, -0.3], [0.1, 0.0, 0.6]])
    ceiling = np.array([0.5, 0.0, -0.1])
    out = normalised_correlation(r, ceiling)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[:, 0], [0.4, 0.2])
    assert np.isnan(out[:, 1:]).all()
    assert normalised_correlation(0.3, 0.6) == pytest.approx(0.5)
    np.testing.assert_allclose(normalised_correlation(torch.tensor([0.3, 0.2]), 0.4), [0.75, 0.5])
    assert np.isnan(normalised_correlation(np.nan, 0.5))
    with pytest.raises(ValueError, match=r"r of shape \(2, 3\) and ceiling of shape \(2,\)"):
        normalised_correlation(r, [0.5, 0.5])


def test_leave_one_out_matches_analytic():
    n = 7
    _, subjects = _simulate(n, seed=4)
    loo = leave_one_out_ceiling(subjects)
    assert loo.shape == (n, V)
    truth = 1.0 / np.sqrt((1.0 + NOISE_VAR) * (1.0 + NOISE_VAR / (n - 1)))
    _close(loo.mean(axis=0), truth)
    assert np.abs(loo - truth).max() < 2 * TOL
    result = noise_ceiling(subjects, method="leave_one_out")
    np.testing.assert_allclose(result.ceiling, loo)
    assert result.reliability is None and result.kept_index is None


def test_torch_input_matches_numpy(repeats):
    _, data = repeats
    np.testing.assert_allclose(cc_max(torch.tensor(data[:, :500])), cc_max(data[:, :500]))


def test_drop_empty_subjects():
    rng = np.random.default_rng(5)
    subjects = rng.standard_normal((5, 40, 3))
    subjects[1] = 0.0
    subjects[3] = 7.0
    subjects[4, :, 0] = 0.0  # one empty target is not an empty subject
    with pytest.warns(UserWarning, match=r"indices \[1, 3\]"):
        kept, kept_index = drop_empty_subjects(subjects)
    np.testing.assert_array_equal(kept_index, [0, 2, 4])
    np.testing.assert_array_equal(kept, subjects[[0, 2, 4]])
    with pytest.raises(ValueError, match=r"\[1, 3\].*drop_empty_subjects"):
        split_half_ceiling(subjects)
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        noise_ceiling(subjects, method="leave_one_out")
    with pytest.warns(UserWarning, match="dropped"), pytest.warns(UserWarning, match="1 of 3 targets"):
        result = noise_ceiling(subjects, method="leave_one_out", drop_empty=True)
    assert result.ceiling.shape == (3, 3)
    assert np.isnan(result.ceiling[2, 0]) and np.isfinite(np.delete(result.ceiling.ravel(), 6)).all()
    np.testing.assert_array_equal(result.kept_index, [0, 2, 4])


def test_input_errors():
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match=re.escape("(n_repeats, n_samples, n_targets), got shape (20, 3)")):
        cc_max(rng.standard_normal((20, 3)))
    with pytest.raises(ValueError, match=re.escape("(n_subjects, n_samples, n_targets), got shape (2, 3, 4, 5)")):
        leave_one_out_ceiling(rng.standard_normal((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="at least 2"):
        signal_power(rng.standard_normal((1, 20, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        split_half_ceiling(rng.standard_normal((1, 20, 3)))
    bad = rng.standard_normal((3, 20, 2))
    bad[2, 5, 1] = np.inf
    with pytest.raises(ValueError, match=r"inf.*\(2, 5, 1\)"):
        noise_ceiling(bad, method="repeats")
    with pytest.raises(ValueError, match=r"y_pred.*\(20, 3\).*\(3, 20, 2\)"):
        cc_norm(rng.standard_normal((20, 3)), rng.standard_normal((3, 20, 2)))


def test_dispatcher_requires_a_method():
    data = np.random.default_rng(7).standard_normal((3, 20, 2))
    with pytest.raises(ValueError, match="repeats.*split_half.*leave_one_out"):
        noise_ceiling(data)
    with pytest.raises(ValueError, match="method must be one of"):
        noise_ceiling(data, method="bootstrap")
    with pytest.raises(ValueError, match="n_splits"):
        noise_ceiling(data, method="repeats", n_splits=3)


def test_alice_group_ceiling():
    with pytest.warns(UserWarning, match=r"dropping Alice subject\(s\) \['s33'\]"):
        alice = load_alice(resolution="6mm")
    assert alice.responses.shape == (27, 362, 6) and "s33" not in alice.subjects
    data = alice.responses
    z = (data - data.mean(axis=1, keepdims=True)) / data.std(axis=1, keepdims=True)
    group = split_half_ceiling(z, n_splits=100, random_state=0)
    loo = leave_one_out_ceiling(z)
    # the code gives 0.787 0.647 0.857 0.759 0.687 0.528 (LATL ... LIFG); without the Spearman-Brown step
    # the half-split correlations are 0.36-0.75, more than the 0.03 allowed here below them
    np.testing.assert_allclose(group, [0.787, 0.647, 0.857, 0.759, 0.687, 0.528], atol=0.03)
    np.testing.assert_allclose(np.median(loo, axis=0), [0.341, 0.256, 0.423, 0.281, 0.189, 0.14], atol=0.03)
    assert (group > np.median(loo, axis=0)).all()
