"""Stacked regression: a per-target convex combination of several feature spaces.

Each feature space (for example semantic and acoustic features) gets its own
encoding model. Their cross-validated, held-out predictions ``P_k`` are combined
per target with weights on the simplex,

    w = argmin ||y - sum_k w_k P_k||^2   subject to   w >= 0, sum_k w_k = 1,

a small quadratic programme per target, solved in batch for all targets. Every
space is then refit on all samples and ``predict`` returns the weighted sum. With
independent spaces, the weight of a space is its share of the explained variance.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import clone
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted, has_fit_parameter
from tqdm.auto import tqdm

from ._base import EncodingEstimator, groups_from
from ._validation import check_features_targets
from .banded import _select_columns
from .metrics import correlation_score

__all__ = ["StackedRegression", "project_simplex", "simplex_least_squares"]

ENUMERATE_MAX_SPACES = 6


# --------------------------------------------------------------------------- the QP
def project_simplex(V: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of ``V`` (n_rows, K) onto the probability simplex."""
    K = V.shape[1]
    u = -np.sort(-V, axis=1)
    excess = np.cumsum(u, axis=1) - 1.0
    positive = u - excess / np.arange(1, K + 1) > 0
    rho = K - np.argmax(positive[:, ::-1], axis=1)
    theta = excess[np.arange(V.shape[0]), rho - 1] / rho
    return np.maximum(V - theta[:, None], 0.0)


def _normal_equations(P: np.ndarray, Y: np.ndarray):
    """Per-target Gram ``G`` (n_targets, K, K) and ``b`` (n_targets, K) of the predictions.

    Both are divided by the mean diagonal of ``G``, which leaves the minimiser unchanged.
    """
    K, _, t = P.shape
    G = np.empty((t, K, K))
    for i in range(K):
        for j in range(i, K):
            G[:, i, j] = G[:, j, i] = np.einsum("nt,nt->t", P[i], P[j])
    b = np.einsum("knt,nt->tk", P, Y)
    scale = np.trace(G, axis1=1, axis2=2) / K
    scale[scale <= 0] = 1.0
    return G / scale[:, None, None], b / scale[:, None]


def _objective(G, b, W):
    """``w^T G w - 2 b^T w`` per target for weights W (n_targets, K)."""
    return np.einsum("tk,tkj,tj->t", W, G, W) - 2 * np.einsum("tk,tk->t", b, W)


def _solve_enumerate(G, b) -> np.ndarray:
    """Exact simplex QP: solve the equality-constrained problem on every support, keep the best feasible one."""
    t, K = b.shape
    best_obj = np.full(t, np.inf)
    best_W = np.zeros((t, K))
    for mask in range(1, 2**K):
        S = [k for k in range(K) if mask >> k & 1]
        W = np.zeros((t, K))
        W[:, S], feasible = _equality_constrained(G[:, S][:, :, S], b[:, S])
        obj = _objective(G, b, W)
        better = feasible & (obj < best_obj)
        best_obj[better], best_W[better] = obj[better], W[better]
    return best_W


def _equality_constrained(Gs, bs, tol: float = 1e-9):
    """Minimiser of ``w^T G w - 2 b^T w`` s.t. ``sum w = 1`` on one support: weights (t, m) and feasibility (t,)."""
    t, m = bs.shape
    ridge = 1e-12 * np.eye(m)
    rhs = np.stack([bs, np.ones((t, m))], axis=2)
    sol = np.linalg.solve(Gs + ridge, rhs)
    g_b, g_1 = sol[..., 0], sol[..., 1]
    lam = (g_b.sum(1) - 1.0) / g_1.sum(1)
    w = g_b - lam[:, None] * g_1
    feasible = np.all(w >= -tol, axis=1) & np.all(np.isfinite(w), axis=1)
    w = np.maximum(np.nan_to_num(w), 0.0)
    total = w.sum(1, keepdims=True)
    w = np.where(total > 0, w / np.where(total > 0, total, 1.0), 1.0 / m)
    return w, feasible


def _solve_projected_gradient(G, b, max_iter: int = 20000, tol: float = 1e-12) -> np.ndarray:
    """Accelerated projected gradient (FISTA with adaptive restart), vectorised over targets."""
    t, K = b.shape
    L = 2 * np.linalg.eigvalsh(G)[:, -1]
    L[L <= 0] = 1.0
    W = np.full((t, K), 1.0 / K)
    Z, mom = W.copy(), np.ones(t)
    for _ in range(max_iter):
        grad = 2 * (np.einsum("tkj,tj->tk", G, Z) - b)
        W_new = project_simplex(Z - grad / L[:, None])
        step = W_new - W
        restart = np.einsum("tk,tk->t", Z - W_new, step) > 0
        mom_new = np.where(restart, 1.0, (1 + np.sqrt(1 + 4 * mom**2)) / 2)
        Z = W_new + np.where(restart, 0.0, (mom - 1) / mom_new)[:, None] * step
        W, mom = W_new, mom_new
        if np.abs(step).max() < tol:
            break
    return W


