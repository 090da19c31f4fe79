"""Scaling laws of a brain score: :func:`fit_law` on any results table, and its result :class:`ScalingFit`.

Laws (see :mod:`cortexscale.scaling._fits` for the fitting):

* ``"joint"``: ``1 − ŝ = E + A·N^−α + B·D^−β`` over parameters N and training data D, or over any two or all
  three of N, D and the fMRI training data M (``+ C·M^−γ``);
* ``"power"``: ``1 − ŝ = E + A·X^−α`` over one axis X (N, D or compute C);
* ``"loglinear"``: ``ŝ = intercept + slope·log10 X`` over one axis.

Rows and points
---------------
A point is one distinct value of the law's axes. With ``groups=None`` each point gets one score, the mean of
its rows (targets, subjects and anything else that varies, such as seeds), and the bootstrap redraws points.
With ``groups="subject"`` each (subject, point) is a row of the fit whose score is the mean over that subject's
targets at the point; the bootstrap redraws subjects and, within each subject, targets (when the table has a
``target`` column), recomputing every score. Select the rows to fit first (one layer per model, say): rows
differing in other columns are averaged. Given the statistics of blocks of test TRs (``blocks=``), the
bootstrap can redraw those blocks as well or instead (``resample=``), each score recomputed from its drawn
blocks: with one test story, most of the uncertainty is in the stimulus.

Scores at or above 1
--------------------
The saturating laws model ``log(1 − s)``, so ``1 − s`` is floored at :data:`MISALIGNMENT_FLOOR`; a warning
says how many scores were affected. Negative scores need no care (``1 − s > 1``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import _fits
from ._blocks import RESAMPLE_NAMES, median_block, resampled_words, resampling
from ._resample import percentile_interval, resampled_rows
from ._tables import TARGET, build_panel, check_columns, panel_rows, point_scores, positive_column
from .compute import ComputeLaw, fit_compute_law

__all__ = ["JOINT_AXES", "LAWS", "MISALIGNMENT_FLOOR", "ScalingFit", "fit_law", "law_names"]

LAWS = tuple(_fits.LAW_SPECS)
"""Names of the laws :func:`fit_law` fits."""
ROLES = ("params", "data", "fmri", "compute")
SYMBOLS = {"params": "N", "data": "D", "fmri": "M", "compute": "C"}
JOINT_AXES = ("params", "data", "fmri")
"""The axes a joint law may take (two or three of them, in this order)."""
JOINT_TERMS = {"params": ("A", "alpha", "α"), "data": ("B", "beta", "β"), "fmri": ("C", "gamma", "γ")}
"""Each joint axis' coefficient, exponent and the exponent's symbol."""
MISALIGNMENT_FLOOR = 1e-2
"""Smallest misalignment ``1 − s`` a saturating law is fitted to."""

_FULL_REFINE = 16
_BOOT_REFINE = 1
_BOOT_STARTS = 64
"""Grid starts a resample screens: the best on the full data."""


def law_names(law: str, roles) -> tuple[str, ...]:
    """Raw parameter names of ``law`` over axes ``roles``: ``E`` then each joint axis' coefficient and exponent
    (``A, alpha`` for params, ``B, beta`` for data, ``C, gamma`` for fmri)."""
    if law != "joint":
        return _fits.LAW_SPECS[law].names
    return ("E",) + tuple(name for role in roles for name in JOINT_TERMS[role][:2])


def law_formula(law: str, roles) -> str:
    """The law's formula in the symbols of its axes."""
    if law == "joint":
        return "1 − ŝ = E + " + " + ".join(f"{JOINT_TERMS[r][0]}·{SYMBOLS[r]}^−{JOINT_TERMS[r][2]}" for r in roles)
    return _fits.LAW_SPECS[law].formula.replace("X", SYMBOLS[next(iter(roles))])


