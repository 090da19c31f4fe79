"""Finite impulse response (FIR) delays: stack time-shifted copies of the features.

A linear model on delayed features learns one weight per (feature, delay), so it
can fit a response function of any shape over the delays instead of assuming a
canonical haemodynamic response.

Column layout (delay-major blocks, in the order the delays are given)::

    column k * n_features + j  =  feature j delayed by delays[k]

A positive delay ``d`` moves the stimulus later in time: output row ``i`` holds
input row ``i - d``, so the response at time ``i`` sees the stimulus at
``i - d``. Negative delays shift the other way, and delay 0 is the undelayed
copy. Rows that would reach before the start or past the end of their run are
zero; with ``run_lengths`` no delay crosses from one run into the next.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_run_lengths

__all__ = ["Delayer", "check_delays", "delay_features"]


def check_delays(delays) -> np.ndarray:
    """Validate delays (a non-empty sequence of distinct integers) into an int64 array (n_delays,)."""
    values = np.atleast_1d(np.asarray(delays, dtype=object))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"delays must be a non-empty 1-D sequence of integers, got {delays!r}")
    for k, d in enumerate(values):
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise ValueError(f"delays[{k}] = {d!r} is not an integer; delays count samples (TRs)")
    out = values.astype(np.int64)
    uniq, counts = np.unique(out, return_counts=True)
    if (counts > 1).any():
        d = uniq[counts > 1][0]
        where = np.flatnonzero(out == d).tolist()
        raise ValueError(f"delays contain {d} more than once (at indices {where}); each delay must be unique")
    return out


def _shift_run(run: np.ndarray, d: int) -> np.ndarray:
    """Copy of ``run`` (n, n_features) shifted by ``d`` rows, zero-filled: out[i] = run[i - d]."""
    out = np.zeros_like(run)
    n = run.shape[0]
    if abs(d) >= n:
        return out
    if d >= 0:
        out[d:] = run[: n - d]
    else:
        out[: n + d] = run[-d:]
    return out


def delay_features(X, delays, run_lengths=None) -> np.ndarray:
    """Stack delayed copies of ``X`` side by side.

    Parameters
    ----------
    X : array (n_samples, n_features)
    delays : sequence of int (n_delays,)
        Distinct shifts in samples; see the module docstring for the sign.
    run_lengths : sequence of int (n_runs,), optional
        Lengths of consecutive runs that tile ``n_samples``; delays never cross
        a run boundary. ``None`` means one run.

    Returns
    -------
    array (n_samples, n_features * n_delays)
        Column ``k * n_features + j`` is feature ``j`` delayed by ``delays[k]``.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    delays = check_delays(delays)
    lengths = check_run_lengths(run_lengths, X.shape[0])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    n_features = X.shape[1]
    out = np.zeros((X.shape[0], n_features * len(delays)), dtype=X.dtype)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        run = X[start:stop]
        for k, d in enumerate(delays):
            out[start:stop, k * n_features : (k + 1) * n_features] = _shift_run(run, int(d))
    return out


class Delayer(TransformerMixin, BaseEstimator):
    """scikit-learn transformer that adds FIR delays to features.

    Parameters
    ----------
    delays : sequence of int, default=(1, 2, 3, 4)
        Distinct shifts in samples (TRs). Positive means the response at time
        ``i`` sees the stimulus at ``i - d``.
    run_lengths : sequence of int, optional
        Run lengths used by :meth:`transform` when it is not given any; delays
        never cross a run boundary.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : array of str (n_features_in_,)
        Only when fitted on a DataFrame with string column names.
    delays_ : int array (n_delays,)

    Notes
    -----
    Output column ``k * n_features + j`` is feature ``j`` delayed by
    ``delays[k]``. The transform is a time-series operation, so it depends on
    the order of the rows and on where a batch starts: transform whole runs at
    once, or pass ``run_lengths``.
    """

    def __init__(self, delays=(1, 2, 3, 4), run_lengths=None):
        self.delays = delays
        self.run_lengths = run_lengths

    def fit(self, X, y=None):
        """Validate ``X`` (n_samples, n_features) and the delays; returns self."""
        self.delays_ = check_delays(self.delays)
        validate_data(self, X, dtype=[np.float64, np.float32], reset=True)
        return self

    def transform(self, X, run_lengths=None):
        """Delayed features (n_samples, n_features * n_delays); ``run_lengths`` overrides the init one."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        lengths = self.run_lengths if run_lengths is None else run_lengths
        return delay_features(X, self.delays_, lengths)

    def fit_transform(self, X, y=None, run_lengths=None):
        """Fit on ``X`` then transform it with ``run_lengths`` (n_samples, n_features * n_delays)."""
        return self.fit(X, y).transform(X, run_lengths=run_lengths)

    def get_feature_names_out(self, input_features=None):
        """Names ``"{feature}_delay{d}"`` in the output column order (n_features * n_delays,)."""
        check_is_fitted(self)
        names = self._input_names(input_features)
        return np.asarray([f"{name}_delay{d}" for d in self.delays_ for name in names], dtype=object)

    def _input_names(self, input_features) -> np.ndarray:
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is None:
            if fitted is not None:
                return np.asarray(fitted, dtype=object)
            return np.asarray([f"x{j}" for j in range(self.n_features_in_)], dtype=object)
        names = np.asarray(input_features, dtype=object)
        if names.shape != (self.n_features_in_,):
            raise ValueError(
                f"input_features has shape {names.shape}; expected ({self.n_features_in_},), "
                "one name per input feature"
            )
        if fitted is not None and not np.array_equal(names, fitted):
            raise ValueError("input_features is not equal to feature_names_in_")
        return names

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
