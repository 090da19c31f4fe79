"""The fMRI-data axis in the joint law: fits over two or three of N, D and M, the frontier at an fMRI amount,
what buys more (model compute or fMRI data), and the extrapolation check along M."""

import numpy as np
import pandas as pd
import pytest

from cortexscale.scaling import (compute_optimal, extrapolation_check, fit_law, iso_flop, make_scaling_table,
                                 what_buys_more)

TRUTH = {"E": 0.45, "A": 6.3, "alpha": 0.3, "B": 15.0, "beta": 0.5, "C": 3.0, "gamma": 0.4}
PARAMS, DATA, FMRI = np.logspace(5, 9, 4), np.logspace(4, 8, 4), (150.0, 300.0, 600.0, 1200.0, 2400.0)
AXES = {"params": "params", "data": "train_data", "fmri": "n_train_trs"}


@pytest.fixture(scope="module")
def table():
    """4 N x 4 D x 5 M x 3 subjects x 10 targets from the known three-axis law."""
    return make_scaling_table(PARAMS, DATA, fmri=FMRI, subjects=3, targets=10, noise=0.01, subject_sd=0.002,
                              target_sd=0.005, seed=0, **TRUTH)


@pytest.fixture(scope="module")
def fit(table):
    return fit_law(table, score="r", groups="subject", n_boot=40, seed=1, progress=False, compute="train_flops",
                   **AXES)


def test_the_synthetic_table_has_an_fmri_column(table):
    assert len(table) == 4 * 4 * 5 * 3 * 10 and sorted(table["n_train_trs"].unique()) == list(FMRI)
    assert table["model"].nunique() == 16  # a model is an (N, D); its fits at each M share it


def test_three_axis_law_recovers_its_exponents_within_intervals(fit):
    assert fit.param_names == ("E", "A", "alpha", "B", "beta", "C", "gamma")
    assert fit.boot.shape == (40, 7) and fit.n_failed == 0 and fit.n_points == 80
    for name, tolerance in (("alpha", 0.02), ("beta", 0.03), ("gamma", 0.03), ("E", 0.01)):
        low, high = fit.intervals[name]
        assert abs(fit.params[name] - TRUTH[name]) < tolerance, name
        assert low <= fit.params[name] <= high, name
    text = fit.summary()
    assert "1 − ŝ = E + A·N^−α + B·D^−β + C·M^−γ" in text and "M = 'n_train_trs'" in text
    assert "gain_per_decade_fmri" in text and "compute: C = " in text


