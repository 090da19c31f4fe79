"""The compute-optimal frontier of a joint fit: the model size and data that maximise the score at a budget.

With ``1 − ŝ = E + A·N^−α + B·D^−β`` and a budget ``C = m·(N·D)^n`` (:class:`~cortexscale.scaling.ComputeLaw`),
``K = N·D = (C/m)^(1/n)`` is fixed and the misalignment is least at::

    N_opt = G·K^a,   D_opt = K^b / G,   G = (α·A / (β·B))^(1/(α+β)),   a = β/(α+β),   b = α/(α+β)

so ``N_opt ∝ C^(a/n)`` and ``D_opt ∝ C^(b/n)``. A joint law with an fMRI axis (``+ C·M^−γ``) has the same
frontier at each fMRI amount M, its term folded into ``E``; by default at the largest M measured. Intervals
come from the fit's bootstrap draws, the compute law held at its fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _fits
from ._resample import percentile_interval
from .laws import ScalingFit

__all__ = ["LEVERS", "compute_optimal", "fmri_amount", "frontier_exponents", "iso_flop", "nd_law", "what_buys_more"]


def _joint(fit: ScalingFit) -> None:
    if not isinstance(fit, ScalingFit) or fit.law != "joint" or not {"params", "data"} <= set(fit.axes):
        law = fit.law if isinstance(fit, ScalingFit) else type(fit).__name__
        over = f" over {', '.join(fit.axes)}" if isinstance(fit, ScalingFit) else ""
        raise ValueError(f"the compute-optimal frontier needs a joint fit of params and data, got {law!r}{over}")


def fmri_amount(fit: ScalingFit, fmri=None) -> float | None:
    """The fMRI amount a frontier of ``fit`` is drawn at: ``fmri``, or the largest measured; None without an
    fMRI axis."""
    if "fmri" not in fit.axes:
        if fmri is not None:
            raise ValueError(f"fmri= needs a joint fit with an fMRI axis; this one is over {', '.join(fit.axes)}")
        return None
    m = fit.ranges["fmri"][1] if fmri is None else float(fmri)
    if not m > 0:
        raise ValueError(f"fmri= must be positive, got {fmri!r}")
    return m


def nd_law(fit: ScalingFit, raw: np.ndarray, fmri=None) -> np.ndarray:
    """Raw (k, 5) ``E, A, α, B, β`` of the N–D law in raw parameters (k, p) of ``fit``, at fMRI amount
    :func:`fmri_amount` (its term ``C·M^−γ`` added to E)."""
    names = list(fit.param_names)
    raw = np.atleast_2d(raw)
    out = raw[:, [names.index(n) for n in ("E", "A", "alpha", "B", "beta")]].copy()
    m = fmri_amount(fit, fmri)
    if m is not None:
        out[:, 0] += raw[:, names.index("C")] * m ** -raw[:, names.index("gamma")]
    return out


def _raw(fit: ScalingFit) -> np.ndarray:
    return np.array([[fit.params[name] for name in fit.param_names]])


def _budgets(compute) -> np.ndarray:
    compute = np.atleast_1d(np.asarray(compute, dtype=float))
    if compute.ndim != 1 or not np.all(compute > 0):
        raise ValueError(f"compute must be positive FLOPs (a number or 1-D array), got {compute}")
    return compute


def _optimum(raw: np.ndarray, product: np.ndarray):
    """N_opt, D_opt and ŝ at them: each (k, n_budgets), for raw joint parameters (k, 5) and N·D (n_budgets,)."""
    E, A, alpha, B, beta = (raw[:, i, None] for i in range(5))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_g = (np.log(alpha * A) - np.log(beta * B)) / (alpha + beta)
        n_opt = np.exp(log_g + beta / (alpha + beta) * np.log(product))
        d_opt = product / n_opt
        score = 1.0 - (E + A * n_opt**-alpha + B * d_opt**-beta)
    return n_opt, d_opt, score


def compute_optimal(fit: ScalingFit, compute, *, fmri=None) -> pd.DataFrame:
    """Compute-optimal parameters, data and score at each budget of ``compute`` FLOPs (a number or array), at
    fMRI amount ``fmri`` for a fit with that axis (default: the largest measured).

    Returns a DataFrame with one row per budget and columns ``compute, params_opt, data_opt, score_opt``, then
    for each of the last three its bootstrap percentile bounds at ``fit.level`` (``params_opt_low``,
    ``params_opt_high``, ...).
    """
    _joint(fit)
    compute = _budgets(compute)
    product = fit.compute_law.product(compute)
    point = _optimum(nd_law(fit, _raw(fit), fmri), product)
    draws = nd_law(fit, fit.boot[~np.isnan(fit.boot).any(axis=1)], fmri)
    names = ("params_opt", "data_opt", "score_opt")
    columns = {"compute": compute, **{name: value[0] for name, value in zip(names, point)}}
    for name, drawn in zip(names, _optimum(draws, product)):
        low, high = percentile_interval(drawn, fit.level, columns[name]) if len(draws) else (np.nan, np.nan)
        columns[f"{name}_low"], columns[f"{name}_high"] = low, high
    return pd.DataFrame(columns)


def frontier_exponents(fit: ScalingFit) -> pd.DataFrame:
    """The frontier's exponents with bootstrap intervals: a DataFrame indexed by name, columns
    ``value, low, high``.

    ``a = β/(α+β)`` and ``b = α/(α+β)`` (N_opt ∝ (N·D)^a, D_opt ∝ (N·D)^b), and ``a_compute = a/n``,
    ``b_compute = b/n`` (N_opt ∝ C^a_compute under ``C = m·(N·D)^n``).
    """
    _joint(fit)

    def exponents(alpha, beta):
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = beta / (alpha + beta), alpha / (alpha + beta)
        n = fit.compute_law.n
        return np.stack([a, b, a / n, b / n], axis=-1)

    value = exponents(np.array(fit.params["alpha"]), np.array(fit.params["beta"]))
    names = list(fit.param_names)
    drawn = exponents(fit.boot[:, names.index("alpha")], fit.boot[:, names.index("beta")])
    low, high = percentile_interval(drawn, fit.level, value) if len(drawn) else (np.full(4, np.nan),) * 2
    return pd.DataFrame({"value": value, "low": low, "high": high},
                        index=pd.Index(["a", "b", "a_compute", "b_compute"], name="exponent"))


def iso_flop(fit: ScalingFit, compute, params=None, *, span: float = 2.0, n: int = 41, fmri=None) -> pd.DataFrame:
    """Predicted score along iso-FLOP curves: for each budget, model sizes N and the data ``D`` that spends it.

    ``params`` (array) fixes the model sizes of every curve; by default each curve has ``n`` sizes spaced
    evenly in log over ``span`` decades either side of its N_opt. ``fmri``: as :func:`compute_optimal`.
    Returns a long DataFrame with columns ``compute, params, data, score``.
    """
    _joint(fit)
    compute = _budgets(compute)
    product = fit.compute_law.product(compute)
    law = nd_law(fit, _raw(fit), fmri)
    n_opt = _optimum(law, product)[0][0]
    curves = []
    for c, k, center in zip(compute, product, n_opt):
        sizes = (np.asarray(params, dtype=float) if params is not None
                 else center * np.logspace(-span, span, n))
        if not np.all(sizes > 0):
            raise ValueError(f"params must be positive, got {sizes}")
        score = _fits.predict_scores("joint", law, [sizes, k / sizes])[0]
        curves.append(pd.DataFrame({"compute": c, "params": sizes, "data": k / sizes, "score": score}))
    return pd.concat(curves, ignore_index=True)


LEVERS = ("model compute", "model size", "fMRI data")
"""What :func:`what_buys_more` scales: model compute (with a training-data axis), model size (without one),
fMRI data; its rows ``<model lever> − fMRI data`` give their difference."""


def _lever_point(fit: ScalingFit, point: dict, factor: float) -> dict:
    """Where ``factor``× model compute (or size) takes ``point``, at the fit's estimate."""
    if "data" not in fit.axes:
        return {**point, "params": point["params"] * factor}
    product = fit.compute_law.product(factor * fit.compute_law(point["params"], point["data"]))
    n_opt, d_opt, _ = _optimum(nd_law(fit, _raw(fit), point["fmri"]), np.atleast_1d(product))
    return {**point, "params": float(n_opt[0, 0]), "data": float(d_opt[0, 0])}


