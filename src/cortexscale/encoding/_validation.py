"""Input checks shared by the encoding estimators.

Every error names the argument, its shape and the first offending index, so a
user can find the bad sample or target without bisecting.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["check_finite", "check_features_targets", "check_run_lengths", "constant_columns"]


def check_finite(a: np.ndarray, name: str) -> None:
    """Raise if ``a`` holds NaN or Inf, naming the first offending (row, column)."""
    if np.isfinite(a).all():
        return
    bad = np.argwhere(~np.isfinite(a))[0]
    kind = "NaN" if np.isnan(a[tuple(bad)]) else "inf"
    where = ", ".join(str(int(i)) for i in bad)
    raise ValueError(
        f"{name} of shape {a.shape} contains {kind} (first at index ({where})); "
        "remove or impute non-finite values before fitting"
    )


def _as_2d(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n_samples, n_columns), got shape {a.shape}")
    return a


def check_features_targets(X, Y=None, *, min_samples: int = 2):
    """Validate features (n_samples, n_features) and targets (n_samples, n_targets).

    Returns float arrays; a 1-D ``Y`` comes back as (n_samples, 1).
    """
    X = _as_2d(X, "X")
    if X.shape[0] < min_samples:
        raise ValueError(f"X of shape {X.shape} has {X.shape[0]} sample(s); at least {min_samples} are needed")
    if X.shape[1] == 0:
        raise ValueError(f"X of shape {X.shape} has no features")
    check_finite(X, "X")
    if Y is None:
        return X, None
    Y = _as_2d(Y, "Y")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} samples (shape {X.shape}) but Y has {Y.shape[0]} (shape {Y.shape}); "
            "features and responses must cover the same time points"
        )
    if Y.shape[1] == 0:
        raise ValueError(f"Y of shape {Y.shape} has no targets")
    check_finite(Y, "Y")
    return X, Y


def check_run_lengths(run_lengths, n_samples: int, name: str = "run_lengths") -> np.ndarray:
    """Validate run lengths that must tile ``n_samples`` exactly; ``None`` means one run."""
    if run_lengths is None:
        return np.array([n_samples])
    lengths = np.asarray(run_lengths)
    if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of integers, got {run_lengths!r}")
    empty = np.flatnonzero(lengths <= 0)
    if empty.size:
        raise ValueError(f"{name}[{empty[0]}] = {lengths[empty[0]]}: runs must hold at least one sample")
    if lengths.sum() != n_samples:
        raise ValueError(f"{name} sum to {lengths.sum()} but the data have {n_samples} samples")
    return lengths


def constant_columns(Y: np.ndarray, name: str = "Y", warn: bool = True) -> np.ndarray:
    """Boolean mask of constant columns of ``Y`` (n_samples, n_targets), with a warning that counts them."""
    const = np.ptp(Y, axis=0) == 0
    if warn and const.any():
        first = np.flatnonzero(const)[:5].tolist()
        warnings.warn(
            f"{int(const.sum())} of {Y.shape[1]} targets in {name} are constant (first: {first}); "
            "they score NaN",
            UserWarning,
            stacklevel=3,
        )
    return const