@dataclass(frozen=True, eq=False)
class ScalingFit:
    """A fitted scaling law with bootstrap draws.

    Attributes
    ----------
    law : str
        ``"joint"``, ``"power"`` or ``"loglinear"``.
    score : str
        The score column fitted.
    axes : dict
        Role (``"params"``, ``"data"``, ``"fmri"``, ``"compute"``) → column, in the law's axis order.
    params : dict
        Parameter name → value, in raw units (``E, A, alpha, B, beta`` and ``C, gamma`` for an fMRI axis, see
        :func:`law_names`; ``E, A, alpha``; ``intercept, slope``).
    intervals : dict
        Name → (low, high) percentile interval at :attr:`level`, for every parameter and for each
        ``gain_per_decade_<role>``; (nan, nan) without bootstrap draws.
    boot : ndarray (n_boot, n_params)
        Parameters refitted on each resample, columns in :attr:`param_names` order; NaN rows are resamples
        with too few distinct points to fit.
    n_points, n_rows : int
        Distinct points, and rows fitted (points × groups).
    loss : float
        At the fit: the summed Huber loss of ``log(1 − s)`` (saturating laws) or the residual sum of
        squares of ``s`` (loglinear).
    ranges : dict
        Role → (smallest, largest) value measured.
    best : dict
        The measured point of highest score: role → its axis value, and ``"score"`` (its mean score, over
        groups of the groups' means).
    resample : str
        What the bootstrap redrew: ``"groups"`` (groups and their targets), ``"rows"`` (points), ``"blocks"``
        (blocks of test TRs) or ``"groups+blocks"``.
    block_trs : float or None
        The median length in TRs of the blocks of test TRs redrawn, None without them.
    """

    law: str
    score: str
    axes: dict
    params: dict
    intervals: dict
    boot: np.ndarray = field(repr=False)
    n_points: int
    n_rows: int
    loss: float
    ranges: dict
    level: float = 0.95
    groups: str | None = None
    delta: float = 1e-3
    compute_law: ComputeLaw = ComputeLaw()
    best: dict = field(default_factory=dict)
    resample: str = "groups"
    block_trs: float | None = None

    @property
    def resampled(self) -> str:
        """What the intervals' bootstrap redrew, in words: "'subject' levels and their targets", "blocks of 10
        test TRs", ..."""
        return resampled_words(self.resample, f"{self.groups!r} levels" if self.groups else "points",
                               self.block_trs)

    @property
    def param_names(self) -> tuple[str, ...]:
        return law_names(self.law, tuple(self.axes))

    @property
    def gain_per_decade(self) -> dict[str, float]:
        """Role → mean gain in score per decade of that axis over its measured range.

        ``(ŝ(hi) − ŝ(lo)) / log10(hi / lo)``; the slope for ``loglinear``; for ``joint`` each axis at any value
        of the others (the law is additive in them).
        """
        gains = _fits.gains_per_decade(self.law, self._raw(), list(self.ranges.values()))[0]
        return dict(zip(self.axes, map(float, gains)))

    @property
    def n_failed(self) -> int:
        """Resamples that could not be fitted (too few distinct points drawn)."""
        return int(np.isnan(self.boot).any(axis=1).sum())

    def _raw(self) -> np.ndarray:
        return np.array([self.params[name] for name in self.param_names])

    def _axis_values(self, x, given: dict) -> list[np.ndarray]:
        roles = list(self.axes)
        if x is not None:
            if len(roles) != 1 or any(v is not None for v in given.values()):
                raise TypeError(f"pass x alone, and only to a single-axis law; the {self.law} law takes "
                                + ", ".join(f"{r}=" for r in roles))
            given = {roles[0]: x}
        passed = [r for r, v in given.items() if v is not None]
        if sorted(passed) != sorted(roles):
            raise ValueError(f"the {self.law} law of {self.score!r} predicts from "
                             f"{', '.join(f'{r}=' for r in roles)}; got {', '.join(f'{r}=' for r in passed) or 'none'}")
        values = [np.asarray(given[r], dtype=float) for r in roles]
        for role, v in zip(roles, values):
            if not np.all(v > 0):
                raise ValueError(f"{role}= must be positive, got {v[~(v > 0)].ravel()[:3]}")
        return values

    def predict(self, x=None, *, params=None, data=None, fmri=None, compute=None) -> np.ndarray:
        """Predicted score at the given axis values (arrays broadcast together), e.g. ``fit.predict(params=N,
        data=D)``, or ``fit.predict(X)`` for a single-axis law. Returns the broadcast shape."""
        values = self._axis_values(x, {"params": params, "data": data, "fmri": fmri, "compute": compute})
        return _fits.predict_scores(self.law, self._raw()[None], values)[0]

    def band(self, x=None, level: float | None = None, *, params=None, data=None, fmri=None, compute=None):
        """Percentile band (low, high) of the bootstrap predictions at the given axis values (as
        :meth:`predict`), at ``level`` (default :attr:`level`)."""
        values = self._axis_values(x, {"params": params, "data": data, "fmri": fmri, "compute": compute})
        draws = self.boot[~np.isnan(self.boot).any(axis=1)]
        if len(draws) == 0:
            raise ValueError("this fit has no bootstrap draws (n_boot=0 or every resample failed); no band")
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            predictions = _fits.predict_scores(self.law, draws, values)
        point = _fits.predict_scores(self.law, self._raw()[None], values)[0]
        return percentile_interval(predictions, self.level if level is None else level, point)

    def summary(self) -> str:
        """A few lines: the law, its data, each parameter and gain per decade with its interval, the loss."""
        formula = law_formula(self.law, tuple(self.axes))
        axes = ", ".join(f"{SYMBOLS[r]} = {c!r}" for r, c in self.axes.items())
        rows = f"{self.n_rows} rows ({self.n_points} points" + (f" × {self.groups!r})" if self.groups else ")")
        boot = len(self.boot)
        lines = [f"{self.law} law of {self.score!r}: {formula}  [{axes}]",
                 f"{rows}; {boot} bootstrap resamples" + (f" ({self.n_failed} failed)" if self.n_failed else "")
                 + f" of {self.resampled}, {100 * self.level:g}% percentile intervals"]
        entries = list(self.params.items()) + [(f"gain_per_decade_{r}", g) for r, g in self.gain_per_decade.items()]
        for name, value in entries:
            low, high = self.intervals.get(name, (np.nan, np.nan))
            lines.append(f"  {name:<24} {value:>12.5g}   [{low:.5g}, {high:.5g}]")
        loss = "residual sum of squares" if self.law == "loglinear" else f"summed Huber loss (δ={self.delta:g})"
        lines.append(f"  {loss}: {self.loss:.6g}")
        if self.law == "joint" and {"params", "data"} <= set(self.axes):
            lines.append(f"  compute: {self.compute_law}")
        return "\n".join(lines)


