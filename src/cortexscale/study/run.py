"""Run a study: plan it, check its data, run what is not done, and put the results beside it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._io import atomic_path
from ..runtime import resolve_device
from .executors import EXECUTORS, Summary, run_tasks
from .plan import Plan, plan_study
from .spec import StudySpec, load_study
from .store import StudyFolder

__all__ = ["StudyRun", "default_out", "read_results", "run_study"]

RESULTS, SUMMARY = "results.parquet", "summary.parquet"


@dataclass
class StudyRun:
    """What :func:`run_study` did: the study, its folder, its plan and the run's :class:`Summary`."""

    spec: StudySpec
    folder: StudyFolder
    plan: Plan
    summary: Summary

    @property
    def results(self) -> pd.DataFrame:
        return read_results(self.folder.root)

    def line(self) -> str:
        if not self.summary.ran and not self.summary.failed and not self.summary.blocked:
            return f"study {self.spec.name}: all {len(self.plan.tasks)} tasks are done; nothing to run " \
                   f"({self.folder.root})"
        line = f"study {self.spec.name}: {self.summary.line()} ({self.folder.root})"
        if self.summary.failed:
            line += "; failed: " + "; ".join(f"{label} ({error})" for label, error in self.summary.failed.items())
        return line


def default_out(spec: StudySpec) -> Path:
    """``studies/<name>`` in the current folder."""
    return Path("studies") / spec.name


def _publish(folder: StudyFolder, plan: Plan) -> None:
    """Copy the collect task's tables to the study folder, atomically."""
    collect = plan.of_kind("collect")[-1]
    if not folder.is_done(collect):
        return
    for name in (RESULTS, SUMMARY):
        with atomic_path(folder.root / name, suffix=".parquet") as tmp:
            shutil.copyfile(folder.task_dir(collect) / name, tmp)


def run_study(study, out=None, executor: str = "local", jobs: int = 1, address: str | None = None,
              max_retries: int = 2, progress: bool = True) -> StudyRun:
    """Run the study (a :class:`StudySpec` or a study file) into ``out`` (default :func:`default_out`).

    Tasks already done are reused; a failed task is recorded and does not stop the others (see the returned
    summary). ``executor``: "local" (``jobs`` processes) or "ray" (``address`` of a cluster, else a local one).
    """
    spec = study if isinstance(study, StudySpec) else load_study(study)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {sorted(EXECUTORS)}, got {executor!r}")
    if executor == "local":
        resolve_device(spec.device)  # a CUDA study on a machine without CUDA stops here, not in every task
    folder = StudyFolder(out if out is not None else default_out(spec))
    folder.check_owner(spec.name)
    with folder.lock():
        plan = plan_study(spec)
        if all(folder.is_done(task) for task in plan.tasks):
            _publish(folder, plan)
            return StudyRun(spec, folder, plan, Summary(reused=[t.key for t in plan.tasks]))
        for data in plan.datasets.values():
            data.check()
        folder.write_header(spec.resolved(), plan.tasks)
        folder.sweep_debris()
        runner = EXECUTORS[executor](jobs) if executor == "local" else EXECUTORS[executor](
            address, max_retries, resources=spec.resolved()["resources"])
        summary = run_tasks(plan.tasks, folder, runner, spec.device, progress)
        _publish(folder, plan)
    return StudyRun(spec, folder, plan, summary)


def read_results(study_dir, summary: bool = False) -> pd.DataFrame:
    """The results table (or the per-fit summary) of a study folder."""
    path = Path(study_dir) / (SUMMARY if summary else RESULTS)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the study in {study_dir} has not finished a run "
                                "(cortexscale status shows what is missing)")
    return pd.read_parquet(path)
