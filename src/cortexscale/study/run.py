"""Run a study: plan it, check its data, run what is not done, and put the results beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import DatasetError, InputError
from ..runtime import resolve_device
from .executors import EXECUTORS, Summary, run_tasks
from .fields import FieldError
from .plan import Plan, plan_study
from .spec import StudySpec, load_study
from .store import StudyFolder

__all__ = ["DEFAULT_ROOT", "StudyRun", "default_out", "read_results", "run_study"]

DEFAULT_ROOT = Path("outputs")
"""Where a study's folder goes when no ``--out`` is given: ``outputs/<name>`` in the current folder."""


@dataclass
class StudyRun:
    """What :func:`run_study` did: the study, its folder, its plan and the run's :class:`Summary`."""

    spec: StudySpec
    folder: StudyFolder
    plan: Plan
    summary: Summary

    @property
    def results(self) -> pd.DataFrame:
        return self.folder.read_results()

    def line(self) -> str:
        if not self.summary.ran and not self.summary.failed and not self.summary.blocked:
            return f"study {self.spec.name}: all {len(self.plan.tasks)} tasks are done; nothing to run " \
                   f"({self.folder.root})"
        line = f"study {self.spec.name}: {self.summary.line()} ({self.folder.root})"
        if self.summary.failed:
            line += "; failed: " + "; ".join(f"{label} ({error})" for label, error in self.summary.failed.items())
        return line


def default_out(spec: StudySpec) -> Path:
    """``outputs/<name>`` in the current folder (:data:`DEFAULT_ROOT`)."""
    return DEFAULT_ROOT / spec.name


def _check_device(spec: StudySpec) -> None:
    """A study on a device this machine lacks stops here, not in every task."""
    try:
        resolve_device(spec.device)
    except ValueError as err:
        raise spec.located(FieldError(("device",), str(err))) from None


def _check_data(spec: StudySpec, plan: Plan) -> None:
    for dataset in spec.datasets:
        try:
            plan.datasets[dataset.name].check()
        except (ValueError, OSError) as err:
            raise DatasetError(f"dataset {dataset.name!r}: {err}") from err


def run_study(study, out=None, executor: str = "local", jobs: int = 1, address: str | None = None,
              max_retries: int = 2, progress: bool = True) -> StudyRun:
    """Run the study (a :class:`StudySpec` or a study file) into ``out`` (default :func:`default_out`).

    Tasks already done are reused; a failed task is recorded and does not stop the others (see the returned
    summary). ``executor``: "local" (``jobs`` processes) or "ray" (``address`` of a cluster, else a local one).
    """
    spec = study if isinstance(study, StudySpec) else load_study(study)
    if executor not in EXECUTORS:
        raise InputError(f"executor must be one of {sorted(EXECUTORS)}, got {executor!r}")
    if executor == "local":
        _check_device(spec)
    folder = StudyFolder(out if out is not None else default_out(spec))
    folder.check_owner(spec.name)
    with folder.lock():
        plan = plan_study(spec)
        collect = plan.of_kind("collect")[-1]
        if all(folder.is_done(task) for task in plan.tasks):
            folder.publish(collect)
            return StudyRun(spec, folder, plan, Summary(reused=[t.key for t in plan.tasks]))
        _check_data(spec, plan)
        folder.write_header(spec.resolved(), plan.tasks)
        folder.sweep_debris()
        runner = EXECUTORS[executor](jobs) if executor == "local" else EXECUTORS[executor](
            address, max_retries, resources=spec.resolved()["resources"])
        summary = run_tasks(plan.tasks, folder, runner, spec.device, progress)
        folder.publish(collect)
    return StudyRun(spec, folder, plan, summary)


def read_results(study_dir, summary: bool = False) -> pd.DataFrame:
    """The results table (or the per-fit summary) of a study folder."""
    return StudyFolder(study_dir).read_results(summary)
