"""Checkpoint folders: contents, shape checks, atomic replacement, RNG capture."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from cortexscale.train import CheckpointMismatchError, list_checkpoints, load_model, load_weights, save_checkpoint
from cortexscale.train.checkpoint import capture_rng, load_train_state, restore_rng
from test_train_loop import TiedToyModel, ToyConfig, ToyModel


def build_toy(name, config):
    assert name == "toymodel"
    return ToyModel(ToyConfig.from_dict(config))


def test_round_trip_keeps_weights_and_contract_config(tmp_path):
    torch.manual_seed(0)
    model = ToyModel(ToyConfig(hidden=12))
    folder = save_checkpoint(tmp_path / "ck", model, train_state={"step": 3}, extra={"step": 3},
                             summary={"val": {"val_loss": 0.5}})
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "toymodel" and config["step"] == 3
    assert ToyConfig.from_dict(config["config"]) == model.config
    assert load_train_state(folder) == {"step": 3}
    assert json.loads((folder / "summary.json").read_text())["val"]["val_loss"] == 0.5
    loaded = load_model(folder, builder=build_toy)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_shape_mismatch_names_file_parameter_and_shapes(tmp_path):
    folder = save_checkpoint(tmp_path / "ck", ToyModel(ToyConfig(hidden=12)))
    with pytest.raises(ValueError, match=r"model\.safetensors: parameter 'body\.weight' has shape \(12, 8\) "
                                         r"in the checkpoint but \(16, 8\) in the model"):
        load_weights(folder, ToyModel(ToyConfig(hidden=16)))


def test_unexpected_and_missing_parameters_are_named(tmp_path):
    class Bigger(ToyModel):
        def __init__(self, config):
            super().__init__(config)
            self.extra = nn.Linear(2, 2)

    extra = r"\['extra\.bias', 'extra\.weight'\]"
    folder = save_checkpoint(tmp_path / "ck", ToyModel(ToyConfig()))
    with pytest.raises(CheckpointMismatchError, match=rf"missing from the checkpoint: {extra}"):
        load_weights(folder, Bigger(ToyConfig()))
    folder = save_checkpoint(tmp_path / "big", Bigger(ToyConfig()))
    with pytest.raises(CheckpointMismatchError, match=rf"{extra} are not in the model ToyModel"):
        load_weights(folder, ToyModel(ToyConfig()))


def test_tied_weights_survive(tmp_path):
    torch.manual_seed(1)
    source = TiedToyModel(ToyConfig())
    folder = save_checkpoint(tmp_path / "ck", source)
    torch.manual_seed(2)
    target = load_weights(folder, TiedToyModel(ToyConfig()))
    assert torch.equal(target.embed.weight, source.embed.weight)
    assert target.head.weight is target.embed.weight


def test_failed_save_leaves_old_checkpoint_and_no_debris(tmp_path):
    model = ToyModel(ToyConfig())
    folder = save_checkpoint(tmp_path / "ck", model, train_state={"step": 1})
    before = (folder / "model.safetensors").read_bytes()

    class Unsavable:
        def to_dict(self):
            raise RuntimeError("boom")

    model.config = Unsavable()
    with torch.no_grad():
        model.body.weight.add_(1.0)
    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(folder, model, train_state={"step": 2})
    assert (folder / "model.safetensors").read_bytes() == before
    assert load_train_state(folder) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_save_replaces_an_existing_folder_whole(tmp_path):
    folder = save_checkpoint(tmp_path / "ck", ToyModel(ToyConfig()), train_state={"step": 1},
                             summary={"step": 1})
    save_checkpoint(folder, ToyModel(ToyConfig()), train_state={"step": 2})
    assert load_train_state(folder) == {"step": 2}
    assert not (folder / "summary.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_list_checkpoints_orders_by_step_and_skips_incomplete(tmp_path):
    for step in (10, 2, 7):
        save_checkpoint(tmp_path / f"step_{step:08d}", ToyModel(ToyConfig()), train_state={"step": step})
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
