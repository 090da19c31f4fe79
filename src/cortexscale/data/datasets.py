"""Datasets: subjects' fMRI runs, the stimuli they saw or heard, and one registry of loaders.

A :class:`Dataset` holds :class:`Stimulus` objects, each on its own clock (seconds from its start), and
:class:`Run` objects, one per subject and run, each pointing at the stimulus it presented and saying where its
first scan falls on that clock. Features are computed once per stimulus and aligned to every run that
presented it. Responses are read only when asked for (:meth:`Run.responses`), so a dataset of many subjects
costs no memory until a fit needs one of them.

Every loader in :data:`DATASETS` returns a Dataset; :func:`load_dataset` looks a loader up by name, and
:meth:`Dataset.check` validates every run before any compute starts.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .audio import _sound_events
from .events import check_events

__all__ = ["DATASETS", "MODALITIES", "SPLITS", "Dataset", "Run", "Stimulus", "load_dataset", "register_dataset"]

MODALITIES = ("text", "audio", "video")
"""What a stimulus's event values are: words or text segments, sound files, or frame indices into a frame store."""
SPLITS = ("train", "test")


@dataclass(frozen=True, eq=False)
class Stimulus:
    """One stimulus, on its own clock.

    id : str
        Unique within the dataset; runs refer to it.
    modality : "text", "audio" or "video"
        Event values are words or text segments ("text"), sound files ("audio"; one event per file, at the
        time the sound starts) or frame indices into the :class:`~cortexscale.data.FrameStore` at ``frames``
        ("video").
    events : DataFrame (n_events, >= 3)
        onset, duration (seconds on the stimulus clock) and value.
    frames : path or None
        The frame store folder of a video stimulus.
    audio : path or None
        The sound of a text or video stimulus on its own clock, starting at 0 s (a story's recording beside its
        word timings, a film's soundtrack); what a speech model hears (:meth:`sound_events`). An audio stimulus
        takes none: its events already are its sound files.
    """

    id: str
    modality: str
    events: pd.DataFrame
    frames: Path | None = None
    audio: Path | None = None

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"stimulus {self.id!r}: modality must be one of {MODALITIES}, got {self.modality!r}")
        object.__setattr__(self, "events", check_events(self.events, name=f"stimulus {self.id!r} events"))
        if (self.modality == "video") != (self.frames is not None):
            raise ValueError(f"stimulus {self.id!r}: a video stimulus needs frames= (a frame store folder) and "
                             f"only a video stimulus takes one (modality {self.modality!r}, frames {self.frames})")
        if self.audio is not None:
            if self.modality == "audio":
                raise ValueError(f"stimulus {self.id!r}: an audio stimulus takes no audio= (its events already are "
                                 f"its sound files); got audio {self.audio}")
            object.__setattr__(self, "audio", Path(self.audio))

    @property
    def end(self) -> float:
        """Seconds on the stimulus clock at which its last event ends."""
        ends = self.events["onset"] + self.events["duration"]
        return float(ends.max()) if len(ends) else 0.0

    def sound_events(self) -> pd.DataFrame | None:
        """The sounds a speech model takes, or None for a stimulus without sound.

        Returns
        -------
        DataFrame (n_sounds, >= 3) or None
            onset, duration (seconds on the stimulus clock) and value (the sound file): an audio stimulus's own
            events; for a stimulus with ``audio``, one row (onset 0.0, the file's duration from its header, or
            from decoding it when the header gives none, and ``str(audio)``); None otherwise. Reading the
            duration opens the file (FileNotFoundError or ValueError when it is missing or unreadable).
        """
        if self.modality == "audio":
            return self.events
        if self.audio is None:
            return None
        return _sound_events(self.audio, onset=0.0)


def _array(value) -> np.ndarray | None:
    return value() if callable(value) else value


