"""Trainable feature models: ViT, VQ-VAE video tokenizer and video GPT, with a name registry.

Saving and loading go through :mod:`cortexscale.models.checkpoint`, which documents the folder format.
"""

from __future__ import annotations

from .checkpoint import (
    CheckpointMismatchError,
    list_checkpoints,
    load_pretrained,
    load_weights,
    model_name,
    resolve_checkpoint,
    save_pretrained,
)
from .counting import count_parameters, transformer_train_flops
from .videogpt import VideoGPT, VideoGPTConfig
from .vit import ViT, ViTConfig, parse_variant
from .vqvae import VQVAE, VQVAEConfig

MODELS = {"vit": ViT, "vqvae": VQVAE, "videogpt": VideoGPT}


def build_model(name: str, config=None):
    """Build a registered model from its config object or a dict of config fields (defaults if None)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: registered models are {sorted(MODELS)}")
    cls = MODELS[name]
    if config is None:
        config = cls.config_class()
    elif isinstance(config, dict):
        config = cls.config_class.from_dict(config)
    return cls(config)


__all__ = [
    "MODELS",
    "CheckpointMismatchError",
    "VQVAE",
    "VQVAEConfig",
    "ViT",
    "ViTConfig",
    "VideoGPT",
    "VideoGPTConfig",
    "build_model",
    "count_parameters",
    "list_checkpoints",
    "load_pretrained",
    "load_weights",
    "model_name",
    "parse_variant",
    "resolve_checkpoint",
    "save_pretrained",
    "transformer_train_flops",
]
