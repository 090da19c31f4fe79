"""A ViT study (AugReg's axes) end to end: augmentation levels, training images and transfer from an upstream
run that the fine-tuned models share, on simulated subjects."""


import numpy as np
import pytest
import yaml

from cortexscale.study import load_study, plan_study, run_study

STUDY = {
    "name": "tiny-augreg",
    "datasets": [{"name": "sim", "loader": "simulated",
                  "settings": {"subjects": 2, "parcels": 4, "train_runs": 2, "test_runs": 1, "run_trs": 40}}],
    "fmri": {"unit": "trs", "sizes": ["all"]},
    "models": [{
        "family": "vit", "name": "vit", "video": {"frames": 2048, "size": 32, "seed": 1}, "image_size": 32,
        "config": {"width": 16, "depth": 2, "heads": 2, "patch": 16},
        "train": {"epochs": 1, "lr": 0.003, "batch_size": 64}, "upstream_images": 1536, "layers": [2],
        "axes": {"augreg": ["none", "light2"], "images": [256], "transfer": ["scratch", "finetune"]},
    }],
    "encoding": {"delays": [1, 2], "alphas": [1.0, 100.0], "cv": 2, "evaluation": "test-runs"},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("augreg")
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(STUDY, sort_keys=False))
    return path, run_study(path, out=root / "out", progress=False)


def test_fine_tuned_models_share_one_upstream_run(study):
    path, _ = study
    plan = plan_study(load_study(path))
    labels = sorted(t.label for t in plan.of_kind("train"))
    assert labels == ["vit augreg=light2 images=256 transfer=finetune", "vit augreg=light2 images=256 transfer=scratch",
                      "vit augreg=none images=256 transfer=finetune", "vit augreg=none images=256 transfer=scratch",
                      "vit upstream"]
    upstream = next(t for t in plan.of_kind("train") if "upstream" in t.label)
    finetuned = [t for t in plan.of_kind("train") if "finetune" in t.label]
    assert all(t.inputs["upstream"] == f"train/{upstream.key}" for t in finetuned)
    assert not any("upstream" in t.inputs for t in plan.of_kind("train") if "scratch" in t.label)


def test_every_recipe_is_trained_and_scored(study):
    _, run = study
    table = run.results
    assert run.summary.ok
    recipes = table.groupby(["augreg", "transfer"]).size()
    assert recipes.to_dict() == {(a, t): 2 * 4 for a in ("light2", "none") for t in ("finetune", "scratch")}
    assert np.isfinite(table["r"]).all() and table["train_data"].eq(256).all()
    assert table["params"].nunique() == 1 and table["params"].iloc[0] > 0


def test_fine_tuning_starts_from_the_upstream_weights(study):
    path, run = study
    folder = run.folder
    plan = plan_study(load_study(path))
    upstream = next(t for t in plan.of_kind("train") if "upstream" in t.label)
    meta = folder.meta(upstream)
    assert meta["result"]["train_data"] == 1536
    finetuned = next(t for t in plan.of_kind("train") if "finetune" in t.label)
    scratch = next(t for t in plan.of_kind("train") if t.label == finetuned.label.replace("finetune", "scratch"))
    import torch
    from cortexscale.models import load_pretrained

    up = load_pretrained(folder.task_dir(upstream) / "run")
    tuned = load_pretrained(folder.task_dir(finetuned) / "run")
    fresh = load_pretrained(folder.task_dir(scratch) / "run")
    w = "blocks.0.attn.qkv.weight"
    dist_tuned = torch.dist(tuned.state_dict()[w], up.state_dict()[w])
    dist_fresh = torch.dist(fresh.state_dict()[w], up.state_dict()[w])
    # the same seed gives every model the same initial weights: upstream took 24 steps from them, each
    # other model 4 more, from the upstream weights or from the initial ones
    assert dist_tuned < 0.4 * dist_fresh
