import numpy as np
import pandas as pd
import pytest

from cortexscale.scaling import MISALIGNMENT_FLOOR, fit_law, make_scaling_table
from cortexscale.scaling import _fits
from cortexscale.scaling._resample import resampled_rows
from cortexscale.scaling._tables import build_panel

TRUTH = {"E": 0.6, "A": 6.3, "alpha": 0.3, "B": 15.0, "beta": 0.5}


def one_row_per_point(params, data, noise, seed=0):
    """A grid of (N, D) from the known joint law, one row per point."""
    table = make_scaling_table(params, data, subjects=1, targets=1, noise=noise, subject_sd=0.0, target_sd=0.0,
                               seed=seed, **TRUTH)
    return table.drop(columns=["subject", "target"])


@pytest.fixture(scope="module")
def study():
    """25 models x 4 subjects x 50 targets from the known joint law."""
    return make_scaling_table(seed=0, **TRUTH)


@pytest.fixture(scope="module")
def joint(study):
    return fit_law(study, score="r", params="params", data="train_data", groups="subject", n_boot=200, seed=1)


def test_joint_law_recovers_its_exponents_within_intervals(joint):
    for name, tolerance, widest in (("alpha", 0.04, 0.12), ("beta", 0.05, 0.25), ("E", 0.02, 0.05)):
        low, high = joint.intervals[name]
        assert low <= TRUTH[name] <= high, name
        assert abs(joint.params[name] - TRUTH[name]) < tolerance, name
        assert high - low < widest, name
    assert joint.boot.shape == (200, 5) and joint.n_failed == 0
    assert (joint.n_points, joint.n_rows) == (25, 100)


def test_power_law_recovers_its_exponent():
    table = make_scaling_table(np.logspace(5, 9, 8), (1e8,), seed=2, **TRUTH)
    fit = fit_law(table, score="r", params="params", law="power", groups="subject", n_boot=200)
    low, high = fit.intervals["alpha"]
    assert low <= TRUTH["alpha"] <= high and high - low < 0.2
    assert abs(fit.params["alpha"] - TRUTH["alpha"]) < 0.06
    assert fit.params["E"] == pytest.approx(TRUTH["E"] + TRUTH["B"] * 1e8**-TRUTH["beta"], abs=0.02)


def test_loglinear_is_least_squares_on_log10_and_its_slope_the_gain():
    rng = np.random.default_rng(0)
    n = np.logspace(6, 10, 9)
    table = pd.DataFrame({"params": n, "mean_r": 0.05 + 0.02 * np.log10(n) + rng.normal(0, 0.003, 9)})
    fit = fit_law(table, score="mean_r", params="params", law="loglinear", n_boot=100)
    slope, intercept = np.polyfit(np.log10(n), table["mean_r"], 1)
    assert fit.params["slope"] == pytest.approx(slope, rel=1e-10)
    assert fit.params["intercept"] == pytest.approx(intercept, rel=1e-10)
    assert fit.gain_per_decade == {"params": pytest.approx(slope, rel=1e-10)}
    assert fit.intervals["gain_per_decade_params"] == fit.intervals["slope"]
    assert fit.loss == pytest.approx(np.sum((table["mean_r"] - intercept - slope * np.log10(n)) ** 2), rel=1e-8)


def test_single_axis_laws_take_compute_as_their_axis(study):
    fit = fit_law(study, score="r", compute="train_flops", law="power", n_boot=0)
    assert fit.axes == {"compute": "train_flops"} and fit.n_points == 9  # N·D = 1e9 ... 1e17
    assert "1 − ŝ = E + A·C^−α" in fit.summary()
    assert np.isfinite(fit.predict(compute=1e20))
    with pytest.raises(ValueError, match="compute='flops'"):
        fit_law(study, score="r", compute="flops", law="loglinear")


