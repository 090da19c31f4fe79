"""fMRIPrep derivatives of a BIDS dataset, masked to parcels (an atlas) or voxels (a mask).

Files read, per run (``ses-<label>/`` folders and further entities such as ``acq-`` are optional)::

    <root>/sub-01/func/sub-01_task-listen_run-1_events.tsv
        onset, duration (seconds from the run's first scan) and value, trial_type or word
    <derivatives>/sub-01/func/sub-01_task-listen_run-1_space-<space>_desc-preproc_bold.nii.gz
        the preprocessed BOLD series (x, y, z, n_trs); its header gives the TR, unless
    <derivatives>/sub-01/func/sub-01_task-listen_run-1_space-<space>_desc-preproc_bold.json
        exists and holds RepetitionTime (seconds)
    <derivatives>/sub-01/func/sub-01_task-listen_run-1_desc-confounds_timeseries.tsv
        fMRIPrep's confounds, one row per scan (``desc-confounds_regressors.tsv`` in old fMRIPrep);
        read only when ``confounds`` names columns to regress out

Events are timed from the run's first scan, so every run presents a stimulus of its own (id
``sub-01_task-listen_run-1``) and its first scan is at 0 s. Subjects are named ``sub-<label>`` and runs by their
remaining entities (``task-listen_run-1``).

The BOLD series is reduced to targets only when a run's responses are read: the mean of every atlas label
(nilearn's ``NiftiLabelsMasker``; targets in ascending label order) or every voxel of a mask (``NiftiMasker``;
C order of the mask's (i, j, k) indices). Then, in this order, the chosen confounds are regressed out (with
their means removed, so each target keeps its own mean) and, with ``standardize``, each target is z-scored
over the run. The masked series can be cached as ``.npy`` files keyed by the BOLD and atlas files' paths,
sizes and modification times, so later reads skip the masking; without that cache each process keeps the
series it masked in memory (up to ``MEMORY_LIMIT`` bytes, the least recently read dropped first), so a study's
data check and its many fits mask each run once per process. Confounds and z-scoring are applied on every
read. Needs nibabel and nilearn: ``pip install cortexscale[data]``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path
from .datasets import Dataset, Run, Stimulus, register_dataset
from .events import read_events_tsv
from .generic import import_optional

__all__ = ["BoldSource", "bids_dataset", "read_confounds", "regress_out"]

DERIVATIVES = Path("derivatives") / "fmriprep"
CACHE_FOLDER = "cortexscale_cache"
CONFOUNDS_SUFFIXES = ("desc-confounds_timeseries.tsv", "desc-confounds_regressors.tsv")
DERIVED_ENTITIES = frozenset({"sub", "space", "res", "den", "desc"})
"""Entities fMRIPrep adds to a run's name (and the subject): the rest name the run and its raw files."""
_ENTITY = re.compile(r"^(?P<key>[a-zA-Z0-9]+)-(?P<value>[a-zA-Z0-9]+)$")
_AFFINE_TOLERANCE = 1e-4
MEMORY_LIMIT = 1 << 30
"""Bytes of masked series one process keeps in memory when no ``cache`` folder is given."""


class _Memory:
    """Masked series by identity, least recently read dropped first beyond ``MEMORY_LIMIT`` bytes; read-only."""

    def __init__(self):
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: str, values: np.ndarray) -> None:
        values.flags.writeable = False
        with self._lock:
            replaced = self._items.pop(key, None)
            self._bytes += values.nbytes - (replaced.nbytes if replaced is not None else 0)
            self._items[key] = values
            while self._bytes > MEMORY_LIMIT and self._items:
                self._bytes -= self._items.popitem(last=False)[1].nbytes


_MEMORY = _Memory()


def _zscore(values: np.ndarray) -> np.ndarray:
    """Each column to zero mean and unit (ddof=0) standard deviation; a column constant up to rounding -> 0."""
    centred = values - values.mean(axis=0)
    std = centred.std(axis=0)
    varies = std > 1e-10 * np.maximum(np.abs(values).max(axis=0), 1e-300)
    return np.divide(centred, std, out=np.zeros_like(centred), where=varies)


