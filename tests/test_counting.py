import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from cortexscale.models import ViT, ViTConfig, VideoGPT, VideoGPTConfig, count_parameters, transformer_train_flops
from cortexscale.models.counting import attention_train_flops, linear_weights


def measured_train_flops(model, batch, n):
    """FLOPs per sample of forward + backward, counted by torch (math attention, so it is visible)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss, _ = model.loss(batch)
        loss.backward()
    return counter.get_total_flops() / n


@pytest.mark.parametrize("hidden,layers,heads,cond", [(64, 2, 4, False), (96, 3, 2, True), (30, 1, 2, False)])
def test_videogpt_flops_match_counter(hidden, layers, heads, cond):
    cfg = VideoGPTConfig(vocab_size=128, grid=(2, 4, 4), hidden=hidden, layers=layers, heads=heads, cond=cond)
    model = VideoGPT(cfg)
    batch = {"tokens": torch.randint(128, (2, 2, 4, 4))}
    if cond:
        batch["cond_tokens"] = torch.randint(128, (2, 2, 4, 4))
    assert model.flops_per_sample() == measured_train_flops(model, batch, 2)


@pytest.mark.parametrize("variant,size", [("w64-d2-h4/p8", 32), ("w48-d1-h3/p4", 16)])
def test_vit_flops_match_counter(variant, size):
    model = ViT(ViTConfig.from_variant(variant, image_size=size, n_classes=10))
    batch = {"image": torch.randn(2, 3, size, size), "label": torch.tensor([1, 2])}
    assert model.flops_per_sample() == measured_train_flops(model, batch, 2)


def test_kaplan_6n_dominates_for_wide_models():
    cfg = VideoGPTConfig(vocab_size=64, grid=(1, 2, 2), hidden=256, layers=2, heads=4)
    model = VideoGPT(cfg)
    n = count_parameters(model, non_embedding=True) - 256 * 2 * 4 - 256 * 2
    assert model.flops_per_sample() == pytest.approx(6 * n * cfg.n_tokens, rel=0.05)


def test_non_embedding_count_leaves_out_embeddings():
    cfg = VideoGPTConfig(vocab_size=100, grid=(2, 3, 4), hidden=12, layers=1, heads=2)
    model = VideoGPT(cfg)
    total = count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters())
    embeddings = 100 * 12 + 12 + 2 * 4 + 3 * 4 + 4 * 4
    assert count_parameters(model, non_embedding=True) == total - embeddings


def test_transformer_formula_matches_counter_for_a_small_gpt():
    cfg = VideoGPTConfig(vocab_size=64, grid=(1, 4, 4), hidden=64, layers=2, heads=4)
    model = VideoGPT(cfg)
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    L = cfg.n_tokens
    analytic = transformer_train_flops(matmul, L, cfg.layers, L, cfg.hidden)
    measured = measured_train_flops(model, {"tokens": torch.randint(64, (2, 1, 4, 4))}, 2)
    assert analytic == measured
    assert analytic - 6 * matmul * L == 12 * cfg.layers * L * L * cfg.hidden


def test_each_term_is_counted():
    """Every term the formulas add is a measurable share of the counter's total, so dropping one breaks the
    exact agreement above: attention, the ViT's patch embedding and head, the conditional GPT's context."""
    vit = ViT(ViTConfig.from_variant("w64-d2-h4/p8", image_size=32, n_classes=10))
    seq = vit.config.n_patches + 1
    attention = attention_train_flops(2, seq, 64)
    patch = 4.0 * vit.patch_embed.weight.numel() * vit.config.n_patches
    head = 6.0 * vit.head.weight.numel()
    total = vit.flops_per_sample()
    assert total == patch + head + 6.0 * linear_weights(vit.blocks) * seq + attention
    assert min(attention, patch, head) / total > 3e-4
    plain = VideoGPT(VideoGPTConfig(vocab_size=128, grid=(2, 4, 4), hidden=64, layers=2, heads=4))
    cond = VideoGPT(VideoGPTConfig(vocab_size=128, grid=(2, 4, 4), hidden=64, layers=2, heads=4, cond=True))
    L = 32
    assert cond.flops_per_sample() - plain.flops_per_sample() == 6.0 * linear_weights(plain.blocks) * L + (
        attention_train_flops(2, 2 * L, 64) - attention_train_flops(2, L, 64))
