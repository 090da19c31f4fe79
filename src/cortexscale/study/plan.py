"""Expand a study into its tasks.

Each model family expands its block into the tasks that make its models and into feature models
(:mod:`cortexscale.study.families`). Every feature model gets one ``features`` task per stimulus it takes, of
the layers its fits read. Each encoding entry then gives ``fit`` tasks per subject and fMRI training size: an
entry without ``spaces`` one per (feature model, layer), an entry with ``spaces`` one joining them. Each
(subject, evaluation, trim) gets one ``ceiling`` task, and one ``collect`` task gathers every score, with the
models' sizes and compute, into the results table.

What only the data or a model's config can say (a layer the model lacks, a trim longer than a run, a bootstrap
chunk longer than a run, a model that cannot take a dataset's stimuli) is checked here, before any task runs,
and reported against the study file's line and field.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import numpy as np

from ..data import Dataset, load_dataset
from ..encoding import Bootstrap, time_blocks
from ..errors import DatasetError
from ..layers import resolve_layers
from .families import FAMILIES, FeatureModel
from .fields import FieldError
from .fits import FITS
from .fits.base import BootstrapCV, FitShape, ridge_flops, task_memory
from .protocol import (CeilingSettings, CollectRow, CollectSettings, DatasetRef, Evaluation, FeaturesSettings,
                       FitSettings, FmriSize, Projection, SpaceInputs)
from .schema import JOINT, UNPROJECTED
from .spec import DatasetSpec, StudySpec
from .tasks import Task, make_task, topological

__all__ = ["GROUP", "Plan", "dataset_of", "plan_study", "scored_runs"]

GROUP = "group"
"""The pseudo-subject of a dataset's group-average response."""


@functools.lru_cache(maxsize=8)
def _load(loader: str, settings_json: str) -> Dataset:
    return load_dataset(loader, **json.loads(settings_json))


def dataset_of(ref: DatasetRef | DatasetSpec) -> Dataset:
    """The dataset a study names (or a task's reference to it), loaded once per process; a dataset that cannot
    be loaded is a DatasetError naming it."""
    try:
        return _load(ref.loader, json.dumps(ref.settings, sort_keys=True))
    except DatasetError:
        raise
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise DatasetError(f"dataset {ref.name!r} (loader {ref.loader!r}): {err}") from err


@dataclass(frozen=True)
class Subject:
    """A subject to fit: one of the dataset's, or the group average of several (``members``)."""

    dataset: DatasetSpec
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Estimate:
    """What a task will cost, known before it runs: ``memory`` its peak bytes (with the solver's default target
    batch), ``least`` the peak with the smallest batch the kind of fit can take (what a memory limit cannot
    go below), ``flops`` its multiply-adds; None where the plan does not know."""

    memory: int | None = None
    least: int | None = None
    flops: float | None = None


@dataclass(frozen=True)
class Plan:
    """The tasks of a study, in topological order, the loaded datasets by name, and an :class:`Estimate` of
    the tasks whose cost the plan knows (by key)."""

    tasks: list[Task]
    datasets: dict[str, Dataset]
    estimates: dict[str, Estimate] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Task]:
        return [t for t in self.tasks if t.kind == kind]


def plan_study(study: StudySpec) -> Plan:
    """Every task of ``study``, inputs before the tasks that read them. A value of the study that the data or a
    model refuses raises the error of its kind naming the study file's line and field."""
    try:
        return _Planner(study).plan()
    except FieldError as err:
        raise study.located(err) from None


def _subjects(spec: DatasetSpec, data: Dataset, where: tuple) -> list[Subject]:
    chosen = data.subjects if spec.subjects == "all" else list(spec.subjects)
    unknown = [s for s in chosen if s not in data.subjects]
    if unknown:
        raise FieldError((*where, "subjects"), f"dataset {spec.name!r}: subjects {unknown} are not in it; it has "
                         f"{data.subjects}", DatasetError)
    out = [Subject(spec, s, (s,)) for s in chosen] if spec.individual else []
    if spec.group_average:
        _check_group(spec, data, chosen, where)
        out.append(Subject(spec, GROUP, tuple(chosen)))
    return out


