"""Encoding models: delays, ridge regression, metrics and noise ceilings.

Estimators follow scikit-learn conventions; the solvers behind them are pure
functions in :mod:`cortexscale.encoding._solvers`.
"""

from ._backend import BACKENDS, available_backends, get_backend
from ._cv import Bootstrap, LeaveOneRunOut, check_cv
from .delays import Delayer, delay_features
from .metrics import correlation_score, fdr_correction, permutation_test, r2_score
from .ceilings import (
    NoiseCeiling,
    cc_max,
    cc_norm,
    drop_empty_subjects,
    leave_one_out_ceiling,
    noise_ceiling,
    noise_power,
    normalised_correlation,
    signal_power,
    signal_power_explained,
    split_half_ceiling,
)
from .ridge import DEFAULT_ALPHAS, RidgeCV, huth_alphas_to_standard, standard_alphas_to_huth
from .preprocessing import groups_to_runs, runs_to_groups, trim_runs, zscore_runs
from .banded import BandedRidgeCV, band_ratio_candidates, delayed_band_columns
from .stacking import StackedRegression, simplex_least_squares
