import json

import pytest
import torch

from cortexscale.models import (
    MODELS,
    ViT,
    ViTConfig,
    VideoGPT,
    VideoGPTConfig,
    build_model,
    load_pretrained,
    load_weights,
    model_name,
    save_pretrained,
)
from cortexscale.runtime import resolve_device


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = VideoGPT(VideoGPTConfig(vocab_size=32, grid=(2, 2, 2), hidden=16, layers=2, heads=2)).eval()
    save_pretrained(model, tmp_path, extra={"val_loss": 1.5})
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["model"] == "videogpt" and meta["val_loss"] == 1.5
    loaded = load_pretrained(tmp_path, device="cpu").eval()
    tokens = torch.randint(32, (2, 2, 2, 2))
    assert torch.equal(model(tokens), loaded(tokens))
    assert loaded.config == model.config


def test_shape_mismatch_names_file_and_parameter(tmp_path):
    small = ViT(ViTConfig(width=32, depth=1, heads=2, patch=8, image_size=16, n_classes=3))
    save_pretrained(small, tmp_path)
    other = ViT(ViTConfig(width=32, depth=1, heads=2, patch=8, image_size=16, n_classes=7))
    for path in (tmp_path / "model.safetensors", tmp_path):
        with pytest.raises(ValueError, match=r"model\.safetensors: parameter 'head\.(bias|weight)' has shape \(3[,)]"):
            load_weights(other, path)


def test_load_weights_takes_a_file_or_a_folder_and_defaults_to_the_auto_device(tmp_path):
    torch.manual_seed(0)
    source = ViT(ViTConfig(width=16, depth=1, heads=2, patch=4, image_size=8, n_classes=3))
    save_pretrained(source, tmp_path)
    for path in (tmp_path, tmp_path / "model.safetensors"):
        torch.manual_seed(1)
        target = load_weights(ViT(source.config), path)
        assert {p.device for p in target.parameters()} == {resolve_device("auto")}
        assert all(torch.equal(a.cpu(), b) for a, b in zip(target.state_dict().values(), source.state_dict().values()))
    assert next(load_pretrained(tmp_path).parameters()).device == resolve_device("auto")
    with pytest.raises(FileNotFoundError, match=r"checkpoint weights not found: .*absent"):
        load_weights(ViT(source.config), tmp_path / "absent")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds neither config.json"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model": "vit"}')
    with pytest.raises(ValueError, match=r"config\.json: expected JSON with 'model' \(a name\) and 'config'"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model": "vit", ')
    with pytest.raises(ValueError, match=r"cannot read .*config\.json"):
        load_pretrained(tmp_path)


def test_save_pretrained_names_the_model_and_refuses_to_overwrite_its_keys(tmp_path):
    vit = ViT(ViTConfig(width=16, depth=1, heads=2, patch=4, image_size=8))
    assert model_name(vit) == "vit"
    with pytest.raises(ValueError, match=r"extra must not set \['config'\]"):
        save_pretrained(vit, tmp_path, extra={"config": {}, "step": 1})
    assert not (tmp_path / "config.json").exists()


def test_registry_builds_every_model_from_a_dict():
    assert {"vit", "videogpt"} <= set(MODELS)
    model = build_model("vit", {"width": 16, "depth": 1, "heads": 2, "patch": 4, "image_size": 8})
    assert isinstance(model, ViT)
    with pytest.raises(ValueError, match="unknown model 'gpt5'"):
        build_model("gpt5", {})


def test_a_save_cut_short_leaves_no_folder_that_looks_complete(tmp_path, monkeypatch):
    import safetensors.torch

    vit = ViT(ViTConfig(width=16, depth=1, heads=2, patch=4, image_size=8))
    save_pretrained(vit, tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(safetensors.torch, "save_model", full_disk)
    with pytest.raises(OSError, match="no space"):
        save_pretrained(vit, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    with pytest.raises(FileNotFoundError, match="holds neither config.json"):
        load_pretrained(tmp_path)
