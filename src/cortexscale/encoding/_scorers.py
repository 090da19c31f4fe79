"""Validation scores of the ridge solvers, computed on the backend, one value per target; larger is better.

A :class:`Scorer` scores predictions, ``prediction(B, y, pred)``, and, where the score
depends on the prediction only through the residual (neg_mse, r2), also residuals,
``residual(B, y, e)`` with ``e = y - pred`` up to its sign. ``y``, ``pred`` and ``e`` are
(n_val, n_targets) on the backend; each function returns (n_targets,) on the backend.

The solvers pass a ``pred`` or ``e`` block they computed for the scorer alone, so the
scorers overwrite it instead of allocating temporaries of the same size: with large
blocks, fresh allocations (page faults) cost several times the arithmetic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._backend import Backend

__all__ = ["SCORERS", "Scorer", "fold_scores", "mean_over_folds"]


@dataclass(frozen=True)
class Scorer:
    """A score's prediction form and, where the score has one, its residual form; ``relative``: its
    rounding errors scale with its magnitude (a mean squared error, not a normalised score)."""

    prediction: Callable
    residual: Callable | None = None
    relative: bool = False


def _correlation(B: Backend, y, pred):
    yc = y - y.mean(0)
    pred -= pred.mean(0)
    num = (yc * pred).sum(0)
    yc *= yc
    pred *= pred
    return num / (yc.sum(0) * pred.sum(0)) ** 0.5


def _r2_of_residual(B: Backend, y, e):
    yc = y - y.mean(0)
    yc *= yc
    e *= e
    return 1 - e.sum(0) / yc.sum(0)


def _neg_mse_of_residual(B: Backend, y, e):
    e *= e
    return -e.mean(0)


def _of_prediction(of_residual: Callable) -> Callable:
    """The prediction form of a residual score: turns ``pred`` into ``pred - y`` in place."""

    def score(B: Backend, y, pred):
        pred -= y
        return of_residual(B, y, pred)

    return score


SCORERS = {
    "correlation": Scorer(_correlation),
    "r2": Scorer(_of_prediction(_r2_of_residual), _r2_of_residual),
    "neg_mse": Scorer(_of_prediction(_neg_mse_of_residual), _neg_mse_of_residual, relative=True),
}


def fold_scores(B: Backend, score: Callable, y, values) -> np.ndarray:
    """``score(B, y, values)`` of one validation block as float64 numpy (n_targets,), NaN where undefined.

    ``values`` (a prediction or residual block) is overwritten.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        s = B.to_numpy(score(B, y, values)).astype(np.float64)
    s[~np.isfinite(s)] = np.nan
    return s


def mean_over_folds(scores) -> np.ndarray:
    """Mean over folds of per-fold scores, a sequence of (n_targets,) arrays; NaN folds are left out."""
    stacked = np.vstack(scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stacked, axis=0)