def _model_scores(fit: ScalingFit, raws: np.ndarray, point: dict, factor: float) -> np.ndarray:
    """Score (k,) of each raw parameter row after ``factor``× model compute (at the frontier) or size."""
    if "data" not in fit.axes:
        return _fits.predict_scores("joint", raws, [point["params"] * factor, point["fmri"]])
    product = fit.compute_law.product(factor * fit.compute_law(point["params"], point["data"]))
    return _optimum(nd_law(fit, raws, point["fmri"]), np.atleast_1d(product))[2][:, 0]


def what_buys_more(fit: ScalingFit, *, factors=(2, 10), at: dict | None = None) -> pd.DataFrame:
    """The predicted gain in score from more model compute against more fMRI data, with intervals.

    At a point (role → value; default ``fit.best``, the study's best measured point) the joint law over params
    and fmri (and data) predicts the score after ``factor``× model compute, spent at the compute-optimal
    split (:func:`compute_optimal` at that point's fMRI amount; so the gain includes moving onto the frontier),
    or ``factor``× parameters where the law has no training-data axis; and after ``factor``× fMRI data, the
    model kept. Returns one row per factor and lever (:data:`LEVERS`) and one for their difference, with
    columns ``factor, lever, gain, low, high`` (a bootstrap percentile interval at ``fit.level``, containing
    the gain) and ``params, data, fmri, score``: where the lever takes the point and the score predicted there
    (NaN for the difference).
    """
    if not (isinstance(fit, ScalingFit) and fit.law == "joint" and {"params", "fmri"} <= set(fit.axes)):
        over = f" over {', '.join(fit.axes)}" if isinstance(fit, ScalingFit) else ""
        raise ValueError(f"what buys more needs a joint fit of params and fmri (and data){over}")
    given = {**fit.best, **(at or {})}
    try:
        point = {role: float(given[role]) for role in fit.axes}
    except (KeyError, TypeError, ValueError):
        point = None
    if point is None or not all(v > 0 for v in point.values()):
        raise ValueError(f"at= needs a positive number for each of {', '.join(fit.axes)}; got {at}")
    factors = np.atleast_1d(np.asarray(factors, dtype=float))
    if factors.ndim != 1 or not np.all(factors > 0):
        raise ValueError(f"factors must be positive numbers, got {factors}")
    draws = fit.boot[~np.isnan(fit.boot).any(axis=1)]
    raws = np.vstack([_raw(fit), draws])
    values = [point[role] for role in fit.axes]
    base = _fits.predict_scores("joint", raws, values)
    model = "model compute" if "data" in fit.axes else "model size"
    rows = []
    for factor in factors:
        more_fmri = {**point, "fmri": point["fmri"] * factor}
        gains = {model: _model_scores(fit, raws, point, factor) - base,
                 "fMRI data": _fits.predict_scores("joint", raws, [more_fmri[r] for r in fit.axes]) - base}
        gains[f"{model} − fMRI data"] = gains[model] - gains["fMRI data"]
        reached = {model: _lever_point(fit, point, factor), "fMRI data": more_fmri}
        for lever, gain in gains.items():
            low, high = (percentile_interval(gain[1:], fit.level, gain[0]) if len(draws) else (np.nan, np.nan))
            where = reached.get(lever, {})
            rows.append({"factor": float(factor), "lever": lever, "gain": float(gain[0]), "low": float(low),
                         "high": float(high), **{r: float(where.get(r, np.nan)) for r in ("params", "data", "fmri")},
                         "score": float(gain[0] + base[0]) if lever in reached else np.nan})
    return pd.DataFrame(rows)
