"""Expand a study into its tasks.

Per trainable family, the shared tasks come first (the training video, the tokenizer, its tokens), then one
``train`` task per point of the family's grid. Every feature model then gets one ``features`` task per
stimulus of every dataset, and every (feature model, layer, subject, fMRI data size) one ``fit`` task reading
the features of the stimuli that subject's runs presented. Each subject gets one ``ceiling`` task, and one
``collect`` task gathers every score, with the models' sizes and compute, into the results table.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from ..data import Dataset, load_dataset
from ..layers import resolve_layers
from .spec import DatasetSpec, PretrainedSpec, StudySpec, VideoGPTSpec, ViTSpec, grid
from .tasks import Task, make_task, topological

__all__ = ["FeatureModel", "Plan", "dataset_of", "plan_study", "resolve_source", "scored_runs"]

GROUP = "group"
"""The pseudo-subject of a dataset's group-average response."""


@functools.lru_cache(maxsize=8)
def _load(loader: str, settings_json: str) -> Dataset:
    return load_dataset(loader, **json.loads(settings_json))


def dataset_of(spec: dict | DatasetSpec) -> Dataset:
    """The dataset a dataset spec (or its JSON form in task settings) names, loaded once per process."""
    spec = spec if isinstance(spec, dict) else spec.model_dump(mode="json")
    return _load(spec["loader"], json.dumps(spec.get("settings", {}), sort_keys=True))


def resolve_source(source: str) -> str:
    """A model source with ``package:<module>/<path>`` resolved inside the installed package (one glob match)."""
    if not source.startswith("package:"):
        return source
    module, _, inner = source.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"model source {source!r}: package {module!r} is not installed")
    base = Path(spec.submodule_search_locations[0])
    matches = sorted(base.glob(inner)) if inner else [base]
    if len(matches) != 1:
        raise ValueError(f"model source {source!r} matches {len(matches)} paths in {base}; it must match one")
    return str(matches[0])


@dataclass(frozen=True)
class FeatureModel:
    """One feature model of the study: a pretrained model or one grid point of a trainable family.

    ``labels``: the columns it adds to the results (model, family and the grid's axis values); ``source``:
    the model task (None for pretrained); ``settings``: what the features stage needs to load or build it;
    ``n_layers``: its block count, for resolving ``layers``.
    """

    labels: dict
    settings: dict
    inputs: dict
    n_layers: int
    layers: object


def _pretrained_layers(spec: PretrainedSpec) -> int:
    """Block count of a pretrained language or speech model, read from its config (no weights loaded)."""
    from transformers import AutoConfig

    source = Path(resolve_source(spec.source))
    kwargs = {"gguf_file": source.name} if source.suffix == ".gguf" else {}
    try:
        config = AutoConfig.from_pretrained(source.parent if kwargs else source, **kwargs)
    except (OSError, ValueError) as err:
        raise ValueError(f"model {spec.name!r}: cannot read the config of {spec.source} ({' '.join(str(err).split())})"
                         "; a hub id needs network access, or its files in the Hugging Face cache") from err
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "encoder_layers", None)
    if not layers:
        raise ValueError(f"model {spec.name!r}: the config of {spec.source} gives no layer count "
                         "(num_hidden_layers or encoder_layers)")
    return int(layers)


def _pretrained(spec: PretrainedSpec) -> list[FeatureModel]:
    settings = {"family": "pretrained", **spec.model_dump(mode="json", exclude={"name", "layers", "family"})}
    labels = {"model": spec.name, "family": "pretrained"}
    return [FeatureModel(labels, settings, {}, _pretrained_layers(spec), spec.layers)]


def _video_task(spec, seed_offset: int = 0) -> Task:
    video = spec.video.model_dump(mode="json")
    return make_task("video", video, label=f"{spec.name}: render {video['frames']} frames")


