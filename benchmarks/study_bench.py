"""Study runner speed: a rerun of a finished 200-task study, the runner's overhead over its tasks, and a local
2-CPU Ray cluster against one process.

Goals (issue 10): the rerun under 5 s (a fresh ``python -m cortexscale run``, imports included); overhead under
5% of the summed task time on a study of short tasks; Ray at least 1.6x faster than one process on a study of
independent tasks. Run ``python benchmarks/study_bench.py`` (``--quick`` for a smaller study).

The Ray study has the shape of real fits, each small enough for one CPU thread: the features of 10 random
GPT-2s (64 wide) on three stories of 300 TRs, then 120 fits (1000 targets, 4 delays, 25 alphas, 2-fold CV).
One process runs each such fit on one thread (the fit stage's ``SMALL_FIT_WORK`` rule), as Ray's workers do,
but its feature extraction uses torch's threads; what Ray gains is bounded by that, by the workers' start-up
(a few seconds each) and by the serial collect. A local process pool of 2 (``--jobs 2``) is timed in the same
run.
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

from cortexscale.study import load_study, run_study  # noqa: E402


def wide_study(root: Path, n_models: int, sizes: list) -> Path:
    """The toy study with ``n_models`` tiny LMs, layers 0 and 1 and the given fMRI sizes."""
    path = toy_study(root)
    study = yaml.safe_load(path.read_text())
    study["models"] = [{"family": "pretrained", "name": f"lm{i}", "source": str(write_tiny_lm(root / f"lm{i}", 1, i)),
                        "context": [8, 16], "layers": [0, 1]} for i in range(n_models)]
    study["fmri"]["sizes"] = sizes
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def rerun_seconds(study: Path, out: Path) -> float:
    """Wall time of a fresh ``python -m cortexscale run`` on a finished study."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cortexscale", "run", str(study), "--out", str(out), "--no-progress"],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def ray_speedup(study: Path, root: Path) -> dict:
    import ray

    spec = load_study(study)
    start = time.perf_counter()
    one = run_study(spec, out=root / "one-process", progress=False)
    local = time.perf_counter() - start
    start = time.perf_counter()
    pool = run_study(spec, out=root / "pool", jobs=2, progress=False)
    pooled = time.perf_counter() - start
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        remote = run_study(spec, out=root / "ray", executor="ray", progress=False)
        seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    assert one.summary.ok and pool.summary.ok and remote.summary.ok
    return {"tasks": len(one.plan.tasks), "one_process_s": local, "pool_2_s": pooled, "ray_2cpu_s": seconds,
            "speedup": local / seconds, "pool_speedup": local / pooled}


def fit_study(root: Path, n_models: int, n_trs: int = 300, targets: int = 1000, hidden: int = 64) -> Path:
    """Independent fits of a realistic shape for one CPU thread each: the features of ``n_models`` random GPT-2s
    (``hidden`` wide, 4 delays) on runs of ``n_trs`` TRs, ``targets`` targets, a 25-alpha grid, 2-fold CV."""
    from study_fixtures import write_toy_dataset

    data = write_toy_dataset(root / "fit-data", n_trs=n_trs, targets=targets, words=4 * n_trs)
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
    parser.add_argument("--quick", action="store_true", help="fewer models (a smaller study)")
    args = parser.parse_args(argv)
    n_models = 3 if args.quick else 10
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
        results["rerun_s"] = rerun_seconds(study, root / "wide-out")
        results["ray"] = ray_speedup(fit_study(root / "fits", n_models), root / "fits-out")
    print(f"{results['tasks']} tasks: rerun {results['rerun_s']:.2f} s (goal < 5 s); runner overhead "
          f"{100 * results['runner_overhead']:.1f}% of {results['summed_task_s']:.1f} s of tasks (goal < 5%); "
          f"Ray on 2 CPUs {results['ray']['speedup']:.2f}x one process over {results['ray']['tasks']} tasks "
          f"(goal >= 1.6x; a local pool of 2: {results['ray']['pool_speedup']:.2f}x)")
    write_results("study_bench", results)
    return results


if __name__ == "__main__":
    main()
