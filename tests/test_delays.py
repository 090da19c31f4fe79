import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn_checks import sklearn_checks

from cortexscale.encoding.delays import Delayer, delay_features


def naive_delays(X, delays, run_lengths=None):
    """Reference: element by element, out[i, k*p + j] = X[i - d, j] if i - d lies in the same run."""
    n, p = X.shape
    run_lengths = [n] if run_lengths is None else run_lengths
    run_of = np.repeat(np.arange(len(run_lengths)), run_lengths)
    out = np.zeros((n, p * len(delays)))
    for i in range(n):
        for k, d in enumerate(delays):
            src = i - d
            if 0 <= src < n and run_of[src] == run_of[i]:
                for j in range(p):
                    out[i, k * p + j] = X[src, j]
    return out


@pytest.mark.parametrize(
    "delays",
    [(1, 2, 3, 4), (0,), (0, 1), (-2, 3, 0), (4, 1), (-1,), (12,), (1, 50)],
)
@pytest.mark.parametrize("run_lengths", [None, [7, 5, 11], [1, 22], [23]])
def test_matches_naive_loop(delays, run_lengths):
    X = np.random.default_rng(0).normal(size=(23, 3))
    expected = naive_delays(X, delays, run_lengths)
    np.testing.assert_array_equal(delay_features(X, delays, run_lengths), expected)
    np.testing.assert_array_equal(Delayer(delays, run_lengths).fit_transform(X), expected)


def test_positive_delay_sees_the_past():
    X = np.arange(1.0, 6.0)[:, None]
    out = delay_features(X, [2, -1])
    np.testing.assert_array_equal(out[:, 0], [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(out[:, 1], [2, 3, 4, 5, 0])


def test_no_delay_crosses_a_run_boundary():
    X = np.ones((10, 2))
    out = delay_features(X, [1, 2, -1], run_lengths=[4, 6])
    # Delay d zeroes the first d rows of every run; delay -1 the last row of every run.
    np.testing.assert_array_equal(out[[0, 4], 0:2], 0)
    np.testing.assert_array_equal(out[[0, 1, 4, 5], 2:4], 0)
    np.testing.assert_array_equal(out[[3, 9], 4:6], 0)
    assert out.sum() == 2 * ((10 - 2) + (10 - 4) + (10 - 2))


def test_transform_argument_overrides_init_run_lengths():
    X = np.random.default_rng(1).normal(size=(12, 2))
    delayer = Delayer(delays=[1], run_lengths=[6, 6]).fit(X)
    np.testing.assert_array_equal(delayer.transform(X), naive_delays(X, [1], [6, 6]))
    np.testing.assert_array_equal(delayer.transform(X, run_lengths=[3, 9]), naive_delays(X, [1], [3, 9]))
    np.testing.assert_array_equal(delayer.fit_transform(X, run_lengths=[12]), naive_delays(X, [1]))


def test_feature_names_follow_column_layout():
    X = np.zeros((5, 2))
    names = Delayer(delays=[3, -1]).fit(X).get_feature_names_out()
    assert list(names) == ["x0_delay3", "x1_delay3", "x0_delay-1", "x1_delay-1"]
    named = Delayer(delays=[1]).fit(X).get_feature_names_out(["rate", "power"])
    assert list(named) == ["rate_delay1", "power_delay1"]
    with pytest.raises(ValueError, match="input_features"):
        Delayer().fit(X).get_feature_names_out(["only_one"])


def test_float32_is_preserved():
    X = np.ones((6, 2), dtype=np.float32)
    assert Delayer().fit_transform(X).dtype == np.float32


def test_in_pipeline_before_a_scaler():
    X = np.random.default_rng(2).normal(size=(30, 2))
    out = make_pipeline(Delayer([0, 1]), StandardScaler()).fit_transform(X)
    assert out.shape == (30, 4)


@pytest.mark.parametrize(
    "delays, match",
    [
        ((), "non-empty"),
        ((1, 1.5), r"delays\[1\] = 1.5 is not an integer"),
        ((1, "2"), r"delays\[1\]"),
        ((True,), r"delays\[0\]"),
        ((1, 2, 1), r"contain 1 more than once \(at indices \[0, 2\]\)"),
    ],
)
def test_bad_delays_are_named(delays, match):
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match=match):
        delay_features(X, delays)
    with pytest.raises(ValueError, match=match):
        Delayer(delays=delays).fit(X)


@pytest.mark.parametrize(
    "run_lengths, match",
    [
        ([], "non-empty"),
        ([3, 0, 7], r"run_lengths\[1\] = 0"),
        ([3, 3], "sum to 6 but the data have 10 samples"),
        ([5.0, 5.0], "integers"),
    ],
)
def test_bad_run_lengths_are_named(run_lengths, match):
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match=match):
        delay_features(X, [1], run_lengths)
    with pytest.raises(ValueError, match=match):
        Delayer(delays=[1]).fit(X).transform(X, run_lengths=run_lengths)


def test_bad_shape_is_named():
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        delay_features(np.zeros(4), [1])


def _order_dependent_checks(estimator):
    reason = "delays mix neighbouring rows by design, so the output depends on row order and batch start"
    return {
        "check_methods_sample_order_invariance": reason,
        "check_methods_subset_invariance": reason,
    }


@sklearn_checks([Delayer()], expected_failed_checks=_order_dependent_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_order_dependence_is_real():
    """The two sklearn checks marked as expected failures above fail for a reason, not by accident."""
    X = np.random.default_rng(3).normal(size=(8, 2))
    delayer = Delayer(delays=[1]).fit(X)
    full = delayer.transform(X)
    halves = np.vstack([delayer.transform(X[:4]), delayer.transform(X[4:])])
    assert not np.allclose(full, halves)
    np.testing.assert_array_equal(halves, delayer.transform(X, run_lengths=[4, 4]))


@pytest.mark.parametrize("delays", [(1, 2, 3, 4), (-2, 0, 5)])
def test_same_layout_as_the_ridge_solver(delays):
    """RidgeCV(delays=...) delays inside its solver; both must agree on sign and column order."""
    from cortexscale.encoding._backend import get_backend
    from cortexscale.encoding._design import delay_matrix
    from cortexscale.encoding.preprocessing import runs_to_groups

    X = np.random.default_rng(4).normal(size=(20, 3))
    run_lengths = [8, 12]
    solver = delay_matrix(get_backend("numpy", dtype="float64"), X, delays, runs_to_groups(run_lengths))
    np.testing.assert_array_equal(delay_features(X, delays, run_lengths), solver)
