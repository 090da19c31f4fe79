"""Per-run preprocessing of time series: z-scoring, trimming, and run/group labels.

fMRI data come in runs (one per story or scan session). Each run is normalised
on its own, and its first and last samples are commonly dropped: the first
because the signal is still settling and the story's onset transient dominates,
the last because the haemodynamic response to the end of the story runs past
the scan. The Huth-lab defaults trim 50 samples (TRs) at the start and 5 at
the end of every run.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_finite, check_run_lengths

__all__ = ["groups_to_runs", "runs_to_groups", "trim_runs", "zscore_runs"]

TRIM_START = 50
TRIM_END = 5


def _as_samples(X, name: str = "X") -> np.ndarray:
    """``X`` as a float array (n_samples, ...) with at least one sample: float32 stays float32, anything else
    becomes float64."""
    X = np.asarray(X)
    X = X.astype(X.dtype if X.dtype in (np.float32, np.float64) else np.float64, copy=False)
    if X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"{name} must have at least one sample along axis 0, got shape {X.shape}")
    check_finite(X, name)
    return X


def _bounds(lengths: np.ndarray) -> list[tuple[int, int]]:
    edges = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    return list(zip(edges[:-1], edges[1:]))


def zscore_runs(X, run_lengths=None, copy: bool = True) -> np.ndarray:
    """Z-score every column within every run.

    Parameters
    ----------
    X : array (n_samples,) or (n_samples, n_columns)
    run_lengths : sequence of int (n_runs,), optional
        Lengths of consecutive runs that tile ``n_samples``; ``None`` means one run.
    copy : bool
        False z-scores a float ``X`` in place (no copy of it is made; temporaries stay one run's size).

    Returns
    -------
    array, same shape as ``X``, float32 for float32 input, else float64
        Zero mean and unit (population, ``ddof=0``) standard deviation per run
        and column (the statistics taken in float64). A column that is constant
        within a run becomes 0 there.
    """
    X = _as_samples(X)
    lengths = check_run_lengths(run_lengths, X.shape[0])
    out = X.copy() if copy or not X.flags.writeable else X
    for start, stop in _bounds(lengths):
        run = out[start:stop]
        mean, std = run.mean(axis=0, dtype=np.float64), run.std(axis=0, dtype=np.float64)
        varies = (np.ptp(run, axis=0) > 0) & (std > 0)
        run -= mean.astype(run.dtype)
        run /= np.where(varies, std, 1.0).astype(run.dtype)
        run[..., ~varies] = 0.0
    return out


def trim_runs(X, run_lengths=None, start: int = TRIM_START, end: int = TRIM_END):
    """Drop the first ``start`` and last ``end`` samples of every run.

    Parameters
    ----------
    X : array (n_samples, ...)
    run_lengths : sequence of int (n_runs,), optional
        ``None`` means one run.
    start, end : int, default 50 and 5 (Huth-lab defaults, in samples/TRs)

    Returns
    -------
    trimmed : array (n_samples - n_runs * (start + end), ...)
    new_run_lengths : int array (n_runs,)
    """
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError(f"X must have a sample axis, got shape {X.shape}")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    lengths = check_run_lengths(run_lengths, X.shape[0])
    short = np.flatnonzero(lengths <= start + end)
    if short.size:
        i = int(short[0])
        raise ValueError(
            f"run {i} has {lengths[i]} samples, too short to trim start={start} and end={end} "
            f"(needs more than {start + end}); run_lengths={lengths.tolist()}"
        )
    keep = np.concatenate([np.arange(a + start, b - end) for a, b in _bounds(lengths)])
    return X[keep], lengths - (start + end)


def runs_to_groups(run_lengths) -> np.ndarray:
    """Run index per sample (n_samples,) from run lengths (n_runs,), e.g. [2, 3] -> [0, 0, 1, 1, 1]."""
    as_array = np.asarray(run_lengths)
    total = int(as_array.sum()) if np.issubdtype(as_array.dtype, np.integer) else -1
    lengths = check_run_lengths(run_lengths, total)
    return np.repeat(np.arange(len(lengths)), lengths)


def groups_to_runs(groups) -> np.ndarray:
    """Run lengths (n_runs,) from per-sample labels (n_samples,) in which each run is contiguous.

    Labels keep their order of first appearance: [7, 7, 3, 3, 3] -> [2, 3].
    Raises ``ValueError`` if a label comes back after another one started.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.size == 0:
        raise ValueError(f"groups must be a non-empty 1-D array (n_samples,), got shape {groups.shape}")
    change = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    starts = np.concatenate([[0], change])
    labels = groups[starts]
    _, first, counts = np.unique(labels, return_index=True, return_counts=True)
    if (counts > 1).any():
        repeated = np.sort(first[counts > 1])[0]
        label = labels[repeated].item()
        again = starts[np.flatnonzero(labels == label)[1]]
        raise ValueError(
            f"groups are not contiguous: label {label!r} starts at index {starts[repeated]} and "
            f"appears again at index {again} after another label"
        )
    return np.diff(np.concatenate([starts, [groups.size]]))
