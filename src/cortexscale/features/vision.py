"""Features of cortexscale's own vision models: per-frame ViT features and per-clip video GPT features.

:func:`frame_features` runs a :class:`~cortexscale.models.ViT` on every frame of a video and pools one
block's tokens (class token or mean of the patch tokens): one feature per frame, at the frame rate
(:func:`~cortexscale.data.events.frame_events` gives their events). :func:`clip_features` tokenizes clips
of ``vqvae.config.frames`` frames with a :class:`~cortexscale.models.VQVAE` and averages a
:class:`~cortexscale.models.VideoGPT` block's output over the clip's tokens: one feature per clip, at the
clip rate (:func:`clip_events`). Frames are uint8 (N, H, W, 3), from an array or a
:class:`~cortexscale.data.video.FrameStore`; they are resized to the model's input size and scaled to
[-1, 1] as in training. Layers follow :mod:`cortexscale.layers` (0 = embeddings, k = output of block k);
the default is the layer three quarters up the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.events import EVENT_COLUMNS
from ..data.timing import _finite_float, _positive_int
from ..data.video import FrameStore, resize_frames
from ..layers import resolve_layers
from ..models.videogpt import VideoGPT
from ..models.vit import ViT
from ..models.vqvae import VQVAE
from ..runtime import resolve_device, resolve_precision, torch_dtype

__all__ = ["POOLS", "clip_events", "clip_features", "clip_starts", "frame_features"]

POOLS = ("cls", "mean")
"""Token pooling of :func:`frame_features`: the class token, or the mean of the patch tokens."""


def _autocast_dtype(dtype) -> torch.dtype | None:
    """The dtype to autocast to for a precision name or dtype (fp16 or bf16); None or fp32: no autocast."""
    name = "fp32" if dtype is None else resolve_precision(dtype, ("fp32", "fp16", "bf16"), "dtype")
    return None if name == "fp32" else torch_dtype(name)


def _check_frames(frames) -> np.ndarray:
    """Frames (N, H, W, 3) uint8 of an array or a FrameStore (its memory map, not read into memory)."""
    array = frames.frames if isinstance(frames, FrameStore) else np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got shape {array.shape} ({array.dtype})")
    if len(array) == 0:
        raise ValueError(f"frames holds no frames (shape {array.shape})")
    return array


def _scaled(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 tensor of the same shape on ``device``, in [-1, 1]."""
    return torch.from_numpy(np.array(frames, dtype=np.uint8)).to(device).float().div_(127.5).sub_(1.0)


@contextlib.contextmanager
def _running(device: torch.device, dtype: torch.dtype | None, *models: torch.nn.Module) -> Iterator[None]:
    """Models on ``device`` in eval mode under inference mode (and autocast to ``dtype``); training flags restored."""
    flags = [m.training for m in models]
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    try:
        for m in models:
            m.to(device).eval()
        with torch.inference_mode(), autocast:
            yield
    finally:
        for m, flag in zip(models, flags):
            m.train(flag)


def _pooled(h: torch.Tensor, pool: str) -> np.ndarray:
    """ViT block output (B, 1 + N, width) -> float32 (B, width)."""
    h = h.float()
    return (h[:, 0] if pool == "cls" else h[:, 1:].mean(dim=1)).cpu().numpy()


