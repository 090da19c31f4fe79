"""Paired effect sizes of one factor of a sweep (precision, AugReg level, transfer; hidden size, layers, data).

Rows are paired on ``pairs_by``: two rows are comparable when they agree on those columns (the other axes of
the sweep) and differ only in ``factor``. Every *unit* (a level of ``groups``, a subject) gets one statistic:

* :func:`effect_summary`, for each level of a categorical factor: the mean over pairs of
  ``score(level) − score(baseline)``;
* :func:`slope_summary`, for a numeric factor: the least-squares slope of the score on ``log10(factor)``
  within pairs (each pair group demeaned), i.e. the gain per decade.

A point's score within a unit is the mean over its targets. The effect is the mean of the units' statistics;
its interval is a bootstrap over units and, within units, targets (each statistic recomputed); its p-value a
paired permutation test flipping the sign of each unit's statistic. With ``groups=None`` the units are the
pair groups themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._blocks import resampling
from ._resample import percentile_interval, resampled_rows, sign_flip_pvalue
from ._tables import TARGET, Panel, block_means, build_panel, check_columns, positive_column

__all__ = ["effect_summary", "slope_summary"]

_PAIR = "__pair__"


def _panel(table, factor: str, score: str, pairs_by, groups, blocks=None, resample=None
           ) -> tuple[Panel, np.ndarray, tuple[str, str]]:
    """The panel of points (pairs_by + factor) per unit, each point's pair-group index (P,), and what its
    bootstrap draws (the ``by`` and ``metric`` of :func:`~cortexscale.scaling._resample.resampled_rows`)."""
    pairs_by = [pairs_by] if isinstance(pairs_by, str) else list(pairs_by)
    check_columns(table, {"score": score, "factor": factor, "groups": groups,
                          **{f"pairs_by[{i}]": c for i, c in enumerate(pairs_by)}})
    if factor in pairs_by:
        raise ValueError(f"factor {factor!r} cannot also be in pairs_by")
    table = table[table[factor].notna()]
    if table.empty:
        raise ValueError(f"column {factor!r} (factor=) has no values")
    columns = pairs_by + [factor, score] + [c for c in (groups, TARGET) if c is not None and c in table.columns]
    work = table[list(dict.fromkeys(columns))].copy()
    by, metric, stats = resampling(table, score, groups or _PAIR, blocks, resample)  # pairs are units without groups
    if groups is None:
        if not pairs_by:
            raise ValueError("with groups=None the units are the pairs_by groups; pass pairs_by= columns")
        work[_PAIR] = work.groupby(pairs_by, dropna=False).ngroup()
        panel = build_panel(work, score, [_PAIR, factor], _PAIR, stats)
        return panel, panel.points[_PAIR].to_numpy(), (by, metric)
    panel = build_panel(work, score, pairs_by + [factor], groups, stats)
    pair = panel.points.groupby(pairs_by, dropna=False).ngroup().to_numpy() if pairs_by else np.zeros(
        len(panel.points), dtype=int)
    return panel, pair, (by, metric)


def _contrast_weights(points: np.ndarray, pair: np.ndarray, is_level: np.ndarray, is_base: np.ndarray,
                      finite: np.ndarray) -> tuple[np.ndarray, int]:
    """Weights (n,) of a unit's points so that ``weights @ scores`` is the mean paired difference; pairs used."""
    level_pairs = set(pair[points[is_level[points] & finite]])
    base_pairs = set(pair[points[is_base[points] & finite]])
    shared = np.array(sorted(level_pairs & base_pairs))
    weights = np.zeros(len(points))
    if len(shared):
        in_shared = np.isin(pair[points], shared) & finite
        weights[in_shared & is_level[points]] = 1.0 / len(shared)
        weights[in_shared & is_base[points]] = -1.0 / len(shared)
    return weights, len(shared)


def _slope_weights(points: np.ndarray, pair: np.ndarray, x: np.ndarray, finite: np.ndarray
                   ) -> tuple[np.ndarray, int]:
    """Weights (n,) so that ``weights @ scores`` is the within-pair least-squares slope on x; pairs used."""
    groups = pair[points][finite]
    xs = x[points][finite]
    inverse = np.unique(groups, return_inverse=True)[1]
    means = np.bincount(inverse, weights=xs) / np.bincount(inverse)
    dx = xs - means[inverse]
    weights = np.zeros(len(points))
    sxx = float(dx @ dx)
    if sxx <= 1e-12:
        return weights, 0
    weights[finite] = dx / sxx
    varied = np.bincount(inverse, weights=np.abs(dx)) > 0
    return weights, int(varied.sum())


