"""One entry point from a model and a stimulus events table to per-layer features."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.audio import read_audio
from ..data.events import check_events
from .audio import AudioModel, audio_features, load_audio_model
from .cache import FeatureCache, file_identity, stimulus_hash
from .language import (
    LanguageModel,
    _check_layers,
    _hidden_states,
    causal_features,
    encoder_features,
    load_language_model,
)

__all__ = ["default_layer", "extract_features", "segment_features"]


def default_layer(n_layers: int) -> int:
    """A middle-to-late layer, three quarters of the way up (Antonello et al. found these best)."""
    return max(1, round(0.75 * n_layers))


def _identity(net: LanguageModel | AudioModel) -> str:
    path = Path(str(net.identity))
    if path.exists():
        return f"sha256:{file_identity(path)}"
    revision = getattr(net.model.config, "_commit_hash", None) or "unknown-revision"
    return f"{net.identity}@{revision}"


def segment_features(lm: LanguageModel, texts: Sequence[str], layers, batch_size: int = 16,
                     progress: bool = True) -> dict[int, np.ndarray]:
    """One mean-pooled feature per text segment (e.g. a scene description): {layer: (n_segments, d)}."""
    layers = _check_layers(layers, lm.n_layers)
    tok = lm.tokenizer
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    out = {layer: [] for layer in layers}
    for a in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="segments"):
        batch = [str(t) for t in texts[a:a + batch_size]]
        empty = [a + j for j, t in enumerate(batch) if not t.strip()]
        if empty:
            raise ValueError(f"text segment {empty[0]} is empty")
        enc = tok(batch, return_tensors="pt", padding=True)
        hidden = _hidden_states(lm, enc["input_ids"].to(lm.device), enc["attention_mask"].to(lm.device))
        mask = enc["attention_mask"].to(lm.device).unsqueeze(-1).float()
        for layer in layers:
            pooled = (hidden[layer].float() * mask).sum(1) / mask.sum(1)
            out[layer].append(pooled.cpu().numpy())
    return {layer: np.concatenate(parts) for layer, parts in out.items()}


def _audio_compute(am: AudioModel, events: pd.DataFrame, window: float, batch_size: int, progress: bool):
    """compute(layers) over the audio files named by ``events`` (each read once, at the model's rate)."""
    if "stim_time" not in events.columns:
        raise ValueError("audio events need a 'stim_time' column (seconds into the sound at each step's end); "
                         "make them with cortexscale.data.audio_steps")
    files = events["value"].astype(str).to_numpy()
    times = events["stim_time"].to_numpy(dtype=np.float64)

    def compute(layers):
        out = {}
        for file in dict.fromkeys(files):
            rows = np.flatnonzero(files == file)
            wave, rate = read_audio(file, am.sampling_rate)
            feats = audio_features(am, wave, rate, times[rows], layers, window, batch_size, progress)
            for layer, array in feats.items():
                out.setdefault(layer, np.empty((len(files), array.shape[1]), np.float32))[rows] = array
        return out

    return compute


def _audio_stimulus(events: pd.DataFrame) -> str:
    files = {f: file_identity(f) for f in dict.fromkeys(events["value"].astype(str)) if Path(f).is_file()}
    return stimulus_hash(f"{stimulus_hash(events)}:{sorted(files.items())}")


def _loaded(model, cls, loader, kind: str, device, dtype):
    """``model`` itself if it is a loaded ``cls``; else load it from an id or path."""
    if isinstance(model, cls):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"kind={kind!r} needs a loaded {cls.__name__} or a model id or path, "
                         f"got {type(model).__name__}")
    return loader(model, device=device, dtype=dtype)


def _language_compute(lm: LanguageModel, values: list[str], kind: str, context, window, batch_size, progress):
    """Settings and compute(layers) for words or text segments."""
    if kind == "segments":
        return {"kind": kind}, lambda todo: segment_features(lm, values, todo, batch_size, progress)
    if lm.causal:
        settings = {"kind": "causal-words", "context": list(context)}
        windows = batch_size if lm.device.type == "cuda" else 1
        return settings, lambda todo: causal_features(lm, values, todo, *context, windows, progress)
    settings = {"kind": "encoder-words", "window": list(window)}
    return settings, lambda todo: encoder_features(lm, values, todo, *window, batch_size, progress)


def extract_features(model, events: pd.DataFrame, layers=None, *, kind: str = "words",
                     context: tuple[int, int] = (256, 512), window: tuple[int, int] = (20, 20),
                     audio_window: float = 16.1, cache=None, device="auto", dtype=None, batch_size: int = 16,
                     progress: bool = True) -> dict[int, np.ndarray]:
    """Features {layer: (n_events, d)} of the events' values under ``model``.

    kind "words" or "segments": ``model`` is a Hugging Face id, a local folder or ``.gguf`` file, or a
    :class:`LanguageModel`; ``value`` is a word or a text segment. Words get Antonello et al.'s dynamic
    ``context`` (min, max words) under a causal model, or ``window`` (words before, after) under a
    bidirectional one; segments are mean-pooled.
    kind "audio": ``model`` is a speech model id or folder, or an :class:`AudioModel`; events come from
    :func:`cortexscale.data.audio_steps` (``value`` an audio file, ``stim_time`` seconds into it) and each
    gets the last frame of the causal ``audio_window`` seconds that end at its ``stim_time``.
    events: DataFrame with onset, duration (seconds) and value, in onset order. layers: hidden-state
    indices (0 = embeddings); default a middle-to-late layer. ``cache``: a :class:`FeatureCache`, a
    folder, or None. ``dtype`` (e.g. torch.float16 or torch.bfloat16) loads the model in that precision.
    ``batch_size``: windows, segments or audio steps per forward pass (causal word windows batch on CUDA only,
    where padding them pays off).
    """
    events = check_events(events)
    if kind == "audio":
        net = _loaded(model, AudioModel, load_audio_model, kind, device, dtype)
        settings = {"kind": kind, "window": float(audio_window)}
        compute = _audio_compute(net, events, float(audio_window), batch_size, progress)
        stimulus = _audio_stimulus(events)
    elif kind in ("words", "segments"):
        net = _loaded(model, LanguageModel, load_language_model, kind, device, dtype)
        values = events["value"].astype(str).tolist()
        settings, compute = _language_compute(net, values, kind, context, window, batch_size, progress)
        stimulus = stimulus_hash(events[["onset", "duration", "value"]])
    else:
        raise ValueError(f"kind must be 'words', 'segments' or 'audio', got {kind!r}")
    layers = _check_layers(default_layer(net.n_layers) if layers is None else layers, net.n_layers)
    if cache is None:
        return compute(layers)
    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    return cache.get_or_compute(_identity(net), layers, stimulus, settings, compute)
