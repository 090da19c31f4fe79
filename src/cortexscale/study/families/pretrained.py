"""The ``pretrained`` family: a language or speech model from the Hugging Face hub, a local folder, a ``.gguf``
file or an installed package, one feature model per block of the study file."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...data import audio_steps
from ...errors import ModelError
from ...runtime import resolve_precision
from ..fields import FieldError, ModelSpec
from ..ladders import LADDERS, Ladder, Rung, ladder_rungs
from .base import Expansion, Extracted, Family, FeatureModel, model_sizes, register_family

__all__ = ["PretrainedSpec", "resolve_source"]


class PretrainedSpec(ModelSpec):
    """A pretrained feature model: a Hugging Face id, a local folder or ``.gguf`` file, or
    ``package:<module>/<path>`` inside an installed package (a glob like ``*.gguf`` is allowed).

    ``params`` (parameter count) is read from the model when not given; ``train_tokens`` (its training data,
    when known) becomes the results' ``train_data``. ``kind``: "audio" for a speech model (the default when
    its config is one: Whisper, HuBERT, WavLM, wav2vec 2.0), which hears a stimulus's sound; for a language
    model "words" (default) or "segments" (timed text, mean-pooled). ``causal`` forces the language path (see
    :func:`cortexscale.features.extract_features`).

    ``ladder`` names a ladder of :data:`cortexscale.study.ladders.LADDERS` in place of ``source``: the block
    becomes one model per rung (``sizes``: a part of it), named ``<name>-<size>``, each with its hub id,
    parameter counts, training data and layer count from the table (planned offline) and a precision fit for
    its size unless ``dtype`` is given; its results gain a ``ladder`` column.

    ``revision`` (one or a list) loads hub revisions of each model (Pythia's ``step1000``, ...; downloading
    needs network access): one feature model per revision, its results labelled ``revision``; on the Pythia
    ladder a ``step<N>`` revision's training data is the tokens of its N steps.
    """

    family: Literal["pretrained"]
    source: str | None = None
    ladder: str | None = None
    sizes: list[str] | None = Field(default=None, min_length=1)
    revision: str | list[str] | None = None
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

    @field_validator("revision")
    @classmethod
    def _revision(cls, value):
        revisions = [value] if isinstance(value, str) else value or []
        if value is not None and (not revisions or not all(r.strip() for r in revisions)):
            raise ValueError("revision takes a hub revision (branch, tag or commit) or a non-empty list of them")
        twice = sorted({r for r in revisions if revisions.count(r) > 1})
        if twice:
            raise ValueError(f"revision names {twice} more than once")
        return value

    def revisions(self) -> list[str]:
        """The block's hub revisions, as a list (empty without any)."""
        return [] if self.revision is None else [self.revision] if isinstance(self.revision, str) else self.revision

    @field_validator("ladder")
    @classmethod
    def _known_ladder(cls, name):
        if name is not None:
            ladder_rungs(name)
        return name

    @model_validator(mode="after")
    def _source_or_ladder(self):
        if (self.source is None) == (self.ladder is None):
            raise ValueError("give a model's source or a ladder, one of the two")
        if self.ladder is None:
            if self.sizes is not None:
                raise ValueError("sizes choose rungs of a ladder; this model has a source")
            return self
        taken = [field for field in ("params", "train_tokens") if getattr(self, field) is not None]
        if taken:
            raise ValueError(f"ladder {self.ladder!r} gives each rung's {taken[0]}; leave it out")
        ladder_rungs(self.ladder, self.sizes)
        return self

    def model_names(self) -> list[str]:
        """The block's name, or one ``<name>-<size>`` per rung of its ladder."""
        if self.ladder is None:
            return [self.name]
        return [f"{self.name}-{rung.size}" for rung in ladder_rungs(self.ladder, self.sizes)[1]]


def resolve_source(source: str) -> str:
    """A model source with ``package:<module>/<path>`` resolved inside the installed package (one glob match)."""
    if not source.startswith("package:"):
        return source
    module, _, inner = source.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model source {source!r}: package {module!r} is not installed")
    base = Path(spec.submodule_search_locations[0])
    matches = sorted(base.glob(inner)) if inner else [base]
    if len(matches) != 1:
        raise ModelError(f"model source {source!r} matches {len(matches)} paths in {base}; it must match one")
    return str(matches[0])


def _read_facts(source: Path, kwargs: dict) -> dict:
    """What planning needs of a model's Hugging Face config (no weights loaded): layer count, feature width,
    model type and whether it is a speech encoder."""
    from transformers import AutoConfig

    from ...features import is_speech_config

    config = AutoConfig.from_pretrained(source.parent if kwargs else source, **kwargs)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "encoder_layers", None)
    width = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    return {"layers": int(layers) if layers else None, "width": int(width) if width else None,
            "model_type": getattr(config, "model_type", None), "speech": bool(is_speech_config(config))}


def _facts(spec: PretrainedSpec) -> dict:
    """The model's :func:`_read_facts`, kept on disk for a local model (a rerun plans without parsing it); a
    config that cannot be read is a FieldError."""
    from ...features import cached_facts

    try:
        source = Path(resolve_source(spec.source))
    except ModelError as err:
        raise FieldError(("source",), f"model {spec.name!r}: {err}", ModelError) from err
    kwargs = {"gguf_file": source.name} if source.suffix == ".gguf" else {}
    try:
        if source.exists():
            return cached_facts(source, lambda: _read_facts(source, kwargs))
        return _read_facts(source, kwargs)
    except (OSError, ValueError) as err:
        raise FieldError(("source",), f"model {spec.name!r}: cannot read the config of {spec.source} "
                         f"({' '.join(str(err).split())}); a hub id needs network access, or its files in the "
                         "Hugging Face cache", ModelError) from err


