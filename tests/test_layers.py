import pytest
import torch
import torch.nn.functional as F

from cortexscale.models._layers import DropPath, _attention, dropout, intermediate_layers


@pytest.mark.parametrize("causal", [True, False])
def test_explicit_attention_matches_sdpa(causal):
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 9, 8).unbind(0)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.allclose(_attention(q, k, v, 1e-12, causal), expected, atol=1e-5)


def test_attention_dropout_keeps_causality():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 1, 6, 4).unbind(0)
    v2 = v.clone()
    v2[..., 4:, :] += 10.0
    torch.manual_seed(1)
    a = _attention(q, k, v, 0.5, True)
    torch.manual_seed(1)
    b = _attention(q, k, v2, 0.5, True)
    assert torch.equal(a[..., :4, :], b[..., :4, :])


def test_dropout_drops_at_rate_and_preserves_mean():
    torch.manual_seed(0)
    x = torch.ones(400_000, requires_grad=True)
    y = dropout(x, 0.3, True)
    dropped = (y == 0).float().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.005)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)
    assert torch.equal(dropout(x, 0.3, False), x)


def test_drop_path_drops_whole_samples():
    torch.manual_seed(0)
    layer = DropPath(0.5).train()
    out = layer(torch.ones(1000, 3, 4))
    per_sample = out.flatten(1)
    assert torch.all((per_sample == 0).all(1) | (per_sample == 2).all(1))
    assert (per_sample[:, 0] == 0).float().mean().item() == pytest.approx(0.5, abs=0.06)


def test_intermediate_layers_are_all_layers_or_the_chosen_ones():
    assert intermediate_layers(None, 3) == [0, 1, 2, 3]
    assert intermediate_layers(2, 3) == [2]
    assert intermediate_layers([-1, 0], 3) == [0, 3]
    with pytest.raises(ValueError, match="layer 4 is out of range"):
        intermediate_layers(4, 3)
