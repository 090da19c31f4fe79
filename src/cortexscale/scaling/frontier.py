"""The compute-optimal frontier of a joint fit: the model size and data that maximise the score at a budget.

With ``1 − ŝ = E + A·N^−α + B·D^−β`` and a budget ``C = m·(N·D)^n`` (:class:`~cortexscale.scaling.ComputeLaw`),
``K = N·D = (C/m)^(1/n)`` is fixed and the misalignment is least at::

    N_opt = G·K^a,   D_opt = K^b / G,   G = (α·A / (β·B))^(1/(α+β)),   a = β/(α+β),   b = α/(α+β)

so ``N_opt ∝ C^(a/n)`` and ``D_opt ∝ C^(b/n)``. Intervals come from the fit's bootstrap draws, the compute law
held at its fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._resample import percentile_interval
from .laws import ScalingFit

__all__ = ["compute_optimal", "frontier_exponents", "iso_flop"]


def _joint(fit: ScalingFit) -> None:
    if not isinstance(fit, ScalingFit) or fit.law != "joint":
        law = fit.law if isinstance(fit, ScalingFit) else type(fit).__name__
        raise ValueError(f"the compute-optimal frontier needs a joint fit of params and data, got {law!r}")


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


def compute_optimal(fit: ScalingFit, compute) -> pd.DataFrame:
    """Compute-optimal parameters, data and score at each budget of ``compute`` FLOPs (a number or array).

    Returns a DataFrame with one row per budget and columns ``compute, params_opt, data_opt, score_opt``, then
    for each of the last three its bootstrap percentile bounds at ``fit.level`` (``params_opt_low``,
    ``params_opt_high``, ...).
    """
    _joint(fit)
    compute = _budgets(compute)
    product = fit.compute_law.product(compute)
    point = _optimum(np.array([list(fit.params.values())]), product)
    draws = fit.boot[~np.isnan(fit.boot).any(axis=1)]
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


def iso_flop(fit: ScalingFit, compute, params=None, *, span: float = 2.0, n: int = 41) -> pd.DataFrame:
    """Predicted score along iso-FLOP curves: for each budget, model sizes N and the data ``D`` that spends it.

    ``params`` (array) fixes the model sizes of every curve; by default each curve has ``n`` sizes spaced
    evenly in log over ``span`` decades either side of its N_opt. Returns a long DataFrame with columns
    ``compute, params, data, score``.
    """
    _joint(fit)
    compute = _budgets(compute)
    product = fit.compute_law.product(compute)
    n_opt = _optimum(np.array([list(fit.params.values())]), product)[0][0]
    curves = []
    for c, k, center in zip(compute, product, n_opt):
        sizes = (np.asarray(params, dtype=float) if params is not None
                 else center * np.logspace(-span, span, n))
        if not np.all(sizes > 0):
            raise ValueError(f"params must be positive, got {sizes}")
        curves.append(pd.DataFrame({"compute": c, "params": sizes, "data": k / sizes,
                                    "score": fit.predict(params=sizes, data=k / sizes)}))
    return pd.concat(curves, ignore_index=True)
