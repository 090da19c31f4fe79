"""Feature-count control: project every feature model's features to the same number of columns.

Wider models give ridge more columns, so a size effect mixes what a model represents with how many features
the regression gets (AlKhamissi et al. 2025 found size stopped predicting brain alignment once the count was
held fixed). :class:`FeatureProjection` maps features (n, p) to (n, k) before delays, in one of two ways:

- ``"srp"``: a very sparse random projection (Li, Hastie & Church 2006), independent of the data: each entry
  of the (p, k) matrix is ``+-sqrt(s / k)`` with probability ``1 / (2s)`` each and 0 otherwise, ``s = sqrt(p)``,
  drawn from ``random_state``, so that squared norms are kept in expectation. Only the width is learnt.
- ``"pca"``: the top k principal axes of the rows it is fitted on, after centring on their mean. Fit it on the
  training TRs only: the test TRs must not choose the axes they are scored on.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["PROJECTIONS", "FeatureProjection", "sparse_random_matrix"]

PROJECTIONS = ("srp", "pca")
"""The projection methods, as a study file's ``projection.method`` names them."""


def sparse_random_matrix(n_features: int, n_components: int, seed: int = 0) -> np.ndarray:
    """A very sparse random projection (n_features, n_components), float64, drawn from ``seed``: entries
    ``+-sqrt(s / n_components)`` with probability ``1 / (2s)`` each, else 0, with ``s = sqrt(n_features)``. A
    column left all zero by chance gets one nonzero entry, so that no output column is constant."""
    rng = np.random.default_rng(seed)
    s = max(1.0, np.sqrt(n_features))
    draws = rng.random((n_features, n_components))
    signs = np.where(rng.random((n_features, n_components)) < 0.5, -1.0, 1.0)
    matrix = np.where(draws < 1.0 / s, signs, 0.0)
    for j in np.flatnonzero(~matrix.any(axis=0)):
        matrix[rng.integers(n_features), j] = signs[0, j]
    return matrix * np.sqrt(s / n_components)


def _principal_axes(centred: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` principal axes (p, k) of centred rows (n, p) and the summed squares along each (k,), from
    the smaller of the (p, p) and (n, n) cross-products; each axis signed so its largest entry is positive."""
    n, p = centred.shape
    if p <= n:
        values, vectors = np.linalg.eigh(centred.T @ centred)
        values, axes = values[::-1][:k], vectors[:, ::-1][:, :k]
    else:
        values, vectors = np.linalg.eigh(centred @ centred.T)
        values, vectors = values[::-1][:k], vectors[:, ::-1][:, :k]
        axes = centred.T @ vectors / np.sqrt(np.maximum(values, np.finfo(float).tiny))
    axes = axes / np.maximum(np.linalg.norm(axes, axis=0), np.finfo(float).tiny)
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
    return axes * np.where(signs == 0, 1.0, signs), np.maximum(values, 0.0)


class FeatureProjection(TransformerMixin, BaseEstimator):
    """Project features (n_samples, n_features) to (n_samples, n_components).

    Parameters
    ----------
    method : {"srp", "pca"}, default "srp"
        A seeded sparse random projection (data-independent) or PCA fitted on ``fit``'s rows.
    n_components : int, default 64
        Columns out; at most ``n_features`` (and, for PCA, at most the number of samples ``fit`` sees).
    random_state : int, default 0
        The seed of the random projection (PCA ignores it).

    Attributes
    ----------
    components_ : ndarray (n_features, n_components), float64
        ``transform(X) = (X - mean_) @ components_``.
    mean_ : ndarray (n_features,)
        The training rows' mean (PCA); zeros for the random projection.
    explained_variance_ratio_ : ndarray (n_components,) or None
        The share of the training rows' variance along each principal axis (PCA only).
    n_features_in_ : int
    """

    def __init__(self, method: str = "srp", n_components: int = 64, random_state: int = 0):
        self.method = method
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None):
        """Learn the projection from ``X`` (n_samples, n_features); ``y`` is ignored."""
        if self.method not in PROJECTIONS:
            raise ValueError(f"method must be one of {PROJECTIONS}, got {self.method!r}")
        if not isinstance(self.n_components, numbers.Integral) or self.n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        n, p = X.shape
        k = int(self.n_components)
        if k > p:
            raise ValueError(f"n_components={k} is more than the {p} features of X {X.shape}: a projection "
                             "reduces the width")
        if self.method == "srp":
            self.mean_ = np.zeros(p)
            self.components_ = sparse_random_matrix(p, k, int(self.random_state))
            self.explained_variance_ratio_ = None
            return self
        if k > n:
            raise ValueError(f"n_components={k} is more than the {n} samples PCA is fitted on (X {X.shape})")
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        centred = X.astype(np.float64) - self.mean_
        self.components_, variances = _principal_axes(centred, k)
        total = float(np.einsum("ij,ij->", centred, centred))
        self.explained_variance_ratio_ = variances / total if total > 0 else np.zeros(k)
        return self

    def transform(self, X) -> np.ndarray:
        """``X`` (n_samples, n_features_in_) projected, (n_samples, n_components), in ``X``'s float dtype."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        out = (X - self.mean_.astype(X.dtype)) @ self.components_.astype(X.dtype)
        return out.astype(X.dtype, copy=False)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray([f"{self.method}{j}" for j in range(self.components_.shape[1])], dtype=object)
