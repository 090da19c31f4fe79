"""One entry point from a model and a stimulus events table to per-layer features.

Each kind of stimulus is a function in :data:`KINDS` that loads the model and returns a :class:`Job`: the
layers to extract, the settings and stimulus hash that key the cache, and the computation itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.audio import read_audio
from ..data.events import check_events
from ..data.video import FrameStore
from ..layers import resolve_layers
from ..models import VQVAE, VideoGPT, ViT, load_pretrained
from ..runtime import resolve_precision
from . import vision
from .audio import AudioModel, audio_features, load_audio_model
from .cache import FeatureCache, file_identity, stimulus_hash
from .language import LanguageModel, _hidden_states, causal_features, encoder_features, load_language_model

__all__ = ["KINDS", "Job", "extract_features", "segment_features"]

logger = logging.getLogger(__name__)

CPU_BATCH_TOKENS = 1024
"""Padded tokens per forward pass of a causal model on a CPU: windows of 16 words ran 2x faster 16 at a time
(a 2-layer GPT-2 of width 64-256), while windows of hundreds of words run one at a time as before."""


def _hub_identity(net: LanguageModel | AudioModel) -> str:
    """A hash of local weights, or the hub id with its revision."""
    path = Path(str(net.identity))
    if path.exists():
        return f"sha256:{file_identity(path)}"
    revision = getattr(net.model.config, "_commit_hash", None) or "unknown-revision"
    return f"{net.identity}@{revision}"


def segment_features(lm: LanguageModel, texts: Sequence[str], layers, batch_size: int = 16,
                     progress: bool = True) -> dict[int, np.ndarray]:
    """One mean-pooled feature per text segment (e.g. a scene description): {layer: (n_segments, d)}."""
    layers = resolve_layers(layers, lm.n_layers)
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


@dataclass
class Job:
    """What :func:`extract_features` runs for one kind of stimulus.

    ``compute(layers) -> {layer: (n_events, d)}``; ``identity()`` names the model and ``stimulus()`` hashes
    the stimulus for the cache (both called only when caching, as they may hash weight, audio or frame data).
    """

    layers: list[int]
    settings: dict
    stimulus: Callable[[], str]
    compute: Callable[[list[int]], dict]
    identity: Callable[[], str]


def _loaded(model, cls, loader, kind: str, **kwargs):
    """``model`` itself if it is a loaded ``cls``; else load it from an id or path."""
    if isinstance(model, cls):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"kind={kind!r} needs a loaded {cls.__name__} or a model id or path, "
                         f"got {type(model).__name__}")
    return loader(model, **kwargs)


def _check_single_words(values: list[str]) -> None:
    """kind="words" takes one word per event; timed text with spaces in it belongs to kind="segments"."""
    for row, value in enumerate(values):
        if len(value.split()) > 1:
            raise ValueError(f"events: value at row {row} ({value!r}) holds {len(value.split())} words, but "
                             "kind='words' takes one word per event; pass kind='segments' for timed text segments "
                             "(each is mean-pooled)")


def _language_model(model, opts: dict) -> LanguageModel:
    """A loaded model, with ``causal`` forced where the caller set it."""
    if isinstance(model, LanguageModel):
        return model if opts["causal"] is None else dataclasses.replace(model, causal=bool(opts["causal"]))
    return _loaded(model, LanguageModel, load_language_model, opts["kind"], causal=opts["causal"],
                   device=opts["device"], dtype=opts["dtype"])


def _language_job(model, events: pd.DataFrame, layers, opts: dict) -> Job:
    lm = _language_model(model, opts)
    values = events["value"].astype(str).tolist()
    batch, progress = opts["batch_size"], opts["progress"]
    if opts["kind"] == "segments":
        settings = {"kind": "segments"}
        compute = lambda todo: segment_features(lm, values, todo, batch, progress)  # noqa: E731
        path = "segments, mean-pooled"
    elif lm.causal:
        _check_single_words(values)
        settings = {"kind": "causal-words", "context": list(opts["context"])}
        budget = None if lm.device.type == "cuda" else CPU_BATCH_TOKENS
        compute = lambda todo: causal_features(lm, values, todo, *opts["context"], batch, progress,  # noqa: E731
                                               max_tokens=budget)
        path = "causal words, dynamic context of {} growing to {} words".format(*opts["context"])
    else:
        _check_single_words(values)
        settings = {"kind": "encoder-words", "window": list(opts["window"])}
        compute = lambda todo: encoder_features(lm, values, todo, *opts["window"], batch, progress)  # noqa: E731
        path = "bidirectional words, {} words before and {} after".format(*opts["window"])
    layers = resolve_layers(layers, lm.n_layers)
    logger.info("extract_features: %s, %s, layers %s", lm.identity, path, layers)
    stimulus = lambda: stimulus_hash(events[["onset", "duration", "value"]])  # noqa: E731
    return Job(layers, settings, stimulus, compute, lambda: _hub_identity(lm))


def _audio_job(model, events: pd.DataFrame, layers, opts: dict) -> Job:
    am = _loaded(model, AudioModel, load_audio_model, "audio", device=opts["device"], dtype=opts["dtype"])
    if "stim_time" not in events.columns:
        raise ValueError("audio events need a 'stim_time' column (seconds into the sound at each step's end); "
                         "make them with cortexscale.data.audio_steps")
    files = events["value"].astype(str).to_numpy()
    times = events["stim_time"].to_numpy(dtype=np.float64)
    window = float(opts["audio_window"])

    def compute(todo):
        out = {}
        for file in dict.fromkeys(files):
            rows = np.flatnonzero(files == file)
            wave, rate = read_audio(file, am.sampling_rate)
            feats = audio_features(am, wave, rate, times[rows], todo, window, opts["batch_size"], opts["progress"])
            for layer, array in feats.items():
                out.setdefault(layer, np.empty((len(files), array.shape[1]), np.float32))[rows] = array
        return out

    def stimulus():
        hashes = sorted((f, file_identity(f)) for f in dict.fromkeys(files) if Path(f).is_file())
        return stimulus_hash(f"{stimulus_hash(events)}:{hashes}")

    layers = resolve_layers(layers, am.n_layers)
    return Job(layers, {"kind": "audio", "window": window}, stimulus, compute, lambda: _hub_identity(am))


def _own_model(model, kind: str, cls):
    """A cortexscale model of class ``cls``, or one loaded from its checkpoint folder."""
    if isinstance(model, (str, os.PathLike)):
        model = load_pretrained(model, device="cpu")
    if not isinstance(model, cls):
        raise ValueError(f"kind={kind!r} needs a {cls.__name__} or its checkpoint folder, got {type(model).__name__}")
    return model


def _module_identity(model: torch.nn.Module) -> str:
    """SHA-256 over a cortexscale model's config and every tensor of its state dict."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"


