"""Tasks: the units a study runs, each addressed by an explicit key.

A task's key is a SHA-256 over its kind, its resolved settings, the keys of its inputs, its stage's format
version and the package version, never over function source. Changing one axis of a study changes the keys
of the tasks that depend on it and of nothing else, so only they rerun.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import __version__

__all__ = ["STAGES", "Stage", "Task", "make_task", "stage", "task_key", "topological"]


@dataclass(frozen=True)
class Stage:
    """How one kind of task runs: ``run(task, context) -> dict`` writes the task's files into
    ``context.out`` and returns JSON-able results kept in its metadata; ``version`` is bumped whenever the
    files or results it writes change meaning; ``accelerated`` stages run on the study's device, so on a
    CUDA study each of their tasks asks a cluster for a GPU (see :func:`cortexscale.study.executors.ray_options`)."""

    run: Callable
    version: int
    accelerated: bool = False


STAGES: dict[str, Stage] = {}
"""Task kinds by name."""


def stage(kind: str, version: int, accelerated: bool = False):
    """Decorator registering ``run`` as the stage of task kind ``kind``."""
    def add(run: Callable) -> Callable:
        STAGES[kind] = Stage(run, version, accelerated)
        return run
    return add


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def task_key(kind: str, settings: dict, inputs: Iterable[str], version: int) -> str:
    """Hex key (32 characters) of a task."""
    payload = {"kind": kind, "settings": settings, "inputs": list(inputs), "version": version,
               "package": __version__}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Task:
    """One unit of work: ``kind`` (a key of :data:`STAGES`), JSON-able ``settings``, ``inputs`` (a dict of
    role -> "kind/key" of the task it reads, which is where that task's folder sits under ``tasks/``), a
    human ``label`` and its ``key``."""

    kind: str
    settings: dict
    inputs: dict
    label: str
    key: str

    @property
    def ref(self) -> str:
        """Where the task's folder sits under ``tasks/``: "kind/key"."""
        return f"{self.kind}/{self.key}"

    @property
    def dependencies(self) -> list[str]:
        """Keys of the input tasks."""
        return list(dict.fromkeys(ref.split("/")[-1] for ref in self.inputs.values()))


def make_task(kind: str, settings: dict, inputs: dict[str, Task] | None = None, label: str = "") -> Task:
    """A :class:`Task` of ``kind`` reading the tasks ``inputs`` (role -> Task), with its key computed;
    ``settings`` are normalised through JSON."""
    if kind not in STAGES:
        raise ValueError(f"unknown task kind {kind!r}; kinds are {sorted(STAGES)}")
    settings = json.loads(_canonical(settings))
    refs = {role: task.ref for role, task in (inputs or {}).items()}
    key = task_key(kind, settings, [f"{role}={ref}" for role, ref in sorted(refs.items())], STAGES[kind].version)
    return Task(kind, settings, refs, label or kind, key)


def topological(tasks: Iterable[Task]) -> list[Task]:
    """Tasks in an order where each comes after its inputs; duplicates (same key) are merged.

    An input key that no task produces is an error naming the task that needs it.
    """
    by_key = {}
    for task in tasks:
        by_key.setdefault(task.key, task)
    order, state = [], {}

    def visit(key: str, path: tuple) -> None:
        if state.get(key) == "done":
            return
        if state.get(key) == "active":
            raise ValueError(f"tasks form a cycle: {' -> '.join(path + (key,))}")
        state[key] = "active"
        for dep in by_key[key].dependencies:
            if dep not in by_key:
                raise ValueError(f"task {by_key[key].label} needs input {dep}, which no task of the study produces")
            visit(dep, path + (key,))
        state[key] = "done"
        order.append(by_key[key])

    for key in by_key:
        visit(key, ())
    return order
