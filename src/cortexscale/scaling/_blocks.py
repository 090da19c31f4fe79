"""Statistics of blocks of test TRs, matched to the rows of a results table.

A *blocks table* (a study's ``blocks.parquet``, :func:`cortexscale.study.read_blocks`) has one row per fit,
target and block of test TRs: the fit's labels, ``target``, ``block`` and the block's
:data:`cortexscale.encoding.STATISTICS`. A results row's statistics are the blocks rows with the same labels
and target, so any selection of a results table (a layer per model, one ladder) selects its blocks too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..encoding import STATISTICS
from ._tables import BLOCK, TARGET

__all__ = ["RESAMPLE_NAMES", "median_block", "resampled_words", "resampling", "row_statistics", "score_metric"]

_METRICS = {"r": "correlation", "r2": "r2"}
RESAMPLE_NAMES = {"units": "groups", "rows": "rows", "blocks": "blocks", "units+blocks": "groups+blocks"}
"""What a bootstrap drew, by the ``by`` of :func:`~cortexscale.scaling._resample.resampled_rows`: the
``resample`` a fit names it by."""


def score_metric(score: str) -> str:
    """The metric of :func:`cortexscale.encoding.statistics_score` that recomputes ``score`` from blocks."""
    if score not in _METRICS:
        raise ValueError(f"a test-TR block bootstrap recomputes the score from each block's sums, which it can "
                         f"for {sorted(_METRICS)}; not for {score!r}")
    return _METRICS[score]


def _keys(table: pd.DataFrame, blocks: pd.DataFrame) -> list[str]:
    missing = [c for c in (TARGET, BLOCK, *STATISTICS) if c not in blocks.columns]
    if missing:
        raise ValueError(f"the blocks table has no column(s) {missing}; its columns are {list(blocks.columns)}")
    if TARGET not in table.columns:
        raise ValueError("a test-TR block bootstrap needs per-target rows (a 'target' column) in the table")
    return [c for c in blocks.columns if c not in (BLOCK, *STATISTICS) and c in table.columns]


def row_statistics(table: pd.DataFrame, blocks: pd.DataFrame) -> np.ndarray:
    """Each row's statistics per block (n_rows, 6, K), K the most blocks of any row (zeros past a row's own).

    Rows are matched on every column the two tables share but the block and its statistics; a row with no
    blocks, or with two blocks of one number (a match too loose to tell fits apart), is refused.
    """
    keys = _keys(table, blocks)
    left = table[keys].reset_index(drop=True).assign(_row=np.arange(len(table)))
    joined = left.merge(blocks[[*keys, BLOCK, *STATISTICS]], on=keys, how="inner", sort=False)
    rows, block = joined["_row"].to_numpy(), joined[BLOCK].to_numpy(dtype=int)
    matched = np.bincount(rows, minlength=len(table)) > 0
    if not matched.all():
        example = table.iloc[int(np.flatnonzero(~matched)[0])][keys].to_dict()
        raise ValueError(f"{int((~matched).sum())} of {len(table)} rows have no test-TR blocks in the blocks "
                         f"table (e.g. {example}); it must come from the same study as the results")
    k = int(block.max()) + 1
    if len(np.unique(rows * k + block)) != len(rows):
        raise ValueError(f"the blocks table gives some rows one block twice: columns {keys} do not tell its fits "
                         "apart; keep the label columns in the table")
    out = np.zeros((len(table), len(STATISTICS), k))
    out[rows, :, block] = joined[list(STATISTICS)].to_numpy(dtype=float)
    return out


def resampling(table: pd.DataFrame, score: str, groups, blocks, resample) -> tuple[str, str, np.ndarray | None]:
    """What a bootstrap of ``table`` draws for ``resample`` ("groups", "blocks", "groups+blocks"; None:
    "groups"), as the ``by`` of :func:`~cortexscale.scaling._resample.resampled_rows`; the metric that
    recomputes ``score`` from blocks; and the rows' block statistics (:func:`row_statistics`; None without)."""
    choices = ("groups", "blocks", "groups+blocks")
    resample = "groups" if resample is None else resample
    if resample not in choices:
        raise ValueError(f"resample must be one of {choices}, got {resample!r}")
    if resample == "groups+blocks" and groups is None:
        raise ValueError("resample='groups+blocks' redraws groups: pass groups= (e.g. 'subject')")
    by = {"groups": "units" if groups else "rows", "blocks": "blocks", "groups+blocks": "units+blocks"}[resample]
    if not by.endswith("blocks"):
        return by, "correlation", None
    if blocks is None:
        raise ValueError(f"resample={resample!r} redraws blocks of test TRs: pass blocks= (a study's "
                         "blocks.parquet, from cortexscale.study.read_blocks; a study keeps it with "
                         "scoring.test_blocks)")
    return by, score_metric(score), row_statistics(table, blocks)


def median_block(stats: np.ndarray | None) -> float | None:
    """The median length in TRs of the blocks of statistics (n_rows, 6, K) (None for None)."""
    if stats is None:
        return None
    n = stats[:, 0, :]
    return float(np.median(n[n > 0]))


def resampled_words(resample: str, units: str, block_trs: float | None) -> str:
    """What a bootstrap of ``resample`` (a :data:`RESAMPLE_NAMES` value) redrew, in words, its units named ``units``
    ("'subject' levels") and its blocks ``block_trs`` long."""
    blocks = f"blocks of {block_trs:g} test TRs" if block_trs else "blocks of test TRs"
    return {"groups": f"{units} and their targets", "rows": units, "blocks": blocks,
            "groups+blocks": f"{units} and their targets, and {blocks}"}[resample]
