"""The ``fit`` stage: one encoding model of one subject on its feature spaces (one layer of one model, or
several joined) and one amount of fMRI training data, scored per target on held-out data.

Each space's features are aligned to each run's scans and the spaces put side by side; with a trim, the
features are delayed over the whole run first and then the run's first and last TRs dropped, so a kept TR
still sees the stimulus before it. Features and responses are z-scored per segment (a run, or a run's part
inside one outer fold) and FIR delays never cross a segment. "test-runs" fits the chosen training runs and
scores the test runs (their repeats averaged, where they have them); "folds-k" pools the predictions of k
contiguous outer folds over the training runs, each fold's training data cut to the chosen size. The kind of
fit (:data:`cortexscale.study.fits.FITS`) does the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...encoding import correlation_score, r2_score
from ...encoding.delays import delay_features
from ...encoding.preprocessing import zscore_runs
from ...features import align_to_trs
from .. import schema
from ..fits import FITS, Design, FitOutput
from ..plan import dataset_of
from ..protocol import FitSettings
from ..tasks import stage
from .features import load_features

__all__ = ["design", "fold_segments", "read_scores", "responses"]

SCORES = "scores.parquet"
"""A fit task's per-target table (:func:`cortexscale.study.schema.target_frame`), in its folder."""


def read_scores(folder) -> pd.DataFrame:
    """The per-target scores a fit task wrote in ``folder``."""
    return pd.read_parquet(Path(folder) / SCORES)


def design(run, features: dict, alignment) -> np.ndarray:
    """Features of the run's stimulus on its scans, (n_trs, d); ``features`` maps a stimulus to (onsets,
    durations, array) on the stimulus clock."""
    onsets, durations, values = features[run.stimulus]
    return align_to_trs(values, onsets - run.first_scan_time, run.tr, run.n_trs, method=alignment.method,
                        window=alignment.window, cutoff_mult=alignment.cutoff_mult,
                        durations=durations if alignment.method == "boxcar" else None)


def responses(data, members: list[str], run_name: str, test: bool) -> np.ndarray:
    """Responses (n_trs, n_targets) of one run averaged over ``members`` (one subject, or a group); a test run
    with repeats gives the mean of its repeats."""
    parts = []
    for member in members:
        run = next(r for r in data.runs_of(member) if r.name == run_name)
        repeats = run.repeats() if test else None
        parts.append(repeats.mean(0) if repeats is not None else run.responses())
    return np.mean(parts, axis=0, dtype=np.float64)


def _block(run, spaces: list[dict], data, s: FitSettings, delays, trim) -> tuple[np.ndarray, np.ndarray]:
    """One run's design (n, sum of widths; delayed where ``delays`` is given) and responses, trimmed."""
    X = np.concatenate([design(run, features, s.alignment) for features in spaces], axis=1)
    Y = responses(data, s.members, run.name, run.split == "test")
    if delays is not None:
        X = delay_features(X, delays).astype(X.dtype, copy=False)
    start, end = trim
    return X[start:len(X) - end], Y[start:len(Y) - end]


def _cut(blocks: list[tuple], size: int | None) -> list[tuple]:
    """The first ``size`` TRs of a list of (X, Y) blocks, in order (all for None)."""
    out, left = [], size
    for X, Y in blocks:
        if left is not None and left <= 0:
            break
        n = len(X) if left is None else min(left, len(X))
        out.append((X[:n], Y[:n]))
        left = None if left is None else left - n
    return out


def _stack(blocks: list[tuple], zscore: bool, widths: tuple, delays) -> Design:
    lengths = [len(X) for X, _ in blocks]
    X, Y = np.concatenate([X for X, _ in blocks]), np.concatenate([Y for _, Y in blocks])
    if zscore:
        X, Y = zscore_runs(X, lengths), zscore_runs(Y, lengths)
    return Design(X, Y, lengths, widths, delays)


def fold_segments(lengths: list[int], folds: int) -> list[list[tuple[int, int, int]]]:
    """Per outer fold, its segments (run index, start, stop): contiguous folds over the concatenated runs."""
    total = sum(lengths)
    edges = np.linspace(0, total, folds + 1).round().astype(int)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        parts = []
        for i, (s, n) in enumerate(zip(starts, lengths)):
            lo, hi = max(a, s), min(b, s + n)
            if lo < hi:
                parts.append((i, lo - s, hi - s))
        out.append(parts)
    return out


