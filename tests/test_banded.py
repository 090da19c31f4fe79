import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold
from sklearn_checks import sklearn_checks

from cortexscale.encoding import Delayer, RidgeCV, available_backends, correlation_score
from cortexscale.encoding.banded import BandedRidgeCV, band_ratio_candidates, delayed_band_columns

BACKENDS = available_backends()


def banded(**kw):
    kw.setdefault("progress", False)
    kw.setdefault("random_state", 0)
    return BandedRidgeCV(**kw)


def one_band_signal(n=500, p=(10, 30), t=40, noise=1.0, seed=0):
    """Targets driven by band 0 only; band 1 is pure noise. Returns X (n, p0 + p1) and Y (n, t)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sum(p)))
    Y = X[:, : p[0]] @ rng.normal(size=(p[0], t)) / np.sqrt(p[0]) + noise * rng.normal(size=(n, t))
    return X, Y


def two_band_data(n=120, p=(5, 8), t=12, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sum(p))) + 0.5
    W = rng.normal(size=(sum(p), t)) * np.r_[np.ones(p[0]), 0.3 * np.ones(p[1])][:, None]
    Y = X @ W * rng.uniform(0.2, 1, t) + 2 * rng.normal(size=(n, t)) + 3.0
    return X, Y


# --------------------------------------------------------------------------- recovery
def test_noise_band_gets_a_much_larger_penalty_and_banded_beats_plain_ridge():
    # The noise band's best penalty is infinite; the search can only approach it through
    # the corner (1, 0) or ratios near it, so we ask for a larger penalty everywhere and a
    # much larger one (or a negligible share of the prediction) for nearly every target.
    X, Y = one_band_signal(n=800)
    train, test = slice(0, 600), slice(600, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = banded(bands=[10, 30], n_iter=10, random_state=0, alphas=np.logspace(-1, 4, 16)).fit(X[train], Y[train])
    assert model.band_alphas_.shape == (2, 40)
    ratio = model.band_alphas_[1] / model.band_alphas_[0]
    assert np.all(ratio > 1)
    assert np.mean(ratio > 3) >= 0.9
    assert np.mean(ratio > 10) >= 0.75
    parts = model.predict_per_band(X[test])
    assert np.mean(parts[1].var(0) < 0.1 * parts[0].var(0)) >= 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain = RidgeCV(alphas=np.logspace(-1, 4, 16)).fit(X[train], Y[train])
    r_banded = correlation_score(Y[test], model.predict(X[test]))
    r_plain = correlation_score(Y[test], plain.predict(X[test]))
    assert r_banded.mean() > r_plain.mean()
    assert np.mean(r_banded > r_plain) >= 0.75


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_single_ratio_equals_ridge_cv_on_the_rescaled_features(backend):
    X, Y = two_band_data()
    gamma = np.array([0.3, 0.7])
    scale = np.sqrt(np.r_[np.full(5, gamma[0]), np.full(8, gamma[1])])
    alphas = np.logspace(0, 3, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = banded(bands=[5, 8], grid=[gamma], alphas=alphas, backend=backend, dtype="float64").fit(X, Y)
        ridge = RidgeCV(alphas=alphas, backend=backend, dtype="float64").fit(X * scale, Y)
    np.testing.assert_array_equal(model.alpha_, ridge.alpha_)
    np.testing.assert_allclose(model.best_score_, ridge.best_score_, rtol=1e-8)
    np.testing.assert_allclose(model.cv_scores_[0], np.nanmax(ridge.cv_scores_, 0), rtol=1e-8)
    np.testing.assert_allclose(model.coef_, ridge.coef_ * scale, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, ridge.intercept_, rtol=1e-7)
    np.testing.assert_allclose(model.predict(X), ridge.predict(X * scale), rtol=1e-7)
    np.testing.assert_allclose(model.band_alphas_, model.alpha_[None] / gamma[:, None])


def test_matches_himalaya_random_search_on_the_same_ratios_and_folds():
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import solve_multiple_kernel_ridge_random_search

    set_backend("numpy")
    X, Y = two_band_data(n=100, seed=2)
    X, Y = X - X.mean(0), Y - Y.mean(0)
    X1, X2 = X[:, :5], X[:, 5:]
    gammas = band_ratio_candidates(2, n_iter=12, random_state=0)
    alphas = np.logspace(-1, 4, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        deltas, dual, cv_scores, best_alphas = solve_multiple_kernel_ridge_random_search(
            np.stack([X1 @ X1.T, X2 @ X2.T]), Y, n_iter=gammas, alphas=alphas, cv=KFold(5), fit_intercept=False,
            return_weights="dual", progress_bar=False, return_alphas=True,
        )  # fmt: skip
        model = banded(bands=[5, 8], grid=gammas, alphas=alphas, scoring="neg_mse", fit_intercept=False,
                       backend="numpy", dtype="float64").fit(X, Y)  # fmt: skip
    np.testing.assert_array_equal(model.alpha_, np.asarray(best_alphas))
    np.testing.assert_allclose(model.deltas_, np.asarray(deltas), rtol=1e-10)
    np.testing.assert_allclose(model.cv_scores_, np.asarray(cv_scores), rtol=1e-7)
    weights = np.exp(np.asarray(deltas))
    kernel_pred = np.einsum("kt,knm,mt->nt", weights, np.stack([X1 @ X1.T, X2 @ X2.T]), np.asarray(dual))
    np.testing.assert_allclose(model.predict(X), kernel_pred, rtol=1e-6, atol=1e-8)


def test_refit_weights_solve_the_banded_normal_equations():
    X, Y = two_band_data(seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = banded(bands=[5, 8], n_iter=8, random_state=1, backend="numpy", dtype="float64").fit(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    band_of = np.r_[np.zeros(5, int), np.ones(8, int)]
    for j in range(Y.shape[1]):
        lam = model.band_alphas_[band_of, j]
        used = np.isfinite(lam)
        expected = np.zeros(13)
        A = Xc[:, used].T @ Xc[:, used] + np.diag(lam[used])
        expected[used] = np.linalg.solve(A, Xc[:, used].T @ Yc[:, j])
        np.testing.assert_allclose(model.coef_[j], expected, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, Y.mean(0) - X.mean(0) @ model.coef_.T)


def test_each_target_keeps_its_best_candidate():
    X, Y = two_band_data(seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = banded(bands=[5, 8], n_iter=9, random_state=2).fit(X, Y)
    assert model.cv_scores_.shape == (9, Y.shape[1])
    np.testing.assert_allclose(model.best_score_, model.cv_scores_.max(0))
    np.testing.assert_array_equal(model.band_ratios_, model.candidates_[model.cv_scores_.argmax(0)].T)
    np.testing.assert_allclose(model.band_ratios_.sum(0), 1.0)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(model.deltas_, np.log(model.band_ratios_ / model.alpha_))


# --------------------------------------------------------------------------- helpers and outputs
def test_per_band_predictions_add_up_to_the_prediction():
    X, Y = two_band_data(seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = banded(bands=[slice(0, 5), np.arange(5, 13)], n_iter=6, random_state=0).fit(X, Y)
    parts = model.predict_per_band(X)
    assert parts.shape == (2, 120, 12)
    np.testing.assert_allclose(parts.sum(0) + model.intercept_, model.predict(X), rtol=1e-10)
    np.testing.assert_allclose(parts[0], X[:, :5] @ model.coef_[:, :5].T)


def test_one_dimensional_target_drops_the_target_axis():
    X, Y = two_band_data(seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = banded(bands=[5, 8], n_iter=5, random_state=0).fit(X, Y[:, 0])
        full = banded(bands=[5, 8], n_iter=5, random_state=0).fit(X, Y[:, :1])
    assert model.coef_.shape == (13,) and model.band_alphas_.shape == (2,) and model.cv_scores_.shape == (5,)
    assert isinstance(model.alpha_, float) and isinstance(model.intercept_, float)
    assert model.predict(X).shape == (120,) and model.predict_per_band(X).shape == (2, 120)
    np.testing.assert_allclose(model.predict(X), full.predict(X)[:, 0])


def test_candidates_start_with_corners_and_centre_then_dirichlet_draws():
    c = band_ratio_candidates(3, n_iter=20, concentration=[0.1, 1.0], random_state=0)
    assert c.shape == (20, 3)
    np.testing.assert_array_equal(c[:3], np.eye(3))
    np.testing.assert_allclose(c[3], np.full(3, 1 / 3))
    assert np.all(c >= 0)
    np.testing.assert_allclose(c.sum(1), 1.0)
    np.testing.assert_array_equal(c, band_ratio_candidates(3, n_iter=20, random_state=0))
    assert band_ratio_candidates(1, n_iter=20).shape == (1, 1)


def test_delayed_band_columns_follow_the_delayer_layout():
    rng = np.random.default_rng(7)
    X1, X2 = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))
    delayed = Delayer(delays=(1, 2, 4)).fit_transform(np.hstack([X1, X2]))
    cols = delayed_band_columns([3, 2], n_delays=3)
    np.testing.assert_array_equal(delayed[:, cols[0]], Delayer(delays=(1, 2, 4)).fit_transform(X1))
    np.testing.assert_array_equal(delayed[:, cols[1]], Delayer(delays=(1, 2, 4)).fit_transform(X2))


def test_grid_edge_alphas_and_single_band_targets_are_counted_in_warnings():
    X, Y = one_band_signal(n=120, t=6, noise=0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = banded(bands=[10, 30], n_iter=4, alphas=[1e2, 1e3, 1e4], random_state=0).fit(X, Y)
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    assert any("6 of 6 targets chose the smallest alpha (100) and 0 the largest" in m for m in messages), messages
    assert model.n_saturated_ == (6, 0)
    assert any("6 of 6 targets use a single band (per band: [6, 0])" in m for m in messages), messages


def test_constant_targets_score_nan_without_crashing():
    X, Y = two_band_data(seed=8)
    Y[:, 3] = 1.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = banded(bands=[5, 8], n_iter=4, random_state=0).fit(X, Y)
    assert any("1 of 12 targets in y are constant (first: [3])" in str(w.message) for w in caught)
    assert np.isnan(model.best_score_[3]) and np.all(np.isnan(model.cv_scores_[:, 3]))
    assert np.all(np.isfinite(np.delete(model.best_score_, 3)))
    np.testing.assert_allclose(model.predict(X)[:, 3], 1.5)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "params,match",
    [
        ({"bands": [5, 7]}, r"band sizes \[5, 7\] sum to 12 but X has 13 features"),
        ({"bands": [5, 0, 8]}, r"bands\[1\] = 0"),
        ({"bands": [slice(0, 6), slice(5, 13)]}, r"column 5 of X is in bands \[0, 1\]"),
        ({"bands": [slice(0, 5), slice(6, 13)]}, r"column 5 of X \(13 features\) is in no band"),
        ({"bands": [np.arange(5), [5, 13]]}, r"bands\[1\] selects columns outside X's 13 features"),
        ({"bands": [5, 8], "grid": [[1.0, 0.0, 0.0]]}, r"grid has shape \(1, 3\); expected \(n_candidates, 2\)"),
        ({"bands": [5, 8], "grid": [[1.0, 0.0], [-1.0, 2.0]]}, r"grid row 1 = \[-1.0, 2.0\]"),
        ({"n_iter": 0}, "n_iter must be a positive integer"),
        ({"alphas": [1.0, -1.0]}, "alphas must be"),
        ({"concentration": 0.0}, "concentration must be"),
        ({"scoring": "accuracy"}, "scoring must be one of"),
        ({"alpha_search": "random"}, r"alpha_search must be one of \['grid', 'coarse_to_fine', 'warm_start'\]"),
    ],
)
def test_bad_parameters_raise_value_errors_that_name_the_problem(params, match):
    X, Y = two_band_data(n=40, t=2)
    with pytest.raises(ValueError, match=match):
        banded(**params).fit(X, Y)


def test_bad_data_raises_value_errors_with_shapes_and_indices():
    X, Y = two_band_data(n=40, t=2)
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"X of shape \(40, 13\) contains NaN \(first at index \(7, 2\)\)"):
        banded(bands=[5, 8]).fit(X, Y)
    with pytest.raises(ValueError, match=r"X has 40 samples .* but Y has 39"):
        banded(bands=[5, 8]).fit(np.nan_to_num(X), Y[:39])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dtype_spellings_and_device_backends_fit_the_same_model(backend):
    X, Y = two_band_data(n=60, t=3, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = banded(bands=[5, 8], n_iter=3, backend=backend, dtype="fp64").fit(X, Y)
        for dtype in ("float64", "double", np.float64, torch.float64):
            model = banded(bands=[5, 8], n_iter=3, backend=backend, dtype=dtype).fit(X, Y)
            np.testing.assert_array_equal(model.coef_, ref.coef_, err_msg=repr(dtype))
        if backend == "torch":
            on_cpu = banded(bands=[5, 8], n_iter=3, backend=torch.device("cpu"), dtype="fp64").fit(X, Y)
            np.testing.assert_allclose(on_cpu.coef_, ref.coef_, rtol=1e-12, atol=1e-14)
    assert banded(dtype=torch.float64).get_params()["dtype"] is torch.float64
    with pytest.raises(ValueError, match=r"dtype must be one of \['fp32', 'fp64'\].*got 'bf16'"):
        banded(bands=[5, 8], backend=backend, dtype="bf16").fit(X, Y)


def test_parameters_after_bands_are_keyword_only():
    with pytest.raises(TypeError):
        BandedRidgeCV([5, 8], [1.0])
    assert BandedRidgeCV([5, 8], alphas=[1.0]).get_params()["bands"] == [5, 8]


@sklearn_checks([BandedRidgeCV(n_iter=3, cv=2, random_state=0, progress=False, dtype="float64")])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_bf16_screening_keeps_the_fp32_choices(monkeypatch):
    from cortexscale.encoding import _solvers

    X, Y = one_band_signal(n=300, p=(20, 40), t=400, noise=1.0, seed=5)
    kw = dict(bands=[20, 40], n_iter=6, scoring="neg_mse", fit_intercept=False, backend="torch")
    ref = banded(**kw).fit(X, Y)
    shares, measure = [], _solvers._measure_screen
    def spy(*args):
        out = measure(*args)
        shares.append(out[1])
        return out

    monkeypatch.setattr(_solvers, "_measure_screen", spy)
    low = banded(select_precision="bfloat16", **kw).fit(X, Y)
    assert len(shares) == 6 and min(shares) <= _solvers.SCREEN_WORTH  # at least one candidate was screened
    same = (low.alpha_ == ref.alpha_) & np.all(low.band_ratios_ == ref.band_ratios_, axis=0)
    assert same.mean() >= 0.99
    np.testing.assert_allclose(low.coef_[same], ref.coef_[same], rtol=1e-4, atol=1e-6)


def test_a_bad_select_precision_is_named():
    X, Y = two_band_data()
    with pytest.raises(ValueError, match="select_precision"):
        banded(bands=[5, 8], select_precision="int8").fit(X, Y)


@pytest.mark.parametrize("search, same_share, scored_share", [("coarse_to_fine", 0.99, 0.62), ("warm_start", 0.99, 0.36)])
def test_faster_alpha_searches_keep_the_grid_choices_and_score_fewer_pairs(search, same_share, scored_share):
    # Smooth, collinear bands (cumulative sums) and targets mixing them in different proportions, so the
    # targets' best ratios and alphas spread; the searches walk each target to a local optimum of its CV curve.
    rng = np.random.default_rng(21)
    X = np.cumsum(rng.standard_normal((400, 30)), axis=0)
    X = (X - X.mean(0)) / X.std(0)
    mix = rng.uniform(0, 1, 300)
    Y = (X[:, :10] @ rng.standard_normal((10, 300)) * mix + X[:, 10:] @ rng.standard_normal((20, 300)) * (1 - mix)
         + 3 * rng.standard_normal((400, 300)))
    kw = dict(bands=[10, 20], n_iter=12, alphas=np.logspace(-1, 5, 13), scoring="neg_mse", fit_intercept=False,
              dtype="fp64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        grid = banded(**kw).fit(X, Y)
        fast = banded(alpha_search=search, **kw).fit(X, Y)
    assert grid.n_scored_ == 12 * 13 * 300
    assert fast.n_scored_ <= scored_share * grid.n_scored_
    same = (fast.alpha_ == grid.alpha_) & np.all(fast.band_ratios_ == grid.band_ratios_, axis=0)
    assert same.mean() >= same_share
    np.testing.assert_allclose(fast.coef_[same], grid.coef_[same], rtol=1e-8, atol=1e-10)
    assert np.all(fast.best_score_ <= grid.best_score_ + 1e-9)  # a walk finds no better pair than the grid
