"""The ``fit`` stage: one encoding model of one subject on its feature spaces (one layer of one model, or
several joined) and one amount of fMRI training data, scored per target on held-out data.

Each space's features are aligned to each run's scans and the spaces put side by side; with a trim, the
features are delayed over the whole run first and then the run's first and last TRs dropped, so a kept TR
still sees the stimulus before it. Features and responses are z-scored per segment (a run, or a run's part
inside one outer fold) and FIR delays never cross a segment. "test-runs" fits the chosen training runs and
scores the test runs (their repeats averaged, where they have them); "folds-k" pools the predictions of k
contiguous outer folds over the training runs, each fold's training data cut to the chosen size. A fit with a
projection projects each space after the z-scores, learnt on that fit's (or that outer fold's) training TRs
only. The kind of fit (:data:`cortexscale.study.fits.FITS`) does the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...encoding import block_statistics, correlation_score, r2_score, time_blocks
from ...encoding.preprocessing import zscore_runs
from ...features import align_to_trs
from .. import schema
from ..fits import FITS, Design, FitOutput
from ..fits.base import FitShape, batch_within, projected
from ..plan import dataset_of
from ..protocol import FitSettings
from ..tasks import stage
from .features import load_features

__all__ = ["design", "fold_segments", "read_blocks", "read_scores", "responses"]

SCORES = "scores.parquet"
"""A fit task's per-target table (:func:`cortexscale.study.schema.target_frame`), in its folder."""


BLOCKS = "blocks.npy"
"""A fit task's per-block statistics of its test TRs (K, 6, n_targets), float64, in its folder, when the study
asks for a test-TR block bootstrap (:func:`cortexscale.encoding.block_statistics`)."""


def read_scores(folder) -> pd.DataFrame:
    """The per-target scores a fit task wrote in ``folder``."""
    return pd.read_parquet(Path(folder) / SCORES)


def read_blocks(folder) -> np.ndarray | None:
    """The per-block statistics (K, 6, n_targets) a fit task wrote in ``folder``, None if it wrote none."""
    path = Path(folder) / BLOCKS
    return np.load(path) if path.exists() else None


def design(run, features: dict, alignment) -> np.ndarray:
    """Features of the run's stimulus on its scans, (n_trs, d); ``features`` maps a stimulus to (onsets,
    durations, array) on the stimulus clock."""
    onsets, durations, values = features[run.stimulus]
    return align_to_trs(values, onsets - run.first_scan_time, run.tr, run.n_trs, method=alignment.method,
                        window=alignment.window, cutoff_mult=alignment.cutoff_mult,
                        durations=durations if alignment.method == "boxcar" else None)


def responses(data, members: list[str], run_name: str, test: bool) -> np.ndarray:
    """Responses (n_trs, n_targets) float32 of one run averaged over ``members`` (one subject, or a group); a
    test run with repeats gives the mean of its repeats."""
    total = None
    for member in members:
        run = next(r for r in data.runs_of(member) if r.name == run_name)
        repeats = run.repeats() if test else None
        part = repeats.mean(0, dtype=np.float32) if repeats is not None else run.responses()
        if len(members) == 1:
            return part
        total = np.array(part, dtype=np.float32) if total is None else np.add(total, part, out=total)
    return np.divide(total, np.float32(len(members)), out=total)


class _Latest:
    """The value of the last key asked for, kept for the next task in this process: the fits of one subject
    run one after another (the planner orders them so), and share one read and one preparation of its
    responses. One value is held at a time, so memory stays at one subject's."""

    def __init__(self):
        self.key, self.value = None, None

    def get(self, key, make):
        if key != self.key:
            self.key, self.value = None, None  # the old value goes before the new one is built
            self.value, self.key = make(), key
        return self.value


_RUNS, _PREPARED = _Latest(), _Latest()


def _read_runs(data, s: FitSettings, trim) -> dict[str, np.ndarray]:
    """Run name -> the run's trimmed float32 responses (n, t), for every run of the fit's subject."""
    start, end = trim
    return {run.name: responses(data, s.members, run.name, run.split == "test")[start:run.n_trs - end]
            for run in data.runs_of(s.members[0])}