def frame_features(model: ViT, frames, layers: int | Sequence[int] | None = None, *, pool: str = "cls",
                   batch_size: int = 32, device="auto", dtype=None, progress: bool = True) -> dict[int, np.ndarray]:
    """ViT features {layer: (N, width) float32} of each of N frames.

    Parameters
    ----------
    model : ViT
        Moved to ``device`` and run in eval mode; its training flag is restored afterwards.
    frames : FrameStore or array (N, H, W, 3) uint8
        Resized (:func:`~cortexscale.data.video.resize_frames`) to ``model.config.image_size`` when they
        differ, then scaled to [-1, 1].
    layers : int, sequence of int or None
        Layers as :mod:`cortexscale.layers` defines them (0 = embeddings, k = output of block k, negatives
        from the end; an int is one layer); keys of the result are their non-negative forms. None:
        :func:`cortexscale.layers.default_layer`.
    pool : "cls" or "mean"
        The class token, or the mean of the patch tokens, of the block output (N, 1 + n_patches, width).
    batch_size : int
        Frames per forward pass; results do not depend on it beyond float rounding.
    device : "auto", str or torch.device
        "auto": CUDA when available, else the CPU.
    dtype : None or a precision name or dtype (:func:`cortexscale.runtime.resolve_precision`)
        "fp16" or "bf16" (or their aliases and torch dtypes) run under ``torch.autocast``; None or "fp32":
        full precision.
    """
    frames = _check_frames(frames)
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    batch_size = _positive_int(batch_size, "batch_size")
    layers = resolve_layers(layers, len(model.blocks))
    device, dtype = resolve_device(device), _autocast_dtype(dtype)
    size = (model.config.image_size, model.config.image_size)
    out = {layer: [] for layer in layers}
    with _running(device, dtype, model), tqdm(total=len(frames), disable=not progress, desc="frames") as bar:
        for a in range(0, len(frames), batch_size):
            x = _scaled(resize_frames(frames[a:a + batch_size], size), device).permute(0, 3, 1, 2)
            for layer, h in zip(layers, model.forward_intermediates(x, layers)):
                out[layer].append(_pooled(h, pool))
            bar.update(len(x))
    return {layer: np.concatenate(parts) for layer, parts in out.items()}


def clip_starts(n_frames: int, length: int = 16, stride: int | None = None) -> np.ndarray:
    """Start frames (n_clips,) int64 of the clips of ``length`` frames every ``stride`` (default ``length``)
    frames that fit in ``n_frames``: 0, stride, ... up to ``n_frames - length``."""
    n_frames = _positive_int(n_frames, "n_frames")
    length = _positive_int(length, "length")
    stride = length if stride is None else _positive_int(stride, "stride")
    if n_frames < length:
        raise ValueError(f"n_frames={n_frames} is fewer than one clip of length={length} frames")
    return np.arange(0, n_frames - length + 1, stride, dtype=np.int64)


def clip_events(n_frames: int, fps: float, length: int = 16, offset: float = 0.0) -> pd.DataFrame:
    """One event per non-overlapping clip of ``length`` frames (those of :func:`clip_starts` with its
    default stride), matching the rows of :func:`clip_features` with default ``starts``.

    Returns
    -------
    DataFrame (n_clips, 3)
        ``onset`` = ``offset + start / fps`` and ``duration`` = ``length / fps`` (float64 seconds), and
        ``value`` = the clip's start frame (int64).
    """
    starts = clip_starts(n_frames, length)
    fps = _finite_float(fps, "fps", positive=True)
    offset = _finite_float(offset, "offset")
    return pd.DataFrame(
        {"onset": offset + starts / fps, "duration": np.full(len(starts), length / fps), "value": starts},
        columns=list(EVENT_COLUMNS),
    )


def _check_pair(vqvae: VQVAE, gpt: VideoGPT) -> None:
    grid, want = tuple(vqvae.config.token_grid), tuple(gpt.config.grid)
    if grid != want:
        raise ValueError(f"the VQ-VAE's token grid {grid} (vqvae.config.token_grid) differs from the video GPT's "
                         f"grid {want} (gpt.config.grid)")
    if vqvae.config.codebook_size > gpt.config.vocab_size:
        raise ValueError(f"the VQ-VAE's codebook_size={vqvae.config.codebook_size} exceeds the video GPT's "
                         f"vocab_size={gpt.config.vocab_size}")


def _check_starts(starts, n_frames: int, length: int) -> np.ndarray:
    """Clip start frames (n_clips,) int64, each clip of ``length`` frames inside the ``n_frames``."""
    if n_frames < length:
        raise ValueError(f"frames holds {n_frames} frames, fewer than one clip of {length} frames "
                         f"(vqvae.config.frames)")
    if starts is None:
        return clip_starts(n_frames, length)
    starts = np.asarray(starts)
    if starts.ndim != 1 or len(starts) == 0 or not np.issubdtype(starts.dtype, np.integer):
        raise ValueError(f"starts must be a non-empty 1-D array of integer frame indices, "
                         f"got shape {starts.shape} ({starts.dtype})")
    bad = np.flatnonzero((starts < 0) | (starts > n_frames - length))
    if len(bad):
        i = bad[0]
        raise ValueError(f"starts[{i}] = {starts[i]} puts a {length}-frame clip outside the {n_frames} frames")
    return starts.astype(np.int64)