class _Fitter:
    """Fits one task's kind of fit on (X, Y) blocks: designs built with the task's widths and pending delays."""

    def __init__(self, kind, entry, widths: tuple, delays, device: str):
        self.kind, self.entry, self.widths, self.delays, self.device = kind, entry, widths, delays, device

    def __call__(self, train: list[tuple], test: list[tuple]) -> tuple[FitOutput, np.ndarray, int]:
        """The fit's output, the test responses (n_test, t) and the number of training TRs."""
        train_d = _stack(train, self.entry.zscore, self.widths, self.delays)
        test_d = _stack(test, self.entry.zscore, self.widths, self.delays)
        return self.kind.fit(train_d, test_d, self.entry, self.device), test_d.Y, sum(train_d.lengths)


def _by_folds(blocks: list[tuple], folds: int, size, fitter: _Fitter) -> tuple[FitOutput, np.ndarray, int]:
    """Pooled out-of-fold output and the targets it predicts; per-target measures averaged over folds (penalties
    geometrically)."""
    segments = fold_segments([len(X) for X, _ in blocks], folds)
    cut = lambda parts: [(blocks[i][0][a:b], blocks[i][1][a:b]) for i, a, b in parts]  # noqa: E731
    outputs, targets, n_train = [], [], []
    for f, held in enumerate(segments):
        train = _cut([blk for g, parts in enumerate(segments) if g != f for blk in cut(parts)], size)
        output, Yt, n = fitter(train, cut(held))
        outputs.append(output)
        targets.append(Yt)
        n_train.append(n)
    return _pooled(outputs), np.concatenate(targets), int(np.mean(n_train))


def _geometric(values: list[np.ndarray]) -> np.ndarray:
    return np.exp(np.mean(np.log(values), axis=0))


def _pooled(outputs: list[FitOutput]) -> FitOutput:
    alone = None if outputs[0].alone is None else np.concatenate([o.alone for o in outputs], axis=1)
    per_space = {measure: (_geometric if measure == "alpha" else lambda v: np.mean(v, axis=0))(
        [o.per_space[measure] for o in outputs]) for measure in outputs[0].per_space}
    return FitOutput(np.concatenate([o.prediction for o in outputs]), _geometric([o.alpha for o in outputs]), alone,
                     per_space)


@stage("fit", version=2, accelerated=True)
def fit(task, context) -> dict:
    s = FitSettings.model_validate(task.settings)
    kind = FITS[s.encoding["method"]]
    entry = kind.spec.model_validate(s.encoding)
    data = dataset_of(s.dataset)
    spaces = [{stimulus: load_features(context.inputs[role], space.layer) for stimulus, role in space.features.items()}
              for space in s.spaces]
    widths = tuple(int(next(iter(features.values()))[2].shape[1]) for features in spaces)
    delays = tuple(entry.delays)
    trimmed = tuple(entry.trim) != (0, 0)
    runs = data.runs_of(s.members[0])
    blocks = lambda split: [_block(r, spaces, data, s, delays if trimmed else None, entry.trim)  # noqa: E731
                            for r in runs if r.split == split]
    fitter = _Fitter(kind, entry, widths, None if trimmed else delays, context.device)
    size = s.fmri.size
    if s.evaluation.mode == "test-runs":
        train = blocks("train")
        if size != "all":
            train = train[:size] if s.fmri.unit == "runs" else _cut(train, size)
        output, Y, n_train = fitter(train, blocks("test"))
    else:
        output, Y, n_train = _by_folds(blocks("train"), s.evaluation.folds, None if size == "all" else size, fitter)
    r, r2 = correlation_score(Y, output.prediction), r2_score(Y, output.prediction)
    names = [space.name for space in s.spaces]
    alone = None if output.alone is None else np.stack([correlation_score(Y, p) for p in output.alone])
    scores = schema.target_frame(data.targets, r, r2, output.alpha, names, alone, output.per_space)
    scores.to_parquet(context.out / SCORES, index=False)
    return {"n_train_trs": n_train, "n_test_trs": int(len(Y)), "mean_r": float(np.nanmean(r))}
