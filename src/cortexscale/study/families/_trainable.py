"""What the trainable families share: the procedural training video, a grid of axes over a base config with
named sweeps, training-size checks, and the code that trains one grid point and records its compute.

Training data sizes are nested: the subsets of one video are prefixes of one seeded order of clips
(:func:`cortexscale.data.nested_subsets`), and a validation set of clips no subset touches is held out. Each
trained model is a run folder (``run/``, see :mod:`cortexscale.models.checkpoint`); its meta records its
parameters with and without embeddings, training data, training FLOPs (``flops_per_sample`` x samples) and
training time.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ...data import FrameStore, ProceduralGame, held_out_blocks, nested_subsets, trainable_frames
from ...runtime import resolve_precision
from ..fields import ModelSpec, Spec
from ..sweeps import sweep_axes
from ..tasks import make_task, stage
from .base import FeatureModel, model_sizes

__all__ = ["TrainableSpec", "VideoSpec", "axes_label", "build_config", "check_axes", "check_fits",
           "checkpoint_sizes", "fit_model", "grid", "split_clips", "train_config", "trained_path", "video_task"]


def grid(axes: dict[str, list]) -> list[dict]:
    """Every combination of the axes' values, in order (the last axis varies fastest); [{}] without axes."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


def axes_label(point: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items())


class VideoSpec(Spec):
    """The procedural game video a video family trains on (:class:`cortexscale.data.ProceduralGame`)."""

    frames: int = Field(default=4096, gt=0)
    size: int = Field(default=32, gt=0)
    fps: float = Field(default=15.0, gt=0)
    seed: int = 1


def check_axes(axes: dict, known: set[str], family: str) -> dict:
    """``axes`` with every name known and every value list non-empty; precisions in their canonical names."""
    for name, values in axes.items():
        if name not in known:
            raise ValueError(f"unknown {family} axis {name!r}; axes are {sorted(known)}")
        if not isinstance(values, list) or not values:
            raise ValueError(f"axis {name!r} must be a non-empty list of values, got {values!r}")
    if "precision" in axes:
        axes = {**axes, "precision": [resolve_precision(p, ("fp32", "fp16", "bf16"), "precision")
                                      for p in axes["precision"]]}
    return axes


def check_fits(values, available: int, name: str, where: str) -> None:
    """Refuse training sizes larger than the ``available`` frames of the video, saying how to make room."""
    too_big = [v for v in values if isinstance(v, (int, float)) and v > available]
    if too_big:
        raise ValueError(f"{name} {too_big} exceed the {available} frames left to train on ({where}); "
                         f"raise video.frames or lower {name}")


def build_config(cls, base: dict, point: dict):
    """``cls`` (a config dataclass) of ``base`` with the point's fields of ``cls`` over it."""
    fields = cls.__dataclass_fields__
    return cls(**{**base, **{k: v for k, v in point.items() if k in fields}})


def train_config(base: dict, point: dict, device: str = "auto"):
    """The :class:`~cortexscale.train.TrainConfig` of a grid point: ``base`` with the point's training fields."""
    from ...train import TrainConfig

    fields = TrainConfig.__dataclass_fields__
    return TrainConfig(**{"device": device, "keep_last": 1, **base, **{k: v for k, v in point.items() if k in fields}})


