import warnings

import numpy as np
import pytest

from cortexscale.data import data_root, events_from_textgrid, load_alice, shift_events
from cortexscale.data.alice import TEXTGRID
from cortexscale.features import align_to_trs, lanczos_kernel


def huth_reference(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    """The Lanczos interpolation written out event by event, straight from the formula."""
    cutoff = cutoff_mult / np.mean(np.diff(newtime))
    out = np.zeros((len(newtime), data.shape[1]))
    for k, t_new in enumerate(newtime):
        for j, t_old in enumerate(oldtime):
            x = (t_new - t_old) * cutoff
            if x == 0:
                w = 1.0
            elif abs(x) > window:
                w = 0.0
            else:
                w = window * np.sin(np.pi * x) * np.sin(np.pi * x / window) / (np.pi**2 * x**2)
            out[k] += w * data[j]
    return out


def test_kernel_is_one_at_zero_and_zero_at_multiples_of_half_period():
    cutoff = 0.25  # zeros every 1 / (2 * 0.25) = 2 s
    t = np.array([0.0, 2.0, -2.0, 4.0, -4.0, 6.0, 6.5, -7.0, 0.7])
    k = lanczos_kernel(t, cutoff=cutoff, window=3)
    assert k[0] == 1.0
    np.testing.assert_allclose(k[1:6], 0.0, atol=1e-15)
    assert k[6] == 0.0 and k[7] == 0.0  # beyond the third lobe
    assert 0 < k[8] < 1
    np.testing.assert_allclose(lanczos_kernel(-t, cutoff), k)


@pytest.mark.filterwarnings("ignore:.*fall outside the scan:UserWarning")
def test_lanczos_matches_reference_formula():
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(-3, 45, 60))
    feats = rng.normal(size=(60, 3))
    for cutoff_mult, window in [(1.0, 3), (0.5, 2)]:
        ours = align_to_trs(feats, times, 2.0, 20, window=window, cutoff_mult=cutoff_mult)
        ref = huth_reference(feats, times, 2.0 * np.arange(20), window, cutoff_mult)
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_dense_constant_events_give_density_times_tr():
    tr, n = 2.0, 40
    times = np.arange(0, n * tr, 0.01)  # 100 events per second
    out = align_to_trs(np.ones((len(times), 1)), times, tr, n)
    # sum semantics: each TR collects (events per second) * tr * (kernel area in TR units, ~1)
    np.testing.assert_allclose(out[5:-5, 0], 100 * tr, rtol=5e-3)
    assert out[5:-5, 0].std() < 1e-6 * out[5:-5, 0].mean()
    sparse = align_to_trs(np.ones((len(times[::2]), 1)), times[::2], tr, n)
    np.testing.assert_allclose(sparse[5:-5], out[5:-5] / 2, rtol=1e-3)


def test_slow_sinusoid_kept_fast_one_removed():
    tr, n = 2.0, 200
    times = np.arange(0, n * tr, 0.05)
    slow = np.sin(2 * np.pi * 0.05 * times)  # below the 0.25 Hz cutoff
    fast = np.sin(2 * np.pi * 0.6 * times)  # well above it
    out = align_to_trs(np.c_[slow, fast], times, tr, n)
    truth = np.sin(2 * np.pi * 0.05 * np.arange(n) * tr)
    assert np.corrcoef(out[5:-5, 0], truth[5:-5])[0, 1] > 0.99
    assert out[5:-5, 1].std() < 0.1 * out[5:-5, 0].std()


@pytest.mark.filterwarnings("ignore:.*fall outside the scan:UserWarning")
def test_sum_mean_boxcar_by_hand():
    times = np.array([0.5, 1.5, 2.5, 5.0, 7.0])  # the last is past the 3 TRs
    feats = np.array([[1.0], [2.0], [4.0], [8.0], [16.0]])
    np.testing.assert_allclose(align_to_trs(feats, times, 2.0, 3, "sum")[:, 0], [3.0, 4.0, 8.0])
    np.testing.assert_allclose(align_to_trs(feats, times, 2.0, 3, "mean")[:, 0], [1.5, 4.0, 8.0])
    np.testing.assert_allclose(align_to_trs(feats, times, 2.0, 4, "mean")[3:, 0], [16.0])
    np.testing.assert_allclose(align_to_trs(feats[:1], times[:1], 2.0, 3, "mean")[:, 0], [1.0, 0.0, 0.0])
    box = align_to_trs(feats, times, 2.0, 3, "boxcar", durations=[1.0, 1.0, 2.0, 0.0, 1.0])[:, 0]
    # event 1 spans 1.5-2.5 (half in each TR), event 2 spans 2.5-4.5 (3/4 then 1/4), event 3 is a point
    np.testing.assert_allclose(box, [1.0 + 2.0 * 0.5, 2.0 * 0.5 + 4.0 * 0.75, 4.0 * 0.25 + 8.0])
    np.testing.assert_allclose(align_to_trs(feats, times, 2.0, 3, "boxcar", durations=0.0),
                               align_to_trs(feats, times, 2.0, 3, "sum"))


def test_sum_equals_alice_word_counts():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        alice = load_alice()
    words = shift_events(events_from_textgrid(data_root() / "alice" / TEXTGRID), alice.first_scan_time)
    ones = np.ones((len(words), 1))
    out = align_to_trs(ones, words["onset"], alice.tr, 362, "sum")
    np.testing.assert_array_equal(out[:, 0], alice.word_counts)