def _tokens(vqvae: VQVAE, frames: np.ndarray, starts: np.ndarray, batch_size: int, device: torch.device,
            progress: bool) -> torch.Tensor:
    """Token ids (len(starts), T', H', W') on the CPU of the clips starting at ``starts``."""
    c = vqvae.config
    size, ids = (c.size, c.size), []
    for a in tqdm(range(0, len(starts), batch_size), disable=not progress, desc="tokenizing clips"):
        clips = np.stack([resize_frames(frames[s:s + c.frames], size) for s in starts[a:a + batch_size]])
        ids.append(vqvae.encode(_scaled(clips, device).permute(0, 4, 1, 2, 3)).cpu())
    return torch.cat(ids)


def clip_features(vqvae: VQVAE, gpt: VideoGPT, frames, starts=None, layers: int | Sequence[int] | None = None, *,
                  batch_size: int = 8, device="auto", dtype=None, progress: bool = True) -> dict[int, np.ndarray]:
    """Video GPT features {layer: (n_clips, hidden) float32}, one per clip: a time series at the clip rate.

    Clip i is frames ``starts[i] .. starts[i] + T - 1`` (T = ``vqvae.config.frames``), resized to
    ``vqvae.config.size`` and scaled to [-1, 1]; the VQ-VAE turns it (1, 3, T, H, W) into token ids
    (1, T', H', W'), the GPT's block output at them (1, T' H' W', hidden) is averaged over the tokens.

    With ``gpt.config.cond``, the GPT also sees the token ids of the clip that precedes clip i, frames
    ``starts[i] - T .. starts[i] - 1``; a clip that starts before frame T has no such clip and is
    conditioned on its own tokens instead.

    Parameters
    ----------
    vqvae, gpt : VQVAE, VideoGPT
        The tokenizer and the transformer over its tokens: ``vqvae.config.token_grid`` must equal
        ``gpt.config.grid`` and ``vqvae.config.codebook_size`` be at most ``gpt.config.vocab_size``.
        Both are moved to ``device`` and run in eval mode; their training flags are restored afterwards.
    frames : FrameStore or array (N, H, W, 3) uint8
    starts : array (n_clips,) of int or None
        Clip start frames; None: :func:`clip_starts` ``(N, T)``, non-overlapping clips (see :func:`clip_events`).
    layers : int, sequence of int or None
        GPT layers as in :func:`frame_features` (0 = embeddings, k = output of block k); None:
        :func:`cortexscale.layers.default_layer`.
    batch_size : int
        Clips per forward pass; results do not depend on it beyond float rounding.
    device, dtype
        As in :func:`frame_features`; ``dtype`` applies to the GPT only. The tokenizer always runs in float32:
        its tokens are discrete, and in bfloat16 about 1% of them flip (and cuDNN's 16-bit 3D convolutions ran
        4.4x slower than float32's on an H100).
    """
    _check_pair(vqvae, gpt)
    frames = _check_frames(frames)
    starts = _check_starts(starts, len(frames), vqvae.config.frames)
    batch_size = _positive_int(batch_size, "batch_size")
    layers = resolve_layers(layers, len(gpt.blocks))
    device, dtype = resolve_device(device), _autocast_dtype(dtype)
    before = np.where(starts >= vqvae.config.frames, starts - vqvae.config.frames, starts)
    windows = np.unique(np.concatenate([starts, before]) if gpt.config.cond else starts)
    out = {layer: [] for layer in layers}
    with _running(device, None, vqvae):
        ids = _tokens(vqvae, frames, windows, batch_size, device, progress)
    with _running(device, dtype, gpt):
        own, prev = (torch.from_numpy(np.searchsorted(windows, s)) for s in (starts, before))
        for a in tqdm(range(0, len(starts), batch_size), disable=not progress, desc="video GPT"):
            tokens = ids[own[a:a + batch_size]].to(device)
            cond = ids[prev[a:a + batch_size]].to(device) if gpt.config.cond else None
            for layer, h in zip(layers, gpt.forward_intermediates(tokens, layers, cond)):
                out[layer].append(h.float().mean(dim=1).cpu().numpy())
    return {layer: np.concatenate(parts) for layer, parts in out.items()}