def test_gain_per_decade_is_the_mean_gain_over_the_measured_range(joint):
    lo, hi = joint.ranges["params"]
    gain = (joint.predict(params=hi, data=1e6) - joint.predict(params=lo, data=1e6)) / np.log10(hi / lo)
    assert joint.gain_per_decade["params"] == pytest.approx(gain, rel=1e-9)
    low, high = joint.intervals["gain_per_decade_params"]
    assert low < gain < high


def test_predictions_follow_the_raw_parameters_and_bands_contain_them(joint):
    n, d = np.logspace(5, 9, 7)[:, None], np.logspace(4, 8, 3)[None]
    p = joint.params
    expected = 1 - (p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"])
    np.testing.assert_allclose(joint.predict(params=n, data=d), expected, rtol=1e-12)
    low, high = joint.band(params=n, data=d)
    assert low.shape == high.shape == (7, 3)
    assert np.all(low <= expected) and np.all(expected <= high)
    wide_low, wide_high = joint.band(params=n, data=d, level=0.99)
    assert np.all(wide_low <= low) and np.all(high <= wide_high)


def test_every_interval_contains_its_estimate_even_from_few_resamples(study):
    """With 3 resamples the percentile bounds of some parameters miss the fit; the intervals reach it."""
    fit = fit_law(study, score="r", params="params", data="train_data", groups="subject", n_boot=3, seed=2)
    values = {**fit.params, **{f"gain_per_decade_{role}": gain for role, gain in fit.gain_per_decade.items()}}
    assert set(values) == set(fit.intervals)
    for name, value in values.items():
        low, high = fit.intervals[name]
        assert low <= value <= high, name
    from cortexscale.scaling import compute_optimal, frontier_exponents

    optimal = compute_optimal(fit, [1e12, 1e15])
    for name in ("params_opt", "data_opt", "score_opt"):
        assert np.all(optimal[f"{name}_low"] <= optimal[name]) and np.all(optimal[name] <= optimal[f"{name}_high"])
    exponents = frontier_exponents(fit)
    assert np.all(exponents["low"] <= exponents["value"]) and np.all(exponents["value"] <= exponents["high"])


def test_per_target_rows_give_the_fit_of_their_per_subject_means(study):
    means = study.groupby(["subject", "params", "train_data"], as_index=False)["r"].mean()
    a = fit_law(study, score="r", params="params", data="train_data", groups="subject", n_boot=0)
    b = fit_law(means, score="r", params="params", data="train_data", groups="subject", n_boot=0)
    assert a.params == pytest.approx(b.params, rel=1e-4)
    exact = [fit_law(t, score="r", params="params", law="loglinear", groups="subject", n_boot=0).params
             for t in (study, means)]
    assert exact[0] == pytest.approx(exact[1], rel=1e-12)
    pooled = fit_law(study, score="r", params="params", data="train_data", n_boot=0)
    points = study.groupby(["params", "train_data"], as_index=False)["r"].mean()
    assert pooled.params == pytest.approx(
        fit_law(points, score="r", params="params", data="train_data", n_boot=0).params, rel=1e-4)
    assert pooled.n_rows == 25


def test_bootstrap_draws_targets_within_subjects_with_the_same_draw_for_every_point():
    table = pd.DataFrame({"subject": 0, "target": np.tile([0, 1], 3), "params": np.repeat([1.0, 2.0, 3.0], 2),
                          "r": np.tile([0.0, 1.0], 3)})
    panel = build_panel(table, "r", ["params"], "subject")
    scores, weights = next(resampled_rows(panel, 200, np.random.default_rng(0)))
    assert set(np.unique(scores)) == {0.0, 0.5, 1.0}
    np.testing.assert_array_equal(scores, np.broadcast_to(scores[0], scores.shape))
    np.testing.assert_array_equal(weights, 1.0)


def test_bootstrap_spread_comes_from_subjects_and_targets():
    def interval_width(subjects, targets, noise):
        table = make_scaling_table(np.logspace(5, 9, 6), (1e8,), subjects=subjects, targets=targets, noise=noise,
                                   subject_sd=0.01, target_sd=0.01, seed=3, **TRUTH)
        fit = fit_law(table, score="r", params="params", law="loglinear", groups="subject", n_boot=100)
        low, high = fit.intervals["slope"]
        return high - low

    assert interval_width(subjects=3, targets=20, noise=0.0) < 1e-12
    assert interval_width(subjects=1, targets=20, noise=0.02) > 1e-3
    assert interval_width(subjects=3, targets=1, noise=0.02) > 1e-3


def test_huber_fit_resists_outliers_that_pull_least_squares_away():
    table = one_row_per_point(np.logspace(5, 9, 9), (1e8,), noise=0.003)
    table.loc[[1, 4, 6], "r"] -= 0.1
    huber = fit_law(table, score="r", params="params", law="power", n_boot=0)
    squares = fit_law(table, score="r", params="params", law="power", n_boot=0, delta=np.inf)
    assert abs(huber.params["alpha"] - TRUTH["alpha"]) < 0.02
    assert abs(squares.params["alpha"] - TRUTH["alpha"]) > 0.15


def test_summed_huber_loss_converges_where_the_mean_stops_early():
    table = one_row_per_point(np.logspace(5, 9, 10), np.logspace(4, 8, 10), noise=0.005)
    logs = np.log(table[["params", "train_data"]].to_numpy()).T
    centres = logs.mean(axis=1)
    x, y = logs - centres[:, None], np.log(1 - table["r"].to_numpy())
    w = np.ones_like(y)
    with _fits.single_threaded_blas():
        summed = _fits.fit_lse(x, y, w, reduction="sum")
        mean = _fits.fit_lse(x, y, w, reduction="mean")
    assert mean.loss > 1.05 * summed.loss
    gradient = [np.abs(_fits.lse_objective(f.theta[None], x, y, w, 1e-3)[1]).max() for f in (summed, mean)]
    assert gradient[1] > 100 * gradient[0]
    truth = np.array([TRUTH["alpha"], TRUTH["beta"]])
    distance = [np.linalg.norm(_fits.raw_from_theta(f.theta, centres)[[2, 4]] - truth) for f in (summed, mean)]
    assert distance[1] > 2 * distance[0]


def test_screened_starts_reach_the_optimum_of_every_start():
    table = one_row_per_point(np.logspace(5, 9, 5), np.logspace(4, 8, 5), noise=0.005, seed=4)
    logs = np.log(table[["params", "train_data"]].to_numpy()).T
    x, y = logs - logs.mean(axis=1, keepdims=True), np.log(1 - table["r"].to_numpy())
    w = np.ones_like(y)
    with _fits.single_threaded_blas():
        screened = _fits.fit_lse(x, y, w, n_refine=16)
        every = _fits.fit_lse(x, y, w, n_refine=None)
    assert screened.loss <= every.loss * (1 + 1e-6)


def test_start_grid_spans_the_data():
    misalignment = np.array([0.7, 0.8, 0.9])
    grid = _fits.start_grid(misalignment, 2)
    assert grid.shape == (576, 5)
    assert np.exp(grid[:, -1]).max() < misalignment.min()
    assert set(np.unique(grid[:, 1])) == {0.1, 0.3, 0.7, 1.5}


def test_raw_parameters_round_trip_through_rescaled_ones():
    raw = np.array([[0.6, 6.3, 0.3, 15.0, 0.5]])
    centres = np.array([16.0, 12.0])
    np.testing.assert_allclose(_fits.raw_from_theta(_fits.theta_from_raw(raw, centres), centres), raw)


def test_scores_at_or_above_one_are_floored_with_a_warning():
    table = one_row_per_point(np.logspace(5, 9, 6), (1e8,), noise=0.0)
    table.loc[[0, 5], "r"] = [1.0, 1.2]
    with pytest.warns(UserWarning, match=rf"2 of 6 'r' scores exceed 1 − {MISALIGNMENT_FLOOR:g}"):
        fit_law(table, score="r", params="params", law="power", n_boot=0)


def test_too_few_points_is_an_error_naming_what_is_missing():
    table = one_row_per_point(np.logspace(5, 9, 3), (1e8,), noise=0.0)
    with pytest.raises(ValueError, match=r"power law: it has 3 parameters and needs at least 4 distinct"):
        fit_law(table, score="r", params="params", law="power")
    grid = one_row_per_point(np.logspace(5, 9, 6), (1e8,), noise=0.0)
    with pytest.raises(ValueError, match=r"'train_data' \(data=\) has a single value"):
        fit_law(grid, score="r", params="params", data="train_data", law="joint")


@pytest.mark.parametrize("kwargs, message", [
    ({"score": "r", "params": "params", "data": "train_data", "compute": "flops"}, r"compute='flops'"),
    ({"score": "mean_r", "params": "params", "law": "power"}, r"score='mean_r'"),
    ({"score": "r", "params": "params", "data": "train_data", "groups": "sub"}, r"groups='sub'"),
    ({"score": "r", "params": "params"}, r"joint law needs two or three of params=, data= and fmri="),
    ({"score": "r", "params": "params", "data": "train_data", "law": "power"}, r"exactly one of"),
    ({"score": "r", "params": "params", "law": "cubic"}, r"unknown law 'cubic'"),
    ({"score": "r", "params": "params", "law": "power", "n_boot": -1}, r"n_boot must be"),
])
def test_bad_arguments_are_named(study, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_law(study, **kwargs)


def test_bad_axis_values_are_named():
    table = one_row_per_point(np.logspace(5, 9, 6), (1e8,), noise=0.0)
    zero = table.assign(params=table["params"].where(table.index != 2, 0.0))
    with pytest.raises(ValueError, match=r"column 'params' must be positive; 1 rows"):
        fit_law(zero, score="r", params="params", law="power")
    missing = table.assign(params=table["params"].where(table.index != 2, np.nan))
    with pytest.raises(ValueError, match=r"column 'params' has 1 missing"):
        fit_law(missing, score="r", params="params", law="power")
    text = table.assign(r=table["r"].astype(str))
    with pytest.raises(ValueError, match=r"score column 'r' is not numeric"):
        fit_law(text, score="r", params="params", law="power")


def test_a_point_without_any_finite_score_is_named():
    table = one_row_per_point(np.logspace(5, 9, 6), (1e8,), noise=0.0)
    table.loc[3, "r"] = np.nan
    with pytest.raises(ValueError, match=r"1 rows have no finite 'r' score"):
        fit_law(table, score="r", params="params", law="loglinear")


def test_predict_refuses_the_wrong_axes(joint):
    with pytest.raises(ValueError, match=r"predicts from params=, data=; got params="):
        joint.predict(params=1e6)
    with pytest.raises(TypeError, match="single-axis"):
        joint.predict(1e6)
    with pytest.raises(ValueError, match="must be positive"):
        joint.predict(params=0.0, data=1e6)


def test_without_bootstrap_intervals_are_nan_and_there_is_no_band(study):
    fit = fit_law(study, score="r", params="params", law="power", n_boot=0)
    assert fit.boot.shape == (0, 3)
    assert all(np.isnan(v).all() for v in fit.intervals.values())
    with pytest.raises(ValueError, match="no bootstrap draws"):
        fit.band(1e6)


def test_summary_names_the_law_its_parameters_and_intervals(joint):
    text = joint.summary()
    assert "1 − ŝ = E + A·N^−α + B·D^−β" in text and "100 rows (25 points × 'subject')" in text
    for name in ("E", "A", "alpha", "B", "beta", "gain_per_decade_params", "gain_per_decade_data"):
        assert f"  {name} " in text
    low, high = joint.intervals["beta"]
    assert f"[{low:.5g}, {high:.5g}]" in text


def test_resamples_are_reproducible_from_the_seed(study):
    runs = [fit_law(study, score="r", params="params", law="loglinear", groups="subject", n_boot=50, seed=s)
            for s in (5, 5, 6)]
    np.testing.assert_array_equal(runs[0].boot, runs[1].boot)
    assert not np.array_equal(runs[0].boot, runs[2].boot)
