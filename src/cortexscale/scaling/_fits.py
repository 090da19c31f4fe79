"""Scaling-law fits: pure functions on arrays.

Laws
----
A score ``s`` (a correlation, at most 1) is modelled through its misalignment ``1 − s``.

``power`` (Gokce & Schrimpf's saturating form), one axis ``X``::

    log(1 − ŝ) = LSE(a − α·log X, e)            i.e.  1 − ŝ = E + A·X^−α

``joint`` (Hoffmann et al. 2022's form on the misalignment), parameters ``N`` and data ``D``::

    log(1 − ŝ) = LSE(a − α·log N, b − β·log D, e)   i.e.  1 − ŝ = E + A·N^−α + B·D^−β

``loglinear`` (Antonello et al.), one axis::

    ŝ = intercept + slope·log10 X

Fitting the saturating laws
---------------------------
Axes are rescaled before fitting: ``x_j = log X_j − c_j`` with ``c_j`` the mean log of the axis' distinct
values, so that a start grid and the optimiser's tolerances mean the same at any unit. In those coordinates
a law of ``m`` axes has the vector ``θ = (a_1, α_1, …, a_m, α_m, e)``; raw parameters are ``E = exp(e)`` and
``A_j = exp(a_j + α_j·c_j)``. The objective is the Huber loss ``ρ_δ`` of the residuals
``r_i = LSE_i(θ) − log(1 − s_i)``, weighted by ``w_i`` (bootstrap multiplicities) and **summed**::

    L(θ) = Σ_i w_i ρ_δ(r_i),    ρ_δ(r) = r²/2 if |r| ≤ δ else δ(|r| − δ/2)

Averaging instead of summing divides the gradient by ``Σ w``; with δ = 1e-3 that puts it under L-BFGS-B's
projected-gradient tolerance long before the optimum (Besiroglu et al. 2024). ``reduction="mean"`` is kept
only so that tests can show it.

Starts: every point of a grid (:func:`start_grid`) is scored in one vectorised pass; L-BFGS-B runs from the
best ``n_refine`` of them (and from a warm start when one is given) and the lowest loss is kept. A bootstrap
screens only the grid's best starts on the full data (:func:`best_starts`): the grid grows 12-fold with each
axis (6912 starts for three), and a resample's optimum lies near the full data's.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

__all__ = [
    "LAW_SPECS",
    "LawSpec",
    "LseFit",
    "fit_lse",
    "fit_loglinear",
    "gains_per_decade",
    "huber",
    "lse_objective",
    "predict_scores",
    "best_starts",
    "raw_from_theta",
    "single_threaded_blas",
    "start_grid",
    "theta_from_raw",
]

ALPHA_BOUNDS = (0.0, 10.0)
"""Bounds on every exponent."""
LOG_BOUNDS = (-50.0, 50.0)
"""Bounds on the log coefficients ``a_j`` and ``e`` (in rescaled units): keeps a flat direction finite."""

_GRID_ALPHA = (0.1, 0.3, 0.7, 1.5)
_GRID_A_SHARE = (0.01, 0.1, 0.5)
_GRID_E_SHARE = (0.2, 0.6, 0.9, 0.99)
_SCREEN_FLOATS = 1 << 21


@dataclass(frozen=True)
class LawSpec:
    """A law's name, its number of axes, its raw parameter names and its formula (for an axis ``X``)."""

    name: str
    n_axes: int
    names: tuple[str, ...]
    formula: str

    @property
    def saturating(self) -> bool:
        return self.name != "loglinear"


LAW_SPECS = {
    "joint": LawSpec("joint", 2, ("E", "A", "alpha", "B", "beta"), "1 − ŝ = E + A·N^−α + B·D^−β"),
    "power": LawSpec("power", 1, ("E", "A", "alpha"), "1 − ŝ = E + A·X^−α"),
    "loglinear": LawSpec("loglinear", 1, ("intercept", "slope"), "ŝ = intercept + slope·log10 X"),
}


class LseFit(NamedTuple):
    """One fit of a saturating law: ``theta`` (2m+1,) in rescaled units and its summed loss."""

    theta: np.ndarray
    loss: float


def huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss ``ρ_δ(r)`` and its derivative ``clip(r, −δ, δ)``, elementwise; ``delta=inf`` is r²/2."""
    if np.isinf(delta):
        return 0.5 * r * r, r
    a = np.abs(r)
    rho = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return rho, np.clip(r, -delta, delta)


def lse_objective(theta: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, delta: float):
    """Summed Huber loss and its gradient for a batch of parameter vectors.

    theta (k, 2m+1), x (m, n) rescaled log axes, y (n,) log misalignment, w (n,) weights.
    Returns loss (k,) and gradient (k, 2m+1).
    """
    k, m = theta.shape[0], x.shape[0]
    a, alpha, e = theta[:, 0 : 2 * m : 2], theta[:, 1 : 2 * m : 2], theta[:, -1]
    z = np.empty((k, m + 1, x.shape[1]))
    z[:, :m] = a[:, :, None] - alpha[:, :, None] * x[None]
    z[:, m] = e[:, None]
    zmax = z.max(axis=1, keepdims=True)
    ez = np.exp(z - zmax)
    total = ez.sum(axis=1, keepdims=True)
    share = ez / total
    rho, psi = huber((zmax + np.log(total))[:, 0] - y, delta)
    wpsi = psi * w
    grad = np.empty_like(theta)
    grad[:, 0 : 2 * m : 2] = np.einsum("kjn,kn->kj", share[:, :m], wpsi)
    grad[:, 1 : 2 * m : 2] = -np.einsum("kjn,kn,jn->kj", share[:, :m], wpsi, x)
    grad[:, -1] = np.einsum("kn,kn->k", share[:, m], wpsi)
    return rho @ w, grad


def start_grid(misalignment: np.ndarray, n_axes: int) -> np.ndarray:
    """Starting points (G, 2m+1) for a saturating law of ``n_axes`` axes, from the data's misalignment (n,).

    ``E`` is a share (0.2–0.99) of the smallest misalignment, each ``A_j`` at the centre of the axes a share
    (1–50%) of the median misalignment, each exponent one of 0.1, 0.3, 0.7, 1.5:
    48 starts for one axis, 576 for two.
    """
    e = np.log(np.asarray(_GRID_E_SHARE) * misalignment.min())
    a = np.log(np.asarray(_GRID_A_SHARE) * np.median(misalignment))
    axis = np.array([(ai, al) for ai in a for al in _GRID_ALPHA])
    parts = np.meshgrid(*([np.arange(len(axis))] * n_axes), np.arange(len(e)), indexing="ij")
    index = np.stack([p.ravel() for p in parts], axis=1)
    return np.hstack([axis[index[:, j]] for j in range(n_axes)] + [e[index[:, -1], None]])


def single_threaded_blas():
    """A context keeping BLAS libraries on one thread, or a no-op where threadpoolctl is not installed.

    scipy's L-BFGS-B (C version, scipy >= 1.15) makes tiny BLAS calls; on a busy machine OpenBLAS thread
    hand-offs between numpy's and scipy's copies of the library can cost a hundred times the work
    (scipy/scipy#22438). Multi-start fits and bootstraps run inside this context.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _bounds(n_axes: int) -> list[tuple[float, float]]:
    return [LOG_BOUNDS, ALPHA_BOUNDS] * n_axes + [LOG_BOUNDS]


def _screen(starts: np.ndarray, x, y, w, delta) -> np.ndarray:
    """Loss (G,) of every start, in chunks that bound the temporary arrays."""
    chunk = max(1, _SCREEN_FLOATS // (x.size + x.shape[1]))
    return np.concatenate([lse_objective(starts[i : i + chunk], x, y, w, delta)[0]
                           for i in range(0, len(starts), chunk)])


def best_starts(x: np.ndarray, y: np.ndarray, w: np.ndarray, delta: float, k: int) -> np.ndarray:
    """The ``k`` starts (k, 2m+1) of :func:`start_grid` of lowest loss on data x (m, n), y (n,), w (n,)."""
    starts = start_grid(np.exp(y), x.shape[0])
    return starts[np.argsort(_screen(starts, x, y, w, delta), kind="stable")[:k]]


def _lbfgsb(theta0: np.ndarray, x, y, w, delta: float, scale: float) -> np.ndarray:
    def objective(theta):
        loss, grad = lse_objective(theta[None], x, y, w, delta)
        return loss[0] * scale, grad[0] * scale

    return minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=_bounds(x.shape[0])).x


def fit_lse(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    *,
    delta: float = 1e-3,
    starts: np.ndarray | None = None,
    n_refine: int | None = 16,
    warm: np.ndarray | None = None,
    reduction: str = "sum",
) -> LseFit:
    """Fit a saturating law by L-BFGS-B from the best of a grid of starts.

    x (m, n) rescaled log axes, y (n,) log misalignment, w (n,) non-negative weights.
    ``starts`` (G, 2m+1) defaults to :func:`start_grid`; L-BFGS-B runs from the ``n_refine`` starts of lowest
    loss (all of them for None) and from ``warm``; the fit of lowest summed loss is returned.
    ``reduction="mean"`` divides the objective by ``Σ w`` while optimising (for tests only).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if starts is None:
        starts = start_grid(np.exp(y), x.shape[0])
    if n_refine is not None and n_refine < len(starts):
        starts = starts[np.argsort(_screen(starts, x, y, w, delta), kind="stable")[:n_refine]]
    if warm is not None:
        starts = np.vstack([warm, starts])
    scale = 1.0 / w.sum() if reduction == "mean" else 1.0
    fits = np.array([_lbfgsb(theta0, x, y, w, delta, scale) for theta0 in starts])
    losses = lse_objective(fits, x, y, w, delta)[0]
    best = int(np.argmin(losses))
    return LseFit(fits[best], float(losses[best]))


def fit_loglinear(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of ``y = c + slope·x`` for a batch of resamples.

    x (n,) centred log10 axis, y (n, B) scores, w (n, B) weights. Returns ``c`` (the score at x = 0), the
    slope and the weighted residual sum of squares, each (B,); NaN where x does not vary among positive weights.
    """
    sw = w.sum(0)
    mx = (w * x[:, None]).sum(0) / sw
    my = (w * y).sum(0) / sw
    dx = x[:, None] - mx
    sxx = (w * dx * dx).sum(0)
    ok = sxx > 1e-12 * np.maximum(sw, 1.0)
    slope = np.where(ok, (w * dx * (y - my)).sum(0) / np.where(ok, sxx, 1.0), np.nan)
    c = my - slope * mx
    rss = (w * (y - c - slope * x[:, None]) ** 2).sum(0)
    return c, slope, rss


def raw_from_theta(theta: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Raw parameters (…, 2m+1) ``(E, A_1, α_1, …)`` from rescaled ``θ`` (…, 2m+1) and axis centres (m,)."""
    m = len(centres)
    a, alpha = theta[..., 0 : 2 * m : 2], theta[..., 1 : 2 * m : 2]
    raw = np.empty_like(theta)
    raw[..., 0] = np.exp(theta[..., -1])
    raw[..., 1::2] = np.exp(a + alpha * centres)
    raw[..., 2::2] = alpha
    return raw


def theta_from_raw(raw: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Inverse of :func:`raw_from_theta`."""
    m = len(centres)
    theta = np.empty_like(raw)
    alpha = raw[..., 2::2]
    theta[..., 0 : 2 * m : 2] = np.log(raw[..., 1::2]) - alpha * centres
    theta[..., 1 : 2 * m : 2] = alpha
    theta[..., -1] = np.log(raw[..., 0])
    return theta


def predict_scores(law: str, raw: np.ndarray, axes: list[np.ndarray]) -> np.ndarray:
    """Predicted scores of raw parameters ``raw`` (k, p) at axis values (each broadcastable to a shape S).

    Returns (k, *S). ``loglinear`` uses log10 of its one axis; the saturating laws
    ``ŝ = 1 − (E + Σ_j A_j X_j^−α_j)``, computed in log space.
    """
    raw = np.atleast_2d(raw)
    axes = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in axes])
    extra = (slice(None),) + (None,) * axes[0].ndim
    if law == "loglinear":
        return raw[extra + (0,)] + raw[extra + (1,)] * np.log10(axes[0])[None]
    terms = [np.log(raw[extra + (0,)]) + np.zeros_like(axes[0])[None]]
    for j, values in enumerate(axes):
        terms.append(np.log(raw[extra + (1 + 2 * j,)]) - raw[extra + (2 + 2 * j,)] * np.log(values)[None])
    return 1.0 - np.exp(np.logaddexp.reduce(np.stack(terms), axis=0))


def gains_per_decade(law: str, raw: np.ndarray, ranges: list[tuple[float, float]]) -> np.ndarray:
    """Mean gain in score per decade of each axis over its measured range (lo, hi): (k, m) for raw (k, p).

    ``(ŝ(hi) − ŝ(lo)) / log10(hi / lo)`` along one axis, the others held anywhere (the laws are additive in
    them); for ``loglinear`` this is the slope.
    """
    raw = np.atleast_2d(raw)
    if law == "loglinear":
        return raw[:, 1:2].copy()
    gains = np.empty((len(raw), len(ranges)))
    for j, (lo, hi) in enumerate(ranges):
        A, alpha = raw[:, 1 + 2 * j], raw[:, 2 + 2 * j]
        drop = np.exp(np.log(A) - alpha * np.log(lo)) - np.exp(np.log(A) - alpha * np.log(hi))
        gains[:, j] = drop / np.log10(hi / lo)
    return gains
