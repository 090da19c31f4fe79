"""The ``collect`` stage: every fit's scores, with its ceiling and its model's size and compute, in one table.

It writes ``results.parquet`` (one row per fit and target) and ``summary.parquet`` (one row per fit), whose
columns :mod:`cortexscale.study.schema` owns. The per-target table is written one fit at a time, a row group
per fit, so collect holds one fit's rows at once whatever the study's size, and a reader that filters on a
fit's labels (model, subject, layer, ...) reads only the row groups it needs. Each target's ``normalised_r``
is ``r / ceiling`` (:func:`cortexscale.encoding.normalised_correlation`). A feature model's parameters come
from its features' records and its training data, FLOPs and time from its training task's, or, for a
pretrained model, from its features' records (a checkpoint's records hold its training data seen and FLOPs
spent so far); a joint fit's parameters are its spaces' summed. Where fits kept the statistics of blocks of
their test TRs (``scoring.test_blocks``), it also writes ``blocks.parquet``, a row group per fit.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ...encoding import normalised_correlation
from .. import schema
from ..protocol import CollectRow, CollectSettings
from ..tasks import stage
from .ceiling import read_ceiling
from .fit import SCORES, read_blocks, read_scores

__all__ = ["collect"]


def _model_columns(row: CollectRow, meta) -> dict:
    """The :data:`~cortexscale.study.schema.MODEL_COLUMNS` of a fit: one space's model, or a joint fit's."""
    spaces = []
    for features, model in zip(row.features, row.models):
        found = meta(features)["result"]
        trained = meta(model)["result"] if model is not None else {}
        if "step" in found:  # a checkpoint: its data and FLOPs so far, not its whole training's
            trained = {**trained, **{c: found[c] for c in ("train_data", "train_flops") if c in found}}
        spaces.append({"params": found.get("params"), "params_non_embedding": found.get("params_non_embedding"),
                       **{c: trained.get(c, found.get(c)) for c in schema.MODEL_COLUMNS[2:]}})
    if len(spaces) == 1:
        return spaces[0]
    summed = {c: float(sum(space[c] for space in spaces)) if all(space[c] is not None for space in spaces) else None
              for c in schema.MODEL_COLUMNS[:2]}
    return {**summed, **{c: None for c in schema.MODEL_COLUMNS[2:]}}


def _labels(row: CollectRow, meta) -> dict:
    """One fit's labels: the plan's, its training TRs and its model's columns."""
    return {**row.labels, "n_train_trs": meta(row.fit)["result"]["n_train_trs"], **_model_columns(row, meta)}


def _scores(context, row: CollectRow, ceilings) -> pd.DataFrame:
    """One fit's per-target columns, with each target's ceiling and normalised r after its alpha."""
    scores = read_scores(context.inputs[row.fit])
    ceiling = ceilings(row.ceiling)
    at = scores.columns.get_loc("alpha") + 1
    scores.insert(at, "ceiling", ceiling)
    scores.insert(at + 1, "normalised_r", normalised_correlation(scores["r"].to_numpy(), ceiling))
    return scores


def _arrow_schema(labels: pd.DataFrame, files: list[Path]) -> pa.Schema:
    """The results' columns: the fits' labels, then every per-target column any fit has, in first-seen order
    (``ceiling`` and ``normalised_r`` after ``alpha``)."""
    fields = {f.name: f for f in pa.Schema.from_pandas(labels, preserve_index=False)}
    for file in dict.fromkeys(files):
        for f in pq.read_schema(file):
            fields.setdefault(f.name, f)
            if f.name == "alpha":
                fields.setdefault("ceiling", pa.field("ceiling", pa.float64()))
                fields.setdefault("normalised_r", pa.field("normalised_r", pa.float64()))
    return pa.schema(list(fields.values()))


def _rows(labels: pd.DataFrame, i: int, scores: pd.DataFrame, schema_: pa.Schema) -> pa.Table:
    """One fit's rows of the results: its labels repeated beside its scores, in the results' columns."""
    head = labels.iloc[np.zeros(len(scores), dtype=int) + i].reset_index(drop=True)
    table = pd.concat([head, scores], axis=1).reindex(columns=schema_.names)
    return pa.Table.from_pandas(table, schema=schema_, preserve_index=False)


_TARGETS = 4096
"""Targets per row group of ``blocks.parquet``."""


class _BlockWriter:
    """``blocks.parquet`` written a fit at a time, the labels' columns typed as in the results, opened at the
    first fit that kept test-TR statistics; nothing is written when none did."""

    def __init__(self, path: Path, labels: pd.DataFrame):
        self.path, self.labels, self.writer = path, labels, None

    def write(self, i: int, targets, stats) -> None:
        """Fit ``i``'s statistics (K, 6, T) of its ``targets`` (T,), a row group per :data:`_TARGETS` targets,
        so a whole brain's fit is never held as one table of K × T rows with its labels."""
        if stats is None:
            return
        targets = np.asarray(list(targets), dtype=object)
        for start in range(0, len(targets), _TARGETS):
            part = schema.block_frame(targets[start:start + _TARGETS], stats[:, :, start:start + _TARGETS])
            head = self.labels.iloc[np.zeros(len(part), dtype=int) + i].reset_index(drop=True)
            if self.writer is None:
                fields = list(pa.Schema.from_pandas(self.labels, preserve_index=False))
                fields += list(pa.Schema.from_pandas(part, preserve_index=False))
                self.writer = pq.ParquetWriter(self.path, pa.schema(fields))
            table = pd.concat([head, part], axis=1)
            self.writer.write_table(pa.Table.from_pandas(table, schema=self.writer.schema, preserve_index=False))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@stage("collect", version=4)
def collect(task, context) -> dict:
    s = CollectSettings.model_validate(task.settings)
    meta = functools.lru_cache(maxsize=None)(context.input_meta)  # a model's records serve many fits
    ceilings = functools.lru_cache(maxsize=None)(lambda role: read_ceiling(context.inputs[role]))  # and ceilings
    labels = schema.label_frame([_labels(row, meta) for row in s.rows])
    columns = _arrow_schema(labels, [Path(context.inputs[row.fit]) / SCORES for row in s.rows])
    stats, rows, total, counted = [], 0, 0.0, 0  # the mean r over every row, without holding the rows
    with pq.ParquetWriter(context.out / schema.RESULTS_FILE, columns) as writer, \
            contextlib.closing(_BlockWriter(context.out / schema.BLOCKS_FILE, labels)) as blocks:
        for i, row in enumerate(s.rows):
            scores = _scores(context, row, ceilings)
            writer.write_table(_rows(labels, i, scores, columns))
            blocks.write(i, scores["target"], read_blocks(context.inputs[row.fit]))
            stats.append(schema.fit_summary(scores, s.scoring.summaries, s.scoring.rois))
            r = scores["r"].to_numpy(dtype=float)
            rows, total, counted = rows + len(r), total + float(np.nansum(r)), counted + int((~np.isnan(r)).sum())
    summary = schema.summary_frame(labels, stats)
    summary.to_parquet(context.out / schema.SUMMARY_FILE, index=False)
    return {"rows": rows, "fits": int(len(summary)), "mean_r": total / counted if counted else float("nan")}
