"""The ``cortexscale`` command: run a study, see where it stands, read its results.

Errors are one clear line on stderr (the traceback too with ``--debug``). Exit codes: 0 success, 1 some
tasks failed, 2 bad input (a study file, a dataset, a model or a folder that cannot be used, each raised as
one of :mod:`cortexscale.errors`, or an optional dependency that is not installed), 3 the study folder is
being written by another run, 4 an unexpected error (a bug: ``--debug`` shows where), 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compute-optimal scaling studies of brain-encoding models.")

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED, EXIT_UNEXPECTED = 1, 2, 3, 4
_DEBUG = {"on": False}


def _fail(error: BaseException, code: int, cause: BaseException | None = None) -> None:
    if _DEBUG["on"]:
        import traceback

        traceback.print_exception(cause or error)
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code)


def _guarded(func, *args, **kwargs):
    """``func(*args, **kwargs)``, with errors turned into one line and an exit code."""
    from .errors import InputError
    from .study import StudyLockedError

    try:
        return func(*args, **kwargs)
    except StudyLockedError as err:
        _fail(err, EXIT_LOCKED)
    except (InputError, ImportError) as err:
        _fail(err, EXIT_BAD_INPUT)
    except Exception as err:  # noqa: BLE001 - one line and its own exit code; --debug shows the traceback
        _fail(RuntimeError(f"{type(err).__name__}: {err} (unexpected; --debug shows the traceback)"),
              EXIT_UNEXPECTED, cause=err)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")):
    _DEBUG["on"] = debug


@app.command()
def run(study: Path = typer.Argument(..., help="The study file (YAML)."),
        out: Path = typer.Option(None, "--out", help="Study folder; default outputs/<name>."),
        executor: str = typer.Option("local", "--executor", help="local or ray."),
        jobs: int = typer.Option(1, "--jobs", "-j", help="Local processes running tasks at once."),
        address: str = typer.Option(None, "--address", help="Ray cluster to join (default: start a local one)."),
        max_retries: int = typer.Option(2, "--max-retries", help="Ray: retries of a task whose worker died."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        memory_gb: float = typer.Option(None, "--memory-gb", help="Memory one task may use (default: the "
                                        "available memory shared by --jobs)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Plan and check only: print each stage's tasks, "
                                     "what is done, time class and peak memory, and run nothing.")):
    """Run a study, reusing every task already done; a study whose fits cannot fit the memory they have is
    refused before anything runs.

    Example: cortexscale run examples/alice_lm_scaling.yaml --jobs 2
    """
    from .study import run_study

    result = _guarded(run_study, study, out=out, executor=executor, jobs=jobs, address=address,
                      max_retries=max_retries, progress=progress, memory_gb=memory_gb, dry_run=dry_run)
    if dry_run:
        typer.echo(f"study {result.spec.name} ({result.folder.root}), dry run: nothing runs")
        typer.echo("\n".join(result.described))
        return
    typer.echo(result.line())
    if not result.summary.ok:
        typer.echo(f"see `cortexscale status {result.folder.root}` for the tracebacks", err=True)
        raise typer.Exit(EXIT_FAILED)


@app.command()
def status(study_dir: Path = typer.Argument(..., help="A study folder."),
           traceback: bool = typer.Option(False, "--traceback", help="Print the failed tasks' tracebacks.")):
    """Show how many tasks of each kind are done, failed or still to run.

    Example: cortexscale status outputs/alice-lm-scaling
    """
    from .study import StudyFolder

    counts, failures = _guarded(StudyFolder(study_dir).status)
    width = max(map(len, counts))
    for kind, row in counts.items():
        typer.echo(f"{kind:<{width}}  done {row['done']:>4}  failed {row['failed']:>3}  to run {row['todo']:>4}")
    for record in failures:
        typer.echo(f"failed: {record['label']}: {record['error']}")
        if traceback:
            typer.echo(record["traceback"])
    if failures:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def results(study_dir: Path = typer.Argument(..., help="A study folder."),
            targets: bool = typer.Option(False, "--targets", help="One row per target instead of per fit."),
            output: Path = typer.Option(None, "--output", "-o", help="Write CSV or Parquet (by suffix)."),
            columns: str = typer.Option(None, "--columns", help="Comma-separated columns to show."),
            where: list[str] = typer.Option(None, "--where", help="Keep rows whose column has this value, "
                                            "COLUMN=VALUE (repeatable); read from the file, not after it.")):
    """Print a study's results (per fit summaries by default) or write them to a file. Columns and --where are
    pushed down to the Parquet file, so a whole-brain table is never read whole for a query.

    Example: cortexscale results outputs/alice-lm-scaling --columns model,layer,fmri_size,mean_r
    """
    from .study import StudyFolder

    folder = StudyFolder(study_dir)
    wanted = [c.strip() for c in columns.split(",")] if columns else None
    filters = _guarded(_filters, folder.results_path(summary=not targets), where or [])
    table = _guarded(folder.read_results, summary=not targets, columns=wanted, filters=filters or None)
    if output is None:
        typer.echo(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    elif output.suffix == ".parquet":
        table.to_parquet(output, index=False)
    else:
        table.to_csv(output, index=False)


def _filters(path: Path, where: list[str]) -> list[tuple]:
    """pyarrow filters from COLUMN=VALUE pairs, each value read as its column's type."""
    import pyarrow.parquet as pq

    from .errors import InputError, StudyFolderError

    if not where:
        return []
    if not path.is_file():
        raise StudyFolderError(f"{path} does not exist: run the study first")
    fields = {f.name: f.type for f in pq.read_schema(path)}
    out = []
    for pair in where:
        column, sep, value = pair.partition("=")
        if not sep or column not in fields:
            raise InputError(f"--where {pair!r}: give COLUMN=VALUE with a column of {path.name}: {list(fields)}")
        kind = str(fields[column])
        try:
            typed = int(value) if kind.startswith(("int", "uint")) else float(value) if kind.startswith(
                ("float", "double")) else value
        except ValueError:
            raise InputError(f"--where {pair!r}: column {column} holds {kind}, not {value!r}") from None
        out.append((column, "==", typed))
    return out


