"""Audio reading, sliding-window speech features (HuBERT, WavLM, Whisper) and audio events."""

import struct
import wave

import numpy as np
import pandas as pd
import pytest
import torch

from cortexscale.data import audio_info, audio_steps, read_audio
from cortexscale.features import FeatureCache, audio_features, extract_features, load_audio_model
from cortexscale.features.audio import _last_frame

RATE = 16000
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


def _hubert():
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    return HubertModel(HubertConfig(**SMALL)), Wav2Vec2FeatureExtractor(do_normalize=False)


def _wavlm():
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    config = WavLMConfig(**SMALL, num_buckets=32, max_bucket_distance=64)
    return WavLMModel(config), Wav2Vec2FeatureExtractor(do_normalize=True)


def _whisper():
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    config = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, decoder_layers=1,
                           decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
                           vocab_size=64, max_source_positions=1500, max_target_positions=16, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    return WhisperModel(config), WhisperFeatureExtractor(feature_size=80)


AUDIO_MODELS = {"hubert": _hubert, "wavlm": _wavlm, "whisper": _whisper}


@pytest.fixture(scope="module", params=sorted(AUDIO_MODELS))
def model_dir(request, tmp_path_factory):
    torch.manual_seed(0)
    model, extractor = AUDIO_MODELS[request.param]()
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def am(model_dir):
    return load_audio_model(model_dir, device="cpu")


def sound(seconds=2.5, seed=0):
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def write_wav(path, samples, rate=RATE, channels=1):
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(data.tobytes())
    return path


def manual(am, window_samples, layer):
    """The last output frame of one window, computed directly."""
    last = None
    if am.feature_extractor is None:
        inputs = {"input_values": torch.from_numpy(window_samples)[None]}
    else:
        enc = am.feature_extractor([window_samples], sampling_rate=RATE, return_tensors="pt",
                                   return_attention_mask=am.whisper)
        key = "input_features" if am.whisper else "input_values"
        inputs = {key: enc[key]}
        if am.whisper:  # the mel frames that hold sound, then the encoder's stride-2 convolution
            last = (int(enc["attention_mask"].sum()) - 1) // 2
    with torch.no_grad():
        hidden = am.model(**inputs, output_hidden_states=True).hidden_states[layer][0]
    return hidden[hidden.shape[0] - 1 if last is None else last].numpy()


def test_read_audio_resamples_and_downmixes(tmp_path):
    rate = 44100
    t = np.arange(int(1.5 * rate)) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, left / 2], axis=1).reshape(-1)
    path = write_wav(tmp_path / "s.wav", stereo, rate=rate, channels=2)
    assert audio_info(path) == {"sample_rate": rate, "channels": 2, "duration": 1.5}
    native, native_rate = read_audio(path)
    assert native_rate == rate
    np.testing.assert_allclose(native, 0.75 * left, atol=1e-4)
    y, out_rate = read_audio(path, sample_rate=RATE)
    assert out_rate == RATE and y.dtype == np.float32 and abs(len(y) - 1.5 * RATE) <= 32
    ref = 0.75 * 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(y)) / RATE)
    np.testing.assert_allclose(y[200:-200], ref[200:-200], atol=2e-3)


def test_unreadable_audio_names_the_file(tmp_path):
    good = write_wav(tmp_path / "good.wav", sound(0.5)).read_bytes()
    zero_rate = bytearray(good)
    zero_rate[24:28] = struct.pack("<I", 0)
    bad = tmp_path / "zero_rate.wav"
    bad.write_bytes(bytes(zero_rate))
    with pytest.raises(ValueError, match="zero_rate.wav"):
        read_audio(bad)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 20)
    with pytest.raises(ValueError, match="junk.wav"):
        read_audio(junk)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="sample_rate"):
        read_audio(tmp_path / "good.wav", sample_rate=-5)


