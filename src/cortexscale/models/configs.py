"""The models' configurations: frozen dataclasses that check their fields, free of torch.

A study file's model settings are checked against these when the study is read, so that reading (and rerunning
a finished study) never imports torch; the modules that build the models import them from here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ._config import ConfigMixin

__all__ = ["VIT_PATCHES", "VIT_SIZES", "VQVAEConfig", "ViTConfig", "VideoGPTConfig", "parse_variant", "split_axes"]


VIT_SIZES = {"Ti": (192, 12, 3), "S": (384, 12, 6), "B": (768, 12, 12), "L": (1024, 24, 16)}
VIT_PATCHES = (8, 16, 32)
_NAMED = re.compile(r"^(Ti|S|B|L)/(\d+)$")
_EXPLICIT = re.compile(r"^w(\d+)-d(\d+)-h(\d+)/p(\d+)$")


def parse_variant(variant: str) -> dict:
    """Decode "S/16" or "w192-d12-h3/p16" into width, depth, heads and patch."""
    m = _NAMED.match(variant)
    if m and int(m.group(2)) in VIT_PATCHES:
        width, depth, heads = VIT_SIZES[m.group(1)]
        return {"width": width, "depth": depth, "heads": heads, "patch": int(m.group(2))}
    m = _EXPLICIT.match(variant)
    if m:
        width, depth, heads, patch = map(int, m.groups())
        return {"width": width, "depth": depth, "heads": heads, "patch": patch}
    valid = [f"{s}/{p}" for s in VIT_SIZES for p in VIT_PATCHES]
    raise ValueError(f"unknown ViT variant {variant!r}: use one of {valid} or 'w<width>-d<depth>-h<heads>/p<patch>'")


@dataclass(frozen=True)
class ViTConfig(ConfigMixin):
    """Configuration of :class:`ViT`; ``ViTConfig.from_variant("B/16", n_classes=10)`` for the standard sizes."""

    width: int = 384
    depth: int = 12
    heads: int = 6
    patch: int = 16
    image_size: int = 224
    in_chans: int = 3
    n_classes: int = 1000
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    attn_dropout: float = 0.0
    drop_path: float = 0.0
    pool: str = "cls"

    def __post_init__(self):
        for name in ("width", "depth", "heads", "patch", "image_size", "in_chans", "n_classes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("dropout", "attn_dropout", "drop_path"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"width={self.width} is not divisible by heads={self.heads}")
        if self.image_size % self.patch:
            raise ValueError(f"image_size={self.image_size} is not divisible by patch={self.patch}")
        if self.pool not in ("cls", "gap"):
            raise ValueError(f"pool must be 'cls' or 'gap', got {self.pool!r}")

    @classmethod
    def from_variant(cls, variant: str, **overrides) -> "ViTConfig":
        return cls(**{**parse_variant(variant), **overrides})

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch) ** 2


def _log2(value: int, name: str) -> int:
    if value < 1 or value & (value - 1):
        raise ValueError(f"{name} must be a power of 2, got {value}")
    return int(math.log2(value))


@dataclass(frozen=True)
class VQVAEConfig(ConfigMixin):
    """Configuration of :class:`VQVAE`; the default maps 16x128x128 clips to a 4x8x8 token grid."""

    in_channels: int = 3
    frames: int = 16
    size: int = 128
    hidden: int = 240
    n_res_layers: int = 4
    temporal_downsample: int = 4
    spatial_downsample: int = 16
    codebook_size: int = 2048
    embedding_dim: int = 256
    decay: float = 0.99
    commitment: float = 0.25
    restart_threshold: float = 1.0
    eps: float = 1e-5

    def __post_init__(self):
        for name in ("in_channels", "frames", "size", "hidden", "codebook_size", "embedding_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_res_layers < 0:
            raise ValueError(f"n_res_layers must be >= 0, got {self.n_res_layers}")
        _log2(self.temporal_downsample, "temporal_downsample")
        _log2(self.spatial_downsample, "spatial_downsample")
        if self.frames % self.temporal_downsample:
            raise ValueError(f"frames={self.frames} is not divisible by temporal_downsample={self.temporal_downsample}")
        if self.size % self.spatial_downsample:
            raise ValueError(f"size={self.size} is not divisible by spatial_downsample={self.spatial_downsample}")
        if not 0.0 < self.decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {self.decay}")
        if self.commitment < 0:
            raise ValueError(f"commitment must be >= 0, got {self.commitment}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        if not self.restart_threshold >= 0:
            raise ValueError(f"restart_threshold must be >= 0, got {self.restart_threshold}")

    @property
    def token_grid(self) -> tuple[int, int, int]:
        """(T', H', W') of the token grid of one clip."""
        s = self.size // self.spatial_downsample
        return (self.frames // self.temporal_downsample, s, s)


def split_axes(hidden: int) -> tuple[int, int, int]:
    """Widths of the t, h and w position embeddings; they sum to ``hidden`` (64 -> (22, 21, 21))."""
    base, extra = divmod(hidden, 3)
    return tuple(base + (1 if i < extra else 0) for i in range(3))


def _valid_sizes_message(hidden: int, heads: int) -> str:
    below = (hidden // heads) * heads
    above = below + heads
    sizes = [s for s in (below, above) if s > 0]
    divisors = [h for h in range(1, min(hidden, 64) + 1) if hidden % h == 0]
    return (f"hidden={hidden} is not divisible by heads={heads}; nearest valid hidden sizes for "
            f"{heads} heads: {sizes}; head counts that divide {hidden}: {divisors}")


@dataclass(frozen=True)
class VideoGPTConfig(ConfigMixin):
    """Configuration of :class:`VideoGPT` (defaults: Ahmadi et al. 2024)."""

    vocab_size: int = 2048
    grid: tuple[int, int, int] = (4, 8, 8)
    hidden: int = 576
    layers: int = 8
    heads: int = 4
    dropout: float = 0.2
    attn_dropout: float = 0.3
    mlp_ratio: float = 4.0
    cond: bool = False

    def __post_init__(self):
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        if len(self.grid) != 3 or min(self.grid) < 1:
            raise ValueError(f"grid must be three positive sizes (t, h, w), got {self.grid}")
        for name in ("vocab_size", "hidden", "layers", "heads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("dropout", "attn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive, got {self.mlp_ratio}")
        if self.hidden % self.heads:
            raise ValueError(_valid_sizes_message(self.hidden, self.heads))

    @property
    def n_tokens(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]
