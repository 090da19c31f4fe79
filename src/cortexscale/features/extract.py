"""One entry point from a model and a stimulus events table to per-layer features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.events import check_events
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


def _identity(lm: LanguageModel) -> str:
    path = Path(str(lm.identity))
    if path.exists():
        return f"sha256:{file_identity(path)}"
    revision = getattr(lm.model.config, "_commit_hash", None) or "unknown-revision"
    return f"{lm.identity}@{revision}"


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


def extract_features(model, events: pd.DataFrame, layers=None, *, kind: str = "words",
                     context: tuple[int, int] = (256, 512), window: tuple[int, int] = (20, 20),
                     cache=None, device="auto", dtype=None, batch_size: int = 16,
                     progress: bool = True) -> dict[int, np.ndarray]:
    """Features {layer: (n_events, d)} of the events' values under ``model``.

    model: a Hugging Face id, a local folder or ``.gguf`` file, or a :class:`LanguageModel`.
    events: DataFrame with onset, duration (seconds) and value (a word, or a text segment for
    ``kind="segments"``), in onset order. layers: hidden-state indices (0 = embeddings); default a
    middle-to-late layer. Words get Antonello et al.'s dynamic ``context`` (min, max words) under a causal
    model, or ``window`` (words before, after) under a bidirectional one. ``cache``: a
    :class:`FeatureCache`, a folder, or None for no caching.
    """
    events = check_events(events)
    lm = model if isinstance(model, LanguageModel) else load_language_model(model, device=device, dtype=dtype)
    layers = _check_layers(default_layer(lm.n_layers) if layers is None else layers, lm.n_layers)
    values = events["value"].astype(str).tolist()
    if kind == "segments":
        settings = {"kind": kind}
        compute = lambda todo: segment_features(lm, values, todo, batch_size, progress)  # noqa: E731
    elif kind == "words" and lm.causal:
        settings = {"kind": "causal-words", "context": list(context)}
        compute = lambda todo: causal_features(lm, values, todo, *context, progress=progress)  # noqa: E731
    elif kind == "words":
        settings = {"kind": "encoder-words", "window": list(window)}
        compute = lambda todo: encoder_features(lm, values, todo, *window, batch_size, progress)  # noqa: E731
    else:
        raise ValueError(f"kind must be 'words' or 'segments', got {kind!r}")
    if cache is None:
        return compute(layers)
    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    stim = stimulus_hash(events[["onset", "duration", "value"]])
    return cache.get_or_compute(_identity(lm), layers, stim, settings, compute)
