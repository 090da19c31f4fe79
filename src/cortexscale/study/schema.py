"""The results tables of a study, and the one place that knows their columns.

``results.parquet`` has one row per (fit, target); ``summary.parquet`` one row per fit. A fit's row starts
with its labels, in this order (those a study has): dataset, subject, encoding (the name of the study's
encoding entry), method (its kind of fit), projection (a fixed feature count, "srp-64"; "none" for the full
width; only in a study that projects), layer, fmri_unit, fmri_size, evaluation, model, family, spaces
(a joint fit's feature spaces), the sweep's axes (hidden, frames, precision, ...), n_train_trs; then the feature
model's :data:`MODEL_COLUMNS`. The per-target columns follow: :data:`SCORE_COLUMNS`, and for a fit over two or
more feature spaces ``gain_r`` (r minus the best single space's r) and one column per space and measure,
``r[<space>]`` (that space alone), ``alpha[<space>]`` (its penalty) and ``weight[<space>]`` (its stacking
weight or band ratio). A summary row has each :data:`SUMMARY_STATS` of r, normalised_r (and gain_r) over the
fit's targets, ``<stat>_<score>``, and the mean r over each named ROI, ``roi_<name>_r``.

Every other column is an axis of the sweep; :func:`reserved_name` says which names an axis may not take, and
the study file refuses them.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["BLOCKS_FILE", "LABEL_COLUMNS", "MODEL_COLUMNS", "SCORE_COLUMNS", "SPACE_MEASURES", "SUMMARY_STATS",
           "axis_columns", "block_frame", "fit_summary", "label_frame", "model_keys", "reserved_name", "roi_column",
           "space_column", "space_columns", "space_of", "summarise", "summary_frame", "target_frame"]

LABEL_COLUMNS = ("dataset", "subject", "encoding", "method", "projection", "layer", "n_layers", "fmri_unit",
                 "fmri_size", "evaluation", "model", "family", "ladder", "spaces", "n_train_trs")
"""The columns that label a fit (the sweep's axes come between ``spaces`` and ``n_train_trs``): ``n_layers``
is the feature model's block count (a layer's relative depth is ``layer / n_layers``), ``ladder`` a pretrained
model's named ladder, where it has one."""
MODEL_COLUMNS = ("params", "params_non_embedding", "train_data", "train_flops", "train_seconds")
"""The feature model's size and training: parameters with and without embeddings, training data, FLOPs, time."""
SCORE_COLUMNS = ("target", "r", "r2", "alpha", "ceiling", "normalised_r")
"""The per-target columns of every fit."""
GAIN = "gain_r"
"""A joint fit's r minus the largest r of its spaces fitted alone, per target."""
SPACE_MEASURES = ("r", "alpha", "weight")
"""Per-space columns of a joint fit: each space's r alone, its penalty, its weight."""
SUMMARY_STATS = ("mean", "max", "median")
SUMMARISED = ("r", "normalised_r", GAIN)
UNPROJECTED = "none"
"""The ``projection`` of a fit on its spaces' full width, in a study where other fits project."""
JOINT = "joint"
"""The ``family`` of a fit over several feature spaces."""
RESULTS_FILE, SUMMARY_FILE = "results.parquet", "summary.parquet"
"""The per-target and the per-fit table, as the collect stage writes them and a study folder publishes them."""
BLOCKS_FILE = "blocks.parquet"
"""The per-block table of a study with ``scoring.test_blocks``: one row per (fit, target, block of test TRs),
the fit's labels, then ``target``, ``block`` (0, 1, ... in time) and the block's
:data:`cortexscale.encoding.STATISTICS`."""
BLOCK = "block"

_SPACE = re.compile(r"^(?P<measure>r|alpha|weight)\[(?P<space>.+)\]$")
_SUMMARY = re.compile(rf"^({'|'.join(SUMMARY_STATS)})_({'|'.join(SUMMARISED)})$")
_ROI = re.compile(r"^roi_.+_r$")
_FIXED = frozenset(LABEL_COLUMNS + MODEL_COLUMNS + SCORE_COLUMNS + (GAIN,))


def space_column(measure: str, space: str) -> str:
    """The column of one measure ("r", "alpha" or "weight") of one feature space, ``measure[space]``."""
    if measure not in SPACE_MEASURES:
        raise ValueError(f"unknown space measure {measure!r}; measures are {SPACE_MEASURES}")
    return f"{measure}[{space}]"


def space_of(column: str) -> tuple[str, str] | None:
    """(measure, space) of a per-space column, None for any other column."""
    match = _SPACE.match(str(column))
    return None if match is None else (match["measure"], match["space"])


def space_columns(table: pd.DataFrame, measure: str) -> dict[str, str]:
    """Space name -> column of ``measure`` for every per-space column of ``table``, in column order."""
    out = {}
    for column in table.columns:
        found = space_of(column)
        if found is not None and found[0] == measure:
            out[found[1]] = column
    return out


def roi_column(roi: str) -> str:
    return f"roi_{roi}_r"


def reserved_name(name: str) -> bool:
    """Whether a sweep axis may not be called ``name``: a column the package writes, or one of its patterns."""
    name = str(name)
    return name in _FIXED or bool(_SPACE.match(name) or _SUMMARY.match(name) or _ROI.match(name))


def axis_columns(table: pd.DataFrame) -> list[str]:
    """The columns of ``table`` that hold sweep axes (hidden, frames, augreg, patch, dropout, ...), in order."""
    return [c for c in table.columns if not reserved_name(c)]


