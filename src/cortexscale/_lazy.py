"""Package attributes imported on first use (PEP 562), so that importing a package costs only what is used.

A package that re-exports names from submodules which need torch or scikit-learn writes::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"ridge": ["RidgeCV"], ...})

and ``from cortexscale.encoding import RidgeCV`` imports ``cortexscale.encoding.ridge`` then, not before.
A finished study's rerun plans without importing torch or scikit-learn at all.
"""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, list[str]]):
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose names live in the given submodules."""
    owner = {name: module for module, names in exports.items() for name in names}
    if len(owner) != sum(map(len, exports.values())):
        raise ValueError(f"{package}: a name is exported by two submodules")

    def __getattr__(name: str):
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{owner[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(owner))

    return __getattr__, __dir__, sorted(owner)
