"""The ``videogpt`` family (Ahmadi et al. 2024): a grid of video GPTs over one VQ-VAE tokenizer, trained on the
first ``frames`` frames of a procedural game video; a feature is a clip's token-averaged block output.

Its tasks: the video, the tokenizer trained on it, the video's tokens, then one ``train`` task per grid point.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from ...data import FrameStore, trainable_frames
from ...runtime import resolve_device
from ..fields import Spec
from ..tasks import make_task, stage
from ._trainable import (TrainableSpec, axes_label, build_config, check_axes, check_fits, checkpoint_sizes,
                         fit_model, grid, split_clips, train_config, trained_path, video_task)
from .base import Expansion, Extracted, Family, FeatureModel, Roles, model_sizes, register_family

__all__ = ["TokenizerSpec", "VideoGPTSpec"]


class TokenizerSpec(Spec):
    """The VQ-VAE tokenizer of a video family: its config fields, its training settings and how many frames
    of the video it trains on (default all)."""

    config: dict = {}
    train: dict = {"steps": 300, "lr": 3e-3, "batch_size": 8}
    frames: int | None = Field(default=None, gt=0)


class VideoGPTSpec(TrainableSpec):
    """A grid of video GPTs over one tokenizer, trained on the first ``frames`` frames of the video.

    Axes: any :class:`~cortexscale.models.VideoGPTConfig` field (hidden, layers, heads, ...), ``frames``
    (training data), ``precision``, ``seed``, and any :class:`~cortexscale.train.TrainConfig` field.
    """

    family: Literal["videogpt"]
    tokenizer: TokenizerSpec = TokenizerSpec()
    train: dict = {"steps": 300, "lr": 3e-3, "batch_size": 16}

    @field_validator("axes")
    @classmethod
    def _axes(cls, axes):
        from ...models import VideoGPTConfig
        from ...train import TrainConfig

        known = set(VideoGPTConfig.__dataclass_fields__) | set(TrainConfig.__dataclass_fields__) | {"frames"}
        return check_axes(axes, known, "videogpt")

    @model_validator(mode="after")
    def _fits_the_video(self):
        length = self.tokenizer_config().frames
        where = f"video.frames={self.video.frames} in clips of {length}, after the held-out clips"
        check_fits(self.axes.get("frames", []), trainable_frames(self.video.frames, length), "axes.frames", where)
        if self.tokenizer.frames is not None and self.tokenizer.frames > self.video.frames:
            raise ValueError(f"tokenizer.frames={self.tokenizer.frames} exceeds video.frames={self.video.frames}")
        return self

    def tokenizer_config(self):
        """The tokenizer's :class:`~cortexscale.models.VQVAEConfig` (its size defaults to the video's)."""
        from ...models import VQVAEConfig

        try:
            return VQVAEConfig(**{"size": self.video.size, **self.tokenizer.config})
        except (ValueError, TypeError) as err:
            raise ValueError(f"tokenizer.config: {err}") from None

    def shared_configs(self) -> None:
        self.tokenizer_config()

    def configs(self, point: dict) -> tuple:
        from ...models import VideoGPTConfig

        tok = self.tokenizer_config()
        tokens = (tok.frames // tok.temporal_downsample, tok.size // tok.spatial_downsample,
                  tok.size // tok.spatial_downsample)
        base = {"grid": tokens, "vocab_size": tok.codebook_size, **self.config}
        return build_config(VideoGPTConfig, base, point), train_config(self.train, point)


class GPTTrainSettings(Spec):
    """What the ``train`` stage of one video GPT reads: the base config, the training settings, its point."""

    family: Literal["videogpt"]
    name: str
    config: dict
    train: dict
    axes: dict


def expand(spec: VideoGPTSpec, study) -> Expansion:
    video = video_task(spec)
    tokenizer = make_task("tokenizer", spec.tokenizer.model_dump(mode="json"), {"video": video},
                          label=f"{spec.name}: tokenizer")
    tokens = make_task("tokens", {}, {"video": video, "tokenizer": tokenizer}, label=f"{spec.name}: tokenize video")
    tasks, models = [video, tokenizer, tokens], []
    for point in grid(spec.axes):
        settings = GPTTrainSettings(family="videogpt", name=spec.name, config=spec.config,
                                    train=spec.train_settings(point), axes=point)
        train = make_task("train", settings.model_dump(mode="json"), {"tokens": tokens, "tokenizer": tokenizer},
                          label=f"{spec.name} {axes_label(point)}".strip())
        tasks.append(train)
        config = spec.configs(point)[0]
        models += spec.feature_models("videogpt", point, {}, {"model": train, "tokenizer": tokenizer},
                                      config.layers, config.hidden)
    return Expansion(tasks, models)


def kind_for(model: FeatureModel, stimulus) -> str | None:
    return "clips" if stimulus.modality == "video" else None


@stage("tokenizer", version=1, accelerated=True)
def tokenizer(task, context) -> dict:
    import torch

    from ...models import VQVAE, VQVAEConfig

    s = TokenizerSpec.model_validate(task.settings)
    store = FrameStore.open(context.inputs["video"] / "frames")
    config = VQVAEConfig(**{"size": store.frames.shape[1], **s.config})
    starts, _ = split_clips(s.frames or len(store), config.frames, None)
    torch.manual_seed(0)
    return fit_model(VQVAE(config), store.clips(config.frames, starts=np.sort(starts)),
                     train_config(s.train, {}, context.device), context.out)


@stage("tokens", version=1, accelerated=True)
def tokens(task, context) -> dict:
    import torch

    from ...models import load_pretrained

    store = FrameStore.open(context.inputs["video"] / "frames")
    vqvae = load_pretrained(context.inputs["tokenizer"] / "run", device=context.device).eval()
    length = vqvae.config.frames
    clips = store.clips(length, length)
    ids = []
    with torch.inference_mode():
        for a in range(0, len(clips), 32):
            batch = torch.stack([clips[i]["video"] for i in range(a, min(a + 32, len(clips)))])
            ids.append(vqvae.encode(batch.to(resolve_device(context.device))).cpu())
    tokens = torch.cat(ids).numpy().astype(np.int32)
    np.save(context.out / "tokens.npy", tokens)
    return {"clips": int(len(tokens)), "clip_frames": length, "codes_used": int(len(np.unique(tokens)))}


def _gpt_data(tokens: np.ndarray, clips: np.ndarray, cond: bool):
    import torch

    from ...train import TensorDictDataset

    data = {"tokens": torch.from_numpy(tokens[clips]).long()}
    if cond:
        data["cond_tokens"] = torch.from_numpy(tokens[np.maximum(clips - 1, 0)]).long()
    return TensorDictDataset(data)


def train(settings: dict, context) -> dict:
    import torch

    from ...models import VideoGPT, VideoGPTConfig, VQVAEConfig

    s = GPTTrainSettings.model_validate(settings)
    tokens = np.load(context.inputs["tokens"] / "tokens.npy")
    length = context.input_meta("tokens")["result"]["clip_frames"]
    train_starts, val_starts = split_clips(len(tokens) * length, length, s.axes.get("frames"))
    vocab = context.input_meta("tokenizer")["settings"]["config"].get("codebook_size", VQVAEConfig().codebook_size)
    config = build_config(VideoGPTConfig, {"grid": list(tokens.shape[1:]), "vocab_size": vocab, **s.config}, s.axes)
    cfg = train_config(s.train, s.axes, context.device)
    torch.manual_seed(cfg.seed)
    result = fit_model(VideoGPT(config), _gpt_data(tokens, train_starts // length, config.cond), cfg, context.out,
                       _gpt_data(tokens, val_starts // length, config.cond))
    return {**result, "train_data": int(len(train_starts) * length),
            "train_tokens": int(len(train_starts) * config.n_tokens), "precision": cfg.precision}


def features(settings: dict, stimulus, layers: list[int], kind: str, context) -> Extracted:
    """One feature per clip of the tokenizer's length, from the clip's first frame (onset) for its length."""
    from ...features import extract_features
    from ...models import load_pretrained

    store = FrameStore.open(stimulus.frames)
    frames = stimulus.events["value"].to_numpy(dtype=np.int64)
    onsets = stimulus.events["onset"].to_numpy()
    model = load_pretrained(trained_path(context, settings), device=context.device)
    vqvae = load_pretrained(context.inputs["tokenizer"] / "run", device=context.device)
    length = vqvae.config.frames
    starts = np.arange(0, len(frames) - length + 1, length)
    events = pd.DataFrame({"onset": onsets[starts], "duration": length / store.fps, "value": frames[starts]})
    feats = extract_features((vqvae, model), events, layers, kind="clips", frames=store, device=context.device,
                             progress=False)
    return Extracted(feats, events, {**model_sizes(model), **checkpoint_sizes(context, settings)})


ROLES = Roles(data=("frames",), slopes=("hidden", "layers", "heads", "frames"), baselines={"precision": "fp32"})

FAMILY = register_family(Family("videogpt", VideoGPTSpec, expand, kind_for, features, ROLES, train))
