"""How much memory a study's tasks may use, and the refusal, before anything runs, of a study whose fits
cannot fit it (each fit's estimate is the planner's, :class:`~cortexscale.study.plan.Estimate`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError, MemoryBudgetError
from .plan import Plan
from .spec import StudySpec

__all__ = ["MemoryLimit", "available_memory", "check_memory", "gigabytes", "memory_limit"]


def available_memory() -> int:
    """Bytes of memory this machine can give now (``MemAvailable``; the physical memory where that is not
    known)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class MemoryLimit(NamedTuple):
    """The bytes one task may use, and where that figure comes from (for messages)."""

    bytes: int
    source: str


def memory_limit(spec: StudySpec, executor: str = "local", jobs: int = 1,
                 memory_gb: float | None = None) -> MemoryLimit:
    """What one fit task may use: ``memory_gb`` where given; on Ray the study's ``resources.fit.memory_gb``
    (what each fit asks of a worker) where set; else this machine's available memory shared by ``jobs``
    processes."""
    if memory_gb is not None:
        if not memory_gb > 0:
            raise InputError(f"--memory-gb must be a positive number of GB, got {memory_gb!r}")
        return MemoryLimit(int(memory_gb * 2**30), "given by --memory-gb")
    fit = spec.resolved()["resources"].get("fit") or {}
    if executor == "ray" and fit.get("memory_gb"):
        return MemoryLimit(int(fit["memory_gb"] * 2**30), "the study's resources.fit.memory_gb")
    jobs = max(1, jobs)
    return MemoryLimit(available_memory() // jobs, "this machine's available memory" +
                       (f" shared by {jobs} jobs" if jobs > 1 else ""))


def gigabytes(n: float) -> str:
    """``n`` bytes for a message: GB above 128 MB, else MB."""
    return f"{n / 2**30:.2f} GB" if n >= 2**27 else f"{n / 2**20:.0f} MB"


def check_memory(plan: Plan, todo: list, limit: MemoryLimit) -> None:
    """Refuse, before anything runs, a study one of whose tasks to run cannot fit ``limit`` bytes even with
    the smallest target batch; the message names the task, its estimate and the limit."""
    least = {task.key: plan.estimates[task.key].least for task in todo if task.key in plan.estimates}
    over = [(task, plan.estimates[task.key]) for task in todo
            if least.get(task.key) is not None and least[task.key] > limit.bytes]
    if over:
        task, estimate = max(over, key=lambda pair: pair[1].least)
        raise MemoryBudgetError(
            f"{len(over)} task(s) cannot fit the memory they have: task {task.label!r} needs about "
            f"{gigabytes(estimate.least)} even with the smallest target batch, and the limit is "
            f"{gigabytes(limit.bytes)} per task ({limit.source}); give fewer jobs, more memory (--memory-gb), "
            "fewer targets or fewer TRs")
