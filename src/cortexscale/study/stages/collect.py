"""The ``collect`` stage: every fit's scores, with its ceiling and its model's size and compute, in one table.

``results.parquet`` has one row per (subject, target, feature model, layer, fMRI training size, ...): r, R²,
alpha, the target's ceiling and ``normalised_r = r / ceiling``
(:func:`cortexscale.encoding.normalised_correlation`), and for the feature model its parameters with and
without embeddings, its training data, training FLOPs and training time. ``summary.parquet`` reduces the
targets of each fit to the study's summaries (mean and max per subject, as Ahmadi et al. reported, and the
mean over each named ROI).
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd

from ...encoding import normalised_correlation
from ..tasks import stage

__all__ = ["MODEL_COLUMNS", "summarise"]

MODEL_COLUMNS = ("params", "params_non_embedding", "train_data", "train_flops", "train_seconds")


def _meta(folder) -> dict:
    return json.loads((folder / "meta.json").read_text())


def _model_columns(context, roles: dict, meta) -> dict:
    features = meta(context.inputs[roles["features"]])["result"]
    trained = meta(context.inputs[roles["model"]])["result"] if "model" in roles else {}
    out = {"params": features.get("params"), "params_non_embedding": features.get("params_non_embedding")}
    for column in MODEL_COLUMNS[2:]:
        out[column] = trained.get(column, features.get(column))
    return out


def _rows(context, row: dict, meta) -> pd.DataFrame:
    roles = row["roles"]
    scores = pd.read_parquet(context.inputs[roles["fit"]] / "scores.parquet")
    ceiling = pd.read_parquet(context.inputs[roles["ceiling"]] / "ceiling.parquet")["ceiling"].to_numpy()
    fit = meta(context.inputs[roles["fit"]])["result"]
    labels = {**row["labels"], "n_train_trs": fit["n_train_trs"], **_model_columns(context, roles, meta)}
    table = scores.assign(ceiling=ceiling, normalised_r=normalised_correlation(scores["r"].to_numpy(), ceiling))
    for name, value in reversed(labels.items()):
        table.insert(0, name, [value] * len(table))
    return table


def summarise(results: pd.DataFrame, summaries=("mean", "max"), rois: dict | None = None) -> pd.DataFrame:
    """One row per fit: each summary of r and normalised_r over its targets, and the mean r of each ROI."""
    keys = [c for c in results.columns if c not in ("target", "r", "r2", "alpha", "ceiling", "normalised_r")]
    grouped = results.groupby(keys, dropna=False, sort=False)
    table = grouped[["r", "normalised_r"]].agg(list(summaries))
    table.columns = [f"{stat}_{score}" for score, stat in table.columns]
    for roi, targets in (rois or {}).items():
        inside = results[results["target"].isin(targets)]
        table[f"roi_{roi}_r"] = inside.groupby(keys, dropna=False, sort=False)["r"].mean()
    return table.reset_index()


@stage("collect", version=1)
def collect(task, context) -> dict:
    scoring = task.settings["scoring"]
    meta = functools.lru_cache(maxsize=None)(_meta)  # a model's and its features' records serve many fits
    results = pd.concat([_rows(context, row, meta) for row in task.settings["rows"]], ignore_index=True)
    for column in ("fmri_size",):
        results[column] = results[column].astype(str)
    results.to_parquet(context.out / "results.parquet", index=False)
    summary = summarise(results, scoring["summaries"], scoring["rois"])
    summary.to_parquet(context.out / "summary.parquet", index=False)
    return {"rows": int(len(results)), "fits": int(len(summary)), "mean_r": float(np.nanmean(results["r"]))}