def _trimmed_responses(data, s: FitSettings, trim) -> dict[str, np.ndarray]:
    """:func:`_read_runs`, kept for the next task of the same subject (cross-validated fits slice their folds
    from the runs)."""
    key = (s.dataset.model_dump_json(), tuple(s.members), tuple(trim))
    return _RUNS.get(key, lambda: _read_runs(data, s, trim))


def _prepared(data, s: FitSettings, trim, zscore: bool, train_rows: list[int], test_rows: list[int]):
    """The fit's joined training (n_train, t) and test (n_test, t) float32 responses: the first
    ``train_rows[i]`` TRs of the i-th training run, and the test runs, each z-scored where ``zscore``. Kept for
    the next fit of the same subject and size; the runs themselves are read only to build it, and let go."""
    def make():
        read = _read_runs(data, s, trim)
        names = lambda split: [r.name for r in data.runs_of(s.members[0]) if r.split == split]  # noqa: E731
        parts = lambda split, rows: [read[name][:n] for name, n in zip(names(split), rows)]  # noqa: E731
        return _joined(parts("train", train_rows), zscore), _joined(parts("test", test_rows), zscore)

    key = (s.dataset.model_dump_json(), tuple(s.members), tuple(trim), tuple(train_rows), tuple(test_rows), zscore)
    return _PREPARED.get(key, make)


def _design_block(run, spaces: list[dict], s: FitSettings, delays, trim) -> np.ndarray:
    """One run's design (n, sum of widths; delayed where ``delays`` is given), trimmed."""
    from ...encoding import delay_features

    X = np.concatenate([design(run, features, s.alignment) for features in spaces], axis=1)
    if delays is not None:
        X = delay_features(X, delays).astype(X.dtype, copy=False)
    start, end = trim
    return X[start:len(X) - end]


def _cut(blocks: list[tuple], size: int | None) -> list[tuple]:
    """The first ``size`` TRs of a list of (X, Y) blocks, in order (all for None); Y may be None."""
    out, left = [], size
    for X, Y in blocks:
        if left is not None and left <= 0:
            break
        n = len(X) if left is None else min(left, len(X))
        out.append((X[:n], None if Y is None else Y[:n]))
        left = None if left is None else left - n
    return out


def _joined(parts: list[np.ndarray], zscore: bool, dtype=np.float32) -> np.ndarray:
    """Blocks stacked into one array (rows) of ``dtype``, each z-scored on its own when ``zscore``: responses
    in float32 (the fits' precision; no float64 copy of a whole brain), the narrower features in float64."""
    out = np.concatenate(parts).astype(dtype, copy=False)
    return zscore_runs(out, [len(p) for p in parts], copy=False) if zscore else out


def _stack(blocks: list[tuple], zscore: bool, widths: tuple, delays, Y=None) -> Design:
    """The design of (X, Y) blocks; ``Y``, when given, is their responses already joined."""
    lengths = [len(X) for X, _ in blocks]
    X = _joined([X for X, _ in blocks], zscore, np.float64)
    return Design(X, _joined([Y for _, Y in blocks], zscore) if Y is None else Y, lengths, widths, delays)


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
    """Fits one task's kind of fit on (X, Y) blocks: designs built with the task's widths and pending delays,
    each space projected where ``projection`` is given (learnt on the training blocks), within ``memory``
    bytes (None: no limit), its process holding ``held`` TRs of the subject's responses."""

    def __init__(self, kind, entry, widths: tuple, delays, device: str, memory: int | None = None, held: int = 0,
                 projection=None):
        self.kind, self.entry, self.widths, self.delays, self.device = kind, entry, widths, delays, device
        self.memory, self.held, self.projection = memory, held, projection

    def _options(self, train: Design, test: Design) -> dict:
        """The target batch that keeps a batched kind's peak within the memory left (none: its default)."""
        if not self.kind.batched:
            return {}
        shape = FitShape(len(train.X), len(test.X), train.Y.shape[1], train.widths, len(self.entry.delays),
                         self.entry.n_splits(len(train.lengths)))
        return {"target_batch": batch_within(self.kind, shape, self.entry, self.memory, self.held)}

    def __call__(self, train: list[tuple], test: list[tuple], responses=None
                 ) -> tuple[FitOutput, np.ndarray, list[int], int]:
        """The fit's output, the test responses (n_test, t), the lengths of their segments and the number of
        training TRs; ``responses``, when given, are the training and test Y already joined (shared by the fits
        of one subject and size)."""
        Y_train, Y_test = responses or (None, None)
        train_d = _stack(train, self.entry.zscore, self.widths, self.delays, Y_train)
        test_d = _stack(test, self.entry.zscore, self.widths, self.delays, Y_test)
        if self.projection is not None:
            p = self.projection
            train_d, test_d = projected(train_d, test_d, p.method, p.dims, p.seed)
        output = self.kind.fit(train_d, test_d, self.entry, self.device, **self._options(train_d, test_d))
        return output, test_d.Y, list(test_d.lengths), sum(train_d.lengths)


