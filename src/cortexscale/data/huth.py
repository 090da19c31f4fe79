"""Huth-lab story listening data: one HDF5 of responses per subject and story, one word TextGrid per story,
and optionally one sound file per story.

Layout (the ``derivative/`` folder of LeBel et al. 2023, OpenNeuro ds003020, also used by Antonello et al.
2023; folder names, file suffixes and dataset name are settings)::

    <root>/preprocessed_data/<subject>/<story>.hf5   dataset "data": (n_trs, n_voxels) float responses,
                                                     or (n_repeats, n_trs, n_voxels) for a repeated story
    <root>/TextGrids/<story>.TextGrid                the story's words, on its audio clock
    <audio>/<story>.wav                              optional: the story's sound, starting at 0 s on the
                                                     TextGrid clock (ds003020: ``audio="../stimuli"``)

Each story is a text stimulus (its TextGrid's word tier, pauses dropped; with ``audio``, its sound file as
the stimulus's ``audio``, for speech models) and each (subject, story) a run.

Timing. ``first_scan_time`` is the time, on the TextGrid clock, of row 0 of the stored response arrays.
``trim_start`` and ``trim_end`` then drop that many TRs from the start and end of every story's responses
(and repeats), so a run's first scan is at ``first_scan_time + trim_start * tr``. The defaults (0, no trim)
suit arrays whose row 0 is the scan at which the story starts.

The Huth-lab convention, as read in the code released with the data (HuthLab/deep-fMRI-dataset): scan k of a
story is taken to be at ``k * 2 s - 10 s`` on the story clock (the audio starts 10 s after the first scan;
the code simulates 5 scans fewer than a story's count, its ``pad``), the word features are cut to rows
``[5 + trim : -trim]`` with ``trim = 5``, and the released response arrays hold just those rows. Row 0 of
those files is therefore scan 10, at 10 s on the story clock: load them with ``first_scan_time=10.0`` and no
trim. The same arithmetic covers other cuts: arrays that hold every simulated scan, from -10 s, give the same
rows with ``first_scan_time=-10.0, trim_start=10, trim_end=5``.

A story's repeats (a test story heard several times) come from a 3-D response array, whose mean over repeats
becomes the run's responses, or from several files found with the ``repeats`` pattern. Reading needs h5py:
``pip install cortexscale[data]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import Dataset, Run, Stimulus, register_dataset
from .events import events_from_textgrid
from .generic import HDF5Source, hdf5_shape

__all__ = ["huth_dataset"]


@dataclass(frozen=True)
class _MeanOfRepeats:
    """The mean over axis 0 of a (n_repeats, n_trs, n_voxels) source, (n_trs, n_voxels) float64."""

    source: HDF5Source

    def __call__(self) -> np.ndarray:
        return np.asarray(self.source(), dtype=np.float64).mean(axis=0)


@dataclass(frozen=True)
class _Stacked:
    """Several (n_trs, n_voxels) sources stacked into (n_sources, n_trs, n_voxels)."""

    sources: tuple[HDF5Source, ...]

    def __call__(self) -> np.ndarray:
        return np.stack([source() for source in self.sources])


def _names(value, what: str) -> list[str] | None:
    """A list of names given as a list or as a file with one per line (blank lines skipped); None stays None."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        path = Path(value).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{what} file not found: {path}")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        source = str(path)
    else:
        names, source = [str(name) for name in value], "the list"
    if not names:
        raise ValueError(f"{what}: {source} names nothing")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what}: {source} names {repeated} more than once")
    return names


def _splits(stories, train_stories, test_stories) -> list[tuple[str, str]]:
    """(story, split) pairs, train stories first, each in the order given."""
    stories = _names(stories, "stories")
    train, test = _names(train_stories, "train_stories"), _names(test_stories, "test_stories")
    if stories is not None and (train is not None or test is not None):
        raise ValueError("give stories= (all for training) or train_stories=/test_stories=, not both")
    train = stories if stories is not None else train or []
    test = test or []
    if not train and not test:
        raise ValueError("no stories: give stories= or train_stories= and test_stories= (lists or files)")
    both = sorted(set(train) & set(test))
    if both:
        raise ValueError(f"stories {both} are both train and test stories")
    return [(story, "train") for story in train] + [(story, "test") for story in test]


def _subjects(folder: Path, subjects) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"Huth-lab responses folder not found: {folder}")
    present = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if subjects is None:
        if not present:
            raise FileNotFoundError(f"no subject folders in {folder}")
        return present
    if isinstance(subjects, str):
        raise ValueError(f"subjects must be a list of subject folder names, got the string {subjects!r}")
    missing = [s for s in subjects if s not in present]
    if missing:
        raise FileNotFoundError(f"subject folder(s) {missing} not found in {folder}; subjects found: {present}")
    return list(subjects)