def regress_out(signals: np.ndarray, confounds: np.ndarray) -> np.ndarray:
    """Signals (n_trs, n_targets) minus their least-squares fit on the centred confounds (n_trs, n_confounds).

    Each column keeps its mean; what the confounds explain of its fluctuations is removed.
    """
    centred = confounds - confounds.mean(axis=0)
    weights, *_ = np.linalg.lstsq(centred, signals - signals.mean(axis=0), rcond=None)
    return signals - centred @ weights


def _fill_leading_nans(values: np.ndarray, columns: tuple[str, ...], path: Path) -> np.ndarray:
    """Leading NaNs (derivative and framewise-displacement columns start with n/a) -> 0; any other -> error."""
    values = values.copy()
    for j, column in enumerate(columns):
        finite = np.isfinite(values[:, j])
        if not finite.any():
            raise ValueError(f"confounds {path}: column {column!r} holds no number")
        first = int(np.argmax(finite))
        values[:first, j] = 0.0
        bad = np.flatnonzero(~finite[first:])
        if bad.size:
            raise ValueError(f"confounds {path}: column {column!r} is n/a or not a number at row {first + bad[0]} "
                             "(only leading rows may be n/a)")
    return values


def _check_columns(path: Path, header: pd.Index, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"confounds {path} have no column(s) {missing}; {len(header)} columns found, such as "
                         f"{list(header[:8])}")


