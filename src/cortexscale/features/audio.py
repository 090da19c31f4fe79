"""Features of speech models (Whisper encoder, HuBERT, WavLM, wav2vec 2.0) on a causal sliding window.

As in Antonello et al. 2023, the feature at time t is the last output frame of the model run on the
``window`` seconds of sound that end at t (16.1 s, stepped every 0.1 s): the model hears only the past.
Windows that start before the sound are cut at its start rather than padded. Full-length windows run in
batches; Whisper pads every window to its 30 s input, so all of its windows batch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..layers import resolve_layers
from ..runtime import resolve_device
from .language import model_dtype, model_source, quiet_loading

__all__ = ["AudioModel", "audio_features", "is_speech_config", "load_audio_model"]

_WHISPER_HOP = 160
"""Samples per Whisper log-mel frame; the encoder halves the frame rate."""


@dataclass
class AudioModel:
    """A speech encoder with its feature extractor (None: raw waveform in); ``identity`` names it for caches."""

    model: torch.nn.Module
    feature_extractor: object | None
    sampling_rate: int
    whisper: bool
    identity: str

    @property
    def n_layers(self) -> int:
        config = self.model.config
        return int(config.encoder_layers if self.whisper else config.num_hidden_layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def max_seconds(self) -> float:
        """Longest window the model takes: Whisper's 30 s input, else unbounded."""
        if not self.whisper:
            return float("inf")
        return self.model.config.max_source_positions * 2 * _WHISPER_HOP / self.sampling_rate


def is_speech_config(config) -> bool:
    """Whether a Hugging Face config describes a speech encoder this module loads: Whisper (log-mel input) or a
    model with a convolutional waveform encoder (HuBERT, WavLM, wav2vec 2.0, data2vec-audio, ...)."""
    return getattr(config, "model_type", None) == "whisper" or hasattr(config, "conv_dim")


def _feature_extractor(source: str, **kwargs):
    from transformers import AutoFeatureExtractor

    try:
        return AutoFeatureExtractor.from_pretrained(source, **kwargs)
    except (OSError, ValueError):
        return None


def load_audio_model(name_or_path, device="auto", dtype=None, revision: str | None = None) -> AudioModel:
    """Load a speech encoder from a Hugging Face id or local folder; a Whisper model keeps only its encoder.

    The folder's feature extractor is used when it has one; otherwise the model takes the raw waveform at
    16 kHz (Whisper needs its feature extractor). ``revision``: a hub revision (branch, tag or commit).
    """
    from transformers import AutoConfig, AutoModel

    kwargs = {} if revision is None else {"revision": revision}
    path = Path(str(name_or_path))
    source = model_source(path, name_or_path, "audio model", "facebook/hubert-base-ls960")
    try:
        with quiet_loading(source):
            config = AutoConfig.from_pretrained(source, **kwargs)
            model = AutoModel.from_pretrained(source, dtype=model_dtype(dtype), **kwargs)
    except OSError as err:
        raise ValueError(f"cannot load audio model {name_or_path!r}: not found as a local path ({path}); "
                         f"a Hugging Face hub id needs network access to download ({err})") from err
    whisper = config.model_type == "whisper"
    extractor = _feature_extractor(source, **kwargs)
    if whisper:
        model = model.get_encoder()
        if extractor is None:
            raise ValueError(f"Whisper model {name_or_path!r} has no feature extractor (preprocessor_config.json)")
    rate = int(getattr(extractor, "sampling_rate", 16000))
    model.to(resolve_device(device)).eval()
    return AudioModel(model, extractor, rate, whisper, source)


