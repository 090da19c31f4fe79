"""The study folder, the one truth about what is done.

Layout::

    <study>/study.yaml        the resolved study (every default filled in)
    <study>/versions.json     Python and package versions of the last run
    <study>/plan.json         every task: key, kind, label, inputs
    <study>/.lock             held (flock) by the run writing the folder
    <study>/tasks/<kind>/<key>/               a finished task's files, with meta.json
    <study>/tasks/<kind>/<key>.failed.json    the traceback of its last failure
    <study>/results.parquet, summary.parquet  every score, and the per-fit summaries (the collect task's)
    <study>/report/                           the report (cortexscale report)

A task is filled in a temporary folder beside its final place and renamed into place whole, with its
``meta.json`` inside, so a task folder that exists is finished: a run killed at any moment loses only the
tasks that were running, and the next run redoes exactly those. No other code knows these paths: stages see
their own folder and their inputs' (:class:`~cortexscale.study.executors.Context`), everything else asks a
:class:`StudyFolder`.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import platform
import shutil
import socket
import tempfile
import time
import traceback
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import yaml

from .._io import atomic_path, write_atomic
from ..errors import StudyFolderError
from .schema import BLOCKS_FILE, RESULTS_FILE, SUMMARY_FILE
from .tasks import Task

__all__ = ["META", "StudyFolder", "StudyLockedError", "read_meta", "versions"]

META = "meta.json"
"""The record a finished task's folder holds: its key, settings, inputs, result, seconds, warnings, host."""


def read_meta(task_dir) -> dict:
    """The record of the finished task whose folder is ``task_dir``."""
    return json.loads((Path(task_dir) / META).read_text())

_PACKAGES = ("cortexscale", "numpy", "scipy", "torch", "scikit-learn", "pandas", "transformers", "pydantic", "ray")


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no second copy of a large table), a copy where links fail."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class StudyLockedError(RuntimeError):
    """Another run is writing the study folder."""