class TrainableSpec(ModelSpec):
    """A grid of trained models: ``sweep`` names sweeps of :data:`cortexscale.study.sweeps.SWEEPS` whose axes
    come first; ``axes`` adds to them and overrides an axis of the same name. Every grid point's configs are
    built when the study is read (:meth:`configs`), so a point that cannot be built is refused before any
    compute."""

    sweep: str | list[str] | None = None
    video: VideoSpec = VideoSpec()
    config: dict = {}
    train: dict = {}
    axes: dict[str, list] = {}
    checkpoints: list[Annotated[int, Field(gt=0)]] | Literal["all"] | None = None

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

    @model_validator(mode="after")
    def _every_point_builds(self):
        self.shared_configs()
        for point in grid(self.axes):
            where = f"grid point {axes_label(point)}" if point else "its config"
            try:
                self.configs(point)
            except (ValueError, TypeError) as err:
                raise ValueError(f"{where}: {err}") from None
            self._check_checkpoints(point, where)
        return self

    def _check_checkpoints(self, point: dict, where: str) -> None:
        cfg = self.configs(point)[1]
        if self.checkpoints == "all" and (cfg.steps is None or not cfg.ckpt_every):
            raise ValueError(f"{where}: checkpoints: all takes every train.ckpt_every-th of train.steps steps; set "
                             "both (the steps must be known when the study is planned), or list the steps")
        late = [step for step in self.checkpoint_steps(point) if cfg.steps is not None and step > cfg.steps]
        if late:
            raise ValueError(f"{where}: checkpoints {late} lie past its {cfg.steps} training steps")

    def checkpoint_steps(self, point: dict) -> list[int]:
        """The training steps of a grid point whose checkpoints are feature models too (``checkpoints``)."""
        if self.checkpoints is None:
            return []
        cfg = self.configs(point)[1]
        if self.checkpoints == "all":
            return list(range(cfg.ckpt_every, cfg.steps + 1, cfg.ckpt_every))
        return sorted(set(self.checkpoints))

    def train_settings(self, point: dict) -> dict:
        """The block's ``train`` settings, keeping the checkpoints a grid point's features are taken from."""
        steps = self.checkpoint_steps(point)
        return {**self.train, "keep_steps": steps} if steps else dict(self.train)

    def feature_models(self, family: str, point: dict, settings: dict, inputs: dict, n_layers: int,
                       width: int) -> list[FeatureModel]:
        """A grid point's trained model and one feature model per checkpoint step (labelled ``step``)."""
        labels = {"model": self.name, "family": family, **point}
        final = FeatureModel(family, self.name, labels, settings, inputs, n_layers, self.layers, width=width)
        return [final] + [FeatureModel(family, self.name, {**labels, "step": step}, {**settings, "checkpoint": step},
                                       inputs, n_layers, self.layers, width=width)
                          for step in self.checkpoint_steps(point)]

    def shared_configs(self) -> None:
        """Build what every grid point shares (a tokenizer's config), raising what its constructor raises."""

    def configs(self, point: dict) -> tuple:
        """The model and training configs of one grid point (raises what their constructors raise)."""
        raise NotImplementedError


@stage("video", version=1)
def video(task, context) -> dict:
    s = VideoSpec.model_validate(task.settings)
    frames, latents = ProceduralGame(seed=s.seed, size=(s.size, s.size), fps=s.fps).render(s.frames)
    FrameStore.from_frames(frames, context.out / "frames", fps=s.fps, source=f"procedural-{s.seed}")
    latents.to_parquet(context.out / "latents.parquet", index=False)
    return {"frames": int(len(frames))}


def video_task(spec: TrainableSpec):
    return make_task("video", spec.video.model_dump(mode="json"), label=f"{spec.name}: render {spec.video.frames} "
                     "frames")


def split_clips(n_frames: int, length: int, size: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Start frames of the training clips (the first ``size`` frames' worth of one seeded order; all for None)
    and of the validation clips, both of ``length`` frames."""
    n_clips = n_frames // length
    n_val = held_out_blocks(n_clips)
    size = size or trainable_frames(n_frames, length)
    subsets = nested_subsets(n_clips * length, [size], val_size=n_val * length, seed=seed, unit=length)
    return subsets.train[size], subsets.val


def trained_path(context, settings: dict):
    """The folder a trained feature model loads from: its run (best or latest checkpoint), or, for a
    checkpoint feature model, that step's checkpoint."""
    from ...errors import ModelError

    run = context.inputs["model"] / "run"
    step = settings.get("checkpoint")
    if step is None:
        return run
    folder = run / "checkpoints" / f"step_{step:08d}"
    if not folder.is_dir():
        trained = context.input_meta("model")["result"].get("steps")
        raise ModelError(f"the checkpoint at step {step} was not kept: the model trained {trained} steps")
    return folder


def checkpoint_sizes(context, settings: dict) -> dict:
    """What a checkpoint feature model adds to its sizes: its ``step``, the FLOPs spent up to it and the
    training data seen so far (the model's training data times the share of its training samples seen)."""
    step = settings.get("checkpoint")
    if step is None:
        return {}
    summary = json.loads((trained_path(context, settings) / "summary.json").read_text())
    trained = context.input_meta("model")["result"]
    share = summary["samples"] / trained["train_samples"]
    return {"step": int(step), "train_flops": float(summary["flops"]), "train_data": float(trained["train_data"]) * share}


def fit_model(model, data, cfg, out, val=None, augment=None) -> dict:
    """Train ``model`` into ``out/run`` and record what it cost: sizes, FLOPs, samples, seconds and losses."""
    from ...train import train

    start = time.perf_counter()
    result = train(model, data, cfg, out / "run", val_data=val, augment=augment, progress=False)
    seconds = time.perf_counter() - start
    samples = result.steps * cfg.samples_per_step
    return {**model_sizes(result.model), "train_flops": float(model.flops_per_sample()) * samples,
            "train_samples": samples, "train_seconds": seconds, "steps": result.steps,
            "val_loss": result.val.get("val_loss"), "train_loss": result.train_loss}