def _videogpt(spec: VideoGPTSpec) -> tuple[list[Task], list[FeatureModel]]:
    video = _video_task(spec)
    tok = spec.tokenizer.model_dump(mode="json")
    tokenizer = make_task("tokenizer", tok, {"video": video}, label=f"{spec.name}: tokenizer")
    tokens = make_task("tokens", {}, {"video": video, "tokenizer": tokenizer}, label=f"{spec.name}: tokenize video")
    tasks, models = [video, tokenizer, tokens], []
    for point in grid(spec.axes):
        settings = {"config": spec.config, "train": spec.train, "axes": point}
        train = make_task("train", {"family": "videogpt", **settings}, {"tokens": tokens, "tokenizer": tokenizer},
                          label=f"{spec.name} {_axes_label(point)}".strip())
        tasks.append(train)
        n_layers = int(point.get("layers", spec.config.get("layers", 8)))
        labels = {"model": spec.name, "family": "videogpt", **point}
        models.append(FeatureModel(labels, {"family": "videogpt"}, {"model": train, "tokenizer": tokenizer},
                                   n_layers, spec.layers))
    return tasks, models


def _vit(spec: ViTSpec) -> tuple[list[Task], list[FeatureModel]]:
    from ..models import ViTConfig

    video = _video_task(spec)
    tasks, models = [video], []
    base = {"config": spec.config, "train": spec.train, "image_size": spec.image_size}
    for point in grid(spec.axes):
        inputs = {"video": video}
        if point.get("transfer") == "finetune":
            upstream_point = {k: v for k, v in point.items() if k not in ("transfer", "images", "augreg")}
            upstream = make_task("train", {"family": "vit", **base, "axes": {**upstream_point, "transfer": "scratch",
                                                                          "images": spec.upstream_images,
                                                                          "upstream": True}},
                                 {"video": video}, label=f"{spec.name} upstream {_axes_label(upstream_point)}".strip())
            tasks.append(upstream)
            inputs["upstream"] = upstream
        train = make_task("train", {"family": "vit", **base, "axes": point}, inputs,
                          label=f"{spec.name} {_axes_label(point)}".strip())
        tasks.append(train)
        depth = int(point.get("depth", spec.config.get("depth", ViTConfig.from_variant(point["variant"]).depth
                                                        if "variant" in point else ViTConfig().depth)))
        labels = {"model": spec.name, "family": "vit", **point}
        models.append(FeatureModel(labels, {"family": "vit", "pool": spec.pool}, {"model": train}, depth,
                                   spec.layers))
    return tasks, models


def _axes_label(point: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items())


def _layers(model: FeatureModel, study_layers) -> list[int]:
    chosen = model.layers if model.layers is not None else study_layers
    if chosen == "all":
        return list(range(model.n_layers + 1))
    return resolve_layers(None if chosen == "default" else chosen, model.n_layers)


@dataclass(frozen=True)
class Subject:
    """A subject to fit: one of the dataset's, or the group average of several (``members``)."""

    dataset: DatasetSpec
    name: str
    members: tuple[str, ...]


def _subjects(spec: DatasetSpec, data: Dataset) -> list[Subject]:
    chosen = data.subjects if spec.subjects == "all" else list(spec.subjects)
    unknown = [s for s in chosen if s not in data.subjects]
    if unknown:
        raise ValueError(f"dataset {spec.name!r}: subjects {unknown} are not in it; it has {data.subjects}")
    out = [Subject(spec, s, (s,)) for s in chosen] if spec.individual else []
    if spec.group_average:
        _check_group(spec, data, chosen)
        out.append(Subject(spec, GROUP, tuple(chosen)))
    return out


def _check_group(spec: DatasetSpec, data: Dataset, members: list[str]) -> None:
    """Members of a group average must share their runs: names, stimuli, lengths, splits."""
    shape = [(r.name, r.stimulus, r.n_trs, r.split) for r in data.runs_of(members[0])]
    for member in members[1:]:
        other = [(r.name, r.stimulus, r.n_trs, r.split) for r in data.runs_of(member)]
        if other != shape:
            raise ValueError(f"dataset {spec.name!r}: group_average needs subjects with the same runs; {member} has "
                             f"{other} but {members[0]} has {shape}")