def _frames_stimulus(events: pd.DataFrame, frames) -> str:
    """Hash of the events and the frames: a store's metadata with its content hash (its video's, or its
    frames' when written from an array), else its frames file; an array's bytes."""
    if isinstance(frames, FrameStore) and ("source_sha256" in frames.meta or "frames_sha256" in frames.meta):
        frames_id = stimulus_hash(json.dumps(frames.meta, sort_keys=True, default=str))
    elif isinstance(frames, FrameStore):
        frames_id = file_identity(frames.folder / "frames.npy")
    else:
        frames_id = stimulus_hash(np.asarray(frames))
    return stimulus_hash(f"{stimulus_hash(events)}:{frames_id}")


def _frame_indices(events: pd.DataFrame, frames) -> np.ndarray:
    if frames is None:
        raise ValueError("frames= is required for video kinds: an (N, H, W, 3) uint8 array or a FrameStore")
    values = pd.to_numeric(events["value"], errors="coerce").to_numpy()
    n = len(frames.frames if isinstance(frames, FrameStore) else frames)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values >= n))
    if len(bad):
        raise ValueError(f"events: value at row {events.index[bad[0]]} is {events['value'].iloc[bad[0]]}, "
                         f"not a frame index in 0..{n - 1}")
    return values.astype(np.int64)


_FRAME_CHUNK = 4096
"""Frames read from a store per call, so a long video never sits in memory whole."""


def _frames_job(model, events: pd.DataFrame, layers, opts: dict) -> Job:
    vit = _own_model(model, "frames", ViT)
    index = _frame_indices(events, opts["frames"])
    source = opts["frames"].frames if isinstance(opts["frames"], FrameStore) else np.asarray(opts["frames"])
    layers = resolve_layers(layers, len(vit.blocks))
    settings = {"kind": "frames", "pool": opts["pool"], "layers": "hidden-states"}

    def compute(todo):
        parts = []
        for a in tqdm(range(0, len(index), _FRAME_CHUNK), disable=not opts["progress"], desc="frame chunks"):
            parts.append(vision.frame_features(vit, source[index[a:a + _FRAME_CHUNK]], todo, pool=opts["pool"],
                                        batch_size=opts["batch_size"], device=opts["device"], dtype=opts["dtype"],
                                        progress=False))
        return {layer: np.concatenate([p[layer] for p in parts]) for layer in todo}

    return Job(layers, settings, lambda: _frames_stimulus(events, opts["frames"]), compute,
               lambda: _module_identity(vit))


