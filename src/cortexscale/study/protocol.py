"""The settings the planner hands each stage, as typed objects.

A task's settings are JSON (they make its key, and a Ray worker receives them); the planner builds them from
these models and each stage reads them back through the same model, so no stage reads a dict by key or
parses a string the planner made. Inputs are named by role (``Task.inputs``): the models below refer to
those roles, never to folders.
"""

from __future__ import annotations

from typing import Literal

from .fields import Spec
from .spec import AlignmentSpec, ScoringSpec

__all__ = ["CeilingSettings", "CollectRow", "CollectSettings", "DatasetRef", "Evaluation", "FeaturesSettings",
           "FitSettings", "FmriSize", "Projection", "SpaceInputs"]


class DatasetRef(Spec):
    """A dataset as the tasks load it: its name in the study, its loader and the loader's settings."""

    name: str
    loader: str
    settings: dict = {}


class Evaluation(Spec):
    """How a fit is scored: on the dataset's test runs, or by ``folds`` contiguous outer folds of the training
    runs (each fold's model trained on the others, their predictions pooled)."""

    mode: Literal["test-runs", "folds"]
    folds: int | None = None

    @property
    def label(self) -> str:
        """As the results' ``evaluation`` column writes it: "test-runs" or "folds-<k>"."""
        return self.mode if self.mode == "test-runs" else f"folds-{self.folds}"

    @property
    def split(self) -> str:
        """The split of the runs that are scored."""
        return "test" if self.mode == "test-runs" else "train"


class FmriSize(Spec):
    """How much of a subject's fMRI training data a fit takes: its first ``size`` runs or TRs, or all."""

    unit: Literal["runs", "trs"]
    size: int | Literal["all"]


class Projection(Spec):
    """One fit's feature-count control: each space projected to ``dims`` columns by ``method`` (seeded by
    ``seed``), as :func:`cortexscale.study.fits.base.projected` does."""

    method: Literal["srp", "pca"]
    dims: int
    seed: int = 0

    @property
    def label(self) -> str:
        """As the results' ``projection`` column writes it: "srp-64", "pca-256"."""
        return f"{self.method}-{self.dims}"


class FeaturesSettings(Spec):
    """A ``features`` task: one feature model's ``layers`` of one stimulus. ``model``: the family's settings
    of the feature model (:attr:`cortexscale.study.families.FeatureModel.settings`); ``kind``: what
    :func:`cortexscale.features.extract_features` takes it as."""

    dataset: DatasetRef
    stimulus: str
    family: str
    kind: str
    layers: list[int]
    model: dict = {}


class SpaceInputs(Spec):
    """One feature space of a fit: its name, its layer and, per stimulus, the role of the features task."""

    name: str
    layer: int
    features: dict[str, str]


class FitSettings(Spec):
    """A ``fit`` task: one encoding model of one subject (``members``: the subjects whose responses are
    averaged, one or a group) on its feature ``spaces``, with ``fmri`` training data, scored by
    ``evaluation``. ``encoding``: what changes the result of its encoding entry
    (:meth:`cortexscale.study.fits.EncodingSpec.fit_settings`); ``projection``: the fixed feature count of its
    spaces, None for their full width; ``test_blocks``: the TRs per block of the statistics it keeps for a
    block bootstrap, None for none. Each is left out of the task's settings when None, as before it existed."""

    dataset: DatasetRef
    subject: str
    members: list[str]
    spaces: list[SpaceInputs]
    fmri: FmriSize
    evaluation: Evaluation
    alignment: AlignmentSpec
    encoding: dict
    projection: Projection | None = None
    test_blocks: int | None = None

    def as_task(self) -> dict:
        """The settings as a task's JSON."""
        unset = {name for name in ("projection", "test_blocks") if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=unset)


class CeilingSettings(Spec):
    """A ``ceiling`` task: each target's noise ceiling for one subject on the TRs its fits are scored on."""

    dataset: DatasetRef
    subject: str
    members: list[str]
    all_subjects: list[str]
    evaluation: Evaluation
    trim: tuple[int, int] = (0, 0)


class CollectRow(Spec):
    """One fit in the results: its labels, and the roles of its fit, its ceiling, the features task of each
    of its spaces (whose records give the model's size) and each space's model task (training records)."""

    labels: dict
    fit: str
    ceiling: str
    features: list[str]
    models: list[str | None]


class CollectSettings(Spec):
    """The ``collect`` task: every fit of the study, and what each fit's targets are summarised into."""

    rows: list[CollectRow]
    scoring: ScoringSpec
