import pytest
import torch

from cortexscale.train.augment import AUGREG_LEVELS, AugReg, augreg_policy, mixup

PAPER = {  # Steiner et al. 2021, table of augmentation levels: (RandAugment layers, magnitude), Mixup alpha
    "none": (None, 0.0), "light1": ((2, 0), 0.0), "light2": ((2, 10), 0.2), "medium1": ((2, 15), 0.2),
    "medium2": ((2, 15), 0.5), "strong1": ((2, 20), 0.5), "strong2": ((2, 20), 0.8),
}


def images(n=8, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, size, size, generator=g) * 2 - 1, "label": torch.arange(n) % 4}


@pytest.mark.parametrize("level", list(PAPER))
def test_levels_configure_the_specified_ops(level):
    assert (AUGREG_LEVELS[level].randaugment, AUGREG_LEVELS[level].mixup) == PAPER[level]
    aug = AugReg(level, n_classes=4)
    ra, alpha = PAPER[level]
    if ra is None:
        assert aug.randaugment is None
    else:
        assert aug.randaugment.n == ra[0]
        assert aug.randaugment.m == pytest.approx(max(ra[1], 1e-6))
        assert len(aug.randaugment._modules) == len(augreg_policy())


@pytest.mark.parametrize("level", list(PAPER))
def test_output_shapes_range_and_labels(level):
    torch.manual_seed(0)
    batch = images()
    out = AugReg(level, n_classes=4)(batch)
    assert out["image"].shape == batch["image"].shape and out["image"].dtype == torch.float32
    assert out["image"].min() >= -1 - 1e-6 and out["image"].max() <= 1 + 1e-6
    if PAPER[level][1] > 0:
        assert out["label"].shape == (8, 4)
        assert torch.allclose(out["label"].sum(1), torch.ones(8))
    else:
        assert torch.equal(out["label"], batch["label"])


def test_none_is_identity_and_strong_changes_images():
    batch = images()
    assert torch.equal(AugReg("none")(batch)["image"], batch["image"])
    torch.manual_seed(0)
    out = AugReg("strong1", n_classes=4, op_groups=None)(batch)
    changed = (out["image"] - batch["image"]).flatten(1).abs().amax(1) > 1e-3
    assert changed.float().mean() > 0.5


def test_mixup_is_a_convex_combination_with_the_neighbour():
    torch.manual_seed(0)
    x = torch.randn(5, 3)
    y = torch.tensor([0, 1, 2, 0, 1])
    mixed, soft, lam = mixup(x, y, 0.5, 3)
    assert 0.0 <= lam <= 1.0
    assert torch.allclose(mixed, lam * x + (1 - lam) * x.roll(1, 0))
    assert torch.allclose(soft[1], torch.tensor([1 - lam, lam, 0.0]))


def test_mixup_lambda_follows_beta():
    torch.manual_seed(0)
    lams = torch.tensor([mixup(torch.zeros(2, 1), torch.tensor([0, 1]), 0.2, 2)[2] for _ in range(3000)])
    assert lams.mean().item() == pytest.approx(0.5, abs=0.03)
    assert lams.var().item() == pytest.approx(0.25 / 1.4, abs=0.02)


@pytest.mark.parametrize("level", ["light1", "medium2", "strong2"])
def test_frames_of_a_clip_get_the_same_transform(level):
    torch.manual_seed(1)
    frame = torch.rand(6, 3, 1, 16, 16) * 2 - 1
    clip = frame.expand(6, 3, 4, 16, 16).contiguous()
    out = AugReg(level, n_classes=3, op_groups=None)({"video": clip, "label": torch.arange(6) % 3})["video"]
    assert out.shape == clip.shape
    assert torch.allclose(out, out[:, :, :1].expand_as(out), atol=1e-6)
    if level != "light1":
        assert not torch.allclose(out, clip, atol=1e-3)


def test_seeded_determinism():
    batch = images()
    torch.manual_seed(3)
    a = AugReg("medium2", n_classes=4)(batch)
    torch.manual_seed(3)
    b = AugReg("medium2", n_classes=4)(batch)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown AugReg level 'extreme'"):
        AugReg("extreme")
    with pytest.raises(ValueError, match="needs 'label' and AugReg needs n_classes"):
        AugReg("light2")(images())
    with pytest.raises(ValueError, match=r"batch\['image'\] must be \(B, 3, H, W\), got \(2, 1, 8, 8\)"):
        AugReg("light1")({"image": torch.zeros(2, 1, 8, 8)})


def _level_params(op: str, m: float) -> dict:
    """kornia's sampled parameters for one policy op alone at magnitude m, batch of 4 images."""
    from kornia.augmentation.auto import RandAugment

    ra = RandAugment(1, m, policy=[p for p in augreg_policy() if p[0][0] == op])
    params = ra.forward_parameters(torch.Size((4, 3, 32, 32)))
    return params[0].data[0].data


def test_level_10_magnitudes_match_big_vision():
    # big_vision RandAugment at level 10: rotate 30 degrees, shear coefficient 0.3, enhancement factor 1.9
    rotate = _level_params("rotate", 10)["degrees"]
    assert torch.allclose(rotate.abs(), torch.full_like(rotate, 30.0))
    shear = _level_params("shear_x", 10)["shear_x"]
    assert torch.allclose(torch.tan(torch.deg2rad(shear)).abs(), torch.full_like(shear, 0.3), atol=1e-4)
    color = _level_params("color", 10)["saturation_factor"]
    assert torch.allclose(color, torch.full_like(color, 1.9))


@pytest.mark.parametrize("m", [15, 20])
def test_strong_shear_stays_a_moderate_shear(m):
    # big_vision's shear coefficient m * 0.03 is at most 0.6 (31 degrees) at AugReg's strongest level
    shear = _level_params("shear_y", m)["shear_y"]
    assert torch.all(shear.abs() < 45.0)
    assert torch.allclose(torch.tan(torch.deg2rad(shear)).abs(), torch.full_like(shear, 0.03 * m), rtol=0.12)
