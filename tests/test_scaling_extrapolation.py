import numpy as np
import pandas as pd
import pytest

from cortexscale.scaling import extrapolation_check, fit_law, make_scaling_table

TRUTH = {"E": 0.6, "A": 6.3, "alpha": 0.3, "B": 15.0, "beta": 0.5}


@pytest.fixture(scope="module")
def study():
    return make_scaling_table(np.logspace(5, 9, 6), np.logspace(4, 8, 6), seed=0, **TRUTH)


@pytest.fixture(scope="module")
def check(study):
    return extrapolation_check(study, score="r", params="params", data="train_data", groups="subject")


def test_one_row_per_law_and_held_out_axis_with_one_best_each(check):
    assert list(check["held_out"]) == ["params"] * 3 + ["data"] * 3
    assert list(check["law"]) == ["joint", "power", "loglinear"] * 2
    assert check.groupby("held_out")["best"].sum().tolist() == [1, 1]
    assert (check["n_held_out"] == 6).all() and (check["note"] == "").all()
    np.testing.assert_allclose(check["error"].abs(), check["abs_error"], atol=0.02)


def test_measured_is_the_held_out_points_mean_and_errors_are_prediction_minus_it(study, check):
    held = study[study["params"] == study["params"].max()]
    measured = held.groupby(["train_data", "subject"])["r"].mean().groupby("train_data").mean().mean()
    row = check[(check["held_out"] == "params") & (check["law"] == "joint")].iloc[0]
    assert row["measured"] == pytest.approx(measured, rel=1e-12)
    train = study[study["params"] < study["params"].max()]
    fit = fit_law(train, score="r", params="params", data="train_data", groups="subject", n_boot=0)
    predicted = fit.predict(params=study["params"].max(), data=np.logspace(4, 8, 6))
    assert row["predicted"] == pytest.approx(predicted.mean(), rel=1e-12)
    assert row["error"] == pytest.approx(predicted.mean() - measured, rel=1e-9)


def test_saturating_laws_extrapolate_a_saturating_study_better_than_the_loglinear_one(check):
    for axis, rows in check.groupby("held_out"):
        errors = rows.set_index("law")["abs_error"]
        assert errors["loglinear"] > 5 * max(errors["joint"], errors["power"]), axis
        assert rows.loc[rows["best"], "law"].item() in ("joint", "power")
        assert errors["joint"] < 0.01


def test_a_law_that_cannot_be_fitted_says_so_and_is_not_ranked():
    table = make_scaling_table(np.logspace(5, 9, 4), (1e6, 1e8), seed=0, **TRUTH)
    check = extrapolation_check(table, score="r", params="params", data="train_data", groups="subject")
    row = check[(check["held_out"] == "data") & (check["law"] == "joint")].iloc[0]
    assert "too few points to fit the joint law" in row["note"]
    assert np.isnan(row["predicted"]) and not row["best"]
    power = check[(check["held_out"] == "params") & (check["law"] == "power")].iloc[0]
    assert "too few points" in power["note"]
    assert check[check["held_out"] == "params"]["best"].sum() == 1


def test_a_single_axis_check_skips_the_joint_law():
    table = make_scaling_table(np.logspace(5, 9, 6), (1e8,), seed=0, **TRUTH)
    check = extrapolation_check(table, score="r", params="params", groups="subject")
    assert list(check["held_out"]) == ["params"] * 3
    assert check.loc[check["law"] == "joint", "note"].item() == "the joint law needs two of params=, data= and fmri="
    assert check.loc[check["law"] == "loglinear", "abs_error"].item() > 0


def test_bad_arguments_are_named(study):
    with pytest.raises(ValueError, match="pass params=, data= and/or fmri="):
        extrapolation_check(study, score="r")
    with pytest.raises(ValueError, match=r"unknown laws \['cubic'\]"):
        extrapolation_check(study, score="r", params="params", laws=("cubic",))
    with pytest.raises(ValueError, match="score='mean_r'"):
        extrapolation_check(study, score="mean_r", params="params")
    with pytest.raises(ValueError, match="column 'params' must be positive"):
        extrapolation_check(pd.concat([study, study.head(1).assign(params=0.0)]), score="r", params="params")