def _check_group(spec: DatasetSpec, data: Dataset, members: list[str], where: tuple) -> None:
    """Members of a group average must share their runs: names, stimuli, lengths, splits."""
    shape = [(r.name, r.stimulus, r.n_trs, r.split) for r in data.runs_of(members[0])]
    for member in members[1:]:
        other = [(r.name, r.stimulus, r.n_trs, r.split) for r in data.runs_of(member)]
        if other != shape:
            raise FieldError((*where, "group_average"), f"dataset {spec.name!r}: group_average needs subjects with "
                             f"the same runs; {member} has {other} but {members[0]} has {shape}", DatasetError)


def scored_runs(data: Dataset, subject: Subject, evaluation) -> tuple[Evaluation, list]:
    """The evaluation an encoding entry's ``evaluation`` gives this subject, and the runs it scores on."""
    runs = data.runs_of(subject.members[0])
    tests = [r for r in runs if r.split == "test"]
    if evaluation == "test-runs" or (evaluation == "auto" and tests):
        if not tests:
            raise ValueError(f"dataset {subject.dataset.name!r}, subject {subject.members[0]}: evaluation "
                             "'test-runs' but the subject has no test runs")
        return Evaluation(mode="test-runs"), tests
    folds = evaluation["folds"] if isinstance(evaluation, dict) else 5
    return Evaluation(mode="folds", folds=folds), [r for r in runs if r.split == "train"]


def _trimmed(run, trim) -> int:
    return run.n_trs - trim[0] - trim[1]


