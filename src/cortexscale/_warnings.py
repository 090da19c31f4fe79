"""Warnings recorded instead of shown, each distinct message once with its count (task records, the Alice
check's notes, the report's notes)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["recorded_warnings"]


@contextmanager
def recorded_warnings(categories: bool = False) -> Iterator[list[str]]:
    """Record the warnings of the block; the yielded list is filled when the block ends.

    It holds each distinct message once, in order of first appearance, with `` (xN)`` when it came N > 1
    times; ``categories`` prefixes each with its category ("UserWarning: ..."). Every warning is recorded,
    including repeats that Python's filters would show once.
    """
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield messages
        finally:
            texts = [f"{w.category.__name__}: {w.message}" if categories else str(w.message) for w in caught]
            counts = {text: texts.count(text) for text in dict.fromkeys(texts)}
            messages += [text if n == 1 else f"{text} (x{n})" for text, n in counts.items()]
