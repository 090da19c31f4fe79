"""What a kind of fit is to a study, the settings every kind shares, and the registry of kinds.

A kind of fit (ridge, banded ridge, stacked regression) owns its entry of the study file's ``encoding`` (a
subclass of :class:`EncodingSpec` whose ``method`` is a ``Literal`` of its name, with its own settings block),
and its fit: from a training and a test :class:`Design` to the test predictions and what it learnt per target
(:class:`FitOutput`). The fit stage prepares the designs (alignment, trims, z-scores, outer folds) and scores
the predictions the same way for every kind. Adding a kind is one module that builds a :class:`FitKind` and
passes it to :func:`register_fit`; a study naming a method that is not registered is refused when it is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ...encoding import Bootstrap
from ...runtime import cpu_threads, resolve_device, resolve_precision
from ..fields import NAME, FieldError, Registry, Spec

if TYPE_CHECKING:
    from ...encoding import RidgeCV

__all__ = ["FITS", "SMALL_FIT_WORK", "BootstrapSpec", "Design", "EncodingSpec", "FitKind", "FitOutput", "FitShape",
           "ProjectionSpec", "SpaceSpec", "batch_within", "fit_threads", "projected", "register_fit", "ridge_batch",
           "ridge_flops", "ridge_memory", "ridge_model", "task_memory"]

SMALL_FIT_WORK = 3e9
"""Below this many multiply-adds (``min(n, p)² · max(n, p) + n · p · t`` of a design of n samples, p columns
after delays, and t targets) a CPU fit runs on one thread: thread start-up then costs more than it saves. On
the 2-core development machine such fits ran 1.2-3x faster on one thread, and larger ones 1.2-1.5x faster on
two."""


class SpaceSpec(Spec):
    """One feature space of a joint fit: one layer of one of the study's models. ``name`` (default the model's
    name) labels its columns in the results (``weight[<name>]``, ...)."""

    model: str = Field(pattern=NAME)
    layer: int
    name: str | None = Field(default=None, pattern=NAME)

    @property
    def label(self) -> str:
        return self.name or self.model


class BootstrapSpec(Spec):
    """The Huth lab's chunked bootstrap (:class:`cortexscale.encoding.Bootstrap`): ``n_boots`` splits, each
    holding out ``test_fraction`` of the training TRs in random chunks of ``chunk_len`` consecutive TRs."""

    n_boots: int = Field(default=15, ge=1)
    chunk_len: int = Field(default=20, ge=1)
    test_fraction: float = Field(default=0.25, gt=0, lt=1)
    seed: int = 0

    def splitter(self) -> Bootstrap:
        return Bootstrap(self.n_boots, self.chunk_len, self.test_fraction, random_state=self.seed)


class BootstrapCV(Spec):
    bootstrap: BootstrapSpec = BootstrapSpec()


CV = Annotated[int, Field(ge=2)] | Literal["runs"] | BootstrapCV
"""How alphas are chosen: an int (contiguous folds), "runs" (leave one run out) or ``{bootstrap: {...}}``."""


def cv_splitter(cv):
    """What :class:`~cortexscale.encoding.RidgeCV` takes for a study file's ``cv``."""
    return cv.bootstrap.splitter() if isinstance(cv, BootstrapCV) else cv


class ProjectionSpec(Spec):
    """Feature-count control (:class:`cortexscale.encoding.FeatureProjection`): every feature space of the
    entry's fits projected to each of ``dims`` columns before delays, as an axis (``all``: not projected).
    ``method`` "srp" is a sparse random projection drawn from ``seed``; "pca" the top principal axes of each
    fit's training TRs (never its test TRs). The results label each fit's ``projection`` ("srp-64", "none")."""

    method: Literal["srp", "pca"] = "srp"
    dims: list[Annotated[int, Field(gt=0)] | Literal["all"]] = Field(min_length=1)
    seed: int = 0

    @field_validator("dims")
    @classmethod
    def _distinct(cls, dims):
        if len(set(map(str, dims))) != len(dims):
            raise ValueError(f"dims must be distinct, got {dims}")
        return dims


