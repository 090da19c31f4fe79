"""Where in a model the brain is best predicted, against the model's size.

Each model's best layer, per unit (a subject), is the layer of highest mean score over targets; its *relative
depth* is ``layer / n_layers`` (0 the embeddings, 1 the last block). A model's depth is the mean over units of
its units' depths, and the trend is the least-squares line ``depth = c + g·log10 N`` over models: ``g`` is the
change in relative depth per decade of parameters (Hong et al. 2024 saw the best layer move earlier as models
grow, a negative ``g``). The interval of ``g`` and of each model's depth is a bootstrap over units and, within
units, targets: each draw finds every best layer again (on drawn blocks of test TRs too, given them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._blocks import RESAMPLE_NAMES, median_block, resampled_words, resampling
from ._resample import percentile_interval, resampled_rows
from ._tables import build_panel, check_columns, panel_rows, positive_column

__all__ = ["DepthTrend", "depth_trend"]


@dataclass(frozen=True)
class DepthTrend:
    """A fitted depth trend: ``slope`` (change in relative depth per decade of ``x``) and ``intercept`` (the
    depth at ``x`` = 1) with their intervals; ``models``, one row per model, smallest first (its key columns,
    ``label``, ``x``, its ``depth`` and the ``low`` and ``high`` ends of its interval)."""

    score: str
    x: str
    slope: float
    intercept: float
    intervals: dict[str, tuple[float, float]]
    models: pd.DataFrame
    n_units: int
    n_boot: int
    level: float
    resample: str = "groups"
    block_trs: float | None = None

    def predict(self, x) -> np.ndarray:
        """The trend's relative depth at ``x`` (any shape)."""
        return self.intercept + self.slope * np.log10(np.asarray(x, dtype=float))

    def summary(self) -> str:
        low, high = self.intervals["slope"]
        lines = [f"depth trend of the best layer by {self.score!r}: depth = c + g·log10 N  [N = {self.x!r}]",
                 f"{len(self.models)} models × {self.n_units} units; {self.n_boot} bootstrap resamples of "
                 f"{resampled_words(self.resample, 'units', self.block_trs)}, {self.level:.0%} percentile intervals",
                 f"  g (relative depth per decade)  {self.slope:+.4f}   [{low:+.4f}, {high:+.4f}]",
                 f"  c                              {self.intercept:+.4f}   "
                 f"[{self.intervals['intercept'][0]:+.4f}, {self.intervals['intercept'][1]:+.4f}]"]
        for row in self.models.itertuples():
            lines.append(f"  {row.label:<28} N = {row.x:<10.4g} depth {row.depth:.3f}   [{row.low:.3f}, {row.high:.3f}]")
        return "\n".join(lines)