@app.command()
def report(study_dir: Path = typer.Argument(..., help="A study folder."),
           n_boot: int = typer.Option(300, "--n-boot", help="Bootstrap resamples of every fit."),
           atlas: Path = typer.Option(None, "--atlas", help="NIfTI atlas (targets parcel_<label>) or mask "
                                                            "(targets voxel_<i>_<j>_<k>) for brain maps."),
           open_: bool = typer.Option(False, "--open", help="Open the report in the browser where one is present."),
           resample: str = typer.Option(None, "--resample", help="What the laws' intervals redraw: subjects, "
                                                                 "blocks (of test TRs) or subjects+blocks; default "
                                                                 "the study's scoring.test_blocks.resample, else "
                                                                 "subjects.")):
    """Write the study's report (fits, frontier, effects, figures) to STUDY_DIR/report/index.html.

    Example: cortexscale report outputs/videogpt-scaling --open
    """
    from .errors import StudyFolderError
    from .report import write_report

    if not Path(study_dir).is_dir():
        _fail(StudyFolderError(f"{study_dir} is not a folder"), EXIT_BAD_INPUT)
    _check_resample(resample)
    path = _guarded(write_report, study_dir, n_boot=n_boot, atlas=atlas, resample=resample)
    typer.echo(f"report: {path}")
    if open_:
        import webbrowser

        if not webbrowser.open(Path(path).resolve().as_uri()):
            typer.echo("no browser found here: open the file above in one", err=True)


