"""The ``ceiling`` stage: each target's noise ceiling on the data a subject is scored on.

The ceiling is what :func:`cortexscale.encoding.noise_ceiling` calls ``ceiling``: the largest Pearson r a
noiseless model can reach. A subject's test runs with repeats give cc_max from the repeats; otherwise the
other subjects who heard the same runs stand in (leave-one-out: the subject against the others' mean); a
group average gets the square root of its split-half reliability across its members.
"""

from __future__ import annotations

import warnings

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ...encoding import noise_ceiling
from ...encoding.preprocessing import zscore_runs
from ..plan import GROUP, dataset_of
from ..protocol import CeilingSettings
from ..tasks import stage

CEILING = "ceiling.parquet"
"""A ceiling task's table of each target's ceiling, in its folder."""


def read_ceiling(folder) -> np.ndarray:
    """Each target's ceiling (n_targets,) from a ceiling task's ``folder``."""
    return pq.read_table(Path(folder) / CEILING, columns=["ceiling"]).column("ceiling").to_numpy()


def _scored(runs, split: str) -> list:
    return [r for r in runs if r.split == split]


def _stacked(data, subject: str, names: list[str], trim, repeats: bool = False) -> np.ndarray:
    """One subject's scored runs, trimmed, z-scored per run and concatenated: (n, n_targets), or
    (n_repeats, n, n_targets)."""
    runs = {r.name: r for r in data.runs_of(subject)}
    start, end = trim
    parts = []
    for name in names:
        values = runs[name].repeats() if repeats else runs[name].responses()
        parts.append(values[..., start:values.shape[-2] - end, :])
    if repeats:
        return np.concatenate([np.stack([zscore_runs(rep) for rep in part]) for part in parts], axis=1)
    return np.concatenate([zscore_runs(part) for part in parts])


def _sharing(data, subject: str, candidates: list[str], names: list[str]) -> list[str]:
    """The subjects besides ``subject`` whose runs of those names match in length."""
    lengths = {r.name: r.n_trs for r in data.runs_of(subject)}
    out = []
    for other in candidates:
        theirs = {r.name: r.n_trs for r in data.runs_of(other)}
        if other != subject and all(theirs.get(name) == lengths[name] for name in names):
            out.append(other)
    return out


def ceiling_of(data, s: CeilingSettings) -> tuple:
    """Ceiling (n_targets,) and the method that gave it."""
    names = [r.name for r in _scored(data.runs_of(s.members[0]), s.evaluation.split)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if s.subject == GROUP:
            stack = np.stack([_stacked(data, m, names, s.trim) for m in s.members])
            return noise_ceiling(stack, method="split_half").ceiling, "split_half"
        runs = {r.name: r for r in data.runs_of(s.subject)}
        if s.evaluation.mode == "test-runs" and all(runs[name].repeats() is not None for name in names):
            return noise_ceiling(_stacked(data, s.subject, names, s.trim, repeats=True), method="repeats").ceiling, \
                "repeats"
        others = _sharing(data, s.subject, s.all_subjects, names)
        if not others:
            return np.full(len(data.targets), np.nan), "none"
        stack = np.stack([_stacked(data, subject, names, s.trim) for subject in [s.subject, *others]])
        return noise_ceiling(stack, method="leave_one_out").ceiling[0], "leave_one_out"


@stage("ceiling", version=2)
def ceiling(task, context) -> dict:
    s = CeilingSettings.model_validate(task.settings)
    data = dataset_of(s.dataset)
    values, method = ceiling_of(data, s)
    pd.DataFrame({"target": list(data.targets), "ceiling": values}).to_parquet(context.out / CEILING, index=False)
    return {"method": method, "mean_ceiling": float(np.nanmean(values)) if np.isfinite(values).any() else None}
