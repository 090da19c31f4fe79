"""Study runner speed: a rerun of a finished 200-task study, the runner's overhead over its tasks, and a local
2-CPU Ray cluster against one process.

Goals (issue 10): the rerun under 5 s (a fresh ``python -m cortexscale run``, imports included); overhead under
5% of the summed task time on a study of short tasks; Ray at least 1.6x faster than one process on a study of
independent tasks. Run ``python benchmarks/study_bench.py`` (``--quick`` for a smaller study).

The Ray study is 540 independent fits (6000 targets, 80 TRs, 25 alphas each) after the features of 30 tiny
LMs, then one collect of 3.2M rows. One process runs each small fit on one thread (the fit stage's
``SMALL_FIT_WORK`` rule), as Ray's workers do, so the figure is what parallel tasks gain: it is bounded by the
serial parts (the features the fits wait for, the final collect) and by the workers' start-up. A local process
pool of 2 (``--jobs 2``) is timed in the same run.
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


def heavy_study(root: Path, n_models: int, targets: int = 6000) -> Path:
    """Independent fits of ``targets`` targets (a multiple of 5), a 25-alpha grid and 4 delays each."""
    from study_fixtures import write_toy_dataset
    import numpy as np

    path = wide_study(root, n_models, [1, 2, "all"])
    data = write_toy_dataset(root / "heavy-data")
    sidecar = yaml.safe_load(data.read_text())
    rng = np.random.default_rng(0)
    for run in sidecar["runs"]:
        for key in ("responses", "repeats"):
            if key in run:
                file = root / "heavy-data" / run[key]
                values = np.load(file)
                np.save(file, np.repeat(values, targets // 5, axis=-1) + rng.standard_normal(values.shape[:-1] + (targets,)))
    sidecar["targets"] = targets
    data.write_text(yaml.safe_dump(sidecar))
    study = yaml.safe_load(path.read_text())
    study["datasets"][0]["settings"]["path"] = str(data)
    study["encoding"] = {"delays": [1, 2, 3, 4], "alphas": {"logspace": [0, 4, 25]}, "cv": 2}
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
        results["ray"] = ray_speedup(heavy_study(root / "heavy", 3 * n_models), root / "heavy-out")
    print(f"{results['tasks']} tasks: rerun {results['rerun_s']:.2f} s (goal < 5 s); runner overhead "
          f"{100 * results['runner_overhead']:.1f}% of {results['summed_task_s']:.1f} s of tasks (goal < 5%); "
          f"Ray on 2 CPUs {results['ray']['speedup']:.2f}x one process over {results['ray']['tasks']} tasks "
          f"(goal >= 1.6x; a local pool of 2: {results['ray']['pool_speedup']:.2f}x)")
    write_results("study_bench", results)
    return results


if __name__ == "__main__":
    main()
