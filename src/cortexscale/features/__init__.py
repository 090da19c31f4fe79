"""Features: layer features of stimuli (words, text, audio, video frames and clips) from Hugging Face models
and cortexscale's own, aligned to TRs and cached on disk."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "alignment": ["ALIGN_METHODS", "align_to_trs", "lanczos_kernel"],
    "audio": ["AudioModel", "audio_features", "is_speech_config", "load_audio_model"],
    "cache": ["FeatureCache", "cached_facts", "file_identity", "stimulus_hash"],
    "extract": ["extract_features", "segment_features"],
    "language": ["LanguageModel", "causal_features", "encoder_features", "load_language_model"],
    "vision": ["clip_events", "clip_features", "clip_starts", "frame_features"],
})