def _summarise(panel: Panel, weights: list, n_pairs: list, n_boot: int, n_perm: int, rng, level: float,
               draw: tuple[str, str]) -> dict:
    """Effect, bootstrap interval and sign-flip p-value of the units' statistics ``weights[u] @ scores_u``."""
    used = [u for u, k in enumerate(n_pairs) if k > 0]
    if not used:
        return {}
    sub = Panel(panel.points, panel.units[used], tuple(panel.blocks[u] for u in used))
    w = [weights[u] for u in used]
    observed = np.array([wu @ np.nan_to_num(block_means(b.values)) for wu, b in zip(w, sub.blocks)])
    stats = []
    bounds = np.cumsum([0] + [len(b.points) for b in sub.blocks])
    for scores, multiplicity in resampled_rows(sub, n_boot, rng, *draw):
        per_unit = np.stack([w[u] @ np.nan_to_num(scores[bounds[u] : bounds[u + 1]]) for u in range(len(w))])
        unit_weight = multiplicity[bounds[:-1]]
        stats.append((per_unit * unit_weight).sum(0) / unit_weight.sum(0))
    effect = observed.mean()
    low, high = percentile_interval(np.concatenate(stats), level, effect) if stats else (np.nan, np.nan)
    return {"effect": float(effect), "low": float(low), "high": float(high),
            "p_value": sign_flip_pvalue(observed, n_perm, rng), "n_units": len(used),
            "n_pairs": int(sum(n_pairs[u] for u in used))}


def _check_counts(n_boot, n_perm, level) -> None:
    for name, value in (("n_boot", n_boot), ("n_perm", n_perm)):
        if not (isinstance(value, (int, np.integer)) and value >= 0):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def effect_summary(
    table: pd.DataFrame,
    factor: str,
    *,
    score: str,
    baseline,
    pairs_by,
    groups: str | None = "subject",
    n_boot: int = 1000,
    n_perm: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    blocks: pd.DataFrame | None = None,
    resample: str | None = None,
) -> pd.DataFrame:
    """Effect of each level of a categorical ``factor`` against ``baseline``, paired on ``pairs_by``.

    Parameters
    ----------
    table : DataFrame
        Per-target or per-fit rows. Rows whose factor is missing are left out.
    factor : str
        Column of the factor (``precision``, ``augreg``, ``transfer``, ...).
    baseline
        The factor's reference value (``"fp32"``, ``False``, ...).
    pairs_by : str or list of str
        Columns on which a level's row and its baseline row must agree (``["model", "layer"]``).
    groups : str or None
        Column of the units (subjects) of the bootstrap and the permutation test.
    blocks, resample
        Blocks of test TRs for the bootstrap to redraw, as :func:`~cortexscale.scaling.fit_law` takes them;
        the permutation test flips units' signs whatever the bootstrap draws.

    Returns
    -------
    DataFrame, one row per level other than the baseline: ``factor, level, baseline, effect, low, high,
    p_value, n_units, n_pairs``. ``effect`` is the mean over units of each unit's mean paired difference
    ``score(level) − score(baseline)``; ``low, high`` its bootstrap percentile interval at ``level``;
    ``p_value`` two-sided, from sign flips of the units' differences. A level with no complete pair raises.
    """
    _check_counts(n_boot, n_perm, level)
    panel, pair, draw = _panel(table, factor, score, pairs_by, groups, blocks, resample)
    values = panel.points[factor]
    if not (values == baseline).any():
        raise ValueError(f"baseline {baseline!r} is not a value of {factor!r}; its values are "
                         f"{sorted(values.unique().tolist(), key=str)}")
    rng = np.random.default_rng(seed)
    is_base = (values == baseline).to_numpy()
    rows = []
    for level_value in sorted(values[~is_base].unique().tolist(), key=str):
        is_level = (values == level_value).to_numpy()
        parts = [_contrast_weights(b.points, pair, is_level, is_base, np.isfinite(block_means(b.values)))
                 for b in panel.blocks]
        summary = _summarise(panel, [p[0] for p in parts], [p[1] for p in parts], n_boot, n_perm, rng, level,
                             draw)
        if not summary:
            raise ValueError(f"no rows of {factor}={level_value!r} pair with {factor}={baseline!r} on "
                             f"{pairs_by!r}")
        rows.append({"factor": factor, "level": level_value, "baseline": baseline, **summary})
    return pd.DataFrame(rows)


def slope_summary(
    table: pd.DataFrame,
    factor: str,
    *,
    score: str,
    pairs_by,
    groups: str | None = "subject",
    n_boot: int = 1000,
    n_perm: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    blocks: pd.DataFrame | None = None,
    resample: str | None = None,
) -> pd.DataFrame:
    """Gain in score per decade of a numeric, positive ``factor`` (hidden size, layers, data), within pairs.

    Each unit's statistic is the least-squares slope of its points' scores on ``log10(factor)`` after
    removing each ``pairs_by`` group's means, ``Σ (x − x̄_g)(s − s̄_g) / Σ (x − x̄_g)²``. Returns a one-row
    DataFrame: ``factor, effect, low, high, p_value, n_units, n_pairs`` (pair groups with more than one value
    of the factor), as :func:`effect_summary`.
    """
    _check_counts(n_boot, n_perm, level)
    panel, pair, draw = _panel(table, factor, score, pairs_by, groups, blocks, resample)
    x = np.log10(positive_column(panel.points, factor))
    parts = [_slope_weights(b.points, pair, x, np.isfinite(block_means(b.values))) for b in panel.blocks]
    summary = _summarise(panel, [p[0] for p in parts], [p[1] for p in parts], n_boot, n_perm,
                         np.random.default_rng(seed), level, draw)
    if not summary:
        raise ValueError(f"no {pairs_by!r} group has more than one value of {factor!r}; no slope to estimate")
    return pd.DataFrame([{"factor": factor, **summary}])
