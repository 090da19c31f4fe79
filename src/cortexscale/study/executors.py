"""Executors: run a study's tasks in process, in a local process pool, or on a Ray cluster.

One scheduler serves them all (:func:`run_tasks`): it skips finished tasks, submits each task once its
inputs are done, records a failure without stopping the others (its dependants are reported as blocked),
and shows a progress bar over the tasks with the stage of each. Every task runs through
:func:`execute_task`, which stages its files in the study folder and renames them into place, so the study
folder stays the truth whichever executor ran it.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .._warnings import recorded_warnings
from ..errors import InputError
from .store import StudyFolder, read_meta, versions
from .tasks import STAGES, Task

__all__ = ["EXECUTORS", "Context", "LocalExecutor", "Outcome", "RayExecutor", "Summary", "execute_task", "run_tasks"]


@dataclass(frozen=True)
class Context:
    """What a stage sees: ``out`` (the folder to write into), ``inputs`` (role -> folder of that input task)
    and ``device`` (the study's: never part of a task's key, so a study moved to another device reruns
    nothing); ``memory``: the bytes the task may use (None: no limit), which a fit meets by its target batch."""

    out: Path
    inputs: dict[str, Path]
    device: str = "auto"
    memory: int | None = None

    def input_meta(self, role: str) -> dict:
        """The record of the input task of ``role``."""
        return read_meta(self.inputs[role])


@dataclass(frozen=True)
class Outcome:
    """How one task ended: status "done", "failed" or "reused", its seconds and, on failure, the error."""

    key: str
    status: str
    seconds: float = 0.0
    error: str = ""


def execute_task(root, task: Task, device: str = "auto", memory: int | None = None) -> Outcome:
    """Run ``task`` into the study folder ``root`` (its inputs must be done) within ``memory`` bytes; never
    raises for a failure of the task itself, which is recorded next to its folder instead."""
    from . import stages  # noqa: F401  (registers the stages in a fresh worker process)

    folder = StudyFolder(root)
    if folder.is_done(task):
        return Outcome(task.key, "reused")
    start, wall = time.perf_counter(), time.time()
    try:
        with folder.staging(task) as tmp:
            with recorded_warnings(categories=True) as caught:
                result = STAGES[task.kind].run(task, Context(tmp, folder.input_dirs(task), device, memory)) or {}
            seconds = time.perf_counter() - start
            meta = {"key": task.key, "kind": task.kind, "label": task.label, "settings": task.settings,
                    "inputs": task.inputs, "result": result, "seconds": seconds, "started": wall,
                    "warnings": caught, "host": socket.gethostname(), "pid": os.getpid(), "versions": versions()}
            folder.write_meta(tmp, meta)
    except Exception as err:  # a task's failure is data: recorded, reported, and the others go on
        seconds = time.perf_counter() - start
        record = folder.record_failure(task, err, seconds)
        return Outcome(task.key, "failed", seconds, record["error"])
    folder.clear_failure(task)
    return Outcome(task.key, "done", seconds)


@dataclass
class Summary:
    """What a run did: counts of tasks that ran, were reused, failed or were blocked by a failure."""

    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    seconds: float = 0.0
    task_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked

    def line(self) -> str:
        parts = [f"ran {len(self.ran)}", f"reused {len(self.reused)}", f"failed {len(self.failed)}"]
        if self.blocked:
            parts.append(f"blocked {len(self.blocked)}")
        return f"{', '.join(parts)} tasks in {self.seconds:.1f} s"


class LocalExecutor:
    """Tasks in this process (``jobs=1``) or in a pool of ``jobs`` processes, each with its share of threads."""

    def __init__(self, jobs: int = 1):
        if int(jobs) != jobs or jobs < 1:
            raise InputError(f"jobs must be a positive integer, got {jobs!r}")
        self.jobs = int(jobs)
        self._pool = None

    def __enter__(self):
        if self.jobs > 1:
            threads = max(1, (os.cpu_count() or 1) // self.jobs)
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_limit_threads, initargs=(threads,))
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def submit(self, root, task: Task, device: str, memory: int | None = None):
        if self._pool is None:
            future = Future()
            future.set_result(execute_task(root, task, device, memory))
            return future
        return self._pool.submit(execute_task, str(root), task, device, memory)

    def wait(self, handles: list) -> list:
        done, _ = wait_futures(handles, return_when=FIRST_COMPLETED)
        return [(handle, _result(handle)) for handle in done]


def _result(future: Future) -> Outcome | BaseException:
    try:
        return future.result()
    except BaseException as err:  # the worker process died (killed, out of memory)
        return err


def _limit_threads(threads: int) -> None:
    """Give a pool worker its share of the CPUs: torch's threads and the BLAS/OpenMP pools numpy and scipy use
    (left at every core, two workers on two cores would run four threads)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def ray_options(kind: str, device: str, resources: dict | None = None) -> dict:
    """Ray task options of one task of ``kind``: ``num_cpus`` (default 1), ``num_gpus`` (default 1 for the
    accelerated stages of a study on a CUDA device, else 0) and ``memory`` in bytes (none by default), each
    overridden by ``resources[kind]`` (``{"cpus": n, "gpus": n, "memory_gb": x}``, the study's ``resources``)."""
    cuda = str(device).strip().lower().startswith("cuda")
    given = {k: v for k, v in ((resources or {}).get(kind) or {}).items() if v is not None}
    options = {"num_cpus": float(given.get("cpus", 1)),
               "num_gpus": float(given.get("gpus", 1 if cuda and STAGES[kind].accelerated else 0))}
    if "memory_gb" in given:
        options["memory"] = int(given["memory_gb"] * 2**30)
    return options