class _Planner:
    """The planning of one study: its datasets, feature models and the tasks each entry adds."""

    def __init__(self, study: StudySpec):
        self.study = study
        self.tasks: list[Task] = []
        self.models: list[tuple[int, FeatureModel]] = []
        self.ceilings: dict = {}
        self.fits: list[tuple] = []
        self.estimates: dict[str, Estimate] = {}
        self._features: dict = {}

    def plan(self) -> Plan:
        datasets = {spec.name: dataset_of(spec) for spec in self.study.datasets}
        self._expand_models()
        layers = self._layers_needed()
        for d, spec in enumerate(self.study.datasets):
            for subject in _subjects(spec, datasets[spec.name], ("datasets", d)):
                self._subject_fits(spec, datasets[spec.name], subject, layers)
        self._check_every_model_is_fitted()
        ceilings = list(self.ceilings.values())
        features = list(self._features.values())
        tasks = self.tasks + [t for stimuli in features for t in stimuli.values()] + ceilings
        tasks += _by_responses([fit for fit, *_ in self.fits])
        tasks.append(self._collect())
        return Plan(topological(tasks), datasets, self.estimates)

    # ------------------------------------------------------------------ models and their layers
    def _expand_models(self) -> None:
        for i, spec in enumerate(self.study.models):
            try:
                expansion = FAMILIES[spec.family].expand(spec, self.study)
            except FieldError as err:
                raise err.within("models", i) from None
            self.tasks += expansion.tasks
            self.models += [(i, model) for model in expansion.models]

    def _own_layers(self, model: FeatureModel) -> list[int]:
        chosen = model.layers if model.layers is not None else self.study.layers
        if chosen == "all":
            return list(range(model.n_layers + 1))
        return resolve_layers(None if chosen == "default" else chosen, model.n_layers)

    def _space_layer(self, e: int, j: int, space, model: FeatureModel) -> int:
        try:
            return resolve_layers(space.layer, model.n_layers)[0]
        except ValueError as err:
            raise FieldError(("encoding", e, "spaces", j, "layer"), f"space {space.label!r}: model {space.model!r}: "
                             f"{err}") from None

    def _layers_needed(self) -> dict[int, list[int]]:
        """The layers each feature model's features tasks compute (by the model's position in ``models``)."""
        needed: dict[int, set[int]] = {}
        for position, (_, model) in enumerate(self.models):
            if any(entry.spaces is None for entry in self.study.encoding):
                needed.setdefault(position, set()).update(self._own_layers(model))
        for e, entry in enumerate(self.study.encoding):
            for j, space in enumerate(entry.spaces or ()):
                position = self._position(space.model)
                needed.setdefault(position, set()).add(self._space_layer(e, j, space, self.models[position][1]))
        return {position: sorted(layers) for position, layers in needed.items()}

    def _position(self, name: str) -> int:
        return next(p for p, (_, model) in enumerate(self.models) if model.name == name)

    def _check_every_model_is_fitted(self) -> None:
        fitted = {position for *_, spaces in self.fits for _, position, _, _ in spaces}
        for position, (i, model) in enumerate(self.models):
            if position not in fitted:
                datasets = ", ".join(repr(d.name) for d in self.study.datasets)
                kind = f" of kind {model.settings['kind']}" if model.settings.get("kind") else ""
                raise FieldError(("models", i), f"model {model.name!r} (a {model.family} model{kind}) takes no "
                                 f"stimulus of dataset(s) {datasets}, so no fit would use it")

    # ------------------------------------------------------------------ features
    def _features_of(self, position: int, spec: DatasetSpec, data: Dataset, layers: list[int]) -> dict[str, Task]:
        """The model's features tasks of every stimulus of the dataset it takes, stimulus id -> Task."""
        key = (position, spec.name)
        if key not in self._features:
            _, model = self.models[position]
            family = FAMILIES[model.family]
            ref = DatasetRef(**spec.model_dump(mode="json", include={"name", "loader", "settings"}))
            out = {}
            for stimulus in data.stimuli.values():
                kind = family.kind_for(model, stimulus)
                if kind is None:
                    continue
                settings = FeaturesSettings(dataset=ref, stimulus=stimulus.id, family=model.family, kind=kind,
                                            layers=layers, model=model.settings)
                label = " ".join(f"features {_model_label(model)} on {spec.name}/{stimulus.id}".split())
                out[stimulus.id] = make_task("features", settings.model_dump(mode="json"), model.inputs, label=label)
            self._features[key] = out
        return self._features[key]

    # ------------------------------------------------------------------ fits
    def _subject_fits(self, spec: DatasetSpec, data: Dataset, subject: Subject, layers: dict) -> None:
        runs = data.runs_of(subject.members[0])
        for e, entry in enumerate(self.study.encoding):
            evaluation, scored = scored_runs(data, subject, entry.evaluation)
            self._check_entry(e, entry, data, subject, evaluation)
            ceiling = self._ceiling(spec, data, subject, evaluation, tuple(entry.trim))
            sizes = self._fmri_sizes(data, subject, evaluation, entry)
            for spaces in self._fit_spaces(e, entry, spec, data, runs, layers):
                for size in sizes:
                    for projection in _projections(entry):
                        self._fit(spec, data, subject, e, entry, spaces, evaluation, size, ceiling, projection)

    def _fit_spaces(self, e: int, entry, spec: DatasetSpec, data: Dataset, runs, layers: dict):
        """The feature spaces of each fit of an entry: lists of (name, model position, layer, features)."""
        if entry.spaces is None:
            for position, (i, model) in enumerate(self.models):
                features = self._features_of(position, spec, data, layers[position])
                if not features:
                    continue  # a model of another modality than this dataset's stimuli
                self._check_takes(features, runs, model, spec, ("models", i))
                for layer in self._own_layers(model):
                    yield [(model.name, position, layer, features)]
            return
        out = []
        for j, space in enumerate(entry.spaces):
            position = self._position(space.model)
            model = self.models[position][1]
            features = self._features_of(position, spec, data, layers[position])
            self._check_takes(features, runs, model, spec, ("encoding", e, "spaces", j, "model"))
            out.append((space.label, position, self._space_layer(e, j, space, model), features))
        yield out

    @staticmethod
    def _check_takes(features: dict, runs, model: FeatureModel, spec: DatasetSpec, where: tuple) -> None:
        missing = sorted({r.stimulus for r in runs} - set(features))
        if missing:
            raise FieldError(where, f"model {model.name!r} cannot take stimuli {missing} of dataset {spec.name!r} "
                             f"(a {model.family} model takes {'none' if not features else sorted(features)} of its "
                             "stimuli)")

    def _check_entry(self, e: int, entry, data: Dataset, subject: Subject, evaluation: Evaluation) -> None:
        runs = data.runs_of(subject.members[0])
        start, end = entry.trim
        short = [r for r in runs if _trimmed(r, entry.trim) < 1]
        if short:
            raise FieldError(("encoding", e, "trim"), f"trim [{start}, {end}] leaves nothing of run "
                             f"{short[0].label} ({short[0].n_trs} TRs)")
        train = [_trimmed(r, entry.trim) for r in runs if r.split == "train"]
        self._check_test_blocks(subject, [_trimmed(r, entry.trim) for r in runs if r.split == evaluation.split])
        if isinstance(entry.cv, BootstrapCV):
            boot = entry.cv.bootstrap
            if boot.chunk_len > min(train):
                raise FieldError(("encoding", e, "cv", "bootstrap", "chunk_len"), f"chunks of {boot.chunk_len} TRs are "
                                 f"longer than the shortest training run of subject {subject.name} ({min(train)} "
                                 "TRs after trims)")
            n = self._fewest_training_trs(data, subject, evaluation, entry)
            try:
                next(Bootstrap(boot.n_boots, boot.chunk_len, boot.test_fraction).split(n))
            except ValueError as err:
                raise FieldError(("encoding", e, "cv", "bootstrap"), f"{err} (the smallest training set of subject "
                                 f"{subject.name})") from None

    def _check_test_blocks(self, subject: Subject, scored: list[int]) -> None:
        """A block bootstrap needs at least two blocks of the TRs a fit scores (``scored``: per run)."""
        blocks = self.study.scoring.test_blocks
        if blocks is not None and len(time_blocks(scored, blocks.length)) < 2:
            raise FieldError(("scoring", "test_blocks", "length"), f"blocks of {blocks.length} TRs cut the "
                             f"{sum(scored)} TRs that subject {subject.name} is scored on into fewer than 2 "
                             "blocks; a block bootstrap needs more")

    def _fewest_training_trs(self, data: Dataset, subject: Subject, evaluation: Evaluation, entry) -> int:
        """TRs of the smallest training set any fit of this subject under ``entry`` has."""
        train = [_trimmed(r, entry.trim) for r in data.runs_of(subject.members[0]) if r.split == "train"]
        if evaluation.mode == "folds":
            total = sum(train) - int(np.ceil(sum(train) / evaluation.folds))
        else:
            total = sum(train)
        sizes = self.study.fmri.sizes
        if self.study.fmri.unit == "runs":
            counts = [size for size in sizes if size != "all"]
            return min([total] + [sum(train[:k]) for k in counts])
        return min([total] + [size for size in sizes if size != "all"])

    def _fmri_sizes(self, data: Dataset, subject: Subject, evaluation: Evaluation, entry) -> list:
        """Sizes of this subject's fMRI training data, each checked against what it has."""
        train = [r for r in data.runs_of(subject.members[0]) if r.split == "train"]
        unit = self.study.fmri.unit
        available = len(train) if unit == "runs" else sum(_trimmed(r, entry.trim) for r in train)
        for size in self.study.fmri.sizes:
            if size != "all" and size > available:
                raise FieldError(("fmri", "sizes"), f"fmri size {size} {unit}: dataset {subject.dataset.name!r}, "
                                 f"subject {subject.name} has {available} training {unit}")
            if size != "all" and evaluation.mode == "folds" and unit == "runs":
                raise FieldError(("fmri", "unit"), "fmri sizes in runs need test runs to score on; with evaluation "
                                 "by folds give sizes in trs (each fold's training data is cut to that many TRs)")
        return list(self.study.fmri.sizes)

    def _ceiling(self, spec: DatasetSpec, data: Dataset, subject: Subject, evaluation: Evaluation, trim) -> Task:
        key = (spec.name, subject.name, evaluation.label, trim)
        if key not in self.ceilings:
            ref = DatasetRef(**spec.model_dump(mode="json", include={"name", "loader", "settings"}))
            settings = CeilingSettings(dataset=ref, subject=subject.name, members=list(subject.members),
                                       all_subjects=data.subjects, evaluation=evaluation, trim=trim)
            self.ceilings[key] = make_task("ceiling", settings.model_dump(mode="json"),
                                           label=f"ceiling {spec.name}/{subject.name}")
        return self.ceilings[key]

    def _fit(self, spec: DatasetSpec, data: Dataset, subject: Subject, e: int, entry, spaces: list,
             evaluation: Evaluation, size, ceiling: Task, projection: Projection | None) -> None:
        ref = DatasetRef(**spec.model_dump(mode="json", include={"name", "loader", "settings"}))
        inputs, space_inputs = {}, []
        for k, (name, _, layer, features) in enumerate(spaces):
            roles = {stimulus: f"space{k}/{stimulus}" for stimulus in features}
            inputs.update({roles[stimulus]: task for stimulus, task in features.items()})
            space_inputs.append(SpaceInputs(name=name, layer=layer, features=roles))
        settings = FitSettings(dataset=ref, subject=subject.name, members=list(subject.members), spaces=space_inputs,
                               fmri=FmriSize(unit=self.study.fmri.unit, size=size), evaluation=evaluation,
                               alignment=self.study.alignment, encoding=entry.fit_settings(), projection=projection,
                               test_blocks=blocks.length if (blocks := self.study.scoring.test_blocks) else None)
        described = self._described(spaces, entry)
        labels = {"dataset": spec.name, "subject": subject.name, "encoding": entry.label, "method": entry.method,
                  **self._projection_label(projection), "layer": described.pop("layer"),
                  "n_layers": described.pop("n_layers"),
                  "fmri_unit": self.study.fmri.unit, "fmri_size": size, "evaluation": evaluation.label, **described}
        what = entry.label + " " if len(self.study.encoding) > 1 and entry.spaces is None else ""
        projected = f" {projection.label}" if projection is not None else ""
        label = f"fit {what}{self._fit_label(spaces, entry)}{projected} {spec.name}/{subject.name} fmri={size}"
        fit = make_task("fit", settings.as_task(), inputs, label=" ".join(label.split()))
        self.fits.append((fit, ceiling, labels, spaces))
        widths = tuple(self.models[position][1].width for _, position, _, _ in spaces)
        shape = self._shape(data, subject, entry, widths, evaluation, size)
        if projection is not None:
            self._check_projection(e, entry, projection, spaces, widths, shape)
            shape = FitShape(shape.n_train, shape.n_test, shape.targets, (projection.dims,) * len(widths),
                             shape.delays, shape.splits)
        self.estimates[fit.key] = self._estimate(data, subject, entry, shape)

    def _projection_label(self, projection: Projection | None) -> dict:
        """The ``projection`` column of a fit, in a study where some entry projects (else no column)."""
        if not any(entry.projection is not None for entry in self.study.encoding):
            return {}
        return {"projection": UNPROJECTED if projection is None else projection.label}

    def _check_projection(self, e: int, entry, projection: Projection, spaces: list, widths: tuple,
                          shape: FitShape) -> None:
        """A projection must reduce every space it is given (where its width is known) and, for PCA, take no
        more axes than the fit has training TRs."""
        where = ("encoding", e, "projection", "dims")
        for width in widths:
            if width is not None and projection.dims > width:
                narrowest = min(m.width for _, m in self.models if m.width is not None)
                raise FieldError(where, f"dims {projection.dims} is more than the {width} features of "
                                 f"{self._fit_label(spaces, entry)}: a projection fixes a smaller feature count; "
                                 f"the study's narrowest model has {narrowest}")
        if projection.method == "pca" and projection.dims > shape.n_train:
            raise FieldError(where, f"pca to {projection.dims} dims needs at least as many training TRs; a fit "
                             f"has {shape.n_train}")

    def _shape(self, data: Dataset, subject: Subject, entry, widths: tuple, evaluation: Evaluation,
               size) -> FitShape:
        """A fit's sizes (TRs, targets, columns, splits) before it runs (``widths`` may hold None, unknown)."""
        runs = data.runs_of(subject.members[0])
        lengths = [_trimmed(r, entry.trim) for r in runs if r.split == "train"]
        if evaluation.mode == "test-runs":
            n_test = sum(_trimmed(r, entry.trim) for r in runs if r.split == "test")
            if size != "all" and self.study.fmri.unit == "runs":
                lengths = lengths[:size]
            n_train = sum(lengths) if size == "all" or self.study.fmri.unit == "runs" else min(size, sum(lengths))
        else:
            n_test = int(np.ceil(sum(lengths) / evaluation.folds))
            n_train = sum(lengths) - n_test if size == "all" else min(size, sum(lengths) - n_test)
        return FitShape(n_train, n_test, len(data.targets), widths, len(entry.delays), entry.n_splits(len(lengths)))

    def _estimate(self, data: Dataset, subject: Subject, entry, shape: FitShape) -> Estimate:
        """A fit's peak memory and multiply-adds from its shape (unknown where a model's width is)."""
        if None in shape.widths:
            return Estimate()
        held = sum(_trimmed(r, entry.trim) for r in data.runs_of(subject.members[0]))
        kind = FITS[entry.method]
        least = task_memory(kind, entry, shape, held, 64) if kind.batched else None
        memory = task_memory(kind, entry, shape, held)
        return Estimate(memory, least or memory, ridge_flops(shape, len(entry.alpha_grid())))

    def _described(self, spaces: list, entry) -> dict:
        """The labels that say what a fit's features are: layer, model, family and axes, or a joint fit's spaces."""
        if entry.spaces is None:
            _, position, layer, _ = spaces[0]
            model = self.models[position][1]
            return {"layer": layer, "n_layers": model.n_layers, **model.labels}
        return {"layer": None, "n_layers": None, "model": entry.label, "family": JOINT,
                "spaces": self._spaces_label(spaces)}

    def _spaces_label(self, spaces: list) -> str:
        return " + ".join(f"{self.models[position][1].name}@{layer}" for _, position, layer, _ in spaces)

    def _fit_label(self, spaces: list, entry) -> str:
        if entry.spaces is None:
            _, position, layer, _ = spaces[0]
            return f"{_model_label(self.models[position][1])} layer {layer}"
        return f"{entry.label} ({self._spaces_label(spaces)})"

    def _collect(self) -> Task:
        rows, inputs = [], {}
        for i, (fit, ceiling, labels, spaces) in enumerate(self.fits):
            inputs[f"fit{i}"], inputs[f"ceiling:{ceiling.key}"] = fit, ceiling
            features, models = [], []
            for _, position, _, tasks in spaces:
                first = next(iter(tasks.values()))
                inputs[f"features:{first.key}"] = first
                features.append(f"features:{first.key}")
                model = self.models[position][1].inputs.get("model")
                if model is not None:
                    inputs[f"model:{model.key}"] = model
                models.append(None if model is None else f"model:{model.key}")
            rows.append(CollectRow(labels=labels, fit=f"fit{i}", ceiling=f"ceiling:{ceiling.key}", features=features,
                                   models=models))
        settings = CollectSettings(rows=rows, scoring=self.study.scoring)
        return make_task("collect", settings.model_dump(mode="json"), inputs, label=f"collect {len(rows)} fits")


