"""Ridge solvers: pure functions over a :class:`~cortexscale.encoding._backend.Backend`.

Conventions
-----------
* Penalty: ``(X^T X + alpha I)^{-1} X^T Y`` (scikit-learn and himalaya). Huth-lab code
  penalises ``alpha**2``; their ``alpha_huth`` equals ``sqrt(alpha)`` here.
* ``X`` is (n_samples, n_features), ``Y`` is (n_samples, n_targets); scores come
  back as numpy arrays of shape (n_alphas, n_targets).

Algorithms
----------
``dual``   (n_samples <= n_features, each training set the complement of its validation set):
    one eigendecomposition ``K = U diag(d) U^T`` of the full kernel serves every split
    and every alpha. The held-out residual of a validation block ``v`` is exact:
    ``e_v = [(M^{-1})_{vv}]^{-1} (M^{-1} Y)_v`` with ``M = K + alpha I``, which equals
    training on the complement of ``v`` and predicting ``v``.
``primal`` (n_samples > n_features): per split, the training Gram and cross-products
    are downdated from full-data sums, ``G_t = G - X_v^T X_v``; one eigendecomposition
    per split; the validation predictions of all alphas reuse it.
``general`` (any split): the primal or dual problem of each split, solved from scratch.

Precision: with a float32 backend the products run in float32, but the kernel or Gram
and its eigendecompositions, which select the alphas, are formed in float64 (see
:func:`_selection_kernel`). ``select_precision="bf16"`` screens every alpha with bf16
products and scores again in float32 only what could decide a target's alpha
(:func:`_rescore_ties`); "auto" does so where bf16 products are fast. On smooth, collinear
designs the validation curves are flat near their best (for 73% of targets the two best alphas
differ by less than 1e-4 of the score, against a bf16 error near 4e-3), so most scores would be
redone: a sample of each batch measures that first and the batch runs in float32 instead.

Targets are processed in batches, so memory stays bounded for 100k targets; no array
of shape (n_alphas, n_samples, n_targets) is ever built.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..runtime import resolve_precision
from ._backend import Backend, get_backend
from ._cv import is_complement
from ._design import Design
from ._scorers import SCORERS, fold_scores, mean_over_folds

__all__ = [
    "RidgeCVResult",
    "fast_bf16",
    "choose_method",
    "ridge_cv",
    "ridge_cv_scores",
    "solve_ridge",
]


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
def default_target_batch(n_rows: int) -> int:
    """The default batch of targets: one (n_rows, batch) float32 block near 256 MB, at least 256 targets.

    A multiple of 64 targets: products with (n, batch) blocks whose rows are 32-byte aligned ran about 5%
    faster (2624 against 2666 columns).
    """
    return max(256, int(64e6 // max(n_rows, 1)) // 64 * 64)


def _target_batches(n_targets: int, n_rows: int, target_batch: int | None):
    """Slices of targets, ``target_batch`` at a time (None: :func:`default_target_batch`)."""
    if target_batch is None:
        target_batch = default_target_batch(n_rows)
    for start in range(0, n_targets, target_batch):
        yield slice(start, min(start + target_batch, n_targets))


def _weights(B: Backend, d, alpha):
    return 1.0 / (d + float(alpha))


# --------------------------------------------------------------------------- dual path
class _DualCV:
    """Exact held-out residuals and predictions of every split from one kernel eigendecomposition.

    For validation block v, training block t = complement of v, ``M = K + alpha I`` and
    ``R = [(M^{-1})_vv]^{-1} U_v diag(w)`` with ``w = 1 / (d + alpha)``, the held-out
    residual is ``e_v = R U^T Y`` and the held-out prediction ``pred_v = -R U_t^T Y_t``.
    Scores of the residual alone (neg_mse, r2) need only ``U^T Y``; the others use
    ``pred_v``, which avoids forming ``y_v - e_v`` (that cancels badly when alpha is large).

    ``K`` comes in float64 (see :func:`_selection_kernel`) and is decomposed in float64; ``d``, ``U``
    and the operators are kept in the backend dtype, with bf16 copies of the operators for screening.
    """

    def __init__(self, B: Backend, K, splits):
        self.B = B
        d, U = B.eigh(K, in_float64=True)
        self.d, self.U = B.clip_nonneg(d), U
        self.val_rows = [_rows(B, val) for _, val in splits]
        self.partition = _is_partition(splits, len(K))
        self.U_val = [U[rows] for rows in self.val_rows]
        self._R, self._R_low = {}, {}

    def operators(self, alpha, low: bool = False):
        """Per split, the (n_val, n) operator ``R`` at ``alpha`` (cached), in bf16 with ``low``."""
        if alpha not in self._R:
            w = _weights(self.B, self.d, alpha)
            ops = []
            for Uv in self.U_val:
                Uw = Uv * w[None, :]
                ops.append(self.B.spd_inverse(Uw @ Uv.T) @ Uw)
            self._R[alpha] = ops
        if not low:
            return self._R[alpha]
        if alpha not in self._R_low:
            self._R_low[alpha] = [self.B.to_lowp(R) for R in self._R[alpha]]
        return self._R_low[alpha]

    def projections(self, Y, per_split: bool):
        """``A = U^T Y`` (n, k) and, with ``per_split``, ``U_v^T Y_v - A = -U_t^T Y_t`` (n, k) per split."""
        if not per_split:
            return self.U.T @ Y, None
        parts = [Uv.T @ Y[rows] for Uv, rows in zip(self.U_val, self.val_rows)]
        A = _sum(parts) if self.partition else self.U.T @ Y
        for part in parts:
            part -= A
        return A, parts

    def apply(self, i, alpha, M, low: bool = False):
        """``R @ M`` (n_val, k) of split i in the backend dtype, for ``M`` (n, k) (bf16 with ``low``)."""
        out = self.operators(alpha, low)[i] @ M
        return self.B.astype(out, self.B.dtype_name) if low else out


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

    The Grams and their decompositions are float64 (:func:`_selection_gram`), kept in the backend
    dtype, with bf16 copies of each split's projected validation rows for screening.
    """

    def __init__(self, B: Backend, Xd, splits):
        self.B = B
        self.val_rows = [_rows(B, val) for _, val in splits]
        self.partition = _is_partition(splits, Xd.shape[0])
        X_val = [Xd[rows] for rows in self.val_rows]
        G_val = [_selection_gram(B, Xv) for Xv in X_val]
        self.G = _sum(G_val) if self.partition else _selection_gram(B, Xd)
        self.Xd, self.X_val = Xd, X_val
        self.folds, self._P_low = [], {}
        for Xv in X_val:
            s, V = B.eigh(self.G - G_val.pop(0), in_float64=True)
            self.folds.append((B.clip_nonneg(s), V, Xv @ V))

    def projected(self, Y):
        """``X^T Y`` (n_features, k) and, per split, ``V^T X_train^T Y_train`` (n_features, k)."""
        parts = [Xv.T @ Y[rows] for Xv, rows in zip(self.X_val, self.val_rows)]
        XtY = _sum(parts) if self.partition else self.Xd.T @ Y
        return XtY, [V.T @ (XtY - part) for (_, V, _), part in zip(self.folds, parts)]

    def predictions(self, i, alpha, Af, low: bool = False):
        """Held-out predictions (n_val, k) of split i from its projected cross-products (n_features, k); with
        ``low`` the product runs in bf16 (``Af`` already bf16)."""
        s, _, P = self.folds[i]
        w = _weights(self.B, s, alpha)
        if not low:
            return (P * w[None, :]) @ Af
        if i not in self._P_low:
            self._P_low[i] = self.B.to_lowp(P)
        pred = (self._P_low[i] * self.B.astype(w, "bfloat16")[None, :]) @ Af
        return self.B.astype(pred, self.B.dtype_name)


