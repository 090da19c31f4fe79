"""Cross-validation schemes for time series: contiguous folds, runs, and Huth's bootstrap.

Every scheme resolves, through :func:`check_cv`, into a list of
``(train_idx, val_idx)`` pairs of integer index arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Bootstrap", "LeaveOneRunOut", "check_cv", "contiguous_folds"]


@dataclass(frozen=True)
class Bootstrap:
    """Huth-lab bootstrap: hold out random chunks of consecutive samples.

    Each of ``n_boots`` splits cuts the samples into consecutive chunks of
    ``chunk_len`` and holds out ``round(test_fraction * n_samples / chunk_len)``
    of them, chosen at random; the rest is the training set. Chunks keep the
    autocorrelation of fMRI from leaking neighbouring samples into validation.
    """

    n_boots: int = 15
    chunk_len: int = 20
    test_fraction: float = 0.25
    random_state: int | None = 0

    def split(self, n_samples: int):
        if self.n_boots < 1:
            raise ValueError(f"Bootstrap.n_boots must be >= 1, got {self.n_boots}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"Bootstrap.test_fraction must be in (0, 1), got {self.test_fraction}")
        starts = np.arange(0, n_samples, self.chunk_len)
        n_held = int(round(self.test_fraction * n_samples / self.chunk_len))
        if n_held < 1 or n_held >= len(starts):
            raise ValueError(
                f"Bootstrap with chunk_len={self.chunk_len} and test_fraction={self.test_fraction} cannot "
                f"split {n_samples} samples ({len(starts)} chunks, {n_held} to hold out)"
            )
        rng = np.random.default_rng(self.random_state)
        for _ in range(self.n_boots):
            held = np.sort(rng.choice(len(starts), size=n_held, replace=False))
            mask = np.zeros(n_samples, bool)
            for s in starts[held]:
                mask[s : s + self.chunk_len] = True
            yield np.flatnonzero(~mask), np.flatnonzero(mask)


@dataclass(frozen=True)
class LeaveOneRunOut:
    """Hold out one run (story) at a time; runs come from ``groups`` in ``fit``."""

    def split(self, n_samples: int, groups):
        if groups is None:
            raise ValueError("cv='runs' (leave-one-run-out) needs groups: one run label per sample")
        groups = np.asarray(groups)
        if groups.shape != (n_samples,):
            raise ValueError(f"groups has shape {groups.shape}; expected ({n_samples},), one label per sample")
        labels = np.unique(groups)
        if len(labels) < 2:
            raise ValueError(f"leave-one-run-out needs at least 2 runs, groups hold {len(labels)}")
        for label in labels:
            yield np.flatnonzero(groups != label), np.flatnonzero(groups == label)


def contiguous_folds(n_samples: int, n_folds: int):
    """``n_folds`` contiguous, non-shuffled folds (sizes differ by at most one)."""
    if n_folds < 2:
        raise ValueError(f"cv={n_folds}: at least 2 folds are needed")
    if n_samples < 2 * n_folds:
        raise ValueError(
            f"cv={n_folds} contiguous folds need at least {2 * n_folds} samples (2 per fold), got {n_samples}"
        )
    bounds = np.linspace(0, n_samples, n_folds + 1).round().astype(int)
    all_idx = np.arange(n_samples)
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield np.concatenate([all_idx[:a], all_idx[b:]]), all_idx[a:b]


def check_cv(cv, n_samples: int, groups=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Resolve ``cv`` into a list of ``(train_idx, val_idx)`` pairs.

    ``cv`` may be an int (contiguous folds), ``"runs"`` (leave one run out,
    runs from ``groups``), a :class:`Bootstrap`, any scikit-learn splitter, or
    an iterable of index pairs.
    """
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        splits = list(contiguous_folds(n_samples, int(cv)))
    elif cv == "runs":
        splits = list(LeaveOneRunOut().split(n_samples, groups))
    elif isinstance(cv, Bootstrap):
        splits = list(cv.split(n_samples))
    elif hasattr(cv, "split"):
        splits = list(cv.split(np.zeros((n_samples, 1)), groups=groups))
    elif isinstance(cv, str):
        raise ValueError(f"unknown cv {cv!r}; use an int, 'runs', a Bootstrap or a scikit-learn splitter")
    else:
        splits = list(cv)
    return [_check_split(i, tr, va, n_samples) for i, (tr, va) in enumerate(splits)]


def _check_split(i: int, train, val, n_samples: int):
    train, val = np.asarray(train), np.asarray(val)
    if train.dtype == bool:
        train = np.flatnonzero(train)
    if val.dtype == bool:
        val = np.flatnonzero(val)
    for name, idx in (("training", train), ("validation", val)):
        if idx.size < 2:
            raise ValueError(f"CV split {i} has {idx.size} {name} sample(s) of {n_samples}; at least 2 are needed")
        if idx.min() < 0 or idx.max() >= n_samples:
            raise ValueError(f"CV split {i}: {name} indices fall outside [0, {n_samples})")
    return train.astype(np.intp), val.astype(np.intp)


def is_complement(splits, n_samples: int) -> bool:
    """True when every split's training set is exactly the complement of its validation set."""
    return all(len(tr) + len(va) == n_samples and len(np.union1d(tr, va)) == n_samples for tr, va in splits)
