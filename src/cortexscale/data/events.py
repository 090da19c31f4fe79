"""Stimulus events tables: one row per event with ``onset``, ``duration`` (seconds) and ``value``.

The layout is the one of BIDS ``events.tsv`` files. Events come from word
TextGrids (:func:`events_from_textgrid`), from BIDS files
(:func:`read_events_tsv`) or one per video frame (:func:`frame_events`);
:func:`check_events` validates any of them and :func:`shift_events` moves them
onto the scanner clock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .textgrid import read_textgrid, textgrid_tiers
from .timing import _finite_float, _positive_int

__all__ = [
    "EVENT_COLUMNS",
    "SILENCE_LABELS",
    "check_events",
    "events_from_textgrid",
    "frame_events",
    "read_events_tsv",
    "shift_events",
]

EVENT_COLUMNS = ("onset", "duration", "value")
SILENCE_LABELS = frozenset({"", "sp", "sil", "<sil>", "<sp>", "sils", "silence", "pau", "#", "{sl}", "{lg}", "<p:>"})
"""Pause, silence and non-speech ({lg}: laughter) labels of common aligners (Praat, MFA, P2FA, WebMAUS); matched
after stripping whitespace, ignoring case."""
WORD_TIER_NAMES = ("word", "words")
VALUE_COLUMNS = ("value", "trial_type", "word")
_TOUCH = 1e-9
"""Relative slack below which an event starting at another's end (up to float rounding) does not overlap it."""