def _selection_gram(B: Backend, X):
    """``X^T X`` (p, p) in float64, for the reason given in :func:`_selection_kernel` (the primal path
    downdates and decomposes it once per split)."""
    X64 = B.with_dtype("float64").asarray(X)
    return X64.T @ X64


def _sum(arrays):
    """Sum of one or more arrays, into a new array (the inputs are left unchanged)."""
    total = arrays[0] + arrays[1] if len(arrays) > 1 else arrays[0] * 1
    for a in arrays[2:]:
        total += a
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


@dataclass(frozen=True)
class _SearchPlan:
    """How the alphas are searched: ``name`` ("grid" or "coarse_to_fine") and, for the latter, optional
    per-target starting indices ``start`` (n_targets,)."""

    name: str
    start: np.ndarray | None = None

    def first_round(self, n_alphas: int, targets: slice) -> np.ndarray:
        """Mask (n_alphas, t) of the first scores to compute for the targets of a batch."""
        t = targets.stop - targets.start
        todo = np.zeros((n_alphas, t), bool)
        if self.start is None:
            todo[_candidate_plan(n_alphas, self.name)] = True
        else:
            todo[self.start[targets], np.arange(t)] = True
        return todo


ALPHA_SEARCHES = ("grid", "coarse_to_fine")


