"""Alice in Wonderland fMRI ROI time courses (Brennan et al. 2016, CC BY 4.0).

28 participants listened to chapter 1 of *Alice in Wonderland* (about 12 min)
in the scanner. The release holds, per participant, 362 scans (TR = 2 s) of six
left/right temporal and frontal regions of interest, plus two stimulus
regressors already convolved with a haemodynamic response: word rate and sound
power. The stimulus release adds the word timings as a Praat TextGrid, from
which an unconvolved word count per scan is built. Layout under the data root::

    alice/alice_data_shared/{6mm,10mm}/s##-timecourses.txt   362 x 6 ROI time courses
    alice/alice_data_shared/s##-rate.txt                     362 HRF-convolved word rate
    alice/alice_data_shared/s##-sndpwr.txt                   362 HRF-convolved sound power
    alice/alice_stim_shared/DownTheRabbitHoleFinal_exp120_pad_1.TextGrid   word timings

Notes on the files, checked against the release:

* The regressors are *not* identical across participants: they agree to a
  correlation above 0.9999, but differ by up to about 2 % of their standard
  deviation (rounding and per-session timing). They are therefore kept per
  participant, shape (n_subjects, 362); average them over subjects for a
  group-level design.
* s33's time courses are all zeros, and its ``s33-sndpwr.txt`` is a copy of its
  word-rate file. With ``drop_empty=True`` (the default) s33 is dropped with a
  warning and 27 participants remain.
* The first kept scan sits at t = 20 s on the word-timing (TextGrid) clock: ten
  2 s volumes were discarded from the recording and the audio starts with 20 s
  of silence. This is inferred, not documented by the authors.
* The shipped regressors already contain the haemodynamic lag (they peak
  about 4-6 s after the words), so FIR delays on top of them lag twice; use
  ``word_counts`` with FIR delays instead. There is no unconvolved sound power.
* The TextGrid's ``word`` tier has 2127 labelled intervals besides 290 ``sp``
  pauses and 6 empty ones; clitics such as ``'s`` and ``'ll`` are intervals of
  their own.

Reference: Brennan, Stabler, Van Wagenen, Luh & Hale (2016), Brain & Language
157-158, 81-94.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import Dataset, Run, Stimulus, register_dataset
from .paths import DATA_ENV_VAR, data_root
from .textgrid import read_textgrid
from .timing import event_rate

__all__ = ["ALICE_ROIS", "AliceData", "alice_dataset", "load_alice"]

ALICE_ROIS = ("LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG")
RESOLUTIONS = ("6mm", "10mm")
N_SCANS = 362
TR = 2.0
FIRST_SCAN_TIME = 20.0
TEXTGRID = Path("alice_stim_shared") / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"
_SUBJECT_FILE = re.compile(r"^(s\d+)-timecourses\.txt$")


@dataclass(frozen=True)
class AliceData:
    """The Alice ROI dataset.

    Attributes
    ----------
    responses : float64 array (n_subjects, 362, 6)
        ROI time courses, raw scanner units (not normalised).
    subjects : list of str (n_subjects,)
        Participant ids such as ``"s18"``, in numeric order.
    rois : tuple of str (6,)
        ``("LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG")``.
    tr : float
        Seconds between scans (2.0).
    first_scan_time : float
        Time of the first kept scan on the word-timing clock, in seconds (20.0).
    word_rate_hrf : float64 array (n_subjects, 362)
        Word-rate regressor of each participant as shipped, already convolved
        with a haemodynamic response (``s##-rate.txt``).
    sound_power_hrf : float64 array (n_subjects, 362)
        Sound-power regressor of each participant as shipped, already convolved
        with a haemodynamic response (``s##-sndpwr.txt``).
    words : DataFrame (n_words, 3)
        Word timings from the TextGrid's ``word`` tier: ``onset`` and
        ``duration`` in seconds on the TextGrid clock, ``value`` the word;
        pauses dropped (2127 rows).
    word_counts : float64 array (362,)
        Unconvolved word rate: the number of words whose onset falls in
        ``[frame_times[k], frame_times[k] + tr)``, i.e. in the 2 s that start at
        scan k's time stamp (see :func:`cortexscale.data.timing.event_rate`).
        The same for every participant. FIR delay d puts the words of the
        window starting d scans earlier on scan k.
    resolution : str
        ROI radius, ``"6mm"`` or ``"10mm"``.
    """

    responses: np.ndarray
    subjects: list[str]
    rois: tuple[str, ...]
    tr: float
    first_scan_time: float
    word_rate_hrf: np.ndarray
    sound_power_hrf: np.ndarray
    words: pd.DataFrame
    word_counts: np.ndarray
    resolution: str = "6mm"

    @property
    def frame_times(self) -> np.ndarray:
        """Acquisition time of every scan on the word-timing clock, seconds (362,)."""
        return self.first_scan_time + self.tr * np.arange(self.responses.shape[1])

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)


def _missing(path: Path, what: str) -> FileNotFoundError:
    current = os.environ.get(DATA_ENV_VAR)
    setting = f"{DATA_ENV_VAR}={current!r}" if current is not None else f"{DATA_ENV_VAR} is unset"
    return FileNotFoundError(
        f"Alice {what} not found: {path}. Point {DATA_ENV_VAR} at the directory that holds "
        f"alice/alice_data_shared and alice/alice_stim_shared ({setting})."
    )


def _read(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Whitespace-separated numbers of ``path``, checked to have ``shape`` and to be finite."""
    if not path.is_file():
        raise _missing(path, "file")
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=len(shape))
    except ValueError as err:
        raise ValueError(f"{path} could not be read as numbers: {err}") from err
    if values.shape != shape:
        raise ValueError(f"{path} has shape {values.shape}; expected {shape}")
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise ValueError(f"{path} contains a non-finite value (first in row {row})")
    return values


def _subject_ids(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise _missing(folder, "directory")
    ids = [m.group(1) for p in folder.iterdir() if (m := _SUBJECT_FILE.match(p.name))]
    if not ids:
        raise _missing(folder / "s##-timecourses.txt", "time-course files")
    return sorted(ids, key=lambda s: int(s[1:]))


def _drop_all_zero(subjects, responses, rate, power):
    empty = [i for i in range(len(subjects)) if not responses[i].any()]
    if not empty:
        return subjects, responses, rate, power
    names = [subjects[i] for i in empty]
    warnings.warn(
        f"dropping Alice subject(s) {names}: their ROI time courses are all zeros", UserWarning, stacklevel=3
    )
    keep = [i for i in range(len(subjects)) if i not in empty]
    if not keep:
        raise ValueError(f"every Alice subject has all-zero time courses ({names}); nothing left to load")
    return [subjects[i] for i in keep], responses[keep], rate[keep], power[keep]


def _warn_copied_regressors(subjects, rate, power) -> None:
    copied = [s for s, r, p in zip(subjects, rate, power) if np.array_equal(r, p)]
    if copied:
        warnings.warn(
            f"Alice subject(s) {copied}: the sound-power file is a copy of the word-rate file",
            UserWarning,
            stacklevel=3,
        )


def _read_words(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise _missing(path, "word-timing file")
    return read_textgrid(path, tier="word")


def load_alice(resolution: str = "6mm", root=None, drop_empty: bool = True) -> AliceData:
    """Load the Alice ROI time courses and stimulus regressors.

    Parameters
    ----------
    resolution : {"6mm", "10mm"}
        Radius of the spherical ROIs.
    root : path, optional
        Data root holding ``alice/``; defaults to :func:`cortexscale.data.paths.data_root`.
    drop_empty : bool, default True
        Drop participants whose time courses are all zeros (s33), with a warning.

    Returns
    -------
    AliceData
        ``responses`` (n_subjects, 362, 6), ``word_rate_hrf`` and
        ``sound_power_hrf`` (n_subjects, 362), ``words`` (2127 rows) and
        ``word_counts`` (362,); 27 participants with the defaults.

    Raises
    ------
    FileNotFoundError
        A directory or file is missing; the message names it and ``CORTEXSCALE_DATA``.
    ValueError
        A file does not hold numbers of the expected shape, or the TextGrid
        cannot be read; the message names the file.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    base = (data_root() if root is None else Path(root)) / "alice" / "alice_data_shared"
    if not base.is_dir():
        raise _missing(base, "directory")
    subjects = _subject_ids(base / resolution)
    shape = (N_SCANS, len(ALICE_ROIS))
    responses = np.stack([_read(base / resolution / f"{s}-timecourses.txt", shape) for s in subjects])
    rate = np.stack([_read(base / f"{s}-rate.txt", (N_SCANS,)) for s in subjects])
    power = np.stack([_read(base / f"{s}-sndpwr.txt", (N_SCANS,)) for s in subjects])
    if drop_empty:
        subjects, responses, rate, power = _drop_all_zero(subjects, responses, rate, power)
    _warn_copied_regressors(subjects, rate, power)
    words = _read_words(base.parent / TEXTGRID)
    return AliceData(
        responses=responses,
        subjects=subjects,
        rois=ALICE_ROIS,
        tr=TR,
        first_scan_time=FIRST_SCAN_TIME,
        word_rate_hrf=rate,
        sound_power_hrf=power,
        words=words,
        word_counts=event_rate(words["onset"].to_numpy(), TR, N_SCANS, start=FIRST_SCAN_TIME),
        resolution=resolution,
    )


@register_dataset("alice")
def alice_dataset(resolution: str = "6mm", root=None) -> Dataset:
    """Alice as a :class:`~cortexscale.data.Dataset`: one run per usable subject (27), all presenting the
    "alice" text stimulus (the TextGrid's words, on its clock; the first scan at 20 s), targets the 6 ROIs."""
    data = load_alice(resolution=resolution, root=root)
    runs = tuple(Run(subject=subject, name="alice", stimulus="alice", tr=data.tr, first_scan_time=data.first_scan_time,
                     n_trs=data.responses.shape[1], source=data.responses[i].astype(np.float32))
                 for i, subject in enumerate(data.subjects))
    return Dataset(name="alice", targets=data.rois, stimuli={"alice": Stimulus("alice", "text", data.words)}, runs=runs,
                   identity=f"alice:{resolution}")
