"""The Ray executor on a local two-CPU cluster the test starts: same results as in process, and a worker killed
in the middle of a task is retried."""

import os
import signal
import threading
import time

import pandas as pd
import psutil
import pytest
import ray

from cortexscale.study import run_study
from study_fixtures import toy_study


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def kill_first_running_task(killed: list, seconds: float = 120.0) -> None:
    """SIGKILL the first Ray worker seen running a task (its process title is ``ray::execute_task``)."""
    deadline = time.time() + seconds
    while time.time() < deadline and not killed:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if "ray::execute_task" in " ".join(proc.info["cmdline"] or []):
                os.kill(proc.info["pid"], signal.SIGKILL)
                killed.append(proc.info["pid"])
                break
        time.sleep(0.01)


def test_ray_runs_a_study_and_survives_a_killed_worker(cluster, tmp_path):
    study = toy_study(tmp_path / "toy")
    local = run_study(study, out=tmp_path / "local", progress=False)
    killed = []
    killer = threading.Thread(target=kill_first_running_task, args=(killed,), daemon=True)
    killer.start()
    remote = run_study(study, out=tmp_path / "ray", executor="ray", max_retries=2, progress=False)
    killer.join(timeout=1)
    assert killed, "no running Ray task was seen to kill"
    assert remote.summary.ok and len(remote.summary.ran) == 28 and not remote.summary.failed
    pd.testing.assert_frame_equal(remote.results, local.results, rtol=1e-4)
    again = run_study(study, out=tmp_path / "ray", executor="ray", progress=False)
    assert again.summary.ran == []


def test_ray_options_give_gpus_to_accelerated_stages_of_cuda_studies():
    from cortexscale.study.executors import ray_options

    assert ray_options("train", "auto") == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert ray_options("train", "cuda:1") == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert ray_options("collect", "cuda") == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert {kind for kind in ("video", "tokenizer", "tokens", "train", "features", "ceiling", "fit", "collect")
            if ray_options(kind, "cuda")["num_gpus"]} == {"tokenizer", "tokens", "train", "features", "fit"}
    resources = {"train": {"cpus": 4, "gpus": None, "memory_gb": 1.5}, "fit": {"gpus": 0.25}}
    assert ray_options("train", "cuda", resources) == {"num_cpus": 4.0, "num_gpus": 1.0, "memory": 1610612736}
    assert ray_options("fit", "cpu", resources) == {"num_cpus": 1.0, "num_gpus": 0.25}
