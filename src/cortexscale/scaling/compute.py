"""Training compute as a function of model size and data: ``C = m·(N·D)^n``, fitted to measured FLOPs.

``C = 6·N·D`` (m = 6, n = 1) counts only the matrix products of a transformer's forward and backward pass
over D tokens. Measured training FLOPs add attention, embeddings and the patches or tokens per frame that turn
"frames" or "images" into tokens, so a study fits ``log C = log m + n·log(N·D)`` by least squares over its
trained models instead (:func:`fit_compute_law`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._tables import check_columns, positive_column

__all__ = ["ComputeLaw", "fit_compute_law"]


@dataclass(frozen=True)
class ComputeLaw:
    """``C = m·(N·D)^n``; ``source`` names the FLOPs column it was fitted to (None: the 6·N·D rule)."""

    m: float = 6.0
    n: float = 1.0
    source: str | None = None

    def __call__(self, params, data) -> np.ndarray:
        """FLOPs of training ``params`` parameters on ``data`` (arrays broadcast together)."""
        return self.m * (np.asarray(params, dtype=float) * np.asarray(data, dtype=float)) ** self.n

    def product(self, compute) -> np.ndarray:
        """``N·D = (C/m)^(1/n)``: the parameter-data product a budget of ``compute`` FLOPs buys."""
        return (np.asarray(compute, dtype=float) / self.m) ** (1.0 / self.n)

    def __str__(self) -> str:
        origin = f"fitted to {self.source!r}" if self.source else "assumed"
        return f"C = {self.m:.4g}·(N·D)^{self.n:.4g} ({origin})"


def fit_compute_law(table: pd.DataFrame, *, params: str, data: str, compute: str) -> ComputeLaw:
    """Least-squares fit of ``log C = log m + n·log(N·D)`` over the distinct (N, D, C) rows of ``table``.

    Needs at least three distinct (N·D, C) pairs spanning more than one value of N·D.
    """
    check_columns(table, {"params": params, "data": data, "compute": compute})
    rows = pd.DataFrame({"nd": positive_column(table, params) * positive_column(table, data),
                         "c": positive_column(table, compute)}).drop_duplicates()
    if len(rows) < 3 or rows["nd"].nunique() < 2:
        raise ValueError(f"fitting C = m·(N·D)^n to {compute!r} needs at least 3 distinct models over more than "
                         f"one N·D; got {len(rows)} distinct (N·D, C) pairs and {rows['nd'].nunique()} N·D values")
    n, log_m = np.polyfit(np.log(rows["nd"].to_numpy()), np.log(rows["c"].to_numpy()), 1)
    return ComputeLaw(float(np.exp(log_m)), float(n), compute)
