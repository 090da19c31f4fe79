"""The packages that export their names lazily: every exported name resolves, to the submodule's object, and an
unknown name is an AttributeError naming the package."""

import importlib

import pytest

from cortexscale._lazy import lazy_exports

PACKAGES = ["cortexscale.encoding", "cortexscale.features", "cortexscale.models", "cortexscale.train"]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves(name):
    package = importlib.import_module(name)
    assert package.__all__ and set(package.__all__) <= set(dir(package))
    for export in package.__all__:
        value = getattr(package, export)
        assert value is not None and getattr(package, export) is value
    with pytest.raises(AttributeError, match=rf"module '{name}' has no attribute 'nothing_here'"):
        package.nothing_here


def test_a_name_exported_twice_is_refused():
    with pytest.raises(ValueError, match="exported by two submodules"):
        lazy_exports("cortexscale.encoding", {"ridge": ["RidgeCV"], "banded": ["RidgeCV"]})