def scored_runs(data: Dataset, subject: Subject, evaluation) -> tuple[str, list]:
    """The evaluation actually used ("test-runs" or "folds-k") and the runs it scores on."""
    runs = data.runs_of(subject.members[0])
    tests = [r for r in runs if r.split == "test"]
    if evaluation == "test-runs" or (evaluation == "auto" and tests):
        if not tests:
            raise ValueError(f"dataset {subject.dataset.name!r}, subject {subject.members[0]}: evaluation "
                             "'test-runs' but the subject has no test runs")
        return "test-runs", tests
    folds = evaluation["folds"] if isinstance(evaluation, dict) else 5
    return f"folds-{folds}", [r for r in runs if r.split == "train"]


def _fmri_sizes(study: StudySpec, data: Dataset, subject: Subject, evaluation: str) -> list:
    """Sizes of this subject's fMRI training data, each checked against what it has."""
    train = [r for r in data.runs_of(subject.members[0]) if r.split == "train"]
    available = len(train) if study.fmri.unit == "runs" else sum(r.n_trs for r in train)
    sizes = []
    for size in study.fmri.sizes:
        if size != "all" and size > available:
            raise ValueError(f"fmri size {size} {study.fmri.unit}: dataset {subject.dataset.name!r}, subject "
                             f"{subject.name} has {available} training {study.fmri.unit}")
        if size != "all" and evaluation.startswith("folds") and study.fmri.unit == "runs":
            raise ValueError("fmri sizes in runs need test runs to score on; with evaluation by folds give sizes in "
                             "trs (each fold's training data is cut to that many TRs)")
        sizes.append(size)
    return sizes


@dataclass(frozen=True)
class Plan:
    """The tasks of a study, in topological order, and the loaded datasets by name."""

    tasks: list[Task]
    datasets: dict[str, Dataset]

    def of_kind(self, kind: str) -> list[Task]:
        return [t for t in self.tasks if t.kind == kind]


def _models(study: StudySpec) -> tuple[list[Task], list[FeatureModel]]:
    tasks, models = [], []
    for spec in study.models:
        if isinstance(spec, PretrainedSpec):
            models += _pretrained(spec)
        else:
            more, found = (_videogpt if isinstance(spec, VideoGPTSpec) else _vit)(spec)
            tasks += more
            models += found
    return tasks, models


def _modality_kind(model: FeatureModel, modality: str) -> str | None:
    """The extract_features kind a model takes for a stimulus modality, or None when it cannot."""
    family = model.settings["family"]
    if family == "videogpt":
        return "clips" if modality == "video" else None
    if family == "vit":
        return "frames" if modality == "video" else None
    kind = model.settings.get("kind")
    wanted = {"text": ("words", "segments"), "audio": ("audio",)}.get(modality, ())
    if kind is None:
        return wanted[0] if wanted else None
    return kind if kind in wanted else None


def _encoding_settings(study: StudySpec) -> dict:
    encoding = study.encoding.model_dump(mode="json", exclude={"evaluation", "alphas"})
    return {**encoding, "alphas": study.encoding.alpha_grid()}


