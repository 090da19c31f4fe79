"""``method: stacked``: stacked regression (Lin et al. 2024, as Antonello et al. joined semantic and acoustic
features): each space's own ridge, combined per target with weights on the simplex fitted to their held-out
predictions (:class:`cortexscale.encoding.StackedRegression`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from ..fields import Spec
from .base import FLOAT, Design, EncodingSpec, FitKind, FitOutput, FitShape, register_fit, ridge_memory, ridge_model

__all__ = ["StackedOptions", "StackedSpec"]


class StackedOptions(Spec):
    """``cv``: the splits whose held-out predictions fit the weights (an int: contiguous folds; "runs");
    ``solver``: the simplex least squares (see :func:`cortexscale.encoding.simplex_least_squares`)."""

    cv: Annotated[int, Field(ge=2)] | Literal["runs"] = 5
    solver: Literal["auto", "enumerate", "projected_gradient"] = "auto"


class StackedSpec(EncodingSpec):
    """An encoding entry of method stacked: at least two spaces, each fitted with its own ridge."""

    method: Literal["stacked"]
    stacked: StackedOptions = StackedOptions()
    min_spaces: ClassVar[int] = 2


def fit(train: Design, test: Design, entry: StackedSpec, device) -> FitOutput:
    from ...encoding import StackedRegression

    spaces = [(f"space{k}", ridge_model(entry, train.delays, device), train.columns(k))
              for k in range(len(train.widths))]
    model = StackedRegression(spaces, cv=entry.stacked.cv, solver=entry.stacked.solver, progress=False)
    model.fit(train.X, train.Y, run_lengths=train.lengths)
    alone = model.predict_per_space(test.X, run_lengths=test.lengths)
    prediction = np.einsum("kt,knt->nt", model.weights_, alone)
    alphas = np.stack([np.atleast_1d(estimator.alpha_) for estimator in model.estimators_])
    return FitOutput(prediction, np.full(train.Y.shape[1], np.nan), alone, {"alpha": alphas, "weight": model.weights_})


def memory(shape: FitShape, entry: StackedSpec, batch: int | None = None) -> int:
    """The largest space's ridge peak, and every space's held-out and test predictions (k, n, t), up to three
    copies of them while the weights are fitted."""
    spaces = range(len(shape.widths))
    predictions = 3 * FLOAT * len(shape.widths) * (shape.n_train + shape.n_test) * shape.targets
    return max(ridge_memory(shape.space(k)) for k in spaces) + predictions


KIND = register_fit(FitKind("stacked", StackedSpec, fit, memory))
