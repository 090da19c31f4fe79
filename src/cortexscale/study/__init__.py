"""Studies: one study file declares a sweep; it is expanded into tasks, run locally or on Ray, and every score
lands in one results table. Finished tasks are never redone. Model families and kinds of fit are plugins
(:data:`FAMILIES`, :data:`FITS`)."""

from ..errors import StudyFileError
from . import stages  # noqa: F401  (registers the task kinds)
from .executors import EXECUTORS, LocalExecutor, RayExecutor, Summary
from .families import FAMILIES, Family, register_family
from .fits import FITS, FitKind, register_fit
from .ladders import LADDERS, ladder_rungs
from .plan import Plan, plan_study
from .run import StudyRun, default_out, read_blocks, read_results, run_study
from .schema import summarise
from .spec import StudySpec, grid, load_study, parse_study
from .store import StudyFolder, StudyLockedError
from .sweeps import SWEEPS, sweep_axes
from .tasks import STAGES, Task, make_task

__all__ = [
    "EXECUTORS",
    "FAMILIES",
    "FITS",
    "Family",
    "FitKind",
    "LADDERS",
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
    "ladder_rungs",
    "load_study",
    "make_task",
    "parse_study",
    "plan_study",
    "read_blocks",
    "read_results",
    "register_family",
    "register_fit",
    "run_study",
    "summarise",
    "sweep_axes",
]
