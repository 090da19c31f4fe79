import json

import pytest
import torch

from cortexscale.models import MODELS, ViT, ViTConfig, VideoGPT, VideoGPTConfig, build_model, load_pretrained, save_pretrained


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = VideoGPT(VideoGPTConfig(vocab_size=32, grid=(2, 2, 2), hidden=16, layers=2, heads=2)).eval()
    save_pretrained(model, tmp_path, extra={"val_loss": 1.5})
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["model"] == "videogpt" and meta["val_loss"] == 1.5
    loaded = load_pretrained(tmp_path).eval()
    tokens = torch.randint(32, (2, 2, 2, 2))
    assert torch.equal(model(tokens), loaded(tokens))
    assert loaded.config == model.config


def test_shape_mismatch_names_file_and_parameter(tmp_path):
    small = ViT(ViTConfig(width=32, depth=1, heads=2, patch=8, image_size=16, n_classes=3))
    save_pretrained(small, tmp_path)
    other = ViT(ViTConfig(width=32, depth=1, heads=2, patch=8, image_size=16, n_classes=7))
    from cortexscale.models import load_weights

    with pytest.raises(ValueError, match=r"model\.safetensors: parameter 'head\.(bias|weight)' has shape \(3[,)]"):
        load_weights(other, tmp_path / "model.safetensors")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model": "vit"}')
    with pytest.raises(ValueError, match="'model' and 'config'"):
        load_pretrained(tmp_path)


def test_registry_builds_every_model_from_a_dict():
    assert {"vit", "videogpt"} <= set(MODELS)
    model = build_model("vit", {"width": 16, "depth": 1, "heads": 2, "patch": 4, "image_size": 8})
    assert isinstance(model, ViT)
    with pytest.raises(ValueError, match="unknown model 'gpt5'"):
        build_model("gpt5", {})
