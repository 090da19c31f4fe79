"""Public names that had no test of their own: alpha conventions, the constant LR schedule, what alpha_ means,
and the r2 scorer against scikit-learn."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score as sk_r2

from cortexscale.encoding import RidgeCV, huth_alphas_to_standard, standard_alphas_to_huth
from cortexscale.train import TrainConfig, lr_factor


def test_huth_alphas_square_and_back():
    huth = np.array([1.0, 10.0, 31.6, 1000.0])
    np.testing.assert_allclose(huth_alphas_to_standard(huth), huth**2)
    np.testing.assert_allclose(standard_alphas_to_huth(huth_alphas_to_standard(huth)), huth)
    np.testing.assert_allclose(standard_alphas_to_huth([4.0, 9.0]), [2.0, 3.0])


def test_a_huth_alpha_gives_huth_ridge():
    """Huth-lab ridge solves (X'X + a_h^2 I) w = X'y; its a_h converted is our alpha."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 8)), rng.standard_normal(60)
    a_h = 3.0
    huth = np.linalg.solve(X.T @ X + a_h**2 * np.eye(8), X.T @ y)
    ours = Ridge(alpha=float(huth_alphas_to_standard(a_h)), fit_intercept=False).fit(X, y).coef_
    np.testing.assert_allclose(ours, huth, rtol=1e-10)


def test_constant_schedule_keeps_the_peak_after_warmup():
    factors = [lr_factor(s, 50, warmup_steps=5, min_lr_ratio=0.1, schedule="constant") for s in range(50)]
    np.testing.assert_allclose(factors[:5], [0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5:] == [1.0] * 45
    assert lr_factor(49, 50, schedule="cosine", min_lr_ratio=0.1) < 0.11


def test_a_bad_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainConfig(steps=1, schedule="linear")
    with pytest.raises(ValueError, match="schedule must be 'cosine' or 'constant', got 'step'"):
        lr_factor(3, 10, schedule="step")


@pytest.mark.filterwarnings("ignore:.*the alpha grid may be too narrow:UserWarning")
def test_alpha_is_the_alpha_at_the_best_cv_score():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 30))
    Y = X @ rng.standard_normal((30, 12)) * np.linspace(0.05, 3, 12) + rng.standard_normal((120, 12))
    model = RidgeCV(alphas=np.logspace(-2, 4, 13), cv=4).fit(X, Y)
    best = np.nanargmax(model.cv_scores_, axis=0)
    np.testing.assert_array_equal(model.alpha_, model.alphas_[best])
    np.testing.assert_array_equal(model.best_score_, model.cv_scores_[best, np.arange(12)])
    assert len(np.unique(model.alpha_)) > 2


@pytest.mark.filterwarnings("ignore:.*the alpha grid may be too narrow:UserWarning")
def test_r2_scorer_matches_scikit_learn_fold_by_fold():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((90, 10))
    Y = X @ rng.standard_normal((10, 4)) + rng.standard_normal((90, 4))
    folds = [(np.r_[30:90], np.r_[0:30]), (np.r_[np.r_[0:30], np.r_[60:90]], np.r_[30:60]),
             (np.r_[0:60], np.r_[60:90])]
    alphas = [0.1, 10.0, 1000.0]
    model = RidgeCV(alphas=alphas, cv=folds, scoring="r2", fit_intercept=False, dtype="fp64").fit(X, Y)
    for a, alpha in enumerate(alphas):
        reference = np.mean([sk_r2(Y[val], Ridge(alpha=alpha, fit_intercept=False).fit(X[tr], Y[tr]).predict(X[val]),
                                   multioutput="raw_values") for tr, val in folds], axis=0)
        np.testing.assert_allclose(model.cv_scores_[a], reference, rtol=1e-9, atol=1e-12)
