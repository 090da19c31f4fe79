"""Ridge solvers: pure functions over a :class:`~cortexscale.encoding._backend.Backend`.

Conventions
-----------
* Penalty: ``(X^T X + alpha I)^{-1} X^T Y`` (scikit-learn and himalaya). Huth-lab code
  penalises ``alpha**2``; their ``alpha_huth`` equals ``sqrt(alpha)`` here.
* ``X`` is (n_samples, n_features), ``Y`` is (n_samples, n_targets); scores come
  back as numpy arrays of shape (n_alphas, n_targets).

Algorithms
----------
``dual``   (n_samples <= n_features, splits that partition the samples):
    one eigendecomposition ``K = U diag(d) U^T`` of the full kernel serves every split
    and every alpha. The held-out residual of a validation block ``v`` is exact:
    ``e_v = [(M^{-1})_{vv}]^{-1} (M^{-1} Y)_v`` with ``M = K + alpha I``, which equals
    training on the complement of ``v`` and predicting ``v``.
``primal`` (n_samples > n_features): per split, the training Gram and cross-products
    are downdated from full-data sums, ``G_t = G - X_v^T X_v``; one eigendecomposition
    per split; the validation predictions of all alphas reuse it.
``general`` (any split): the primal or dual problem of each split, solved from scratch.

Targets are processed in batches, so memory stays bounded for 100k targets; no array
of shape (n_alphas, n_samples, n_targets) is ever built.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ._backend import Backend, get_backend
from ._cv import is_complement

__all__ = [
    "SCORERS",
    "RidgeCVResult",
    "choose_method",
    "delayed_kernel",
    "ridge_cv",
    "ridge_cv_scores",
    "solve_ridge",
]


# --------------------------------------------------------------------------- scores
def _score_correlation(B: Backend, y, pred):
    yc = y - y.mean(0)
    pc = pred - pred.mean(0)
    num = (yc * pc).sum(0)
    den = ((yc * yc).sum(0) * (pc * pc).sum(0)) ** 0.5
    return num / den


def _score_r2(B: Backend, y, pred):
    yc = y - y.mean(0)
    return 1 - ((y - pred) ** 2).sum(0) / (yc * yc).sum(0)


def _score_neg_mse(B: Backend, y, pred):
    return -((y - pred) ** 2).mean(0)


SCORERS = {"correlation": _score_correlation, "r2": _score_r2, "neg_mse": _score_neg_mse}


def _fold_scores(B: Backend, scorer, y, pred) -> np.ndarray:
    """Per-target score of one validation block, as float64 numpy (NaN for constant targets)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = B.to_numpy(scorer(B, y, pred)).astype(np.float64)
    s[~np.isfinite(s)] = np.nan
    return s


