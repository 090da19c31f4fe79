"""Event features onto the fMRI TR grid: Lanczos resampling (as the Huth lab's ``lanczosinterp2D``), or sum,
mean and boxcar pooling per TR."""

from __future__ import annotations

import warnings

import numpy as np

from ..data.timing import scan_edges

__all__ = ["ALIGN_METHODS", "align_to_trs", "lanczos_kernel"]

ALIGN_METHODS = ("lanczos", "sum", "mean", "boxcar")
def lanczos_kernel(t, cutoff: float, window: int = 3) -> np.ndarray:
    """Lanczos kernel (same shape as ``t``) for a low-pass at ``cutoff`` Hz.

    ``L(t) = sinc(2 cutoff t) * sinc(2 cutoff t / window)`` for ``|2 cutoff t| <= window``, else 0
    (``sinc(x) = sin(pi x) / (pi x)``): 1 at t = 0 and 0 at every nonzero multiple of ``1 / (2 cutoff)``.
    With ``cutoff = 1 / (2 tr)``, the TR's Nyquist rate, the zeros fall on the other TRs.
    """
    x = 2.0 * float(cutoff) * np.asarray(t, dtype=np.float64)
    return np.where(np.abs(x) <= window, np.sinc(x) * np.sinc(x / window), 0.0)


def _check_features_times(features, times):
    if isinstance(features, dict):
        raise ValueError(f"features must be one array (n_events, d), got a dict with keys {list(features)[:5]}: "
                         "extract_features returns {layer: array}; align one layer at a time, e.g. features[layer]")
    if not isinstance(features, np.ndarray) and not np.isscalar(features) and np.asarray(features).dtype == object:
        raise ValueError(f"features must be a numeric array (n_events, d), got {type(features).__name__}")
    features = np.asarray(features)
    features = features[:, None] if features.ndim == 1 else features
    times = np.asarray(times, dtype=np.float64)
    if features.ndim != 2 or times.ndim != 1 or len(times) != len(features):
        raise ValueError(
            f"features {features.shape} and times {times.shape} must be (n_events, d) and (n_events,)"
        )
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        raise ValueError(f"times[{bad[0]}] is {times[bad[0]]}: event times must be finite")
    if not np.issubdtype(features.dtype, np.number):
        raise ValueError(f"features must be numeric, got dtype {features.dtype} ({type(features).__name__})")
    if not np.issubdtype(features.dtype, np.floating):
        features = features.astype(np.float64)
    return features, times


_LONGEST_TR = 60.0
"""Seconds above which a TR is taken for a value in milliseconds (fMRI TRs are a few seconds)."""


def _check_scan_coverage(times: np.ndarray, tr: float, n_trs: int) -> None:
    """Warn about events outside the scan ``[0, n_trs * tr)`` and about a TR that looks like milliseconds;
    raise when no event falls inside."""
    end = n_trs * tr
    units = "times and tr must both be in seconds, with TR k acquired at k * tr (shift events by the first-scan time)"
    if tr > _LONGEST_TR:
        warnings.warn(f"tr={tr:g} s is longer than any fMRI TR; is it in milliseconds? {units}", UserWarning,
                      stacklevel=3)
    outside = np.flatnonzero((times < 0) | (times >= end))
    if len(outside) == len(times):
        raise ValueError(f"no event falls inside the scan [0, {end:g}) s ({n_trs} TRs of {tr:g} s): event times run "
                         f"from {times.min():g} to {times.max():g} s; {units}")
    if len(outside):
        first = outside[0]
        warnings.warn(f"{len(outside)} of {len(times)} events fall outside the scan [0, {end:g}) s (first: event "
                      f"{first} at {times[first]:g} s); they reach the TRs only through the Lanczos kernel's tails, "
                      f"or not at all. {units}", UserWarning, stacklevel=3)


def _check_durations(durations, times: np.ndarray) -> np.ndarray:
    if durations is None:
        raise ValueError("method='boxcar' needs the events' durations (durations=)")
    durations = np.asarray(durations, dtype=np.float64)
    if durations.shape not in ((), times.shape):
        raise ValueError(f"durations of shape {durations.shape} must be a scalar or match times {times.shape}")
    durations = np.broadcast_to(durations, times.shape)
    bad = np.flatnonzero(~(np.isfinite(durations) & (durations >= 0)))
    if bad.size:
        raise ValueError(f"durations[{bad[0]}] is {durations[bad[0]]}: durations must be finite and >= 0")
    return durations