def _axes(law: str, params, data, fmri, compute) -> dict[str, str]:
    given = {role: column for role, column in zip(ROLES, (params, data, fmri, compute)) if column is not None}
    if law == "joint":
        axes = {role: column for role, column in given.items() if role in JOINT_AXES}
        if len(axes) < 2:
            raise ValueError("the joint law needs two or three of params=, data= and fmri= (column names); got "
                             + (", ".join(f"{r}={c!r}" for r, c in axes.items()) or "none"))
        columns = list(given.values())
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"two axes name the same column {repeated[0]!r}")
        if compute is not None and not {"params", "data"} <= set(axes):
            raise ValueError("compute= fits C = m·(N·D)^n and needs params= and data= in the joint law")
        return axes
    if len(given) != 1:
        raise ValueError(f"the {law} law has one axis: pass exactly one of params=, data=, compute= "
                         f"(got {', '.join(f'{r}={c!r}' for r, c in given.items()) or 'none'})")
    return given


def _work_table(table, score, axes, groups) -> pd.DataFrame:
    """The columns a fit uses, axes validated as positive floats."""
    work = pd.DataFrame({column: positive_column(table, column) for column in axes.values()})
    work[score] = table[score].to_numpy()
    if groups is not None:
        work[groups] = table[groups].to_numpy()
        if TARGET in table.columns:
            work[TARGET] = table[TARGET].to_numpy()
    return work


def _check_identifiable(law: str, points: pd.DataFrame, axes: dict) -> None:
    needed = len(law_names(law, tuple(axes))) + 1
    names = ", ".join(axes.values())
    if len(points) < needed:
        raise ValueError(f"too few points to fit the {law} law: it has {needed - 1} parameters and needs at "
                         f"least {needed} distinct points of ({names}); the table has {len(points)}")
    for role, column in axes.items():
        if points[column].nunique() < 2:
            raise ValueError(f"too few points to fit the {law} law: column {column!r} ({role}=) has a single "
                             f"value, {points[column].iloc[0]!r}")


