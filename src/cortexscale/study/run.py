"""Run a study: plan it, check its data, run what is not done, and put the results beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import DatasetError, InputError
from ..runtime import resolve_device
from .executors import EXECUTORS, Summary, run_tasks
from .fields import FieldError
from .memory import MemoryLimit, check_memory, gigabytes, memory_limit
from .plan import Plan, plan_study
from .spec import StudySpec, load_study
from .store import StudyFolder

__all__ = ["DEFAULT_ROOT", "StudyRun", "default_out", "describe_plan", "read_results", "run_study"]

DEFAULT_ROOT = Path("outputs")
"""Where a study's folder goes when no ``--out`` is given: ``outputs/<name>`` in the current folder."""


@dataclass
class StudyRun:
    """What :func:`run_study` did: the study, its folder, its plan and the run's :class:`Summary`."""

    spec: StudySpec
    folder: StudyFolder
    plan: Plan
    summary: Summary
    described: list[str] | None = None

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
    """A study on a device this machine lacks stops here, not in every task ("auto" and "cpu" always exist)."""
    if spec.device in ("auto", "cpu"):
        return
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


_CLASSES = ((1e11, "seconds"), (6e12, "minutes"), (3.6e14, "an hour or less"))


def _time_class(flops: float | None) -> str:
    """A rough class of a task's time from its multiply-adds, at about 10^10 per second (a CPU core or two)."""
    if flops is None:
        return "?"
    return next((name for bound, name in _CLASSES if flops < bound), "hours")


def describe_plan(plan: Plan, folder: StudyFolder, limit: MemoryLimit) -> list[str]:
    """Lines of a dry run: per stage its tasks, how many are done and to run, the longest task's time class
    and the largest peak memory (estimated), and whether the memory limit makes fits lower their batch."""
    lines = [f"{'stage':<10} {'tasks':>6} {'done':>6} {'to run':>7}  {'time (longest)':<16} peak memory"]
    lowered = 0
    for kind in dict.fromkeys(t.kind for t in plan.tasks):
        tasks = plan.of_kind(kind)
        done = sum(folder.is_done(t) for t in tasks)
        known = [plan.estimates[t.key] for t in tasks if t.key in plan.estimates]
        memory = [e.memory for e in known if e.memory is not None]
        flops = [e.flops for e in known if e.flops is not None]
        lowered += sum(e.memory is not None and e.memory > limit.bytes for e in known)
        lines.append(f"{kind:<10} {len(tasks):>6} {done:>6} {len(tasks) - done:>7}  "
                     f"{_time_class(max(flops)) if flops else '-':<16} {gigabytes(max(memory)) if memory else '-'}")
    lines.append(f"memory per task: {gigabytes(limit.bytes)} ({limit.source})" +
                 (f"; {lowered} fit(s) lower their target batch to fit it" if lowered else ""))
    return lines


def run_study(study, out=None, executor: str = "local", jobs: int = 1, address: str | None = None,
              max_retries: int = 2, progress: bool = True, memory_gb: float | None = None,
              dry_run: bool = False) -> StudyRun:
    """Run the study (a :class:`StudySpec` or a study file) into ``out`` (default :func:`default_out`).

    Tasks already done are reused; a failed task is recorded and does not stop the others (see the returned
    summary). ``executor``: "local" (``jobs`` processes) or "ray" (``address`` of a cluster, else a local one).
    Each fit runs within ``memory_gb`` (default: see :func:`memory_limit`), and a study with a fit that cannot
    is refused before anything runs. ``dry_run`` plans and checks only: the returned run's ``described`` lines
    say what would run (:func:`describe_plan`).
    """
    spec = study if isinstance(study, StudySpec) else load_study(study)
    if executor not in EXECUTORS:
        raise InputError(f"executor must be one of {sorted(EXECUTORS)}, got {executor!r}")
    if executor == "local":
        _check_device(spec)
    folder = StudyFolder(out if out is not None else default_out(spec))
    folder.check_owner(spec.name)
    limit = memory_limit(spec, executor, jobs, memory_gb)
    if dry_run:
        plan = plan_study(spec)
        check_memory(plan, [t for t in plan.tasks if not folder.is_done(t)], limit)
        return StudyRun(spec, folder, plan, Summary(), describe_plan(plan, folder, limit))
    with folder.lock():
        plan = plan_study(spec)
        collect = plan.of_kind("collect")[-1]
        todo = [task for task in plan.tasks if not folder.is_done(task)]
        if not todo:
            folder.publish(collect)
            return StudyRun(spec, folder, plan, Summary(reused=[t.key for t in plan.tasks]))
        check_memory(plan, todo, limit)
        _check_data(spec, plan)
        folder.write_header(spec.resolved(), plan.tasks)
        folder.sweep_debris()
        runner = EXECUTORS[executor](jobs) if executor == "local" else EXECUTORS[executor](
            address, max_retries, resources=spec.resolved()["resources"])
        summary = run_tasks(plan.tasks, folder, runner, spec.device, progress, limit.bytes)
        folder.publish(collect)
    return StudyRun(spec, folder, plan, summary)


def read_results(study_dir, summary: bool = False) -> pd.DataFrame:
    """The results table (or the per-fit summary) of a study folder."""
    return StudyFolder(study_dir).read_results(summary)


def read_blocks(study_dir) -> pd.DataFrame | None:
    """The per-block statistics of a study folder's test TRs (``scoring.test_blocks``), or None where it keeps
    none: the ``blocks=`` of :func:`cortexscale.scaling.fit_law`."""
    return StudyFolder(study_dir).read_blocks()