def read_confounds(path, columns, n_trs: int) -> np.ndarray:
    """Columns ``columns`` of an fMRIPrep confounds TSV as float64 (n_trs, n_columns), leading n/a filled with 0.

    Raises ValueError naming the file when a column is missing, the row count is not ``n_trs`` or a value
    other than a leading n/a is not a number.
    """
    path, columns = Path(path), tuple(columns)
    table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    _check_columns(path, table.columns, columns)
    if len(table) != n_trs:
        raise ValueError(f"confounds {path} have {len(table)} rows; the BOLD run has {n_trs} scans")
    values = table.loc[:, list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    return _fill_leading_nans(values, columns, path)


def _file_key(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


@dataclass(frozen=True)
class BoldSource:
    """The responses (n_trs, n_targets) float32 of one BOLD run: masked once, then confounds and z-scoring on
    each call.

    bold : the 4-D BOLD image; targets : the atlas (kind "atlas") or mask (kind "mask") on the same grid;
    confounds, columns : the confounds TSV and the columns to regress out (none: no regression);
    standardize : z-score each target; cache : folder of masked series (``.npy``), or None to keep them
    in this process's memory (see ``MEMORY_LIMIT``).
    """

    bold: Path
    targets: Path
    kind: str
    shape: tuple[int, int]
    confounds: Path | None = None
    columns: tuple[str, ...] = ()
    standardize: bool = True
    cache: Path | None = None

    def __call__(self) -> np.ndarray:
        signals = self.masked().astype(np.float64)
        if self.columns:
            signals = regress_out(signals, read_confounds(self.confounds, self.columns, self.shape[0]))
        if self.standardize:
            signals = _zscore(signals)
        return signals.astype(np.float32)

    @property
    def cache_file(self) -> Path | None:
        """Where the masked series is cached: named after the BOLD file and a hash of both images' identity."""
        if self.cache is None:
            return None
        stem = self.bold.name.split(".")[0]
        return self.cache / f"{stem}_{self.kind}-{hashlib.sha256(self._identity().encode()).hexdigest()[:16]}.npy"

    def _identity(self) -> str:
        return json.dumps([_file_key(self.bold), _file_key(self.targets), self.kind])

    def masked(self) -> np.ndarray:
        """The series reduced to targets, (n_trs, n_targets) float32, before any confound or z-scoring."""
        if self.cache is None:
            identity = self._identity()
            values = _MEMORY.get(identity)
            if values is None:
                values = self._mask()
                _MEMORY.put(identity, values)
            return values
        cached = self.cache_file
        if cached.is_file():
            values = np.load(cached)
            if values.shape != self.shape:
                raise ValueError(f"cached series {cached} has shape {values.shape}, expected {self.shape}; "
                                 "delete the file to recompute it")
            return values
        values = self._mask()
        with atomic_path(cached, suffix=".npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, values)
        return values

    def _mask(self) -> np.ndarray:
        maskers = import_optional("nilearn.maskers", "nilearn")
        if self.kind == "atlas":
            masker = maskers.NiftiLabelsMasker(labels_img=str(self.targets), background_label=0, strategy="mean",
                                               resampling_target=None, standardize=None, reports=False)
        else:
            masker = maskers.NiftiMasker(mask_img=str(self.targets), standardize=None, reports=False)
        values = np.asarray(masker.fit_transform(str(self.bold)), dtype=np.float32)
        if values.shape != self.shape:
            raise ValueError(f"masking {self.bold} with {self.kind} {self.targets} gave shape {values.shape}, "
                             f"expected {self.shape} (n_trs, n_targets)")
        return values


@dataclass(frozen=True)
class _BoldFile:
    """One preprocessed BOLD file: its subject (``sub-01``), run name and folder relative to the derivatives."""

    path: Path
    subject: str
    name: str
    folder: Path
    order: tuple

    @property
    def prefix(self) -> str:
        return f"{self.subject}_{self.name}"


def _entities(path: Path) -> tuple[dict[str, str], str] | None:
    """The key-value entities and the suffix of a BIDS file name (``bold``), or None if it is not one."""
    stem = path.name.split(".")[0]
    *parts, suffix = stem.split("_")
    matches = [_ENTITY.match(part) for part in parts]
    if not parts or not all(matches):
        return None
    return {m["key"]: m["value"] for m in matches}, suffix


def _natural(value: str) -> tuple:
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def _bold_file(path: Path, derivatives: Path, entities: dict[str, str]) -> _BoldFile:
    named = [(key, value) for key, value in entities.items() if key not in DERIVED_ENTITIES]
    return _BoldFile(path=path, subject=f"sub-{entities['sub']}", name="_".join(f"{k}-{v}" for k, v in named),
                     folder=path.parent.relative_to(derivatives),
                     order=tuple((key, _natural(value)) for key, value in named))


def _find_bolds(derivatives: Path, task: str, space: str, res: str | None) -> list[_BoldFile]:
    wanted = {"task": task, "space": space, "desc": "preproc", **({} if res is None else {"res": res})}
    found = []
    for path in sorted(derivatives.glob("sub-*/**/sub-*_bold.nii*")):
        parsed = _entities(path)
        if parsed and parsed[1] == "bold" and "sub" in parsed[0] and all(
                parsed[0].get(k) == v for k, v in wanted.items()):
            found.append(_bold_file(path, derivatives, parsed[0]))
    if not found:
        raise FileNotFoundError(f"no preprocessed BOLD files (sub-*_task-{task}_*space-{space}_*desc-preproc_bold"
                                f".nii[.gz]{'' if res is None else f' with res-{res}'}) under {derivatives}")
    return found


def _check_unique(bolds: list[_BoldFile]) -> None:
    seen: dict[tuple[str, str], Path] = {}
    for bold in bolds:
        key = (bold.subject, bold.name)
        if key in seen:
            raise ValueError(f"two BOLD files for run {bold.subject}/{bold.name}: {seen[key]} and {bold.path}; "
                             "choose one with res= (or a more specific space=)")
        seen[key] = bold.path


def _select_subjects(bolds: list[_BoldFile], subjects, derivatives: Path) -> list[_BoldFile]:
    present = sorted({b.subject for b in bolds}, key=lambda s: _natural(s[4:]))
    if subjects is None:
        chosen = present
    else:
        if isinstance(subjects, str):
            raise ValueError(f"subjects must be a list of labels, got the string {subjects!r}")
        chosen = [s if str(s).startswith("sub-") else f"sub-{s}" for s in subjects]
        unknown = [s for s in chosen if s not in present]
        if unknown:
            raise ValueError(f"subject(s) {unknown} have no matching BOLD runs under {derivatives}; "
                             f"subjects found: {present}")
    rank = {s: i for i, s in enumerate(chosen)}
    return sorted((b for b in bolds if b.subject in rank), key=lambda b: (rank[b.subject], b.order))


def _target_file(atlas, mask) -> tuple[str, Path]:
    if (atlas is None) == (mask is None):
        raise ValueError("give exactly one of atlas= (a labels image: parcels) or mask= (a binary image: voxels); "
                         f"got atlas={atlas!r}, mask={mask!r}")
    kind, path = ("atlas", Path(atlas)) if atlas is not None else ("mask", Path(mask))
    if not path.is_file():
        raise FileNotFoundError(f"{kind} image not found: {path}")
    return kind, path


def _label_names(labels, values: np.ndarray, atlas: Path) -> tuple[str, ...]:
    """Names of the atlas labels ``values``: from a TSV (index, name), a list in label order, or parcel_<label>."""
    if labels is None:
        return tuple(f"parcel_{v}" for v in values)
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        if not path.is_file():
            raise FileNotFoundError(f"atlas labels file not found: {path}")
        table = pd.read_csv(path, sep="\t")
        if not {"index", "name"} <= set(table.columns):
            raise ValueError(f"atlas labels {path} need columns 'index' and 'name'; found {list(table.columns)}")
        names = dict(zip(table["index"].astype(int), table["name"].astype(str)))
        missing = [int(v) for v in values if v not in names]
        if missing:
            raise ValueError(f"atlas labels {path} do not name label(s) {missing} of atlas {atlas}")
        return tuple(names[v] for v in values)
    names = tuple(str(name) for name in labels)
    if len(names) != len(values):
        raise ValueError(f"labels list has {len(names)} names but atlas {atlas} has {len(values)} labels "
                         f"{values.tolist()}")
    return names


def _atlas_targets(data: np.ndarray, path: Path, labels) -> tuple[str, ...]:
    if not np.array_equal(data, np.round(data)):
        raise ValueError(f"atlas {path} holds non-integer values; an atlas is a labels image (0 = background)")
    values = np.unique(data.astype(np.int64))
    values = values[values != 0]
    if not values.size:
        raise ValueError(f"atlas {path} has no label other than background 0")
    names = _label_names(labels, values, path)
    if len(set(names)) != len(names):
        raise ValueError(f"atlas {path}: label names are not unique: {names}")
    return names


def _mask_targets(data: np.ndarray, path: Path) -> tuple[str, ...]:
    values = np.unique(data)
    if not set(values.tolist()) <= {0, 1}:
        raise ValueError(f"mask {path} must hold only 0 and 1, found values {values[:6].tolist()}")
    voxels = np.argwhere(data.astype(bool))
    if not len(voxels):
        raise ValueError(f"mask {path} selects no voxel")
    return tuple(f"voxel_{i}_{j}_{k}" for i, j, k in voxels)


def _read_targets(kind: str, path: Path, labels):
    """The image's (shape, affine) and target names."""
    nib = import_optional("nibabel")
    image = nib.load(path)
    data = np.asanyarray(image.dataobj)
    if data.ndim != 3:
        raise ValueError(f"{kind} {path} must be a 3-D image, got shape {data.shape}")
    if kind == "atlas":
        names = _atlas_targets(data, path, labels)
    else:
        if labels is not None:
            raise ValueError("labels= names atlas parcels; a mask's voxels are named voxel_<i>_<j>_<k>")
        names = _mask_targets(data, path)
    return (image.shape, image.affine), names


def _check_grid(bold: Path, image, kind: str, target: Path, grid) -> None:
    shape, affine = grid
    if image.ndim != 4:
        raise ValueError(f"BOLD {bold} must be a 4-D image (x, y, z, n_trs), got shape {image.shape}")
    problem = None
    if tuple(image.shape[:3]) != tuple(shape):
        problem = "their shapes differ"
    elif not np.allclose(image.affine, affine, atol=_AFFINE_TOLERANCE):
        problem = f"their affines differ by up to {np.abs(image.affine - affine).max():.4g}"
    if problem:
        raise ValueError(f"{kind} {target} (shape {tuple(shape)}) and BOLD {bold} (shape {tuple(image.shape[:3])} x "
                         f"{image.shape[3]} volumes) are not on the same grid: {problem}; resample the {kind} onto "
                         "the BOLD grid (nearest neighbour) or choose the matching space=")


def _tr(bold: Path, image) -> float:
    """Seconds between scans: RepetitionTime of the BOLD's JSON sidecar if it has one, else the header's."""
    sidecar = bold.with_name(bold.name.split(".")[0] + ".json")
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{sidecar} is not valid JSON: {err}") from err
        if "RepetitionTime" in meta:
            tr = meta["RepetitionTime"]
            if isinstance(tr, bool) or not isinstance(tr, (int, float)) or not tr > 0:
                raise ValueError(f"{sidecar}: RepetitionTime must be a positive number of seconds, got {tr!r}")
            return float(tr)
    zooms = image.header.get_zooms()
    unit = image.header.get_xyzt_units()[1]
    tr = float(zooms[3]) * {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0) if len(zooms) > 3 else 0.0
    if not tr > 0:
        raise ValueError(f"BOLD {bold} has no TR: its header's pixdim[4] is {tr} and {sidecar} gives no "
                         "RepetitionTime")
    return tr


def _confounds_file(bold: _BoldFile, derivatives: Path) -> Path:
    folder = derivatives / bold.folder
    candidates = [folder / f"{bold.prefix}_{suffix}" for suffix in CONFOUNDS_SUFFIXES]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"confounds of run {bold.subject}/{bold.name} not found: {candidates[0]}")


def _confound_columns(confounds) -> tuple[str, ...]:
    if isinstance(confounds, str) or not all(isinstance(c, str) for c in confounds):
        raise ValueError(f"confounds must be a list of column names, got {confounds!r}")
    return tuple(confounds)


def _cache_folder(cache, derivatives: Path) -> Path | None:
    if cache is None or cache is False:
        return None
    return derivatives / CACHE_FOLDER if cache is True else Path(cache)


def _test_names(test_runs, bolds: list[_BoldFile]) -> frozenset[str]:
    if isinstance(test_runs, str):
        raise ValueError(f"test_runs must be a list of run names, got the string {test_runs!r}")
    names = {b.name for b in bolds}
    unknown = sorted(set(test_runs) - names)
    if unknown:
        raise ValueError(f"test_runs {unknown} name no run; runs found: {sorted(names)}")
    return frozenset(test_runs)


@dataclass(frozen=True)
class _Settings:
    root: Path
    derivatives: Path
    kind: str
    target: Path
    columns: tuple[str, ...]
    standardize: bool
    modality: str
    cache: Path | None


def _run(bold: _BoldFile, settings: _Settings, grid, n_targets: int, split: str) -> tuple[Run, Stimulus]:
    nib = import_optional("nibabel")
    image = nib.load(bold.path)
    _check_grid(bold.path, image, settings.kind, settings.target, grid)
    events_path = settings.root / bold.folder / f"{bold.prefix}_events.tsv"
    if not events_path.is_file():
        raise FileNotFoundError(f"events of run {bold.subject}/{bold.name} not found: {events_path}")
    confounds = None
    if settings.columns:
        confounds = _confounds_file(bold, settings.derivatives)
        _check_columns(confounds, pd.read_csv(confounds, sep="\t", nrows=0).columns, settings.columns)
    n_trs = int(image.shape[3])
    source = BoldSource(bold=bold.path, targets=settings.target, kind=settings.kind, shape=(n_trs, n_targets),
                        confounds=confounds, columns=settings.columns, standardize=settings.standardize,
                        cache=settings.cache)
    stimulus = Stimulus(bold.prefix, settings.modality, read_events_tsv(events_path))
    run = Run(subject=bold.subject, name=bold.name, stimulus=bold.prefix, tr=_tr(bold.path, image),
              first_scan_time=0.0, n_trs=n_trs, split=split, source=source)
    return run, stimulus


def _folders(root, derivatives) -> tuple[Path, Path]:
    root = Path(root).expanduser()
    derivatives = root / DERIVATIVES if derivatives is None else Path(derivatives).expanduser()
    for what, folder in (("BIDS root", root), ("fMRIPrep derivatives folder", derivatives)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} not found: {folder}")
    return root, derivatives


@register_dataset("bids")
def bids_dataset(root, task: str, space: str, *, derivatives=None, res: str | None = None, subjects=None,
                 atlas=None, labels=None, mask=None, confounds=(), standardize: bool = True,
                 modality: str = "text", test_runs=(), cache=False) -> Dataset:
    """The runs of one task of a BIDS dataset with fMRIPrep derivatives.

    Parameters
    ----------
    root : path
        The BIDS dataset (raw ``events.tsv`` files).
    task, space : str
        The ``task-`` and ``space-`` entities of the BOLD files (e.g. "MNI152NLin2009cAsym").
    derivatives : path, optional
        fMRIPrep's output folder; default ``<root>/derivatives/fmriprep``.
    res : str, optional
        The ``res-`` entity, when fMRIPrep wrote the space at several resolutions.
    subjects : list of str, optional
        Labels with or without ``sub-``; default every subject with a matching run, in label order.
    atlas, labels : path, optional
        A labels image (0 = background) on the BOLD grid: targets are its parcels, named by ``labels`` (a TSV
        with ``index`` and ``name`` columns, or a list in ascending label order) or ``parcel_<label>``.
    mask : path, optional
        A 0/1 image on the BOLD grid: targets are its voxels, ``voxel_<i>_<j>_<k>``. Give ``atlas`` or ``mask``.
    confounds : list of str
        Confound columns to regress out of every run (e.g. ``["trans_x", "framewise_displacement"]``).
    standardize : bool, default True
        Z-score every target within its run.
    modality : "text" or "audio"
        What the events' values are.
    test_runs : list of str
        Run names (``task-listen_run-4``) held out as the test split, for every subject.
    cache : bool or path
        Keep the masked series as ``.npy``: True for ``<derivatives>/cortexscale_cache``, or a folder.

    Returns
    -------
    Dataset
        One run per BOLD file and one stimulus per run; responses (n_trs, n_targets) computed on read.

    Raises
    ------
    FileNotFoundError
        A folder, the atlas or mask, or a run's events or confounds file is missing (the message names it).
    ValueError
        A bad setting, or an atlas or mask not on a BOLD file's grid (both files and shapes are named); all
        before any masking.
    """
    import_optional("nilearn")
    if modality not in ("text", "audio"):
        raise ValueError(f"modality must be 'text' or 'audio' (a video stimulus needs a frame store), got "
                         f"{modality!r}")
    root, derivatives = _folders(root, derivatives)
    kind, target = _target_file(atlas, mask)
    grid, targets = _read_targets(kind, target, labels)
    columns = _confound_columns(confounds)
    bolds = _select_subjects(_find_bolds(derivatives, task, space, res), subjects, derivatives)
    _check_unique(bolds)
    test = _test_names(test_runs, bolds)
    settings = _Settings(root, derivatives, kind, target, columns, bool(standardize), modality,
                         _cache_folder(cache, derivatives))
    pairs = [_run(bold, settings, grid, len(targets), "test" if bold.name in test else "train") for bold in bolds]
    identity = json.dumps({"root": str(root.resolve()), "derivatives": str(derivatives.resolve()), "task": task,
                           "space": space, "res": res, "subjects": sorted({b.subject for b in bolds}),
                           kind: str(target.resolve()), "labels": None if labels is None else str(labels),
                           "confounds": list(columns), "standardize": bool(standardize), "modality": modality,
                           "test_runs": sorted(test)}, sort_keys=True)
    return Dataset(name=f"{root.name}_task-{task}", targets=targets, stimuli={s.id: s for _, s in pairs},
                   runs=tuple(run for run, _ in pairs), atlas=target, identity=f"bids:{identity}")