def depth_trend(table: pd.DataFrame, *, score: str = "r", x: str = "params", models=("model",),
                layer: str = "layer", n_layers: str = "n_layers", groups: str | None = "subject",
                n_boot: int = 1000, level: float = 0.95, seed: int = 0, blocks: pd.DataFrame | None = None,
                resample: str | None = None) -> DepthTrend:
    """The best layer's relative depth against ``x`` (per-target rows of several layers of several models).

    ``models``: the columns that tell one model from another; ``layer`` and ``n_layers``: a row's layer index
    and its model's block count; ``groups``: the units (None: one unit); ``blocks`` and ``resample``: blocks of
    test TRs to redraw, as :func:`~cortexscale.scaling.fit_law` takes them (each draw then finds every best
    layer on the drawn blocks). Raises where fewer than two model sizes, or a model with fewer than two layers,
    leave no trend to fit.
    """
    models = [models] if isinstance(models, str) else list(models)
    check_columns(table, {"score": score, "x": x, "layer": layer, "n_layers": n_layers, "groups": groups,
                          **{f"models[{i}]": c for i, c in enumerate(models)}})
    table = table[table[layer].notna()]
    keys = [*models, x, n_layers, layer]
    by, metric, stats = resampling(table, score, groups, blocks, resample)
    panel = build_panel(table, score, keys, groups, stats)
    points = panel.points
    model_of = points.groupby(models, sort=False, dropna=False).ngroup().to_numpy()
    depth = points[layer].to_numpy(dtype=float) / positive_column(points, n_layers)
    _check(points, model_of, x, layer, models)
    units, point, scores = panel_rows(panel)
    groups_of = units * (model_of.max() + 1) + model_of[point]
    estimate = _model_depths(groups_of, point, depth, model_of, units, scores[:, None], np.ones((len(units), 1)))
    logx = np.log10(positive_column(points.iloc[np.unique(model_of, return_index=True)[1]], x))
    draws = [_model_depths(groups_of, point, depth, model_of, units, s, w)
             for s, w in resampled_rows(panel, n_boot, np.random.default_rng(seed), by, metric)]
    boot = np.concatenate(draws, axis=1) if draws else np.empty((len(logx), 0))
    line, lines = _line(logx, estimate[:, 0]), np.array([_line(logx, column) for column in boot.T]).reshape(-1, 2)
    low, high = percentile_interval(lines, level, line)
    d_low, d_high = percentile_interval(boot.T, level, estimate[:, 0])
    table_ = _models_table(points, model_of, models, x, estimate[:, 0], d_low, d_high)
    return DepthTrend(score, x, float(line[0]), float(line[1]),
                      {"slope": (float(low[0]), float(high[0])), "intercept": (float(low[1]), float(high[1]))},
                      table_, len(panel.units), n_boot, level, RESAMPLE_NAMES[by], median_block(stats))


def _check(points: pd.DataFrame, model_of: np.ndarray, x: str, layer: str, models: list[str]) -> None:
    layers = np.bincount(model_of)
    if (layers < 2).any():
        few = points.iloc[np.flatnonzero(layers[model_of] < 2)[0]]
        raise ValueError(f"model {', '.join(str(few[c]) for c in models)} has one {layer!r}; a best layer needs "
                         "two or more layers per model")
    sizes = points.groupby(model_of)[x].nunique()
    if (sizes > 1).any():
        raise ValueError(f"a model has several values of {x!r}; give the columns that tell models apart in models=")
    if points[x].nunique() < 2:
        raise ValueError(f"the models have one size ({x} = {points[x].iloc[0]:g}); a depth trend needs two or more")


def _model_depths(groups_of, point, depth, model_of, units, scores, weights) -> np.ndarray:
    """Each model's depth (M, b): the unit-weighted mean over units of the relative depth of the best layer."""
    n_models, n_units, b = model_of.max() + 1, units.max() + 1, scores.shape[1]
    best = np.full((n_units, n_models, b), np.nan)
    weight = np.zeros((n_units, n_models, b))
    order = np.argsort(groups_of, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(groups_of[order]) != 0])
    for rows in np.split(order, starts[1:]):
        block = np.where(np.isfinite(scores[rows]), scores[rows], -np.inf)
        found = np.isfinite(scores[rows]).any(axis=0)
        u, m = units[rows[0]], model_of[point[rows[0]]]
        best[u, m] = np.where(found, depth[point[rows[np.argmax(block, axis=0)]]], np.nan)
        weight[u, m] = np.where(found, weights[rows[0]], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(best * weight, axis=0) / weight.sum(axis=0)


def _line(logx: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Least-squares (slope, intercept) of depth on log10 x over the models with a depth; NaN where under 2."""
    ok = np.isfinite(depth)
    if len(np.unique(logx[ok])) < 2:
        return np.array([np.nan, np.nan])
    slope, intercept = np.polyfit(logx[ok], depth[ok], 1)
    return np.array([slope, intercept])


def _models_table(points, model_of, models, x, estimate, low, high) -> pd.DataFrame:
    first = np.unique(model_of, return_index=True)[1]
    table = points.iloc[first][models].reset_index(drop=True)
    table["label"] = [" ".join(f"{v}" for v in row if not pd.isna(v)) for row in table[models].itertuples(index=False)]
    table["x"] = points[x].to_numpy(dtype=float)[first]
    table["depth"], table["low"], table["high"] = estimate, low, high
    return table.sort_values("x", kind="stable").reset_index(drop=True)
