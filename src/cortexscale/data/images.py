"""Image classification data from class subfolders (``root/<class>/<image>``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["IMAGE_SUFFIXES", "ImageFolder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageFolder:
    """Images under ``root/<class>/``, classes sorted by name; item i is {"image": (3, size, size), "label": ()}.

    A map-style dataset, as ``torch.utils.data.DataLoader`` takes it.

    Images are decoded with Pillow, converted to RGB, resized (antialiased, aspect ratio not kept) and
    scaled to [-1, 1].
    """

    def __init__(self, root, size: int = 224):
        self.root, self.size = Path(root), int(size)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not self.classes:
            raise ValueError(f"{self.root} has no class subfolders")
        self.samples = []
        for label, name in enumerate(self.classes):
            files = sorted(p for p in (self.root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ValueError(f"class folder {self.root / name} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            self.samples += [(path, label) for path in files]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, path: Path) -> torch.Tensor:
        """Image file -> (3, size, size) float in [-1, 1]."""
        import torch
        import torch.nn.functional as F
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                rgb = np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise ValueError(f"cannot read image {path}: {err}") from err
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return x[0].clamp_(-1.0, 1.0)

    def __getitem__(self, index: int) -> dict:
        import torch

        path, label = self.samples[index]
        return {"image": self.load(path), "label": torch.tensor(label)}
