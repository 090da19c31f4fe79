"""Study runner speed: a rerun of a finished 200-task study, the runner's overhead over its tasks, and a local
2-CPU Ray cluster against one process.

Goals (issue 10): the rerun under 5 s (a fresh ``python -m cortexscale run``, imports included); overhead under
5% of the summed task time on a study of short tasks; Ray at least 1.6x faster than one process on a study of
independent tasks. Run ``python benchmarks/study_bench.py`` (``--quick`` for a smaller study).

The Ray study has the shape of real fits, each small enough for one CPU thread: the features of 10 random
GPT-2s (64 wide, layers 1 and 2) on three stories of 300 TRs, then for each of 10 subjects, layer and amount of
fMRI data (1 or 2 runs) a fit of 3000 targets (4 delays, 25 alphas, 2-fold CV): 400 fits of about 0.35 s.
One process, a local pool of 2 (``--jobs 2``) and a local 2-CPU Ray cluster each run it as a fresh
``python -m cortexscale run``, as a user would, so each pays its own imports; the Ray cluster is started
first, as a cluster is. Each run also reports the seconds before its first task and after its last (the
workers' start-up is there) and its summed task seconds per stage. The fixed part is a few seconds more on
Ray than in one process, so the ratio grows with the study: ``--subjects`` sets its size.

The whole-brain case (issue 18) writes a generic dataset of 2 subjects x (4 training stories of 600 TRs + a test
story) x 20,000 targets in float32 (``--targets``), and runs 4 random GPT-2s (64 to 256 wide) x layers 1 and 2 x
2 and 4 training runs (32 fits, 4 delays, 10 alphas, 2-fold CV) as a fresh ``python -m cortexscale run`` in one
process, then the same fits bare (each fit's arrays prepared first, untimed, then fit + predict + score), the
study again with ``--jobs 2``, and a rerun of the finished study. It reports the study's wall time against the
bare fits' summed time (goal <= 1.15x), the study's peak resident memory against one subject's training
responses in float32 and the largest fit's working set measured alone (goal <= 3x the responses plus the
working set), the ``--jobs 2`` ratio and the rerun (goal < 3 s). ``--cases`` picks the cases to run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _results import write_results  # noqa: E402
from study_fixtures import toy_study, write_tiny_lm  # noqa: E402

from cortexscale.study import StudyFolder, load_study, plan_study, run_study  # noqa: E402


def wide_study(root: Path, n_models: int, sizes: list) -> Path:
    """The toy study with ``n_models`` tiny LMs, layers 0 and 1 and the given fMRI sizes."""
    path = toy_study(root)
    study = yaml.safe_load(path.read_text())
    study["models"] = [{"family": "pretrained", "name": f"lm{i}", "source": str(write_tiny_lm(root / f"lm{i}", 1, i)),
                        "context": [8, 16], "layers": [0, 1]} for i in range(n_models)]
    study["fmri"]["sizes"] = sizes
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def cli_seconds(study: Path, out: Path, *options: str) -> float:
    """Wall time of a fresh ``python -m cortexscale run`` of ``study`` into ``out``, imports included, as a user
    starts it."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cortexscale", "run", str(study), "--out", str(out), "--no-progress",
                    *options], check=True, capture_output=True)
    return time.perf_counter() - start


def ray_speedup(study: Path, root: Path) -> dict:
    """One process, a local pool of 2 and a local 2-CPU Ray cluster on the same study, each a fresh command."""
    import ray

    one = timed_run(study, root / "one-process")
    pool = timed_run(study, root / "pool", "--jobs", "2")
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = timed_run(study, root / "ray", "--executor", "ray", "--address", context.address_info["address"])
    finally:
        ray.shutdown()
    return {"tasks": len(plan_study(load_study(study)).tasks), "one_process": one, "pool_2": pool,
            "ray_2cpu": remote, "speedup": one["seconds"] / remote["seconds"],
            "pool_speedup": one["seconds"] / pool["seconds"]}


