"""What every block of a study file shares: the frozen, strict base of its pydantic models, the ``layers``
field, the base of a model family's block, and the error of a value found wrong only after validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, StudyFileError

__all__ = ["FieldError", "Layers", "ModelSpec", "NAME", "Registry", "Spec"]

NAME = r"^[A-Za-z0-9_.-]+$"
"""What a study, dataset, model or encoding name may hold: it becomes part of folder names and columns."""


class Spec(BaseModel):
    """A block of a study file: unknown fields are errors, and a validated block never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Layers = Union[Literal["default", "all"], int, list[int]]
"""``layers``: "default" (three quarters up), "all", one index or a list (see :mod:`cortexscale.layers`)."""


class ModelSpec(Spec):
    """The fields every model family's block has; a family adds its own (see
    :mod:`cortexscale.study.families`), with ``family`` a ``Literal`` of its name."""

    family: str
    name: str = Field(pattern=NAME)
    layers: Layers | None = None

    def model_names(self) -> list[str]:
        """The names of the feature models the block becomes (a grid's points share the block's name)."""
        return [self.name]


class FieldError(ValueError):
    """A value of a study file that is wrong for a reason found after its block validated (another block it
    names, the data or a model it meets when planned). ``loc`` is the field's path in the file, such as
    ``("encoding", 1, "spaces", 0, "layer")``; :meth:`cortexscale.study.StudySpec.located` turns it into an
    error of class ``kind`` (a :class:`~cortexscale.errors.StudyFileError`, or a ModelError or DatasetError when
    the model or the data is at fault) naming the file and line."""

    def __init__(self, loc: tuple, message: str, kind: type[InputError] = StudyFileError):
        super().__init__(message)
        self.loc = tuple(loc)
        self.message = message
        self.kind = kind

    def within(self, *prefix) -> "FieldError":
        """The same error, located under ``prefix`` (a block's error placed in the file: ``("models", 2)``)."""
        return FieldError((*prefix, *self.loc), self.message, self.kind)


class Registry(dict):
    """Plugins by name: a dict, filled by :meth:`add`, which checks that a plugin's spec is tagged with its name
    (the ``tag`` field, a ``Literal`` of the name) and then tells every listener (the study spec rebuilds the
    union of the specs it accepts)."""

    def __init__(self, what: str, tag: str):
        super().__init__()
        self.what, self.tag = what, tag
        self.listeners: list[Callable[[], None]] = []

    def add(self, name: str, plugin, spec: type[Spec]):
        if name in self and self[name] is not plugin:
            raise ValueError(f"a {self.what} named {name!r} is registered already")
        if spec.model_fields[self.tag].annotation != Literal[name]:
            raise ValueError(f"{self.what} {name!r}: its spec's `{self.tag}` field must be Literal[{name!r}]")
        self[name] = plugin
        self._changed()
        return plugin

    def remove(self, name: str) -> None:
        """Take the plugin ``name`` out again (a study file may no longer name it)."""
        del self[name]
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()
