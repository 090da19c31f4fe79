"""Models by name, as checkpoints record them (``config.json``'s ``model``)."""

from __future__ import annotations

from .videogpt import VideoGPT
from .vit import ViT
from .vqvae import VQVAE

__all__ = ["MODELS", "build_model"]

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
