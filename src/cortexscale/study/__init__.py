"""Studies: one study file declares a sweep; it is expanded into tasks, run locally or on Ray, and every score
lands in one results table. Finished tasks are never redone."""

from . import stages  # noqa: F401  (registers the task kinds)
from .executors import EXECUTORS, LocalExecutor, RayExecutor, Summary
from .plan import Plan, plan_study
from .run import StudyRun, default_out, read_results, run_study
from .spec import StudyFileError, StudySpec, grid, load_study, parse_study
from .stages.collect import summarise
from .store import StudyFolder, StudyLockedError
from .sweeps import SWEEPS, sweep_axes
from .tasks import STAGES, Task, make_task

__all__ = [
    "EXECUTORS",
    "LocalExecutor",
    "Plan",
    "RayExecutor",
    "STAGES",
    "SWEEPS",
    "StudyFileError",
    "StudyFolder",
    "StudyLockedError",
    "StudyRun",
    "StudySpec",
    "Summary",
    "Task",
    "default_out",
    "grid",
    "load_study",
    "make_task",
    "parse_study",
    "plan_study",
    "read_results",
    "run_study",
    "summarise",
    "sweep_axes",
]
