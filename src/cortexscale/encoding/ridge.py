"""Ridge regression with a cross-validated alpha per target (voxel, parcel or ROI)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._base import DEFAULT_ALPHAS, EncodingEstimator, groups_from
from ._solvers import ALPHA_SEARCHES, ridge_cv
from ._validation import constant_columns
from .delays import check_delays

__all__ = ["DEFAULT_ALPHAS", "RidgeCV", "huth_alphas_to_standard", "standard_alphas_to_huth"]


def huth_alphas_to_standard(alphas_huth):
    """Huth-lab ridge penalises ``alpha**2``: convert their alphas to the (X^T X + alpha I) convention."""
    return np.asarray(alphas_huth, dtype=float) ** 2


def standard_alphas_to_huth(alphas):
    """Inverse of :func:`huth_alphas_to_standard`."""
    return np.sqrt(np.asarray(alphas, dtype=float))


class RidgeCV(EncodingEstimator):
    """Ridge regression with one cross-validated alpha per target.

    Each target's alpha maximises its mean validation score over the splits;
    each target is then refit on all samples with its alpha.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), default ``np.logspace(1, 4, 15)``
        Penalties in the standard ``(X^T X + alpha I)`` convention. Huth-lab code
        penalises ``alpha**2``; convert with :func:`huth_alphas_to_standard`.
    cv : int, "runs", Bootstrap, scikit-learn splitter or iterable, default 5
        An int gives contiguous (unshuffled) folds; ``"runs"`` leaves one run out
        (runs from ``groups``); :class:`~cortexscale.encoding.Bootstrap` is the
        Huth-lab chunked bootstrap.
    scoring : {"correlation", "r2", "neg_mse"}, default "correlation"
        Validation score that picks alpha. ``"neg_mse"`` reproduces himalaya.
    fit_intercept : bool, default True
        Centre features and targets once, on all training samples, which keeps the
        single-decomposition path exact. himalaya re-centres inside every training
        fold instead, so with an intercept its scores differ slightly; with
        ``fit_intercept=False`` (himalaya's default) the two agree exactly.
    delays : sequence of int or None
        When given, ``X`` holds undelayed features and the model uses FIR-delayed
        copies (column ``k * n_base + j`` is feature j at ``delays[k]``), within
        runs from ``groups``. The delayed design is never materialised where a
        cheaper lagged product exists.
    backend : {"auto", "numpy", "torch", "torch_cuda"} or a device, default "auto"
        "auto" is torch on CUDA when present, else torch on the CPU; a device ("cpu",
        "cuda", "cuda:1" or a ``torch.device``) is torch on that device.
    dtype : {"fp32", "fp64"}, default "fp32"
        Any spelling :func:`cortexscale.runtime.resolve_precision` accepts ("float64",
        "double", ``torch.float64``, ``np.float64``, ...). With "fp32" the products run
        in float32 while the kernel (or Gram) and its eigendecomposition, which select
        the alphas, are formed in float64, so the chosen alphas match a float64 fit
        even for smooth, collinear features.
    method : {"auto", "dual", "primal", "general"}, default "auto"
        "auto" picks the cheaper decomposition for the shape.
    alpha_search : {"grid", "coarse_to_fine"}, default "grid"
        "coarse_to_fine" scores every third alpha, then walks each target to its
        local optimum; about half the work, same alpha for nearly all targets.
    select_precision : {"fp32", "bf16", "auto"}, default "auto"
        "bf16" first scores a sample of each batch's targets at every alpha both ways (torch
        only). Where the sample predicts that the screen pays, it screens every alpha with bf16
        products and scores again in ``dtype`` every alpha within a few measured errors of a
        target's best, so the chosen alphas are those of an all-``dtype`` search except where two
        alphas tie to within rounding; elsewhere (smooth, collinear designs, whose best alphas
        nearly tie) the batch is scored in ``dtype``. "fp32" scores everything in ``dtype``.
        "auto" is "bf16" where bf16 products are fast (torch on CUDA of compute capability 8+,
        or a CPU with AVX512-BF16 or AMX) and the fit is float32, else "fp32". Batches of at most
        128 targets are never screened. Spellings as for ``dtype`` ("bfloat16", ...).
    target_batch : int or None
        Targets per batch; None bounds each (n_samples, batch) block near 256 MB.
    progress : bool, default False
        Show a tqdm bar over target batches.

    Attributes
    ----------
    alpha_ : ndarray of shape (n_targets,)
    best_score_ : ndarray of shape (n_targets,)
    cv_scores_ : ndarray of shape (n_alphas, n_targets), NaN where not evaluated.
    coef_ : ndarray of shape (n_targets, n_features), or (n_features,) for 1-D y.
    intercept_ : ndarray of shape (n_targets,), or float for 1-D y.
    method_ : str, the algorithm used.
    screened_ : bool, whether any batch of targets was screened in bf16: ``select_precision`` asks for it,
        there are more than 128 targets in the batch and a sample of them predicts the screen pays
        (at most 35% of the scores redone exactly; see ``_solvers.SCREEN_WORTH``).
    n_rescored_ : int, (alpha, target) scores computed again exactly after screening.
    n_saturated_ : tuple (at smallest alpha, at largest alpha), counts of targets.
    """

    _float64_data = False

    def __init__(
        self,
        alphas=None,
        *,
        cv=5,
        scoring="correlation",
        fit_intercept=True,
        delays=None,
        backend="auto",
        dtype="fp32",
        method="auto",
        alpha_search="grid",
        select_precision="auto",
        target_batch=None,
        progress=False,
    ):
        self.alphas = alphas
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.delays = delays
        self.backend = backend
        self.dtype = dtype
        self.method = method
        self.alpha_search = alpha_search
        self.select_precision = select_precision
        self.target_batch = target_batch
        self.progress = progress

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> dict:
        """Keyword arguments of :func:`ridge_cv` from the parameters; raises on a bad one."""
        if self.alpha_search not in ALPHA_SEARCHES:
            raise ValueError(f"alpha_search must be one of {list(ALPHA_SEARCHES)}, got {self.alpha_search!r}")
        return dict(
            scoring=self._scoring(), backend=self.backend, dtype=self._dtype(), fit_intercept=self.fit_intercept,
            delays=None if self.delays is None else tuple(check_delays(self.delays).tolist()),
            method=self.method, target_batch=self.target_batch, alpha_search=self.alpha_search,
            select_precision=self._select_precision(),
            progress=self.progress,
        )  # fmt: skip

    def fit(self, X, y, groups=None, run_lengths=None):
        """Fit.

        X: (n_samples, n_features) — undelayed features when ``delays`` is set.
        y: (n_samples,) or (n_samples, n_targets).
        groups: (n_samples,) run label per sample, or run_lengths: (n_runs,).
        """
        alphas = self._alphas()
        options = self._check_params()
        X, Y, self._y_1d = self._validate_fit_data(X, y)
        groups, splits = self._splits(X.shape[0], groups, run_lengths)
        const = constant_columns(Y)
        run_ids = None if groups is None else np.unique(groups, return_inverse=True)[1]
        res = ridge_cv(X, Y, alphas, splits, run_ids=run_ids, **options)
        scores = res.cv_scores
        scores[:, const] = np.nan
        best = res.best_index
        best[const] = 0
        self.alphas_ = alphas
        self.cv_scores_ = scores
        self.alpha_ = alphas[best]
        self.best_score_ = np.take_along_axis(scores, best[None], 0)[0]
        self.method_ = res.method
        self.n_rescored_ = int(res.extras.get("n_rescored", 0))
        self.screened_ = res.extras.get("n_screened_batches", 0) > 0
        self._store_solution(res)
        self._warn_saturation(best, const, alphas)
        return self

    def _store_solution(self, res):
        B = res.extras["backend"]
        self._backend = B
        self._design = res.extras["design"]
        y_mean = res.extras["y_mean"]
        self._y_mean = None if y_mean is None else B.to_numpy(y_mean)
        self._coef = None if res.coef is None else B.to_numpy(res.coef)
        self._dual = res.dual_coef
        self._dual_dense = None
        self.intercept_ = self._intercept()
        if self._y_1d:
            self.alpha_, self.best_score_ = self.alpha_[0], self.best_score_[0]
            self.intercept_ = self.intercept_[0]

    # ------------------------------------------------------------------ solution
    @property
    def dual_coef_(self):
        """Dual weights (n_samples, n_targets) of the training design; None for the primal method."""
        check_is_fitted(self, "cv_scores_")
        if self._dual is None:
            return None
        if self._dual_dense is None:
            self._dual_dense = self._backend.to_numpy(self._dual.dense())
        return self._dual_dense

    def _primal(self) -> np.ndarray:
        """Weights of the (delayed) design, (n_features, n_targets)."""
        if self._coef is None:
            B = self._backend
            self._coef = B.to_numpy(self._design.rmatmul(B, self._dual.dense()))
        return self._coef

    @property
    def coef_(self):
        check_is_fitted(self, "cv_scores_")
        coef = self._primal().T
        return coef[0] if self._y_1d else coef

    def _intercept(self) -> np.ndarray:
        """``y_mean - x_mean @ coef`` (n_targets,), through the dual weights when there are any."""
        n_targets = self.cv_scores_.shape[1]
        if self._y_mean is None:
            return np.zeros(n_targets)
        B, design = self._backend, self._design
        if self._dual is None:
            return self._y_mean - B.to_numpy(design.mean) @ self._coef
        row = design.matmul(B, design.mean[:, None]).T
        return self._y_mean - B.to_numpy(self._dual.left_multiply(row))[0]

    def predict(self, X, groups=None, run_lengths=None):
        """Predict (n_samples, n_targets), or (n_samples,) for a model fit on 1-D y.

        groups / run_lengths give the runs of the new samples when ``delays`` is set.
        """
        check_is_fitted(self, "cv_scores_")
        X = self._validate_predict_data(X)
        B = self._backend
        g = groups_from(groups, run_lengths, X.shape[0])
        new = self._design.like(B.asarray(X), None if g is None else np.unique(g, return_inverse=True)[1])
        if self._dual is not None:
            pred = B.to_numpy(self._dual.left_multiply(new.kernel(B, self._design)))
        else:
            pred = B.to_numpy(new.matmul(B, B.asarray(self._coef)))
        if self._y_mean is not None:
            pred = pred + self._y_mean
        pred = pred.astype(np.float64, copy=False)
        return pred[:, 0] if self._y_1d else pred