@dataclass(frozen=True, eq=False)
class Run:
    """One fMRI run of one subject.

    subject, name : str
        The run is ``(subject, name)``; names need only be unique within a subject.
    stimulus : str
        The id of the :class:`Stimulus` presented.
    tr : float
        Seconds between scans.
    first_scan_time : float
        Time of scan 0 on the stimulus clock (Alice: 20.0; a run whose stimulus starts with the scan: 0.0).
    n_trs : int
        Number of scans.
    split : "train" or "test"
        Test runs are held out of every fit.
    source : array (n_trs, n_targets) or a callable returning one
        The responses, read by :meth:`responses` (a callable is called on each read, so nothing stays in memory).
    repeats_source : array (n_repeats, n_trs, n_targets), a callable returning one, or None
        Repeated presentations of the same stimulus to this subject, for noise ceilings.
    """

    subject: str
    name: str
    stimulus: str
    tr: float
    first_scan_time: float
    n_trs: int
    split: str = "train"
    source: np.ndarray | Callable[[], np.ndarray] | None = field(default=None, repr=False)
    repeats_source: np.ndarray | Callable[[], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"run {self.label}: split must be one of {SPLITS}, got {self.split!r}")
        if not (np.isfinite(self.tr) and self.tr > 0):
            raise ValueError(f"run {self.label}: tr must be a positive number of seconds, got {self.tr!r}")
        if int(self.n_trs) != self.n_trs or self.n_trs < 1:
            raise ValueError(f"run {self.label}: n_trs must be a positive integer, got {self.n_trs!r}")

    @property
    def label(self) -> str:
        return f"{self.subject}/{self.name}"

    @property
    def frame_times(self) -> np.ndarray:
        """Time of every scan on the stimulus clock, (n_trs,) seconds."""
        return self.first_scan_time + self.tr * np.arange(self.n_trs)

    def responses(self) -> np.ndarray:
        """Responses (n_trs, n_targets) float32."""
        return np.asarray(_array(self.source), dtype=np.float32)

    def repeats(self) -> np.ndarray | None:
        """Repeated responses (n_repeats, n_trs, n_targets) float32, or None."""
        value = _array(self.repeats_source)
        return None if value is None else np.asarray(value, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Runs of subjects and the stimuli they presented.

    name : str
    targets : tuple of str (n_targets,)
        Names of the response columns (voxels, parcels or ROIs).
    stimuli : dict id -> Stimulus
    runs : tuple of Run
        In presentation order within each subject; the order of a subject's train runs is the order in which
        a study adds fMRI training data.
    atlas : path or None
        A NIfTI atlas or mask whose labels are the targets, for brain maps.
    identity : str
        Names the data for cache keys: the loader and its resolved settings.
    """

    name: str
    targets: tuple[str, ...]
    stimuli: dict[str, Stimulus]
    runs: tuple[Run, ...]
    atlas: Path | None = None
    identity: str = ""

    @property
    def subjects(self) -> list[str]:
        """Subject ids in the order of their first run."""
        return list(dict.fromkeys(run.subject for run in self.runs))

    def runs_of(self, subject: str, split: str | None = None) -> list[Run]:
        """The runs of ``subject`` (of one split, when given), in order."""
        if subject not in self.subjects:
            raise ValueError(f"dataset {self.name!r} has no subject {subject!r}; subjects: {self.subjects}")
        return [run for run in self.runs if run.subject == subject and split in (None, run.split)]

    def check(self) -> None:
        """Validate every run: stimulus known, responses (n_trs, n_targets) and finite, repeats shaped alike,
        the stimulus inside the scan, and a stimulus's ``audio`` readable and heard during the scan (a sound that
        outlasts the scan by more than a TR is warned about). Errors name the dataset, the run and what is
        wrong."""
        if not self.runs:
            raise ValueError(f"dataset {self.name!r} has no runs")
        sounds: dict[str, pd.DataFrame] = {}
        for run in self.runs:
            _check_run(self, run, sounds)


def _check_run(dataset: Dataset, run: Run, sounds: dict[str, pd.DataFrame]) -> None:
    where = f"dataset {dataset.name!r}, run {run.label}"
    if run.stimulus not in dataset.stimuli:
        raise ValueError(f"{where}: stimulus {run.stimulus!r} is not one of the dataset's {sorted(dataset.stimuli)}")
    _check_responses(run.responses(), (run.n_trs, len(dataset.targets)), f"{where}: responses")
    repeats = run.repeats()
    if repeats is not None:
        if repeats.ndim != 3 or repeats.shape[0] < 2:
            raise ValueError(f"{where}: repeats must be (n_repeats >= 2, n_trs, n_targets), got {repeats.shape}")
        _check_responses(repeats[0], (run.n_trs, len(dataset.targets)), f"{where}: repeats[0]")
        _check_responses(repeats, repeats.shape, f"{where}: repeats")
    stimulus = dataset.stimuli[run.stimulus]
    _check_timing(stimulus, run, where)
    if stimulus.audio is not None:
        if stimulus.id not in sounds:
            sounds[stimulus.id] = _read_sound(stimulus, where)
        _check_sound_timing(stimulus, sounds[stimulus.id], run, where)


def _check_responses(values: np.ndarray, shape: tuple, what: str) -> None:
    if values.shape != shape:
        raise ValueError(f"{what} have shape {values.shape}; expected {shape} (n_trs, n_targets)")
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        raise ValueError(f"{what} hold {len(bad)} non-finite value(s), the first at index {tuple(int(i) for i in bad[0])}")


def _check_timing(stimulus: Stimulus, run: Run, where: str) -> None:
    """The stimulus must lie within the scan (to one TR): a length mismatch means misaligned data."""
    start, end = run.first_scan_time, run.first_scan_time + run.n_trs * run.tr
    if stimulus.end > end + run.tr:
        raise ValueError(f"{where}: stimulus {stimulus.id!r} runs to {stimulus.end:g} s on its clock, but the scan of "
                         f"{run.n_trs} TRs of {run.tr:g} s from {start:g} s ends at {end:g} s; the run is shorter than "
                         "its stimulus (wrong n_trs, tr or first_scan_time?)")
    onsets = stimulus.events["onset"].to_numpy()
    if len(onsets) and not ((onsets >= start - run.tr) & (onsets < end)).any():
        raise ValueError(f"{where}: no event of stimulus {stimulus.id!r} falls inside the scan [{start:g}, {end:g}) s")


def _read_sound(stimulus: Stimulus, where: str) -> pd.DataFrame:
    """The one-row sound events of a stimulus with ``audio``; a missing or unreadable file names the run."""
    try:
        return stimulus.sound_events()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{where}: the audio of stimulus {stimulus.id!r}: {err}") from err
    except ValueError as err:
        raise ValueError(f"{where}: the audio of stimulus {stimulus.id!r} ({stimulus.audio}): {err}") from err


def _check_sound_timing(stimulus: Stimulus, sound: pd.DataFrame, run: Run, where: str) -> None:
    """The sound must be heard during the scan. It may start before the first scan and end after the last (a
    story whose first and last scans were trimmed off its responses, a recording with trailing silence); a sound
    that outlasts the scan by more than one TR is only warned about, since its end reaches no TR."""
    start, end = run.first_scan_time, run.first_scan_time + run.n_trs * run.tr
    onsets = sound["onset"].to_numpy(dtype=float)
    stops = onsets + sound["duration"].to_numpy(dtype=float)
    scan = f"the scan of {run.n_trs} TRs of {run.tr:g} s from {start:g} s"
    if not ((onsets < end) & (stops > start - run.tr)).any():
        raise ValueError(f"{where}: the audio of stimulus {stimulus.id!r} ({stimulus.audio}, {onsets.min():g} to "
                         f"{stops.max():g} s on its clock) is not heard during {scan} (to {end:g} s)")
    if stops.max() > end + run.tr:
        warnings.warn(f"{where}: the audio of stimulus {stimulus.id!r} ({stimulus.audio}) runs to {stops.max():g} s "
                      f"on its clock, past the end of {scan} at {end:g} s; what is heard after it reaches no TR "
                      "(trimmed scans, trailing silence, or the wrong sound file?)", UserWarning, stacklevel=4)


DATASETS: dict[str, Callable[..., Dataset]] = {}
"""Dataset loaders by name: each takes keyword settings and returns a :class:`Dataset`."""


def register_dataset(name: str):
    """Decorator adding a loader to :data:`DATASETS` under ``name``."""
    def add(loader: Callable[..., Dataset]) -> Callable[..., Dataset]:
        DATASETS[name] = loader
        return loader
    return add


def load_dataset(loader: str, **settings) -> Dataset:
    """The dataset of the loader registered as ``loader``, given its settings."""
    if loader not in DATASETS:
        raise ValueError(f"unknown dataset loader {loader!r}; registered loaders: {sorted(DATASETS)}")
    return DATASETS[loader](**settings)
