"""The ``collect`` stage: every fit's scores, with its ceiling and its model's size and compute, in one table.

``results.parquet`` has one row per (subject, target, feature model, layer, fMRI training size, ...). First come
the columns that label the fit: dataset, subject, model, layer, fMRI size, the sweep's axes, and the feature
model's parameters with and without embeddings, training data, training FLOPs and training time; then the
per-target ones: target, r, R², alpha, the target's ceiling and ``normalised_r = r / ceiling``
(:func:`cortexscale.encoding.normalised_correlation`). ``summary.parquet`` reduces the targets of each fit to
the study's summaries (mean and max per subject, as Ahmadi et al. reported, and the mean over each named ROI).
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ...encoding import normalised_correlation
from ..tasks import stage

__all__ = ["MODEL_COLUMNS", "summarise"]

MODEL_COLUMNS = ("params", "params_non_embedding", "train_data", "train_flops", "train_seconds")
SCORE_COLUMNS = ("target", "r", "r2", "alpha", "ceiling", "normalised_r")
"""The per-target columns of a results table; the others label its fit."""


def _meta(folder) -> dict:
    return json.loads((folder / "meta.json").read_text())


def _model_columns(context, roles: dict, meta) -> dict:
    features = meta(context.inputs[roles["features"]])["result"]
    trained = meta(context.inputs[roles["model"]])["result"] if "model" in roles else {}
    out = {"params": features.get("params"), "params_non_embedding": features.get("params_non_embedding")}
    for column in MODEL_COLUMNS[2:]:
        out[column] = trained.get(column, features.get(column))
    return out


def _ceiling(folder) -> np.ndarray:
    return pq.read_table(folder / "ceiling.parquet", columns=["ceiling"]).column("ceiling").to_numpy()


def _fit(context, row: dict, meta, ceilings) -> tuple[pd.DataFrame, dict]:
    """One fit's per-target columns (target, r, r2, alpha, ceiling, normalised_r) and its one-row labels."""
    roles = row["roles"]
    scores = pq.read_table(context.inputs[roles["fit"]] / "scores.parquet").to_pandas()
    ceiling = ceilings(context.inputs[roles["ceiling"]])
    fit = meta(context.inputs[roles["fit"]])["result"]
    labels = {**row["labels"], "n_train_trs": fit["n_train_trs"], **_model_columns(context, roles, meta)}
    scores["ceiling"] = ceiling
    scores["normalised_r"] = normalised_correlation(scores["r"].to_numpy(), ceiling)
    return scores, labels


def _labels(labels: list[dict]) -> pd.DataFrame:
    """One row per fit; each column's type inferred per fit and then unified, as a concat of the fits' tables
    would (an integer column with a missing value stays integers and nulls, not floats)."""
    rows = [pd.DataFrame({name: [value] for name, value in fit.items()}) for fit in labels]
    table = pd.concat(rows, ignore_index=True)
    table["fmri_size"] = table["fmri_size"].astype(str)
    return table


def summarise(results: pd.DataFrame, summaries=("mean", "max"), rois: dict | None = None) -> pd.DataFrame:
    """One row per fit: each summary of r and normalised_r over its targets, and the mean r of each ROI."""
    keys = [c for c in results.columns if c not in SCORE_COLUMNS]
    fits = results.groupby(keys, dropna=False, sort=False).ngroup().to_numpy()
    first = np.unique(fits, return_index=True)[1]
    return _summaries(results, fits, results.iloc[first][keys].reset_index(drop=True), summaries, rois)


def _summaries(results: pd.DataFrame, fits: np.ndarray, labels: pd.DataFrame, summaries, rois) -> pd.DataFrame:
    """``labels`` (one row per fit, in fit order) with the summaries of the rows of each fit (``fits``: the
    fit index of every row of ``results``)."""
    keys = list(labels.columns)  # as a group index, so that the label columns' types are those of a groupby
    unique = labels.groupby(keys, dropna=False, sort=False).size().index.to_frame(index=False)
    if len(unique) != len(labels):
        raise ValueError(f"{len(labels) - len(unique)} fit(s) share their labels with another fit; each fit "
                         "needs labels of its own")
    labels = unique
    grouped = results[["r", "normalised_r"]].groupby(fits, sort=True)
    table = grouped.agg(list(summaries))
    table.columns = [f"{stat}_{score}" for score, stat in table.columns]
    for roi, targets in (rois or {}).items():
        inside = results["target"].isin(targets).to_numpy()
        table[f"roi_{roi}_r"] = results.loc[inside, "r"].groupby(fits[inside]).mean()
    return pd.concat([labels, table.reset_index(drop=True)], axis=1)


@stage("collect", version=2)
def collect(task, context) -> dict:
    scoring = task.settings["scoring"]
    meta = functools.lru_cache(maxsize=None)(_meta)  # a model's and its features' records serve many fits
    ceilings = functools.lru_cache(maxsize=None)(_ceiling)  # and a subject's ceilings too
    parts = [_fit(context, row, meta, ceilings) for row in task.settings["rows"]]
    labels = _labels([fit_labels for _, fit_labels in parts])
    scores = pd.concat([fit_scores for fit_scores, _ in parts], ignore_index=True)
    fits = np.repeat(np.arange(len(parts)), [len(fit_scores) for fit_scores, _ in parts])
    results = pd.concat([labels.iloc[fits].reset_index(drop=True), scores], axis=1)
    results.to_parquet(context.out / "results.parquet", index=False)
    summary = _summaries(results, fits, labels, scoring["summaries"], scoring["rois"])
    summary.to_parquet(context.out / "summary.parquet", index=False)
    return {"rows": int(len(results)), "fits": int(len(summary)), "mean_r": float(np.nanmean(results["r"]))}
