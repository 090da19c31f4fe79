"""Scores for encoding models: correlation, R^2, block-permutation p-values and FDR.

Every function takes numpy arrays or torch tensors (moved to the CPU) and
returns numpy. Targets are columns: ``y_true`` and ``y_pred`` are
(n_samples, n_targets), or (n_samples,) for a single target, in which case the
score is a float. Sums are accumulated in float64, a block of targets at a
time, so float32 inputs with many targets neither lose precision nor double
their memory footprint.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._validation import check_finite

__all__ = ["correlation_score", "r2_score", "permutation_test", "fdr_correction"]

_CHUNK = 4096
_METRICS = ("correlation", "r2")


def _to_numpy(a) -> np.ndarray:
    """Array view of ``a``; torch tensors are detached and moved to the CPU."""
    if hasattr(a, "detach"):
        a = a.detach().cpu()
        if str(a.dtype) == "torch.bfloat16":
            a = a.float()
        a = a.numpy()
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"expected a numeric array, got dtype {a.dtype}")
    return a


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate a (y_true, y_pred) pair; returns 2-D arrays and whether the input was 1-D."""
    y_true, y_pred = _to_numpy(y_true), _to_numpy(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; "
            "they must match (n_samples, n_targets)"
        )
    if y_true.ndim not in (1, 2):
        raise ValueError(f"y_true and y_pred must be 1-D or 2-D (n_samples, n_targets), got shape {y_true.shape}")
    if y_true.shape[0] < 2:
        raise ValueError(f"y_true of shape {y_true.shape} has {y_true.shape[0]} sample(s); at least 2 are needed")
    check_finite(y_true, "y_true")
    check_finite(y_pred, "y_pred")
    squeeze = y_true.ndim == 1
    if squeeze:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    return y_true, y_pred, squeeze


def _column_chunks(n_columns: int):
    for start in range(0, n_columns, _CHUNK):
        yield slice(start, min(start + _CHUNK, n_columns))