def plan_study(study: StudySpec) -> Plan:
    """Every task of ``study``, inputs before the tasks that read them."""
    datasets = {spec.name: dataset_of(spec) for spec in study.datasets}
    tasks, models = _models(study)
    fits, ceilings = [], {}
    for spec in study.datasets:
        data = datasets[spec.name]
        dataset = spec.model_dump(mode="json", include={"name", "loader", "settings"})
        for model in models:
            features = _features_tasks(model, data, dataset, study)
            if not features:
                continue
            tasks += features.values()
            for subject in _subjects(spec, data):
                evaluation, scored = scored_runs(data, subject, study.encoding.evaluation)
                ceiling = ceilings.setdefault((spec.name, subject.name), _ceiling_task(dataset, subject, evaluation,
                                                                                      data, study))
                for layer in _layers(model, study.layers):
                    for size in _fmri_sizes(study, data, subject, evaluation):
                        fits.append(_fit_task(study, dataset, subject, evaluation, model, features, layer, size,
                                              ceiling))
    tasks += list(ceilings.values()) + [fit for fit, _ in fits]
    tasks.append(_collect_task(study, fits))
    return Plan(topological(tasks), datasets)


def _features_tasks(model: FeatureModel, data: Dataset, dataset: dict, study: StudySpec) -> dict[str, Task]:
    out = {}
    layers = _layers(model, study.layers)
    for stimulus in data.stimuli.values():
        kind = _modality_kind(model, stimulus.modality)
        if kind is None:
            continue
        settings = {"dataset": dataset, "stimulus": stimulus.id, "kind": kind, "layers": layers,
                    "model": model.settings}
        label = f"features {model.labels['model']} {_axes_label(_axes(model))} on {dataset['name']}/{stimulus.id}"
        out[stimulus.id] = make_task("features", settings, model.inputs, label=" ".join(label.split()))
    return out


def _axes(model: FeatureModel) -> dict:
    return {k: v for k, v in model.labels.items() if k not in ("model", "family")}


def _ceiling_task(dataset: dict, subject: Subject, evaluation: str, data: Dataset, study: StudySpec) -> Task:
    settings = {"dataset": dataset, "subject": subject.name, "members": list(subject.members),
                "all_subjects": data.subjects, "evaluation": evaluation, "zscore": study.encoding.zscore}
    return make_task("ceiling", settings, label=f"ceiling {dataset['name']}/{subject.name}")


def _fit_task(study, dataset, subject, evaluation, model, features, layer, size, ceiling):
    runs = subject.members[0]
    needed = {f"features:{r.stimulus}": features[r.stimulus] for r in dataset_of(dataset).runs_of(runs)}
    settings = {"dataset": dataset, "subject": subject.name, "members": list(subject.members), "layer": layer,
                "fmri": {"unit": study.fmri.unit, "size": size}, "evaluation": evaluation,
                "alignment": study.alignment.model_dump(mode="json"), "encoding": _encoding_settings(study),
                "device": study.device}
    label = f"fit {model.labels['model']} {_axes_label(_axes(model))} layer {layer} {dataset['name']}/{subject.name} " \
            f"fmri={size}"
    fit = make_task("fit", settings, needed, label=" ".join(label.split()))
    row = {"dataset": dataset["name"], "subject": subject.name, "layer": layer, "fmri_unit": study.fmri.unit,
           "fmri_size": size, "evaluation": evaluation, **model.labels}
    return fit, {"row": row, "fit": fit, "ceiling": ceiling, "model": model.inputs.get("model"),
                 "features": next(iter(needed.values()))}


def _collect_task(study: StudySpec, fits: list) -> Task:
    rows, inputs = [], {}
    for i, (fit, info) in enumerate(fits):
        roles = {"fit": f"fit{i}", "ceiling": f"ceiling:{info['ceiling'].key}", "features": f"features:{info['features'].key}"}
        inputs[roles["fit"]], inputs[roles["ceiling"]] = fit, info["ceiling"]
        inputs[roles["features"]] = info["features"]
        if info["model"] is not None:
            roles["model"] = f"model:{info['model'].key}"
            inputs[roles["model"]] = info["model"]
        rows.append({"labels": info["row"], "roles": roles})
    settings = {"rows": rows, "scoring": study.scoring.model_dump(mode="json")}
    return make_task("collect", settings, inputs, label=f"collect {len(rows)} fits")
