import numpy as np
import pytest

from cortexscale.data import event_rate, scan_edges


def test_matches_numpy_histogram_on_random_onsets():
    rng = np.random.default_rng(0)
    tr, n_trs, start = 2.0, 50, 20.0
    onsets = rng.uniform(0.0, 140.0, size=500)
    edges = start + tr * np.arange(n_trs + 1)
    expected, _ = np.histogram(onsets, bins=edges)
    counts = event_rate(onsets, tr, n_trs, start=start)
    assert counts.shape == (n_trs,) and counts.dtype == np.float64
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == ((onsets >= start) & (onsets < edges[-1])).sum()


def test_order_does_not_matter():
    rng = np.random.default_rng(1)
    onsets = rng.uniform(0, 30, size=100)
    np.testing.assert_array_equal(event_rate(onsets, 1.5, 20), event_rate(np.sort(onsets)[::-1], 1.5, 20))


def test_windows_are_closed_left_open_right():
    counts = event_rate([20.0, 21.999, 22.0, 23.0, 26.0, 19.999], tr=2.0, n_trs=3, start=20.0)
    np.testing.assert_array_equal(counts, [2, 2, 0])


@pytest.mark.parametrize("tr, start", [(0.1, 0.7), (2.0, 20.0), (0.3, -1.1), (1.49, 3.3)])
def test_onsets_on_scan_times_count_once_each(tr, start):
    edges = scan_edges(tr, 40, start)
    np.testing.assert_array_equal(event_rate(edges[:-1], tr, 40, start=start), np.ones(40))
    assert event_rate(edges[-1:], tr, 40, start=start).sum() == 0


def test_no_events():
    np.testing.assert_array_equal(event_rate([], 2.0, 4), np.zeros(4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(onsets=[1.0, np.nan], tr=2.0, n_trs=3), "onsets of shape \\(2,\\) has a non-finite value at index 1"),
        (dict(onsets=[[1.0]], tr=2.0, n_trs=3), "onsets must be a 1-D"),
        (dict(onsets=["a"], tr=2.0, n_trs=3), "onsets must be a 1-D numeric"),
        (dict(onsets=[1.0], tr=0.0, n_trs=3), "tr must be positive"),
        (dict(onsets=[1.0], tr=np.inf, n_trs=3), "tr must be a finite number"),
        (dict(onsets=[1.0], tr=2.0, n_trs=0), "n_trs must be a positive integer"),
        (dict(onsets=[1.0], tr=2.0, n_trs=3.0), "n_trs must be a positive integer"),
        (dict(onsets=[1.0], tr=2.0, n_trs=3, start=np.nan), "start must be a finite number"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        event_rate(**kwargs)