def _window_weights(times, durations, lo, hi, method: str) -> np.ndarray:
    """Weights (n_rows, n_events) of events for TR windows ``[lo, hi)`` (n_rows, 1)."""
    inside = ((times >= lo) & (times < hi)).astype(np.float64)
    if method != "boxcar":
        return inside
    overlap = np.clip(np.minimum(hi, times + durations) - np.maximum(lo, times), 0.0, None)
    fraction = overlap / np.where(durations > 0, durations, 1.0)
    return np.where(durations > 0, fraction, inside)


def _column_ranges(sorted_times, durations, tr: float, n_trs: int, method: str, window: int, cutoff_mult: float):
    """Per TR, the half-open range (n_trs,), (n_trs,) of time-sorted events that can have a nonzero weight."""
    starts = tr * np.arange(n_trs)
    if method == "lanczos":
        reach = window * tr / cutoff_mult
        lo, hi, side = starts - reach, starts + reach, "right"
    else:
        lo = starts - (durations.max(initial=0.0) if method == "boxcar" else 0.0)
        hi, side = starts + tr, "left"
    return np.searchsorted(sorted_times, lo, side="left"), np.searchsorted(sorted_times, hi, side=side)


def _sparse_weights(times, durations, tr: float, n_trs: int, method: str, window: int, cutoff_mult: float):
    """Weights (n_trs, n_events), sparse CSR, of time-sorted events: each TR against only the events that can
    reach it, so a long stimulus costs time and memory linear in its length."""
    from scipy import sparse

    first, last = _column_ranges(times, durations, tr, n_trs, method, window, cutoff_mult)
    counts = last - first
    rows = np.repeat(np.arange(n_trs), counts)
    cols = np.repeat(first - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    starts = rows * tr
    if method == "lanczos":
        values = lanczos_kernel(starts - times[cols], cutoff_mult / (2.0 * tr), window)
    else:
        values = _window_weights(times[cols], None if durations is None else durations[cols], starts,
                                 starts + tr, method)
    return sparse.csr_matrix((values, (rows, cols)), shape=(n_trs, len(times)))


def align_to_trs(features, times, tr: float, n_trs: int, method: str = "lanczos", window: int = 3,
                 cutoff_mult: float = 1.0, durations=None) -> np.ndarray:
    """Resample event features onto TRs.

    Parameters
    ----------
    features : array (n_events, d) or (n_events,)
        One row per event (word, frame, ...).
    times : array (n_events,)
        Event times in seconds on a clock where TR k is acquired at ``k * tr`` (shift a dataset's events by
        its first-scan time first, see :func:`cortexscale.data.shift_events`). Events outside the scan
        ``[0, n_trs * tr)`` are counted in a warning that names the first; none inside is an error, as is a
        dict of layers (pass one layer's array). A ``tr`` over 60 s is taken for milliseconds, with a warning.
    tr : float
        Seconds between TRs.
    n_trs : int
        Number of TRs (>= 1).
    method : {"lanczos", "sum", "mean", "boxcar"}
        ``"lanczos"``: TR k gets ``sum_j L(k tr - times[j]) features[j]``, L the :func:`lanczos_kernel` with
        cutoff ``cutoff_mult / (2 tr)`` and ``window`` lobes (Huth lab's ``lanczosinterp2D``; a sum, so the
        output scales with the event rate). ``"sum"`` / ``"mean"``: sum / mean of the events with time in
        ``[k tr, (k + 1) tr)`` (mean 0 where none). ``"boxcar"``: each event weighted by the fraction of
        ``[times[j], times[j] + durations[j])`` inside that window (a zero-duration event counts fully in
        its window).
    durations : array (n_events,) or float, optional
        Event durations in seconds; required for ``"boxcar"``.

    Returns
    -------
    array (n_trs, d)
        Same dtype as a floating ``features``; float64 otherwise.
    """
    if method not in ALIGN_METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {ALIGN_METHODS}")
    features, times = _check_features_times(features, times)
    scan_edges(tr, n_trs)
    if len(times):
        _check_scan_coverage(times, float(tr), int(n_trs))
    durations = _check_durations(durations, times) if method == "boxcar" else None
    if method == "lanczos" and not (int(window) == window >= 1 and np.isfinite(cutoff_mult) and cutoff_mult > 0):
        raise ValueError(f"window must be an integer >= 1 and cutoff_mult > 0, got {window!r} and {cutoff_mult!r}")
    order = np.argsort(times, kind="stable")
    times, data = times[order], features[order].astype(np.float64, copy=False)
    durations = None if durations is None else durations[order]
    weights = _sparse_weights(times, durations, float(tr), int(n_trs), method, window, cutoff_mult)
    out = np.asarray(weights @ data)
    if method == "mean":
        counts = np.asarray(weights.sum(1))
        out = np.divide(out, counts, out=np.zeros_like(out), where=counts > 0)
    return out.astype(features.dtype, copy=False)
