"""Running studies: the plan, keys that change only with what a task depends on, resume, failures, locks."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from cortexscale.study import (StudyLockedError, load_study, parse_study, plan_study, read_results, run_study,
                               summarise)
from study_fixtures import toy_study


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    return toy_study(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def finished(study_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "study"
    return run_study(study_file, out=out, progress=False)


def changed(study_file, **fields):
    data = yaml.safe_load(study_file.read_text())
    for dotted, value in fields.items():
        node, *path, last = [data, *dotted.split("__")]
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    return parse_study(yaml.safe_dump(data))


def keys(plan, kind):
    return {t.label: t.key for t in plan.of_kind(kind)}


def test_the_plan_has_one_task_per_unit_of_work(study_file):
    plan = plan_study(load_study(study_file))
    counts = {kind: len(plan.of_kind(kind)) for kind in ("features", "ceiling", "fit", "collect")}
    # 2 models x 3 stories; 3 subjects; (1 + 2 layers) x 3 subjects x 2 fMRI sizes; one collect
    assert counts == {"features": 6, "ceiling": 3, "fit": 18, "collect": 1}
    order = [t.key for t in plan.tasks]
    for task in plan.tasks:
        assert all(order.index(dep) < order.index(task.key) for dep in task.dependencies)


def test_a_changed_axis_reruns_only_what_depends_on_it(study_file):
    base = plan_study(load_study(study_file))
    delays = plan_study(changed(study_file, encoding__delays=[1, 2, 3]))
    assert keys(delays, "features") == keys(base, "features")
    assert keys(delays, "ceiling") == keys(base, "ceiling")
    assert not set(keys(delays, "fit").values()) & set(keys(base, "fit").values())
    layers = plan_study(changed(study_file, models__1__layers=[2]))
    assert keys(layers, "features")["features lm-small on toy/story1"] == keys(base, "features")[
        "features lm-small on toy/story1"]
    assert keys(layers, "features")["features lm-big on toy/story1"] != keys(base, "features")[
        "features lm-big on toy/story1"]
    same = {k: v for k, v in keys(layers, "fit").items() if "lm-small" in k}
    assert same == {k: v for k, v in keys(base, "fit").items() if "lm-small" in k}
    sizes = plan_study(changed(study_file, fmri__sizes=[1, 2, "all"]))
    assert set(keys(base, "fit").values()) < set(keys(sizes, "fit").values())
    assert len(keys(sizes, "fit")) == 27


def test_results_have_one_row_per_target_and_fit(finished):
    table = finished.results
    assert len(table) == 18 * 5 and finished.summary.ok and len(finished.summary.ran) == 28
    assert {"r", "r2", "alpha", "ceiling", "normalised_r", "params", "params_non_embedding", "n_train_trs",
            "subject", "target", "layer", "model", "fmri_size"} <= set(table.columns)
    np.testing.assert_allclose(table["normalised_r"], table["r"] / table["ceiling"])
    assert table["ceiling"].between(0, 1).all()
    assert set(table["n_train_trs"]) == {40, 80}
    summary = read_results(finished.folder.root, summary=True)
    assert len(summary) == 18 and {"mean_r", "max_r", "mean_normalised_r"} <= set(summary.columns)
    big = summary[(summary.model == "lm-big") & (summary.layer == 2)]
    assert (big.groupby("fmri_size")["mean_r"].mean()["2"] > big.groupby("fmri_size")["mean_r"].mean()["1"])
    meta = json.loads(next((finished.folder.root / "tasks" / "fit").glob("*/meta.json")).read_text())
    assert {"key", "inputs", "settings", "seconds", "host", "versions", "warnings"} <= set(meta)
    resolved = yaml.safe_load((finished.folder.root / "study.yaml").read_text())
    assert resolved["alignment"]["method"] == "lanczos" and "torch" in json.loads(
        (finished.folder.root / "versions.json").read_text())


def test_a_rerun_of_a_finished_study_does_nothing(study_file, finished):
    stamps = {p: p.stat().st_mtime_ns for p in finished.folder.root.glob("tasks/*/*/meta.json")}
    again = run_study(study_file, out=finished.folder.root, progress=False)
    assert again.summary.ran == [] and len(again.summary.reused) == 28
    assert again.line() == f"study toy-study: all 28 tasks are done; nothing to run ({finished.folder.root})"
    assert stamps == {p: p.stat().st_mtime_ns for p in finished.folder.root.glob("tasks/*/*/meta.json")}


def test_a_failed_task_stops_only_its_dependants(study_file, tmp_path):
    broken = tmp_path / "lm-without-weights"
    shutil.copytree(study_file.parent / "lm-big", broken)
    (broken / "model.safetensors").unlink()
    run = run_study(changed(study_file, models__1__source=str(broken)), out=tmp_path / "study", progress=False)
    assert not run.summary.ok
    assert sorted(run.summary.failed) == [f"features lm-big on toy/{s}" for s in ("story1", "story2", "story3")]
    assert all("model.safetensors" in error or "weights" in error for error in run.summary.failed.values())
    assert len(run.summary.blocked) == 12 + 1
    done = {p.parent.name for p in (tmp_path / "study" / "tasks" / "fit").glob("*/meta.json")}
    assert len(done) == 6
    failure = json.loads(next((tmp_path / "study" / "tasks" / "features").glob("*.failed.json")).read_text())
    assert "Traceback" in failure["traceback"] and failure["label"].startswith("features lm-big")


def test_two_runs_and_two_studies_never_share_a_folder(study_file, finished, tmp_path):
    with finished.folder.lock(), pytest.raises(StudyLockedError, match="is being written by another run"):
        run_study(study_file, out=finished.folder.root, progress=False)
    other = changed(study_file, name="other-study")
    with pytest.raises(StudyLockedError, match="holds study 'toy-study', not 'other-study'"):
        run_study(other, out=finished.folder.root, progress=False)


def test_a_process_pool_gives_the_same_results(study_file, finished, tmp_path):
    pooled = run_study(study_file, out=tmp_path / "pooled", jobs=2, progress=False)
    assert pooled.summary.ok and len(pooled.summary.ran) == 28
    pd.testing.assert_frame_equal(pooled.results, finished.results, rtol=1e-4)  # thread counts differ


def test_sigkill_midway_loses_nothing_and_redoes_nothing(study_file, finished, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "cortexscale", "run", str(study_file), "--out", str(out), "--no-progress"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while len(list(out.glob("tasks/fit/*/meta.json"))) < 4 and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    survivors = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("tasks/*/*/meta.json")}
    assert 4 <= len(survivors) < 28
    rerun = run_study(study_file, out=out, progress=False)
    assert rerun.summary.ok and len(rerun.summary.ran) == 28 - len(survivors)
    assert set(rerun.summary.reused) == set(survivors)
    assert survivors == {k: v for k, v in ((p.parent.name, p.stat().st_mtime_ns)
                                           for p in out.glob("tasks/*/*/meta.json")) if k in survivors}
    assert not list(out.glob("tasks/*/.*.tmp"))
    pd.testing.assert_frame_equal(rerun.results, finished.results, rtol=1e-4)


def test_small_cpu_fits_run_on_one_thread_and_the_threads_come_back(study_file, tmp_path, monkeypatch):
    import torch
    from threadpoolctl import threadpool_info

    from cortexscale.encoding import RidgeCV
    from cortexscale.runtime import cpu_threads
    from cortexscale.study.fits import base as fit_base

    assert fit_base.fit_threads(300, 1536, 6, "cpu") == 1
    assert fit_base.fit_threads(3000, 3072, 1000, "cpu") is None
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with cpu_threads(1):
            assert torch.get_num_threads() == 1
            assert all(pool["num_threads"] == 1 for pool in threadpool_info())
        assert torch.get_num_threads() == 2
        seen = []
        real = RidgeCV.fit
        monkeypatch.setattr(RidgeCV, "fit", lambda self, *a, **k: seen.append(torch.get_num_threads())
                            or real(self, *a, **k))
        run_study(study_file, out=tmp_path / "study", progress=False)
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_collected_summary_is_summarise_of_the_results_with_rois(study_file, tmp_path):
    spec = changed(study_file, scoring={"summaries": ["mean", "max"], "rois": {"front": ["t0", "t1"], "back": ["t4"]}})
    ran = run_study(spec, out=tmp_path / "study", progress=False)
    results = read_results(ran.folder.root)
    label_columns = list(results.columns[: list(results.columns).index("target")])
    assert "params" in label_columns and "model" in label_columns and results.columns[-1] == "normalised_r"
    collected = read_results(ran.folder.root, summary=True)
    expected = summarise(results, ("mean", "max"), {"back": ["t4"], "front": ["t0", "t1"]})  # as the study sorts them
    pd.testing.assert_frame_equal(collected, expected)
    first = results[results["target"].isin(["t0", "t1"])].groupby(label_columns, sort=False, dropna=False)["r"].mean()
    np.testing.assert_allclose(collected["roi_front_r"], first.to_numpy())


def test_moving_a_finished_study_to_another_device_reruns_nothing(study_file, tmp_path):
    """The device is where tasks run, not what they compute: no task's key holds it."""
    on_cpu, anywhere = changed(study_file, device="cpu"), changed(study_file, device="auto")
    assert [t.key for t in plan_study(on_cpu).tasks] == [t.key for t in plan_study(anywhere).tasks]
    first = run_study(on_cpu, out=tmp_path / "study", progress=False)
    assert first.summary.ok and len(first.summary.ran) == 28
    moved = run_study(anywhere, out=tmp_path / "study", progress=False)
    assert moved.summary.ran == [] and moved.line().endswith(f"all 28 tasks are done; nothing to run ({tmp_path / 'study'})")
    assert all("device" not in json.dumps(t.settings) for t in plan_study(anywhere).tasks)


