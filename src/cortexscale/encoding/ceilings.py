"""Noise ceilings: how well a perfect model of the stimulus-driven signal could score.

Two kinds of data give a ceiling.

*Repeats* of one stimulus in one subject, ``repeats`` of shape
(n_repeats, n_samples, n_targets), use the signal-power estimate of Sahani &
Linden (2003) as analysed by Schoppe et al. (2016, Front. Comput. Neurosci.
10:10). With N repeats r_n and their mean y (every variance over time, one
ddof throughout)::

    SP     = (Var(sum_n r_n) - sum_n Var(r_n)) / (N (N - 1))   signal power
    TP     = mean_n Var(r_n)                                   total power
    NP     = TP - SP                                           noise power
    cc_max = sqrt(SP / Var(y))                                 ceiling of r(prediction, y)
    cc_norm(yhat)  = r(yhat, y) / cc_max
    SPE(yhat)      = (Var(y) - Var(y - yhat)) / SP             signal power explained

``SP / Var(y)`` is the reliability of the N-repeat mean (signal variance over
the variance of the mean), so ``cc_max`` is its square root.

*Other subjects*, ``subjects`` of shape (n_subjects, n_samples, n_targets)
listening to the same stimulus, stand in for repeats when there are none:
:func:`leave_one_out_ceiling` correlates each subject with the mean of the
others (a ceiling for single-subject models) and :func:`split_half_ceiling`
gives the Spearman-Brown corrected split-half reliability of the group average.

:func:`noise_ceiling` dispatches between the three and returns a frozen
:class:`NoiseCeiling`, whose ``ceiling`` is the largest Pearson r a noiseless
model can reach against the data it is scored on (the square root of the
reliability for repeats and split halves). A model's r normalised by it,
:func:`normalised_correlation`, is ``r / ceiling``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np

from ._validation import check_finite
from .metrics import _pearson, _to_numpy, _warn_undefined

__all__ = [
    "NoiseCeiling",
    "normalised_correlation",
    "signal_power",
    "noise_power",
    "cc_max",
    "cc_norm",
    "signal_power_explained",
    "leave_one_out_ceiling",
    "split_half_ceiling",
    "drop_empty_subjects",
    "noise_ceiling",
]

_DDOF = 1
_METHODS = ("repeats", "split_half", "leave_one_out")
_LAYOUT = {
    "repeats": "(n_repeats, n_samples, n_targets)",
    "subjects": "(n_subjects, n_samples, n_targets)",
}


def _check_stack(data, name: str) -> np.ndarray:
    """Validate a 3-D stack of responses; returns float64 (n_stack, n_samples, n_targets)."""
    data = _to_numpy(data)
    layout = _LAYOUT[name]
    if data.ndim != 3:
        raise ValueError(f"{name} must be 3-D {layout}, got shape {data.shape} ({data.ndim}-D)")
    if data.shape[0] < 2:
        raise ValueError(f"{name} of shape {data.shape} holds {data.shape[0]} along axis 0; at least 2 are needed")
    if data.shape[1] < 2:
        raise ValueError(f"{name} of shape {data.shape} holds {data.shape[1]} sample(s); at least 2 are needed")
    if data.shape[2] == 0:
        raise ValueError(f"{name} of shape {data.shape} has no targets")
    check_finite(data, name)
    return data.astype(np.float64, copy=False)


def _check_prediction(y_pred, repeats: np.ndarray) -> np.ndarray:
    """Validate ``y_pred`` (n_samples, n_targets) against ``repeats`` (n_repeats, n_samples, n_targets)."""
    y_pred = _to_numpy(y_pred)
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_pred.shape != repeats.shape[1:]:
        raise ValueError(
            f"y_pred has shape {y_pred.shape} but repeats has shape {repeats.shape}; "
            f"y_pred must be (n_samples, n_targets) = {repeats.shape[1:]}"
        )
    check_finite(y_pred, "y_pred")
    return y_pred.astype(np.float64, copy=False)


def _empty_subjects(stack: np.ndarray) -> np.ndarray:
    """Boolean (n_stack,): entries whose every target is constant over time (e.g. all zeros)."""
    return (np.ptp(stack, axis=1) == 0).all(axis=1)


def _reject_empty(stack: np.ndarray, name: str) -> None:
    empty = np.flatnonzero(_empty_subjects(stack))
    if empty.size:
        raise ValueError(
            f"{name} of shape {stack.shape}: entries {empty.tolist()} along axis 0 are constant over time "
            "in every target (empty recordings); remove them with drop_empty_subjects()"
        )


# --------------------------------------------------------------------------- repeats


def _powers(repeats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (unfloored) signal power, total power and variance of the mean, each (n_targets,)."""
    n = repeats.shape[0]
    var_of_sum = repeats.sum(axis=0).var(axis=0, ddof=_DDOF)
    sum_of_var = repeats.var(axis=1, ddof=_DDOF).sum(axis=0)
    sp = (var_of_sum - sum_of_var) / (n * (n - 1))
    return sp, sum_of_var / n, var_of_sum / n**2


