import numpy as np
import pytest
from scipy.stats import zscore

from cortexscale.encoding.preprocessing import groups_to_runs, runs_to_groups, trim_runs, zscore_runs


def test_zscore_runs_matches_scipy_per_run():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=5.0, scale=3.0, size=(30, 4))
    lengths = [10, 8, 12]
    out = zscore_runs(X, lengths)
    expected = np.vstack([zscore(X[:10]), zscore(X[10:18]), zscore(X[18:])])
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_zscore_runs_one_run_by_default_and_1d():
    x = np.random.default_rng(1).normal(size=25)
    np.testing.assert_allclose(zscore_runs(x), zscore(x), atol=1e-12)
    np.testing.assert_allclose(zscore_runs(x[:, None])[:, 0], zscore(x), atol=1e-12)


def test_zscore_runs_constant_columns_become_zero():
    X = np.column_stack([np.full(9, 0.1), np.r_[np.full(4, 2.0), np.arange(5.0)]])
    out = zscore_runs(X, [4, 5])
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 0], 0.0)
    np.testing.assert_array_equal(out[:4, 1], 0.0)
    np.testing.assert_allclose(out[4:, 1], zscore(np.arange(5.0)))


def test_zscore_runs_rejects_nan_and_bad_runs():
    X = np.ones((6, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN \(first at index \(3, 1\)\)"):
        zscore_runs(X)
    with pytest.raises(ValueError, match="sum to 5 but the data have 6 samples"):
        zscore_runs(np.ones((6, 2)), [2, 3])


def test_trim_runs_keeps_the_middle_of_each_run():
    X = np.arange(40.0)[:, None] * np.ones((1, 2))
    trimmed, lengths = trim_runs(X, [15, 25], start=3, end=2)
    expected_rows = list(range(3, 13)) + list(range(18, 38))
    np.testing.assert_array_equal(trimmed[:, 0], expected_rows)
    np.testing.assert_array_equal(lengths, [10, 20])
    assert lengths.sum() == trimmed.shape[0]


def test_trim_runs_huth_defaults():
    X = np.arange(200.0)
    trimmed, lengths = trim_runs(X, [100, 100])
    np.testing.assert_array_equal(lengths, [45, 45])
    assert trimmed[0] == 50 and trimmed[44] == 94 and trimmed[45] == 150


def test_trim_runs_short_run_is_named():
    with pytest.raises(ValueError, match=r"run 1 has 40 samples, too short to trim start=50 and end=5"):
        trim_runs(np.zeros(140), [100, 40])


@pytest.mark.parametrize("kwargs", [{"start": -1}, {"end": 1.5}])
def test_trim_runs_bad_amounts(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        trim_runs(np.zeros(100), **kwargs)


def test_runs_and_groups_round_trip():
    groups = runs_to_groups([2, 3, 1])
    np.testing.assert_array_equal(groups, [0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(groups_to_runs(groups), [2, 3, 1])
    np.testing.assert_array_equal(groups_to_runs(["b", "b", "a", "c", "c"]), [2, 1, 2])


@pytest.mark.parametrize("bad, match", [([], "non-empty"), ([2, 0], r"run_lengths\[1\] = 0")])
def test_runs_to_groups_bad_lengths(bad, match):
    with pytest.raises(ValueError, match=match):
        runs_to_groups(bad)


def test_groups_to_runs_rejects_non_contiguous_runs():
    with pytest.raises(ValueError, match="label 0 starts at index 0 and appears again at index 4"):
        groups_to_runs([0, 0, 1, 1, 0])
    with pytest.raises(ValueError, match="non-empty"):
        groups_to_runs([])
