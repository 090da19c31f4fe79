import numpy as np
import pytest
import torch
from PIL import Image

from cortexscale.data import ImageFolder


def make_folder(root, colours):
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (20 + i, 12), colour).save(root / name / f"{i}.png")


def test_classes_labels_and_values(tmp_path):
    make_folder(tmp_path, {"zebra": (255, 0, 0), "apple": (0, 0, 255)})
    data = ImageFolder(tmp_path, size=8)
    assert data.classes == ["apple", "zebra"] and len(data) == 4
    item = data[0]
    assert item["image"].shape == (3, 8, 8) and item["label"].item() == 0
    assert torch.allclose(item["image"][2], torch.ones(8, 8), atol=1e-5)
    assert torch.allclose(item["image"][0], -torch.ones(8, 8), atol=1e-5)
    assert data[3]["label"].item() == 1


def test_grayscale_is_converted_to_rgb(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((9, 9), 255, np.uint8), mode="L").save(tmp_path / "a" / "g.png")
    assert torch.allclose(ImageFolder(tmp_path, size=4)[0]["image"], torch.ones(3, 4, 4), atol=1e-5)


def test_bad_folders_and_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match="has no class subfolders"):
        ImageFolder(tmp_path)
    (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="cats holds no images"):
        ImageFolder(tmp_path)
    (tmp_path / "cats" / "broken.png").write_bytes(b"not an image")
    data = ImageFolder(tmp_path)
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        data[0]