def response_group(fit: Task) -> tuple:
    """What the fits that share one preparation of their responses have in common: the subject's data, its
    trims, its evaluation and its fMRI training size."""
    s = fit.settings
    return (json.dumps(s["dataset"], sort_keys=True), tuple(s["members"]), tuple(s["encoding"]["trim"]),
            json.dumps(s["evaluation"], sort_keys=True), json.dumps(s["fmri"], sort_keys=True), s["encoding"]["zscore"])


def _by_responses(fits: list[Task]) -> list[Task]:
    """The fits with each response group's together, groups in order of first appearance: a process running
    them in turn reads and prepares each subject's responses once per size (see ``stages.fit``)."""
    groups: dict[tuple, list[Task]] = {}
    for fit in fits:
        groups.setdefault(response_group(fit), []).append(fit)
    return [fit for group in groups.values() for fit in group]


def _projections(entry) -> list[Projection | None]:
    """The projection of each fit of an entry: None (its full width) without one, or per ``dims``."""
    if entry.projection is None:
        return [None]
    spec = entry.projection
    return [None if dims == "all" else Projection(method=spec.method, dims=dims, seed=spec.seed) for dims in spec.dims]


def _model_label(model: FeatureModel) -> str:
    axes = {k: v for k, v in model.labels.items() if k not in ("model", "family")}
    return " ".join([model.name, *(f"{k}={v}" for k, v in axes.items())])
