"""What a model family is to a study, and the registry of families.

A family owns everything a study does with its models: the block of the study file that declares them
(:attr:`Family.spec`), their expansion into tasks and feature models (:attr:`Family.expand`), which stimuli
they can take (:attr:`Family.kind_for`), the stage code that trains them and computes their features, and what
its axes mean to the scaling laws and the report (:class:`Roles`). Adding a family is one module that builds
a :class:`Family` and passes it to :func:`register_family`; a study naming a family that is not registered is
refused when it is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..fields import ModelSpec, Registry
from ..schema import JOINT
from ..tasks import Task

__all__ = ["FAMILIES", "Expansion", "Extracted", "Family", "FeatureModel", "Roles", "model_sizes", "register_family"]


@dataclass(frozen=True)
class Roles:
    """What a family's axes mean to the laws and the report.

    ``data``: axes that set the model's training data (the D of the joint law); ``slopes``: numeric axes
    compared as a gain per decade; ``baselines``: factor axes and the level the others are compared with
    (and at which the laws of size are fitted).
    """

    data: tuple[str, ...] = ()
    slopes: tuple[str, ...] = ()
    baselines: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureModel:
    """One feature model of a study: a pretrained model or one grid point of a trainable family.

    ``name``: the study's name of it; ``labels``: the columns it adds to the results (model, family and its
    grid point's axis values); ``settings``: what the family's features code needs (JSON-able, the features
    task's settings); ``inputs``: role -> the tasks it is made by (a trained model's ``train`` task, ...);
    ``n_layers``: its block count, for resolving ``layers``; ``layers``: what its block chose (None: the
    study's); ``width``: the columns of one layer's features, where the family knows it before extracting
    (planning estimates each fit's memory from it).
    """

    family: str
    name: str
    labels: dict
    settings: dict
    inputs: dict[str, Task]
    n_layers: int
    layers: object = None
    width: int | None = None


@dataclass(frozen=True)
class Expansion:
    """What one block of a family expands into: the tasks that make its models, and the feature models."""

    tasks: list[Task]
    models: list[FeatureModel]


@dataclass(frozen=True)
class Extracted:
    """A features stage's output: ``features`` {layer: (n_events, d)}, the ``events`` they describe
    (onset and duration in seconds on the stimulus clock, (n_events,) each) and the model's ``sizes``
    (params, params_non_embedding and, where known, train_data)."""

    features: dict[int, np.ndarray]
    events: pd.DataFrame
    sizes: dict


@dataclass(frozen=True)
class Family:
    """A model family (see the module docstring).

    ``expand(spec, study) -> Expansion``; ``kind_for(model, stimulus)``: the
    :func:`~cortexscale.features.extract_features` kind the feature model takes for a stimulus, None when it
    cannot take it; ``features(model_settings, stimulus, layers, kind, context) -> Extracted``
    (``model_settings``: a :attr:`FeatureModel.settings`); ``train(settings, context) -> dict``: the
    ``train`` stage of one of its grid points (trainable families only). Errors it raises while expanding are
    :class:`~cortexscale.study.fields.FieldError` located inside its block (``("source",)``, ...).
    """

    name: str
    spec: type[ModelSpec]
    expand: Callable[..., Expansion]
    kind_for: Callable[[FeatureModel, object], str | None]
    features: Callable[..., Extracted]
    roles: Roles = Roles()
    train: Callable[..., dict] | None = None


def model_sizes(model) -> dict:
    """Parameters of a torch module with and without embeddings (every ``nn.Embedding``, and a model's own
    embedding prefixes): ``params``, ``params_non_embedding``."""
    from ...models import count_parameters

    return {"params": count_parameters(model), "params_non_embedding": count_parameters(model, non_embedding=True)}


FAMILIES = Registry("model family", "family")
"""Model families by name, as a study file's ``family`` names them."""


def register_family(family: Family) -> Family:
    """Add ``family`` to :data:`FAMILIES` (a study file may then name it); returns it."""
    if family.name == JOINT:
        raise ValueError(f"{JOINT!r} names the fits over several feature spaces; give the family another name")
    return FAMILIES.add(family.name, family, family.spec)