def _layer_count(spec: PretrainedSpec, facts: dict) -> int:
    if not facts["layers"]:
        raise FieldError(("source",), f"model {spec.name!r}: the config of {spec.source} gives no layer count "
                         "(num_hidden_layers or encoder_layers)", ModelError)
    return facts["layers"]


def _kind(spec: PretrainedSpec, facts: dict) -> str | None:
    """``audio`` for a speech model; a language model's kind as given (None: words for text)."""
    speech = facts["speech"]
    if speech and spec.kind not in (None, "audio"):
        raise FieldError(("kind",), f"model {spec.name!r} is a speech model ({facts['model_type']}): it takes "
                         f"kind audio, not {spec.kind}", ModelError)
    if not speech and spec.kind == "audio":
        raise FieldError(("kind",), f"model {spec.name!r} is not a speech model ({facts['model_type']}); kind "
                         "audio needs Whisper, HuBERT, WavLM, wav2vec 2.0 or another speech encoder", ModelError)
    return "audio" if speech else spec.kind


_OWN = {"name", "layers", "family", "ladder", "sizes", "revision"}


def expand(spec: PretrainedSpec, study) -> Expansion:
    if spec.ladder is not None:
        ladder, rungs = ladder_rungs(spec.ladder, spec.sizes)
        models = [_rung_model(spec, ladder, rung) for rung in rungs]
    else:
        facts = _facts(spec)
        settings = spec.model_dump(mode="json", exclude=_OWN)
        settings["kind"] = _kind(spec, facts)
        models = [FeatureModel("pretrained", spec.name, {"model": spec.name, "family": "pretrained"}, settings, {},
                               _layer_count(spec, facts), spec.layers, width=facts["width"])]
    return Expansion([], [revised for model in models for revised in _revisions(spec, model)])


def _revisions(spec: PretrainedSpec, model: FeatureModel) -> list[FeatureModel]:
    """The model at each of the block's hub revisions (labelled ``revision``); itself without any. A Pythia
    revision ``step<N>`` has seen N steps of its ladder's tokens."""
    if spec.revision is None:
        return [model]
    out = []
    for revision in spec.revisions():
        settings = {**model.settings, "revision": revision}
        step = re.fullmatch(r"step(\d+)", revision)
        tokens = LADDERS[spec.ladder].step_tokens if spec.ladder else None
        if step and tokens:
            settings["train_tokens"] = float(int(step.group(1)) * tokens)
        out.append(dataclasses.replace(model, labels={**model.labels, "revision": revision}, settings=settings))
    return out


def _rung_model(spec: PretrainedSpec, ladder: Ladder, rung: Rung) -> FeatureModel:
    """One rung of a ladder block as a feature model, from the table alone (no config read)."""
    name = f"{spec.name}-{rung.size}"  # as PretrainedSpec.model_names
    settings = spec.model_dump(mode="json", exclude=_OWN)
    settings.update(source=rung.source, params=float(rung.params), train_tokens=rung.train_data,
                    params_non_embedding=float(rung.params_non_embedding), dtype=spec.dtype or ladder.dtype(rung),
                    kind=_kind(spec, {"speech": ladder.speech, "model_type": rung.model_type}))
    labels = {"model": name, "family": "pretrained", "ladder": ladder.name}
    return FeatureModel("pretrained", name, labels, settings, {}, rung.layers, spec.layers, width=rung.width)


def kind_for(model: FeatureModel, stimulus) -> str | None:
    """audio for a speech model on a stimulus with sound; words (or segments) for a language model on text."""
    kind = model.settings["kind"]
    if kind == "audio":
        return "audio" if stimulus.modality == "audio" or stimulus.audio is not None else None
    return (kind or "words") if stimulus.modality == "text" else None


def features(settings: dict, stimulus, layers: list[int], kind: str, context) -> Extracted:
    from ...features import extract_features, load_audio_model, load_language_model
    source = resolve_source(settings["source"])
    if kind == "audio":
        model = load_audio_model(source, device=context.device, dtype=settings["dtype"],
                                 revision=settings.get("revision"))
        events = audio_steps(stimulus.sound_events(), stride=0.1)
    else:
        model = load_language_model(source, causal=settings["causal"], device=context.device, dtype=settings["dtype"],
                                    revision=settings.get("revision"))
        events = stimulus.events
    feats = extract_features(model, events, layers, kind=kind, context=tuple(settings["context"]),
                             window=tuple(settings["window"]), audio_window=settings["audio_window"],
                             device=context.device, progress=False)
    sizes = model_sizes(model.model)
    if settings["params"]:
        sizes["params"] = float(settings["params"])
    if settings.get("params_non_embedding"):
        sizes["params_non_embedding"] = float(settings["params_non_embedding"])
    if settings["train_tokens"]:
        sizes["train_data"] = float(settings["train_tokens"])
    return Extracted(feats, events, sizes)


FAMILY = register_family(Family("pretrained", PretrainedSpec, expand, kind_for, features))
