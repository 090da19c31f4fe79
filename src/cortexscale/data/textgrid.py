"""Read word (or phone) timings from Praat TextGrid files.

Both of Praat's text layouts are read: the long one (``xmin = 20.06``,
``text = "Alice"``, one ``key = value`` per line) and the short one (the same
values, one per line, without keys). The reader walks the file as a stream of
values, quoted strings and ``<exists>`` flags, skipping keys and ``[n]`` item
indices, so line breaks and indentation do not matter. UTF-8 and UTF-16 (with a
byte-order mark, as Praat writes non-ASCII files) are both accepted. Binary
TextGrids are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SILENCE_MARKS", "read_textgrid", "textgrid_tiers"]

SILENCE_MARKS = ("sp", "sil", "", "<sil>")
COLUMNS = ["onset", "duration", "value"]
_TOKEN = re.compile(
    r'"(?P<string>(?:[^"]|"")*)"'
    r"|(?P<flag><[A-Za-z]+>)"
    r"|(?P<skip>\[[^\]]*\]|[A-Za-z_][\w?]*|[=:]|!.*)"
    r"|(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)"
)


@dataclass(frozen=True)
class _Tier:
    kind: str
    name: str
    starts: np.ndarray
    ends: np.ndarray
    labels: list[str]


class _Tokens:
    """Values of a TextGrid file in order; ``take`` checks each one's type."""

    def __init__(self, text: str, path: Path):
        self.path = path
        self.values = list(self._scan(text))
        self.position = 0

    def _scan(self, text: str):
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind == "string":
                yield match.group("string").replace('""', '"')
            elif kind == "number":
                yield float(match.group("number"))
            elif kind == "flag":
                yield match.group("flag")
            elif kind == "other":
                raise ValueError(f"{self.path}: unexpected character {match.group()!r} at offset {match.start()}")

    def take(self, kind: type, what: str):
        if self.position >= len(self.values):
            raise ValueError(f"{self.path}: file ends while reading {what}; the TextGrid is truncated")
        value = self.values[self.position]
        if not isinstance(value, kind):
            raise ValueError(f"{self.path}: expected {what}, found {value!r} (value {self.position + 1} of the file)")
        self.position += 1
        return value

    def count(self, what: str) -> int:
        value = self.take(float, what)
        if value < 0 or value != int(value):
            raise ValueError(f"{self.path}: {what} must be a whole number, found {value!r}")
        return int(value)


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if raw.startswith(b"ooBinaryFile"):
        raise ValueError(f"{path} is a binary TextGrid; save it from Praat as a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is neither UTF-8 nor UTF-16 text: {err}") from err


def _read_interval(tokens: _Tokens, i: int) -> tuple[float, float, str]:
    start = tokens.take(float, f"xmin of interval {i}")
    end = tokens.take(float, f"xmax of interval {i}")
    return start, end, tokens.take(str, f"the text of interval {i}")


def _read_point(tokens: _Tokens, i: int) -> tuple[float, float, str]:
    time = tokens.take(float, f"the time of point {i}")
    return time, time, tokens.take(str, f"the mark of point {i}")


def _read_tier(tokens: _Tokens, number: int) -> _Tier:
    kind = tokens.take(str, f"the class of tier {number}")
    name = tokens.take(str, f"the name of tier {number}")
    tokens.take(float, f"the start time of tier {number}")
    tokens.take(float, f"the end time of tier {number}")
    size = tokens.count(f"the number of items in tier {number}")
    if kind == "IntervalTier":
        rows = [_read_interval(tokens, i) for i in range(1, size + 1)]
    elif kind == "TextTier":
        rows = [_read_point(tokens, i) for i in range(1, size + 1)]
    else:
        raise ValueError(f"{tokens.path}: tier {number} ({name!r}) has unknown class {kind!r}")
    starts, ends, labels = zip(*rows) if rows else ((), (), ())
    return _Tier(kind, name, np.array(starts, dtype=float), np.array(ends, dtype=float), list(labels))


