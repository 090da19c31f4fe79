"""What the encoding estimators share: parameter checks, data validation, splits, a warning and tags.

:class:`EncodingEstimator` is the base of :class:`~cortexscale.encoding.RidgeCV`,
:class:`~cortexscale.encoding.BandedRidgeCV` and :class:`~cortexscale.encoding.StackedRegression`.
Its helpers read the parameters of the same name (``alphas``, ``scoring``, ``cv``, ``dtype``,
``select_precision``)
and are called from ``fit``, so ``__init__`` only stores what it is given.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array, validate_data

from ..runtime import resolve_precision
from ._backend import resolve_dtype
from ._cv import check_cv
from ._scorers import SCORERS
from ._validation import check_features_targets, check_run_lengths

__all__ = ["DEFAULT_ALPHAS", "EncodingEstimator", "check_alphas", "groups_from"]

DEFAULT_ALPHAS = np.logspace(1, 4, 15)


def check_alphas(alphas) -> np.ndarray:
    """Penalties (n_alphas,) float64 from ``alphas`` (None gives :data:`DEFAULT_ALPHAS`); each positive, finite."""
    if alphas is None:
        return DEFAULT_ALPHAS
    a = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D array, got shape {np.shape(alphas)}")
    bad = np.flatnonzero(~(a > 0) | ~np.isfinite(a))
    if bad.size:
        raise ValueError(f"alphas must be positive and finite; alphas[{bad[0]}] = {a[bad[0]]}")
    return a


def groups_from(groups, run_lengths, n_samples: int):
    """Run label per sample (n_samples,) from either ``groups`` or ``run_lengths``; None when neither is given."""
    if run_lengths is not None:
        if groups is not None:
            raise ValueError("pass either groups or run_lengths, not both")
        lengths = check_run_lengths(run_lengths, n_samples)
        return np.repeat(np.arange(len(lengths)), lengths)
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        raise ValueError(f"groups has shape {groups.shape}; expected ({n_samples},), one run label per sample")
    return groups


class EncodingEstimator(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Base of the encoding estimators: scikit-learn regressors of one or many targets."""

    #: validated X and Y are float64; otherwise float32 X stays float32 (the solver casts to ``dtype``)
    _float64_data = True

    def _alphas(self) -> np.ndarray:
        return check_alphas(self.alphas)

    def _scoring(self) -> str:
        if self.scoring not in SCORERS:
            raise ValueError(f"scoring must be one of {sorted(SCORERS)}, got {self.scoring!r}")
        return self.scoring

    def _dtype(self) -> str:
        """numpy name ("float32" or "float64") of the ``dtype`` parameter, whatever its spelling."""
        return resolve_dtype(self.dtype)

    def _select_precision(self) -> str:
        """"auto", "fp32" or "bf16" from any spelling of ``select_precision``; raises naming the parameter."""
        if isinstance(self.select_precision, str) and self.select_precision.strip().lower() == "auto":
            return "auto"
        return resolve_precision(self.select_precision, ("fp32", "bf16"), "select_precision")

    def _validate_fit_data(self, X, y):
        """Validated X (n_samples, n_features), Y (n_samples, n_targets), and whether ``y`` was 1-D.

        See ``_float64_data`` for the dtypes; records ``n_features_in_`` (and feature names).
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X = validate_data(self, X, ensure_all_finite=False, dtype=self._data_dtypes())
        y = check_array(y, ensure_2d=False, ensure_all_finite=False, dtype=None, input_name="y")
        if y.dtype == object:
            type_of_target(y, raise_unknown=True)
            y = y.astype(np.float64)
        X, Y = check_features_targets(X, y)
        return X, Y.astype(np.float64, copy=False) if self._float64_data else Y, y.ndim == 1

    def _validate_predict_data(self, X) -> np.ndarray:
        """Validated X (n_samples, n_features) of a fitted estimator."""
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=self._data_dtypes())
        X, _ = check_features_targets(X, min_samples=1)
        return X

    def _data_dtypes(self):
        return np.float64 if self._float64_data else [np.float64, np.float32]

    def _splits(self, n_samples: int, groups, run_lengths):
        """Run labels (n_samples,) or None, and the ``cv`` splits as (train_idx, val_idx) pairs."""
        groups = groups_from(groups, run_lengths, n_samples)
        return groups, check_cv(self.cv, n_samples, groups)

    def _warn_saturation(self, best: np.ndarray, const: np.ndarray, alphas: np.ndarray) -> None:
        """Set ``n_saturated_`` and warn when targets chose either end of the alpha grid.

        best: (n_targets,) chosen alpha index; const: (n_targets,) mask of constant targets, not counted.
        """
        ok = ~const
        low = int(np.sum((best == 0) & ok))
        high = int(np.sum((best == len(alphas) - 1) & ok))
        self.n_saturated_ = (low, high)
        if len(alphas) > 1 and (low or high):
            warnings.warn(
                f"{low} of {ok.sum()} targets chose the smallest alpha ({alphas[0]:.3g}) and {high} the largest "
                f"({alphas[-1]:.3g}); the alpha grid may be too narrow for them: widen it",
                UserWarning,
                stacklevel=3,
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags
