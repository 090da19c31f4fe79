"""Any dataset of arrays on disk, described by one YAML or JSON sidecar.

The sidecar names the stimuli (an events file each), the runs (a responses array each) and the targets;
:func:`generic_dataset` checks it and returns a :class:`~cortexscale.data.Dataset` whose responses are read
only when asked for (a memory-mapped ``.npy``, or an HDF5 dataset read on each access). A full example, with
every key (paths are relative to the sidecar's folder; ``~`` and absolute paths work too)::

    name: my-study                 # optional; default: the sidecar's file name without extension
    tr: 2.0                        # seconds between scans, for every run that does not set its own
    targets: targets.txt           # a file with one name per line, a list [V1, V2, ...], or a count (t0, t1, ...)
    atlas: atlas.nii.gz            # optional: the NIfTI whose labels are the targets
    stimuli:
      - id: story1
        modality: text             # text, audio or video
        events: events/story1.tsv  # BIDS events TSV (onset, duration, value/trial_type/word) or a TextGrid
        audio: audio/story1.wav    # optional: the sound, from 0 s on the stimulus clock; text and video only
      - id: movie1
        modality: video
        events: events/movie1.tsv  # values are frame indices
        frames: frames/movie1      # the frame store folder; video stimuli only
        audio: audio/movie1.wav    # optional: the soundtrack
    runs:
      - subject: s01
        name: story1-run1          # optional; default: the stimulus id; unique within the subject
        stimulus: story1
        responses: bold/s01_story1.npy       # (n_trs, n_targets) array
        first_scan_time: 10.0      # optional, default 0: seconds on the stimulus clock at scan 0
        split: train               # optional: train (default) or test
      - subject: s01
        stimulus: movie1
        responses: bold/s01.h5:movie1/mean   # HDF5 file (.h5, .hdf5, .hf5) ':' path of the dataset inside
        repeats: bold/s01.h5:movie1/repeats  # optional (n_repeats, n_trs, n_targets) array
        tr: 1.5                    # optional: this run's own TR
        split: test

JSON sidecars hold the same keys. Any other key is an error, as is a missing file, a responses array that is
not (n_trs, n_targets), or repeats that are not (n_repeats, n_trs, n_targets); every message names the
sidecar, the field (such as ``runs[3].responses``) and what was expected.

Reading HDF5 files needs h5py and YAML sidecars need PyYAML: ``pip install cortexscale[data]``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import MODALITIES, SPLITS, Dataset, Run, Stimulus, register_dataset
from .events import events_from_textgrid, read_events_tsv

__all__ = ["HDF5Source", "NpySource", "generic_dataset", "import_optional"]

TOP_KEYS = {"name", "tr", "targets", "atlas", "stimuli", "runs"}
STIMULUS_KEYS = {"id", "modality", "events", "frames", "audio"}
RUN_KEYS = {"subject", "name", "stimulus", "responses", "first_scan_time", "split", "repeats", "tr"}
HDF5_SUFFIXES = (".h5", ".hdf5", ".hf5")
_HDF5_SPEC = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5|hf5)):(?P<name>.+)$", re.IGNORECASE)


def import_optional(module: str, package: str | None = None):
    """Import ``module`` of the optional "data" extra, or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{module} is needed here but is not installed ({package or module}, from the "
                          "optional 'data' extra): pip install 'cortexscale[data]'") from err


@dataclass(frozen=True)
class NpySource:
    """Responses in a ``.npy`` file, memory-mapped on each call (nothing is read until indexed)."""

    path: Path

    def __call__(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")


@dataclass(frozen=True)
class HDF5Source:
    """Dataset ``name`` of the HDF5 file ``path``, read on each call (the file is closed in between).

    rows : (start, stop) or None
        Only scans ``start:stop`` along axis -2 (the TR axis of (n_trs, n_targets) and of
        (n_repeats, n_trs, n_targets) arrays) are read.
    """

    path: Path
    name: str
    rows: tuple[int, int] | None = None

    def __call__(self) -> np.ndarray:
        h5py = import_optional("h5py")
        with h5py.File(self.path, "r") as handle:
            data = handle[self.name]
            if self.rows is None:
                return data[()]
            return data[(Ellipsis, slice(*self.rows), slice(None))]


def hdf5_shape(path: Path, name: str, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of dataset ``name`` in the HDF5 file ``path``; errors start with ``where``."""
    h5py = import_optional("h5py")
    if not path.is_file():
        raise FileNotFoundError(f"{where}: HDF5 file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{where}: {path} could not be opened as an HDF5 file: {err}") from err
    with handle:
        data = handle.get(name)
        if not isinstance(data, h5py.Dataset):
            found = []
            handle.visititems(lambda key, item: found.append(key) if isinstance(item, h5py.Dataset) else None)
            raise ValueError(f"{where}: {path} has no dataset {name!r}; datasets found: {found}")
        return tuple(data.shape), data.dtype


class _Sidecar:
    """A parsed sidecar and the helpers that check its fields; every error names the file and the field."""

    def __init__(self, path: Path):
        self.path = path
        self.folder = path.parent
        self.text = path.read_text(encoding="utf-8")
        self.content = self._parse()

    def _parse(self):
        suffix = self.path.suffix.lower()
        if suffix == ".json":
            try:
                return json.loads(self.text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{self.path} is not valid JSON: {err}") from err
        if suffix in (".yaml", ".yml"):
            yaml = import_optional("yaml", "PyYAML")
            try:
                return yaml.safe_load(self.text)
            except yaml.YAMLError as err:
                raise ValueError(f"{self.path} is not valid YAML: {err}") from err
        raise ValueError(f"{self.path}: a dataset sidecar must end in .yaml, .yml or .json")

    def error(self, field: str, message: str) -> ValueError:
        return ValueError(f"{self.path}: {field}: {message}")

    def mapping(self, value, field: str, allowed: set[str], required: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.error(field, f"expected a mapping with keys {sorted(allowed)}, got {type(value).__name__}")
        unknown = sorted(set(map(str, value)) - allowed)
        if unknown:
            raise self.error(field, f"unknown key(s) {unknown}; allowed keys: {sorted(allowed)}")
        missing = [key for key in required if key not in value]
        if missing:
            raise self.error(field, f"missing required key(s) {missing}")
        return value

    def items(self, value, field: str) -> list:
        if not isinstance(value, list) or not value:
            raise self.error(field, f"expected a non-empty list, got {value!r}")
        return value

    def text_field(self, value, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(field, f"expected a non-empty string, got {value!r}")
        return value

    def number(self, value, field: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or (
                positive and value <= 0):
            raise self.error(field, f"expected a {'positive ' if positive else ''}finite number, got {value!r}")
        return float(value)

    def choice(self, value, field: str, options: tuple[str, ...]) -> str:
        if value not in options:
            raise self.error(field, f"expected one of {options}, got {value!r}")
        return value

    def file(self, value, field: str, folder: bool = False) -> Path:
        path = Path(self.text_field(value, field)).expanduser()
        path = path if path.is_absolute() else self.folder / path
        if not (path.is_dir() if folder else path.is_file()):
            raise FileNotFoundError(f"{self.path}: {field}: {'folder' if folder else 'file'} not found: {path}")
        return path


def _unique(names: list[str], sidecar: _Sidecar, field: str) -> tuple[str, ...]:
    seen = set()
    for i, name in enumerate(names):
        if name in seen:
            raise sidecar.error(field, f"name {name!r} appears twice (again at position {i})")
        seen.add(name)
    return tuple(names)


def _targets(sidecar: _Sidecar, value) -> tuple[str, ...]:
    """Target names from a list, a count (t0, t1, ...) or a file with one name per line."""
    if isinstance(value, list) and value:
        return _unique([sidecar.text_field(v, f"targets[{i}]") for i, v in enumerate(value)], sidecar, "targets")
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise sidecar.error("targets", f"a count of targets must be positive, got {value}")
        return tuple(f"t{i}" for i in range(value))
    if isinstance(value, str):
        path = sidecar.file(value, "targets")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not names:
            raise sidecar.error("targets", f"{path} lists no target names")
        return _unique(names, sidecar, f"targets ({path})")
    raise sidecar.error("targets", f"expected a list of names, a positive count or a file, got {value!r}")


def _events(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".textgrid":
        return events_from_textgrid(path)
    return read_events_tsv(path)


def _stimulus(sidecar: _Sidecar, value, i: int) -> Stimulus:
    field = f"stimuli[{i}]"
    entry = sidecar.mapping(value, field, STIMULUS_KEYS, ("id", "modality", "events"))
    stimulus_id = sidecar.text_field(entry["id"], f"{field}.id")
    modality = sidecar.choice(entry["modality"], f"{field}.modality", MODALITIES)
    if (modality == "video") != ("frames" in entry):
        raise sidecar.error(field, f"a video stimulus needs frames (a frame store folder) and only a video "
                                   f"stimulus takes one (modality {modality!r})")
    frames = sidecar.file(entry["frames"], f"{field}.frames", folder=True) if "frames" in entry else None
    if modality == "audio" and "audio" in entry:
        raise sidecar.error(f"{field}.audio", "an audio stimulus takes no audio (its events already are its sound "
                                              "files); audio is the sound of a text or video stimulus")
    audio = sidecar.file(entry["audio"], f"{field}.audio") if "audio" in entry else None
    events_path = sidecar.file(entry["events"], f"{field}.events")
    try:
        events = _events(events_path)
    except ValueError as err:
        raise sidecar.error(f"{field}.events", str(err)) from err
    return Stimulus(stimulus_id, modality, events, frames, audio=audio)


def _array_source(sidecar: _Sidecar, value, field: str):
    """A lazy source for ``file.npy`` or ``file.h5:path/in/file``, and its shape (read from the header)."""
    spec = sidecar.text_field(value, field)
    match = _HDF5_SPEC.match(spec)
    if match:
        path = sidecar.file(match["file"], field)
        shape, dtype = hdf5_shape(path, match["name"], f"{sidecar.path}: {field}")
        source = HDF5Source(path, match["name"])
    elif spec.lower().endswith(".npy"):
        path = sidecar.file(spec, field)
        try:
            header = np.load(path, mmap_mode="r")
        except ValueError as err:
            raise sidecar.error(field, f"{path} could not be read as a .npy array: {err}") from err
        shape, dtype = header.shape, header.dtype
        source = NpySource(path)
    elif spec.lower().endswith(HDF5_SUFFIXES):
        raise sidecar.error(field, f"name the dataset inside the HDF5 file: {spec}:path/to/dataset")
    else:
        raise sidecar.error(field, f"expected a .npy file or an HDF5 'file.h5:dataset/path', got {spec!r}")
    if not (np.issubdtype(dtype, np.number) or dtype == bool):
        raise sidecar.error(field, f"{spec} holds {dtype} values, not numbers")
    return source, shape


def _run(sidecar: _Sidecar, value, i: int, tr: float, n_targets: int, stimuli: dict) -> Run:
    field = f"runs[{i}]"
    entry = sidecar.mapping(value, field, RUN_KEYS, ("subject", "stimulus", "responses"))
    stimulus = sidecar.text_field(entry["stimulus"], f"{field}.stimulus")
    if stimulus not in stimuli:
        raise sidecar.error(f"{field}.stimulus", f"{stimulus!r} is not one of the stimuli {sorted(stimuli)}")
    source, shape = _array_source(sidecar, entry["responses"], f"{field}.responses")
    if len(shape) != 2 or shape[0] < 1 or shape[1] != n_targets:
        raise sidecar.error(f"{field}.responses", f"expected an (n_trs, {n_targets}) array (n_targets from "
                                                  f"'targets'), got shape {shape}")
    repeats = None
    if "repeats" in entry:
        repeats, repeats_shape = _array_source(sidecar, entry["repeats"], f"{field}.repeats")
        if len(repeats_shape) != 3 or repeats_shape[0] < 2 or repeats_shape[1:] != shape:
            raise sidecar.error(f"{field}.repeats", f"expected an (n_repeats >= 2, {shape[0]}, {shape[1]}) array "
                                                    f"(the responses are {shape}), got shape {repeats_shape}")
    return Run(subject=sidecar.text_field(entry["subject"], f"{field}.subject"),
               name=sidecar.text_field(entry.get("name", stimulus), f"{field}.name"),
               stimulus=stimulus,
               tr=sidecar.number(entry["tr"], f"{field}.tr", positive=True) if "tr" in entry else tr,
               first_scan_time=sidecar.number(entry.get("first_scan_time", 0.0), f"{field}.first_scan_time"),
               n_trs=shape[0],
               split=sidecar.choice(entry.get("split", "train"), f"{field}.split", SPLITS),
               source=source, repeats_source=repeats)


def _check_unique_runs(sidecar: _Sidecar, runs: list[Run]) -> None:
    seen = {}
    for i, run in enumerate(runs):
        if (run.subject, run.name) in seen:
            raise sidecar.error(f"runs[{i}].name", f"run {run.label} is already runs[{seen[run.subject, run.name]}]; "
                                                   "give the runs of one subject distinct names")
        seen[run.subject, run.name] = i


def _stimuli(sidecar: _Sidecar, entries: list) -> dict[str, Stimulus]:
    stimuli = {}
    for i, entry in enumerate(entries):
        stimulus = _stimulus(sidecar, entry, i)
        if stimulus.id in stimuli:
            raise sidecar.error(f"stimuli[{i}].id", f"stimulus id {stimulus.id!r} appears twice")
        stimuli[stimulus.id] = stimulus
    return stimuli


@register_dataset("generic")
def generic_dataset(path) -> Dataset:
    """The dataset described by the YAML or JSON sidecar ``path`` (format: see the module docstring).

    Returns
    -------
    Dataset
        Runs in sidecar order; responses (n_trs, n_targets) read on access; ``identity`` names the sidecar
        and a hash of its text.

    Raises
    ------
    FileNotFoundError
        The sidecar or a file it names is missing; the message names the sidecar, the field and the path.
    ValueError
        A field is missing, unknown or of the wrong type or shape; the message names the sidecar and the field.
    ImportError
        An HDF5 file or a YAML sidecar without h5py or PyYAML installed.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"dataset sidecar not found: {path}")
    sidecar = _Sidecar(path)
    top = sidecar.mapping(sidecar.content, "top level", TOP_KEYS, ("tr", "targets", "stimuli", "runs"))
    tr = sidecar.number(top["tr"], "tr", positive=True)
    targets = _targets(sidecar, top["targets"])
    atlas = sidecar.file(top["atlas"], "atlas") if "atlas" in top else None
    stimuli = _stimuli(sidecar, sidecar.items(top["stimuli"], "stimuli"))
    runs = [_run(sidecar, entry, i, tr, len(targets), stimuli) for i, entry in
            enumerate(sidecar.items(top["runs"], "runs"))]
    _check_unique_runs(sidecar, runs)
    name = sidecar.text_field(top.get("name", path.stem), "name")
    digest = hashlib.sha256(sidecar.text.encode("utf-8")).hexdigest()[:16]
    return Dataset(name=name, targets=targets, stimuli=stimuli, runs=tuple(runs), atlas=atlas,
                   identity=f"generic:{path.resolve()}#{digest}")
