"""The errors that mean bad input: something the user wrote or pointed at, never a bug of cortexscale.

Everything else that escapes a command is unexpected, and the command line says so (exit code 4). Each of
these is a ``ValueError``, so code that caught ValueError before still catches them.
"""

from __future__ import annotations

__all__ = ["DatasetError", "InputError", "MemoryBudgetError", "ModelError", "StudyFileError", "StudyFolderError"]


class InputError(ValueError):
    """Bad input: a study file, a dataset, a model or a folder that cannot be used as given."""


class StudyFileError(InputError):
    """A study file that cannot be read or does not validate; the message names file, line and field."""


class DatasetError(InputError):
    """A dataset that cannot be loaded or checked; the message names the dataset and what is wrong."""


class ModelError(InputError):
    """A feature model whose files or config cannot be read; the message names the model."""


class StudyFolderError(InputError, FileNotFoundError):
    """A folder that is not a study folder, or holds no results yet."""


class MemoryBudgetError(InputError):
    """A study whose tasks cannot fit the memory they are given, refused before any of them runs."""
