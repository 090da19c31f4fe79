"""Bootstrap draws over a :class:`~cortexscale.scaling._tables.Panel`, percentile intervals, sign-flip tests.

A resample is a pair of arrays over the panel's rows (:func:`~cortexscale.scaling._tables.panel_rows` order):
each row's score recomputed from targets drawn with replacement within its unit, and its weight, the number of
times its unit was drawn. Drawing every row with replacement (``by="rows"``) is the plain case bootstrap. Where
the panel holds its rows' statistics of blocks of test TRs, a resample can redraw those blocks too, with or
without the units and targets (a block bootstrap over the stimulus' time).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from itertools import product

import numpy as np

from ..encoding import STATISTICS, statistics_score
from ._tables import Panel, block_means

__all__ = ["BY", "percentile_interval", "resampled_rows", "sign_flip_pvalue"]

BY = ("units", "rows", "blocks", "units+blocks")
"""What a bootstrap draws (:func:`resampled_rows`)."""

_CHUNK_FLOATS = 1 << 22


def _counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """Multiplicities (n_boot, n) of ``n`` items drawn ``n`` times with replacement, per resample."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def resampled_rows(panel: Panel, n_boot: int, rng: np.random.Generator, by: str = "units",
                   metric: str = "correlation") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Bootstrap resamples in chunks: scores (R, b) and weights (R, b), the b of all chunks summing to n_boot.

    ``by="units"`` draws units, and targets within each unit; ``by="rows"`` draws rows, scores unchanged;
    ``by="blocks"`` draws blocks of test TRs (the panel's ``timed``), every row's score recomputed by
    ``metric`` from the drawn blocks' statistics, units and targets kept; ``by="units+blocks"`` draws all
    three. Units with as many blocks share each draw of blocks (one test stimulus, seen by every subject).
    """
    if by not in BY:
        raise ValueError(f"by must be one of {BY}, got {by!r}")
    if n_boot == 0:
        return
    if by.endswith("blocks"):
        yield from _block_resamples(panel, n_boot, rng, by == "units+blocks", metric)
        return
    rows = sum(len(b.points) for b in panel.blocks)
    if by == "rows":
        scores = np.concatenate([block_means(b.values) for b in panel.blocks])
        weights = _counts(rng, rows, n_boot).T
        yield np.repeat(scores[:, None], n_boot, axis=1), weights
        return
    unit_weights = _counts(rng, len(panel.blocks), n_boot)
    row_unit = np.concatenate([np.full(len(b.points), u) for u, b in enumerate(panel.blocks)])
    widest = max(b.values.shape[1] for b in panel.blocks)
    chunk = int(np.clip(_CHUNK_FLOATS // widest, 1, n_boot))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        scores = np.concatenate([block_means(block.values, _counts(rng, block.values.shape[1], b).T)
                                 for block in panel.blocks])
        yield scores, unit_weights[start : start + b, row_unit].T


def _unit_block_scores(block, counts: np.ndarray, target_counts: np.ndarray | None, metric: str) -> np.ndarray:
    """One unit's point scores (n, b) from its rows' statistics summed over drawn blocks (counts (K, b)), the
    mean over targets weighted by ``target_counts`` (T, b) (None: each once), NaN-aware."""
    timed = block.timed
    m, _, k = timed.stats.shape
    summed = (timed.stats.reshape(m * len(STATISTICS), k) @ counts).reshape(m, len(STATISTICS), -1)
    scores = statistics_score(summed.transpose(1, 0, 2), metric)  # (m, b)
    cells = block.values.size
    finite = np.isfinite(scores)
    total, count = np.zeros((cells, scores.shape[1])), np.zeros((cells, scores.shape[1]))
    np.add.at(total, timed.cells, np.where(finite, scores, 0.0))
    np.add.at(count, timed.cells, finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (total / count).reshape(*block.values.shape, -1)  # (n, T, b): duplicate rows averaged
    present = np.isfinite(values)
    weights = np.ones(values.shape[1:]) if target_counts is None else target_counts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("ntb,tb->nb", np.where(present, values, 0.0), weights) / np.einsum(
            "ntb,tb->nb", present.astype(float), weights)


def _block_resamples(panel: Panel, n_boot: int, rng, with_units: bool, metric: str):
    if any(b.timed is None for b in panel.blocks):
        raise ValueError("a block bootstrap needs each row's test-TR blocks (pass blocks=)")
    n_blocks = [b.timed.stats.shape[2] for b in panel.blocks]
    shared = len(set(n_blocks)) == 1
    row_unit = np.concatenate([np.full(len(b.points), u) for u, b in enumerate(panel.blocks)])
    unit_weights = _counts(rng, len(panel.blocks), n_boot) if with_units else np.ones((n_boot, len(panel.blocks)))
    widest = max(b.timed.stats.shape[0] * len(STATISTICS) + b.values.size for b in panel.blocks)
    chunk = int(np.clip(_CHUNK_FLOATS // widest, 1, n_boot))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        common = _counts(rng, n_blocks[0], b).T if shared else None
        scores = [_unit_block_scores(block, common if shared else _counts(rng, k, b).T,
                                     _counts(rng, block.values.shape[1], b).T if with_units else None, metric)
                  for block, k in zip(panel.blocks, n_blocks)]
        yield np.concatenate(scores), unit_weights[start : start + b, row_unit].T


def percentile_interval(draws: np.ndarray, level: float, estimate=None) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval at ``level`` of draws (B, …) over axis 0, ignoring NaN; NaN where all are NaN.

    ``estimate`` (…), the statistic on the data itself, is always inside the interval: where the draws are
    degenerate (a constant effect, every resample alike) their percentiles can miss it by a rounding error,
    so the bounds are widened to reach it.
    """
    tail = 50.0 * (1.0 - level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [tail, 100.0 - tail], axis=0)
    if estimate is not None:  # np.minimum keeps a NaN bound NaN (no draws), and a NaN estimate moves nothing
        estimate = np.asarray(estimate, dtype=float)
        low = np.where(np.isnan(estimate), low, np.minimum(low, estimate))
        high = np.where(np.isnan(estimate), high, np.maximum(high, estimate))
    return low, high


def sign_flip_pvalue(stats: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of a zero mean for paired per-unit statistics (U,), by flipping their signs.

    Every one of the ``2^U`` sign patterns is used when there are at most ``n_perm``; otherwise ``n_perm``
    random patterns, with the observed one counted, ``(1 + hits) / (1 + n_perm)``; NaN for ``n_perm=0``.
    """
    if n_perm == 0:
        return float("nan")
    stats = np.asarray(stats, dtype=float)
    observed = abs(stats.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(stats).max()))
    if 2 ** len(stats) <= n_perm:
        signs = np.array(list(product((1.0, -1.0), repeat=len(stats))))
        return float(np.mean(np.abs(signs @ stats) / len(stats) >= observed - tolerance))
    signs = rng.choice((1.0, -1.0), size=(n_perm, len(stats)))
    hits = int(np.sum(np.abs(signs @ stats) / len(stats) >= observed - tolerance))
    return (1 + hits) / (1 + n_perm)
