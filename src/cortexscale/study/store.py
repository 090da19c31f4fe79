"""The study folder, the one truth about what is done.

Layout::

    <study>/study.yaml        the resolved study (every default filled in)
    <study>/versions.json     Python and package versions of the last run
    <study>/plan.json         every task: key, kind, label, inputs
    <study>/.lock             held (flock) by the run writing the folder
    <study>/tasks/<kind>/<key>/               a finished task's files, with meta.json
    <study>/tasks/<kind>/<key>.failed.json    the traceback of its last failure
    <study>/results.parquet, summary.parquet  every score, and the per-subject summaries

A task is filled in a temporary folder beside its final place and renamed into place whole, with its
``meta.json`` inside, so a task folder that exists is finished: a run killed at any moment loses only the
tasks that were running, and the next run redoes exactly those.
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

import yaml

from .._io import write_atomic
from .tasks import Task

__all__ = ["StudyFolder", "StudyLockedError", "versions"]

_PACKAGES = ("cortexscale", "numpy", "scipy", "torch", "scikit-learn", "pandas", "transformers", "pydantic", "ray")


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

    def is_done(self, task: Task) -> bool:
        return (self.task_dir(task) / "meta.json").is_file()

    def meta(self, task: Task) -> dict:
        """The metadata record of a finished task."""
        return json.loads((self.task_dir(task) / "meta.json").read_text())

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
        path = self.root / "study.yaml"
        if not path.is_file():
            return
        try:
            other = (yaml.safe_load(path.read_text()) or {}).get("name")
        except yaml.YAMLError:
            other = None
        if other is not None and other != name:
            raise StudyLockedError(f"{self.root} holds study {other!r}, not {name!r}: two studies cannot write one "
                                   "folder; give this study its own output folder (--out)")

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
