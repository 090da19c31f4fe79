"""Transfer: best-checkpoint selection, fine-tuning with a new head, the from-scratch baseline."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from cortexscale.models import load_pretrained
from cortexscale.train import (
    TensorDictDataset,
    TrainConfig,
    finetune,
    from_scratch,
    load_for_transfer,
    param_groups,
    save_checkpoint,
    select_best_checkpoint,
    train,
)
from test_train_loop import ToyConfig, ToyModel, toy_data


def build_toy(name, config):
    assert name == "toymodel"
    return ToyModel(ToyConfig.from_dict(config))


def cfg(**kwargs):
    return TrainConfig(**{**dict(lr=1e-2, batch_size=8, steps=6, device="cpu", eval_every=2), **kwargs})


def fake_checkpoint(folder, own, run_best):
    return save_checkpoint(ToyModel(ToyConfig()), folder, train_state={},
                           summary={"val": own, "best_val": run_best})


def test_select_best_scores_each_checkpoint_by_its_own_validation(tmp_path):
    folders = [fake_checkpoint(tmp_path / "a", {"val_loss": 0.7, "val_acc": 0.6}, {"val_loss": 0.1}),
               fake_checkpoint(tmp_path / "b", {"val_loss": 0.3, "val_acc": 0.5}, {"val_loss": 0.3}),
               fake_checkpoint(tmp_path / "c", {"val_loss": 0.5, "val_acc": 0.9}, {"val_loss": 0.2})]
    assert select_best_checkpoint(folders) == folders[1]
    assert select_best_checkpoint(folders, metric="val_acc", mode="max") == folders[2]
    with pytest.raises(ValueError, match=r"a/summary\.json records no 'val_top5' for this checkpoint"):
        select_best_checkpoint(folders, metric="val_top5")
    with pytest.raises(ValueError, match="mode must be"):
        select_best_checkpoint(folders, mode="best")


def test_select_best_among_trained_runs_takes_each_runs_marked_best(tmp_path):
    data, val = toy_data(), toy_data(n=24, seed=7)
    runs = []
    for lr in (1e-5, 3e-2):
        torch.manual_seed(0)
        train(ToyModel(ToyConfig()), data, cfg(lr=lr, ckpt_every=2, keep_last=1), tmp_path / f"lr{lr}",
              val_data=val, progress=False)
        runs.append(tmp_path / f"lr{lr}")
    best = []
    for run in runs:
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        best.append(min((r["val_loss"], r["step"]) for r in records if "val_loss" in r))
    winner = min(range(len(runs)), key=lambda i: best[i])
    chosen = select_best_checkpoint(runs)
    assert chosen == runs[winner] / "checkpoints" / f"step_{best[winner][1]:08d}"
    assert select_best_checkpoint([chosen]) == chosen


def pretrained_checkpoint(tmp_path):
    torch.manual_seed(0)
    result = train(ToyModel(ToyConfig()), toy_data(), cfg(), tmp_path / "pre", val_data=toy_data(n=16, seed=2),
                   progress=False)
    return result.checkpoint


def test_finetune_keeps_body_and_replaces_head(tmp_path):
    ckpt = pretrained_checkpoint(tmp_path)
    pre = load_pretrained(ckpt, device="cpu", builder=build_toy)
    model = load_for_transfer(ckpt, n_classes=5, builder=build_toy, seed=0, device="cpu")
    for name in ("pos_embed", "norm.weight", "body.weight", "body.bias"):
        assert torch.equal(model.get_parameter(name), pre.get_parameter(name)), name
    assert model.head.out_features == 5 and model.config.n_classes == 5

    downstream = toy_data(n_classes=5, seed=4)
    result = finetune(ckpt, 5, downstream, cfg(eval_every=0), tmp_path / "ft", builder=build_toy, progress=False)
    saved = json.loads((result.checkpoint / "config.json").read_text())
    assert saved["config"]["n_classes"] == 5
    reloaded = load_pretrained(result.checkpoint, device="cpu", builder=build_toy)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.parameters(), result.model.parameters()))


def test_from_scratch_builds_the_same_config_freshly(tmp_path):
    ckpt = pretrained_checkpoint(tmp_path)
    pre = load_pretrained(ckpt, device="cpu", builder=build_toy)
    fresh = load_for_transfer(ckpt, n_classes=5, pretrained=False, builder=build_toy, seed=1, device="cpu")
    again = load_for_transfer(ckpt, n_classes=5, pretrained=False, builder=build_toy, seed=1, device="cpu")
    assert fresh.config == ToyConfig(n_classes=5)
    assert not torch.equal(fresh.body.weight, pre.body.weight)
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), again.parameters()))

    result = from_scratch(ckpt, 5, toy_data(n_classes=5, seed=4), cfg(eval_every=0), tmp_path / "fs",
                          builder=build_toy, progress=False)
    assert result.steps == 6 and result.model.head.out_features == 5


def test_module_source_is_not_modified(tmp_path):
    torch.manual_seed(0)
    source = ToyModel(ToyConfig())
    before = {k: v.clone() for k, v in source.state_dict().items()}
    model = load_for_transfer(source, n_classes=4, device="cpu")
    assert model.head.out_features == 4 and source.head.out_features == 3
    assert torch.equal(model.body.weight, source.body.weight) and model.body.weight is not source.body.weight
    assert all(torch.equal(before[k], v) for k, v in source.state_dict().items())
    scratch = load_for_transfer(source, n_classes=4, pretrained=False, seed=3, device="cpu")
    assert scratch.config == ToyConfig(n_classes=4) and not torch.equal(scratch.body.weight, source.body.weight)


def test_model_without_reset_head_is_refused():
    model = nn.Module()
    model.config = ToyConfig()
    with pytest.raises(ValueError, match="n_classes=4 given but Module has no reset_head"):
        load_for_transfer(model, n_classes=4)
    assert load_for_transfer(model) is not model


def test_bad_source_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent is not a folder: expected a model folder"):
        load_for_transfer(tmp_path / "absent", n_classes=2, builder=build_toy)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty holds neither config\.json \(a model folder\) nor "):
        load_for_transfer(tmp_path / "empty", n_classes=2, pretrained=False, builder=build_toy)


def test_transfer_from_a_run_folder_starts_from_its_best_checkpoint_on_the_device(tmp_path, device):
    from test_checkpoint import val_against_train

    torch.manual_seed(0)
    run = train(ToyModel(ToyConfig()), toy_data(), cfg(lr=3e-2, steps=8, ckpt_every=2, eval_every=0),
                tmp_path / "pre", val_data=val_against_train(), progress=False)
    assert run.best_checkpoint != run.checkpoint
    best = load_pretrained(run.best_checkpoint, device="cpu", builder=build_toy)
    model = load_for_transfer(tmp_path / "pre", n_classes=4, builder=build_toy, device=device)
    assert {p.device.type for p in model.parameters()} == {device}
    assert torch.equal(model.body.weight.cpu(), best.body.weight)


def colour_images(n, n_classes, seed):
    """Images whose class is the brightest channel: (n, 3, 8, 8) plus labels (n,)."""
    gen = torch.Generator().manual_seed(seed)
    label = torch.randint(0, n_classes, (n,), generator=gen)
    image = 0.3 * torch.randn(n, 3, 8, 8, generator=gen)
    image[torch.arange(n), label % 3] += 1.0
    return TensorDictDataset({"image": image, "label": label})


def test_real_vit_trains_reloads_and_finetunes(tmp_path):
    from cortexscale.models import ViT, ViTConfig, load_pretrained

    torch.manual_seed(0)
    vit = ViT(ViTConfig(width=16, depth=1, heads=2, patch=4, image_size=8, n_classes=3))
    decay = {g["weight_decay"]: set(g["names"]) for g in param_groups(vit, 0.1)}
    assert {"pos_emb", "cls_token", "norm.weight", "head.bias"} <= decay[0.0]
    assert {"patch_embed.weight", "head.weight"} <= decay[0.1]

    run = cfg(steps=40, lr=1e-2, eval_every=10, precision="bf16")
    result = train(vit, colour_images(64, 3, 0), run, tmp_path / "vit", val_data=colour_images(16, 3, 1),
                   progress=False)
    records = [json.loads(line) for line in result.metrics_path.read_text().splitlines()]
    assert records[-1]["loss"] < 0.5 * records[0]["loss"]
    assert records[-1]["val_loss"] < 0.5 * math.log(3)
    assert records[-1]["flops"] == pytest.approx(40 * 8 * vit.flops_per_sample())

    reloaded = load_pretrained(result.checkpoint, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), vit.state_dict().values()))
    best = select_best_checkpoint([tmp_path / "vit"])
    start = load_for_transfer(best, n_classes=2, device="cpu")
    assert torch.equal(start.patch_embed.weight, vit.patch_embed.weight) and start.head.out_features == 2
    tuned = finetune(best, 2, colour_images(32, 2, 2), cfg(steps=3, eval_every=0), tmp_path / "ft", progress=False)
    assert load_pretrained(tuned.checkpoint, device="cpu").config.n_classes == 2