@pytest.mark.parametrize("method", ["lanczos", "sum", "mean", "boxcar"])
def test_every_alignment_method_runs_on_timed_segments(tmp_path, method):
    """Captions-like segments (2-5 words, 1-3 s each) through `cortexscale run`; boxcar weighs each segment by
    the part of its duration inside a TR, which needs the durations the features stage keeps."""
    from typer.testing import CliRunner

    from cortexscale.cli import app
    from cortexscale.data import generic_dataset
    from cortexscale.features import align_to_trs
    from cortexscale.study import StudyFolder
    from cortexscale.study.spec import AlignmentSpec
    from cortexscale.study.stages.features import load_features
    from cortexscale.study.stages.fit import design
    from study_fixtures import write_tiny_lm, write_toy_dataset

    sidecar, lm = write_toy_dataset(tmp_path / "data", segments=True), write_tiny_lm(tmp_path / "lm", 1)
    study = {"name": f"captions-{method}", "datasets": [{"name": "toy", "loader": "generic",
                                                          "settings": {"path": str(sidecar)}}],
             "models": [{"family": "pretrained", "name": "lm", "source": str(lm), "kind": "segments", "layers": [1]}],
             "alignment": {"method": method}, "encoding": {"delays": [1, 2], "alphas": [1.0, 10.0, 100.0], "cv": 2}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0 and "failed 0" in result.output, result.output
    table = read_results(tmp_path / "out")
    assert len(table) == 3 * 5 and np.isfinite(table["r"]).all()
    features = next(t for t in plan_study(load_study(path)).of_kind("features") if t.label.endswith("story1"))
    onsets, durations, values = load_features(StudyFolder(tmp_path / "out").task_dir(features), 1)
    data = generic_dataset(sidecar)
    np.testing.assert_allclose(durations, data.stimuli["story1"].events["duration"])
    run = data.runs_of("s1")[0]
    aligned = design(run, {"story1": (onsets, durations, values)}, AlignmentSpec(method=method))
    expected = align_to_trs(values, onsets - run.first_scan_time, run.tr, run.n_trs, method=method, durations=durations)
    np.testing.assert_allclose(aligned, expected)
    if method == "boxcar":
        instant = align_to_trs(values, onsets, run.tr, run.n_trs, method=method, durations=0.0)
        assert not np.allclose(aligned, instant)
