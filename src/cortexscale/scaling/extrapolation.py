"""Out-of-range check of scaling laws: refit without the largest model (or data size, or fMRI amount), predict
its score.

For each held-out axis, the points at the axis' largest value are held out and each law is refitted on the
rest: the joint law on every remaining point; a single-axis law along the held-out axis on the points that
share the held-out point's values of the other axes (its slice of the grid). The prediction at each held-out
point is compared with its measured score (the mean over its rows, or over groups of the groups' means).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._tables import build_panel, check_columns, point_scores, positive_column
from .laws import LAWS, fit_law

__all__ = ["extrapolation_check"]

COLUMNS = ["held_out", "law", "n_held_out", "measured", "predicted", "error", "abs_error", "best", "note"]


def _predict(train: pd.DataFrame, law: str, role: str, axes: dict, point: dict, score, groups, delta) -> float:
    """Prediction of one law, fitted on ``train``, at one held-out point (axis column → value)."""
    if law == "joint":
        fit = fit_law(train, score=score, law=law, n_boot=0, groups=groups, delta=delta, progress=False, **axes)
        return float(fit.predict(**{role: point[column] for role, column in axes.items()}))
    for other, column in axes.items():
        if other != role:
            train = train[train[column] == point[column]]
    if train.empty:
        raise ValueError(f"no rows share the held-out point's {', '.join(c for r, c in axes.items() if r != role)}")
    fit = fit_law(train, score=score, law=law, n_boot=0, groups=groups, delta=delta, progress=False,
                  **{role: axes[role]})
    return float(fit.predict(point[axes[role]]))


def _check_law(law: str, role: str, axes: dict, train, points, measured, score, groups, delta) -> dict:
    row = {"held_out": role, "law": law, "n_held_out": len(points), "measured": float(np.mean(measured))}
    if law == "joint" and len(axes) < 2:
        return {**row, "note": "the joint law needs two of params=, data= and fmri="}
    try:
        predicted = np.array([_predict(train, law, role, axes, p, score, groups, delta)
                              for p in points.to_dict("records")])
    except ValueError as err:
        return {**row, "note": str(err)}
    error = predicted - measured
    return {**row, "predicted": float(predicted.mean()), "error": float(error.mean()),
            "abs_error": float(np.abs(error).mean()), "note": ""}


def extrapolation_check(
    table: pd.DataFrame,
    *,
    score: str,
    params: str | None = None,
    data: str | None = None,
    fmri: str | None = None,
    laws=LAWS,
    groups: str | None = None,
    delta: float = 1e-3,
    hold_out=None,
) -> pd.DataFrame:
    """Error of each law's prediction at the largest model, and separately at the largest data size and the
    largest fMRI amount.

    Returns one row per held-out axis (``"params"``, ``"data"``, ``"fmri"``, for those given) and law, with columns
    ``held_out, law, n_held_out`` (points at the largest value), ``measured`` and ``predicted`` (their mean
    score), ``error`` (mean of predicted − measured), ``abs_error`` (mean absolute error), ``best`` (the law of
    least absolute error for that axis) and ``note`` (why a law could not be fitted; its numbers are then NaN).
    ``hold_out`` (roles) checks only those axes; by default every axis given.
    """
    axes = {role: column for role, column in (("params", params), ("data", data), ("fmri", fmri))
            if column is not None}
    if not axes:
        raise ValueError("pass params=, data= and/or fmri= (column names) to hold out their largest values")
    hold_out = list(axes) if hold_out is None else list(hold_out)
    if not hold_out or any(role not in axes for role in hold_out):
        raise ValueError(f"hold_out= takes roles among the axes given ({', '.join(axes)}), got {hold_out}")
    unknown = [law for law in laws if law not in LAWS]
    if unknown:
        raise ValueError(f"unknown laws {unknown}; choose from {LAWS}")
    check_columns(table, {"score": score, **axes, "groups": groups})
    table = table.assign(**{column: positive_column(table, column) for column in axes.values()})
    rows = []
    for role in hold_out:
        values = table[axes[role]].to_numpy()
        held, train = table[values == values.max()], table[values < values.max()]
        panel = build_panel(held, score, list(axes.values()), groups)
        measured = point_scores(panel)
        rows += [_check_law(law, role, axes, train, panel.points, measured, score, groups, delta) for law in laws]
    result = pd.DataFrame(rows).reindex(columns=COLUMNS)
    result["note"] = result["note"].fillna("")
    best = result.dropna(subset=["abs_error"]).groupby("held_out")["abs_error"].idxmin()
    result["best"] = result.index.isin(best.to_numpy())
    return result