@app.command()
def fit(study_dir: Path = typer.Argument(..., help="A study folder."),
        law: str = typer.Option("power", "--law", help="joint, power, loglinear, or depth (the best layer's "
                                                       "relative depth against --x)."),
        x: str = typer.Option("params", "--x", help="Axis of a single-axis law: params, params_non_embedding, "
                                                    "train_data or train_flops."),
        score: str = typer.Option("r", "--score", help="Per-target score column: r or normalised_r."),
        model: str = typer.Option(None, "--model", help="Only the rows of this model name."),
        ladder: str = typer.Option(None, "--ladder", help="Only the models of this named ladder (pythia, opt, ...)."),
        encoding: str = typer.Option(None, "--encoding", help="Only the fits of this encoding entry."),
        projection: str = typer.Option(None, "--projection", help="Only the fits at this feature count (srp-64, "
                                                                  "pca-256, none: full width); needed where the "
                                                                  "study projects."),
        axes: str = typer.Option("params,data", "--axes", help="Axes of the joint law: two or three of params, "
                                                               "data (training data), fmri (fMRI training TRs)."),
        by: str = typer.Option(None, "--by", help="roi or target: the log-linear law of --x per ROI (the "
                                                   "study's scoring.rois) or per target, with intervals."),
        n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples."),
        resample: str = typer.Option(None, "--resample", help="What the law's intervals redraw: subjects (and "
                                                              "their targets), blocks (of test TRs) or "
                                                              "subjects+blocks; default the study's "
                                                              "scoring.test_blocks.resample, else subjects.")):
    """Fit a scaling law to a study's results (each model at its best layer and largest fMRI size, or at every
    fMRI size for a joint law with the fmri axis) and print it; with the fmri axis, also what buys more score:
    2x and 10x model compute or fMRI data.

    Example: cortexscale fit outputs/videogpt-scaling --law joint --axes params,data,fmri
    """
    from .errors import InputError
    from .report import model_points
    from .scaling import fit_law, what_buys_more
    from .study import read_results

    joint = _joint_axes(axes) if law == "joint" else {}
    _check_resample(resample)
    results = _guarded(read_results, study_dir)
    table = _depth_rows(results) if law == "depth" else model_points(results, every_fmri="fmri" in joint)
    for column, value in (("model", model), ("ladder", ladder), ("encoding", encoding), ("projection", projection)):
        table = _only(table, column, value)
    if law == "depth":
        typer.echo(_guarded(lambda: _depth_fit(table, study_dir, score, x, n_boot, resample)).summary())
        return
    if by is not None:
        typer.echo(_guarded(lambda: _regional_text(table, study_dir, by, score, x, n_boot, resample)))
        return
    roles = {"params": "params", "params_non_embedding": "params", "train_data": "data", "train_flops": "compute"}
    if x not in roles:
        _fail(InputError(f"--x must be one of {sorted(roles)}, got {x!r}"), EXIT_BAD_INPUT)
    if law == "joint" and {"params", "data"} <= set(joint):
        joint["compute"] = "train_flops"
    columns = joint if law == "joint" else {roles[x]: x}

    def fitted():
        try:
            draws = _study_draws(study_dir, n_boot, resample)
            return fit_law(table, score=score, law=law, groups="subject", progress=False, **draws.law, **columns)
        except ValueError as err:  # a law the study's results cannot support, or a bad option of this command
            raise InputError(f"cannot fit the {law} law to {study_dir}: {err}") from err

    result = _guarded(fitted)
    typer.echo(result.summary())
    if "fmri" in joint and "params" in joint:
        typer.echo(_levers_text(what_buys_more(result), result.best))


def _check_resample(resample: str | None) -> None:
    from .errors import InputError
    from .report.resampling import RESAMPLES

    if resample is not None and resample not in RESAMPLES:
        _fail(InputError(f"--resample must be one of {', '.join(RESAMPLES)}, got {resample!r}"), EXIT_BAD_INPUT)