def simplex_least_squares(P, Y, solver: str = "auto") -> np.ndarray:
    """Per-target weights on the simplex minimising ``||y - sum_k w_k P_k||^2``.

    P: (n_spaces, n_samples, n_targets) predictions; Y: (n_samples, n_targets).
    solver: ``"enumerate"`` (exact: every support, closed form, vectorised over
    targets; costs 2^K solves), ``"projected_gradient"`` (accelerated projected
    gradient), or ``"auto"`` (enumerate up to 6 spaces). Returns (n_spaces, n_targets).
    """
    P, Y = np.asarray(P, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if P.ndim != 3 or Y.ndim != 2 or P.shape[1:] != Y.shape:
        raise ValueError(
            f"P has shape {P.shape} and Y {Y.shape}; expected (n_spaces, n_samples, n_targets) and "
            "(n_samples, n_targets)"
        )
    if solver == "auto":
        solver = "enumerate" if P.shape[0] <= ENUMERATE_MAX_SPACES else "projected_gradient"
    solvers = {"enumerate": _solve_enumerate, "projected_gradient": _solve_projected_gradient}
    if solver not in solvers:
        raise ValueError(f"solver must be 'auto' or one of {sorted(solvers)}, got {solver!r}")
    G, b = _normal_equations(P, Y)
    return solvers[solver](G, b).T


def _space_and_stack_scores(Y, P, W) -> np.ndarray:
    """r of each space's predictions P (n_spaces, n_samples, n_targets), then of their W-weighted sum.

    Returns (n_spaces + 1, n_targets).
    """
    stacked = np.einsum("kt,knt->nt", W, P)
    return np.vstack([correlation_score(Y, p) for p in (*P, stacked)])


def _pieces(groups: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Run label (len(rows),) of the chosen ``rows`` that changes wherever their run changes or the rows skip:
    the rows of one run on either side of a held-out chunk become two pieces, so delays never bridge the gap."""
    rows = np.asarray(rows)
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    chosen = np.asarray(groups)[rows]
    breaks = np.r_[True, (np.diff(rows) != 1) | (chosen[1:] != chosen[:-1])] if len(rows) else np.array([], bool)
    return np.cumsum(breaks) - 1


def _predict(estimator, X: np.ndarray, groups) -> np.ndarray:
    """``estimator.predict(X)`` as float64, with ``groups`` where its predict takes them."""
    takes = groups is not None and "groups" in inspect.signature(estimator.predict).parameters
    return np.asarray(estimator.predict(X, groups=groups) if takes else estimator.predict(X), dtype=np.float64)


# --------------------------------------------------------------------------- the estimator
class StackedRegression(EncodingEstimator):
    """Per-target convex combination of the encoding models of several feature spaces.

    Parameters
    ----------
    estimators : list of (name, estimator, columns)
        One entry per feature space, as in scikit-learn's ``ColumnTransformer``:
        a unique name, an unfitted regressor (any scikit-learn regressor, e.g.
        :class:`~cortexscale.encoding.RidgeCV`), and the columns of ``X`` it sees
        (a slice, integer indices or a boolean mask). Spaces may share columns.
    cv : int, "runs", Bootstrap, scikit-learn splitter or iterable of index pairs
        Splits for the held-out predictions (an int gives contiguous folds). A
        sample held out several times gets its mean prediction; samples never held
        out do not enter the weights.
    solver : {"auto", "enumerate", "projected_gradient"}
        The simplex QP solver, see :func:`simplex_least_squares`.
    store_cv_predictions : bool
        Keep the held-out predictions in ``cv_predictions_`` (memory n_spaces x n_samples x n_targets).
    progress : bool
        Show a progress bar over the cross-validation fits.

    Attributes
    ----------
    weights_ : (n_spaces, n_targets) non-negative, each column sums to one.
    estimators_ : list of the fitted estimators, refit on all samples.
    named_estimators_ : Bunch name -> fitted estimator.
    columns_ : list of n_spaces integer column arrays.
    cv_scores_ : (n_spaces + 1, n_targets) correlation of each space's held-out
        predictions with the targets, then of the stacked held-out prediction (the
        last row; its weights were fit on those same predictions, so it is mildly optimistic).
    cv_predictions_ : (n_spaces, n_samples, n_targets), only with ``store_cv_predictions``.
    n_features_in_ : int
    """

    def __init__(self, estimators, *, cv=5, solver="auto", store_cv_predictions=False, progress=True):
        self.estimators = estimators
        self.cv = cv
        self.solver = solver
        self.store_cv_predictions = store_cv_predictions
        self.progress = progress

    def fit(self, X, y, groups=None, run_lengths=None):
        """Fit the weights on held-out predictions, then refit every space on all samples.

        X: (n_samples, n_features); y: (n_samples,) or (n_samples, n_targets);
        groups: (n_samples,) run labels, or run_lengths: (n_runs,), for the splitter and
        for base estimators whose ``fit`` takes ``groups``.
        """
        X, Y, self._y_1d = self._validate_fit_data(X, y)
        names, bases, self.columns_ = self._check_estimators(X.shape[1])
        groups, splits = self._splits(X.shape[0], groups, run_lengths)
        y_fit = Y[:, 0] if self._y_1d else Y
        P, held = self._cv_predictions(bases, X, y_fit, splits, groups)
        P_held, Y_held = (P, Y) if held.all() else (P[:, held], Y[held])
        self.weights_ = simplex_least_squares(P_held, Y_held, self.solver)
        self.cv_scores_ = _space_and_stack_scores(Y_held, P_held, self.weights_)
        if self.store_cv_predictions:
            self.cv_predictions_ = P
        self.estimators_ = [self._fit_one(b, X, y_fit, cols, None, groups) for b, cols in zip(bases, self.columns_)]
        self.named_estimators_ = Bunch(**dict(zip(names, self.estimators_)))
        return self

    def _check_estimators(self, n_features: int):
        entries = list(self.estimators) if isinstance(self.estimators, (list, tuple)) else None
        if not entries:
            raise ValueError(
                f"estimators must be a non-empty list of (name, estimator, columns), got {self.estimators!r}"
            )
        names, bases, columns = [], [], []
        for i, entry in enumerate(entries):
            if not isinstance(entry, tuple) or len(entry) != 3:
                raise ValueError(f"estimators[{i}] must be a (name, estimator, columns) tuple, got {entry!r}")
            name, est, cols = entry
            if not isinstance(name, str) or name in names:
                raise ValueError(f"estimators[{i}] has name {name!r}; names must be unique strings")
            if not (hasattr(est, "fit") and hasattr(est, "predict")):
                raise ValueError(f"estimators[{i}] ({name!r}) is {est!r}, which has no fit/predict")
            names.append(name)
            bases.append(est)
            columns.append(_select_columns(cols, f"estimators[{i}] ({name!r}) columns", n_features))
        return names, bases, columns

    @staticmethod
    def _fit_one(base, X, y, cols, rows, groups):
        rows = np.arange(X.shape[0]) if rows is None else rows
        est = clone(base)
        kwargs = {}
        if groups is not None and has_fit_parameter(est, "groups"):
            kwargs["groups"] = _pieces(groups, rows)
        return est.fit(X[rows][:, cols], y[rows], **kwargs)

    def _cv_predictions(self, bases, X, y, splits, groups):
        """Held-out predictions (n_spaces, n_samples, n_targets) and the mask (n_samples,) of held-out samples."""
        n, t = X.shape[0], 1 if y.ndim == 1 else y.shape[1]
        total = np.zeros((len(bases), n, t))
        count = np.zeros(n)
        jobs = [(k, s) for k in range(len(bases)) for s in range(len(splits))]
        for k, s in tqdm(jobs, disable=not self.progress, desc="stacking cv"):
            train, val = splits[s]
            est = self._fit_one(bases[k], X, y, self.columns_[k], train, groups)
            held = _predict(est, X[val][:, self.columns_[k]], None if groups is None else _pieces(groups, val))
            total[k, val] += held.reshape(len(val), t)
            if k == 0:
                np.add.at(count, val, 1)
        held = count > 0
        if held.sum() < 2:
            raise ValueError(f"cv holds out {int(held.sum())} of {n} samples; stacking needs held-out predictions")
        return total / np.maximum(count, 1)[None, :, None], held

    def predict_per_space(self, X, groups=None, run_lengths=None):
        """Unweighted predictions of every refit space (n_spaces, n_samples, n_targets), or (n_spaces, n_samples).

        ``groups`` (n_samples,) or ``run_lengths`` (n_runs,) give the runs of the new samples to the spaces'
        estimators whose ``predict`` takes ``groups`` (a :class:`~cortexscale.encoding.RidgeCV` with delays).
        ``predict(X) == (weights_[:, None, :] * predict_per_space(X)).sum(0)``.
        """
        check_is_fitted(self)
        X = self._validate_predict_data(X)
        groups = groups_from(groups, run_lengths, X.shape[0])
        runs = None if groups is None else _pieces(groups, np.arange(X.shape[0]))
        preds = [_predict(e, X[:, c], runs) for e, c in zip(self.estimators_, self.columns_)]
        return np.stack([p.reshape(X.shape[0], -1) for p in preds])[..., 0 if self._y_1d else slice(None)]

    def predict(self, X, groups=None, run_lengths=None):
        """Stacked predictions (n_samples, n_targets), or (n_samples,) after a 1-D ``y``; runs as in
        :meth:`predict_per_space`."""
        P = self.predict_per_space(X, groups, run_lengths)
        W = self.weights_[:, 0] if self._y_1d else self.weights_
        return np.einsum("k...,kn...->n...", W, P)

    def score_spaces(self, X, y) -> np.ndarray:
        """Correlation on new data of each space and of the stack, (n_spaces + 1, n_targets)."""
        P = self.predict_per_space(X)
        P = P.reshape(*P.shape[:2], -1)
        _, Y = check_features_targets(P[0], y, min_samples=1)
        if Y.shape != P.shape[1:]:
            raise ValueError(f"y has shape {np.shape(y)}; expected {P.shape[1:]} (n_samples, n_targets) as in fit")
        return _space_and_stack_scores(Y, P, self.weights_)