def _search_plan(alpha_search: str, alpha_start, n_alphas: int, n_targets: int) -> _SearchPlan:
    """The checked plan of :func:`ridge_cv`'s ``alpha_search`` and ``alpha_start``."""
    if alpha_search not in ALPHA_SEARCHES:
        raise ValueError(f"alpha_search must be one of {list(ALPHA_SEARCHES)}, got {alpha_search!r}")
    if alpha_start is None:
        return _SearchPlan(alpha_search)
    if alpha_search != "coarse_to_fine":
        raise ValueError("alpha_start needs alpha_search='coarse_to_fine' (a grid search scores every alpha)")
    start = np.asarray(alpha_start)
    if start.shape != (n_targets,) or not np.issubdtype(start.dtype, np.integer):
        raise ValueError(f"alpha_start must be ({n_targets},) integer alpha indices, got {start.dtype} {start.shape}")
    if start.size and (start.min() < 0 or start.max() >= n_alphas):
        raise ValueError(f"alpha_start holds indices outside 0..{n_alphas - 1}")
    return _SearchPlan(alpha_search, start.astype(np.intp))


# --------------------------------------------------------------------------- main entry
def ridge_cv(
    X,
    Y,
    alphas,
    splits,
    *,
    scoring: str = "correlation",
    backend="auto",
    dtype="fp32",
    fit_intercept: bool = False,
    delays=None,
    run_ids=None,
    method: str = "auto",
    target_batch: int | None = None,
    alpha_search: str = "grid",
    alpha_start=None,
    select_precision="fp32",
    refit: bool = True,
    progress: bool = False,
) -> RidgeCVResult:
    """Cross-validate a per-target alpha and refit each target on all samples.

    X: (n_samples, n_base) features (undelayed when ``delays`` is given).
    Y: (n_samples, n_targets) responses. Both already validated and finite.
    alphas: (n_alphas,) positive penalties. splits: list of (train_idx, val_idx).
    alpha_search: ``"grid"`` scores every alpha; ``"coarse_to_fine"`` scores every
    third alpha, then walks each target to its local optimum.
    alpha_start: None or (n_targets,) alpha indices; with ``"coarse_to_fine"``, each target's walk starts
    at its own index instead of every third alpha (a warm start, such as a nearby banded candidate's choice).
    The ``general`` method (splits that are not complements of each other) scores every alpha either way.
    backend: ``"auto"``, ``"numpy"``, ``"torch"``, ``"torch_cuda"``, a device or a Backend
    (see :func:`~cortexscale.encoding.get_backend`). dtype: fp32 or fp64, any spelling
    :func:`cortexscale.runtime.resolve_precision` accepts.
    select_precision: ``"bf16"`` screens the alphas with bf16 products (torch only), then scores exactly,
    in ``dtype``, every alpha within :data:`TIE_MARGIN` measured bf16 errors of a target's best (see
    :func:`_rescore_ties`); ``"fp32"`` scores everything in ``dtype``; ``"auto"`` is bf16 where the device
    multiplies bf16 faster than float32 (:func:`fast_bf16`), else fp32. The decompositions are float64 and
    the refit is in ``dtype`` either way; "auto" never screens a float64 fit.
    """
    B = get_backend(backend, dtype)
    if scoring not in SCORERS:
        raise ValueError(f"scoring must be one of {sorted(SCORERS)}, got {scoring!r}")
    if method not in ("auto", *_RUNNERS):
        raise ValueError(f"method must be 'auto' or one of {list(_RUNNERS)}, got {method!r}")
    alphas = np.asarray(alphas, dtype=np.float64)
    plan = _search_plan(alpha_search, alpha_start, len(alphas), np.shape(Y)[1])
    screen = screens(B, select_precision)
    design, Yb, y_mean = _prepare(B, X, Y, delays, run_ids, fit_intercept)
    n, p = design.n_samples, design.n_features
    if method == "auto":
        method = choose_method(n, p, splits, len(alphas))
    if method == "dual" and not is_complement(splits, n):
        raise ValueError("method='dual' needs splits whose training sets are the complements of their validation sets")
    result = _RUNNERS[method](B, design, Yb, alphas, splits, SCORERS[scoring], screen, plan, target_batch,
                              refit, progress)
    result.method = method
    result.extras.update(y_mean=y_mean, design=design, backend=B)
    return result