def _study_draws(study_dir: Path, n_boot: int, resample: str | None):
    """The bootstrap of ``cortexscale fit``: :func:`cortexscale.report.resampling.study_draws`."""
    from .report.resampling import study_draws
    from .study import StudyFolder

    return study_draws(StudyFolder(study_dir), n_boot, resample=resample)


def _depth_rows(results):
    from .errors import InputError
    from .report import depth_rows

    try:
        return depth_rows(results)
    except ValueError as err:
        _fail(InputError(str(err)), EXIT_BAD_INPUT)


def _depth_fit(table, study_dir: Path, score: str, x: str, n_boot: int, resample: str | None):
    from .errors import InputError
    from .scaling import depth_trend
    from .study.schema import axis_columns

    try:
        return depth_trend(table, score=score, x=x, models=["model", *axis_columns(table)],
                           **_study_draws(study_dir, n_boot, resample).law)
    except ValueError as err:
        raise InputError(f"cannot fit the depth trend to {study_dir}: {err}") from err


def _regional_text(table, study_dir: Path, by: str, score: str, x: str, n_boot: int, resample: str | None) -> str:
    """The size law per ROI or per target as text; a row whose interval excludes zero is starred."""
    from .errors import InputError
    from .scaling import region_gains, target_gains
    from .study import StudyFolder

    if by not in ("roi", "target"):
        raise InputError(f"--by takes roi or target, got {by!r}")
    try:
        if by == "roi":
            rois = ((StudyFolder(study_dir).resolved_study() or {}).get("scoring") or {}).get("rois") or {}
            if not rois:
                raise InputError(f"{study_dir}: the study names no scoring.rois; --by target fits each target")
            draws = _study_draws(study_dir, n_boot, resample)
            gains = region_gains(table, {"all targets": None, **rois}, score=score, x=x, **draws.law)
            redrawn = draws.words
        else:
            gains = target_gains(table, score=score, x=x, n_boot=n_boot).rename(columns={"target": "region"})
            redrawn = "subjects"
    except ValueError as err:
        raise InputError(f"cannot fit the law of {x} by {by} to {study_dir}: {err}") from err
    lines = [f"log-linear law of {score!r} by {by}: gain per decade of {x!r} with 95% intervals over "
             f"{n_boot} resamples of {redrawn} (* the interval excludes 0)"]
    for row in gains.itertuples():
        star = "*" if row.excludes_zero else " "
        lines.append(f"  {str(row.region):<24} {row.gain:+.4f}   [{row.low:+.4f}, {row.high:+.4f}] {star}")
    return "\n".join(lines)


def _only(table, column: str, value: str | None):
    """The rows whose ``column`` is ``value``; without a value, all rows, except that fits at several feature
    counts (``projection``) are never pooled in one law."""
    from .errors import InputError

    levels = sorted(map(str, table[column].dropna().unique())) if column in table else []
    if value is None:
        if column == "projection" and len(levels) > 1:
            _fail(InputError(f"the results hold fits at several feature counts {levels}; choose one with "
                             "--projection"), EXIT_BAD_INPUT)
        return table
    if value not in levels:
        _fail(InputError(f"--{column} {value!r} is not in the results; they have {levels}"), EXIT_BAD_INPUT)
    return table[table[column].astype(str) == value]


JOINT_COLUMNS = {"params": "params", "data": "train_data", "fmri": "n_train_trs"}
"""``cortexscale fit --axes`` names → results columns."""


def _joint_axes(axes: str) -> dict[str, str]:
    from .errors import InputError

    names = [a.strip() for a in axes.split(",") if a.strip()]
    unknown = [a for a in names if a not in JOINT_COLUMNS]
    if unknown or len(set(names)) != len(names) or not 2 <= len(names) <= 3:
        _fail(InputError(f"--axes takes two or three of {', '.join(JOINT_COLUMNS)} (comma-separated), got "
                         f"{axes!r}"), EXIT_BAD_INPUT)
    return {name: JOINT_COLUMNS[name] for name in JOINT_COLUMNS if name in names}