def versions() -> dict:
    """Python, platform and the installed versions of the packages a study depends on (a new dict each call)."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> dict:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


class StudyFolder:
    """Reads and writes one study folder (see the module docstring)."""

    def __init__(self, root):
        self.root = Path(root)

    def task_dir(self, task: Task | str, kind: str | None = None) -> Path:
        kind, key = (task.kind, task.key) if isinstance(task, Task) else (kind, task)
        return self.root / "tasks" / kind / key

    def input_dirs(self, task: Task) -> dict[str, Path]:
        """Role -> folder of each input task of ``task``."""
        return {role: self.root / "tasks" / ref for role, ref in task.inputs.items()}

    def is_done(self, task: Task) -> bool:
        return (self.task_dir(task) / META).is_file()

    def meta(self, task: Task) -> dict:
        """The metadata record of a finished task."""
        return read_meta(self.task_dir(task))

    @staticmethod
    def write_meta(task_dir: Path, meta: dict) -> None:
        """Write a task's record into its staging folder (renamed into place whole, so no atomic write)."""
        (Path(task_dir) / META).write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")

    def finished(self, kind: str | None = None) -> list[dict]:
        """The records of every finished task of ``kind`` (of every kind for None) in the folder, planned by the
        last run or not."""
        pattern = f"{kind or '*'}/*/{META}"
        return [json.loads(path.read_text()) for path in sorted((self.root / "tasks").glob(pattern))]

    def failure_path(self, task: Task) -> Path:
        return self.task_dir(task).with_name(f"{task.key}.failed.json")

    @contextmanager
    def staging(self, task: Task):
        """A temporary folder for ``task``'s files; renamed into place if the block ends without error."""
        final = self.task_dir(task)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{task.key}.", suffix=".tmp"))
        try:
            yield tmp
            if final.exists():
                return
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def record_failure(self, task: Task, error: BaseException, seconds: float) -> dict:
        record = {"key": task.key, "kind": task.kind, "label": task.label, "error": f"{type(error).__name__}: {error}",
                  "traceback": "".join(traceback.format_exception(error)), "seconds": seconds,
                  "host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
        write_atomic(self.failure_path(task), json.dumps(record, indent=2))
        return record

    def clear_failure(self, task: Task) -> None:
        self.failure_path(task).unlink(missing_ok=True)

    def sweep_debris(self) -> int:
        """Remove the temporary folders of tasks that were killed while running; returns how many."""
        debris = list((self.root / "tasks").glob("*/.*.tmp"))
        for folder in debris:
            shutil.rmtree(folder, ignore_errors=True)
        return len(debris)

    def check_owner(self, name: str) -> None:
        """A folder holding another study is refused: two studies never write one folder."""
        other = (self.resolved_study() or {}).get("name")
        if other is not None and other != name:
            raise StudyLockedError(f"{self.root} holds study {other!r}, not {name!r}: two studies cannot write one "
                                   "folder; give this study its own output folder (--out)")

    def resolved_study(self) -> dict | None:
        """The resolved study the folder holds (``study.yaml``), or None."""
        path = self.root / "study.yaml"
        try:
            return yaml.safe_load(path.read_text()) if path.is_file() else None
        except yaml.YAMLError:
            return None

    def versions_text(self) -> str | None:
        path = self.root / "versions.json"
        return path.read_text() if path.is_file() else None

    def results_path(self, summary: bool = False) -> Path:
        return self.root / (SUMMARY_FILE if summary else RESULTS_FILE)

    def read_results(self, summary: bool = False, columns: list[str] | None = None,
                     filters=None) -> pd.DataFrame:
        """The results table (or the per-fit summary) of the folder's last finished run; only ``columns``
        (default all) of the rows that pass ``filters`` (pyarrow's: ``[("model", "==", "gpt"), ...]``), which
        are pushed down to the file, so a query of a whole-brain study reads only the fits it asks for."""
        path = self.results_path(summary)
        if not path.is_file():
            raise StudyFolderError(f"{path} does not exist: the study in {self.root} has not finished a run "
                                   "(cortexscale status shows what is missing)")
        if columns is not None:
            have = pq.read_schema(path).names
            missing = [c for c in columns if c not in have]
            if missing:
                raise StudyFolderError(f"{path} has no column(s) {missing}; its columns are {have}")
        return pd.read_parquet(path, columns=columns, filters=filters)

    def read_blocks(self, filters=None) -> pd.DataFrame | None:
        """The per-block statistics of the test TRs (:data:`~cortexscale.study.schema.BLOCKS_FILE`) of the rows
        that pass ``filters`` (as :meth:`read_results`), or None where the study keeps none."""
        path = self.root / BLOCKS_FILE
        return pd.read_parquet(path, filters=filters) if path.is_file() else None

    def publish(self, collect: Task) -> None:
        """Put the finished collect task's tables at the top of the folder (hard links where the file system
        allows, else copies), atomically."""
        if not self.is_done(collect):
            return
        for name in (RESULTS_FILE, SUMMARY_FILE, BLOCKS_FILE):
            source = self.task_dir(collect) / name
            if not source.is_file():  # a study that no longer keeps test-TR blocks drops its old table
                (self.root / name).unlink(missing_ok=True)
                continue
            with atomic_path(self.root / name, suffix=".parquet") as tmp:
                _link_or_copy(source, Path(tmp))

    def report_dir(self) -> Path:
        return self.root / "report"

    def status(self) -> tuple[dict, list[dict]]:
        """Per kind of the last run's plan, the counts of tasks done, failed and to run; and the failure records."""
        plan_path = self.root / "plan.json"
        if not plan_path.is_file():
            raise StudyFolderError(f"{self.root} is not a study folder (no plan.json); run a study into it first")
        counts: dict = {}
        failures = []
        for task in json.loads(plan_path.read_text()):
            row = counts.setdefault(task["kind"], {"done": 0, "failed": 0, "todo": 0})
            folder = self.task_dir(task["key"], task["kind"])
            failed = folder.with_name(f"{task['key']}.failed.json")
            if (folder / META).is_file():
                row["done"] += 1
            elif failed.is_file():
                row["failed"] += 1
                failures.append(json.loads(failed.read_text()))
            else:
                row["todo"] += 1
        return counts, failures

    def write_header(self, resolved: dict, tasks: list[Task]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.root / "study.yaml", yaml.safe_dump(resolved, sort_keys=False))
        write_atomic(self.root / "versions.json", json.dumps(versions(), indent=2))
        plan = [{"key": t.key, "kind": t.kind, "label": t.label, "inputs": t.inputs} for t in tasks]
        write_atomic(self.root / "plan.json", json.dumps(plan, indent=1))

    @contextmanager
    def lock(self):
        """Hold the folder's lock for the block; a second run on the same folder raises StudyLockedError."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        handle = open(path, "a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise StudyLockedError(f"{self.root} is being written by another run ({holder}); wait for it or "
                                       "stop it") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
            handle.flush()
            yield
        finally:
            handle.close()