def _show(value) -> str:
    """``repr`` of a table cell or index label, without numpy's scalar wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _numeric_column(events: pd.DataFrame, column: str, name: str) -> np.ndarray:
    """Column as float64 (n_events,); raise naming the first row that is not a finite number."""
    values = pd.to_numeric(events[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"{name}: {column} at row {_show(events.index[i])} is {_show(events[column].iloc[i])}, not a finite number "
            f"({bad.size} such row(s) in a table of shape {events.shape})"
        )
    return values


def _check_order(onset: np.ndarray, index: pd.Index, name: str) -> None:
    back = np.flatnonzero(onset[1:] < onset[:-1])
    if back.size:
        i = back[0] + 1
        raise ValueError(
            f"{name}: onsets must be sorted; row {_show(index[i])} (onset {onset[i]}) comes after row "
            f"{_show(index[i - 1])} (onset {onset[i - 1]}); sort the table by onset first"
        )


def _check_overlap(onset: np.ndarray, duration: np.ndarray, index: pd.Index, name: str) -> None:
    end = onset + duration
    latest = np.maximum.accumulate(end)
    slack = _TOUCH * np.maximum(1.0, np.abs(latest[:-1]))
    clash = np.flatnonzero(onset[1:] < latest[:-1] - slack)
    if clash.size:
        i = clash[0] + 1
        j = int(np.argmax(end[:i] > onset[i] + slack[i - 1]))
        raise ValueError(
            f"{name}: row {_show(index[i])} (onset {onset[i]}) overlaps row {_show(index[j])} "
            f"({onset[j]}-{end[j]}); events must not overlap (allow_overlap=False)"
        )


def check_events(events, name: str = "events", allow_overlap: bool = True) -> pd.DataFrame:
    """Validate an events table and return a clean copy.

    Parameters
    ----------
    events : DataFrame (n_events, >= 3)
        Columns ``onset`` and ``duration`` (seconds, finite, duration >= 0) and
        ``value``; further columns are kept. Onsets must be sorted.
    name : str
        What to call the table in error messages (a file name, say).
    allow_overlap : bool, default True
        If False, an event may not start before an earlier one has ended.

    Returns
    -------
    DataFrame (n_events, n_columns)
        ``onset``, ``duration`` (float64), ``value``, then any other columns,
        with a fresh 0..n-1 index.

    Raises
    ------
    ValueError
        Not a DataFrame, a column missing, a non-finite or negative time,
        unsorted onsets or (if not allowed) overlapping events; the message
        names the row(s) by their index label.
    """
    if not isinstance(events, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame with columns {EVENT_COLUMNS}, got {type(events).__name__}")
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}; columns found: {list(events.columns)}")
    onset = _numeric_column(events, "onset", name)
    duration = _numeric_column(events, "duration", name)
    negative = np.flatnonzero(duration < 0)
    if negative.size:
        i = negative[0]
        raise ValueError(f"{name}: duration at row {_show(events.index[i])} is {duration[i]}; durations must be >= 0")
    _check_order(onset, events.index, name)
    if not allow_overlap:
        _check_overlap(onset, duration, events.index, name)
    others = [c for c in events.columns if c not in EVENT_COLUMNS]
    clean = events.loc[:, [*EVENT_COLUMNS, *others]].reset_index(drop=True)
    clean["onset"] = onset
    clean["duration"] = duration
    return clean


def _word_tier(path: Path, tier: str | None) -> str:
    if tier is not None:
        return tier
    names = textgrid_tiers(path)
    words = [n for n in names if n.strip().casefold() in WORD_TIER_NAMES]
    if len(words) != 1:
        found = "no" if not words else f"{len(words)}"
        raise ValueError(
            f"{path} has {found} word tier(s) (named one of {WORD_TIER_NAMES}, any case); tiers found: {names}; "
            "pass tier= to choose one"
        )
    return words[0]


def events_from_textgrid(path, tier: str | None = None) -> pd.DataFrame:
    """Word events of a Praat TextGrid, pauses dropped.

    Parameters
    ----------
    path : path
        Text TextGrid (long or short layout).
    tier : str, optional
        Interval tier to read; by default the one tier named "word" or "words"
        (any case).

    Returns
    -------
    DataFrame (n_words, 3)
        ``onset``, ``duration`` (seconds on the TextGrid clock) and ``value``
        (the word), sorted, without the labels in :data:`SILENCE_LABELS`.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        No word tier (or no tier named ``tier``): the message names the file and
        its tiers; or the file is not a readable TextGrid.
    """
    path = Path(path)
    words = read_textgrid(path, tier=_word_tier(path, tier), drop=SILENCE_LABELS)
    return check_events(words, name=str(path))


def _value_column(table: pd.DataFrame) -> pd.Series:
    for column in VALUE_COLUMNS:
        if column in table.columns:
            return table[column]
    return pd.Series(np.arange(len(table)), index=table.index)


def read_events_tsv(path) -> pd.DataFrame:
    """Read a BIDS ``events.tsv`` file.

    Parameters
    ----------
    path : path
        Tab-separated file with a header; ``onset`` and ``duration`` are
        required, ``n/a`` marks a missing value.

    Returns
    -------
    DataFrame (n_events, >= 3)
        ``onset``, ``duration`` (float64), ``value`` (taken from the file's
        ``value``, ``trial_type`` or ``word`` column, the first that exists, else
        the row number), then the file's other columns; checked by
        :func:`check_events`.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file cannot be parsed, lacks ``onset`` or ``duration``, or fails
        :func:`check_events`; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"events file not found: {path}")
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} could not be read as a tab-separated events file: {err}") from err
    missing = [c for c in ("onset", "duration") if c not in table.columns]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}; columns found: {list(table.columns)}")
    events = pd.DataFrame({"onset": table["onset"], "duration": table["duration"], "value": _value_column(table)})
    others = table.drop(columns=[c for c in EVENT_COLUMNS if c in table.columns])
    return check_events(pd.concat([events, others], axis=1), name=str(path))


def frame_events(n_frames: int, fps: float, offset: float = 0.0) -> pd.DataFrame:
    """One event per video frame: onset ``offset + i / fps``, duration ``1 / fps``, value ``i``.

    Returns
    -------
    DataFrame (n_frames, 3)
        ``onset`` and ``duration`` (float64 seconds) and ``value`` (int64 frame index).
    """
    n_frames = _positive_int(n_frames, "n_frames")
    fps = _finite_float(fps, "fps", positive=True)
    offset = _finite_float(offset, "offset")
    index = np.arange(n_frames)
    return pd.DataFrame(
        {"onset": offset + index / fps, "duration": np.full(n_frames, 1.0 / fps), "value": index},
        columns=list(EVENT_COLUMNS),
    )


def shift_events(events, offset: float) -> pd.DataFrame:
    """Events (n_events, n_columns) with ``offset`` seconds subtracted from every onset.

    Use it to put stimulus times on the scanner clock, e.g. ``shift_events(words, 20.0)`` for Alice, whose
    first kept scan is at t = 20 s on the TextGrid clock.
    """
    offset = _finite_float(offset, "offset")
    shifted = check_events(events)
    shifted["onset"] = shifted["onset"] - offset
    return shifted
