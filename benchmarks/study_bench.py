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
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def timed_run(study: Path, out: Path, *options: str) -> dict:
    """A fresh run of ``study`` (:func:`cli_seconds`) and, from its tasks' records, where its time went: the
    seconds before the first task started (imports, planning, workers' start-up), after the last one ended,
    and the summed task seconds per stage."""
    before = time.time()
    seconds = cli_seconds(study, out, *options)
    after = time.time()
    metas = StudyFolder(out).finished()
    per_stage: dict = {}
    for meta in metas:
        per_stage[meta["kind"]] = per_stage.get(meta["kind"], 0.0) + meta["seconds"]
    return {"seconds": seconds, "before_first_task_s": min(m["started"] for m in metas) - before,
            "after_last_task_s": after - max(m["started"] + m["seconds"] for m in metas),
            "task_seconds": {kind: round(total, 2) for kind, total in sorted(per_stage.items())}}


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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer models and subjects (smaller studies)")
    parser.add_argument("--subjects", type=int, default=None, help="subjects of the Ray study (default 10, quick 2)")
    args = parser.parse_args(argv)
    n_models = 3 if args.quick else 10
    subjects = args.subjects or (2 if args.quick else 10)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
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
    write_results("study_bench", results)
    return results


if __name__ == "__main__":
    main()