def _enough(n_params: int, codes: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Which resamples (B,) drew enough distinct points for ``n_params`` parameters: codes (P, m) per-axis value
    codes, present (P, B)."""
    ok = present.sum(axis=0) >= n_params + 1
    for j in range(codes.shape[1]):
        by_value = np.zeros((codes[:, j].max() + 1, present.shape[1]))
        np.add.at(by_value, codes[:, j], present)
        ok &= (by_value > 0).sum(axis=0) >= 2
    return ok


def _misalignment_logs(scores: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(1.0 - scores, MISALIGNMENT_FLOOR))


def _warn_floor(scores: np.ndarray, score: str, law: str) -> None:
    floored = int(np.sum(1.0 - scores < MISALIGNMENT_FLOOR))
    if floored:
        warnings.warn(f"{floored} of {len(scores)} {score!r} scores exceed 1 − {MISALIGNMENT_FLOOR:g}; their "
                      f"misalignment 1 − s is floored at {MISALIGNMENT_FLOOR:g} for the {law} law", stacklevel=3)


class _Problem:
    """The arrays of one fit: rows' log axes, scores and point indices, and the axis centres."""

    def __init__(self, law: str, panel, axes: dict, score: str):
        self.law, self.panel = law, panel
        _, self.point_of_row, self.scores = panel_rows(panel)
        missing = ~np.isfinite(self.scores)
        if missing.any():
            example = panel.points.iloc[self.point_of_row[missing][0]].to_dict()
            raise ValueError(f"{int(missing.sum())} rows have no finite {score!r} score (e.g. at {example}); "
                             "drop them first")
        logs = np.log(panel.points[list(axes.values())].to_numpy(dtype=float))
        self.centres = logs.mean(axis=0)
        self.x = (logs - self.centres).T[:, self.point_of_row]
        self.codes = np.stack([pd.factorize(panel.points[c])[0] for c in axes.values()], axis=1)

    def fit(self, scores, weights, delta, warm=None, starts=None) -> tuple[np.ndarray, float]:
        """Raw parameters (p,) and loss of a fit to rows' scores (R,) with weights (R,); ``warm`` and
        ``starts`` (rescaled) as :func:`~cortexscale.scaling._fits.fit_lse` takes them."""
        if self.law == "loglinear":
            x10 = self.x[0] / np.log(10.0)
            c, slope, rss = _fits.fit_loglinear(x10, scores[:, None], weights[:, None])
            return np.array([c[0] - slope[0] * self.centres[0] / np.log(10.0), slope[0]]), float(rss[0])
        keep = weights > 0
        result = _fits.fit_lse(self.x[:, keep], _misalignment_logs(scores[keep]), weights[keep], delta=delta,
                               n_refine=_FULL_REFINE if warm is None else _BOOT_REFINE, warm=warm, starts=starts)
        return _fits.raw_from_theta(result.theta, self.centres), result.loss

    def boot(self, n_boot: int, rng, by: str, raw: np.ndarray, delta: float, progress: bool,
             metric: str = "correlation") -> np.ndarray:
        """Raw parameters (n_boot, p) refitted on each resample; NaN rows where too few points were drawn."""
        draws = np.full((n_boot, len(raw)), np.nan)
        warm = starts = None
        if self.law != "loglinear":
            warm = _fits.theta_from_raw(raw, self.centres)
            y = _misalignment_logs(self.scores)
            starts = _fits.best_starts(self.x, y, np.ones_like(y), delta, _BOOT_STARTS)
        done = 0
        with tqdm(total=n_boot, desc=f"bootstrap ({self.law})", disable=not progress, leave=False) as bar:
            for scores, weights in resampled_rows(self.panel, n_boot, rng, by, metric):
                weights = np.where(np.isfinite(scores), weights, 0.0)
                present = np.zeros((len(self.panel.points), weights.shape[1]))
                np.add.at(present, self.point_of_row, weights > 0)
                ok = _enough(len(raw), self.codes, present)
                for b in np.flatnonzero(ok):
                    draws[done + b] = self.fit(np.nan_to_num(scores[:, b]), weights[:, b], delta, warm, starts)[0]
                done += weights.shape[1]
                bar.update(weights.shape[1])
        return draws


def _intervals(law: str, names, raw: np.ndarray, draws: np.ndarray, ranges: dict, level: float) -> dict:
    """Interval of every parameter and gain per decade, each containing its value at the fit ``raw``."""
    gains = _fits.gains_per_decade(law, draws, list(ranges.values())) if len(draws) else np.empty((0, len(ranges)))
    columns = np.hstack([draws, gains])
    labels = list(names) + [f"gain_per_decade_{r}" for r in ranges]
    if len(columns) == 0:
        return {label: (np.nan, np.nan) for label in labels}
    estimate = np.concatenate([raw, _fits.gains_per_decade(law, raw[None], list(ranges.values()))[0]])
    low, high = percentile_interval(columns, level, estimate)
    return {label: (float(lo), float(hi)) for label, lo, hi in zip(labels, low, high)}


def fit_law(
    table: pd.DataFrame,
    *,
    score: str,
    params: str | None = None,
    data: str | None = None,
    fmri: str | None = None,
    compute: str | None = None,
    law: str = "joint",
    n_boot: int = 1000,
    seed: int = 0,
    groups: str | None = None,
    level: float = 0.95,
    delta: float = 1e-3,
    progress: bool = True,
    blocks: pd.DataFrame | None = None,
    resample: str | None = None,
) -> ScalingFit:
    """Fit a scaling law of ``score`` to a results table, with bootstrap intervals.

    Parameters
    ----------
    table : DataFrame
        One row per point, or per (point, subject, target): a study's ``results`` or ``summary`` table.
    score : str
        Column of the score: ``r``, ``normalised_r`` (per-target rows), ``mean_r``, ``max_normalised_r``, ...
    params, data, fmri, compute : str, optional
        Columns of the axes: parameters N, training data D, fMRI training data M (TRs or runs, e.g.
        ``n_train_trs``) and compute C. ``joint`` takes two or three of ``params``, ``data`` and ``fmri``, and
        with ``params`` and ``data`` optionally ``compute`` (measured training FLOPs) to fit ``C = m·(N·D)^n``
        for :func:`~cortexscale.scaling.compute_optimal` (else ``C = 6·N·D``). The single-axis laws take
        exactly one of the four.
    law : {"joint", "power", "loglinear"}
    n_boot : int
        Bootstrap resamples (0 for none); each is refitted from the start grid, warm-started at the fit.
    seed : int
        Seed of the resampling.
    groups : str, optional
        Column whose levels (subjects) the bootstrap redraws, along with targets within each level; None
        averages each point's rows and redraws points.
    level : float
        Coverage of the percentile intervals.
    delta : float
        Huber δ of the saturating laws (on ``log(1 − s)``); ``inf`` is least squares.
    progress : bool
        Show a progress bar over resamples (tqdm).
    blocks : DataFrame, optional
        The statistics of blocks of test TRs of the table's fits (a study's ``blocks.parquet``, from
        :func:`cortexscale.study.read_blocks`), matched to the table's rows on their shared columns; needed by
        a ``resample`` with blocks, whose scores (``r`` or ``r2``) it recomputes from the drawn blocks.
    resample : {"groups", "blocks", "groups+blocks"}, optional
        What the bootstrap redraws: ``groups`` levels and their targets (the default with ``groups``; points
        without), blocks of test TRs (the stimulus' variability, which a single test story otherwise hides),
        or both. One draw of blocks serves every group with as many blocks (they saw one test stimulus).

    Returns
    -------
    ScalingFit

    Raises
    ------
    ValueError
        For a missing column, non-positive or missing axis values, a point without a finite score, or fewer
        distinct points than the law's parameters + 1.
    """
    if law not in _fits.LAW_SPECS:
        raise ValueError(f"unknown law {law!r}; choose one of {LAWS}")
    axes = _axes(law, params, data, fmri, compute)
    flops = {"compute": compute} if law == "joint" else {}
    check_columns(table, {"score": score, **axes, **flops, "groups": groups})
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 0):
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    by, metric, stats = resampling(table, score, groups, blocks, resample)
    panel = build_panel(_work_table(table, score, axes, groups), score, list(axes.values()), groups, stats)
    _check_identifiable(law, panel.points, axes)
    problem = _Problem(law, panel, axes, score)
    if _fits.LAW_SPECS[law].saturating:
        _warn_floor(problem.scores, score, law)
    with _fits.single_threaded_blas():
        raw, loss = problem.fit(problem.scores, np.ones_like(problem.scores), delta)
        draws = problem.boot(n_boot, np.random.default_rng(seed), by, raw, delta, progress, metric)
    ranges = {role: (float(panel.points[c].min()), float(panel.points[c].max())) for role, c in axes.items()}
    names = law_names(law, tuple(axes))
    compute_law = ComputeLaw()
    if law == "joint" and compute is not None:
        compute_law = fit_compute_law(table, params=params, data=data, compute=compute)
    return ScalingFit(
        law=law, score=score, axes=axes, params=dict(zip(names, map(float, raw))),
        intervals=_intervals(law, names, np.asarray(raw, dtype=float), draws, ranges, level), boot=draws, n_points=len(panel.points),
        n_rows=len(problem.scores), loss=loss, ranges=ranges, level=level, groups=groups, delta=delta,
        compute_law=compute_law, best=_best_point(panel, axes), resample=RESAMPLE_NAMES[by],
        block_trs=median_block(stats),
    )


def _best_point(panel, axes: dict) -> dict:
    """The measured point of highest score: role → axis value, and its ``"score"``."""
    scores = point_scores(panel)
    i = int(np.nanargmax(scores))
    return {**{role: float(panel.points[column].iloc[i]) for role, column in axes.items()},
            "score": float(scores[i])}