def screens(B: Backend, select_precision) -> bool:
    """Whether ``select_precision`` (auto, fp32 or bf16, any spelling) screens alphas in bf16 on ``B``."""
    if isinstance(select_precision, str) and select_precision.strip().lower() == "auto":
        return B.dtype_name == "float32" and fast_bf16(B)
    chosen = resolve_precision(select_precision, ("fp32", "bf16"), "select_precision")
    return chosen == "bf16" and B.name == "torch"


def fast_bf16(B: Backend) -> bool:
    """True where bf16 products outrun float32 ones: torch on a CUDA device of compute capability 8 or more,
    or on a CPU with AVX512-BF16 or AMX (oneDNN's bf16 kernels)."""
    if B.name != "torch":
        return False
    import torch

    if B.device.type == "cuda":
        return torch.cuda.get_device_capability(B.device)[0] >= 8
    return B.device.type == "cpu" and _cpu_has_bf16()


@functools.cache
def _cpu_has_bf16() -> bool:
    import torch

    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        flags = ""
    native = any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))
    return native and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


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


TIE_MARGIN = 6.0
"""Screened scores within this many times the measured bf16 error of a target's best are re-scored exactly:
a pair of scores each off by at most the error differ by at most twice it, and the largest error over all
targets may be up to about three times the largest over the sample that measures it."""
SCREEN_SAMPLE = 64
"""Targets of each batch scored both ways, at every alpha, to measure the bf16 error."""
SCREEN_WORTH = 0.35
"""Screening goes on only where the sample predicts at most this share of scores redone exactly: a bf16
pass costs about 0.3 of an exact one on a CPU with AVX512-BF16, and a redone score a little more than an
exact one (its targets are gathered), so past about 0.4 the screen costs more than it saves."""


@dataclass
class _Screen:
    """What the sample measured: its targets (s,), their exact scores (n_alphas, s) and the bf16 error in
    units of :func:`_score_scale` (``relative`` as there)."""

    sample: np.ndarray
    exact: np.ndarray
    error: float
    relative: bool


