"""AugReg's seven augmentation levels (Steiner et al. 2021) as GPU-batched kornia ops.

Batches hold values in [-1, 1] (the convention of cortexscale's image and clip datasets); they are mapped
to [0, 1] around the kornia ops and back.

Magnitudes follow big_vision's RandAugment, where level 10 is each op's nominal maximum (30 degrees of
rotation, an enhancement factor of 1.9, ...) and AugReg's levels 15 and 20 go beyond it. kornia scales an
op's range by ``m / 30``, so the ranges below are big_vision's values at level 30 and AugReg's ``m`` is
passed to kornia unchanged. kornia rejects ``m = 0``; level ``light1`` uses ``m = 1e-6``, which leaves the
magnitude-free ops (auto-contrast, equalize, invert) as the only real changes, as in big_vision.
Three ranges are clipped to the bounds kornia accepts: brightness (factor at most 2), translation (at most
the image size) and solarize-add (at most 0.5). kornia reads a shear magnitude as ``angle / 180`` degrees
(linear in the angle), big_vision as the shear coefficient ``tan(angle)`` = 0.3 at level 10: the range is set
so that level 10 shears by ``atan(0.3)`` (16.7 degrees, 33 at level 20; big_vision's 0.6 is 31 degrees).

Other known departures from big_vision, inherited from kornia's ops: brightness adds ``factor - 1``
rather than multiplying; solarize-add draws its threshold; solarize and posterize thresholds scale
differently with the level; the two ops are drawn without replacement.

kornia draws one pair of ops per call; big_vision draws per image. ``op_groups`` splits the batch so each
group draws its own ops (``None``: one draw per sample). The frames of a clip always share one draw and
one set of magnitudes. Mixup draws one ``lambda ~ Beta(alpha, alpha)`` per batch and mixes each sample
with its neighbour (the batch rolled by one), as big_vision does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .levels import AUGREG_LEVELS, AugRegLevel

__all__ = ["AUGREG_LEVELS", "AugReg", "AugRegLevel", "augreg_policy", "mixup"]


def augreg_policy() -> list:
    """kornia RandAugment policy with big_vision's op set and level-30 ranges (see the module docstring)."""
    enhance = (0.1, 0.1 + 1.8 * 3)
    shear = 3 * math.degrees(math.atan(0.3)) / 180
    return [
        [("auto_contrast", 0, 1)],
        [("equalize", 0, 1)],
        [("invert", 0, 1)],
        [("rotate", -90.0, 90.0)],
        [("posterize", 4.0, 8.0)],
        [("solarize", 0.0, 1.0)],
        [("solarize_add", 0.0, 0.5)],
        [("color", *enhance)],
        [("contrast", *enhance)],
        [("brightness", 0.1, 2.0)],
        [("sharpness", *enhance)],
        [("shear_x", -shear, shear)],
        [("shear_y", -shear, shear)],
        [("translate_x", -1.0, 1.0)],
        [("translate_y", -1.0, 1.0)],
    ]


def mixup(x: torch.Tensor, labels: torch.Tensor, alpha: float, n_classes: int):
    """Mix each sample with the next one (batch rolled by one) with one lambda ~ Beta(alpha, alpha).

    x: (B, ...); labels: (B,) class ids or (B, n_classes) soft labels. Returns (mixed x, soft labels
    (B, n_classes), lambda).
    """
    if labels.ndim == 1:
        labels = F.one_hot(labels.long(), n_classes).to(torch.float32)
    a = torch.tensor(float(alpha))
    lam = float(torch.distributions.Beta(a, a).sample())
    mixed = lam * x + (1 - lam) * x.roll(1, dims=0)
    return mixed, lam * labels + (1 - lam) * labels.roll(1, dims=0), lam


def _repeat_params(obj, batch: int, times: int):
    """Repeat every per-sample tensor in kornia's parameter tree ``times`` times along the batch."""
    from kornia.augmentation.container.params import ParamItem

    if isinstance(obj, ParamItem):
        return ParamItem(obj.name, _repeat_params(obj.data, batch, times))
    if isinstance(obj, list):
        return [_repeat_params(o, batch, times) for o in obj]
    if isinstance(obj, dict):
        return {k: _repeat_params(v, batch, times) for k, v in obj.items()}
    if torch.is_tensor(obj) and obj.ndim >= 1 and obj.shape[0] == batch:
        return obj.repeat_interleave(times, dim=0)
    return obj


class AugReg:
    """Callable on a training batch: RandAugment then Mixup at one of :data:`AUGREG_LEVELS`.

    Images: {"image": (B, 3, H, W), "label": (B,)}; clips: {"video": (B, 3, T, H, W)}, with an optional
    "label". Values in [-1, 1]. With Mixup, "label" becomes soft (B, n_classes).
    """

    def __init__(self, level: str = "none", n_classes: int | None = None, op_groups: int | None = 8):
        if level not in AUGREG_LEVELS:
            raise ValueError(f"unknown AugReg level {level!r}: choose one of {list(AUGREG_LEVELS)}")
        self.level, self.n_classes, self.op_groups = level, n_classes, op_groups
        self.spec = AUGREG_LEVELS[level]
        self.randaugment = None
        if self.spec.randaugment is not None:
            from kornia.augmentation.auto import RandAugment

            n, m = self.spec.randaugment
            self.randaugment = RandAugment(n, max(float(m), 1e-6), policy=augreg_policy())

    def __repr__(self) -> str:
        return f"AugReg(level={self.level!r}, randaugment={self.spec.randaugment}, mixup={self.spec.mixup})"

    def _chunks(self, batch: int) -> list[slice]:
        groups = batch if self.op_groups is None else max(1, min(self.op_groups, batch))
        bounds = torch.linspace(0, batch, groups + 1).round().long().tolist()
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def _randaugment_images(self, x01: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> same, ops drawn per group."""
        return torch.cat([self.randaugment(x01[s]) for s in self._chunks(x01.shape[0])])

    def _randaugment_clips(self, x01: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [0, 1] -> same; every frame of a clip gets the same ops and magnitudes."""
        out = []
        for s in self._chunks(x01.shape[0]):
            clips = x01[s]
            B, C, T, H, W = clips.shape
            params = self.randaugment.forward_parameters(torch.Size((B, C, H, W)))
            frames = clips.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)
            done = self.randaugment(frames, params=_repeat_params(params, B, T))
            out.append(done.reshape(B, T, C, H, W).permute(0, 2, 1, 3, 4))
        return torch.cat(out)

    def __call__(self, batch: dict) -> dict:
        key = "video" if "video" in batch else "image"
        if key not in batch:
            raise ValueError(f"AugReg needs an 'image' or 'video' entry in the batch, got keys {sorted(batch)}")
        x = batch[key]
        want = 5 if key == "video" else 4
        if x.ndim != want or x.shape[1] != 3:
            raise ValueError(f"batch[{key!r}] must be (B, 3, {'T, ' if want == 5 else ''}H, W), got {tuple(x.shape)}")
        out = dict(batch)
        if self.randaugment is not None:
            x01 = ((x.float() + 1) / 2).clamp(0, 1)
            x01 = self._randaugment_clips(x01) if key == "video" else self._randaugment_images(x01)
            x = (x01 * 2 - 1).to(batch[key].dtype)
        if self.spec.mixup > 0:
            if "label" not in batch or self.n_classes is None:
                raise ValueError(f"level {self.level!r} uses Mixup: the batch needs 'label' and AugReg needs n_classes")
            x, out["label"], _ = mixup(x, batch["label"], self.spec.mixup, self.n_classes)
        out[key] = x
        return out
