"""The ``collect`` stage: every fit's scores, with its ceiling and its model's size and compute, in one table.

It writes ``results.parquet`` (one row per fit and target) and ``summary.parquet`` (one row per fit), whose
columns :mod:`cortexscale.study.schema` owns; each target's ``normalised_r`` is ``r / ceiling``
(:func:`cortexscale.encoding.normalised_correlation`). A feature model's parameters come from its features'
records and its training data, FLOPs and time from its training task's, or, for a pretrained model, from its
features' records; a joint fit's parameters are its spaces' summed.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from ...encoding import normalised_correlation
from .. import schema
from ..protocol import CollectRow, CollectSettings
from ..tasks import stage
from .ceiling import read_ceiling
from .fit import read_scores

__all__ = ["collect"]


def _model_columns(row: CollectRow, meta) -> dict:
    """The :data:`~cortexscale.study.schema.MODEL_COLUMNS` of a fit: one space's model, or a joint fit's."""
    spaces = []
    for features, model in zip(row.features, row.models):
        found = meta(features)["result"]
        trained = meta(model)["result"] if model is not None else {}
        spaces.append({"params": found.get("params"), "params_non_embedding": found.get("params_non_embedding"),
                       **{c: trained.get(c, found.get(c)) for c in schema.MODEL_COLUMNS[2:]}})
    if len(spaces) == 1:
        return spaces[0]
    summed = {c: float(sum(space[c] for space in spaces)) if all(space[c] is not None for space in spaces) else None
              for c in schema.MODEL_COLUMNS[:2]}
    return {**summed, **{c: None for c in schema.MODEL_COLUMNS[2:]}}


def _fit(context, row: CollectRow, meta, ceilings) -> tuple[pd.DataFrame, dict]:
    """One fit's per-target columns and its one-row labels."""
    scores = read_scores(context.inputs[row.fit])
    ceiling = ceilings(row.ceiling)
    fit = meta(row.fit)["result"]
    labels = {**row.labels, "n_train_trs": fit["n_train_trs"], **_model_columns(row, meta)}
    at = scores.columns.get_loc("alpha") + 1
    scores.insert(at, "ceiling", ceiling)
    scores.insert(at + 1, "normalised_r", normalised_correlation(scores["r"].to_numpy(), ceiling))
    return scores, labels


@stage("collect", version=3)
def collect(task, context) -> dict:
    s = CollectSettings.model_validate(task.settings)
    meta = functools.lru_cache(maxsize=None)(context.input_meta)  # a model's records serve many fits
    ceilings = functools.lru_cache(maxsize=None)(lambda role: read_ceiling(context.inputs[role]))  # and ceilings
    parts = [_fit(context, row, meta, ceilings) for row in s.rows]
    labels = schema.label_frame([fit_labels for _, fit_labels in parts])
    scores = pd.concat([fit_scores for fit_scores, _ in parts], ignore_index=True)
    fits = np.repeat(np.arange(len(parts)), [len(fit_scores) for fit_scores, _ in parts])
    results = pd.concat([labels.iloc[fits].reset_index(drop=True), scores], axis=1)
    results.to_parquet(context.out / schema.RESULTS_FILE, index=False)
    summary = schema.summaries_of(results, fits, labels, s.scoring.summaries, s.scoring.rois)
    summary.to_parquet(context.out / schema.SUMMARY_FILE, index=False)
    return {"rows": int(len(results)), "fits": int(len(summary)), "mean_r": float(np.nanmean(results["r"]))}
