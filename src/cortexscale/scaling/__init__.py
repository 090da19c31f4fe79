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
* :func:`depth_trend`: the best layer's relative depth against model size, with intervals;
* :func:`region_gains`, :func:`target_gains`: the log-linear size law per ROI and per target (a brain map);
* :func:`make_scaling_table`: a synthetic study from a known law.
"""

from .compute import ComputeLaw, fit_compute_law
from .laws import LAWS, MISALIGNMENT_FLOOR, ScalingFit, fit_law
from .frontier import compute_optimal, frontier_exponents, iso_flop, what_buys_more
from .extrapolation import extrapolation_check
from .effects import effect_summary, slope_summary
from .synthetic import make_scaling_table
from .depth import DepthTrend, depth_trend
from .regional import region_gains, target_gains

__all__ = [
    "LAWS",
    "MISALIGNMENT_FLOOR",
    "ComputeLaw",
    "DepthTrend",
    "ScalingFit",
    "compute_optimal",
    "depth_trend",
    "effect_summary",
    "extrapolation_check",
    "fit_compute_law",
    "fit_law",
    "frontier_exponents",
    "iso_flop",
    "make_scaling_table",
    "region_gains",
    "slope_summary",
    "target_gains",
    "what_buys_more",
]