def _read_tiers(path) -> tuple[Path, list[_Tier]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TextGrid file not found: {path}")
    tokens = _Tokens(_decode(path), path)
    if tokens.take(str, 'the file type "ooTextFile"') != "ooTextFile":
        raise ValueError(f'{path} is not a Praat text file: the first line must be File type = "ooTextFile"')
    object_class = tokens.take(str, 'the object class "TextGrid"')
    if object_class != "TextGrid":
        raise ValueError(f"{path} holds a Praat {object_class!r} object, not a TextGrid")
    tokens.take(float, "the start time of the TextGrid")
    tokens.take(float, "the end time of the TextGrid")
    if tokens.take(str, "the <exists> or <absent> tiers flag") == "<absent>":
        return path, []
    n_tiers = tokens.count("the number of tiers")
    return path, [_read_tier(tokens, number) for number in range(1, n_tiers + 1)]


def textgrid_tiers(path) -> list[str]:
    """Names of the tiers of the TextGrid at ``path``, in file order."""
    return [tier.name for tier in _read_tiers(path)[1]]


def _check_order(tier: _Tier, path: Path) -> None:
    backwards = np.flatnonzero(tier.ends < tier.starts)
    if backwards.size:
        i = backwards[0]
        raise ValueError(
            f"{path}: interval {i + 1} of tier {tier.name!r} ends at {tier.ends[i]} before it starts at "
            f"{tier.starts[i]}"
        )
    earlier = np.flatnonzero(tier.starts[1:] < tier.ends[:-1]) + 1
    if earlier.size:
        i = earlier[0]
        what = "starts before the previous one" if tier.starts[i] < tier.starts[i - 1] else "overlaps the previous one"
        raise ValueError(
            f"{path}: interval {i + 1} of tier {tier.name!r} {what} (starts at {tier.starts[i]}, interval {i} "
            f"spans {tier.starts[i - 1]}-{tier.ends[i - 1]}); intervals must be in time order without overlap"
        )


def _choose(tiers: list[_Tier], name: str, path: Path) -> _Tier:
    matches = [t for t in tiers if t.name == name]
    names = [t.name for t in tiers]
    if not matches:
        raise ValueError(f"{path} has no tier named {name!r}; tiers found: {names}")
    if len(matches) > 1:
        raise ValueError(f"{path} has {len(matches)} tiers named {name!r}; tiers found: {names}")
    if matches[0].kind != "IntervalTier":
        raise ValueError(f"{path}: tier {name!r} is a {matches[0].kind} (points), not an IntervalTier")
    return matches[0]


def read_textgrid(path, tier: str = "word", drop=SILENCE_MARKS) -> pd.DataFrame:
    """Labelled intervals of one tier of a Praat TextGrid, silences removed.

    Parameters
    ----------
    path : path
        A TextGrid saved by Praat as text (long or short layout).
    tier : str, default "word"
        Name of the interval tier to read.
    drop : iterable of str, default ``("sp", "sil", "", "<sil>")``
        Labels to leave out, compared after stripping surrounding whitespace and
        ignoring case (so ``"SIL"`` and ``" sp "`` are dropped too). Pass ``()``
        to keep every interval.

    Returns
    -------
    DataFrame (n_intervals, 3)
        ``onset`` and ``duration`` in seconds on the TextGrid's clock (float64)
        and ``value``, the label with surrounding whitespace stripped; one row per
        kept interval, in time order, with a fresh 0..n-1 index.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (the message names it).
    ValueError
        The file is not a text TextGrid or is truncated; it has no (or several)
        interval tiers named ``tier`` (the message lists the tiers found); or an
        interval ends before it starts, starts before the previous one or
        overlaps it (the message names the file and the interval's 1-based
        index, as Praat numbers them).
    """
    path, tiers = _read_tiers(path)
    chosen = _choose(tiers, tier, path)
    _check_order(chosen, path)
    silent = {mark.strip().casefold() for mark in drop}
    labels = [label.strip() for label in chosen.labels]
    keep = np.array([label.casefold() not in silent for label in labels], dtype=bool)
    table = {
        "onset": chosen.starts[keep],
        "duration": (chosen.ends - chosen.starts)[keep],
        "value": pd.Series([label for label, kept in zip(labels, keep) if kept], dtype=object),
    }
    return pd.DataFrame(table, columns=COLUMNS)