def signal_power(repeats) -> np.ndarray:
    """Signal power per target, floored at 0 (Sahani & Linden 2003).

    Parameters
    ----------
    repeats : array of shape (n_repeats, n_samples, n_targets), n_repeats >= 2

    Returns
    -------
    sp : ndarray of shape (n_targets,)
        Estimate of the variance over time of the stimulus-driven response.
        The raw estimate is unbiased and can be negative for noisy targets;
        those are set to 0 (:func:`noise_ceiling` reports how many).
    """
    sp, _, _ = _powers(_check_stack(repeats, "repeats"))
    return np.maximum(sp, 0.0)


def noise_power(repeats) -> np.ndarray:
    """Noise power per target: mean variance of one repeat minus the (floored) signal power.

    Parameters
    ----------
    repeats : array of shape (n_repeats, n_samples, n_targets)

    Returns
    -------
    np_ : ndarray of shape (n_targets,)
    """
    sp, tp, _ = _powers(_check_stack(repeats, "repeats"))
    return tp - np.maximum(sp, 0.0)


def _cc_max(sp: np.ndarray, var_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cc_max (n_targets,) from raw signal power, and the mask of constant targets (NaN)."""
    constant = var_mean <= 0
    ratio = np.divide(np.maximum(sp, 0.0), var_mean, out=np.full(sp.shape, np.nan), where=~constant)
    return np.sqrt(np.clip(ratio, 0.0, 1.0)), constant


def cc_max(repeats) -> np.ndarray:
    """Largest Pearson r any prediction can reach against the mean of the repeats.

    Parameters
    ----------
    repeats : array of shape (n_repeats, n_samples, n_targets)

    Returns
    -------
    cc_max : ndarray of shape (n_targets,)
        ``sqrt(SP / Var(mean response))`` clipped to [0, 1]; 0 where the signal
        power was floored, NaN (with a warning) where the mean is constant.
    """
    sp, _, var_mean = _powers(_check_stack(repeats, "repeats"))
    ceiling, constant = _cc_max(sp, var_mean)
    _warn_undefined(constant, "a constant mean response, so no ceiling")
    return ceiling


def _normalised_scores(y_pred: np.ndarray, repeats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cc_norm, spe), each (n_targets,), of a validated prediction."""
    sp, _, var_mean = _powers(repeats)
    ceiling, _ = _cc_max(sp, var_mean)
    mean = repeats.mean(axis=0)
    r, undefined = _pearson(y_pred, mean)
    _warn_undefined(undefined, "a constant prediction or mean response, so no correlation")
    norm = normalised_correlation(r, ceiling)
    sp = np.maximum(sp, 0.0)
    explained = var_mean - (mean - y_pred).var(axis=0, ddof=_DDOF)
    spe = np.divide(explained, sp, out=np.full(sp.shape, np.nan), where=sp > 0)
    return norm, spe


def cc_norm(y_pred, repeats) -> np.ndarray:
    """Normalised correlation ``r(y_pred, mean of repeats) / cc_max`` (Schoppe et al. 2016).

    Parameters
    ----------
    y_pred : array of shape (n_samples, n_targets), or (n_samples,) for one target
    repeats : array of shape (n_repeats, n_samples, n_targets)

    Returns
    -------
    cc_norm : ndarray of shape (n_targets,)
        About 1 for a prediction equal to the true signal; NaN where
        ``cc_max == 0`` (no measurable signal) or the correlation is undefined.
    """
    repeats = _check_stack(repeats, "repeats")
    return _normalised_scores(_check_prediction(y_pred, repeats), repeats)[0]


def signal_power_explained(y_pred, repeats) -> np.ndarray:
    """Signal power explained ``(Var(y) - Var(y - y_pred)) / SP`` (Sahani & Linden 2003).

    Parameters
    ----------
    y_pred : array of shape (n_samples, n_targets), or (n_samples,) for one target
    repeats : array of shape (n_repeats, n_samples, n_targets)

    Returns
    -------
    spe : ndarray of shape (n_targets,)
        1 for a prediction equal to the true signal; unbounded below (Schoppe
        et al. 2016 explain why cc_norm is the better-behaved score). NaN
        where the signal power is floored at 0.
    """
    repeats = _check_stack(repeats, "repeats")
    return _normalised_scores(_check_prediction(y_pred, repeats), repeats)[1]


# --------------------------------------------------------------------------- subjects


def drop_empty_subjects(subjects) -> tuple[np.ndarray, np.ndarray]:
    """Remove subjects whose every target is constant over time (e.g. an all-zero file).

    Parameters
    ----------
    subjects : array of shape (n_subjects, n_samples, n_targets)

    Returns
    -------
    kept : ndarray of shape (n_kept, n_samples, n_targets)
    kept_index : int ndarray of shape (n_kept,)
        Positions of the kept subjects in the input. A UserWarning names the
        dropped positions.
    """
    subjects = _to_numpy(subjects)
    if subjects.ndim != 3:
        raise ValueError(f"subjects must be 3-D {_LAYOUT['subjects']}, got shape {subjects.shape}")
    check_finite(subjects, "subjects")
    empty = _empty_subjects(subjects)
    if empty.any():
        warnings.warn(
            f"dropped {int(empty.sum())} of {subjects.shape[0]} subjects that are constant over time in "
            f"every target (indices {np.flatnonzero(empty).tolist()})",
            UserWarning,
            stacklevel=2,
        )
    kept_index = np.flatnonzero(~empty)
    return subjects[kept_index], kept_index


def leave_one_out_ceiling(subjects) -> np.ndarray:
    """Each subject's Pearson r with the mean of all the other subjects.

    A ceiling for models fitted to one subject: the shared, stimulus-driven
    part of the response is what another subject's model can reach. Under
    r_i = s + e_i with noise variance s_n^2 and signal variance s_s^2 it
    estimates ``s_s^2 / sqrt((s_s^2 + s_n^2) (s_s^2 + s_n^2 / (n - 1)))``.

    Parameters
    ----------
    subjects : array of shape (n_subjects, n_samples, n_targets), n_subjects >= 2

    Returns
    -------
    r : ndarray of shape (n_subjects, n_targets)
        NaN (with one warning) where a subject's target is constant.
    """
    subjects = _check_stack(subjects, "subjects")
    _reject_empty(subjects, "subjects")
    n = subjects.shape[0]
    total = subjects.sum(axis=0)
    out = np.empty(subjects.shape[::2])
    undefined = np.zeros(out.shape, dtype=bool)
    for i in range(n):
        out[i], undefined[i] = _pearson(subjects[i], (total - subjects[i]) / (n - 1))
    _warn_undefined(undefined.any(axis=0), "a subject with a constant time course; that subject's r is NaN")
    return out


def _fisher_mean(r: np.ndarray) -> np.ndarray:
    """Average correlations (n_splits, n_targets) in Fisher z space; returns (n_targets,)."""
    z = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.tanh(np.nanmean(z, axis=0))


def _spearman_brown(r: np.ndarray) -> np.ndarray:
    """Reliability of a doubled test, ``2 r / (1 + r)``; NaN (and r = -1) give NaN."""
    return np.divide(2.0 * r, 1.0 + r, out=np.full(r.shape, np.nan), where=r > -1)


def _split_half_r(subjects: np.ndarray, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """Correlation of the two half-group means for ``n_splits`` random splits, (n_splits, n_targets)."""
    n = subjects.shape[0]
    half = n // 2
    total = subjects.sum(axis=0)
    r = np.empty((n_splits, subjects.shape[2]))
    for k in range(n_splits):
        first = rng.permutation(n)[:half]
        first_sum = subjects[first].sum(axis=0)
        r[k], _ = _pearson(first_sum / half, (total - first_sum) / (n - half))
    return r


def split_half_ceiling(subjects, n_splits=100, random_state=0) -> np.ndarray:
    """Spearman-Brown corrected split-half reliability of the group-average response.

    For each of ``n_splits`` random splits the subjects are divided into halves
    of ``floor(n/2)`` and ``ceil(n/2)``, the two half-group means are
    correlated, the correlations are averaged in Fisher z space and the
    average is corrected to the full group with ``2 r / (1 + r)``. For an odd
    number of subjects the halves differ by one and the correction is then a
    close approximation (the exact half-correlation is of unequal halves).

    Under r_i = s + e_i this estimates the reliability of the n-subject mean,
    ``s_s^2 / (s_s^2 + s_n^2 / n)``: the correlation between two independent
    group averages. The best Pearson r a model can reach against the measured
    group average is its square root, which is what :func:`noise_ceiling`
    reports as ``ceiling`` (keeping this value as ``reliability``).

    Parameters
    ----------
    subjects : array of shape (n_subjects, n_samples, n_targets), n_subjects >= 2
    n_splits : int
        With few subjects many splits repeat; that only wastes time.
    random_state : int, numpy Generator or None, default 0
        Seeds the random splits; the default makes repeated calls give identical
        results, None draws fresh splits each call.

    Returns
    -------
    reliability : ndarray of shape (n_targets,)
        Can be negative for targets without shared signal; NaN (with a
        warning) where a half-group mean is constant in every split.
    """
    subjects = _check_stack(subjects, "subjects")
    _reject_empty(subjects, "subjects")
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits!r}")
    r = _fisher_mean(_split_half_r(subjects, n_splits, np.random.default_rng(random_state)))
    _warn_undefined(np.isnan(r), "a constant half-group mean in every split, so no reliability")
    return _spearman_brown(r)


def normalised_correlation(r, ceiling) -> np.ndarray:
    """Ceiling-normalised correlation ``r / ceiling``.

    Parameters
    ----------
    r : array-like
        Pearson r of a model's predictions with the data, e.g. (n_targets,).
    ceiling : array-like
        :attr:`NoiseCeiling.ceiling` of the same data, broadcastable against ``r``: the
        largest r a noiseless model can reach, i.e. the square root of the reliability.
        Dividing by the reliability itself would overstate the normalised score.

    Returns
    -------
    ndarray of the broadcast shape of ``r`` and ``ceiling``
        1 for a model as good as the noise allows; NaN where ``ceiling`` is not
        positive (no measurable signal) or either input is NaN.
    """
    r = np.asarray(_to_numpy(r), dtype=np.float64)
    ceiling = np.asarray(_to_numpy(ceiling), dtype=np.float64)
    try:
        shape = np.broadcast_shapes(r.shape, ceiling.shape)
    except ValueError:
        raise ValueError(f"r of shape {r.shape} and ceiling of shape {ceiling.shape} do not broadcast") from None
    r, ceiling = np.broadcast_to(r, shape), np.broadcast_to(ceiling, shape)
    return np.divide(r, ceiling, out=np.full(shape, np.nan), where=ceiling > 0)


# --------------------------------------------------------------------------- dispatcher


@dataclass(frozen=True, eq=False)
class NoiseCeiling:
    """Result of :func:`noise_ceiling`; arrays are read-only.

    ``ceiling`` is the largest Pearson r a noiseless model (one that predicts the
    stimulus-driven signal exactly) can reach against the data it is scored on;
    ``reliability`` is the reliability of those data, and for "repeats" and
    "split_half" ``ceiling = sqrt(reliability)`` (0 where the reliability estimate is
    negative). The ceiling-normalised score of a model with correlation ``r`` is
    ``r / ceiling`` (:func:`normalised_correlation`), not ``r / reliability``.

    Attributes
    ----------
    ceiling : ndarray of shape (n_targets,), or (n_subjects, n_targets) for "leave_one_out"
        "repeats": cc_max against the mean of the repeats; "split_half": against the
        group-average response; "leave_one_out": each subject's r with the mean of the
        others, the ceiling of a model of one subject's data.
    method : str
    reliability : ndarray (n_targets,) or None
        "repeats": ``SP / Var(mean)``, the reliability of the mean of the repeats;
        "split_half": the Spearman-Brown corrected split-half reliability of the group
        average; None for "leave_one_out".
    n_floored : int
        Targets whose signal power ("repeats") or reliability ("split_half")
        estimate was negative and whose ceiling was set to 0.
    signal_power, noise_power : ndarray (n_targets,) or None
        "repeats" only.
    cc_norm, spe : ndarray (n_targets,) or None
        "repeats" with ``y_pred`` given only.
    kept_index : int ndarray or None
        Subject methods with ``drop_empty=True``: the subjects that were used.
    """

    ceiling: np.ndarray
    method: str
    reliability: np.ndarray | None = None
    n_floored: int = 0
    signal_power: np.ndarray | None = None
    noise_power: np.ndarray | None = None
    cc_norm: np.ndarray | None = None
    spe: np.ndarray | None = None
    kept_index: np.ndarray | None = None

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value.setflags(write=False)


def _repeats_result(data, y_pred=None) -> NoiseCeiling:
    repeats = _check_stack(data, "repeats")
    prediction = None if y_pred is None else _check_prediction(y_pred, repeats)
    sp, tp, var_mean = _powers(repeats)
    ceiling, constant = _cc_max(sp, var_mean)
    _warn_undefined(constant, "a constant mean response, so no ceiling")
    extras = {}
    if prediction is not None:
        extras["cc_norm"], extras["spe"] = _normalised_scores(prediction, repeats)
    floored = np.maximum(sp, 0.0)
    return NoiseCeiling(
        ceiling=ceiling,
        method="repeats",
        reliability=ceiling**2,
        n_floored=int((sp < 0).sum()),
        signal_power=floored,
        noise_power=tp - floored,
        **extras,
    )


def _subject_input(data, drop_empty: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if not drop_empty:
        return data, None
    kept, kept_index = drop_empty_subjects(data)
    return kept, kept_index


def _split_half_result(data, n_splits=100, random_state=0, drop_empty=False) -> NoiseCeiling:
    subjects, kept_index = _subject_input(data, drop_empty)
    reliability = split_half_ceiling(subjects, n_splits=n_splits, random_state=random_state)
    ceiling = np.sqrt(np.maximum(reliability, 0.0))
    return NoiseCeiling(
        ceiling=ceiling,
        method="split_half",
        reliability=reliability,
        n_floored=int((reliability < 0).sum()),
        kept_index=kept_index,
    )


def _leave_one_out_result(data, drop_empty=False) -> NoiseCeiling:
    subjects, kept_index = _subject_input(data, drop_empty)
    return NoiseCeiling(ceiling=leave_one_out_ceiling(subjects), method="leave_one_out", kept_index=kept_index)


_DISPATCH = {
    "repeats": (_repeats_result, ("y_pred",)),
    "split_half": (_split_half_result, ("n_splits", "random_state", "drop_empty")),
    "leave_one_out": (_leave_one_out_result, ("drop_empty",)),
}


def noise_ceiling(data, method="auto", **kwargs) -> NoiseCeiling:
    """Noise ceiling of a stack of responses to one stimulus.

    Parameters
    ----------
    data : array of shape (n_repeats, n_samples, n_targets) or (n_subjects, n_samples, n_targets)
    method : {"repeats", "split_half", "leave_one_out"}
        "repeats": repeated presentations to one subject (Schoppe et al.
        2016 cc_max); keyword ``y_pred`` (n_samples, n_targets) adds
        ``cc_norm`` and ``spe``. "split_half": different subjects, ceiling
        for a model of the group average; keywords ``n_splits``,
        ``random_state``. "leave_one_out": different subjects, ceiling for
        single-subject models. Both subject methods take ``drop_empty``
        (default False: an all-constant subject raises; True: it is dropped
        with a warning and ``kept_index`` records the rest).
        "auto" (the default) never guesses: a 3-D array looks the same
        whether axis 0 holds repeats or subjects, and the two call for
        different ceilings, so "auto" raises and asks for a method.

    Returns
    -------
    NoiseCeiling
        ``ceiling``: the largest Pearson r a noiseless model can reach against the data
        it is scored on (the square root of ``reliability`` for "repeats" and
        "split_half"); ``reliability``: the reliability of those data. Normalise a
        model's r as ``r / ceiling`` with :func:`normalised_correlation`.
        "split_half" uses ``random_state=0`` unless told otherwise, so repeated calls agree.
    """
    if method == "auto":
        raise ValueError(
            f"method='auto' cannot tell from data of shape {np.shape(data)} whether axis 0 holds repeats of one "
            f"subject or different subjects; pass method= one of {_METHODS}"
        )
    if method not in _DISPATCH:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    func, accepted = _DISPATCH[method]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"method={method!r} accepts keywords {list(accepted)}, got unknown {unknown}")
    return func(data, **kwargs)