# --------------------------------------------------------------------------- delays
def _run_positions(run_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each sample within its run, and the length of its run."""
    starts = np.flatnonzero(np.r_[True, run_ids[1:] != run_ids[:-1]])
    lengths = np.diff(np.r_[starts, len(run_ids)])
    pos = np.arange(len(run_ids)) - np.repeat(starts, lengths)
    return pos, np.repeat(lengths, lengths)


def _delay_valid(run_ids: np.ndarray, d: int) -> np.ndarray:
    """Rows whose source row ``i - d`` lies inside the same run (n_samples,) bool."""
    pos, length = _run_positions(run_ids)
    return (pos - d >= 0) & (pos - d < length)


def delay_matrix(B: Backend, X, delays, run_ids: np.ndarray):
    """Materialise delayed features (n, p) -> (n, p * n_delays), delay-major columns."""
    n = X.shape[0]
    blocks = []
    for d in delays:
        shifted = B.zeros((n, X.shape[1]))
        if abs(d) < n:
            if d >= 0:
                shifted[d:] = X[: n - d]
            else:
                shifted[:d] = X[-d:]
        valid = B.asarray(_delay_valid(run_ids, d).astype(np.float32))
        blocks.append(shifted * valid[:, None])
    return _concat(B, blocks, axis=1)


def _concat(B: Backend, arrays, axis):
    if B.name == "numpy":
        return np.concatenate(arrays, axis=axis)
    return B._torch.cat(arrays, dim=axis)


def delayed_kernel(B: Backend, K0, delays, run_ids_a: np.ndarray, run_ids_b: np.ndarray):
    """Kernel of delayed features from the kernel of undelayed ones.

    ``K0 = X_a X_b^T`` (n_a, n_b) of the undelayed features; returns the
    (n_a, n_b) kernel of the delayed designs, ``sum_d K0[i - d, j - d]``, with
    rows whose source falls outside their run contributing zero. This costs
    O(n_a n_b n_delays) instead of a product over ``n_delays`` times more features.
    """
    na, nb = K0.shape
    out = B.zeros((na, nb))
    for d in delays:
        if abs(d) >= min(na, nb):
            continue
        va = B.asarray(_delay_valid(run_ids_a, d).astype(np.float32))
        vb = B.asarray(_delay_valid(run_ids_b, d).astype(np.float32))
        if d >= 0:
            out[d:, d:] += K0[: na - d, : nb - d] * (va[d:, None] * vb[None, d:])
        else:
            out[:d, :d] += K0[-d:, -d:] * (va[:d, None] * vb[None, :d])
    return out


@dataclass
class Design:
    """Features as given, or undelayed features plus the delays to apply, optionally centred.

    ``X`` is (n_samples, n_base); with ``delays`` the effective design is
    (n_samples, n_base * n_delays) in delay-major column order. ``mean``
    (n_features,) is subtracted from every row of the effective design.
    """

    X: object
    delays: tuple | None = None
    run_ids: np.ndarray | None = None
    mean: object = None

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1] * (len(self.delays) if self.delays else 1)

    def runs(self) -> np.ndarray:
        return np.zeros(self.n_samples, np.int64) if self.run_ids is None else self.run_ids

    def like(self, X, run_ids=None) -> "Design":
        """A design for new samples with the same delays and centring."""
        return Design(X, self.delays, run_ids, self.mean)

    def dense(self, B: Backend):
        """The effective (n_samples, n_features) matrix."""
        Xd = delay_matrix(B, self.X, self.delays, self.runs()) if self.delays else self.X
        return Xd if self.mean is None else Xd - self.mean

    def _raw_matmul(self, B: Backend, W):
        if not self.delays:
            return self.X @ W
        n, p0 = self.X.shape
        runs = self.runs()
        out = B.zeros((n, W.shape[1]))
        for k, d in enumerate(self.delays):
            if abs(d) >= n:
                continue
            part = self.X @ W[k * p0 : (k + 1) * p0]
            valid = B.asarray(_delay_valid(runs, d).astype(np.float32))[:, None]
            if d >= 0:
                out[d:] += part[: n - d] * valid[d:]
            else:
                out[:d] += part[-d:] * valid[:d]
        return out

    def matmul(self, B: Backend, W):
        """Effective design times W (n_features, k) -> (n_samples, k), without materialising delays."""
        out = self._raw_matmul(B, W)
        return out if self.mean is None else out - self.mean[None, :] @ W

    def kernel(self, B: Backend, other: "Design | None" = None):
        """(n_self, n_other) linear kernel of the effective designs."""
        other = other or self
        K0 = self.X @ other.X.T
        K = delayed_kernel(B, K0, self.delays, self.runs(), other.runs()) if self.delays else K0
        if self.mean is None:
            return K
        mu = self.mean[:, None]
        a = self._raw_matmul(B, mu)
        b = other._raw_matmul(B, mu)
        return K - a - b.T + float((self.mean * self.mean).sum())

    def rmatmul(self, B: Backend, M):
        """Effective design transposed times M (n_samples, k) -> (n_features, k)."""
        if not self.delays:
            out = self.X.T @ M
        else:
            n = self.n_samples
            runs = self.runs()
            blocks = []
            for d in self.delays:
                Mv = M * B.asarray(_delay_valid(runs, d).astype(np.float32))[:, None]
                src = B.zeros(M.shape)
                if abs(d) < n:
                    if d >= 0:
                        src[: n - d] = Mv[d:]
                    else:
                        src[-d:] = Mv[:d]
                blocks.append(self.X.T @ src)
            out = _concat(B, blocks, axis=0)
        return out if self.mean is None else out - self.mean[:, None] * M.sum(0)[None, :]


# --------------------------------------------------------------------------- method choice
def choose_method(n_samples: int, n_features: int, splits, n_alphas: int) -> str:
    """Pick the cheaper algorithm for the shape from a FLOP model (eigh ~ 9 m^3)."""
    if not is_complement(splits, n_samples):
        return "general"
    n, p, k = n_samples, n_features, len(splits)
    dual = 9 * n**3 + 2 * n * n * (1 + n_alphas)
    primal = 9 * (k + 1) * p**3 + 2 * p * p * (k + 1) + 2 * n * p * n_alphas
    return "dual" if dual <= primal * 1.0 else "primal"


# --------------------------------------------------------------------------- result
@dataclass
class FactoredDual:
    """Dual weights kept as ``basis @ weights``: basis (n, n), weights (n, n_targets).

    Predictions multiply the (n_new, n) kernel by the basis first, which is far
    cheaper than forming the (n, n_targets) dual weights during ``fit``.
    """

    basis: object
    weights: object

    def left_multiply(self, K):
        """``K @ basis @ weights`` for K (m, n) -> (m, n_targets)."""
        return (K @ self.basis) @ self.weights

    def dense(self):
        return self.basis @ self.weights



@dataclass
class RidgeCVResult:
    """Output of :func:`ridge_cv`.

    cv_scores: (n_alphas, n_targets) mean validation score, NaN where not evaluated.
    best_index: (n_targets,) index of the chosen alpha.
    coef: (n_features, n_targets) primal weights, or None when ``dual_coef`` is set.
    dual_coef: :class:`FactoredDual` dual weights of the training design, or None.
    """

    cv_scores: np.ndarray
    best_index: np.ndarray
    coef: object = None
    dual_coef: object = None
    method: str = ""
    n_evaluated: int = 0
    extras: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- batching
def _target_batches(n_targets: int, n_rows: int, target_batch: int | None):
    """Slices of targets; the default keeps one (n_rows, batch) float32 block near 256 MB."""
    if target_batch is None:
        target_batch = max(256, int(64e6 // max(n_rows, 1)))
    for start in range(0, n_targets, target_batch):
        yield slice(start, min(start + target_batch, n_targets))


def _weights(B: Backend, d, alpha):
    return 1.0 / (d + float(alpha))


# --------------------------------------------------------------------------- dual path
class _DualCV:
    """Exact held-out predictions of every split from one kernel eigendecomposition.

    For validation block v and training block t = complement of v,
    ``pred_v = -[(M^{-1})_vv]^{-1} U_v diag(w) U_t^T Y_t`` with ``w = 1 / (d + alpha)``.
    This avoids forming ``y_v - residual_v``, which cancels badly when alpha is large.
    """

    def __init__(self, B: Backend, K, splits, lowp: bool):
        self.B, self.lowp = B, lowp
        d, U = B.eigh(K)
        self.d, self.U = B.clip_nonneg(d), U
        self.val_rows = [_rows(B, val) for _, val in splits]
        self.partition = _is_partition(splits, len(K))
        self.U_val = [U[rows] for rows in self.val_rows]
        self._R = {}

    def operators(self, alpha):
        """Per split, the (n_val, n) operator mapping ``U_t^T Y_t`` to the held-out predictions."""
        if alpha not in self._R:
            w = _weights(self.B, self.d, alpha)
            ops = []
            for Uv in self.U_val:
                Uw = Uv * w[None, :]
                S_inv = -self.B.spd_inverse(Uw @ Uv.T)
                ops.append(self.B.matmul_lowp(S_inv, Uw) if self.lowp else S_inv @ Uw)
            self._R[alpha] = ops
        return self._R[alpha]

    def projections(self, Y):
        """``U^T Y`` (n, n_targets) and, per split, ``U_t^T Y_t`` for its training rows."""
        parts = [Uv.T @ Y[rows] for Uv, rows in zip(self.U_val, self.val_rows)]
        A = _sum(parts) if self.partition else self.U.T @ Y
        A_train = parts
        for part in A_train:
            part *= -1
            part += A
        if self.lowp:
            A_train = [self.B.to_lowp(a) for a in A_train]
        return A, A_train

    def predictions(self, i, alpha, A_train):
        """Held-out predictions (n_val, k) of split i from its ``U_t^T Y_t`` columns (n, k)."""
        pred = self.operators(alpha)[i] @ A_train
        return self.B.astype(pred, self.B.dtype_name) if self.lowp else pred


def _rows(B: Backend, idx: np.ndarray):
    """Index rows by a slice when ``idx`` is contiguous (a view, no copy)."""
    if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return B.asarray(idx, dtype="int64") if B.name == "torch" else idx


def _cols(B: Backend, cols: np.ndarray, n_total: int):
    """Column selector for a subset of targets; a full slice when it covers all of them."""
    if len(cols) == n_total:
        return slice(None)
    return B.asarray(cols, dtype="int64") if B.name == "torch" else cols


# --------------------------------------------------------------------------- primal path
class _PrimalCV:
    """Per-split eigendecompositions of downdated Grams; all alphas share them.

    With ``lowp``, the products used only to select alphas (projections and
    validation predictions) run in bf16; the refit stays in the backend dtype.
    """

    def __init__(self, B: Backend, Xd, splits, lowp: bool):
        self.B, self.lowp = B, lowp
        self.val_rows = [_rows(B, val) for _, val in splits]
        self.partition = _is_partition(splits, Xd.shape[0])
        X_val = [Xd[rows] for rows in self.val_rows]
        G_val = [Xv.T @ Xv for Xv in X_val]
        self.G = _sum(G_val) if self.partition else Xd.T @ Xd
        self.Xd, self.X_val = Xd, X_val
        self.folds = []
        for Xv, Gv in zip(X_val, G_val):
            s, V = B.eigh(self.G - Gv)
            P = Xv @ V
            self.folds.append((B.clip_nonneg(s), B.to_lowp(V) if lowp else V, B.to_lowp(P) if lowp else P))

    def projected(self, Y):
        """``X^T Y`` (n_features, k) and, per split, ``V^T X_train^T Y_train`` (n_features, k)."""
        parts = [Xv.T @ Y[rows] for Xv, rows in zip(self.X_val, self.val_rows)]
        XtY = _sum(parts) if self.partition else self.Xd.T @ Y
        mm = self.B.matmul_lowp if self.lowp else (lambda a, b: a @ b)
        return XtY, [mm(V.T, XtY - part) for (_, V, _), part in zip(self.folds, parts)]

    def predictions(self, i, alpha, Af):
        """Held-out predictions (n_val, k) of split i from its projected cross-products (n_features, k)."""
        s, _, P = self.folds[i]
        w = _weights(self.B, s, alpha)
        pred = P @ (Af * self.B.astype(w, "bfloat16" if self.lowp else self.B.dtype_name)[:, None])
        return self.B.astype(pred, self.B.dtype_name) if self.lowp else pred


def _sum(arrays):
    total = arrays[0]
    for a in arrays[1:]:
        total = total + a
    return total


def _is_partition(splits, n: int) -> bool:
    """True when the validation sets cover every sample exactly once."""
    val_all = np.sort(np.concatenate([val for _, val in splits]))
    return len(val_all) == n and bool(np.all(val_all == np.arange(n)))


# --------------------------------------------------------------------------- alpha search
def _candidate_plan(n_alphas: int, alpha_search: str):
    """First round of alpha indices to evaluate for every target."""
    if alpha_search == "grid" or n_alphas <= 4:
        return list(range(n_alphas))
    step = 3
    coarse = list(range(0, n_alphas, step))
    if coarse[-1] != n_alphas - 1:
        coarse.append(n_alphas - 1)
    return coarse


def _refine(scores: np.ndarray, evaluated: np.ndarray) -> np.ndarray:
    """Mask (n_alphas, n_targets) of unevaluated neighbours of each target's current best."""
    n_alphas, t = scores.shape
    filled = np.where(evaluated, np.nan_to_num(scores, nan=-np.inf), -np.inf)
    best = filled.argmax(0)
    want = np.zeros_like(evaluated)
    cols = np.arange(t)
    for off in (-1, 1):
        idx = best + off
        ok = (idx >= 0) & (idx < n_alphas)
        want[idx[ok], cols[ok]] = True
    return want & ~evaluated


# --------------------------------------------------------------------------- main entry
def ridge_cv(
    X,
    Y,
    alphas,
    splits,
    *,
    scoring: str = "correlation",
    backend="auto",
    dtype: str = "float32",
    fit_intercept: bool = False,
    delays=None,
    run_ids=None,
    method: str = "auto",
    target_batch: int | None = None,
    alpha_search: str = "grid",
    select_precision: str = "float32",
    refit: bool = True,
    progress: bool = False,
) -> RidgeCVResult:
    """Cross-validate a per-target alpha and refit each target on all samples.

    X: (n_samples, n_base) features (undelayed when ``delays`` is given).
    Y: (n_samples, n_targets) responses. Both already validated and finite.
    alphas: (n_alphas,) positive penalties. splits: list of (train_idx, val_idx).
    alpha_search: ``"grid"`` scores every alpha; ``"coarse_to_fine"`` scores every
    third alpha, then walks each target to its local optimum.
    select_precision: ``"float32"`` or ``"bf16"`` (select alphas with bf16 products,
    then refit in the backend dtype).
    """
    B = get_backend(backend, dtype)
    if scoring not in SCORERS:
        raise ValueError(f"scoring must be one of {sorted(SCORERS)}, got {scoring!r}")
    alphas = np.asarray(alphas, dtype=np.float64)
    lowp = select_precision == "bf16" and B.name == "torch"
    design, Yb, y_mean = _prepare(B, X, Y, delays, run_ids, fit_intercept)
    n, p = design.n_samples, design.n_features
    if method == "auto":
        method = choose_method(n, p, splits, len(alphas))
    if method == "dual" and not is_complement(splits, n):
        raise ValueError("method='dual' needs splits whose training sets are the complements of their validation sets")
    runner = {"dual": _run_dual, "primal": _run_primal, "general": _run_general}[method]
    result = runner(B, design, Yb, alphas, splits, SCORERS[scoring], lowp, alpha_search, target_batch, refit, progress)
    result.method = method
    result.extras.update(y_mean=y_mean, design=design, backend=B)
    return result


def _prepare(B: Backend, X, Y, delays, run_ids, fit_intercept):
    """Backend arrays and a (centred) design; returns (design, Y, y_mean or None)."""
    design = Design(B.asarray(X), tuple(delays) if delays else None, run_ids)
    Yb = B.asarray(Y)
    if not fit_intercept:
        return design, Yb, None
    ones = B.asarray(np.full((design.n_samples, 1), 1.0 / design.n_samples))
    design.mean = design.rmatmul(B, ones)[:, 0]
    y_mean = Yb.mean(0)
    return design, Yb - y_mean, y_mean


def _select(scores: np.ndarray) -> np.ndarray:
    """Best alpha index per target; all-NaN targets (constant) get index 0."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    return filled.argmax(0)


def _evaluate_rounds(n_alphas, t, alpha_search, evaluate):
    """Run the alpha search; ``evaluate(alpha_index, target_mask) -> (n_targets_in_mask,) scores``."""
    scores = np.full((n_alphas, t), np.nan)
    evaluated = np.zeros((n_alphas, t), bool)
    todo = np.zeros((n_alphas, t), bool)
    todo[_candidate_plan(n_alphas, alpha_search)] = True
    n_eval = 0
    while todo.any():
        for a in np.flatnonzero(todo.any(1)):
            cols = np.flatnonzero(todo[a])
            scores[a, cols] = evaluate(a, cols)
            n_eval += len(cols)
        evaluated |= todo
        todo = _refine(scores, evaluated) if alpha_search != "grid" else np.zeros_like(todo)
    return scores, n_eval


def _run_dual(B, design, Y, alphas, splits, scorer, lowp, alpha_search, target_batch, refit, progress):
    cv = _DualCV(B, design.kernel(B), splits, lowp)
    t = Y.shape[1]
    all_scores = np.full((len(alphas), t), np.nan)
    dual_weights = B.zeros((design.n_samples, t)) if refit else None
    n_eval = 0
    rows_per_target = design.n_samples * (len(splits) + 3)
    for sl in tqdm(list(_target_batches(t, rows_per_target, target_batch)), disable=not progress, desc="ridge"):
        Yt = Y[:, sl]
        A, A_train = cv.projections(Yt)
        Y_val = [Yt[rows] for rows in cv.val_rows]

        def evaluate(a, cols):
            c = _cols(B, cols, Yt.shape[1])
            fold = [
                _fold_scores(B, scorer, Y_val[i][:, c], cv.predictions(i, alphas[a], A_train[i][:, c]))
                for i in range(len(splits))
            ]
            return _nanmean_folds(fold)

        scores, ne = _evaluate_rounds(len(alphas), sl.stop - sl.start, alpha_search, evaluate)
        n_eval += ne
        all_scores[:, sl] = scores
        if refit:
            W = 1.0 / (cv.d[:, None] + B.asarray(alphas[_select(scores)])[None, :])
            dual_weights[:, sl] = A * W
    dual_coef = FactoredDual(cv.U, dual_weights) if refit else None
    return RidgeCVResult(all_scores, _select(all_scores), dual_coef=dual_coef, n_evaluated=n_eval)


def _nanmean_folds(fold_scores) -> np.ndarray:
    stacked = np.vstack(fold_scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stacked, axis=0)


def _run_primal(B, design, Y, alphas, splits, scorer, lowp, alpha_search, target_batch, refit, progress):
    Xd = design.dense(B)
    cv = _PrimalCV(B, Xd, splits, lowp)
    t = Y.shape[1]
    all_scores = np.full((len(alphas), t), np.nan)
    coef = B.zeros((design.n_features, t)) if refit else None
    if refit:
        s_full, V_full = B.eigh(cv.G)
        s_full = B.clip_nonneg(s_full)
    n_eval = 0
    for sl in tqdm(list(_target_batches(t, max(design.n_samples, design.n_features), target_batch)),
                   disable=not progress, desc="ridge"):
        Yt = Y[:, sl]
        XtY, Afs = cv.projected(Yt)

        def evaluate(a, cols):
            cols_b = _cols(B, cols, Yt.shape[1])
            fold = []
            for i, (_, val) in enumerate(splits):
                pred = cv.predictions(i, alphas[a], Afs[i][:, cols_b])
                fold.append(_fold_scores(B, scorer, Yt[val][:, cols_b], pred))
            return _nanmean_folds(fold)

        scores, ne = _evaluate_rounds(len(alphas), sl.stop - sl.start, alpha_search, evaluate)
        n_eval += ne
        all_scores[:, sl] = scores
        if refit:
            best = _select(scores)
            W = 1.0 / (s_full[:, None] + B.asarray(alphas[best])[None, :])
            coef[:, sl] = V_full @ ((V_full.T @ XtY) * W)
    return RidgeCVResult(all_scores, _select(all_scores), coef=coef, n_evaluated=n_eval)


def _run_general(B, design, Y, alphas, splits, scorer, lowp, alpha_search, target_batch, refit, progress):
    """Each split solved from its own training rows (splits need not partition the samples)."""
    Xd = design.dense(B)
    t = Y.shape[1]
    fold_scores = np.zeros((len(splits), len(alphas), t))
    for i, (train, val) in enumerate(tqdm(splits, disable=not progress, desc="ridge splits")):
        tr = B.asarray(train, dtype="int64") if B.name == "torch" else train
        va = B.asarray(val, dtype="int64") if B.name == "torch" else val
        Xt, Xv = Xd[tr], Xd[va]
        for a, alpha in enumerate(alphas):
            for sl in _target_batches(t, len(train), target_batch):
                pred = Xv @ solve_ridge(Xt, Y[tr][:, sl], alpha, backend=B, _prepared=True)
                fold_scores[i, a, sl] = _fold_scores(B, scorer, Y[va][:, sl], pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = np.nanmean(fold_scores, axis=0)
    best = _select(scores)
    coef = solve_ridge(Xd, Y, alphas[best], backend=B, _prepared=True) if refit else None
    return RidgeCVResult(scores, best, coef=coef, n_evaluated=len(alphas) * t)


# --------------------------------------------------------------------------- fixed alpha
def solve_ridge(X, Y, alpha, backend="auto", dtype: str = "float32", _prepared: bool = False):
    """Ridge weights for a scalar or per-target alpha.

    X: (n_samples, n_features); Y: (n_samples, n_targets); alpha: float or (n_targets,).
    Returns coef (n_features, n_targets) on the backend. One eigendecomposition
    serves every alpha. No intercept: centre X and Y first if one is wanted.
    """
    B = backend if isinstance(backend, Backend) else get_backend(backend, dtype)
    X = X if _prepared else B.asarray(X)
    Y = Y if _prepared else B.asarray(Y)
    alpha = np.array(np.broadcast_to(np.asarray(alpha, dtype=np.float64), (Y.shape[1],)))
    if np.any(alpha < 0):
        raise ValueError(f"alpha must be non-negative; got min {alpha.min()}")
    a = B.asarray(alpha)[None, :]
    n, p = X.shape
    if n >= p:
        s, V = B.eigh(X.T @ X)
        return V @ ((V.T @ (X.T @ Y)) / (B.clip_nonneg(s)[:, None] + a))
    d, U = B.eigh(X @ X.T)
    return X.T @ (U @ ((U.T @ Y) / (B.clip_nonneg(d)[:, None] + a)))


def ridge_cv_scores(X, Y, alphas, splits, scoring: str = "correlation", backend="auto", dtype="float32", **kw):
    """Mean validation score per alpha and target, (n_alphas, n_targets) numpy."""
    return ridge_cv(X, Y, alphas, splits, scoring=scoring, backend=backend, dtype=dtype, refit=False, **kw).cv_scores
