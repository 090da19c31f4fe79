import numpy as np
import pandas as pd
import pytest

from cortexscale.scaling import (ComputeLaw, compute_optimal, fit_compute_law, fit_law, frontier_exponents,
                                 iso_flop, make_scaling_table)

TRUTH = {"E": 0.6, "A": 6.3, "alpha": 0.3, "B": 15.0, "beta": 0.5}
FLOPS = (6.5, 1.02)


@pytest.fixture(scope="module")
def fit():
    table = make_scaling_table(seed=0, flops=FLOPS, **TRUTH)
    return fit_law(table, score="r", params="params", data="train_data", compute="train_flops", groups="subject",
                   n_boot=200, seed=1)


def true_optimum(compute):
    """N_opt, D_opt of the generating law at budgets under C = 6.5·(N·D)^1.02, by brute force over N."""
    product = (np.asarray(compute) / FLOPS[0]) ** (1 / FLOPS[1])
    n = np.logspace(2, 14, 200001)[:, None]
    misalignment = TRUTH["A"] * n ** -TRUTH["alpha"] + TRUTH["B"] * (product / n) ** -TRUTH["beta"]
    best = n[np.argmin(misalignment, axis=0), 0]
    return best, product / best


def test_compute_law_is_fitted_to_the_measured_flops(fit):
    assert fit.compute_law.m == pytest.approx(FLOPS[0], rel=1e-8)
    assert fit.compute_law.n == pytest.approx(FLOPS[1], rel=1e-10)
    assert fit.compute_law.source == "train_flops"


def test_without_a_flops_column_compute_is_six_n_d():
    table = make_scaling_table(seed=0, **TRUTH)
    plain = fit_law(table, score="r", params="params", data="train_data", n_boot=0)
    assert (plain.compute_law.m, plain.compute_law.n, plain.compute_law.source) == (6.0, 1.0, None)
    assert plain.compute_law(1e6, 1e7) == pytest.approx(6e13)


def test_frontier_exponents_match_those_of_the_generating_law(fit):
    exponents = frontier_exponents(fit)
    a, b = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"]), TRUTH["alpha"] / (TRUTH["alpha"] + TRUTH["beta"])
    for name, truth in (("a", a), ("b", b), ("a_compute", a / FLOPS[1]), ("b_compute", b / FLOPS[1])):
        row = exponents.loc[name]
        assert row["low"] <= truth <= row["high"], name
        assert abs(row["value"] - truth) < 0.03, name
        assert row["high"] - row["low"] < 0.12, name
    assert exponents.loc["a", "value"] + exponents.loc["b", "value"] == pytest.approx(1.0)
    fitted = fit.params
    assert exponents.loc["a", "value"] == pytest.approx(fitted["beta"] / (fitted["alpha"] + fitted["beta"]))


def test_compute_optimal_spends_the_budget_and_brackets_the_true_optimum(fit):
    budgets = np.array([1e13, 1e15, 1e17])
    table = compute_optimal(fit, budgets)
    assert list(table.columns[:4]) == ["compute", "params_opt", "data_opt", "score_opt"]
    np.testing.assert_allclose(fit.compute_law(table["params_opt"], table["data_opt"]), budgets, rtol=1e-10)
    n_true, d_true = true_optimum(budgets)
    assert np.all(table["params_opt_low"] <= n_true) and np.all(n_true <= table["params_opt_high"])
    assert np.all(table["data_opt_low"] <= d_true) and np.all(d_true <= table["data_opt_high"])
    np.testing.assert_allclose(table["params_opt"], n_true, rtol=0.2)
    for name in ("params_opt", "data_opt", "score_opt"):
        assert np.all(table[f"{name}_low"] <= table[name]) and np.all(table[name] <= table[f"{name}_high"])


def test_the_optimum_tops_its_iso_flop_curve(fit):
    budgets = [1e14, 1e16]
    curves = iso_flop(fit, budgets, n=81)
    optimum = compute_optimal(fit, budgets)
    np.testing.assert_allclose(fit.compute_law(curves["params"], curves["data"]), curves["compute"], rtol=1e-10)
    for c, row in zip(budgets, optimum.itertuples()):
        curve = curves[curves["compute"] == c]
        assert curve["score"].max() <= row.score_opt + 1e-12
        assert curve["params"].iloc[curve["score"].argmax()] == pytest.approx(row.params_opt, rel=0.06)
    fixed = iso_flop(fit, [1e15], params=[1e6, 1e7])
    assert fixed["params"].tolist() == [1e6, 1e7]


def test_frontier_needs_a_joint_fit_and_positive_budgets(fit):
    table = make_scaling_table(np.logspace(5, 9, 5), (1e8,), seed=0, **TRUTH)
    power = fit_law(table, score="r", params="params", law="power", n_boot=0)
    with pytest.raises(ValueError, match="needs a joint fit of params and data, got 'power'"):
        compute_optimal(power, 1e15)
    with pytest.raises(ValueError, match="compute must be positive"):
        compute_optimal(fit, [1e15, -1.0])


def test_fit_compute_law_names_what_it_lacks():
    one = pd.DataFrame({"params": [1e6, 1e6], "train_data": [1e5, 1e5], "train_flops": [6e11, 6e11]})
    with pytest.raises(ValueError, match="needs at least 3 distinct models"):
        fit_compute_law(one, params="params", data="train_data", compute="train_flops")
    with pytest.raises(ValueError, match="compute='flops'"):
        fit_compute_law(one, params="params", data="train_data", compute="flops")
    law = ComputeLaw(2.0, 0.5)
    assert law.product(law(4.0, 9.0)) == pytest.approx(36.0)
