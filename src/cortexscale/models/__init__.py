"""Trainable feature models: ViT, VQ-VAE video tokenizer and video GPT, with a name registry.

Saving and loading go through :mod:`cortexscale.models.checkpoint`, which documents the folder format. The
configurations (:mod:`cortexscale.models.configs`) import no torch; the models are imported on first use.
"""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "checkpoint": ["CheckpointMismatchError", "list_checkpoints", "load_pretrained", "load_weights", "model_name",
                   "resolve_checkpoint", "save_pretrained"],
    "configs": ["VQVAEConfig", "ViTConfig", "VideoGPTConfig", "parse_variant"],
    "counting": ["count_parameters", "transformer_train_flops"],
    "registry": ["MODELS", "build_model"],
    "videogpt": ["VideoGPT"],
    "vit": ["ViT"],
    "vqvae": ["VQVAE"],
})
