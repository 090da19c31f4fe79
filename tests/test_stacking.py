import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import KFold, cross_val_predict
from sklearn_checks import sklearn_checks

from cortexscale.encoding import RidgeCV
from cortexscale.encoding.stacking import StackedRegression, project_simplex, simplex_least_squares


def slsqp_weights(P, y):
    """Reference simplex least squares for one target with scipy: P (K, n), y (n,)."""
    K = P.shape[0]
    A = P.T / np.linalg.norm(y)
    b = y / np.linalg.norm(y)
    res = minimize(
        lambda w: np.sum((b - A @ w) ** 2),
        np.full(K, 1.0 / K),
        jac=lambda w: -2 * A.T @ (b - A @ w),
        method="SLSQP",
        bounds=[(0, None)] * K,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(K)}],
        options={"ftol": 1e-13, "maxiter": 2000},
    )
    assert res.success, res.message
    return res.x


def two_space_data(n=600, t=12, shares=(0.7, 0.3), noise=0.1, seed=0, p=(6, 6)):
    """Independent spaces; space k explains ``shares[k]`` of the signal variance of every target."""
    rng = np.random.default_rng(seed)
    Xs = [rng.normal(size=(n, pk)) for pk in p]
    fs = []
    for X in Xs:
        f = X @ rng.normal(size=(X.shape[1], t))
        fs.append((f - f.mean(0)) / f.std(0))
    Y = sum(np.sqrt(s) * f for s, f in zip(shares, fs)) + noise * rng.normal(size=(n, t))
    return np.hstack(Xs), Y


def two_spaces(est_a, est_b, p=(6, 6), **kw):
    return StackedRegression(
        [("a", est_a, slice(0, p[0])), ("b", est_b, slice(p[0], p[0] + p[1]))], progress=False, **kw
    )


# --------------------------------------------------------------------------- the QP
@pytest.mark.parametrize(
    "solver,K", [("enumerate", 1), ("enumerate", 2), ("enumerate", 3), ("enumerate", 5),
                 ("projected_gradient", 3), ("projected_gradient", 8), ("auto", 7)]
)
def test_qp_matches_scipy_for_every_target(solver, K):
    rng = np.random.default_rng(K)
    n, t = 40, 9
    truth = rng.dirichlet(np.full(K, 0.5), size=t).T
    P = rng.normal(size=(K, n, t)) + rng.normal(size=(1, n, t))
    Y = np.einsum("kt,knt->nt", truth, P) + 0.5 * rng.normal(size=(n, t))
    W = simplex_least_squares(P, Y, solver)
    assert W.shape == (K, t)
    for j in range(t):
        np.testing.assert_allclose(W[:, j], slsqp_weights(P[:, :, j], Y[:, j]), atol=1e-6)


@pytest.mark.parametrize("solver", ["enumerate", "projected_gradient"])
def test_weights_stay_on_the_simplex_for_degenerate_predictions(solver):
    rng = np.random.default_rng(3)
    n, t = 30, 6
    base = rng.normal(size=(n, t))
    P = np.stack([base, base, np.zeros((n, t)), np.ones((n, t)), -base])
    Y = np.c_[rng.normal(size=(n, t - 1)), np.full(n, 2.0)]
    W = simplex_least_squares(P, Y, solver)
    assert np.all(np.isfinite(W))
    assert np.all(W >= 0)
    np.testing.assert_allclose(W.sum(0), 1.0, atol=1e-12)
    G_obj = np.sum((Y - np.einsum("kt,knt->nt", W, P)) ** 2, axis=0)
    corner_obj = np.sum((Y[None] - P) ** 2, axis=1).min(0)
    assert np.all(G_obj <= corner_obj + 1e-9)


def test_project_simplex_matches_scipy_projection():
    rng = np.random.default_rng(4)
    V = 3 * rng.normal(size=(20, 4))
    out = project_simplex(V)
    for v, w in zip(V, out):
        ref = minimize(lambda x: np.sum((x - v) ** 2), np.full(4, 0.25), method="SLSQP", bounds=[(0, None)] * 4,
                       constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}], options={"ftol": 1e-14})
        np.testing.assert_allclose(w, ref.x, atol=1e-6)


def test_fixed_predictions_mixed_in_known_proportions_are_recovered():
    rng = np.random.default_rng(5)
    n, t = 500, 10
    P = rng.normal(size=(2, n, t))
    Y = 0.7 * P[0] + 0.3 * P[1] + 0.05 * rng.normal(size=(n, t))
    W = simplex_least_squares(P, Y)
    np.testing.assert_allclose(W, np.array([[0.7], [0.3]]) * np.ones((1, t)), atol=0.05)


