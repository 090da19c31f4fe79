"""Synthetic results tables drawn from a known joint law, for tests, benchmarks and trying the fits out."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["make_scaling_table"]


def make_scaling_table(
    params=(1e5, 1e6, 1e7, 1e8, 1e9),
    data=(1e4, 1e5, 1e6, 1e7, 1e8),
    *,
    E: float = 0.6,
    A: float = 6.3,
    alpha: float = 0.3,
    B: float = 15.0,
    beta: float = 0.5,
    fmri=None,
    C: float = 3.0,
    gamma: float = 0.5,
    subjects: int = 4,
    targets: int = 50,
    noise: float = 0.05,
    subject_sd: float = 0.005,
    target_sd: float = 0.02,
    flops: tuple[float, float] = (6.0, 1.0),
    seed: int = 0,
) -> pd.DataFrame:
    """Per-target rows of a study whose mean score follows ``1 − s = E + A·N^−α + B·D^−β``, and
    ``+ C·M^−γ`` over fMRI training amounts ``fmri`` (TRs) when given.

    Every (N, D) of the grid ``params × data`` is one model, trained with ``m·(N·D)^n`` FLOPs
    (``flops=(m, n)``), and fitted at each M of ``fmri``. Row ``r = s(N, D) + u_subject + v_(subject, target) + ε`` with
    ``u ~ N(0, subject_sd²)``, ``v ~ N(0, target_sd²)`` fixed across models (targets are paired), and
    ``ε ~ N(0, noise²)`` per row.

    Returns a DataFrame of ``len(params)·len(data)·len(fmri)·subjects·targets`` rows with columns
    ``subject, target, model, params, train_data, train_flops, r``, and ``n_train_trs`` with ``fmri``.
    """
    rng = np.random.default_rng(seed)
    axes = [np.asarray(params, float), np.asarray(data, float)] + ([] if fmri is None else [np.asarray(fmri, float)])
    grid = [a.ravel() for a in np.meshgrid(*axes, indexing="ij")]
    N, D = grid[0], grid[1]
    misalignment = E + A * N**-alpha + B * D**-beta
    if fmri is not None:
        misalignment = misalignment + C * grid[2] ** -gamma
    truth = 1.0 - misalignment
    subject_offset = rng.normal(0.0, subject_sd, subjects)
    target_offset = rng.normal(0.0, target_sd, (subjects, targets))
    shape = (len(N), subjects, targets)
    r = truth[:, None, None] + subject_offset[None, :, None] + target_offset[None] + rng.normal(0.0, noise, shape)
    model = pd.factorize(pd.MultiIndex.from_arrays([N, D]))[0]
    table = pd.DataFrame({
        "subject": np.broadcast_to(np.arange(subjects)[None, :, None], shape).ravel(),
        "target": np.broadcast_to(np.arange(targets)[None, None, :], shape).ravel(),
        "model": np.broadcast_to(model[:, None, None], shape).ravel(),
        "params": np.broadcast_to(N[:, None, None], shape).ravel(),
        "train_data": np.broadcast_to(D[:, None, None], shape).ravel(),
        "train_flops": np.broadcast_to((flops[0] * (N * D) ** flops[1])[:, None, None], shape).ravel(),
        "r": r.ravel(),
    })
    if fmri is not None:
        table.insert(6, "n_train_trs", np.broadcast_to(grid[2][:, None, None], shape).ravel())
    return table
