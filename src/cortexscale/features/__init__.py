"""Features: layer features of stimuli from language models and cortexscale's own models, cached on disk."""

from .alignment import ALIGN_METHODS, align_to_trs, lanczos_kernel
from .cache import FeatureCache, file_identity, stimulus_hash
from .extract import extract_features, segment_features
from .language import LanguageModel, causal_features, encoder_features, load_language_model

__all__ = [
    "ALIGN_METHODS",
    "FeatureCache",
    "LanguageModel",
    "align_to_trs",
    "causal_features",
    "encoder_features",
    "extract_features",
    "file_identity",
    "lanczos_kernel",
    "load_language_model",
    "segment_features",
    "stimulus_hash",
]
