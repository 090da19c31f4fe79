import pytest
import torch

from cortexscale.models import ViT, ViTConfig, parse_variant
from cortexscale.models.vit import VIT_SIZES


def tiny(**kw):
    return ViTConfig(**{**dict(width=32, depth=2, heads=4, patch=8, image_size=32, n_classes=5), **kw})


@pytest.mark.parametrize("size", list(VIT_SIZES))
@pytest.mark.parametrize("patch", [8, 16, 32])
def test_named_variants_decode_from_the_table(size, patch):
    cfg = ViTConfig.from_variant(f"{size}/{patch}")
    assert (cfg.width, cfg.depth, cfg.heads) == VIT_SIZES[size] and cfg.patch == patch


def test_paper_sizes_and_explicit_variant():
    assert VIT_SIZES == {"Ti": (192, 12, 3), "S": (384, 12, 6), "B": (768, 12, 12), "L": (1024, 24, 16)}
    assert parse_variant("w96-d3-h2/p4") == {"width": 96, "depth": 3, "heads": 2, "patch": 4}
    with pytest.raises(ValueError, match="unknown ViT variant 'H/14'.*'S/16'"):
        parse_variant("H/14")
    with pytest.raises(ValueError, match="width=100 is not divisible by heads=3"):
        ViTConfig.from_variant("w100-d2-h3/p16")


def test_forward_and_intermediates_shapes():
    model = ViT(tiny()).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 5)
    feats = model.forward_intermediates(x)
    assert len(feats) == 3 and all(f.shape == (2, 17, 32) for f in feats)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 32, 32\), got \(2, 3, 16, 16\)"):
        model(torch.randn(2, 3, 16, 16))


def test_drop_path_and_dropout_are_identity_in_eval():
    model = ViT(tiny(dropout=0.1, drop_path=0.1, attn_dropout=0.1))
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model.forward_intermediates(x, layers=1)[0]
    torch.manual_seed(1)
    b = model.forward_intermediates(x, layers=1)[0]
    assert not torch.allclose(a, b)


def test_stochastic_depth_rates_rise_linearly():
    model = ViT(tiny(depth=3, drop_path=0.2))
    assert [b.drop_path.p for b in model.blocks] == pytest.approx([0.0, 0.1, 0.2])


def test_soft_labels_equal_hard_labels_when_one_hot():
    torch.manual_seed(0)
    model = ViT(tiny())
    torch.nn.init.normal_(model.head.weight)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    hard, _ = model.loss({"image": x, "label": y})
    soft, _ = model.loss({"image": x, "label": torch.nn.functional.one_hot(y, 5).float()})
    assert torch.allclose(hard, soft, atol=1e-6)


def test_loss_falls_on_short_run():
    torch.manual_seed(0)
    model = ViT(tiny())
    batch = {"image": torch.randn(8, 3, 32, 32), "label": torch.arange(8) % 5}
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first, _ = model.loss(batch)
    for _ in range(30):
        loss, logs = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first.item()
    assert logs["accuracy"] > 0.5


def test_reset_head_keeps_the_body():
    model = ViT(tiny())
    body = model.blocks[0].mlp.fc1.weight.clone()
    model.reset_head(3)
    assert model.config.n_classes == 3 and model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    assert torch.equal(model.blocks[0].mlp.fc1.weight, body)


@pytest.mark.parametrize("dtype, tolerance", [(torch.bfloat16, 1e-3), (torch.float16, 1e-4)])
def test_half_precision_loss_is_close_to_float32(dtype, tolerance):
    """Relative loss error under autocast: measured 1.5e-4 (bf16) and 1e-5 (fp16)."""
    torch.manual_seed(0)
    model = ViT(tiny())
    torch.nn.init.normal_(model.head.weight, std=0.02)
    batch = {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([0, 1])}
    full, _ = model.loss(batch)
    with torch.autocast("cpu", dtype=dtype):
        half, _ = model.loss(batch)
    assert half.item() != full.item()
    assert half.item() == pytest.approx(full.item(), rel=tolerance)


def test_gap_pooling_and_bad_config_fields():
    assert ViT(tiny(pool="gap"))(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    with pytest.raises(ValueError, match="pool"):
        tiny(pool="max")
    with pytest.raises(ValueError, match="image_size=30 is not divisible by patch=8"):
        tiny(image_size=30)
    with pytest.raises(ValueError, match="unknown ViTConfig fields"):
        ViTConfig.from_dict({"width": 32, "layers": 3})


def test_blocks_follow_gpt2_initialisation():
    torch.manual_seed(0)
    model = ViT(tiny(width=64, depth=3))
    for name, p in model.blocks.named_parameters():
        if name.endswith(("ln1.weight", "ln2.weight")):
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name
        else:
            std = 0.02 / 6**0.5 if name.endswith(("attn.proj.weight", "mlp.fc2.weight")) else 0.02
            assert p.std().item() == pytest.approx(std, rel=5 / (2 * p.numel()) ** 0.5), name


def test_large_variant_builds_on_meta_device():
    with torch.device("meta"):
        model = ViT(ViTConfig.from_variant("L/16", drop_path=0.1))
    assert model.blocks[0].mlp.fc1.weight.is_meta
    assert model(torch.zeros(2, 3, 224, 224, device="meta")).shape == (2, 1000)
    assert model.blocks[-1].drop_path.p == pytest.approx(0.1)
