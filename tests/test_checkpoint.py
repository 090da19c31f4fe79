"""Checkpoint folders: contents, shape checks, atomic replacement, run folders and their best marker, RNG."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from cortexscale.models import (
    CheckpointMismatchError,
    list_checkpoints,
    load_pretrained,
    load_weights,
    resolve_checkpoint,
)
from cortexscale.train import TensorDictDataset, TrainConfig, save_checkpoint, train
from cortexscale.train.checkpoint import capture_rng, load_train_state, restore_rng
from test_train_loop import Interrupt, TiedToyModel, ToyConfig, ToyModel, read_metrics, toy_data, toy_model


def build_toy(name, config):
    assert name == "toymodel"
    return ToyModel(ToyConfig.from_dict(config))


def test_round_trip_keeps_weights_and_contract_config(tmp_path):
    torch.manual_seed(0)
    model = ToyModel(ToyConfig(hidden=12))
    folder = save_checkpoint(model, tmp_path / "ck", train_state={"step": 3}, extra={"step": 3},
                             summary={"val": {"val_loss": 0.5}})
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "toymodel" and config["step"] == 3
    assert ToyConfig.from_dict(config["config"]) == model.config
    assert load_train_state(folder) == {"step": 3}
    assert json.loads((folder / "summary.json").read_text())["val"]["val_loss"] == 0.5
    loaded = load_pretrained(folder, device="cpu", builder=build_toy)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_shape_mismatch_names_file_parameter_and_shapes(tmp_path):
    folder = save_checkpoint(ToyModel(ToyConfig(hidden=12)), tmp_path / "ck")
    with pytest.raises(ValueError, match=r"model\.safetensors: parameter 'body\.weight' has shape \(12, 8\) "
                                         r"in the checkpoint but \(16, 8\) in the model"):
        load_weights(ToyModel(ToyConfig(hidden=16)), folder, device="cpu")


def test_unexpected_and_missing_parameters_are_named(tmp_path):
    class Bigger(ToyModel):
        def __init__(self, config):
            super().__init__(config)
            self.extra = nn.Linear(2, 2)

    extra = r"\['extra\.bias', 'extra\.weight'\]"
    folder = save_checkpoint(ToyModel(ToyConfig()), tmp_path / "ck")
    with pytest.raises(CheckpointMismatchError, match=rf"missing from the checkpoint: {extra}"):
        load_weights(Bigger(ToyConfig()), folder, device="cpu")
    folder = save_checkpoint(Bigger(ToyConfig()), tmp_path / "big")
    with pytest.raises(CheckpointMismatchError, match=rf"{extra} are not in the model ToyModel"):
        load_weights(ToyModel(ToyConfig()), folder, device="cpu")


def test_tied_weights_survive(tmp_path):
    torch.manual_seed(1)
    source = TiedToyModel(ToyConfig())
    folder = save_checkpoint(source, tmp_path / "ck")
    torch.manual_seed(2)
    target = load_weights(TiedToyModel(ToyConfig()), folder, device="cpu")
    assert torch.equal(target.embed.weight, source.embed.weight)
    assert target.head.weight is target.embed.weight


def test_failed_save_leaves_old_checkpoint_and_no_debris(tmp_path):
    model = ToyModel(ToyConfig())
    folder = save_checkpoint(model, tmp_path / "ck", train_state={"step": 1})
    before = (folder / "model.safetensors").read_bytes()

    class Unsavable:
        def to_dict(self):
            raise RuntimeError("boom")

    model.config = Unsavable()
    with torch.no_grad():
        model.body.weight.add_(1.0)
    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(model, folder, train_state={"step": 2})
    assert (folder / "model.safetensors").read_bytes() == before
    assert load_train_state(folder) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_save_replaces_an_existing_folder_whole(tmp_path):
    folder = save_checkpoint(ToyModel(ToyConfig()), tmp_path / "ck", train_state={"step": 1},
                             summary={"step": 1})
    save_checkpoint(ToyModel(ToyConfig()), folder, train_state={"step": 2})
    assert load_train_state(folder) == {"step": 2}
    assert not (folder / "summary.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_list_checkpoints_orders_by_step_and_skips_incomplete(tmp_path):
    for step in (10, 2, 7):
        save_checkpoint(ToyModel(ToyConfig()), tmp_path / f"step_{step:08d}", train_state={"step": step})
    (tmp_path / "step_00000007" / "train_state.pt").unlink()
    (tmp_path / "notes").mkdir()
    with pytest.warns(UserWarning, match=r"step_00000007.*train_state\.pt"):
        found = list_checkpoints(tmp_path)
    assert [p.name for p in found] == ["step_00000002", "step_00000010"]
    assert list_checkpoints(tmp_path / "absent") == []


def test_rng_capture_restores_every_generator(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    state = capture_rng()
    torch.save(state, tmp_path / "rng.pt")
    first = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)])
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    second = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)])
    assert torch.equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]


def val_against_train(n=24):
    """Validation labels shifted by one class from the rule the training data follows: fitting the training
    data raises the validation loss, so the best checkpoint comes early and pruning must spare it."""
    data = toy_data(n=n, seed=11)
    return TensorDictDataset({"x": data.tensors["x"], "label": (data.tensors["label"] + 1) % 3})


def snapshot_every_step(store):
    def grab(info):
        store[info["step"]] = {k: v.detach().clone() for k, v in info["model"].state_dict().items()}

    return grab


def same_weights(model, state):
    return all(torch.equal(value, state[key]) for key, value in model.state_dict().items())


def test_run_marks_its_best_checkpoint_keeps_it_past_pruning_and_loads_it(tmp_path):
    cfg = TrainConfig(lr=3e-2, batch_size=8, steps=12, ckpt_every=2, keep_last=2, device="cpu")
    weights = {}
    result = train(toy_model(), toy_data(), cfg, tmp_path, val_data=val_against_train(), progress=False,
                   callback=snapshot_every_step(weights))
    val = {r["step"]: r["val_loss"] for r in read_metrics(result.metrics_path) if "val_loss" in r}
    assert sorted(val) == [2, 4, 6, 8, 10, 12]
    best = min(val, key=val.get)
    assert best < 10
    name = f"step_{best:08d}"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == sorted(
        ["best.json", name, "step_00000010", "step_00000012"])
    marker = json.loads((tmp_path / "checkpoints" / "best.json").read_text())
    assert marker == {"checkpoint": name, "step": best, "metric": "val_loss", "value": val[best]}
    assert result.best_checkpoint == tmp_path / "checkpoints" / name

    assert resolve_checkpoint(tmp_path) == resolve_checkpoint(tmp_path, which="best") == result.best_checkpoint
    assert same_weights(load_pretrained(tmp_path, device="cpu", builder=build_toy), weights[best])
    latest = load_pretrained(tmp_path, device="cpu", which="latest", builder=build_toy)
    assert same_weights(latest, weights[12]) and not same_weights(latest, weights[best])


def test_run_without_validation_loads_its_latest_checkpoint(tmp_path):
    result = train(toy_model(), toy_data(), TrainConfig(batch_size=8, steps=4, ckpt_every=2, device="cpu"),
                   tmp_path, progress=False)
    assert not (tmp_path / "checkpoints" / "best.json").exists() and result.best_checkpoint is None
    assert same_weights(load_pretrained(tmp_path, device="cpu", builder=build_toy), result.model.state_dict())
    with pytest.raises(ValueError, match=r"marks no best checkpoint: checkpoints/best\.json is written by train"):
        load_pretrained(tmp_path, which="best", builder=build_toy)


@pytest.mark.parametrize("broken", ["mark_best", "prune_checkpoints"])
def test_crash_between_checkpoint_writes_resumes_to_the_same_run(tmp_path, monkeypatch, broken):
    import cortexscale.train.loop as loop

    cfg = TrainConfig(lr=3e-2, batch_size=8, steps=10, ckpt_every=2, keep_last=1, device="cpu")
    val = val_against_train()
    full = train(toy_model(), toy_data(), cfg, tmp_path / "full", val_data=val, progress=False)

    real, calls = getattr(loop, broken), []

    def crash_after_saving_step_6(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # call 1 tidies the new run folder; calls 2, 3, 4 follow the saves of steps 2, 4, 6
            raise Interrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, broken, crash_after_saving_step_6)
    with pytest.raises(Interrupt):
        train(toy_model(), toy_data(), cfg, tmp_path / "cut", val_data=val, progress=False)
    assert (tmp_path / "cut" / "checkpoints" / "step_00000006").is_dir()
    monkeypatch.setattr(loop, broken, real)
    resumed = train(toy_model(), toy_data(), cfg, tmp_path / "cut", val_data=val, progress=False)

    assert resumed.resumed_from == 6
    assert same_weights(resumed.model, full.model.state_dict())
    listing = [sorted(p.name for p in (run / "checkpoints").iterdir()) for run in (tmp_path / "full", tmp_path / "cut")]
    assert listing[0] == listing[1] and len(listing[0]) == 3
    assert [(run / "checkpoints" / "best.json").read_text() for run in (tmp_path / "full", tmp_path / "cut")] == [
        (tmp_path / "full" / "checkpoints" / "best.json").read_text()] * 2


def test_rerun_repairs_a_lost_or_stale_best_marker(tmp_path):
    cfg = TrainConfig(lr=3e-2, batch_size=8, steps=8, ckpt_every=2, keep_last=0, device="cpu")
    train(toy_model(), toy_data(), cfg, tmp_path, val_data=val_against_train(), progress=False)
    marker = tmp_path / "checkpoints" / "best.json"
    right = marker.read_text()
    for damage in ("", '{"checkpoint": "step_00000008"}'):
        if damage:
            marker.write_text(damage)
        else:
            marker.unlink()
        again = train(toy_model(), toy_data(), cfg, tmp_path, val_data=val_against_train(), progress=False)
        assert again.resumed_from == 8 and marker.read_text() == right


def test_missing_empty_and_unfinished_folders_say_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent is not a folder: expected a model folder"):
        load_pretrained(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty holds neither config\.json \(a model folder\) nor "
                                                r"checkpoints/step_\* \(a run folder\)"):
        load_pretrained(tmp_path / "empty")
    (tmp_path / "run" / "checkpoints" / "step_00000002").mkdir(parents=True)
    with pytest.warns(UserWarning, match="incomplete checkpoint"), pytest.raises(
            FileNotFoundError, match=r"run/checkpoints holds no finished checkpoint \(a step_\* folder with "
                                     r"model\.safetensors, config\.json, train_state\.pt\)"):
        load_pretrained(tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "best.json").write_text('{"checkpoint": "step_00000002"}')
    with pytest.raises(ValueError, match=r"best\.json marks .*step_00000002 as best, but that checkpoint lacks"):
        load_pretrained(tmp_path / "run")
    folder = save_checkpoint(ToyModel(ToyConfig()), tmp_path / "model")
    with pytest.raises(ValueError, match=r"which='latest' chooses among a run folder's checkpoints, but .*model "
                                         r"is a model folder"):
        load_pretrained(folder, which="latest", builder=build_toy)
    with pytest.raises(ValueError, match=r"which must be one of \('auto', 'latest', 'best'\), got 'newest'"):
        load_pretrained(folder, which="newest")
    with pytest.raises(ValueError, match=r"model 'toymodel' is not in cortexscale\.models\.MODELS .* pass builder="):
        load_pretrained(folder)
