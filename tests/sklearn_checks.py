"""scikit-learn estimator checks, minus the array-API input check.

cortexscale estimators take numpy (or torch through their backend), not
array-API namespaces; scikit-learn's array-API check would only skip itself
for them, and a skipped test asserts nothing.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks


def _check_name(check) -> str:
    func = getattr(check, "func", check)
    return getattr(func, "__name__", "")


def sklearn_checks(estimators, **kwargs):
    """``parametrize_with_checks`` without ``check_array_api_input``."""
    mark = parametrize_with_checks(estimators, **kwargs)
    argnames, params = mark.args
    kept = [p for p in params if "array_api" not in _check_name(p.values[1] if hasattr(p, "values") else p[1])]
    return pytest.mark.parametrize(argnames, kept, **mark.kwargs)
