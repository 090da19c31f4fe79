"""The shipped study files: every example and the default study parse and plan, the default study is the
video-GPT example under the name ``demo``, and the Alice example runs on the real data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cortexscale.study import load_study, parse_study, plan_study
from cortexscale.study.protocol import CollectSettings
from cortexscale.study_files import DEFAULT_STUDY

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
# Examples whose data no package ships: each is planned and run elsewhere on data its test writes.
ON_WRITTEN_DATA = {
    "stacked_speech_language.yaml": "test_study_fits.py::test_the_stacked_example_runs_and_reports_the_gain_per_region",
}


def test_examples_are_there():
    assert {p.name for p in EXAMPLES} >= {"alice_lm_scaling.yaml", "augreg_vit.yaml", "videogpt_scaling.yaml",
                                          *ON_WRITTEN_DATA}
    tests = Path(__file__).parent
    for where in ON_WRITTEN_DATA.values():
        file, name = where.split("::")
        assert f"def {name}(" in (tests / file).read_text()


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.name not in ON_WRITTEN_DATA] + [DEFAULT_STUDY],
                         ids=lambda p: p.name)
def test_study_file_plans(path):
    plan = plan_study(load_study(path))
    kinds = {t.kind for t in plan.tasks}
    assert {"features", "fit", "collect"} <= kinds
    assert len(plan.of_kind("collect")) == 1


def test_default_study_is_the_videogpt_example_named_demo():
    default = yaml.safe_load(DEFAULT_STUDY.read_text())
    example = yaml.safe_load((DEFAULT_STUDY.parents[3] / "examples" / "videogpt_scaling.yaml").read_text())
    assert default.pop("name") == "demo" and example.pop("name") == "videogpt-scaling"
    assert default == example


def test_default_study_has_the_grid_the_demo_promises():
    plan = plan_study(load_study(DEFAULT_STUDY))
    gpts = [t.settings["axes"] for t in plan.of_kind("train")]
    assert len({p["hidden"] for p in gpts}) >= 4 and len({p.get("frames") for p in gpts}) >= 3
    assert {p.get("precision", "fp32") for p in gpts} == {"fp32", "bf16"}


def commented_yaml(text: str, start: str, end: str):
    """The YAML commented out (4 leading characters) between ``start`` and ``end`` in a study file's text."""
    block = text[text.index(start):text.index(end)]
    return yaml.safe_load("\n".join(line[4:] for line in block.splitlines()))


def test_the_commented_ahmadi_grid_parses_and_plans_one_axis_at_a_time():
    text = (Path(__file__).resolve().parents[1] / "examples" / "videogpt_scaling.yaml").read_text()
    models = commented_yaml(text, "#   models:", "\nname: ")["models"]
    study = yaml.safe_load(text) | {"models": models}
    plan = plan_study(parse_study(yaml.safe_dump(study)))
    points = [t.settings["axes"] for t in plan.of_kind("train")]
    assert len(points) == 10 + 6 + 4 + 4 + 2 and len(plan.of_kind("tokenizer")) == 1
    assert sorted(p["frames"] for p in points if "frames" in p) == [10_000, 100_000, 1_000_000, 6_000_000]
    assert {p["precision"] for p in points if "precision" in p} == {"fp32", "fp16"}


def test_the_commented_pythia_ladder_parses_and_plans():
    """The ladder plans offline, from the package's table: one features task per rung and stimulus."""
    text = (Path(__file__).resolve().parents[1] / "examples" / "alice_lm_scaling.yaml").read_text()
    ladder = commented_yaml(text, "  # - {family: pretrained, name: pythia", "\nalignment:")
    study = yaml.safe_load(text)
    study["models"] += ladder
    plan = plan_study(parse_study(yaml.safe_dump(study)))
    rungs = {t.settings["model"]["source"]: t.settings for t in plan.of_kind("features")
             if t.settings["model"]["source"].startswith("EleutherAI/")}
    sizes = ("70m", "160m", "410m", "1b", "1.4b")
    assert sorted(rungs) == sorted(f"EleutherAI/pythia-{size}" for size in sizes)
    assert {s["model"]["train_tokens"] for s in rungs.values()} == {299_892_736_000}
    assert rungs["EleutherAI/pythia-1.4b"]["model"]["dtype"] == "bf16" and rungs["EleutherAI/pythia-1b"]["layers"] == [12]


def test_the_alice_example_runs_on_the_real_data_and_reruns_in_one_line(tmp_path):
    """The README's language study, as a user runs it: the shipped weights on Alice, through the command."""
    example = Path(__file__).resolve().parents[1] / "examples" / "alice_lm_scaling.yaml"
    command = [sys.executable, "-m", "cortexscale", "run", str(example), "--out", str(tmp_path), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}   # this test worker's share of cores
    first = subprocess.run(command, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "ran 157, reused 0, failed 0 tasks" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "all 157 tasks are done; nothing to run" in again.stdout
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert len(results) == 7 * 3 * 7 * 6   # model layers x fMRI sizes x (6 subjects + group) x ROIs
    group = pd.read_parquet(tmp_path / "summary.parquet").query("subject == 'group'")
    r = group.pivot_table(index=["model", "layer"], columns="fmri_size", values="mean_r")
    best = r["all"].groupby(level="model").max()
    assert best["smollm2-135m"] > 0.20 and best["minilm-l6"] > 0.13   # the code gives 0.225 and 0.158
    assert r.loc[("smollm2-135m", 30), "all"] == best["smollm2-135m"]  # the last layer, on 6 subjects' mean
    for model, layer in r["all"].groupby(level="model").idxmax():
        assert r.loc[(model, layer), "all"] - r.loc[(model, layer), "120"] > 0.1   # more fMRI data, better fits
    pd.testing.assert_frame_equal(results, table_in_one_piece(tmp_path))


def table_in_one_piece(root: Path) -> pd.DataFrame:
    """The results table as collect built it before it streamed (every fit's rows in memory, then one write):
    each fit's labels beside its scores, ceilings and normalised r, in the collect task's order."""
    from cortexscale.encoding import normalised_correlation
    from cortexscale.study import StudyFolder
    from cortexscale.study.schema import label_frame
    from cortexscale.study.stages.ceiling import read_ceiling
    from cortexscale.study.stages.collect import _labels
    from cortexscale.study.stages.fit import read_scores

    folder = StudyFolder(root)
    collect = folder.finished("collect")[-1]
    dirs = {role: root / "tasks" / ref for role, ref in collect["inputs"].items()}
    meta = lambda role: json.loads((dirs[role] / "meta.json").read_text())  # noqa: E731
    parts = []
    for row in CollectSettings.model_validate(collect["settings"]).rows:
        scores = read_scores(dirs[row.fit])
        ceiling = read_ceiling(dirs[row.ceiling])
        at = scores.columns.get_loc("alpha") + 1
        scores.insert(at, "ceiling", ceiling)
        scores.insert(at + 1, "normalised_r", normalised_correlation(scores["r"].to_numpy(), ceiling))
        parts.append((scores, _labels(row, meta)))
    labels = label_frame([fit for _, fit in parts])
    fits = np.repeat(np.arange(len(parts)), [len(scores) for scores, _ in parts])
    return pd.concat([labels.iloc[fits].reset_index(drop=True), pd.concat([p for p, _ in parts], ignore_index=True)],
                     axis=1)