def _by_folds(blocks: list[tuple], folds: int, size, fitter: _Fitter
              ) -> tuple[FitOutput, np.ndarray, list[int], int]:
    """Pooled out-of-fold output, the targets it predicts and their segments; per-target measures averaged over
    folds (penalties geometrically)."""
    segments = fold_segments([len(X) for X, _ in blocks], folds)
    cut = lambda parts: [(blocks[i][0][a:b], blocks[i][1][a:b]) for i, a, b in parts]  # noqa: E731
    outputs, targets, lengths, n_train = [], [], [], []
    for f, held in enumerate(segments):
        train = _cut([blk for g, parts in enumerate(segments) if g != f for blk in cut(parts)], size)
        output, Yt, parts, n = fitter(train, cut(held))
        outputs.append(output)
        targets.append(Yt)
        lengths.extend(parts)
        n_train.append(n)
    return _pooled(outputs), np.concatenate(targets), lengths, int(np.mean(n_train))


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
    delays, trim = tuple(entry.delays), tuple(entry.trim)
    trimmed = trim != (0, 0)
    runs = data.runs_of(s.members[0])
    blocks = lambda split, read: [(_design_block(r, spaces, s, delays if trimmed else None, trim),  # noqa: E731
                                   None if read is None else read[r.name]) for r in runs if r.split == split]
    fitter = lambda held: _Fitter(kind, entry, widths, None if trimmed else delays, context.device,  # noqa: E731
                                  context.memory, held, s.projection)
    size = s.fmri.size
    if s.evaluation.mode == "test-runs":
        train, test = blocks("train", None), blocks("test", None)
        if size != "all":
            train = train[:size] if s.fmri.unit == "runs" else _cut(train, size)
        joined = _prepared(data, s, trim, entry.zscore, [len(X) for X, _ in train], [len(X) for X, _ in test])
        output, Y, lengths, n_train = fitter(len(joined[0]) + len(joined[1]))(train, test, joined)
    else:
        read = _trimmed_responses(data, s, trim)
        output, Y, lengths, n_train = _by_folds(blocks("train", read), s.evaluation.folds,
                                                None if size == "all" else size,
                                                fitter(sum(len(y) for y in read.values())))
    r, r2 = correlation_score(Y, output.prediction), r2_score(Y, output.prediction)
    names = [space.name for space in s.spaces]
    alone = None if output.alone is None else np.stack([correlation_score(Y, p) for p in output.alone])
    scores = schema.target_frame(data.targets, r, r2, output.alpha, names, alone, output.per_space)
    scores.to_parquet(context.out / SCORES, index=False)
    if s.test_blocks is not None:
        np.save(context.out / BLOCKS, block_statistics(Y, output.prediction, time_blocks(lengths, s.test_blocks)))
    return {"n_train_trs": n_train, "n_test_trs": int(len(Y)), "mean_r": float(np.nanmean(r))}