def _centered(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return a - a.mean(axis=0)


def _pearson(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of matching columns of two (n_samples, n_targets) arrays, without warnings.

    Returns ``(r, undefined)``: r is (n_targets,) float64 with NaN where either
    column is constant, and ``undefined`` is that boolean mask.
    """
    r = np.empty(a.shape[1])
    for cols in _column_chunks(a.shape[1]):
        ac, bc = _centered(a[:, cols]), _centered(b[:, cols])
        denom = np.sqrt(np.einsum("ij,ij->j", ac, ac) * np.einsum("ij,ij->j", bc, bc))
        num = np.einsum("ij,ij->j", ac, bc)
        r[cols] = np.divide(num, denom, out=np.full(num.shape, np.nan), where=denom > 0)
    undefined = (np.ptp(a, axis=0) == 0) | (np.ptp(b, axis=0) == 0) | np.isnan(r)
    r[undefined] = np.nan
    return np.clip(r, -1.0, 1.0), undefined


def _warn_undefined(undefined: np.ndarray, what: str) -> None:
    if undefined.any():
        first = np.flatnonzero(undefined)[:5].tolist()
        warnings.warn(
            f"{int(undefined.sum())} of {undefined.size} targets have {what} (first: {first}); they score NaN",
            UserWarning,
            stacklevel=3,
        )


def _finish(score: np.ndarray, squeeze: bool):
    return float(score[0]) if squeeze else score


def correlation_score(y_true, y_pred):
    """Pearson correlation between matching columns of ``y_true`` and ``y_pred``.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    r : ndarray of shape (n_targets,), or float for 1-D input
        NaN for targets where either side is constant, with one UserWarning
        that counts them.
    """
    y_true, y_pred, squeeze = _check_pair(y_true, y_pred)
    r, undefined = _pearson(y_true, y_pred)
    _warn_undefined(undefined, "a constant y_true or y_pred, so no correlation")
    return _finish(r, squeeze)


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R^2 per column without warnings; returns ``(r2, constant_y_true)``."""
    r2 = np.empty(y_true.shape[1])
    for cols in _column_chunks(y_true.shape[1]):
        t = y_true[:, cols].astype(np.float64)
        ss_res = ((t - y_pred[:, cols]) ** 2).sum(axis=0)
        ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
        r2[cols] = 1.0 - np.divide(ss_res, ss_tot, out=np.full(ss_res.shape, np.nan), where=ss_tot > 0)
    constant = (np.ptp(y_true, axis=0) == 0) | np.isnan(r2)
    r2[constant] = np.nan
    return r2, constant


def r2_score(y_true, y_pred):
    """Coefficient of determination per target, ``1 - SS_res / SS_tot``.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    r2 : ndarray of shape (n_targets,), or float for 1-D input
        NaN (not scikit-learn's 0 or 1) where ``y_true`` is constant, with
        one UserWarning that counts those targets.
    """
    y_true, y_pred, squeeze = _check_pair(y_true, y_pred)
    r2, constant = _r2(y_true, y_pred)
    _warn_undefined(constant, "a constant y_true, so no R^2")
    return _finish(r2, squeeze)


def _block_permutation_indices(n_samples: int, block_size: int, rng: np.random.Generator) -> np.ndarray:
    """Time indices (n_samples,) that reorder contiguous blocks of ``block_size`` samples.

    The last block holds the remainder when ``block_size`` does not divide
    ``n_samples``; samples keep their order inside each block.
    """
    starts = np.arange(0, n_samples, block_size)
    idx = (rng.permutation(starts)[:, None] + np.arange(block_size)).ravel()
    return idx[idx < n_samples]


def _check_permutation_args(n_samples: int, n_permutations, block_size, metric) -> None:
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    if not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    if -(-n_samples // block_size) < 2:
        raise ValueError(
            f"block_size={block_size} leaves fewer than 2 blocks in {n_samples} samples; nothing to permute"
        )


class _CrossStat:
    """The chosen metric as a function of the cross term sum_t y_true[t] * y_pred[idx[t]].

    Permuting the time axis of ``y_pred`` leaves its mean and power unchanged,
    so both metrics need only that cross term per permutation. ``y_pred`` is
    shifted by the mean of ``y_true`` (R^2) or its own mean (r) so the sums
    stay small and nothing cancels catastrophically.
    """

    def __init__(self, y_true: np.ndarray, y_pred: np.ndarray, metric: str):
        self.metric = metric
        y_true = y_true.astype(np.float64)
        self.t = y_true - y_true.mean(axis=0)
        ss_true = (self.t**2).sum(axis=0)
        shift = y_pred.mean(axis=0) if metric == "correlation" else y_true.mean(axis=0)
        self.p = y_pred.astype(np.float64) - shift
        ss_pred = (self.p**2).sum(axis=0)
        if metric == "correlation":
            self.scale = np.sqrt(ss_true * ss_pred)
        else:
            self.scale = ss_true
            self.const = ss_true + ss_pred

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        cross = np.einsum("ij,ij->j", self.t, self.p[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.metric == "correlation":
                return cross / self.scale
            return 1.0 - (self.const - 2.0 * cross) / self.scale


def _null_exceedances(y_true, y_pred, metric, n_permutations, block_size, seed) -> np.ndarray:
    """Per target, how many of ``n_permutations`` block-permuted scores reach the observed one.

    Every block of targets replays the same permutations (one ``seed``).
    """
    n_samples, n_targets = y_true.shape
    counts = np.zeros(n_targets, dtype=np.int64)
    for cols in _column_chunks(n_targets):
        stat = _CrossStat(y_true[:, cols], y_pred[:, cols], metric)
        observed = stat(np.arange(n_samples))
        threshold = observed - 1e-12 * np.abs(observed)
        rng = np.random.default_rng(seed)
        for _ in range(n_permutations):
            counts[cols] += stat(_block_permutation_indices(n_samples, block_size, rng)) >= threshold
    return counts


def permutation_test(
    y_true, y_pred, n_permutations=1000, block_size=10, random_state=None, metric="correlation"
):
    """One-sided block-permutation p-values of a score per target.

    The time axis of ``y_pred`` is cut into contiguous blocks of
    ``block_size`` samples (the last block holds any remainder) and the blocks
    are shuffled, so autocorrelation within a block survives in the null.
    ``p = (1 + #{null >= observed}) / (1 + n_permutations)``. Targets are
    scored together, one permutation at a time, so memory stays at a few
    copies of a block of targets.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets) or (n_samples,)
    n_permutations : int
    block_size : int
        Samples per block; 1 gives an ordinary permutation. Pick it at least
        as long as the response autocorrelation (for fMRI, ~10 TRs).
    random_state : int, numpy Generator or None
    metric : {"correlation", "r2"}

    Returns
    -------
    pvalues : ndarray of shape (n_targets,), or float for 1-D input
        NaN where the score is undefined (constant targets), with one warning.
    """
    y_true, y_pred, squeeze = _check_pair(y_true, y_pred)
    _check_permutation_args(y_true.shape[0], n_permutations, block_size, metric)
    seed = np.random.default_rng(random_state).integers(2**63)
    counts = _null_exceedances(y_true, y_pred, metric, n_permutations, block_size, seed)
    pvalues = (1.0 + counts) / (1.0 + n_permutations)
    undefined = (np.ptp(y_true, axis=0) == 0) | ((np.ptp(y_pred, axis=0) == 0) & (metric == "correlation"))
    pvalues[undefined] = np.nan
    _warn_undefined(undefined, f"a constant input, so no {metric} p-value")
    return _finish(pvalues, squeeze)


def fdr_correction(pvalues, alpha=0.05):
    """Benjamini-Hochberg false discovery rate control.

    Parameters
    ----------
    pvalues : array of any shape
        NaN entries (e.g. constant targets) are left out of the count of tests
        and stay NaN / not rejected.
    alpha : float in (0, 1)

    Returns
    -------
    rejected : bool ndarray, same shape as ``pvalues``
    qvalues : float ndarray, same shape as ``pvalues``
        BH-adjusted p-values; ``rejected`` is ``qvalues <= alpha``.
    """
    p = _to_numpy(pvalues).astype(np.float64)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    bad = np.argwhere(~np.isnan(p) & ((p < 0) | (p > 1)))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        raise ValueError(f"pvalues of shape {p.shape} must lie in [0, 1]; got {p[where]} at index {where}")
    flat = p.ravel()
    valid = np.flatnonzero(~np.isnan(flat))
    q = np.full(flat.shape, np.nan)
    if valid.size:
        order = valid[np.argsort(flat[valid], kind="stable")]
        ranked = flat[order] * valid.size / np.arange(1, valid.size + 1)
        q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    q = q.reshape(p.shape)
    rejected = np.zeros(p.shape, dtype=bool)
    np.less_equal(q, alpha, out=rejected, where=~np.isnan(q))
    return rejected, q