def _check_trims(trim_start, trim_end, tr, first_scan_time) -> None:
    for name, value in (("trim_start", trim_start), ("trim_end", trim_end)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative whole number of TRs, got {value!r}")
    if isinstance(tr, bool) or not isinstance(tr, (int, float)) or not tr > 0:
        raise ValueError(f"tr must be a positive number of seconds, got {tr!r}")
    if isinstance(first_scan_time, bool) or not isinstance(first_scan_time, (int, float)) or not np.isfinite(
            first_scan_time):
        raise ValueError(f"first_scan_time must be a finite number of seconds, got {first_scan_time!r}")


@dataclass(frozen=True)
class _Settings:
    folder: Path
    suffix: str
    dataset: str
    trim_start: int
    trim_end: int
    repeats: str | None


@dataclass(frozen=True)
class _Story:
    """One subject's responses to one story: the sources, the kept scans and the number of voxels."""

    source: object
    repeats: object
    n_trs: int
    n_voxels: int


def _rows(shape: tuple[int, ...], settings: _Settings, path: Path, where: str) -> tuple[int, int]:
    n_trs = shape[-2]
    stop = n_trs - settings.trim_end
    if stop - settings.trim_start < 1:
        raise ValueError(f"{where}: {path} has {n_trs} TRs, too few to trim {settings.trim_start} at the start "
                         f"and {settings.trim_end} at the end")
    return settings.trim_start, stop


def _repeat_files(subject_folder: Path, story: str, settings: _Settings, shape, where: str) -> tuple[Path, ...]:
    """The repeat files of a story, each checked to hold an array of the story's (n_trs, n_voxels) shape."""
    files = sorted(subject_folder.glob(settings.repeats.format(story=story)))
    if files and len(shape) == 3:
        raise ValueError(f"{where}: the story's responses already hold repeats (shape {shape}) and the repeats "
                         f"pattern {settings.repeats!r} finds {len(files)} more files; keep one of the two")
    if len(files) == 1:
        raise ValueError(f"{where}: the repeats pattern {settings.repeats!r} finds one file ({files[0]}); "
                         "repeats need at least two")
    for path in files:
        found, _ = hdf5_shape(path, settings.dataset, where)
        if found != shape:
            raise ValueError(f"{where}: repeat {path} has shape {found}; the story's responses are {shape}")
    return tuple(files)


def _story(subject: str, story: str, split: str, settings: _Settings) -> _Story:
    where = f"subject {subject}, story {story!r}"
    path = settings.folder / subject / f"{story}{settings.suffix}"
    if not path.is_file():
        raise FileNotFoundError(f"{where}: responses not found: {path}")
    shape, _ = hdf5_shape(path, settings.dataset, where)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[0] < 2):
        raise ValueError(f"{where}: {path} dataset {settings.dataset!r} has shape {shape}; expected (n_trs, "
                         "n_voxels) or (n_repeats >= 2, n_trs, n_voxels)")
    rows = _rows(shape, settings, path, where)
    whole = HDF5Source(path, settings.dataset, rows)
    source, repeats = (_MeanOfRepeats(whole), whole) if len(shape) == 3 else (whole, None)
    if split == "test" and settings.repeats is not None:
        files = _repeat_files(path.parent, story, settings, shape, where)
        if files:
            repeats = _Stacked(tuple(HDF5Source(p, settings.dataset, rows) for p in files))
    return _Story(source, repeats, rows[1] - rows[0], shape[-1])


def _check_voxels(stories: dict[tuple[str, str], _Story]) -> int:
    counts: dict[int, list[str]] = {}
    for (subject, story), item in stories.items():
        counts.setdefault(item.n_voxels, []).append(f"{subject}/{story}")
    if len(counts) > 1:
        found = "; ".join(f"{n} voxels in {runs[:3]}" for n, runs in counts.items())
        raise ValueError(f"responses differ in their number of voxels ({found}); a dataset has one set of targets, "
                         "so load subjects whose voxel counts differ one at a time (subjects=[...])")
    return next(iter(counts))


def _targets(target_names, n_voxels: int) -> tuple[str, ...]:
    if target_names is None:
        return tuple(f"v{i}" for i in range(n_voxels))
    names = _names(target_names, "target_names")
    if len(names) != n_voxels:
        raise ValueError(f"target_names lists {len(names)} names; the responses have {n_voxels} voxels")
    return tuple(names)


def _sound(folder: Path | None, story: str, suffix: str) -> Path | None:
    """The sound file of a story in ``folder`` (None: no audio folder given)."""
    if folder is None:
        return None
    path = folder / f"{story}{suffix}"
    if not path.is_file():
        raise FileNotFoundError(f"sound of story {story!r} not found: {path}")
    return path


def _stimulus(folder: Path, story: str, tier: str | None, sound: Path | None) -> Stimulus:
    path = folder / f"{story}.TextGrid"
    if not path.is_file():
        raise FileNotFoundError(f"TextGrid of story {story!r} not found: {path}")
    return Stimulus(story, "text", events_from_textgrid(path, tier=tier), audio=sound)


