"""The ``vit`` family (Steiner et al. 2021, "How to train your ViT"): a grid of ViTs trained with AugReg's
recipes to classify procedural game frames by scene palette, from scratch or fine-tuned from an upstream run;
a feature is a frame's class token (or mean patch token) at a block's output."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ...data import FrameStore, trainable_frames
from ..fields import Spec
from ..tasks import make_task
from ._trainable import (TrainableSpec, axes_label, build_config, check_axes, check_fits, checkpoint_sizes,
                         fit_model, grid, split_clips, train_config, trained_path, video_task)
from .base import Expansion, Extracted, Family, FeatureModel, Roles, model_sizes, register_family

__all__ = ["ViTSpec"]


class ViTSpec(TrainableSpec):
    """A grid of ViTs (AugReg's recipes) trained to classify procedural game frames by scene palette.

    Axes: ``variant`` ("Ti/16", ...), ``augreg`` (a level of :data:`cortexscale.train.AUGREG_LEVELS`),
    ``images`` (training data), ``transfer`` ("scratch" or "finetune" from an upstream run on
    ``upstream_images`` frames), ``precision``, ``seed``, any ViTConfig or TrainConfig field.
    """

    family: Literal["vit"]
    image_size: int = Field(default=32, gt=0)
    train: dict = {"epochs": 2, "lr": 1e-3, "batch_size": 32}
    upstream_images: int = Field(default=2048, gt=0)
    pool: Literal["cls", "mean"] = "cls"

    @field_validator("axes")
    @classmethod
    def _axes(cls, axes):
        from ...models import ViTConfig
        from ...train import AUGREG_LEVELS, TrainConfig

        known = (set(ViTConfig.__dataclass_fields__) | set(TrainConfig.__dataclass_fields__)
                 | {"variant", "augreg", "images", "transfer"})
        axes = check_axes(axes, known, "vit")
        bad = [level for level in axes.get("augreg", []) if level not in AUGREG_LEVELS]
        if bad:
            raise ValueError(f"unknown augreg level(s) {bad}; levels are {list(AUGREG_LEVELS)}")
        bad = [t for t in axes.get("transfer", []) if t not in ("scratch", "finetune")]
        if bad:
            raise ValueError(f"transfer must be 'scratch' or 'finetune', got {bad}")
        return axes

    @model_validator(mode="after")
    def _fits_the_video(self):
        available = trainable_frames(self.video.frames, 1)
        where = f"video.frames={self.video.frames}, after the held-out frames"
        check_fits(self.axes.get("images", []), available, "axes.images", where)
        if "finetune" in self.axes.get("transfer", []):
            check_fits([self.upstream_images], available, "upstream_images", where)
        return self

    def configs(self, point: dict) -> tuple:
        return model_config(self.config, self.image_size, point), train_config(self.train, point)


def model_config(config: dict, image_size: int, point: dict):
    """The :class:`~cortexscale.models.ViTConfig` of a grid point: its variant (or the default) under the base
    ``config``, with the point's ViTConfig fields over both."""
    from ...data.procedural import PALETTES
    from ...models import ViTConfig

    overrides = {"image_size": image_size, "n_classes": len(PALETTES), **config}
    base = ViTConfig.from_variant(point["variant"], **overrides) if "variant" in point else ViTConfig(**overrides)
    return build_config(ViTConfig, base.to_dict(), point)


class ViTTrainSettings(Spec):
    """What the ``train`` stage of one ViT reads (``upstream``: the run a fine-tuned point starts from)."""

    family: Literal["vit"]
    name: str
    config: dict
    train: dict
    image_size: int
    axes: dict
    upstream: bool = False


def _train_task(spec: ViTSpec, point: dict, inputs: dict, label: str, upstream: bool = False):
    train = spec.train if upstream else spec.train_settings(point)
    settings = ViTTrainSettings(family="vit", name=spec.name, config=spec.config, train=train,
                                image_size=spec.image_size, axes=point, upstream=upstream)
    return make_task("train", settings.model_dump(mode="json"), inputs, label=label.strip())


def expand(spec: ViTSpec, study) -> Expansion:
    video = video_task(spec)
    tasks, models = [video], []
    for point in grid(spec.axes):
        inputs = {"video": video}
        if point.get("transfer") == "finetune":
            kept = {k: v for k, v in point.items() if k not in ("transfer", "images", "augreg")}
            upstream = _train_task(spec, {**kept, "transfer": "scratch", "images": spec.upstream_images}, inputs,
                                   f"{spec.name} upstream {axes_label(kept)}", upstream=True)
            tasks.append(upstream)
            inputs = {**inputs, "upstream": upstream}
        train = _train_task(spec, point, inputs, f"{spec.name} {axes_label(point)}")
        tasks.append(train)
        config = spec.configs(point)[0]
        models += spec.feature_models("vit", point, {"pool": spec.pool}, {"model": train}, config.depth, config.width)
    return Expansion(tasks, models)


def kind_for(model: FeatureModel, stimulus) -> str | None:
    return "frames" if stimulus.modality == "video" else None


def _frames_and_labels(folder, starts: np.ndarray, image_size: int):
    """Images (n, 3, S, S) in [-1, 1] and palette labels (n,) of the frames at ``starts``."""
    import pandas as pd
    import torch

    from ...data.video import resize_frames
    from ...train import TensorDictDataset

    store = FrameStore.open(folder / "frames")
    palette = pd.read_parquet(folder / "latents.parquet")["palette"].to_numpy()
    images = resize_frames(np.asarray(store.frames[np.sort(starts)]), (image_size, image_size))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    return TensorDictDataset({"image": x, "label": torch.from_numpy(palette[np.sort(starts)]).long()})


def train(settings: dict, context) -> dict:
    import torch

    from ...models import ViT
    from ...train import AugReg, load_for_transfer

    s = ViTTrainSettings.model_validate(settings)
    point = s.axes
    store = FrameStore.open(context.inputs["video"] / "frames")
    train_starts, val_starts = split_clips(len(store), 1, point.get("images"), seed=1)
    train_data = _frames_and_labels(context.inputs["video"], train_starts, s.image_size)
    val_data = _frames_and_labels(context.inputs["video"], val_starts, s.image_size)
    cfg = train_config(s.train, point, context.device)
    config = model_config(s.config, s.image_size, point)
    torch.manual_seed(cfg.seed)
    if "upstream" in context.inputs:
        model = load_for_transfer(context.inputs["upstream"] / "run", n_classes=config.n_classes, seed=cfg.seed,
                                  device="cpu")
    else:
        model = ViT(config)
    level = point.get("augreg", "none")
    augment = AugReg(level, n_classes=config.n_classes) if level != "none" else None
    result = fit_model(model, train_data, cfg, context.out, val_data, augment)
    return {**result, "train_data": int(len(train_starts)), "precision": cfg.precision}


def features(settings: dict, stimulus, layers: list[int], kind: str, context) -> Extracted:
    from ...features import extract_features
    from ...models import load_pretrained

    store = FrameStore.open(stimulus.frames)
    events = stimulus.events.assign(value=stimulus.events["value"].to_numpy(dtype=np.int64))
    model = load_pretrained(trained_path(context, settings), device=context.device)
    feats = extract_features(model, events, layers, kind="frames", frames=store, pool=settings["pool"],
                             device=context.device, progress=False)
    return Extracted(feats, events, {**model_sizes(model), **checkpoint_sizes(context, settings)})


ROLES = Roles(data=("images",), slopes=("hidden", "layers", "heads", "images"),
              baselines={"precision": "fp32", "augreg": "none", "transfer": "scratch"})

FAMILY = register_family(Family("vit", ViTSpec, expand, kind_for, features, ROLES, train))