def _clips_job(model, events: pd.DataFrame, layers, opts: dict) -> Job:
    if not isinstance(model, (tuple, list)) or len(model) != 2:
        raise ValueError(f"kind='clips' needs model=(vqvae, gpt): the tokenizer and the video GPT (modules or "
                         f"checkpoint folders), got {type(model).__name__}")
    vqvae, gpt = _own_model(model[0], "clips", VQVAE), _own_model(model[1], "clips", VideoGPT)
    starts = _frame_indices(events, opts["frames"])
    layers = resolve_layers(layers, len(gpt.blocks))
    settings = {"kind": "clips", "layers": "hidden-states"}

    def compute(todo):
        return vision.clip_features(vqvae, gpt, opts["frames"], starts, todo, batch_size=opts["batch_size"],
                             device=opts["device"], dtype=opts["dtype"], progress=opts["progress"])

    return Job(layers, settings, lambda: _frames_stimulus(events, opts["frames"]), compute,
               lambda: f"{_module_identity(vqvae)}+{_module_identity(gpt)}")


KINDS: dict[str, Callable[..., Job]] = {
    "words": _language_job,
    "segments": _language_job,
    "audio": _audio_job,
    "frames": _frames_job,
    "clips": _clips_job,
}
"""Stimulus kinds of :func:`extract_features`: each maps (model, events, layers, options) to a :class:`Job`."""


def extract_features(model, events: pd.DataFrame, layers=None, *, kind: str = "words",
                     context: tuple[int, int] = (256, 512), window: tuple[int, int] = (20, 20),
                     causal: bool | None = None, audio_window: float = 16.1, frames=None, pool: str = "cls",
                     cache=None, device="auto", dtype=None, batch_size: int = 16,
                     progress: bool = True) -> dict[int, np.ndarray]:
    """Features {layer: (n_events, d)} of the events under ``model``.

    events: DataFrame with onset, duration (seconds) and value, in onset order. What ``value`` holds, and
    what ``model`` may be, depend on ``kind``:

    - "words": one word per event (a value with spaces in it is an error: timed text is "segments");
      ``model`` is a Hugging Face id, a local folder or ``.gguf`` file, or a :class:`LanguageModel`. A
      causal model gives each word Antonello et al.'s dynamic ``context`` (min, max words before it); a
      bidirectional one a ``window`` of (before, after) words. Which one a model is comes from its config
      (:func:`cortexscale.features.language.is_causal`, GGUF files included); ``causal`` forces it. The path
      taken is logged (logger ``cortexscale.features.extract``, level INFO) and named by the progress bar.
    - "segments": a timed text segment, mean-pooled over its tokens.
    - "audio": an audio file, with a ``stim_time`` column (:func:`cortexscale.data.audio_steps`);
      ``model`` is a speech model id or folder, or an :class:`AudioModel`. Each event gets the last frame of
      the causal ``audio_window`` seconds that end at its ``stim_time``.
    - "frames": a frame index into ``frames`` (:func:`cortexscale.data.frame_events`); ``model`` is a
      cortexscale ViT, its checkpoint folder or its run folder; ``pool`` "cls" or "mean" per frame.
    - "clips": a clip's first frame (:func:`cortexscale.features.vision.clip_events`); ``model`` is
      ``(vqvae, gpt)``, modules, checkpoint or run folders; one token-averaged GPT feature per clip.

    layers: hidden-state indices, one convention for every model (:mod:`cortexscale.layers`: 0 = embeddings,
    k = output of block k, negatives from the end); an int is one layer; None takes
    :func:`cortexscale.layers.default_layer`, three quarters up. frames: (N, H, W, 3) uint8 array or
    FrameStore, for the video kinds. cache: a :class:`FeatureCache`, a folder, or None. device: "auto" (CUDA
    when present), "cpu", "cuda"... dtype: None (full precision) or a precision name or dtype of
    :func:`cortexscale.runtime.resolve_precision` ("fp16", "bf16", torch.bfloat16...); Hugging Face models
    are loaded in it, cortexscale's run under autocast. batch_size: windows, segments, audio steps, frames or
    clips per forward pass (causal word windows batch on CUDA only, where padding pays).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    events = check_events(events)
    dtype = None if dtype is None else resolve_precision(dtype, what="dtype")
    opts = {"kind": kind, "context": context, "window": window, "causal": causal, "audio_window": audio_window,
            "frames": frames, "pool": pool, "device": device, "dtype": dtype, "batch_size": batch_size,
            "progress": progress}
    job = KINDS[kind](model, events, layers, opts)
    if cache is None:
        return job.compute(job.layers)
    settings = job.settings if dtype is None else {**job.settings, "dtype": dtype}
    cache = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    return cache.get_or_compute(job.identity(), job.layers, job.stimulus(), settings, job.compute)
