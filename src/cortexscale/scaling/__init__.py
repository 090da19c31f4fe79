"""Scaling laws of brain scores: fits with bootstrap intervals, an extrapolation check, the compute-optimal
frontier and paired effect sizes, all from results tables (pandas DataFrames).

* :func:`fit_law`: the joint law ``1 − ŝ = E + A·N^−α + B·D^−β`` (``+ C·M^−γ`` with fMRI data M), the
  saturating power law ``1 − ŝ = E + A·X^−α`` or the log-linear law ``ŝ = c + g·log10 X``, returning a
  :class:`ScalingFit`;
* :func:`extrapolation_check`: each law's error at the largest model and at the largest data size, refitted
  without them;
* :func:`compute_optimal`, :func:`frontier_exponents`, :func:`iso_flop`: the frontier of a joint fit, with
  compute from :func:`fit_compute_law` (``C = m·(N·D)^n``) or ``6·N·D``;
* :func:`what_buys_more`: with an fMRI axis in the joint law, the gain from more model compute against more
  fMRI data;
* :func:`effect_summary`, :func:`slope_summary`: paired effects of a factor with bootstrap intervals and
  sign-flip p-values over subjects;
* :func:`make_scaling_table`: a synthetic study from a known law.
"""

from .compute import ComputeLaw, fit_compute_law
from .laws import LAWS, MISALIGNMENT_FLOOR, ScalingFit, fit_law
from .frontier import compute_optimal, frontier_exponents, iso_flop, what_buys_more
from .extrapolation import extrapolation_check
from .effects import effect_summary, slope_summary
from .synthetic import make_scaling_table

__all__ = [
    "LAWS",
    "MISALIGNMENT_FLOOR",
    "ComputeLaw",
    "ScalingFit",
    "compute_optimal",
    "effect_summary",
    "extrapolation_check",
    "fit_compute_law",
    "fit_law",
    "frontier_exponents",
    "iso_flop",
    "make_scaling_table",
    "slope_summary",
    "what_buys_more",
]
