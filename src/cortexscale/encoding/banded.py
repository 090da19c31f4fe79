"""Banded ridge regression: one penalty per feature space, chosen per target.

Banded ridge fits ``Y ~ sum_b X_b W_b`` with the penalty ``sum_b lambda_b ||W_b||^2``,
so that each feature space ("band", for example semantic and acoustic features)
gets its own regularisation. Writing ``lambda_b = alpha / gamma_b`` with band
ratios ``gamma`` on the simplex, the problem equals plain ridge with penalty
``alpha`` on the rescaled design ``[sqrt(gamma_1) X_1, ..., sqrt(gamma_B) X_B]``.
:class:`BandedRidgeCV` searches the ratios at random (the corners and the centre of
the simplex, then Dirichlet draws) or over a given grid; for each candidate ratio
the plain ridge cross-validation scores every alpha, and each target keeps its best
(ratio, alpha) pair.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from ._backend import get_backend
from ._base import EncodingEstimator
from ._solvers import ALPHA_SEARCHES as _RIDGE_SEARCHES
from ._solvers import ridge_cv
from ._validation import constant_columns

__all__ = ["BandedRidgeCV", "band_ratio_candidates", "delayed_band_columns"]

ALPHA_SEARCHES = (*_RIDGE_SEARCHES, "warm_start")


def band_ratio_candidates(n_bands: int, n_iter: int = 20, concentration=(0.1, 1.0), random_state=None) -> np.ndarray:
    """Band ratios to try, (n_candidates, n_bands), each row on the simplex.

    The first rows are the ``n_bands`` one-hot corners and the uniform ratio; the
    remaining ``n_iter - n_bands - 1`` rows are Dirichlet draws whose concentration
    cycles through ``concentration``. Fewer than ``n_bands + 1`` iterations keep
    the first ``n_iter`` fixed rows. Duplicate rows are dropped.
    """
    if not isinstance(n_iter, numbers.Integral) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    conc = np.atleast_1d(np.asarray(concentration, dtype=np.float64))
    if conc.ndim != 1 or conc.size == 0 or np.any(conc <= 0):
        raise ValueError(f"concentration must be one or more positive numbers, got {concentration!r}")
    fixed = np.vstack([np.eye(n_bands), np.full((1, n_bands), 1.0 / n_bands)])
    rng = check_random_state(random_state)
    n_random = max(int(n_iter) - len(fixed), 0)
    draws = [rng.dirichlet(np.full(n_bands, conc[i % conc.size])) for i in range(n_random)]
    rows = np.vstack([fixed[:n_iter], *draws]) if draws else fixed[:n_iter]
    rows = rows[np.isfinite(rows).all(1) & (rows.sum(1) > 0)]
    return _unique_rows(rows / rows.sum(1, keepdims=True))


def _unique_rows(rows: np.ndarray) -> np.ndarray:
    _, first = np.unique(rows, axis=0, return_index=True)
    return rows[np.sort(first)]


def _check_grid(grid, n_bands: int) -> np.ndarray:
    """User-given ratios (n_candidates, n_bands), non-negative, normalised to sum to one."""
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim == 1 and n_bands == g.size:
        g = g[None, :]
    if g.ndim != 2 or g.shape[1] != n_bands or g.shape[0] == 0:
        raise ValueError(f"grid has shape {g.shape}; expected (n_candidates, {n_bands}), one ratio per band")
    bad = np.flatnonzero(~np.isfinite(g).all(1) | (g < 0).any(1) | (g.sum(1) <= 0))
    if bad.size:
        raise ValueError(
            f"grid row {bad[0]} = {g[bad[0]].tolist()} is not a valid band ratio; "
            "ratios must be finite, non-negative and not all zero"
        )
    return _unique_rows(g / g.sum(1, keepdims=True))


def delayed_band_columns(band_sizes, n_delays: int) -> list[np.ndarray]:
    """Columns of each band after :class:`~cortexscale.encoding.Delayer`, for ``bands=``.

    The delayer lays its output out delay-major (column ``k * p + j`` is feature ``j``
    at delay ``k``), so consecutive bands of sizes ``band_sizes`` (summing to ``p``)
    interleave. Returns one integer array per band, each of length ``size * n_delays``.
    """
    sizes = np.asarray(band_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes <= 0):
        raise ValueError(f"band_sizes must be a non-empty sequence of positive integers, got {band_sizes!r}")
    p = int(sizes.sum())
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    return [
        np.concatenate([k * p + np.arange(s, s + n) for k in range(n_delays)]) for s, n in zip(starts, sizes)
    ]


def _band_columns(bands, n_features: int) -> list[np.ndarray]:
    """Resolve ``bands`` into one sorted integer column array per band; they must partition the columns."""
    if bands is None:
        return [np.arange(n_features)]
    bands = list(bands)
    if not bands:
        raise ValueError("bands is empty; give band sizes or one column selector per band")
    if all(isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in bands):
        return _columns_from_sizes(np.asarray(bands, dtype=np.int64), n_features)
    cols = [_select_columns(sel, f"bands[{b}]", n_features) for b, sel in enumerate(bands)]
    _check_partition(cols, n_features)
    return cols


def _columns_from_sizes(sizes: np.ndarray, n_features: int) -> list[np.ndarray]:
    bad = np.flatnonzero(sizes <= 0)
    if bad.size:
        raise ValueError(f"bands[{bad[0]}] = {sizes[bad[0]]}: every band needs at least one feature")
    if sizes.sum() != n_features:
        raise ValueError(
            f"band sizes {sizes.tolist()} sum to {int(sizes.sum())} but X has {n_features} features; "
            "the sizes must add up to the number of columns"
        )
    return np.split(np.arange(n_features), np.cumsum(sizes)[:-1])


def _select_columns(selector, name: str, n_features: int) -> np.ndarray:
    """Sorted column indices picked by a slice, integer indices or a boolean mask; ``name`` labels errors."""
    all_cols = np.arange(n_features)
    if not isinstance(selector, slice):
        selector = np.asarray(selector)
        if selector.dtype == bool and selector.shape != (n_features,):
            raise ValueError(f"{name} is a boolean mask of shape {selector.shape}; expected ({n_features},)")
        if selector.dtype != bool and not np.issubdtype(selector.dtype, np.integer):
            raise ValueError(f"{name} must be a slice, integer indices or a boolean mask, got {selector!r}")
    try:
        cols = np.unique(all_cols[selector])
    except IndexError as err:
        raise ValueError(f"{name} selects columns outside X's {n_features} features: {err}") from None
    if cols.size == 0:
        raise ValueError(f"{name} selects no column of X ({n_features} features)")
    return cols


def _check_partition(cols: list[np.ndarray], n_features: int) -> None:
    counts = np.bincount(np.concatenate(cols), minlength=n_features)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(
            f"column {missing[0]} of X ({n_features} features) is in no band; bands must cover every column"
        )
    twice = np.flatnonzero(counts > 1)
    if twice.size:
        owners = [b for b, c in enumerate(cols) if twice[0] in c]
        raise ValueError(f"column {twice[0]} of X is in bands {owners}; each column belongs to exactly one band")


def _scaled_weights(res, targets: np.ndarray) -> np.ndarray:
    """Weights (n_scaled_features, len(targets)) float64 on a candidate's scaled design, from its
    :func:`~cortexscale.encoding._solvers.ridge_cv` result (primal weights or factored dual ones)."""
    B = res.extras["backend"]
    cols = B.asarray(targets, dtype="int64") if B.name == "torch" else targets
    if res.coef is not None:
        W = res.coef[:, cols]
    else:
        W = res.extras["design"].rmatmul(B, res.dual_coef.basis @ res.dual_coef.weights[:, cols])
    return B.to_numpy(W).astype(np.float64)


def _squeeze_target(a: np.ndarray, first: bool) -> np.ndarray:
    """Drop the target axis (the first for ``coef_``, else the last) after a 1-D ``y``."""
    return a[0] if first else a[..., 0]


class BandedRidgeCV(EncodingEstimator):
    """Ridge with one penalty per feature space, chosen per target by cross-validation.

    Parameters
    ----------
    bands : None, sequence of int, or sequence of column selectors
        The feature spaces. Integers are the sizes of consecutive column blocks
        and must sum to ``n_features``; selectors (slices, integer index arrays or
        boolean masks) must partition the columns (see :func:`delayed_band_columns`
        for delayed features). ``None`` makes one band (plain ridge).
    alphas : array (n_alphas,), default ``np.logspace(1, 4, 15)``
        Penalties of the rescaled problem, in the ``(X^T X + alpha I)`` convention.
    n_iter : int
        Number of band-ratio candidates: the simplex corners, its centre, then
        Dirichlet draws. Ignored when ``grid`` is given.
    concentration : float or sequence of float
        Dirichlet concentrations, cycled over the random draws (small values put
        mass near the corners and edges, 1 spreads it uniformly).
    grid : array (n_candidates, n_bands) or None
        Explicit band ratios to try (rows are normalised to sum to one).
    cv, scoring, fit_intercept, backend, dtype, select_precision
        As in :class:`~cortexscale.encoding.RidgeCV` (``dtype`` default "fp32",
        ``select_precision`` default "fp32"; spellings are kept as given and resolved in
        ``fit``). With "bf16" each candidate's alphas are screened in bf16 where a sample of
        targets predicts it pays; the choice between candidates uses the resulting scores.
    alpha_search : {"grid", "coarse_to_fine", "warm_start"}, default "grid"
        How each candidate's alphas are searched. "grid" scores every alpha (the choices equal
        himalaya's random search); "coarse_to_fine" every third alpha, then each target walks to its
        local optimum; "warm_start" searches the first candidate coarse to fine, then starts each
        target's walk at the alpha it chose for the nearest candidate already searched (L1 distance
        between ratios, at most :attr:`warm_distance`; a candidate farther from all of them is searched
        coarse to fine). On the banded benchmark "warm_start" scores about a third of the pairs and
        keeps the grid's choice for 99.75-99.85% of targets; the others stop at local optima of their CV curve.
    random_state : int, RandomState or None
        Seeds the Dirichlet draws.
    progress : bool
        Show a progress bar over the candidates.

    Attributes
    ----------
    After a 1-D ``y`` the target axis is dropped from every per-target attribute.

    coef_ : (n_targets, n_features) weights on the unscaled features.
    intercept_ : (n_targets,)
    alpha_ : (n_targets,) chosen penalty of the rescaled problem.
    band_ratios_ : (n_bands, n_targets) chosen ratios ``gamma`` (columns sum to one).
    band_alphas_ : (n_bands, n_targets) effective penalty of each band, ``alpha_ / gamma``;
        ``inf`` for a band a target does not use.
    deltas_ : (n_bands, n_targets) log band weights ``log(gamma / alpha_)`` as in
        himalaya's ``MultipleKernelRidgeCV`` (``-inf`` for an unused band).
    candidates_ : (n_candidates, n_bands) the ratios tried.
    cv_scores_ : (n_candidates, n_targets) best mean validation score over alphas per candidate.
    best_score_ : (n_targets,) mean validation score of the chosen pair (NaN for constant targets).
    bands_ : list of n_bands integer column arrays.
    n_saturated_ : tuple (at smallest alpha, at largest alpha), counts of targets.
    n_scored_ : int, the (alpha, target) cross-validation scores computed over all candidates.
    n_features_in_ : int

    Notes
    -----
    Band ``b`` of a target is penalised by ``band_alphas_[b] = alpha_ / gamma_b``, so
    with ratios summing to one every band's penalty is at least ``alpha_`` (the uniform
    ratio gives each of B bands ``B * alpha_``). With the same ratios, folds and
    ``scoring="neg_mse"``, ``fit_intercept=False``, the choices and ``deltas_`` equal
    himalaya's random search. Ties between candidates go to the earlier one. A
    UserWarning counts targets at either end of the alpha grid, and another one fires
    when most targets use a single band.
    """

    corner_warning_fraction = 0.5
    warm_distance = 0.5
    """The farthest (L1, between ratios) an earlier candidate may be for "warm_start" to start from its
    choices: starting the corner of a smooth band from another corner's alphas left 1% of the targets of
    the three-band benchmark at a local optimum (a test r off by up to 0.38)."""

    def __init__(
        self,
        bands=None,
        *,
        alphas=None,
        n_iter=20,
        concentration=(0.1, 1.0),
        grid=None,
        cv=5,
        scoring="correlation",
        fit_intercept=True,
        backend="auto",
        dtype="fp32",
        select_precision="fp32",
        alpha_search="grid",
        random_state=None,
        progress=True,
    ):
        self.bands = bands
        self.alphas = alphas
        self.n_iter = n_iter
        self.concentration = concentration
        self.grid = grid
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.backend = backend
        self.dtype = dtype
        self.select_precision = select_precision
        self.alpha_search = alpha_search
        self.random_state = random_state
        self.progress = progress

    def fit(self, X, y, groups=None, run_lengths=None):
        """Search band ratios and alphas per target, then refit every target on all samples.

        X: (n_samples, n_features); y: (n_samples,) or (n_samples, n_targets);
        groups: (n_samples,) run labels, or run_lengths: (n_runs,), for ``cv="runs"`` or group splitters.
        """
        alphas, scoring, dtype, select = self._alphas(), self._scoring(), self._dtype(), self._select_precision()
        if self.alpha_search not in ALPHA_SEARCHES:
            raise ValueError(f"alpha_search must be one of {list(ALPHA_SEARCHES)}, got {self.alpha_search!r}")
        X, Y, y_1d = self._validate_fit_data(X, y)
        self.bands_ = _band_columns(self.bands, X.shape[1])
        n_bands = len(self.bands_)
        if self.grid is None:
            self.candidates_ = band_ratio_candidates(n_bands, self.n_iter, self.concentration, self.random_state)
        else:
            self.candidates_ = _check_grid(self.grid, n_bands)
        _, splits = self._splits(X.shape[0], groups, run_lengths)
        const = constant_columns(Y, "y")
        x_mean, y_mean = self._means(X, Y)
        Xc, Yc = X - x_mean, Y - y_mean
        backend = get_backend(self.backend, dtype)
        cand, alpha_idx, coef = self._search(Xc, Yc, alphas, splits, backend, const, scoring, select)
        self._set_results(coef, x_mean, y_mean, alphas, cand, alpha_idx, y_1d=y_1d)
        self._warn_saturation(alpha_idx, const, alphas)
        self._warn_single_band(cand, const)
        return self

    def _means(self, X, Y):
        if not self.fit_intercept:
            return np.zeros(X.shape[1]), np.zeros(Y.shape[1])
        return X.mean(0), Y.mean(0)

    def _scaled(self, Xc: np.ndarray, gamma: np.ndarray):
        """Columns of the bands with non-zero ratio, each scaled by sqrt(ratio): (cols, scale, design)."""
        used = [b for b in range(len(gamma)) if gamma[b] > 0]
        cols = np.concatenate([self.bands_[b] for b in used])
        scale = np.concatenate([np.full(self.bands_[b].size, np.sqrt(gamma[b])) for b in used])
        return cols, scale, np.asarray(Xc[:, cols] * scale, dtype=self._dtype())

    def _search(self, Xc, Yc, alphas, splits, backend, const, scoring, select_precision):
        """Per target, the best candidate and alpha index, two (n_targets,) int arrays, and the weights of
        that pair on the unscaled features, (n_features, n_targets).

        Each candidate's cross-validation also refits every target at its best alpha from the same
        decomposition; a target keeps the weights of the candidate that wins it, so no candidate is
        decomposed twice. Constant targets (``const``, (n_targets,) bool) score NaN, keep the first pair
        and zero weights.
        """
        n_targets = Yc.shape[1]
        best = np.full(n_targets, -np.inf)
        cand = np.zeros(n_targets, dtype=np.intp)
        alpha_idx = np.zeros(n_targets, dtype=np.intp)
        coef = np.zeros((Xc.shape[1], n_targets))
        self.cv_scores_ = np.full((len(self.candidates_), n_targets), np.nan)
        Ys = np.asarray(Yc, dtype=backend.dtype_name)
        tops = np.zeros((len(self.candidates_), n_targets), dtype=np.intp)
        self.n_scored_ = 0
        for c, gamma in enumerate(tqdm(self.candidates_, disable=not self.progress, desc="banded ridge")):
            cols, scale, Xs = self._scaled(Xc, gamma)
            search, start = self._search_plan(c, tops)
            res = ridge_cv(Xs, Ys, alphas, splits, scoring=scoring, backend=backend, fit_intercept=False,
                           select_precision=select_precision, alpha_search=search, alpha_start=start)
            self.n_scored_ += res.n_evaluated
            filled = np.where(np.isnan(res.cv_scores) | const, -np.inf, res.cv_scores)
            top = tops[c] = filled.argmax(0)
            top_score = filled[top, np.arange(n_targets)]
            self.cv_scores_[c] = np.where(np.isfinite(top_score), top_score, np.nan)
            better = np.flatnonzero(top_score > best)
            best[better], cand[better], alpha_idx[better] = top_score[better], c, top[better]
            if better.size:
                coef[:, better] = 0.0
                coef[np.ix_(cols, better)] = scale[:, None] * _scaled_weights(res, better)
        self.best_score_ = np.where(np.isfinite(best), best, np.nan)
        return cand, alpha_idx, coef

    def _search_plan(self, c: int, tops: np.ndarray):
        """The alpha search of candidate ``c`` for :func:`ridge_cv`: (alpha_search, alpha_start or None).

        With "warm_start", each target starts at the alpha it chose for the nearest earlier candidate (L1
        distance between ratios), tops (n_candidates, n_targets) holding the choices so far; a candidate
        farther than :attr:`warm_distance` from every earlier one is searched coarse to fine.
        """
        if self.alpha_search != "warm_start":
            return self.alpha_search, None
        if c == 0:
            return "coarse_to_fine", None
        distance = np.abs(self.candidates_[:c] - self.candidates_[c]).sum(1)
        nearest = distance.argmin()
        return "coarse_to_fine", tops[nearest] if distance[nearest] <= self.warm_distance else None

    def _set_results(self, coef, x_mean, y_mean, alphas, cand, alpha_idx, y_1d: bool):
        gamma = self.candidates_[cand].T
        alpha = alphas[alpha_idx]
        with np.errstate(divide="ignore"):
            band_alphas = alpha[None, :] / gamma
            deltas = np.log(gamma) - np.log(alpha)[None, :]
        per_target = {
            "alpha_": alpha, "band_ratios_": gamma, "band_alphas_": band_alphas, "deltas_": deltas,
            "best_score_": self.best_score_, "cv_scores_": self.cv_scores_,
            "coef_": coef.T, "intercept_": y_mean - x_mean @ coef,
        }  # fmt: skip
        for name, value in per_target.items():
            setattr(self, name, _squeeze_target(value, name == "coef_") if y_1d else value)
        if y_1d:
            self.alpha_, self.best_score_, self.intercept_ = (
                float(self.alpha_), float(self.best_score_), float(self.intercept_)
            )

    def _warn_single_band(self, cand, const):
        ok = ~const
        n_bands = len(self.bands_)
        corner = ok & (self.candidates_[cand].max(1) == 1.0)
        if n_bands > 1 and corner.sum() > self.corner_warning_fraction * max(ok.sum(), 1):
            per_band = np.bincount(self.candidates_[cand[corner]].argmax(1), minlength=n_bands)
            warnings.warn(
                f"{int(corner.sum())} of {ok.sum()} targets use a single band (per band: {per_band.tolist()}); "
                "the other bands add nothing for them, or the ratio search is too coarse (raise n_iter)",
                UserWarning,
                stacklevel=3,
            )

    def predict(self, X):
        """Predictions (n_samples, n_targets), or (n_samples,) after a 1-D ``y``."""
        X = self._validate_predict_data(X)
        return X @ self.coef_.T + self.intercept_

    def predict_per_band(self, X):
        """Each band's contribution (n_bands, n_samples, n_targets), or (n_bands, n_samples) after a 1-D ``y``.

        The intercept is not included: ``predict(X) == predict_per_band(X).sum(0) + intercept_``.
        """
        X = self._validate_predict_data(X)
        return np.stack([X[:, cols] @ self.coef_.T[cols] for cols in self.bands_])

    def _validate_predict_data(self, X):
        check_is_fitted(self)
        return super()._validate_predict_data(X)
