"""Kinds of fit as plugins: each module builds a :class:`FitKind` and registers it (see :mod:`.base`)."""

from . import banded, ridge, stacked  # noqa: F401  (each registers its kind)
from .base import FITS, BootstrapSpec, Design, EncodingSpec, FitKind, FitOutput, SpaceSpec, register_fit
from .banded import BandedSpec
from .ridge import RidgeSpec
from .stacked import StackedSpec

__all__ = ["FITS", "BandedSpec", "BootstrapSpec", "Design", "EncodingSpec", "FitKind", "FitOutput", "RidgeSpec",
           "SpaceSpec", "StackedSpec", "register_fit"]
