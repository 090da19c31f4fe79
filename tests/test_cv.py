"""The cross-validation splitters themselves: what each holds out, so a leak cannot hide behind shared splits."""

import numpy as np
import pytest

from cortexscale.encoding import Bootstrap, LeaveOneRunOut, check_cv


@pytest.mark.parametrize("n, chunk, fraction", [(300, 20, 0.25), (287, 10, 0.2), (100, 7, 0.3)])
def test_bootstrap_holds_out_whole_chunks_of_the_stated_fraction(n, chunk, fraction):
    splits = list(Bootstrap(n_boots=12, chunk_len=chunk, test_fraction=fraction, random_state=3).split(n))
    n_chunks, n_held = -(-n // chunk), int(round(fraction * n / chunk))
    assert len(splits) == 12
    held_sets = []
    for train, val in splits:
        assert np.intersect1d(train, val).size == 0 and len(train) + len(val) == n
        starts = np.unique(val // chunk)
        assert len(starts) == n_held
        for c in starts:
            expected = np.arange(c * chunk, min((c + 1) * chunk, n))
            assert np.isin(expected, val).all()
        assert abs(len(val) - fraction * n) <= chunk
        held_sets.append(tuple(starts))
    assert len(set(held_sets)) > 6 and max(max(h) for h in held_sets) < n_chunks
    again = list(Bootstrap(n_boots=12, chunk_len=chunk, test_fraction=fraction, random_state=3).split(n))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))


def test_leave_one_run_out_holds_each_run_out_exactly_once():
    groups = np.repeat([4, 1, 7, 2], [30, 25, 40, 20])
    splits = list(LeaveOneRunOut().split(len(groups), groups))
    held = [np.unique(groups[val]) for _, val in splits]
    assert sorted(int(h[0]) for h in held) == [1, 2, 4, 7] and all(len(h) == 1 for h in held)
    for (train, val), run in zip(splits, held):
        np.testing.assert_array_equal(val, np.flatnonzero(groups == run[0]))
        np.testing.assert_array_equal(train, np.flatnonzero(groups != run[0]))
    assert np.array_equal(np.sort(np.concatenate([val for _, val in splits])), np.arange(len(groups)))


@pytest.mark.parametrize("n, k", [(100, 5), (101, 4), (12, 6)])
def test_contiguous_folds_partition_the_samples_in_order(n, k):
    splits = check_cv(k, n)
    vals = [val for _, val in splits]
    assert np.array_equal(np.concatenate(vals), np.arange(n))
    assert all(np.all(np.diff(val) == 1) for val in vals)
    assert max(map(len, vals)) - min(map(len, vals)) <= 1
    for train, val in splits:
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))


def test_runs_cv_needs_groups_and_two_runs():
    with pytest.raises(ValueError, match="needs groups"):
        check_cv("runs", 10)
    with pytest.raises(ValueError, match="at least 2 runs"):
        check_cv("runs", 10, np.zeros(10))