def fit_study(root: Path, n_models: int, subjects: int, n_trs: int = 300, targets: int = 3000,
              hidden: int = 64) -> Path:
    """Independent fits of a realistic shape for one CPU thread each: the features of ``n_models`` random GPT-2s
    (``hidden`` wide, layers 1 and 2, 4 delays) on runs of ``n_trs`` TRs, then per subject, layer and amount of
    fMRI data (1 or 2 runs) a fit of ``targets`` targets over a 25-alpha grid with 2-fold CV."""
    from study_fixtures import write_toy_dataset

    data = write_toy_dataset(root / "fit-data", n_trs=n_trs, targets=targets, words=4 * n_trs, subjects=subjects)
    models = [{"family": "pretrained", "name": f"lm{i}", "source": str(write_tiny_lm(root / f"lm{i}", 2, i, hidden)),
               "context": [8, 16], "layers": [1, 2]} for i in range(n_models)]
    study = {"name": "fits", "datasets": [{"name": "fits", "loader": "generic", "settings": {"path": str(data)}}],
             "fmri": {"unit": "runs", "sizes": [1, 2]}, "models": models,
             "encoding": {"delays": [1, 2, 3, 4], "alphas": {"logspace": [0, 4, 25]}, "cv": 2}}
    path = root / "fits.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def whole_brain_study(root: Path, targets: int, n_trs: int = 600, hidden=(64, 128, 192, 256)) -> Path:
    """2 subjects x 4 training stories of ``n_trs`` TRs and a test story, ``targets`` float32 targets; 4 random
    GPT-2s (``hidden`` wide) x layers 1 and 2 x 2 and 4 training runs: 32 fits of 10 alphas and 2-fold CV."""
    from study_fixtures import write_toy_dataset

    data = write_toy_dataset(root / "data", n_trs=n_trs, targets=targets, words=4 * n_trs, subjects=2,
                             train_stories=4, dtype=np.float32)
    models = [{"family": "pretrained", "name": f"lm{h}", "source": str(write_tiny_lm(root / f"lm{h}", 2, i, h)),
               "context": [8, 16], "layers": [1, 2]} for i, h in enumerate(hidden)]
    study = {"name": "whole-brain", "datasets": [{"name": "brain", "loader": "generic",
                                                   "settings": {"path": str(data)}}],
             "fmri": {"unit": "runs", "sizes": [2, 4]}, "models": models,
             "encoding": {"delays": [1, 2, 3, 4], "alphas": {"logspace": [0, 4, 10]}, "cv": 2}}
    path = root / "whole-brain.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


_PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); " \
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)"


def timed_run(study: Path, out: Path, *options: str, cache: Path | None = None) -> dict:
    """A fresh ``python -m cortexscale run`` of ``study`` (with its own feature cache where ``cache`` is given)
    and, from its tasks' records, where its time went: the seconds before the first task started (imports,
    planning, workers' start-up), after the last one ended, and the summed task seconds per stage; and its peak
    resident memory (bytes, its largest process)."""
    env = {**os.environ, **({"CORTEXSCALE_CACHE": str(cache)} if cache else {})}
    command = [sys.executable, "-m", "cortexscale", "run", str(study), "--out", str(out), "--no-progress", *options]
    before = time.time()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *command], check=True, capture_output=True, text=True,
                          env=env)
    seconds, after = time.perf_counter() - start, time.time()
    metas = StudyFolder(out).finished()
    per_stage: dict = {}
    for meta in metas:
        per_stage[meta["kind"]] = per_stage.get(meta["kind"], 0.0) + meta["seconds"]
    return {"seconds": seconds, "peak_rss": int(done.stdout.split()[-1]),
            "before_first_task_s": min(m["started"] for m in metas) - before,
            "after_last_task_s": after - max(m["started"] + m["seconds"] for m in metas),
            "task_seconds": {kind: round(total, 2) for kind, total in sorted(per_stage.items())}}


def _resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _working_set(fit) -> int:
    """The rise of resident memory while ``fit()`` runs (sampled every 2 ms), whatever was resident before."""
    import threading

    before, highest, running = _resident(), [0], [True]

    def sample():
        while running[0]:
            highest[0] = max(highest[0], _resident())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fit()
    finally:
        running[0] = False
        sampler.join()
    return highest[0] - before


def bare_fits(study: Path, folder: Path) -> dict:
    """The study's fits run bare: each fit's designs are built by the fit stage (untimed), then only its fit,
    prediction and scores are timed; and the largest fit's working set, measured alone."""
    from dataclasses import replace

    from cortexscale.encoding import correlation_score, r2_score
    from cortexscale.study.executors import Context
    from cortexscale.study.fits import FITS
    from cortexscale.study.stages import fit as fit_stage

    class Prepared(Exception):
        pass

    def prepare(task):
        kind = FITS[task.settings["encoding"]["method"]]

        def capture(train, test, entry, device, **options):
            raise Prepared(train, test, entry, options)

        FITS[kind.name] = replace(kind, fit=capture)
        try:
            fit_stage.fit(task, Context(folder / "scratch", StudyFolder(folder).input_dirs(task), "cpu"))
        except Prepared as prepared:
            return (kind, *prepared.args)
        finally:
            FITS[kind.name] = kind
        raise RuntimeError("the fit stage never called its kind's fit")

    def run(kind, train, test, entry, options):
        output = kind.fit(train, test, entry, "cpu", **options)
        return correlation_score(test.Y, output.prediction), r2_score(test.Y, output.prediction)

    (folder / "scratch").mkdir(exist_ok=True)
    seconds, largest = 0.0, None
    for task in plan_study(load_study(study)).of_kind("fit"):
        prepared = prepare(task)
        start = time.perf_counter()
        run(*prepared)
        seconds += time.perf_counter() - start
        size = prepared[1].X.size + prepared[1].Y.size
        if largest is None or size > largest[0]:
            largest = (size, prepared)
    working_set = _working_set(lambda: run(*largest[1]))
    return {"fit_seconds": seconds, "working_set": working_set}