class EncodingSpec(Spec):
    """One entry of a study file's ``encoding``: a kind of fit (``method``) and how it is scored.

    ``name`` (default the method) labels the entry's fits in the results' ``encoding`` column. ``spaces``:
    without it, every layer of every model is fitted alone (one feature space); with it, one fit per subject
    and fMRI size joins the listed spaces. ``alphas``: a list, or ``{logspace: [start, stop, num]}`` (default
    ``logspace(1, 4, 15)``). ``cv``: inner splits choosing alpha: an int (contiguous folds), "runs", or
    ``{bootstrap: {n_boots, chunk_len, test_fraction}}``. ``evaluation``: "test-runs" scores on the dataset's
    test runs; ``{folds: k}`` pools the predictions of k contiguous outer folds of each subject's training
    runs; "auto" takes test runs where the dataset has them, else 5 folds. ``trim: [start, end]`` drops that
    many TRs at the start and end of every run, after its features are delayed (the Huth lab drops 10 and 5).
    ``projection: {method: srp | pca, dims: [...]}`` fits each space projected to a fixed feature count
    (:class:`ProjectionSpec`), one fit per dims.
    """

    method: str = "ridge"
    name: str | None = Field(default=None, pattern=NAME)
    spaces: list[SpaceSpec] | None = Field(default=None, min_length=1)
    delays: list[int] = [1, 2, 3, 4]
    alphas: list[Annotated[float, Field(gt=0)]] | dict[Literal["logspace"], tuple[float, float, int]] = {
        "logspace": (1.0, 4.0, 15)}
    cv: CV = 5
    scoring: Literal["correlation", "r2", "neg_mse"] = "correlation"
    dtype: str = "fp32"
    zscore: bool = True
    evaluation: Literal["auto", "test-runs"] | dict[Literal["folds"], Annotated[int, Field(ge=2)]] = "auto"
    trim: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] = (0, 0)
    projection: ProjectionSpec | None = None

    min_spaces: ClassVar[int] = 1
    """Fewest feature spaces the method takes (a kind that joins spaces sets 2)."""

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value):
        return resolve_precision(value, ("fp32", "fp64"), "dtype")

    @field_validator("delays")
    @classmethod
    def _delays(cls, delays):
        if not delays or len(set(delays)) != len(delays):
            raise ValueError(f"delays must be distinct integers, got {delays}")
        return delays

    @model_validator(mode="after")
    def _enough_spaces(self):
        given = len(self.spaces or ())
        if given < self.min_spaces and not (self.spaces is None and self.min_spaces == 1):
            raise FieldError(("spaces",), f"method {self.method} joins feature spaces: give spaces, at least "
                             f"{self.min_spaces} ({given} given), each {{model: <name>, layer: <index>}}")
        names = [space.label for space in self.spaces or ()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise FieldError(("spaces",), f"spaces {twice} appear more than once: give each space its own name")
        return self

    @property
    def label(self) -> str:
        return self.name or self.method

    def alpha_grid(self) -> list[float]:
        if isinstance(self.alphas, dict):
            start, stop, num = self.alphas["logspace"]
            return np.logspace(start, stop, int(num)).tolist()
        return list(self.alphas)

    def n_splits(self, n_runs: int) -> int:
        """How many inner splits choose the alphas, for a training set of ``n_runs`` runs."""
        if isinstance(self.cv, BootstrapCV):
            return self.cv.bootstrap.n_boots
        return n_runs if self.cv == "runs" else int(self.cv)

    def fit_settings(self) -> dict:
        """What changes a fit's result, as JSON (the name, which only labels it, and the evaluation, which the
        planner resolves per subject, and the projection, which the planner gives each fit as its own, are left
        out); alphas as the list they resolve to."""
        return {**self.model_dump(mode="json", exclude={"name", "evaluation", "projection"}),
                "alphas": self.alpha_grid()}


@dataclass(frozen=True)
class Design:
    """One side (training or test) of a fit.

    ``X`` (n, p): the feature spaces side by side, each ``widths[k]`` columns wide before delays; ``Y``
    (n, t); ``lengths``: its segments (runs, or runs' parts within an outer fold), which delays never cross;
    ``delays``: the FIR delays still to apply (the estimator applies them), or None when ``X`` holds them
    already, delay-major (column ``d · sum(widths) + j`` is column j at the d-th delay).
    """

    X: np.ndarray
    Y: np.ndarray
    lengths: list[int]
    widths: tuple[int, ...]
    delays: tuple[int, ...] | None

    def columns(self, k: int) -> np.ndarray:
        """Columns of ``X`` that hold space ``k`` (every delay of it)."""
        from ...encoding import delayed_band_columns

        if self.delays is None:
            return delayed_band_columns(list(self.widths), self.X.shape[1] // sum(self.widths))[k]
        start = sum(self.widths[:k])
        return np.arange(start, start + self.widths[k])

    def space(self, k: int) -> "Design":
        """The design of space ``k`` alone."""
        return Design(self.X[:, self.columns(k)], self.Y, self.lengths, (self.widths[k],), self.delays)

    def delayed(self) -> "Design":
        """The same design with its delays applied (within segments), for estimators that take none."""
        from ...encoding import delay_features

        if self.delays is None:
            return self
        X = delay_features(self.X, self.delays, run_lengths=self.lengths)
        return Design(X.astype(self.X.dtype, copy=False), self.Y, self.lengths, self.widths, None)


def projected(train: Design, test: Design, method: str, dims: int, seed: int) -> tuple[Design, Design]:
    """Both designs with every space projected to ``dims`` columns (before delays), each space's projection
    learnt from the training design's rows alone (for a design that holds its delays, from its first delay's
    columns, and the same projection applied at every delay)."""
    from ...encoding import FeatureProjection

    n_delays = 1 if train.delays is not None else train.X.shape[1] // sum(train.widths)
    starts = np.concatenate([[0], np.cumsum(train.widths)]).astype(int)
    projections = []
    for k, width in enumerate(train.widths):
        try:
            projections.append(FeatureProjection(method, dims, seed + k).fit(train.X[:, starts[k]:starts[k + 1]]))
        except ValueError as err:
            raise ValueError(f"projection of feature space {k} ({width} columns) to {dims}: {err}") from None

    def apply(design: Design) -> Design:
        total = sum(design.widths)
        blocks = [p.transform(design.X[:, d * total + starts[k]:d * total + starts[k + 1]])
                  for d in range(n_delays) for k, p in enumerate(projections)]
        return Design(np.concatenate(blocks, axis=1), design.Y, design.lengths, (dims,) * len(design.widths),
                      design.delays)

    return apply(train), apply(test)


@dataclass(frozen=True)
class FitOutput:
    """What a fit gives back: test ``prediction`` (n_test, t); ``alpha`` (t,) the chosen penalty (NaN where
    the kind has none); for a joint fit, ``alone`` (k, n_test, t), each space's prediction fitted alone, and
    ``per_space`` {"alpha" or "weight": (k, t)}, each space's penalty and weight (band ratio or stacking
    weight)."""

    prediction: np.ndarray
    alpha: np.ndarray
    alone: np.ndarray | None = None
    per_space: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FitShape:
    """The sizes of one fit, known before it runs: ``n_train`` and ``n_test`` TRs, ``targets``, the design's
    ``widths`` (columns per space before delays), ``delays`` and the number of CV ``splits`` of its alphas."""

    n_train: int
    n_test: int
    targets: int
    widths: tuple[int, ...]
    delays: int
    splits: int

    @property
    def columns(self) -> int:
        """Columns of the design after delays."""
        return sum(self.widths) * self.delays

    def space(self, k: int) -> "FitShape":
        return FitShape(self.n_train, self.n_test, self.targets, (self.widths[k],), self.delays, self.splits)


FLOAT = 4  # bytes of a float32


def _ridge_batch_floats(shape: FitShape) -> int:
    """float32 values one target of a batch holds in the solver's working set (blocks, per-split products)."""
    n, p, k = shape.n_train, shape.columns, shape.splits
    return n * (k + 1) + (k + 2) * p if n > p else n * (k + 3) * 2


def ridge_batch(shape: FitShape) -> int:
    """The solver's default target batch for this shape (the rows its dual or primal path batches over)."""
    from ...encoding._solvers import default_target_batch

    rows = shape.n_train * (shape.splits + 3) if shape.n_train <= shape.columns else max(shape.n_train,
                                                                                          shape.columns)
    return min(shape.targets, default_target_batch(rows))


def ridge_memory(shape: FitShape, batch: int | None = None) -> int:
    """Peak bytes of a :class:`~cortexscale.encoding.RidgeCV` fit, predict and score of ``shape`` with
    ``batch`` targets at a time (default: the solver's): the designs, their decomposition per split, the
    weights, the prediction and one batch's working set."""
    n, m, p, t, k = shape.n_train, shape.n_test, shape.columns, shape.targets, shape.splits
    r = min(n, p)
    designs = 2 * (n + m) * p
    decomposition = (k + 3) * r * r + n * r
    weights = p * t if n > p else n * t
    batch = min(t, batch or ridge_batch(shape))
    return FLOAT * (designs + decomposition + weights + 2 * m * t + batch * _ridge_batch_floats(shape)) + 24 * t


def _ridge_kind_memory(shape: FitShape, entry, batch: int | None = None) -> int:
    """A ridge fit's peak; over several spaces the joint fit's (each space alone is fitted after it)."""
    return ridge_memory(shape, batch)


def task_memory(kind: "FitKind", entry, shape: FitShape, held: int, batch: int | None = None) -> int:
    """Peak bytes of a fit task: the responses its process holds (``held`` TRs of the subject's runs, read once
    for the fits that share them), the training and test responses prepared for it, and the kind's peak."""
    return FLOAT * shape.targets * (held + shape.n_train + 2 * shape.n_test) + kind.memory(shape, entry, batch)


def ridge_flops(shape: FitShape, n_alphas: int) -> float:
    """Multiply-adds of a ridge fit: a decomposition per split and the refit, and every alpha's products."""
    n, p, t, k = shape.n_train, shape.columns, shape.targets, shape.splits
    r = min(n, p)
    return (k + 1) * (r * r * max(n, p) + 4 * r ** 3) + (k + 1) * 2 * n * r * t + n_alphas * k * n * r * t


def batch_within(kind: "FitKind", shape: FitShape, entry, limit: int | None, held: int) -> int | None:
    """The target batch a fit task of ``kind`` (holding ``held`` TRs of responses) runs with to stay within
    ``limit`` bytes (:func:`task_memory`): None (the solver's default) when that fits or the kind takes no
    batch, else the largest batch, halving from the default down to 64, that fits (the planner has refused a
    fit that cannot fit even with 64)."""
    if limit is None or not kind.batched or task_memory(kind, entry, shape, held) <= limit:
        return None
    batch = ridge_batch(shape)
    while batch > 64 and task_memory(kind, entry, shape, held, batch) > limit:
        batch = max(64, batch // 2 // 64 * 64)
    return batch


@dataclass(frozen=True)
class FitKind:
    """A kind of fit (see the module docstring): ``fit(train, test, entry, device, target_batch) -> FitOutput``
    with ``entry`` its validated :attr:`spec`; ``memory(shape, entry, batch) -> bytes``, its peak working set
    beyond the responses the fit stage holds (the planner checks it against the memory a task has);
    ``batched``: whether ``fit`` honours ``target_batch`` (a smaller batch lowers its peak)."""

    name: str
    spec: type[EncodingSpec]
    fit: Callable[..., FitOutput]
    memory: Callable[..., int] = _ridge_kind_memory
    batched: bool = False


FITS = Registry("kind of fit", "method")
"""Kinds of fit by name, as an encoding entry's ``method`` names them."""


def register_fit(kind: FitKind) -> FitKind:
    """Add ``kind`` to :data:`FITS` (a study file's encoding may then name it); returns it."""
    return FITS.add(kind.name, kind, kind.spec)


def fit_threads(n: int, p: int, t: int, device) -> int | None:
    """1 for a CPU fit of n samples, p design columns and t targets below ``SMALL_FIT_WORK``, else None
    (threads left as they are)."""
    work = min(n, p) ** 2 * max(n, p) + n * p * t
    return 1 if resolve_device(device).type == "cpu" and work < SMALL_FIT_WORK else None


def ridge_model(entry: EncodingSpec, delays, device, **options) -> RidgeCV:
    """The :class:`~cortexscale.encoding.RidgeCV` of an encoding entry (``delays``: a design's pending ones)."""
    from ...encoding import RidgeCV

    return RidgeCV(alphas=entry.alpha_grid(), cv=cv_splitter(entry.cv), scoring=entry.scoring,
                   delays=None if delays is None else list(delays), dtype=entry.dtype, backend=device, **options)


def fit_ridge(train: Design, test: Design, entry: EncodingSpec, device, **options) -> tuple[RidgeCV, np.ndarray]:
    """A ridge fit of the whole design and its test prediction (n_test, t)."""
    model = ridge_model(entry, train.delays, device, **options)
    n_delays = len(train.delays) if train.delays is not None else 1
    with cpu_threads(fit_threads(len(train.X), train.X.shape[1] * n_delays, train.Y.shape[1], device)):
        model.fit(train.X, train.Y, run_lengths=train.lengths)
        prediction = model.predict(test.X, run_lengths=test.lengths)
    return model, prediction


def alone(train: Design, test: Design, entry: EncodingSpec, device, **options) -> np.ndarray:
    """Each space's test prediction from a ridge fit of that space alone, (k, n_test, t)."""
    return np.stack([fit_ridge(train.space(k), test.space(k), entry, device, **options)[1]
                     for k in range(len(train.widths))])