def test_audio_steps_from_a_file_and_from_sound_events(tmp_path):
    path = write_wav(tmp_path / "a.wav", sound(1.0))
    steps = audio_steps(path, stride=0.25, onset=20.0)
    np.testing.assert_allclose(steps["stim_time"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(steps["onset"], 20.0 + steps["stim_time"])
    assert (steps["value"] == str(path)).all() and (steps["duration"] == 0).all()
    sounds = pd.DataFrame({"onset": [0.0, 10.0], "duration": [0.5, 0.3], "value": ["x.wav", "y.wav"]})
    both = audio_steps(sounds, stride=0.1)
    assert both["value"].tolist() == ["x.wav"] * 5 + ["y.wav"] * 3
    np.testing.assert_allclose(both["onset"].iloc[5:], [10.1, 10.2, 10.3])
    with pytest.raises(ValueError, match="shorter than one"):
        audio_steps(pd.DataFrame({"onset": [0.0], "duration": [0.05], "value": ["x.wav"]}), stride=0.1)
    with pytest.raises(ValueError, match="stride"):
        audio_steps(sounds, stride=0)


def test_windows_match_a_direct_forward_pass(am):
    wave_ = sound(2.5)
    times = np.round(np.arange(1, 26) * 0.1, 10)
    feats = audio_features(am, wave_, RATE, times, [0, am.n_layers], window=1.0, batch_size=4, progress=False)
    assert set(feats) == {0, am.n_layers} and feats[0].shape == (25, 32)
    for i in (0, 4, 9, 10, 17, 24):
        end = int(round(times[i] * RATE))
        window = wave_[max(0, end - RATE):end]
        np.testing.assert_allclose(feats[am.n_layers][i], manual(am, window, am.n_layers), atol=1e-4)


def test_features_are_causal_and_independent_of_batching(am):
    wave_ = sound(2.0)
    times = np.arange(1, 21) * 0.1
    a = audio_features(am, wave_, RATE, times, [1], window=0.8, batch_size=3, progress=False)[1]
    b = audio_features(am, wave_, RATE, times, [1], window=0.8, batch_size=16, progress=False)[1]
    np.testing.assert_allclose(a, b, atol=1e-5)
    changed = wave_.copy()
    changed[int(1.2 * RATE):] = sound(0.8, seed=5)
    c = audio_features(am, changed, RATE, times, [1], window=0.8, batch_size=16, progress=False)[1]
    np.testing.assert_allclose(c[:12], b[:12], atol=1e-5)
    assert not np.allclose(c[12:], b[12:], atol=1e-3)


def test_bad_audio_input_is_named(am):
    wave_ = sound(1.0)
    with pytest.raises(ValueError, match="8000 Hz"):
        audio_features(am, wave_, 8000, [0.5], [1], window=0.5, progress=False)
    with pytest.raises(ValueError, match="outside the sound"):
        audio_features(am, wave_, RATE, [0.5, 1.5], [1], window=0.5, progress=False)
    with pytest.raises(ValueError, match="layer 7 is out of range"):
        audio_features(am, wave_, RATE, [0.5], [7], window=0.5, progress=False)
    with pytest.raises(ValueError, match="mono"):
        audio_features(am, np.stack([wave_, wave_]), RATE, [0.5], [1], window=0.5, progress=False)
    with pytest.raises(ValueError, match="window must lie"):
        audio_features(am, wave_, RATE, [0.5], [1], window=0.0, progress=False)


def test_whisper_windows_are_bounded_by_its_30_seconds(tmp_path):
    torch.manual_seed(0)
    model, extractor = _whisper()
    model.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    whisper = load_audio_model(tmp_path, device="cpu")
    assert whisper.whisper and whisper.max_seconds == 30.0 and whisper.n_layers == 2
    assert [_last_frame(whisper, n, 1500) for n in (16000, 16001, 16160, 16320, 257600)] == [49, 50, 50, 50, 804]
    with pytest.raises(ValueError, match=r"window must lie in \(0, 30\]"):
        audio_features(whisper, sound(1.0), RATE, [1.0], [1], window=31.0, progress=False)


def test_missing_model_path_mentions_network(tmp_path):
    with pytest.raises(ValueError, match="network access"):
        load_audio_model(tmp_path / "no-such-model")


def test_extract_features_audio_events_with_cache(am, model_dir, tmp_path, monkeypatch):
    first = write_wav(tmp_path / "one.wav", sound(1.0, seed=1))
    second = write_wav(tmp_path / "two.wav", sound(0.6, seed=2))
    sounds = pd.DataFrame({"onset": [0.0, 3.0], "duration": [1.0, 0.6], "value": [str(first), str(second)]})
    steps = audio_steps(sounds, stride=0.2)
    feats = extract_features(model_dir, steps, layers=[2], kind="audio", audio_window=0.5, cache=tmp_path / "c",
                             device="cpu", progress=False)[2]
    assert feats.shape == (8, 32)
    direct = audio_features(am, read_audio(second, RATE)[0], RATE, [0.2, 0.4, 0.6], [2], window=0.5,
                            progress=False)[2]
    np.testing.assert_allclose(feats[5:], direct, atol=1e-5)
    import cortexscale.features.extract as extract

    monkeypatch.setattr(extract, "audio_features", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = extract_features(am, steps, layers=[2], kind="audio", audio_window=0.5,
                             cache=FeatureCache(tmp_path / "c"), progress=False)[2]
    np.testing.assert_array_equal(again, feats)
    write_wav(second, sound(0.6, seed=3))
    with pytest.raises(AssertionError, match="recomputed"):
        extract_features(am, steps, layers=[2], kind="audio", audio_window=0.5, cache=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="stim_time"):
        extract_features(am, sounds, layers=[2], kind="audio", progress=False)


@pytest.mark.parametrize("dtype, tolerance", [(torch.bfloat16, 3e-2), (torch.float16, 5e-3)])
def test_half_precision_inference_stays_close(model_dir, device, dtype, tolerance):
    """The largest deviation from float32, relative to the largest feature: measured at most 1.4e-2 (bf16) and
    1.6e-3 (fp16) for these models on the CPU."""
    half = load_audio_model(model_dir, device=device, dtype=dtype)
    full = load_audio_model(model_dir, device="cpu")
    assert half.dtype == dtype and half.device.type == device
    times = np.arange(1, 11) * 0.1
    a = audio_features(half, sound(1.0), RATE, times, [2], window=0.5, progress=False)[2]
    b = audio_features(full, sound(1.0), RATE, times, [2], window=0.5, progress=False)[2]
    assert not np.array_equal(a, b)
    assert np.abs(a - b).max() <= tolerance * np.abs(b).max()
