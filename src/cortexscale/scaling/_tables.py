"""From a results table to arrays: checks that name the column at fault, and per-unit score panels.

A *point* is one combination of key columns (for a scaling law, its axes: parameters, data). A *unit* is
one level of a grouping column (a subject). A :class:`Panel` holds, for every unit, the score of each of
its points on each of its targets, so that a bootstrap can redraw units and, within a unit, targets:
the score of a point is the mean over (drawn) targets of its rows (NaN scores are left out of the mean).
Tables without a ``target`` column count as one target per unit: duplicate rows are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BLOCK",
    "TARGET",
    "Panel",
    "block_means",
    "build_panel",
    "check_columns",
    "panel_rows",
    "positive_column",
    "point_scores",
]

TARGET = "target"
"""Column naming the target (voxel, parcel) of per-target rows."""
BLOCK = "block"
"""Column naming the block of test TRs (0, 1, ... in time) of a blocks table's rows."""


@dataclass(frozen=True)
class TimeBlocks:
    """One unit's rows as statistics of blocks of test TRs: the cell (local point × n_targets + target) of
    each row (m,) and its :data:`cortexscale.encoding.STATISTICS` per block (m, 6, K)."""

    cells: np.ndarray
    stats: np.ndarray


@dataclass(frozen=True)
class Block:
    """One unit's scores: point indices (n,) into :attr:`Panel.points` and values (n, n_targets), NaN where
    a target has no finite score at that point; with ``timed``, its rows' statistics of test-TR blocks."""

    points: np.ndarray
    values: np.ndarray
    timed: TimeBlocks | None = None


@dataclass(frozen=True)
class Panel:
    """Distinct points (a DataFrame of key columns, index 0..P-1), unit labels (U,) and one block per unit."""

    points: pd.DataFrame
    units: np.ndarray
    blocks: tuple[Block, ...]


def check_columns(table, columns: dict[str, str | None], what: str = "table") -> None:
    """Raise a ValueError naming each requested column (by the argument that asked for it) that is missing."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(table).__name__}")
    if table.empty:
        raise ValueError(f"{what} has no rows")
    missing = [f"{arg}={name!r}" for arg, name in columns.items() if name is not None and name not in table.columns]
    if missing:
        raise ValueError(f"{what} has no column for {', '.join(missing)}; its columns are {list(table.columns)}")


def positive_column(table: pd.DataFrame, column: str) -> np.ndarray:
    """The column as floats, refusing missing, non-finite or non-positive values with the count and an example."""
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"column {column!r} has {int(bad.sum())} missing or non-numeric values "
                         f"(e.g. {table[column].to_numpy()[bad][0]!r}); drop those rows first")
    if (values <= 0).any():
        raise ValueError(f"column {column!r} must be positive; {int((values <= 0).sum())} rows are not "
                         f"(e.g. {values[values <= 0][0]!r})")
    return values


def _numeric(table: pd.DataFrame, column: str) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(table[column])):
        raise ValueError(f"score column {column!r} is not numeric (dtype {table[column].dtype})")
    return table[column].to_numpy(dtype=float)


def _block(keys: np.ndarray, targets: np.ndarray, scores: np.ndarray, stats: np.ndarray | None) -> Block:
    points, local = np.unique(keys, return_inverse=True)
    target_codes = pd.factorize(targets, use_na_sentinel=False)[0]
    n_targets = int(target_codes.max()) + 1
    ok = np.isfinite(scores)
    cells = local * n_targets + target_codes
    size = len(points) * n_targets
    sums = np.bincount(cells[ok], weights=scores[ok], minlength=size)
    counts = np.bincount(cells[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / counts, np.nan).reshape(len(points), n_targets)
    if stats is not None:
        stats = stats[:, :, stats[:, 0, :].max(axis=0) > 0]  # the unit's own blocks (others pad to the longest)
        if not (stats[:, 0, :] == stats[:1, 0, :]).all():
            raise ValueError("the rows of one unit were scored on different test TRs (their blocks differ in "
                             "number or length): fit rows of one evaluation and one trim at a time")
    return Block(points, values, None if stats is None else TimeBlocks(cells, stats))


def build_panel(table: pd.DataFrame, score: str, keys: list[str], unit: str | None = None,
                stats: np.ndarray | None = None) -> Panel:
    """Scores of ``table`` by point (distinct values of ``keys``), unit (levels of ``unit``) and target.

    With ``unit=None`` the whole table is one unit and, whatever its targets, every point gets one value:
    the mean of its rows' finite scores. ``stats`` (n_rows, 6, K), each row's statistics of test-TR blocks
    (:func:`~cortexscale.scaling._blocks.row_statistics`), go with the rows into their units' blocks.
    """
    scores = _numeric(table, score)
    point_codes = table.groupby(keys, sort=True, dropna=False).ngroup().to_numpy()
    points = table.iloc[np.unique(point_codes, return_index=True)[1]][keys].reset_index(drop=True)
    if unit is None:
        unit_codes, units = np.zeros(len(table), dtype=int), np.array([None], dtype=object)
        targets = np.zeros(len(table), dtype=int)
    else:
        unit_codes, units = pd.factorize(table[unit], sort=True)
        units = np.asarray(units, dtype=object)
        targets = table[TARGET].to_numpy() if TARGET in table.columns else np.zeros(len(table), dtype=int)
    blocks = tuple(_block(point_codes[unit_codes == u], targets[unit_codes == u], scores[unit_codes == u],
                          None if stats is None else stats[unit_codes == u]) for u in range(len(units)))
    return Panel(points, units, blocks)


def block_means(values: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """Mean over targets of a block's values (n, T), NaN-aware: (n,), or (n, B) for target counts (T, B)."""
    finite = np.isfinite(values)
    filled = np.where(finite, values, 0.0)
    if counts is None:
        counts = np.ones((values.shape[1], 1))
        squeeze = True
    else:
        squeeze = False
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (filled @ counts) / (finite.astype(float) @ counts)
    return means[:, 0] if squeeze else means


def panel_rows(panel: Panel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (unit, point) row of the panel: unit index (R,), point index (R,) and score (R,)."""
    units = np.concatenate([np.full(len(b.points), u) for u, b in enumerate(panel.blocks)])
    points = np.concatenate([b.points for b in panel.blocks])
    scores = np.concatenate([block_means(b.values) for b in panel.blocks])
    return units, points, scores


def point_scores(panel: Panel) -> np.ndarray:
    """Score of each point (P,): the mean over units of the unit's score (NaN where no unit has one)."""
    units, points, scores = panel_rows(panel)
    ok = np.isfinite(scores)
    n = len(panel.points)
    total = np.bincount(points[ok], weights=scores[ok], minlength=n)
    count = np.bincount(points[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