class RayExecutor:
    """Tasks as Ray tasks on a cluster (``address``; None starts a local one), each asking for the CPUs, GPUs
    and memory of :func:`ray_options`; a task whose worker dies is retried up to ``max_retries`` times."""

    def __init__(self, address: str | None = None, max_retries: int = 2, num_cpus: int | None = None,
                 resources: dict | None = None):
        self.address, self.max_retries, self.num_cpus = address, max_retries, num_cpus
        self.resources = resources
        self._remote = None

    def __enter__(self):
        try:
            import ray
        except ImportError as err:
            raise ImportError("the Ray executor needs ray: pip install 'cortexscale[ray]'") from err
        if not ray.is_initialized():
            ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True)
        self._ray = ray
        self._remote = ray.remote(max_retries=self.max_retries, retry_exceptions=False)(execute_task)
        return self

    def __exit__(self, *exc):
        return None

    def submit(self, root, task: Task, device: str, memory: int | None = None):
        options = ray_options(task.kind, device, self.resources)
        return self._remote.options(**options).remote(str(root), task, device, options.get("memory", memory))

    def wait(self, handles: list) -> list:
        done, _ = self._ray.wait(handles, num_returns=1)
        out = []
        for ref in done:
            try:
                out.append((ref, self._ray.get(ref)))
            except Exception as err:  # retries exhausted: the worker kept dying
                out.append((ref, err))
        return out


EXECUTORS: dict[str, Callable[..., object]] = {"local": LocalExecutor, "ray": RayExecutor}
"""Executors by name, as the command line and :func:`cortexscale.study.run_study` take them."""


def _blocked(task: Task, failed: set[str]) -> bool:
    return any(dep in failed for dep in task.dependencies)


def run_tasks(tasks: list[Task], folder: StudyFolder, executor, device: str = "auto",
              progress: bool = True, memory: int | None = None) -> Summary:
    """Run the tasks not yet done (``tasks`` in topological order) with ``executor``, each within ``memory``
    bytes; returns a Summary."""
    start = time.perf_counter()
    summary = Summary()
    todo = []
    for task in tasks:
        if folder.is_done(task):
            summary.reused.append(task.key)
        else:
            todo.append(task)
    finished = set(summary.reused)
    failed: set[str] = set()
    waiting = {task.key: task for task in todo}
    running: dict = {}
    with tqdm(total=len(todo), disable=not progress or not todo, desc="study", unit="task") as bar, executor:
        while waiting or running:
            for key, task in list(waiting.items()):
                if _blocked(task, failed):
                    summary.blocked.append(waiting.pop(key).label)
                    failed.add(key)
                    bar.update(1)
                elif all(dep in finished for dep in task.dependencies):
                    running[executor.submit(folder.root, waiting.pop(key), device, memory)] = task
            if not running:
                break
            for handle, outcome in executor.wait(list(running)):
                task = running.pop(handle)
                _record(summary, task, outcome, finished, failed, folder)
                bar.set_postfix_str(f"{task.kind}: {task.label}"[:60])
                bar.update(1)
    summary.seconds = time.perf_counter() - start
    return summary


def _record(summary: Summary, task: Task, outcome, finished: set, failed: set, folder: StudyFolder) -> None:
    if isinstance(outcome, BaseException):  # the worker died: the driver records the failure
        outcome = Outcome(task.key, "failed", 0.0, folder.record_failure(task, outcome, 0.0)["error"])
    summary.task_seconds += outcome.seconds
    if outcome.status == "failed":
        failed.add(task.key)
        summary.failed[task.label] = outcome.error
    else:
        finished.add(task.key)
        (summary.ran if outcome.status == "done" else summary.reused).append(task.key)