def whole_brain(root: Path, targets: int) -> dict:
    study = whole_brain_study(root / "input", targets)
    one = timed_run(study, root / "one", cache=root / "cache-one")
    bare = json.loads(subprocess.run([sys.executable, __file__, "--bare", str(study), str(root / "one")], check=True,
                                     capture_output=True, text=True).stdout.splitlines()[-1])
    pool = timed_run(study, root / "pool", "--jobs", "2", cache=root / "cache-pool")
    rerun = cli_seconds(study, root / "one")
    responses = 4 * 600 * targets * 4  # one subject's four training runs in float32
    return {"targets": targets, "fits": len(plan_study(load_study(study)).of_kind("fit")), "one_process": one,
            "bare": bare, "overhead_ratio": one["seconds"] / bare["fit_seconds"], "pool_2": pool,
            "pool_speedup": one["seconds"] / pool["seconds"], "rerun_s": rerun, "responses_bytes": responses,
            "memory_bound": 3 * responses + bare["working_set"]}


def _print_whole_brain(w: dict) -> None:
    gb = 2**30
    print(f"whole brain ({w['fits']} fits of {w['targets']} targets): study {w['one_process']['seconds']:.1f} s "
          f"against {w['bare']['fit_seconds']:.1f} s of bare fits = {w['overhead_ratio']:.2f}x (goal <= 1.15x); "
          f"task seconds {w['one_process']['task_seconds']}")
    print(f"  peak resident {w['one_process']['peak_rss'] / gb:.2f} GB; one subject's training responses "
          f"{w['responses_bytes'] / gb:.2f} GB, the largest fit's working set {w['bare']['working_set'] / gb:.2f} GB: "
          f"bound 3x + working set = {w['memory_bound'] / gb:.2f} GB "
          f"({w['one_process']['peak_rss'] / w['memory_bound']:.2f} of it)")
    print(f"  --jobs 2: {w['pool_2']['seconds']:.1f} s, {w['pool_speedup']:.2f}x one process, peak "
          f"{w['pool_2']['peak_rss'] / gb:.2f} GB (the largest of its processes); rerun {w['rerun_s']:.2f} s "
          f"(goal < 3 s)")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer models, subjects and targets")
    parser.add_argument("--subjects", type=int, default=None, help="subjects of the Ray study (default 10, quick 2)")
    parser.add_argument("--targets", type=int, default=None, help="targets of the whole-brain case (20000, quick 2000)")
    parser.add_argument("--cases", nargs="+", choices=["runner", "whole-brain"], default=["runner", "whole-brain"])
    parser.add_argument("--bare", nargs=2, metavar=("STUDY", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:
        print(json.dumps(bare_fits(Path(args.bare[0]), Path(args.bare[1]))))
        return {}
    n_models = 3 if args.quick else 10
    subjects = args.subjects or (2 if args.quick else 10)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "runner" in args.cases:
            results.update(runner(root, n_models, subjects))
        if "whole-brain" in args.cases:
            results["whole_brain"] = whole_brain(root / "whole-brain", args.targets or (2000 if args.quick else 20000))
            _print_whole_brain(results["whole_brain"])
    write_results("study_bench", results)
    return results


def runner(root: Path, n_models: int, subjects: int) -> dict:
    """The rerun, the runner's overhead and Ray against one process (issue 10's goals)."""
    results = {}
    study = wide_study(root / "wide", n_models, [1, 2, "all"])
    first = run_study(study, out=root / "wide-out", progress=False)
    overhead = (first.summary.seconds - first.summary.task_seconds) / first.summary.task_seconds
    results["tasks"] = len(first.plan.tasks)
    results["first_run_s"] = first.summary.seconds
    results["summed_task_s"] = first.summary.task_seconds
    results["runner_overhead"] = overhead
    results["rerun_s"] = cli_seconds(study, root / "wide-out")
    results["ray"] = ray_speedup(fit_study(root / "fits", n_models, subjects), root / "fits-out")
    print(f"{results['tasks']} tasks: rerun {results['rerun_s']:.2f} s (goal < 5 s); runner overhead "
          f"{100 * results['runner_overhead']:.1f}% of {results['summed_task_s']:.1f} s of tasks (goal < 5%); "
          f"Ray on 2 CPUs {results['ray']['speedup']:.2f}x one process over {results['ray']['tasks']} tasks "
          f"(goal >= 1.6x; a local pool of 2: {results['ray']['pool_speedup']:.2f}x)")
    for mode in ("one_process", "pool_2", "ray_2cpu"):
        run = results["ray"][mode]
        print(f"  {mode}: {run['seconds']:.1f} s, {run['before_first_task_s']:.1f} s before the first task and "
              f"{run['after_last_task_s']:.1f} s after the last; task seconds {run['task_seconds']}")
    return results


if __name__ == "__main__":
    main()