def model_keys(table: pd.DataFrame) -> list[str]:
    """The columns that tell one feature model (under one encoding and projection) from another: dataset,
    encoding, projection, model name and every sweep axis."""
    return [c for c in ("dataset", "encoding", "projection", "model") if c in table.columns] + axis_columns(table)


def target_frame(targets, r, r2, alpha, spaces: list[str] | None = None, space_r=None,
                 per_space: dict | None = None) -> pd.DataFrame:
    """One fit's per-target table: target, r, r2, alpha (n_targets,) each; for a joint fit over ``spaces``
    (k names) also ``gain_r``, each space's r alone (``space_r``, (k, n_targets)) and the measures of
    ``per_space`` ({"alpha" or "weight": (k, n_targets)})."""
    table = {"target": list(targets), "r": r, "r2": r2, "alpha": alpha}
    if spaces and len(spaces) > 1:
        alone = np.asarray(space_r, dtype=float)
        with np.errstate(invalid="ignore"):
            best = np.where(np.isnan(alone).all(0), np.nan, np.nanmax(np.where(np.isnan(alone), -np.inf, alone), 0))
        table[GAIN] = np.asarray(r, dtype=float) - best
        for k, space in enumerate(spaces):
            table[space_column("r", space)] = alone[k]
        for measure, values in (per_space or {}).items():
            for k, space in enumerate(spaces):
                table[space_column(measure, space)] = np.asarray(values)[k]
    return pd.DataFrame(table)


def block_frame(targets, stats: np.ndarray) -> pd.DataFrame:
    """One fit's per-block table: ``target`` and ``block`` beside each statistic, from statistics (K, 6, T)."""
    from ..encoding import STATISTICS

    k, _, t = stats.shape
    table = {"target": np.tile(np.asarray(list(targets), dtype=object), k), BLOCK: np.repeat(np.arange(k), t)}
    table.update({name: stats[:, i, :].ravel() for i, name in enumerate(STATISTICS)})
    return pd.DataFrame(table)


def label_frame(labels: list[dict]) -> pd.DataFrame:
    """One row per fit from each fit's labels; each column's type inferred per fit and then unified, as a
    concat of the fits' tables would (an integer column with a missing value stays integers and nulls, not
    floats). ``fmri_size`` is text ("all" or a count); ``layer`` and ``n_layers`` are nullable integers where a
    joint fit has none."""
    rows = [pd.DataFrame({name: [value] for name, value in fit.items()}) for fit in labels]
    names = list(dict.fromkeys(name for fit in labels for name in fit))
    head = [c for c in LABEL_COLUMNS[:-1] if c in names]
    tail = [c for c in ("n_train_trs", *MODEL_COLUMNS) if c in names]
    table = pd.concat(rows, ignore_index=True)[head + [c for c in names if c not in head + tail] + tail]
    table["fmri_size"] = table["fmri_size"].astype(str)
    for column in ("layer", "n_layers"):  # joint fits have no one layer
        if column in table and table[column].isna().any():
            table[column] = table[column].astype("Int64")
    return table


def summarise(results: pd.DataFrame, summaries=("mean", "max"), rois: dict | None = None) -> pd.DataFrame:
    """One row per fit: each summary of r and normalised_r (and gain_r) over its targets, and the mean r of
    each ROI."""
    keys = [c for c in results.columns if not _per_target(c)]
    fits = results.groupby(keys, dropna=False, sort=False).ngroup().to_numpy()
    first = np.unique(fits, return_index=True)[1]
    return summaries_of(results, fits, results.iloc[first][keys].reset_index(drop=True), summaries, rois)


def _per_target(column: str) -> bool:
    return column in SCORE_COLUMNS or column == GAIN or space_of(column) is not None


def fit_summary(scores: pd.DataFrame, summaries, rois: dict | None) -> dict:
    """One fit's summary columns from its per-target rows: ``<stat>_<score>`` of r, normalised_r (and gain_r)
    and each ROI's mean r."""
    out = {}
    for score in (c for c in SUMMARISED if c in scores.columns):
        values = scores[score].to_numpy(dtype=float)
        for stat in summaries:
            with np.errstate(all="ignore"):
                out[f"{stat}_{score}"] = float(getattr(np, f"nan{stat}")(values)) if np.isfinite(values).any() \
                    else np.nan
    for roi, targets in (rois or {}).items():
        inside = scores["target"].isin(targets).to_numpy()
        out[roi_column(roi)] = float(scores.loc[inside, "r"].mean()) if inside.any() else np.nan
    return out


def summary_frame(labels: pd.DataFrame, stats: list[dict]) -> pd.DataFrame:
    """The summary table: ``labels`` (one row per fit, in fit order) beside each fit's :func:`fit_summary`."""
    keys = list(labels.columns)  # as a group index, so that the label columns' types are those of a groupby
    unique = labels.groupby(keys, dropna=False, sort=False).size().index.to_frame(index=False)
    if len(unique) != len(labels):
        raise ValueError(f"{len(labels) - len(unique)} fit(s) share their labels with another fit; each fit "
                         "needs labels of its own")
    return pd.concat([unique, pd.DataFrame(stats)], axis=1)


def summaries_of(results: pd.DataFrame, fits: np.ndarray, labels: pd.DataFrame, summaries, rois) -> pd.DataFrame:
    """``labels`` (one row per fit, in fit order) with the summaries of the rows of each fit (``fits``: the
    fit index of every row of ``results``)."""
    order = np.argsort(fits, kind="stable")
    bounds = np.searchsorted(fits[order], np.arange(len(labels) + 1))
    stats = [fit_summary(results.iloc[order[a:b]], summaries, rois) for a, b in zip(bounds[:-1], bounds[1:])]
    return summary_frame(labels, stats)
