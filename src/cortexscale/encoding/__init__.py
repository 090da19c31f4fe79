"""Encoding models: delays, ridge regression, metrics and noise ceilings.

Estimators follow scikit-learn conventions; the solvers behind them are pure
functions in :mod:`cortexscale.encoding._solvers`.
"""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "_backend": ["BACKENDS", "available_backends", "get_backend"],
    "_cv": ["Bootstrap", "LeaveOneRunOut", "check_cv"],
    "delays": ["Delayer", "delay_features"],
    "blocks": ["STATISTICS", "block_statistics", "statistics_score", "time_blocks"],
    "metrics": ["correlation_score", "fdr_correction", "permutation_test", "r2_score"],
    "ceilings": ["NoiseCeiling", "cc_max", "cc_norm", "drop_empty_subjects", "leave_one_out_ceiling", "noise_ceiling",
                 "noise_power", "normalised_correlation", "signal_power", "signal_power_explained",
                 "split_half_ceiling"],
    "ridge": ["DEFAULT_ALPHAS", "RidgeCV", "huth_alphas_to_standard", "standard_alphas_to_huth"],
    "preprocessing": ["groups_to_runs", "runs_to_groups", "trim_runs", "zscore_runs"],
    "banded": ["BandedRidgeCV", "band_ratio_candidates", "delayed_band_columns"],
    "projection": ["PROJECTIONS", "FeatureProjection", "sparse_random_matrix"],
    "stacking": ["StackedRegression", "simplex_least_squares"],
})
