"""Put stimulus events on the scan grid."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["event_rate", "scan_edges"]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _finite_float(value, name: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(value)


def scan_edges(tr: float, n_trs: int, start: float = 0.0) -> np.ndarray:
    """Window edges (n_trs + 1,) ``start + k * tr`` for k = 0..n_trs, in seconds."""
    tr = _finite_float(tr, "tr", positive=True)
    n_trs = _positive_int(n_trs, "n_trs")
    return _finite_float(start, "start") + tr * np.arange(n_trs + 1)


def event_rate(onsets, tr: float, n_trs: int, start: float = 0.0) -> np.ndarray:
    """Number of events per scan: the count whose onset lies in ``[start + k*tr, start + (k+1)*tr)``.

    Window k opens at the acquisition time of scan k (``start + k * tr``, as in
    :attr:`cortexscale.data.AliceData.frame_times`) and runs to the next scan,
    closed on the left, open on the right: an onset exactly on an edge counts
    for the later scan. Onsets before ``start`` or at/after
    ``start + n_trs * tr`` fall outside every window and are not counted. No
    haemodynamic response is applied; add FIR delays (e.g.
    :class:`cortexscale.encoding.Delayer`) to model the lag.

    Parameters
    ----------
    onsets : array-like (n_events,)
        Event times in seconds, in any order, on the same clock as ``start``.
    tr : float
        Seconds between scans (> 0).
    n_trs : int
        Number of scans (>= 1).
    start : float, default 0.0
        Time of the first scan.

    Returns
    -------
    counts : float64 array (n_trs,)
        Events per window; ``counts.sum()`` is the number of onsets inside
        ``[start, start + n_trs * tr)``.
    """
    onsets = np.asarray(onsets)
    if onsets.ndim != 1 or not (np.issubdtype(onsets.dtype, np.number) and onsets.dtype != bool):
        raise ValueError(f"onsets must be a 1-D numeric array of times, got shape {onsets.shape} ({onsets.dtype})")
    onsets = onsets.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(onsets))
    if bad.size:
        raise ValueError(f"onsets of shape {onsets.shape} has a non-finite value at index {bad[0]}: {onsets[bad[0]]}")
    edges = scan_edges(tr, n_trs, start)
    window = np.searchsorted(edges, onsets, side="right") - 1
    inside = (window >= 0) & (window < n_trs)
    return np.bincount(window[inside], minlength=n_trs).astype(np.float64)