def _levers_text(levers, best: dict) -> str:
    at = ", ".join(f"{k} = {v:.4g}" for k, v in best.items())
    lines = [f"what buys more, from the best measured point ({at}); gains in score with 95% intervals:"]
    for row in levers.itertuples():
        lines.append(f"  {row.factor:>4g}x {row.lever:<28} {row.gain:+.4f}   [{row.low:+.4f}, {row.high:+.4f}]")
    return "\n".join(lines)


@app.command()
def demo(out: Path = typer.Option(Path("outputs") / "demo", "--out", help="Study folder."),
         jobs: int = typer.Option(2, "--jobs", "-j", help="Local processes running tasks at once."),
         progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")):
    """Run the default study (procedural game video, simulated subjects, a grid of video GPTs), fit the laws and
    write the report; a second run reuses everything.

    Example: cortexscale demo --jobs 2
    """
    from .report import write_report
    from .study import load_study, run_study
    from .study_files import DEFAULT_STUDY

    result = _guarded(run_study, load_study(DEFAULT_STUDY), out=out, jobs=jobs, progress=progress)
    typer.echo(result.line())
    if not result.summary.ok:
        raise typer.Exit(EXIT_FAILED)
    typer.echo(f"report: {_guarded(write_report, out)}")


@app.command()
def datasets():
    """List the dataset loaders a study file can name, with the settings each takes and their defaults.

    Example: cortexscale datasets
    """
    import textwrap

    from .data import DATASETS

    for name, loader in sorted(DATASETS.items()):
        summary = _plain(" ".join((loader.__doc__ or "").strip().split("\n\n")[0].split()))
        typer.echo(f"{name:<10} {summary.split('. ')[0].rstrip('.')}")
        typer.echo(textwrap.fill("settings: " + ", ".join(_settings(loader)), 110, initial_indent=" " * 11,
                                 subsequent_indent=" " * 21, break_on_hyphens=False))


@app.command()
def ladders(name: str = typer.Argument(None, help="One ladder (pythia, opt, ...); all of them when left out.")):
    """List the named ladders of pretrained models a study file's ``ladder:`` takes, each rung with its hub id,
    parameters (all and without embeddings), blocks, width, training data and the precision it loads in.

    Example: cortexscale ladders pythia
    """
    from .errors import InputError
    from .study.ladders import LADDERS

    if name is not None and name not in LADDERS:
        _fail(InputError(f"unknown ladder {name!r}; ladders are {sorted(LADDERS)}"), EXIT_BAD_INPUT)
    for ladder in [LADDERS[name]] if name else LADDERS.values():
        typer.echo(f"{ladder.name}: {ladder.reference}")
        typer.echo(f"  {'size':<10} {'source':<30} {'params':>9} {'non-emb':>9} {'blocks':>6} {'width':>6} "
                   f"{'train ' + ladder.train_unit:>13} dtype")
        for rung in ladder.rungs:
            typer.echo(f"  {rung.size:<10} {rung.source:<30} {rung.params:>9.3g} {rung.params_non_embedding:>9.3g} "
                       f"{rung.layers:>6} {rung.width:>6} {rung.train_data:>13.3g} {ladder.dtype(rung)}")


def _plain(text: str) -> str:
    """A docstring's reStructuredText as plain text: ``:class:`~a.B``` reads "B", ````x```` reads "x"."""
    import re

    text = re.sub(r":[\w:]+:`~[^`]*?([^.`]+)`", r"\1", text)
    text = re.sub(r":[\w:]+:`([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


def _settings(loader) -> list[str]:
    """A dataset loader's settings as a study file's ``settings:`` takes them, with their defaults."""
    import inspect

    return [f"{p.name} (required)" if p.default is p.empty else f"{p.name}={p.default!r}"
            for p in inspect.signature(loader).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def entry() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted; finished tasks are kept and a rerun resumes", err=True)
        sys.exit(130)


if __name__ == "__main__":
    entry()
