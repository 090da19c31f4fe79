"""Trainable feature models: ViT, VQ-VAE video tokenizer and video GPT, with a name registry."""

from __future__ import annotations

from ._io import load_pretrained, load_weights, save_pretrained
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
    "VQVAE",
    "VQVAEConfig",
    "ViT",
    "ViTConfig",
    "VideoGPT",
    "VideoGPTConfig",
    "build_model",
    "count_parameters",
    "load_pretrained",
    "load_weights",
    "parse_variant",
    "save_pretrained",
    "transformer_train_flops",
]
