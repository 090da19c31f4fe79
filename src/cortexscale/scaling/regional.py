"""The size law by region: the log-linear gain per decade ``g`` of ``ŝ = c + g·log10 N`` per named region of
targets (ROIs) and per target (a parcel, a voxel), each with a bootstrap interval.

A region's law is :func:`~cortexscale.scaling.fit_law` on its targets' rows (units and targets redrawn). A
target's gain is the least-squares slope over its (unit, model) rows, and its interval a bootstrap over units,
all targets at once: a draw's slopes are one product of its centred weights with the score matrix, so a
whole brain of 100k targets costs a few matrix products per thousand draws, a chunk of targets at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._resample import percentile_interval
from ._tables import TARGET, check_columns, positive_column
from .laws import fit_law

__all__ = ["region_gains", "target_gains"]

_CHUNK_FLOATS = 1 << 22


def target_gains(table: pd.DataFrame, *, score: str = "r", x: str = "params", groups: str = "subject",
                 n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Each target's gain per decade of ``x`` with its interval, from per-target rows of models of several sizes
    and two or more units (``groups``, drawn with replacement).

    Returns one row per target: ``target``, ``gain``, ``low``, ``high`` and ``excludes_zero`` (the interval
    lies on one side of 0); a target without a finite score on every row has NaN.
    """
    check_columns(table, {"score": score, "x": x, "groups": groups, "target": TARGET})
    scores = table.groupby([groups, x, TARGET], sort=True)[score].mean().unstack(TARGET)
    units = pd.factorize(scores.index.get_level_values(groups), sort=True)[0]
    logx = np.log10(positive_column(scores.index.to_frame(index=False), x))
    if len(np.unique(logx)) < 2:
        raise ValueError(f"the rows have one value of {x!r}; a gain per decade needs two or more model sizes")
    if units.max() < 1:
        raise ValueError(f"the rows have one level of {groups!r}; an interval over units needs two or more")
    values = scores.to_numpy(dtype=float)
    complete = np.isfinite(values).all(axis=0)
    filled = np.where(np.isfinite(values), values, 0.0)
    gain = _slopes(logx, np.ones((1, len(logx))), filled)[0]
    low, high = _intervals(logx, units, filled, gain, n_boot, level, np.random.default_rng(seed))
    out = pd.DataFrame({TARGET: scores.columns, "gain": gain, "low": low, "high": high})
    out.loc[~complete, ["gain", "low", "high"]] = np.nan
    return _marked(out)


def _slopes(logx: np.ndarray, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weighted least-squares slopes (B, T) of values (R, T) on logx (R,), one per row of weights (B, R)."""
    total = weights.sum(axis=1, keepdims=True)
    dx = logx[None, :] - (weights @ logx)[:, None] / total
    sxx = (weights * dx * dx).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sxx > 1e-12, (weights * dx / sxx) @ values, np.nan)


def _intervals(logx, units, values, gain, n_boot: int, level: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals (T,) of the slopes under a bootstrap of units (each draw's rows weighted by its
    unit's count), a chunk of targets at a time so the draws held stay near 4M floats whatever the targets."""
    low, high = np.full_like(gain, np.nan), np.full_like(gain, np.nan)
    if n_boot == 0:
        return low, high
    n_units = units.max() + 1
    weights = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot).astype(float)[:, units]
    chunk = max(1, _CHUNK_FLOATS // n_boot)
    for start in range(0, values.shape[1], chunk):
        part = slice(start, start + chunk)
        low[part], high[part] = percentile_interval(_slopes(logx, weights, values[:, part]), level, gain[part])
    return low, high


def region_gains(table: pd.DataFrame, regions: dict[str, list], *, score: str = "r", x: str = "params",
                 groups: str = "subject", n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                 blocks: pd.DataFrame | None = None, resample: str | None = None) -> pd.DataFrame:
    """The log-linear law of each region (name → its targets; None: every target) fitted on its rows, subjects
    and targets redrawn (or what ``resample`` says, with ``blocks``, as :func:`~cortexscale.scaling.fit_law`
    takes them): one row per region with ``region``, ``n_targets``, ``gain``, ``low``, ``high`` and
    ``excludes_zero``, as :func:`target_gains` gives them."""
    check_columns(table, {"score": score, "x": x, "groups": groups, "target": TARGET})
    rows = []
    for name, targets in regions.items():
        part = table if targets is None else table[table[TARGET].isin(list(targets))]
        if part.empty:
            raise ValueError(f"region {name!r} names no target of the table (e.g. {list(targets)[:3]})")
        fit = fit_law(part, score=score, params=x, law="loglinear", n_boot=n_boot, seed=seed, groups=groups,
                      level=level, progress=False, blocks=blocks, resample=resample)
        low, high = fit.intervals["gain_per_decade_params"]
        rows.append({"region": name, "n_targets": int(part[TARGET].nunique()),
                     "gain": fit.gain_per_decade["params"], "low": low, "high": high})
    return _marked(pd.DataFrame(rows))


def _marked(gains: pd.DataFrame) -> pd.DataFrame:
    """``gains`` with ``excludes_zero``: whether each interval [low, high] leaves zero out."""
    return gains.assign(excludes_zero=(gains["low"] > 0) | (gains["high"] < 0))
