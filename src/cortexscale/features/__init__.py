"""Features: layer features of stimuli (words, text, audio, video frames and clips) from Hugging Face models
and cortexscale's own, aligned to TRs and cached on disk."""

from .alignment import ALIGN_METHODS, align_to_trs, lanczos_kernel
from .audio import AudioModel, audio_features, is_speech_config, load_audio_model
from .cache import FeatureCache, file_identity, stimulus_hash
from .extract import extract_features, segment_features
from .language import LanguageModel, causal_features, encoder_features, load_language_model
from .vision import clip_events, clip_features, clip_starts, frame_features

__all__ = [
    "ALIGN_METHODS",
    "AudioModel",
    "FeatureCache",
    "LanguageModel",
    "align_to_trs",
    "audio_features",
    "causal_features",
    "clip_events",
    "clip_features",
    "clip_starts",
    "encoder_features",
    "extract_features",
    "file_identity",
    "frame_features",
    "is_speech_config",
    "lanczos_kernel",
    "load_audio_model",
    "load_language_model",
    "segment_features",
    "stimulus_hash",
]