def _dense_reference(feats, times, tr, n_trs, method, durations):
    """Every TR against every event, from the definitions in align_to_trs's docstring."""
    starts = tr * np.arange(n_trs)[:, None]
    if method == "lanczos":
        w = lanczos_kernel(starts - times[None, :], 1 / (2 * tr), 3)
    elif method == "boxcar":
        w = np.clip(np.minimum(starts + tr, times + durations) - np.maximum(starts, times), 0, None) / durations
    else:
        w = ((times >= starts) & (times < starts + tr)).astype(float)
    out = w @ feats
    return out / np.maximum(w.sum(1, keepdims=True), 1e-300) if method == "mean" else out


@pytest.mark.parametrize("method", ["lanczos", "sum", "mean", "boxcar"])
def test_banded_weights_equal_every_tr_against_every_event(method):
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0, 100, 300))
    feats = rng.normal(size=(300, 2))
    np.testing.assert_allclose(align_to_trs(feats, times, 2.0, 50, method, durations=0.7),
                               _dense_reference(feats, times, 2.0, 50, method, 0.7), atol=1e-12)


@pytest.mark.parametrize("method", ["lanczos", "sum", "mean", "boxcar"])
@pytest.mark.filterwarnings("ignore:.*fall outside the scan:UserWarning")
def test_event_order_does_not_matter(method):
    rng = np.random.default_rng(2)
    times, feats, durations = rng.uniform(-5, 60, 40), rng.normal(size=(40, 3)), rng.uniform(0, 5, 40)
    shuffled = align_to_trs(feats, times, 2.0, 30, method, durations=durations)
    order = np.argsort(times)
    expected = align_to_trs(feats[order], times[order], 2.0, 30, method, durations=durations[order])
    np.testing.assert_allclose(shuffled, expected, atol=1e-12)


@pytest.mark.parametrize("method", ["lanczos", "sum", "mean", "boxcar"])
def test_dtype_kept_and_1d_features(method):
    times = np.arange(10.0)
    out = align_to_trs(np.ones(10, np.float32), times, 2.0, 5, method, durations=1.0)
    assert out.dtype == np.float32 and out.shape == (5, 1)
    assert align_to_trs(np.ones((10, 2), np.int64), times, 2.0, 5, method, durations=1.0).dtype == np.float64


def test_bad_input_is_named():
    two = np.zeros((2, 1))
    with pytest.raises(ValueError, match=r"features \(3, 2\) and times \(4,\)"):
        align_to_trs(np.zeros((3, 2)), np.zeros(4), 2.0, 5)
    with pytest.raises(ValueError, match=r"times\[1\] is nan"):
        align_to_trs(two, [0.0, np.nan], 2.0, 5)
    with pytest.raises(ValueError, match=r"unknown method 'cubic'.*'lanczos', 'sum', 'mean', 'boxcar'"):
        align_to_trs(two, [0.0, 1.0], 2.0, 5, method="cubic")
    with pytest.raises(ValueError, match="needs the events' durations"):
        align_to_trs(two, [0.0, 1.0], 2.0, 5, method="boxcar")
    with pytest.raises(ValueError, match=r"durations\[1\] is -1.0"):
        align_to_trs(two, [0.0, 1.0], 2.0, 5, method="boxcar", durations=[1.0, -1.0])
    with pytest.raises(ValueError, match=r"durations of shape \(3,\) .* times \(2,\)"):
        align_to_trs(two, [0.0, 1.0], 2.0, 5, method="boxcar", durations=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="n_trs must be a positive integer, got 0"):
        align_to_trs(two, [0.0, 1.0], 2.0, 0)
    with pytest.raises(ValueError, match="tr must be positive"):
        align_to_trs(two, [0.0, 1.0], 0.0, 5)
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        align_to_trs(two, [0.0, 1.0], 2.0, 5, window=0)


def test_events_outside_the_scan_are_counted_in_a_warning():
    times = np.array([-3.0, 1.0, 5.0, 9.5, 10.0, 12.0])
    with pytest.warns(UserWarning, match=r"3 of 6 events fall outside the scan \[0, 10\) s \(first: event 0 at -3 s\)"):
        align_to_trs(np.ones((6, 2)), times, tr=2.0, n_trs=5, method="sum")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = align_to_trs(np.ones((3, 2)), times[1:4], tr=2.0, n_trs=5, method="sum")
    np.testing.assert_array_equal(out[:, 0], [1, 0, 1, 0, 1])


def test_no_event_inside_the_scan_is_an_error():
    onsets_ms = np.array([20500.0, 21000.0, 300000.0])
    with pytest.raises(ValueError, match=r"no event falls inside the scan \[0, 724\) s .* from 20500 to 300000 s.*"
                                         r"both be in seconds"):
        align_to_trs(np.ones(3), onsets_ms, tr=2.0, n_trs=362)
    with pytest.raises(ValueError, match="no event falls inside the scan"):
        align_to_trs(np.ones(2), [-10.0, -5.0], tr=2.0, n_trs=10)


def test_a_tr_in_milliseconds_is_flagged():
    with pytest.warns(UserWarning, match=r"tr=2000 s is longer than any fMRI TR; is it in milliseconds\?"):
        align_to_trs(np.ones(3), [1.0, 2.0, 3.0], tr=2000, n_trs=362)


def test_a_dict_of_layers_is_named():
    with pytest.raises(ValueError, match=r"one array \(n_events, d\), got a dict with keys \[4, 6\].*features\[layer\]"):
        align_to_trs({4: np.ones((3, 2)), 6: np.ones((3, 2))}, [1.0, 2.0, 3.0], tr=2.0, n_trs=5)
    with pytest.raises(ValueError, match="must be numeric, got dtype <U1"):
        align_to_trs(np.array(["a", "b"]), [1.0, 2.0], tr=2.0, n_trs=5)
