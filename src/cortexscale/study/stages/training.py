"""Stages that make trainable feature models: the training video, the VQ-VAE tokenizer, the video's tokens,
and one ``train`` task per grid point (video GPTs on tokens; ViTs on frames, from scratch or fine-tuned).

Training data sizes are nested: the subsets of one video are prefixes of one seeded order of clips
(:func:`cortexscale.data.nested_subsets`), and a validation set of clips no subset touches is held out.
Each trained model is a run folder (``run/``, see :mod:`cortexscale.models.checkpoint`); its meta records
its parameters with and without embeddings, training data, training FLOPs (``flops_per_sample`` x samples)
and training time.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ...data import FrameStore, ProceduralGame, held_out_blocks, nested_subsets, trainable_frames
from ...data.procedural import PALETTES
from ...models import VQVAE, VQVAEConfig, VideoGPT, VideoGPTConfig, ViT, ViTConfig, load_pretrained
from ...runtime import resolve_device
from ...train import AugReg, TensorDictDataset, TrainConfig, load_for_transfer, train
from ..tasks import stage
from .features import model_sizes

__all__ = ["split_clips"]


@stage("video", version=1)
def video(task, context) -> dict:
    s = task.settings
    frames, latents = ProceduralGame(seed=s["seed"], size=(s["size"], s["size"]), fps=s["fps"]).render(s["frames"])
    FrameStore.from_frames(frames, context.out / "frames", fps=s["fps"], source=f"procedural-{s['seed']}")
    latents.to_parquet(context.out / "latents.parquet", index=False)
    return {"frames": int(len(frames))}


def split_clips(n_frames: int, length: int, size: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Start frames of the training clips (the first ``size`` frames' worth of one seeded order; all for None)
    and of the validation clips, both of ``length`` frames."""
    n_clips = n_frames // length
    n_val = held_out_blocks(n_clips)
    size = size or trainable_frames(n_frames, length)
    subsets = nested_subsets(n_clips * length, [size], val_size=n_val * length, seed=seed, unit=length)
    return subsets.train[size], subsets.val


def _config(cfg_cls, base: dict, point: dict):
    fields = cfg_cls.__dataclass_fields__
    return cfg_cls(**{**base, **{k: v for k, v in point.items() if k in fields}})


def _train_config(base: dict, point: dict, device: str) -> TrainConfig:
    settings = {**base, **{k: v for k, v in point.items() if k in TrainConfig.__dataclass_fields__}}
    return TrainConfig(**{"device": device, "keep_last": 1, **settings})


def _fit(model, data, cfg: TrainConfig, out, val=None, augment=None) -> dict:
    start = time.perf_counter()
    result = train(model, data, cfg, out / "run", val_data=val, augment=augment, progress=False)
    seconds = time.perf_counter() - start
    samples = result.steps * cfg.samples_per_step
    return {**model_sizes(result.model), "train_flops": float(model.flops_per_sample()) * samples,
            "train_samples": samples, "train_seconds": seconds, "steps": result.steps,
            "val_loss": result.val.get("val_loss"), "train_loss": result.train_loss}


@stage("tokenizer", version=1, accelerated=True)
def tokenizer(task, context) -> dict:
    s = task.settings
    store = FrameStore.open(context.inputs["video"] / "frames")
    config = VQVAEConfig(**{"size": store.frames.shape[1], **s["config"]})
    starts, _ = split_clips(s.get("frames") or len(store), config.frames, None)
    torch.manual_seed(0)
    cfg = _train_config(s["train"], {}, context.device)
    return _fit(VQVAE(config), store.clips(config.frames, starts=np.sort(starts)), cfg, context.out)


@stage("tokens", version=1, accelerated=True)
def tokens(task, context) -> dict:
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


def _gpt_data(tokens: np.ndarray, clips: np.ndarray, cond: bool) -> TensorDictDataset:
    data = {"tokens": torch.from_numpy(tokens[clips]).long()}
    if cond:
        data["cond_tokens"] = torch.from_numpy(tokens[np.maximum(clips - 1, 0)]).long()
    return TensorDictDataset(data)


def _train_videogpt(s: dict, context) -> dict:
    tokens = np.load(context.inputs["tokens"] / "tokens.npy")
    length = context.input_meta("tokens")["result"]["clip_frames"]
    point = s["axes"]
    train_starts, val_starts = split_clips(len(tokens) * length, length, point.get("frames"))
    vocab = context.input_meta("tokenizer")["settings"]["config"].get("codebook_size", VQVAEConfig().codebook_size)
    config = _config(VideoGPTConfig, {"grid": list(tokens.shape[1:]), "vocab_size": vocab, **s["config"]}, point)
    cfg = _train_config(s["train"], point, context.device)
    torch.manual_seed(cfg.seed)
    model = VideoGPT(config)
    result = _fit(model, _gpt_data(tokens, train_starts // length, config.cond), cfg, context.out,
                  _gpt_data(tokens, val_starts // length, config.cond))
    return {**result, "train_data": int(len(train_starts) * length), "train_tokens": int(
        len(train_starts) * config.n_tokens), "precision": cfg.precision}


def _frames_and_labels(folder, starts: np.ndarray, image_size: int):
    """Images (n, 3, S, S) in [-1, 1] and palette labels (n,) of the frames at ``starts``."""
    import pandas as pd

    from ...data.video import resize_frames

    store = FrameStore.open(folder / "frames")
    palette = pd.read_parquet(folder / "latents.parquet")["palette"].to_numpy()
    images = resize_frames(np.asarray(store.frames[np.sort(starts)]), (image_size, image_size))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    return TensorDictDataset({"image": x, "label": torch.from_numpy(palette[np.sort(starts)]).long()})


def _train_vit(s: dict, context) -> dict:
    point = s["axes"]
    store = FrameStore.open(context.inputs["video"] / "frames")
    train_starts, val_starts = split_clips(len(store), 1, point.get("images"), seed=1)
    train_data = _frames_and_labels(context.inputs["video"], train_starts, s["image_size"])
    val_data = _frames_and_labels(context.inputs["video"], val_starts, s["image_size"])
    cfg = _train_config(s["train"], point, context.device)
    overrides = {"image_size": s["image_size"], "n_classes": len(PALETTES), **s["config"]}
    base = ViTConfig.from_variant(point["variant"], **overrides) if "variant" in point else ViTConfig(**overrides)
    config = _config(ViTConfig, base.to_dict(), point)
    torch.manual_seed(cfg.seed)
    if "upstream" in context.inputs:
        model = load_for_transfer(context.inputs["upstream"] / "run", n_classes=config.n_classes, seed=cfg.seed,
                                  device="cpu")
    else:
        model = ViT(config)
    level = point.get("augreg", "none")
    augment = AugReg(level, n_classes=config.n_classes) if level != "none" else None
    result = _fit(model, train_data, cfg, context.out, val_data, augment)
    return {**result, "train_data": int(len(train_starts)), "precision": cfg.precision}


@stage("train", version=1, accelerated=True)
def train_model(task, context) -> dict:
    s = task.settings
    return (_train_videogpt if s["family"] == "videogpt" else _train_vit)(s, context)
