"""The shipped study files: every example and the default study parse and plan, and the default study is the
video-GPT example under the name ``demo``."""

from pathlib import Path

import pytest
import yaml

from cortexscale.study import load_study, parse_study, plan_study
from cortexscale.studies import DEFAULT_STUDY

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_examples_are_there():
    assert {p.name for p in EXAMPLES} >= {"alice_lm_scaling.yaml", "augreg_vit.yaml", "videogpt_scaling.yaml"}


@pytest.mark.parametrize("path", [*EXAMPLES, DEFAULT_STUDY], ids=lambda p: p.name)
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


def test_the_commented_ahmadi_grid_parses_and_plans_one_axis_at_a_time():
    text = (Path(__file__).resolve().parents[1] / "examples" / "videogpt_scaling.yaml").read_text()
    block = text[text.index("#   models:"):text.index("\nname: ")]
    models = yaml.safe_load("\n".join(line[4:] for line in block.splitlines()))["models"]
    study = yaml.safe_load(text) | {"models": models}
    plan = plan_study(parse_study(yaml.safe_dump(study)))
    points = [t.settings["axes"] for t in plan.of_kind("train")]
    assert len(points) == 10 + 6 + 4 + 4 + 2 and len(plan.of_kind("tokenizer")) == 1
    assert sorted(p["frames"] for p in points if "frames" in p) == [10_000, 100_000, 1_000_000, 6_000_000]
    assert {p["precision"] for p in points if "precision" in p} == {"fp32", "fp16"}


def test_the_commented_pythia_ladder_parses_and_plans():
    text = (Path(__file__).resolve().parents[1] / "examples" / "alice_lm_scaling.yaml").read_text()
    block = text[text.index("  # - &pythia"):text.index("\nalignment:")]
    ladder = yaml.safe_load("\n".join(line[4:] for line in block.splitlines()))
    study = yaml.safe_load(text)
    study["models"] += ladder
    models = {m.name: m for m in parse_study(yaml.safe_dump(study)).models}   # planning reads the hub
    sizes = ("70m", "160m", "410m", "1b", "2.8b", "6.9b", "12b")
    assert all(models[f"pythia-{size}"].source == f"EleutherAI/pythia-{size}" for size in sizes)
    assert all(models[f"pythia-{size}"].train_tokens == 3.0e11 for size in sizes)
