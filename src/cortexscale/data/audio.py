"""Audio stimuli: decoding with PyAV, resampling to a model's rate, and the steps of a sliding window.

:func:`read_audio` gives a mono float waveform at the rate a model expects. :func:`audio_steps` turns the
sounds of a run (an events table whose values are audio files, as BIDS ``events.tsv`` lists them) into one
event per window step: the feature of a step summarises the sound up to that moment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .events import check_events
from .timing import _finite_float

__all__ = ["audio_info", "audio_steps", "read_audio"]


def _av():
    try:
        import av
    except ImportError as err:
        raise ImportError("reading audio needs PyAV: pip install 'cortexscale[video]'") from err
    return av


def _open(path: Path):
    """An open container and its first audio stream; errors name the file."""
    av = _av()
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read audio file {path}: {err}") from err
    if not container.streams.audio:
        container.close()
        raise ValueError(f"{path} holds no audio stream")
    stream = container.streams.audio[0]
    if not stream.rate or stream.rate <= 0 or not stream.channels:
        container.close()
        raise ValueError(f"cannot read the sample rate of {path} (the stream reports rate {stream.rate!r}, "
                         f"{stream.channels!r} channels)")
    return container, stream


def audio_info(path) -> dict:
    """Sample rate (Hz), channels and duration (seconds, from the stream header, or NaN) of an audio file."""
    path = Path(path)
    container, stream = _open(path)
    with container:
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        else:
            duration = float("nan")
        return {"sample_rate": int(stream.rate), "channels": int(stream.channels), "duration": duration}


def read_audio(path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode ``path`` to a mono waveform (n_samples,) float32 at ``sample_rate`` (None: the file's rate).

    Channels are averaged after resampling (FFmpeg's resampler). Returns the waveform and its rate.
    """
    path = Path(path)
    if sample_rate is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
        raise ValueError(f"sample_rate must be a positive integer or None, got {sample_rate!r}")
    container, stream = _open(path)
    rate = int(sample_rate or stream.rate)
    av = _av()
    chunks = []
    with container:
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=rate)
        try:
            for frame in container.decode(stream):
                chunks += [f.to_ndarray() for f in resampler.resample(frame)]
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
        except av.FFmpegError as err:
            raise ValueError(f"cannot decode audio file {path}: {err}") from err
    if not chunks:
        raise ValueError(f"audio file {path} holds no samples")
    return np.concatenate(chunks, axis=1).mean(axis=0).astype(np.float32), rate


def _sound_events(sounds, onset: float) -> pd.DataFrame:
    if isinstance(sounds, pd.DataFrame):
        return check_events(sounds, name="sounds")
    path = Path(sounds)
    info = audio_info(path)
    duration = info["duration"]
    if not np.isfinite(duration):
        duration = len(read_audio(path)[0]) / info["sample_rate"]
    return pd.DataFrame({"onset": [float(onset)], "duration": [duration], "value": [str(path)]})


def audio_steps(sounds, stride: float = 0.1, onset: float = 0.0) -> pd.DataFrame:
    """One event per step of a sliding window over each sound.

    sounds: an events table whose ``value`` is an audio file (``onset`` on the run clock, ``duration``
    seconds), or one audio file that starts at ``onset``. Step k = 1, 2, ... of a sound ends k·stride
    seconds into it, up to its duration.

    Returns
    -------
    DataFrame (n_steps, 4)
        ``onset`` (the step's end on the run clock), ``duration`` 0, ``value`` (the file) and
        ``stim_time`` (the step's end, seconds into the file).
    """
    stride = _finite_float(stride, "stride", positive=True)
    table = _sound_events(sounds, onset)
    parts = []
    for row in table.itertuples(index=False):
        ends = stride * np.arange(1, int(np.floor(row.duration / stride + 1e-9)) + 1)
        if len(ends) == 0:
            raise ValueError(f"sound {row.value!r} lasts {row.duration} s, shorter than one {stride} s step")
        parts.append(pd.DataFrame({"onset": row.onset + ends, "duration": 0.0, "value": str(row.value),
                                   "stim_time": ends}))
    return pd.concat(parts, ignore_index=True).sort_values("onset", kind="stable", ignore_index=True)
