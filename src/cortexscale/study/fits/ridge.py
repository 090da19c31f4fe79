"""``method: ridge``: ridge regression with one cross-validated alpha per target
(:class:`cortexscale.encoding.RidgeCV`), on one feature space or on several side by side."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..fields import Spec
from .base import Design, EncodingSpec, FitKind, FitOutput, alone, fit_ridge, register_fit

__all__ = ["RidgeOptions", "RidgeSpec"]


class RidgeOptions(Spec):
    """``alpha_search``: "grid" scores every alpha; "coarse_to_fine" every third, then walks each target to
    its local optimum (about half the work, the same alpha for nearly every target)."""

    alpha_search: Literal["grid", "coarse_to_fine"] = "grid"


class RidgeSpec(EncodingSpec):
    """An encoding entry of method ridge; over several spaces, one alpha for their columns together."""

    method: Literal["ridge"] = "ridge"
    ridge: RidgeOptions = RidgeOptions()


def fit(train: Design, test: Design, entry: RidgeSpec, device, target_batch: int | None = None) -> FitOutput:
    model, prediction = fit_ridge(train, test, entry, device, alpha_search=entry.ridge.alpha_search,
                                  target_batch=target_batch)
    joint = len(train.widths) > 1
    spaces = alone(train, test, entry, device, target_batch=target_batch) if joint else None
    return FitOutput(prediction, np.atleast_1d(model.alpha_), spaces)


KIND = register_fit(FitKind("ridge", RidgeSpec, fit, batched=True))
