"""The ``fit`` stage: one encoding model of one subject on one layer's features and one amount of fMRI
training data, scored per target on held-out data.

Features are aligned to each run's scans; features and responses are z-scored per segment (a run, or a run's
part inside one outer fold) and FIR delays never cross a segment. "test-runs" fits the chosen training runs
and scores the test runs (their repeats averaged, where they have them); "folds-k" pools the predictions of
k contiguous outer folds over the training runs, each fold's training data cut to the chosen size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...encoding import RidgeCV, correlation_score, r2_score
from ...encoding.preprocessing import zscore_runs
from ...features import align_to_trs
from ...runtime import cpu_threads, resolve_device
from ..plan import dataset_of
from ..tasks import stage
from .features import load_features

__all__ = ["SMALL_FIT_WORK", "design", "fit_threads", "fold_segments", "responses"]

SMALL_FIT_WORK = 3e9
"""Below this many multiply-adds (``min(n, p)² · max(n, p) + n · p · t`` of a design of n samples, p columns
after delays, and t targets) a CPU fit runs on one thread: thread start-up then costs more than it saves. On
the 2-core development machine such fits ran 1.2-3x faster on one thread, and larger ones 1.2-1.5x faster on
two."""


def design(run, features: dict, alignment: dict) -> np.ndarray:
    """Features of the run's stimulus on its scans, (n_trs, d); ``features`` maps a stimulus to (onsets, array)."""
    onsets, values = features[run.stimulus]
    return align_to_trs(values, onsets - run.first_scan_time, run.tr, run.n_trs, method=alignment["method"],
                        window=alignment["window"], cutoff_mult=alignment["cutoff_mult"])


def responses(data, members: list[str], run_name: str, test: bool) -> np.ndarray:
    """Responses (n_trs, n_targets) of one run averaged over ``members`` (one subject, or a group); a test run
    with repeats gives the mean of its repeats."""
    parts = []
    for member in members:
        run = next(r for r in data.runs_of(member) if r.name == run_name)
        repeats = run.repeats() if test else None
        parts.append(repeats.mean(0) if repeats is not None else run.responses())
    return np.mean(parts, axis=0, dtype=np.float64)


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


def _stack(blocks: list[tuple], zscore: bool) -> tuple[np.ndarray, np.ndarray, list[int]]:
    lengths = [len(X) for X, _ in blocks]
    X, Y = np.concatenate([X for X, _ in blocks]), np.concatenate([Y for _, Y in blocks])
    if zscore:
        X, Y = zscore_runs(X, lengths), zscore_runs(Y, lengths)
    return X, Y, lengths


def _model(encoding: dict, device: str) -> RidgeCV:
    return RidgeCV(alphas=encoding["alphas"], cv=encoding["cv"], scoring=encoding["scoring"],
                   delays=encoding["delays"], dtype=encoding["dtype"], backend=device)


def fit_threads(n: int, p: int, t: int, device) -> int | None:
    """1 for a CPU fit of n samples, p design columns and t targets below ``SMALL_FIT_WORK``, else None
    (threads left as they are)."""
    work = min(n, p) ** 2 * max(n, p) + n * p * t
    return 1 if resolve_device(device).type == "cpu" and work < SMALL_FIT_WORK else None


def _fit_predict(train: list[tuple], test: list[tuple], encoding: dict, device: str):
    X, Y, lengths = _stack(train, encoding["zscore"])
    Xt, Yt, test_lengths = _stack(test, encoding["zscore"])
    model = _model(encoding, device)
    with cpu_threads(fit_threads(len(X), X.shape[1] * max(1, len(encoding["delays"])), Y.shape[1], device)):
        model.fit(X, Y, run_lengths=lengths)
        prediction = model.predict(Xt, run_lengths=test_lengths)
    return model, prediction, Yt, sum(lengths)


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


def _by_folds(blocks: list[tuple], folds: int, size, encoding: dict, device: str):
    """Pooled out-of-fold predictions and the targets they predict, (n, n_targets) each, and alphas per fold."""
    segments = fold_segments([len(X) for X, _ in blocks], folds)
    cut = lambda parts: [(blocks[i][0][a:b], blocks[i][1][a:b]) for i, a, b in parts]  # noqa: E731
    predictions, targets, alphas, n_train = [], [], [], []
    for f, held in enumerate(segments):
        train = _cut([blk for g, parts in enumerate(segments) if g != f for blk in cut(parts)], size)
        model, pred, Yt, n = _fit_predict(train, cut(held), encoding, device)
        predictions.append(pred)
        targets.append(Yt)
        alphas.append(np.atleast_1d(model.alpha_))
        n_train.append(n)
    return np.concatenate(predictions), np.concatenate(targets), np.exp(np.mean(np.log(alphas), axis=0)), \
        int(np.mean(n_train))


@stage("fit", version=1, accelerated=True)
def fit(task, context) -> dict:
    s = task.settings
    data = dataset_of(s["dataset"])
    features = {role.split(":", 1)[1]: load_features(folder, s["layer"]) for role, folder in context.inputs.items()}
    runs = data.runs_of(s["members"][0])
    blocks = lambda split: [(design(r, features, s["alignment"]),  # noqa: E731
                             responses(data, s["members"], r.name, split == "test")) for r in runs if r.split == split]
    unit, size = s["fmri"]["unit"], s["fmri"]["size"]
    encoding, device = s["encoding"], s["device"]
    if s["evaluation"] == "test-runs":
        train = blocks("train")
        if size != "all":
            train = train[:size] if unit == "runs" else _cut(train, size)
        model, prediction, Y, n_train = _fit_predict(train, blocks("test"), encoding, device)
        alpha = np.atleast_1d(model.alpha_)
    else:
        folds = int(s["evaluation"].split("-")[1])
        prediction, Y, alpha, n_train = _by_folds(blocks("train"), folds, None if size == "all" else size, encoding,
                                                  device)
    r, r2 = correlation_score(Y, prediction), r2_score(Y, prediction)
    scores = pd.DataFrame({"target": list(data.targets), "r": r, "r2": r2, "alpha": alpha})
    scores.to_parquet(context.out / "scores.parquet", index=False)
    return {"n_train_trs": n_train, "n_test_trs": int(len(Y)), "mean_r": float(np.nanmean(r))}
