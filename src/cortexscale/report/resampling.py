"""What a study's intervals redraw: subjects and their targets, blocks of test TRs, or both.

A study that keeps the statistics of blocks of its test TRs (``scoring.test_blocks``) names its choice in the
study file; the report and ``cortexscale fit`` take it from there unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..study.store import StudyFolder

__all__ = ["RESAMPLES", "Draws", "parse_resolved", "study_draws"]

RESAMPLES = ("subjects", "blocks", "subjects+blocks")
"""What an interval may redraw, as the study file and the command line name it."""
_LAW = {"subjects": "groups", "blocks": "blocks", "subjects+blocks": "groups+blocks"}


@dataclass(frozen=True)
class Draws:
    """The bootstrap of every interval: ``n_boot`` resamples seeded by ``seed`` of ``resample`` (one of
    :data:`RESAMPLES`), with the study's ``blocks`` table where it redraws blocks."""

    n_boot: int
    seed: int = 0
    resample: str = "subjects"
    blocks: pd.DataFrame | None = None

    @property
    def law(self) -> dict:
        """The keywords of :func:`cortexscale.scaling.fit_law` that make its bootstrap this one."""
        return {"n_boot": self.n_boot, "seed": self.seed, "resample": _LAW[self.resample], "blocks": self.blocks}

    @property
    def block_words(self) -> str:
        """The blocks redrawn, for a reader: "contiguous blocks of 10 test TRs" (their median length)."""
        if self.blocks is None:
            return "contiguous blocks of test TRs"
        return f"contiguous blocks of {float(self.blocks['n'].median()):g} test TRs"

    @property
    def words(self) -> str:
        """What the intervals redraw, for a reader."""
        return {"subjects": "subjects and targets", "blocks": f"{self.block_words} (subjects and targets kept)",
                "subjects+blocks": f"subjects, targets and {self.block_words}"}[self.resample]


def study_draws(folder: StudyFolder, n_boot: int, seed: int = 0, resample: str | None = None, spec=None) -> Draws:
    """The study's bootstrap: ``resample`` or, when None, the study's ``scoring.test_blocks.resample`` where it
    keeps blocks, else subjects (``spec``: the parsed study, read from the folder's study.yaml when not given);
    a choice with blocks in a study that keeps none is an error."""
    if resample is not None and resample not in RESAMPLES:
        raise ValueError(f"resample must be one of {RESAMPLES}, got {resample!r}")
    if resample is None:
        kept = getattr(getattr(spec if spec is not None else _parsed(folder), "scoring", None), "test_blocks", None)
        resample = kept.resample if kept is not None else "subjects"
    if resample == "subjects":
        return Draws(n_boot, seed)
    blocks = folder.read_blocks()
    if blocks is None:
        raise ValueError(f"resample {resample!r} redraws blocks of test TRs, but the study in {folder.root} keeps "
                         "none: set scoring.test_blocks in its study file and run it again (only its fits rerun)")
    return Draws(n_boot, seed, resample, blocks)


def parse_resolved(study: dict | None):
    """A folder's resolved study (its study.yaml, read) as a StudySpec; None without one, or the error that kept
    it from being read (an old or partial study.yaml): a report then leaves out what needs it and says why."""
    import yaml

    from ..study import parse_study

    if study is None:
        return None
    try:
        return parse_study(yaml.safe_dump(study))
    except Exception as err:  # noqa: BLE001 - whatever it is, the caller goes on without the study
        return err


def _parsed(folder: StudyFolder):
    spec = parse_resolved(folder.resolved_study())
    return None if isinstance(spec, Exception) else spec