def _near_ties(scores: np.ndarray, evaluated: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """(n_alphas, t) mask of the evaluated scores within ``margin`` (t,) of their target's best, for targets
    that have at least two such scores."""
    filled = np.where(evaluated, np.nan_to_num(scores, nan=-np.inf), -np.inf)
    near = evaluated & (filled >= filled.max(0) - margin)
    return near & (near.sum(0) >= 2)


def _measure_screen(n_alphas: int, t: int, evaluate, relative: bool) -> tuple[_Screen, float]:
    """Score a sample of targets at every alpha exactly and in bf16; the measurement and the share of
    the sample's scores that :func:`_rescore_ties` would redo."""
    sample = np.unique(np.linspace(0, t - 1, min(t, SCREEN_SAMPLE)).round().astype(int))
    exact = np.stack([evaluate(a, sample, False) for a in range(n_alphas)])
    low = np.stack([evaluate(a, sample, True) for a in range(n_alphas)])
    scale = _score_scale(exact, relative)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        error = float(np.nanmax(np.abs(low - exact) / scale, initial=0.0))
    near = _near_ties(exact, np.ones_like(exact, bool), TIE_MARGIN * error * scale + 1e-12 * scale)
    return _Screen(sample, exact, error, relative), float(near.mean())


def _evaluate_rounds(n_alphas, targets: slice, plan: _SearchPlan, evaluate, screen: bool = False,
                     relative: bool = False):
    """Run the alpha search over a batch of ``targets``; ``evaluate(alpha_index, target_indices, low) -> (n,)
    scores``, the indices counted within the batch.

    With ``screen``, a sample of targets first measures the bf16 error (:func:`_measure_screen`); where it
    predicts more than :data:`SCREEN_WORTH` of the scores redone, the search runs exactly. Otherwise it runs
    on bf16 products (``low``) and :func:`_rescore_ties` redoes exactly every score that could decide a
    target's alpha. Returns the scores (n_alphas, t), the number of scores computed, the number computed
    exactly after screening and whether the batch was screened.
    """
    measured, n_eval, t = None, 0, targets.stop - targets.start
    if screen and t > 2 * SCREEN_SAMPLE:
        measured, share = _measure_screen(n_alphas, t, evaluate, relative)
        n_eval = 2 * measured.exact.size
        screen = share <= SCREEN_WORTH
    else:
        screen = False
    scores = np.full((n_alphas, t), np.nan)
    evaluated = np.zeros((n_alphas, t), bool)
    todo = plan.first_round(n_alphas, targets)
    while todo.any():
        for a in np.flatnonzero(todo.any(1)):
            cols = np.flatnonzero(todo[a])
            scores[a, cols] = evaluate(a, cols, screen)
            n_eval += len(cols)
        evaluated |= todo
        todo = _refine(scores, evaluated) if plan.name != "grid" else np.zeros_like(todo)
    rescored = _rescore_ties(scores, evaluated, evaluate, measured) if screen else 0
    return scores, n_eval + rescored, rescored, screen


def _score_scale(scores: np.ndarray, relative: bool) -> np.ndarray:
    """Per target (t,), the unit of a score's error: its largest magnitude where errors scale with it."""
    if not relative:
        return np.ones(scores.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(np.nanmax(np.abs(scores), axis=0), nan=1.0) + 1e-30


def _rescore_ties(scores: np.ndarray, evaluated: np.ndarray, evaluate, measured: _Screen) -> int:
    """Exact scores, in place, where the screened ones could have picked another alpha; returns their count.

    The sample's exact scores replace its screened ones; then every target whose screened scores hold
    another alpha within :data:`TIE_MARGIN` measured errors of its best has those alphas scored again exactly.
    """
    sample = measured.sample
    scores[:, sample], evaluated[:, sample] = measured.exact, True
    scale = _score_scale(scores, measured.relative)
    near = _near_ties(scores, evaluated, TIE_MARGIN * measured.error * scale + 1e-12 * scale)
    near[:, sample] = False
    n = 0
    for a in np.flatnonzero(near.any(1)):
        cols = np.flatnonzero(near[a])
        scores[a, cols] = evaluate(a, cols, False)
        n += len(cols)
    return n


def _selection_kernel(B: Backend, design: Design):
    """The (n, n) kernel whose eigendecomposition selects alphas, in float64.

    A float32 kernel, or float32 eigenvectors of it, are exact only for ``K + E`` with
    ``||E|| ~ 1e-7 ||K||``, and the held-out operator ``[(M^{-1})_vv]^{-1}`` magnifies ``E``
    by up to ``||K|| / alpha``. With smooth, collinear features (n_samples ~ n_features)
    that moved the alpha of 9% of the targets (30% in the primal path) away from the
    float64 choice. The float64 kernel and decomposition cost O(n^3) once per fit,
    against O(n^2 n_targets) per alpha for the selection itself.
    """
    B64 = B.with_dtype("float64")
    return design.on(B64).kernel(B64)


def _picked(blocks: list, c) -> list:
    """``[m[:, c] for m in blocks]``, gathering each distinct block once (residual scores share ``U^T Y``)."""
    if isinstance(c, slice):
        return blocks
    gathered = {}
    for m in blocks:
        if id(m) not in gathered:
            gathered[id(m)] = m[:, c]
    return [gathered[id(m)] for m in blocks]


def _screen_extras(screen: bool, n_rescored: int, n_screened: int) -> dict:
    return {"n_rescored": n_rescored, "n_screened_batches": n_screened} if screen else {}


def _run_dual(B, design, Y, alphas, splits, scorer, screen, plan, target_batch, refit, progress):
    cv = _DualCV(B, _selection_kernel(B, design), splits)
    of_residual = scorer.residual is not None
    score = scorer.residual if of_residual else scorer.prediction
    t = Y.shape[1]
    all_scores = np.full((len(alphas), t), np.nan)
    dual_weights = B.zeros((design.n_samples, t)) if refit else None
    n_eval = n_exact = n_screened = 0
    rows_per_target = design.n_samples * (len(splits) + 3)
    for sl in tqdm(list(_target_batches(t, rows_per_target, target_batch)), disable=not progress, desc="ridge"):
        Yt = Y[:, sl]
        A, neg_train = cv.projections(Yt, per_split=not of_residual)
        rhs = [A] * len(splits) if of_residual else neg_train
        rhs_low = None if not screen else [B.to_lowp(m) for m in ([A] if of_residual else neg_train)]
        rhs_low = rhs_low * len(splits) if screen and of_residual else rhs_low
        Y_val = [Yt[rows] for rows in cv.val_rows]

        def evaluate(a, cols, low):
            c = _cols(B, cols, Yt.shape[1])
            M = _picked(rhs_low if low else rhs, c)
            return mean_over_folds([fold_scores(B, score, Y_val[i][:, c], cv.apply(i, alphas[a], M[i], low))
                                    for i in range(len(splits))])

        scores, ne, nx, screened = _evaluate_rounds(len(alphas), sl, plan, evaluate, screen, scorer.relative)
        n_eval, n_exact, n_screened = n_eval + ne, n_exact + nx, n_screened + screened
        all_scores[:, sl] = scores
        if refit:
            W = 1.0 / (cv.d[:, None] + B.asarray(alphas[_select(scores)])[None, :])
            dual_weights[:, sl] = A * W
    dual_coef = FactoredDual(cv.U, dual_weights) if refit else None
    return RidgeCVResult(all_scores, _select(all_scores), dual_coef=dual_coef, n_evaluated=n_eval,
                         extras=_screen_extras(screen, n_exact, n_screened))


def _run_primal(B, design, Y, alphas, splits, scorer, screen, plan, target_batch, refit, progress):
    Xd = design.dense(B)
    cv = _PrimalCV(B, Xd, splits)
    t = Y.shape[1]
    all_scores = np.full((len(alphas), t), np.nan)
    coef = B.zeros((design.n_features, t)) if refit else None
    if refit:
        s_full, V_full = B.eigh(B.astype(cv.G, B.dtype_name))
        s_full = B.clip_nonneg(s_full)
    n_eval = n_exact = n_screened = 0
    for sl in tqdm(list(_target_batches(t, max(design.n_samples, design.n_features), target_batch)),
                   disable=not progress, desc="ridge"):
        Yt = Y[:, sl]
        XtY, Afs = cv.projected(Yt)
        Afs_low = [B.to_lowp(Af) for Af in Afs] if screen else None
        Y_val = [Yt[rows] for rows in cv.val_rows]

        def evaluate(a, cols, low):
            c = _cols(B, cols, Yt.shape[1])
            M = Afs_low if low else Afs
            return mean_over_folds([fold_scores(B, scorer.prediction, Y_val[i][:, c],
                                                cv.predictions(i, alphas[a], M[i][:, c], low))
                                    for i in range(len(splits))])

        scores, ne, nx, screened = _evaluate_rounds(len(alphas), sl, plan, evaluate, screen, scorer.relative)
        n_eval, n_exact, n_screened = n_eval + ne, n_exact + nx, n_screened + screened
        all_scores[:, sl] = scores
        if refit:
            best = _select(scores)
            W = 1.0 / (s_full[:, None] + B.asarray(alphas[best])[None, :])
            coef[:, sl] = V_full @ ((V_full.T @ XtY) * W)
    return RidgeCVResult(all_scores, _select(all_scores), coef=coef, n_evaluated=n_eval,
                         extras=_screen_extras(screen, n_exact, n_screened))


def _run_general(B, design, Y, alphas, splits, scorer, screen, plan, target_batch, refit, progress):
    """Each split solved from its own training rows (splits need not partition the samples)."""
    Xd = design.dense(B)
    t = Y.shape[1]
    per_fold = np.zeros((len(splits), len(alphas), t))
    for i, (train, val) in enumerate(tqdm(splits, disable=not progress, desc="ridge splits")):
        tr = B.asarray(train, dtype="int64") if B.name == "torch" else train
        va = B.asarray(val, dtype="int64") if B.name == "torch" else val
        Xt, Xv = Xd[tr], Xd[va]
        for a, alpha in enumerate(alphas):
            for sl in _target_batches(t, len(train), target_batch):
                pred = Xv @ solve_ridge(Xt, Y[tr][:, sl], alpha, backend=B, _prepared=True)
                per_fold[i, a, sl] = fold_scores(B, scorer.prediction, Y[va][:, sl], pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = np.nanmean(per_fold, axis=0)
    best = _select(scores)
    coef = solve_ridge(Xd, Y, alphas[best], backend=B, _prepared=True) if refit else None
    return RidgeCVResult(scores, best, coef=coef, n_evaluated=len(alphas) * t)


# --------------------------------------------------------------------------- fixed alpha
def solve_ridge(X, Y, alpha, backend="auto", dtype="fp32", _prepared: bool = False):
    """Ridge weights for a scalar or per-target alpha.

    X: (n_samples, n_features); Y: (n_samples, n_targets); alpha: float or (n_targets,).
    Returns coef (n_features, n_targets) on the backend. One eigendecomposition
    serves every alpha. No intercept: centre X and Y first if one is wanted.
    backend and dtype as in :func:`ridge_cv`; a Backend instance brings its own dtype.
    """
    B = get_backend(backend, dtype)
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


def ridge_cv_scores(X, Y, alphas, splits, scoring: str = "correlation", backend="auto", dtype="fp32", **kw):
    """Mean validation score per alpha and target, (n_alphas, n_targets) numpy."""
    return ridge_cv(X, Y, alphas, splits, scoring=scoring, backend=backend, dtype=dtype, refit=False, **kw).cv_scores


_RUNNERS = {"dual": _run_dual, "primal": _run_primal, "general": _run_general}
