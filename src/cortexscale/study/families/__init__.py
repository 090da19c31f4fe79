"""Model families as plugins: each module builds a :class:`Family` and registers it (see :mod:`.base`)."""

from . import pretrained, videogpt, vit  # noqa: F401  (each registers its family)
from ._trainable import VideoSpec, grid
from .base import FAMILIES, Expansion, Extracted, Family, FeatureModel, Roles, model_sizes, register_family
from .pretrained import PretrainedSpec, resolve_source
from .videogpt import TokenizerSpec, VideoGPTSpec
from .vit import ViTSpec

__all__ = ["FAMILIES", "Expansion", "Extracted", "Family", "FeatureModel", "PretrainedSpec", "Roles",
           "TokenizerSpec", "VideoGPTSpec", "VideoSpec", "ViTSpec", "grid", "model_sizes", "register_family",
           "resolve_source"]