def test_any_two_of_the_three_axes_make_a_joint_law(table):
    one_d = table[table["train_data"] == DATA[-1]]
    fit = fit_law(one_d, score="r", params="params", fmri="n_train_trs", groups="subject", n_boot=0,
                  progress=False)
    assert fit.param_names == ("E", "A", "alpha", "C", "gamma") and list(fit.axes) == ["params", "fmri"]
    assert fit.params["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.03)
    assert fit.params["gamma"] == pytest.approx(TRUTH["gamma"], abs=0.03)
    # the training-data term is a constant at one D, so E absorbs it
    assert fit.params["E"] == pytest.approx(TRUTH["E"] + TRUTH["B"] * DATA[-1] ** -TRUTH["beta"], abs=0.01)
    assert "1 − ŝ = E + A·N^−α + C·M^−γ" in fit.summary()
    one_n = table[table["params"] == PARAMS[-1]]
    other = fit_law(one_n, score="r", data="train_data", fmri="n_train_trs", n_boot=0, progress=False)
    assert other.param_names == ("E", "B", "beta", "C", "gamma")
    assert other.params["beta"] == pytest.approx(TRUTH["beta"], abs=0.05)


def test_predictions_take_the_fmri_axis(fit):
    M = np.array([300.0, 2400.0])
    expected = 1 - (fit.params["E"] + fit.params["A"] * 1e7 ** -fit.params["alpha"]
                    + fit.params["B"] * 1e6 ** -fit.params["beta"] + fit.params["C"] * M ** -fit.params["gamma"])
    np.testing.assert_allclose(fit.predict(params=1e7, data=1e6, fmri=M), expected, rtol=1e-10)
    low, high = fit.band(params=1e7, data=1e6, fmri=M)
    assert np.all(low <= expected) and np.all(expected <= high)
    with pytest.raises(ValueError, match="fmri="):
        fit.predict(params=1e7, data=1e6)


def test_the_best_point_is_the_highest_measured_mean(fit, table):
    means = table.groupby(["params", "train_data", "n_train_trs"])["r"].mean()
    top = means.idxmax()
    assert (fit.best["params"], fit.best["data"], fit.best["fmri"]) == top
    assert fit.best["score"] == pytest.approx(means.max(), abs=1e-9)


def test_what_buys_more_is_the_law_at_each_lever(fit):
    levers = what_buys_more(fit, factors=(2, 10))
    assert list(levers["lever"]) == ["model compute", "fMRI data", "model compute − fMRI data"] * 2
    best = fit.best
    base = fit.predict(params=best["params"], data=best["data"], fmri=best["fmri"])
    for factor in (2, 10):
        rows = levers[levers["factor"] == factor].set_index("lever")
        more_fmri = fit.predict(params=best["params"], data=best["data"], fmri=factor * best["fmri"])
        assert rows.loc["fMRI data", "gain"] == pytest.approx(more_fmri - base, abs=1e-12)
        budget = factor * fit.compute_law(best["params"], best["data"])
        optimum = compute_optimal(fit, budget, fmri=best["fmri"]).iloc[0]
        assert rows.loc["model compute", "gain"] == pytest.approx(optimum["score_opt"] - base, abs=1e-12)
        assert rows.loc["model compute", "params"] == pytest.approx(optimum["params_opt"], rel=1e-9)
        difference = rows.loc["model compute − fMRI data"]
        assert difference["gain"] == pytest.approx(rows.loc["model compute", "gain"] - rows.loc["fMRI data", "gain"])
    assert np.all(levers["low"] <= levers["gain"]) and np.all(levers["gain"] <= levers["high"])
    # with gamma = 0.4 at M = 2400 TRs, scanner time buys more than compute at the best point of this grid
    assert np.all(levers.loc[levers["lever"] == "model compute − fMRI data", "high"] < 0)


def test_what_buys_more_at_a_chosen_point(fit):
    at = {"params": 1e7, "data": 1e6, "fmri": 300.0}
    rows = what_buys_more(fit, factors=[2], at=at).set_index("lever")
    expected = fit.predict(**{**at, "fmri": 600.0}) - fit.predict(**at)
    assert rows.loc["fMRI data", "gain"] == pytest.approx(expected, abs=1e-12)
    assert rows.loc["fMRI data", "fmri"] == 600.0 and rows.loc["fMRI data", "params"] == 1e7
    partial = what_buys_more(fit, factors=[2], at={"fmri": 300.0}).set_index("lever")  # the rest from fit.best
    assert partial.loc["fMRI data", "params"] == fit.best["params"]
    with pytest.raises(ValueError, match="at= needs a positive number for each of params, data, fmri"):
        what_buys_more(fit, at={"fmri": -1.0})


def test_without_training_data_the_model_lever_is_parameters(table):
    one_d = table[table["train_data"] == DATA[-1]]
    fit = fit_law(one_d, score="r", params="params", fmri="n_train_trs", groups="subject", n_boot=20,
                  progress=False)
    levers = what_buys_more(fit, factors=[2]).set_index("lever")
    assert list(levers.index) == ["model size", "fMRI data", "model size − fMRI data"]
    best = fit.best
    expected = fit.predict(params=2 * best["params"], fmri=best["fmri"]) - fit.predict(params=best["params"],
                                                                                       fmri=best["fmri"])
    assert levers.loc["model size", "gain"] == pytest.approx(expected, abs=1e-12)
    assert levers.loc["model size", "params"] == 2 * best["params"]


def test_the_frontier_at_an_fmri_amount_folds_its_term_into_E(fit):
    budgets = np.array([1e15, 1e17])
    small, large = (compute_optimal(fit, budgets, fmri=m) for m in (150.0, 2400.0))
    np.testing.assert_allclose(small["params_opt"], large["params_opt"], rtol=1e-10)  # the M term is additive
    for m, frame in ((150.0, small), (2400.0, large)):
        predicted = fit.predict(params=frame["params_opt"].to_numpy(), data=frame["data_opt"].to_numpy(), fmri=m)
        np.testing.assert_allclose(frame["score_opt"], predicted, rtol=1e-9)
    np.testing.assert_allclose(compute_optimal(fit, budgets)["score_opt"], large["score_opt"])  # largest M
    curves = iso_flop(fit, budgets, fmri=150.0)
    expected = fit.predict(params=curves["params"].to_numpy(), data=curves["data"].to_numpy(), fmri=150.0)
    np.testing.assert_allclose(curves["score"], expected, rtol=1e-9)


def test_extrapolation_holds_out_the_largest_fmri_amount(table):
    check = extrapolation_check(table, score="r", groups="subject", hold_out=["fmri"], **AXES)
    assert set(check["held_out"]) == {"fmri"} and list(check["law"]) == ["joint", "power", "loglinear"]
    joint = check.set_index("law").loc["joint"]
    assert joint["n_held_out"] == 16 and joint["abs_error"] < 0.005 and joint["best"]
    every = extrapolation_check(table, score="r", groups="subject", laws=("joint",), **AXES)
    assert list(every["held_out"]) == ["params", "data", "fmri"] and (every["abs_error"] < 0.01).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"params": "params"}, "two or three of params=, data= and fmri="),
    ({"params": "params", "fmri": "n_train_trs", "compute": "train_flops"}, "needs params= and data="),
    ({"params": "params", "fmri": "params"}, "same column 'params'"),
])
def test_bad_joint_axes_are_named(table, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_law(table, score="r", law="joint", n_boot=0, **kwargs)


def test_levers_and_frontier_refuse_fits_without_their_axes(table, fit):
    two = fit_law(table[table["n_train_trs"] == FMRI[-1]], score="r", params="params", data="train_data",
                  n_boot=0, progress=False)
    with pytest.raises(ValueError, match="needs a joint fit of params and fmri"):
        what_buys_more(two)
    with pytest.raises(ValueError, match="fmri= needs a joint fit with an fMRI axis"):
        compute_optimal(two, 1e16, fmri=100.0)
    with pytest.raises(ValueError, match="positive"):
        what_buys_more(fit, factors=[0])
    with pytest.raises(ValueError, match="hold_out="):
        extrapolation_check(table, score="r", params="params", hold_out=["fmri"])
    no_data = fit_law(table[table["params"] == PARAMS[-1]], score="r", data="train_data", fmri="n_train_trs",
                      n_boot=0, progress=False)
    with pytest.raises(ValueError, match="params and data"):
        compute_optimal(no_data, 1e16)


def test_a_table_without_its_fmri_column_is_named(table):
    with pytest.raises(ValueError, match="n_train"):
        fit_law(pd.DataFrame(table.drop(columns=["n_train_trs"])), score="r", params="params", fmri="n_train_trs",
                n_boot=0)