def _audio_folder(root: Path, audio: str | None) -> Path | None:
    """The sound folder, relative to ``root`` unless absolute; None stays None."""
    if audio is None:
        return None
    folder = Path(audio).expanduser()
    return folder if folder.is_absolute() else root / folder


@register_dataset("huth")
def huth_dataset(root, subjects=None, *, stories=None, train_stories=None, test_stories=None,
                 responses: str = "preprocessed_data", textgrids: str = "TextGrids", suffix: str = ".hf5",
                 dataset: str = "data", tr: float = 2.0, first_scan_time: float = 0.0, trim_start: int = 0,
                 trim_end: int = 0, repeats: str | None = None, target_names=None, tier: str | None = None,
                 audio: str | None = None, audio_suffix: str = ".wav") -> Dataset:
    """Huth-lab stories as a :class:`~cortexscale.data.Dataset` (layout and timing: see the module docstring).

    Parameters
    ----------
    root : path
        The folder holding ``responses`` and ``textgrids``.
    subjects : list of str, optional
        Subject folders (e.g. ``["UTS01"]``); default all. All must have the same number of voxels.
    stories, train_stories, test_stories : list of str or a file with one story per line
        ``stories`` are all train stories; or give ``train_stories`` and ``test_stories``.
    responses, textgrids : str
        Folders under ``root``; default "preprocessed_data" and "TextGrids".
    suffix, dataset : str
        Response files are ``<story><suffix>`` (default ".hf5") holding the HDF5 dataset ``dataset``.
    tr : float, default 2.0
        Seconds between scans.
    first_scan_time : float, default 0.0
        Seconds on the TextGrid clock at row 0 of the stored responses.
    trim_start, trim_end : int, default 0
        TRs dropped from the start and end of every story's responses; moves the first scan by
        ``trim_start * tr``.
    repeats : str, optional
        A glob pattern in the subject folder, with ``{story}``, for separate repeat files of test stories
        (e.g. ``"{story}_rep*.hf5"``), each (n_trs, n_voxels): they become the run's repeats.
    target_names : list of str or a file, optional
        Voxel names; default ``v0`` .. ``v{n-1}``.
    tier : str, optional
        The TextGrid tier of words; default the one named "word" or "words".
    audio : str, optional
        The folder of the stories' sound files, relative to ``root`` or absolute (ds003020's derivative root:
        ``"../stimuli"``); each story's stimulus gets ``audio=<audio>/<story><audio_suffix>``, which starts at
        0 s on the TextGrid clock. Default: no sound (text stimuli only).
    audio_suffix : str, default ".wav"
        The suffix of the sound files.

    Returns
    -------
    Dataset
        Per subject, one run per story (train stories first), named and presenting the story; responses
        (n_trs, n_voxels) read from the HDF5 files on access.

    Raises
    ------
    FileNotFoundError
        A folder, a subject, a story's responses, its TextGrid or (with ``audio``) its sound file is missing;
        the message names the story or the file.
    ValueError
        Bad settings, arrays of the wrong shape, too short to trim, or voxel counts that differ.
    """
    _check_trims(trim_start, trim_end, tr, first_scan_time)
    root = Path(root).expanduser()
    plan = _splits(stories, train_stories, test_stories)
    settings = _Settings(root / responses, suffix, dataset, int(trim_start), int(trim_end), repeats)
    chosen = _subjects(settings.folder, subjects)
    loaded = {(subject, story): _story(subject, story, split, settings)
              for subject in chosen for story, split in plan}
    targets = _targets(target_names, _check_voxels(loaded))
    sounds = _audio_folder(root, audio)
    stimuli = {story: _stimulus(root / textgrids, story, tier, _sound(sounds, story, audio_suffix))
               for story, _ in plan}
    start = float(first_scan_time) + trim_start * float(tr)
    runs = tuple(Run(subject=subject, name=story, stimulus=story, tr=float(tr), first_scan_time=start,
                     n_trs=loaded[subject, story].n_trs, split=split, source=loaded[subject, story].source,
                     repeats_source=loaded[subject, story].repeats)
                 for subject in chosen for story, split in plan)
    described = {"root": str(root.resolve()), "responses": responses, "textgrids": textgrids, "suffix": suffix,
                 "dataset": dataset, "subjects": chosen, "stories": plan, "tr": tr, "first_scan_time": first_scan_time,
                 "trim": [trim_start, trim_end], "repeats": repeats, "tier": tier,
                 "target_names": None if target_names is None else str(target_names)}
    if sounds is not None:
        described.update(audio=str(sounds.resolve()), audio_suffix=audio_suffix)
    identity = json.dumps(described)
    return Dataset(name="huth", targets=targets, stimuli=stimuli, runs=runs, identity=f"huth:{identity}")
