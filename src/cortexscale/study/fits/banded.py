"""``method: banded``: banded ridge, one penalty per feature space chosen per target
(:class:`cortexscale.encoding.BandedRidgeCV`), as Nunez-Elizalde et al. fitted semantic and acoustic spaces."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from ...runtime import cpu_threads
from ..fields import Spec
from .base import (FLOAT, Design, EncodingSpec, FitKind, FitOutput, FitShape, alone, cv_splitter, fit_threads,
                   register_fit, ridge_memory)

__all__ = ["BandedOptions", "BandedSpec"]


class BandedOptions(Spec):
    """The search over band ratios: ``n_iter`` candidates (the simplex's corners and centre, then Dirichlet
    draws whose ``concentration`` cycles through the list; small values favour the corners and edges), and
    over each candidate's alphas: ``alpha_search`` as :class:`cortexscale.encoding.BandedRidgeCV` takes it
    ("warm_start" scores about a third of the pairs "grid" does)."""

    n_iter: int = Field(default=20, ge=1)
    concentration: list[Annotated[float, Field(gt=0)]] = Field(default=[0.1, 1.0], min_length=1)
    seed: int = 0
    alpha_search: Literal["grid", "coarse_to_fine", "warm_start"] = "grid"


class BandedSpec(EncodingSpec):
    """An encoding entry of method banded: at least two spaces, each with its own penalty."""

    method: Literal["banded"]
    banded: BandedOptions = BandedOptions()
    min_spaces: ClassVar[int] = 2

    def fit_settings(self) -> dict:
        """As an encoding entry's, less the default ``alpha_search``, so fits planned before it existed keep
        their task keys."""
        settings = super().fit_settings()
        if self.banded.alpha_search == "grid":
            del settings["banded"]["alpha_search"]
        return settings


def fit(train: Design, test: Design, entry: BandedSpec, device) -> FitOutput:
    from ...encoding import BandedRidgeCV

    train_d, test_d = train.delayed(), test.delayed()
    bands = [train_d.columns(k) for k in range(len(train.widths))]
    model = BandedRidgeCV(bands, alphas=entry.alpha_grid(), n_iter=entry.banded.n_iter,
                          concentration=entry.banded.concentration, cv=cv_splitter(entry.cv), scoring=entry.scoring,
                          backend=device, dtype=entry.dtype, random_state=entry.banded.seed,
                          alpha_search=entry.banded.alpha_search, progress=False)
    with cpu_threads(fit_threads(len(train_d.X), train_d.X.shape[1], train_d.Y.shape[1], device)):
        model.fit(train_d.X, train_d.Y, run_lengths=train_d.lengths)
        prediction = model.predict(test_d.X)
    per_space = {"alpha": model.band_alphas_, "weight": model.band_ratios_}
    return FitOutput(prediction, np.atleast_1d(model.alpha_), alone(train, test, entry, device), per_space)


def memory(shape: FitShape, entry: BandedSpec, batch: int | None = None) -> int:
    """A ridge fit's peak over the joined spaces, and the band penalties and ratios per target."""
    return ridge_memory(shape) + FLOAT * 2 * len(shape.widths) * shape.targets


KIND = register_fit(FitKind("banded", BandedSpec, fit, memory))