def _window_bounds(am: AudioModel, n_samples: int, times, window: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end samples (n,) of the windows that end at ``times`` (seconds into the sound)."""
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or not np.isfinite(times).all():
        raise ValueError(f"times must be a 1-D array of finite seconds, got shape {times.shape}")
    if not 0 < window <= am.max_seconds:
        raise ValueError(f"window must lie in (0, {am.max_seconds:g}] seconds for this model, got {window}")
    ends = np.round(times * am.sampling_rate).astype(np.int64)
    bad = np.flatnonzero((ends <= 0) | (ends > n_samples))
    if len(bad):
        raise ValueError(f"times[{bad[0]}] = {times[bad[0]]} s lies outside the sound's "
                         f"{n_samples / am.sampling_rate:g} s")
    width = int(round(window * am.sampling_rate))
    return np.maximum(ends - width, 0), ends


def _last_frame(am: AudioModel, n_samples: int, frames: int) -> int:
    """Index of the output frame that ends a window of ``n_samples`` (``frames`` = frames output)."""
    if am.whisper:
        return (-(-n_samples // _WHISPER_HOP) - 1) // 2
    return frames - 1


def _model_inputs(am: AudioModel, windows: list[np.ndarray]) -> dict:
    if am.feature_extractor is None:
        values = torch.from_numpy(np.stack(windows))
        return {"input_values": values.to(am.device, am.dtype)}
    enc = am.feature_extractor(windows, sampling_rate=am.sampling_rate, return_tensors="pt")
    key = "input_features" if am.whisper else "input_values"
    return {key: enc[key].to(am.device, am.dtype)}


def _run(am: AudioModel, windows: list[np.ndarray], layers: list[int]) -> dict[int, np.ndarray]:
    """Last-frame features {layer: (len(windows), d)} of equal-length windows (or any, for Whisper)."""
    with torch.inference_mode():
        hidden = am.model(**_model_inputs(am, windows), output_hidden_states=True).hidden_states
    n_frames = hidden[0].shape[1]
    if n_frames < 1:
        raise ValueError(f"a window of {len(windows[0])} samples is too short for the model to output a frame")
    rows = torch.arange(len(windows), device=hidden[0].device)
    cols = torch.tensor([_last_frame(am, len(w), n_frames) for w in windows], device=hidden[0].device)
    return {layer: hidden[layer][rows, cols].float().cpu().numpy() for layer in layers}


def _shape_context(device: torch.device, recurring: bool):
    """cuDNN, on CUDA, only for input shapes that recur: it builds a plan for each new shape (about 5 ms of
    CPU per attention call on an H100), which costs more than a short window's whole forward pass."""
    if recurring or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.backends.cudnn.flags(enabled=False)


def audio_features(am: AudioModel, waveform: np.ndarray, sample_rate: int, times, layers,
                   window: float = 16.1, batch_size: int = 16, progress: bool = True) -> dict[int, np.ndarray]:
    """Features {layer: (n_times, d)} of the causal windows of ``window`` seconds ending at ``times``.

    waveform: (n_samples,) mono at the model's ``sample_rate`` (read it with
    ``read_audio(path, am.sampling_rate)``). times: (n_times,) seconds into the sound.
    layers: hidden-state indices (0 = the input to the transformer, 1..n_layers = its layers).
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be mono (n_samples,), got shape {waveform.shape}")
    if sample_rate != am.sampling_rate:
        raise ValueError(f"the waveform is at {sample_rate} Hz but the model takes {am.sampling_rate} Hz; "
                         f"read it with read_audio(path, sample_rate={am.sampling_rate})")
    layers = resolve_layers(layers, am.n_layers)
    starts, ends = _window_bounds(am, len(waveform), times, float(window))
    full = np.full(len(ends), True) if am.whisper else ends - starts == int(round(window * am.sampling_rate))
    groups = [[i] for i in np.flatnonzero(~full)]
    done = np.flatnonzero(full)
    groups += [list(done[a:a + batch_size]) for a in range(0, len(done), batch_size)]
    out = {}
    with tqdm(total=len(ends), disable=not progress, desc="audio windows") as bar:
        for group in groups:
            with _shape_context(am.device, recurring=bool(full[group[0]])):
                feats_by_layer = _run(am, [waveform[starts[i]:ends[i]] for i in group], layers)
            for layer, feats in feats_by_layer.items():
                if layer not in out:
                    out[layer] = np.empty((len(ends), feats.shape[1]), np.float32)
                out[layer][group] = feats
            bar.update(len(group))
    return out