def test_qp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(2, 10, 3\).*\(10, 4\)"):
        simplex_least_squares(np.zeros((2, 10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="solver"):
        simplex_least_squares(np.zeros((2, 10, 3)), np.zeros((10, 3)), solver="newton")


# --------------------------------------------------------------------------- the estimator
def test_weights_recover_the_explained_variance_shares_of_two_spaces():
    # With independent spaces and near-unbiased fits, the held-out prediction of space k is
    # sqrt(s_k) f_k, and the simplex least squares minimiser is w_k = s_k / sum(s).
    X, Y = two_space_data(shares=(0.7, 0.3))
    model = two_spaces(Ridge(alpha=1.0), Ridge(alpha=1.0)).fit(X, Y)
    np.testing.assert_allclose(model.weights_, np.array([[0.7], [0.3]]) * np.ones((1, Y.shape[1])), atol=0.05)


def test_pure_noise_space_gets_near_zero_weight():
    X, Y = two_space_data(shares=(1.0, 0.0), noise=1.0, seed=6)
    X[:, 6:] = np.random.default_rng(106).normal(size=(X.shape[0], 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = two_spaces(RidgeCV(), RidgeCV()).fit(X, Y)
    assert np.all(model.weights_[1] < 0.05)
    assert model.weights_[1].mean() < 0.02


def test_weights_are_non_negative_and_sum_to_one():
    X, Y = two_space_data(n=200, t=8, shares=(0.5, 0.5), noise=2.0, seed=7)
    model = StackedRegression(
        [("a", Ridge(1.0), slice(0, 6)), ("b", Ridge(1.0), slice(6, 12)), ("all", LinearRegression(), slice(None))],
        progress=False,
    ).fit(X, Y)
    assert model.weights_.shape == (3, 8)
    assert np.all(model.weights_ >= 0)
    np.testing.assert_allclose(model.weights_.sum(0), 1.0, atol=1e-12)


def test_held_out_predictions_match_sklearn_cross_val_predict():
    X, Y = two_space_data(n=200, t=5, seed=8)
    model = two_spaces(Ridge(alpha=3.0), Ridge(alpha=0.5), store_cv_predictions=True, cv=5).fit(X, Y)
    for k, cols in enumerate([slice(0, 6), slice(6, 12)]):
        ref = cross_val_predict(Ridge(alpha=[3.0, 0.5][k]), X[:, cols], Y, cv=KFold(5))
        np.testing.assert_allclose(model.cv_predictions_[k], ref, rtol=1e-10, atol=1e-12)
    expected = simplex_least_squares(model.cv_predictions_, Y)
    np.testing.assert_allclose(model.weights_, expected)


def test_predict_is_the_weighted_sum_of_spaces_refit_on_all_samples():
    X, Y = two_space_data(n=150, t=4, seed=9)
    model = two_spaces(Ridge(alpha=2.0), Ridge(alpha=2.0)).fit(X, Y)
    per_space = np.stack([Ridge(alpha=2.0).fit(X[:, c], Y).predict(X[:, c]) for c in (slice(0, 6), slice(6, 12))])
    np.testing.assert_allclose(model.predict_per_space(X), per_space)
    np.testing.assert_allclose(model.predict(X), np.einsum("kt,knt->nt", model.weights_, per_space))
    assert set(model.named_estimators_) == {"a", "b"}


def test_scores_report_each_space_and_the_stack():
    X, Y = two_space_data(n=400, t=6, shares=(0.6, 0.4), noise=0.5, seed=10)
    model = two_spaces(Ridge(1.0), Ridge(1.0)).fit(X[:300], Y[:300])
    assert model.cv_scores_.shape == (3, 6)
    scores = model.score_spaces(X[300:], Y[300:])
    assert scores.shape == (3, 6)
    stacked = model.predict(X[300:])
    np.testing.assert_allclose(scores[2], [np.corrcoef(a, b)[0, 1] for a, b in zip(stacked.T, Y[300:].T)])
    # both spaces carry signal, so their combination predicts better than either alone
    assert np.all(scores[2] > scores[:2].max(0))


def test_one_dimensional_target_gives_one_dimensional_predictions():
    X, Y = two_space_data(n=120, t=1, seed=11)
    model = two_spaces(Ridge(1.0), Ridge(1.0)).fit(X, Y[:, 0])
    assert model.weights_.shape == (2, 1)
    assert model.predict(X).shape == (120,)
    assert model.predict_per_space(X).shape == (2, 120)
    np.testing.assert_allclose(model.predict(X), two_spaces(Ridge(1.0), Ridge(1.0)).fit(X, Y).predict(X)[:, 0])


def test_groups_reach_the_splitter_and_the_base_estimators():
    class GroupAware(Ridge):
        def fit(self, X, y, groups=None):
            assert groups is not None and len(groups) == len(X)
            self.groups_seen_ = np.unique(groups)
            return super().fit(X, y)

    X, Y = two_space_data(n=90, t=3, seed=12)
    groups = np.repeat([0, 1, 2], 30)
    model = two_spaces(GroupAware(), Ridge(), cv="runs").fit(X, Y, groups=groups)
    np.testing.assert_array_equal(model.estimators_[0].groups_seen_, [0, 1, 2])
    by_lengths = two_spaces(GroupAware(), Ridge(), cv="runs").fit(X, Y, run_lengths=[30, 30, 30])
    np.testing.assert_allclose(by_lengths.weights_, model.weights_)


def test_delays_never_cross_a_run_or_a_held_out_gap():
    """Spaces fitted with delayed ridge see their runs in fit, in every training set of the stacking splits (the
    rows of one run on either side of a held-out chunk are two pieces) and in predict."""
    class Pieces(RidgeCV):
        seen = []

        def fit(self, X, y, groups=None):
            Pieces.seen.append(np.asarray(groups))
            return super().fit(X, y, groups=groups)

    X, Y = two_space_data(n=90, t=3, seed=14)
    delayed = dict(alphas=[1.0, 10.0], delays=[1, 2], cv=2, dtype="float64")
    model = StackedRegression([("a", Pieces(**delayed), slice(0, 3)), ("b", RidgeCV(**delayed), slice(3, 6))],
                              cv=3, progress=False).fit(X, Y, run_lengths=[70, 20])
    first_fold, middle_fold = Pieces.seen[0], Pieces.seen[1]
    np.testing.assert_array_equal(first_fold, np.repeat([0, 1], [40, 20]))   # rows 30..69 of run 0, then run 1
    np.testing.assert_array_equal(middle_fold, np.repeat([0, 1, 2], [30, 10, 20]))   # 0..29 | gap | 60..69, run 1
    np.testing.assert_array_equal(Pieces.seen[-1], np.repeat([0, 1], [70, 20]))
    by_run = np.concatenate([model.predict_per_space(X[a:b]) for a, b in ((0, 70), (70, 90))], axis=1)
    np.testing.assert_allclose(model.predict_per_space(X, run_lengths=[70, 20]), by_run, rtol=1e-10)
    assert not np.allclose(model.predict_per_space(X), by_run)


def test_only_held_out_samples_enter_the_weights():
    X, Y = two_space_data(n=100, t=4, shares=(0.5, 0.5), noise=1.0, seed=13)
    idx = np.arange(100)
    splits = [(idx[40:], idx[:20]), (np.r_[idx[:20], idx[40:]], idx[20:40])]
    model = two_spaces(Ridge(), Ridge(), cv=splits, store_cv_predictions=True).fit(X, Y)
    np.testing.assert_array_equal(model.cv_predictions_[:, 40:], 0.0)
    held = model.cv_predictions_[:, :40]
    np.testing.assert_allclose(model.weights_, simplex_least_squares(held, Y[:40]))
    ref = Ridge().fit(X[40:, :6], Y[40:]).predict(X[:20, :6])
    np.testing.assert_allclose(held[0, :20], ref)


@pytest.mark.parametrize(
    "estimators,match",
    [
        ([], "non-empty"),
        ([("a", Ridge(), slice(0, 2)), ("a", Ridge(), slice(2, 4))], r"estimators\[1\] has name 'a'"),
        ([("a", Ridge())], r"estimators\[0\] must be a \(name, estimator, columns\)"),
        ([("a", Ridge(), [0, 9])], r"estimators\[0\] \('a'\) columns selects columns outside X's 4 features"),
        ([("a", Ridge(), np.ones(3, bool))], r"mask of shape \(3,\); expected \(4,\)"),
        ([("a", "ridge", slice(None))], "no fit/predict"),
    ],
)
def test_bad_estimators_raise_value_errors_that_name_the_entry(estimators, match):
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match=match):
        StackedRegression(estimators, progress=False).fit(X, X[:, 0])


def test_parameters_after_estimators_are_keyword_only():
    with pytest.raises(TypeError):
        StackedRegression([("a", Ridge(), slice(None))], 5)
    assert StackedRegression([("a", Ridge(), slice(None))], cv=3).get_params()["cv"] == 3


def test_groups_and_run_lengths_are_checked_like_ridge():
    X, Y = two_space_data(n=60, t=2, seed=14)
    with pytest.raises(ValueError, match="pass either groups or run_lengths, not both"):
        two_spaces(Ridge(), Ridge()).fit(X, Y, groups=np.zeros(60), run_lengths=[60])
    with pytest.raises(ValueError, match=r"groups has shape \(59,\); expected \(60,\)"):
        two_spaces(Ridge(), Ridge(), cv="runs").fit(X, Y, groups=np.zeros(59))


@sklearn_checks(
    [StackedRegression([("all", Ridge(), slice(None)), ("first", Ridge(alpha=10.0), slice(0, 1))], progress=False)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
